"""Spatial clusters of drug-related harm: weights, global Moran's I, LISA and Getis-Ord Gi*.

The stage is :func:`find_clusters` over the ward table; its settings come from the study
file's ``[clusters]`` table through :meth:`ClusterSettings.from_options`. Modules:

- :mod:`.weights`: queen / k-nearest / distance-band neighbours, islands linked;
- :mod:`.moran`: global Moran's I, empirical-Bayes rates, local Moran (LISA);
- :mod:`.getisord`: Gi* z-scores and ArcGIS bins;
- :mod:`.inference`: conditional permutation, two-sided pseudo p-values, corrections,
  the default permutation count;
- :mod:`.emerging`: emerging hot spots (space-time Gi*, Mann-Kendall, ArcGIS's categories);
- :mod:`.change`: the exact conditional test of each ward's change on the previous period;
- :mod:`.stage`: the stage itself and the output columns.
"""

from .stage import ClusterResult, ClusterSettings, find_clusters

__all__ = ["ClusterResult", "ClusterSettings", "find_clusters"]
