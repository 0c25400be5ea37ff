"""Project-wide settings: coordinate systems, measures and the defaults every study starts from.

One place for the numbers a user may want to look up or override. A study file
(:mod:`geomisuse.study`) overrides any of the analysis defaults below.
"""

from __future__ import annotations

#: Analysis CRS: British National Grid, metres.
ANALYSIS_CRS = "EPSG:27700"
#: Map edge CRS: WGS84 longitude/latitude.
MAP_CRS = "EPSG:4326"

#: The measures of the ward table, in output order. Each becomes ``M_count`` and
#: ``M_rate_per_1000`` columns (see the output contract in README.md).
MEASURES: tuple[str, ...] = ("possession", "trafficking", "drug_offences", "asb")

#: Human-readable labels for the measures, used in maps, briefings and reasons.
MEASURE_LABELS: dict[str, str] = {
    "possession": "drug possession",
    "trafficking": "drug trafficking",
    "drug_offences": "all drug offences",
    "asb": "anti-social behaviour",
}

#: Rates are per this many residents.
RATE_PER = 1000

#: Default seed for permutation inference and demo generation.
DEFAULT_SEED = 20261122

#: Published counts from 1 to SUPPRESSION_THRESHOLD - 1 are shown as "<threshold".
SUPPRESSION_THRESHOLD = 5

#: Cluster statistics defaults (see geomisuse.clusters).
DEFAULT_CORRECTION = "fdr"
DEFAULT_ALPHA = 0.05
DEFAULT_WEIGHTS = "queen"

#: Walking access defaults (see geomisuse.gaps).
WALK_SPEED_KMH = 4.8
#: Street network distance is on average this many times the straight-line distance.
DETOUR_FACTOR = 1.3
WALK_THRESHOLD_MIN = 20.0
SATELLITE_SITES = 3

#: Default output folder of ``geomisuse run``/``geomisuse demo``.
DEFAULT_OUT = "maps"
