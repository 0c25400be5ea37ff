"""geomisuse: ward-level maps of drug-related harm, spatial clusters and outreach gaps."""

__version__ = "0.1.0"
