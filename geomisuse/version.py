"""The package version, in a module of its own so that any module can record it (the manifest
does) without importing the package's ``__init__``, which imports the stages."""

__version__ = "0.1.0"
