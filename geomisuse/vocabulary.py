"""The words of the cluster statistics: LISA labels and quadrants, Getis-Ord Gi* bins and what
they mean.

These strings are part of the output contract (``M_lisa_label``, ``M_gi_bin`` in wards.csv)
and are read by every later stage: the cluster stage writes them, the gap stage tests need
against them, the map colours them and the briefings put them in sentences. They live here,
below all of those, because :mod:`geomisuse.publish` may not import the analysis stages
(:mod:`geomisuse.clusters`, :mod:`geomisuse.gaps`) and a constant in ``clusters/`` would force
it to. :mod:`geomisuse.config` holds settings and their defaults; these are not settings (no
study can change them), so they are not there either. The module imports nothing.

How a label or bin is *worded* on a page (``Hot spot, 99 % confidence``, ``hot spot (99%
confidence)``) is :mod:`geomisuse.publish.text`; which *colour* it gets is the map's
(:mod:`geomisuse.publish.maps.page`).
"""

from __future__ import annotations

#: Local Moran (LISA) labels of significant wards, by Moran-scatterplot quadrant.
HIGH_HIGH = "High-High"
LOW_HIGH = "Low-High"
LOW_LOW = "Low-Low"
HIGH_LOW = "High-Low"
#: The label of a ward whose local Moran is not significant after the correction.
NOT_SIGNIFICANT = "Not significant"

#: LISA quadrants of the Moran scatterplot, numbered as in esda (counter-clockwise from top
#: right): 1 ward and neighbours above the mean, 2 ward below / neighbours above, 3 both below,
#: 4 ward above / neighbours below.
QUADRANT_LABELS = {1: HIGH_HIGH, 2: LOW_HIGH, 3: LOW_LOW, 4: HIGH_LOW}

#: Every value of ``M_lisa_label``, in the order the map's legend lists them (clusters first,
#: then outliers, then the rest).
LISA_LABELS = (HIGH_HIGH, LOW_LOW, HIGH_LOW, LOW_HIGH, NOT_SIGNIFICANT)

#: Clusters (a ward like its neighbours) as opposed to outliers (a ward unlike them).
LISA_CLUSTERS = (HIGH_HIGH, LOW_LOW)

#: ArcGIS ``Gi_Bin`` levels: ``|bin|`` and the largest adjusted p-value that reaches it
#: (99 %, 95 %, 90 % confidence). Positive bins are hot spots, negative cold spots, 0 neither.
GI_BIN_LEVELS = ((3, 0.01), (2, 0.05), (1, 0.10))

#: Confidence in percent of each ``|bin|`` (1 - p threshold): {3: 99, 2: 95, 1: 90}.
GI_CONFIDENCE = {level: round(100 * (1 - threshold)) for level, threshold in GI_BIN_LEVELS}

#: The strongest bin (99 % confidence): the "hot spots" the briefings' findings name.
GI_TOP_BIN = max(level for level, _ in GI_BIN_LEVELS)

#: Every value of ``M_gi_bin``, hottest first (the map legend's order).
GI_BINS = tuple(sorted([level for level, _ in GI_BIN_LEVELS] + [0] + [-level for level, _ in GI_BIN_LEVELS],
                       reverse=True))


def gi_kind(gi_bin: int) -> str:
    """``"hot"`` for a positive Gi* bin, ``"cold"`` for a negative one, ``""`` for 0."""
    return "hot" if gi_bin > 0 else "cold" if gi_bin < 0 else ""


#: "99 %, 95 % or 90 %": the Gi* confidence levels in words, strongest first.
_CONFIDENCE_LEVELS = " or ".join([", ".join(f"{GI_CONFIDENCE[level]} %" for level, _ in GI_BIN_LEVELS[:-1]),
                                  f"{GI_CONFIDENCE[GI_BIN_LEVELS[-1][0]]} %"])

#: What the statistics' labels mean, in plain words for a board paper: the briefings' and the
#: map's key puts these beside the technical labels.
PLAIN_WORDS: dict[str, str] = {
    HIGH_HIGH: "a cluster: this ward and its neighbours all have high rates",
    LOW_LOW: "a low cluster: this ward and its neighbours all have low rates",
    HIGH_LOW: "an outlier: a high rate among neighbours with low rates",
    LOW_HIGH: "an outlier: a low rate among neighbours with high rates",
    NOT_SIGNIFICANT: "no pattern stronger than chance alone would often give",
    "hot spot": "the ward and its neighbours together have far more than the borough's usual rate "
                f"(Getis-Ord Gi*; {_CONFIDENCE_LEVELS} confidence)",
    "cold spot": "the ward and its neighbours together have far less than the borough's usual rate",
    "p": "p-value: how often chance alone would give a pattern this strong (p = 0.01: once in 100)",
}


#: Emerging hot spot categories (``M_ehsa_category``; Esri's names in lower case), in the order
#: the overview and the map legend list them: new and intensifying hot spots first, then the
#: other hot spots, the cold spots, and no pattern.
EHSA_CATEGORIES = (
    "new hot spot", "intensifying hot spot", "consecutive hot spot", "persistent hot spot",
    "sporadic hot spot", "oscillating hot spot", "diminishing hot spot", "historical hot spot",
    "new cold spot", "intensifying cold spot", "consecutive cold spot", "persistent cold spot",
    "sporadic cold spot", "oscillating cold spot", "diminishing cold spot", "historical cold spot",
    "no pattern",
)
#: The category of a ward with none of the patterns.
EHSA_NO_PATTERN = "no pattern"
