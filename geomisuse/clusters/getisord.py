"""Getis-Ord Gi* hot spots (Getis & Ord 1992; Ord & Getis 1995), as ArcGIS reports them.

Inference is the analytical z-score with a normal p-value, as in ArcGIS "Hot Spot Analysis",
so bins match what analysts get there. A permutation p-value would add nothing here:
with binary weights and the ward's own value fixed, Gi*'s conditional-permutation p equals
the LISA's (both are monotone in the sum of the drawn neighbours), so the analytical z is the
independent second opinion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.special import ndtr  # normal CDF; scipy.stats costs ~1 s to import

from ..vocabulary import GI_BIN_LEVELS


@dataclass(frozen=True)
class GStar:
    """Getis-Ord Gi* of every ward, with esda's attribute names (``esda.G_Local(star=True)``).

    Every attribute is an ``(n,)`` array in the order of the values.

    Attributes
    ----------
    Gs
        Gi*: the share of the map's total in the ward and its neighbours (NaN when the total is 0).
    Zs
        Its z-score (``M_gi_z``).
    p_norm
        Two-sided normal p-value ``2 (1 - Phi(|Zs|))`` as ArcGIS reports it (``M_gi_p``;
        esda's ``p_norm`` is the one-sided ``1 - Phi(|Zs|)``, half of it).
    """

    Gs: np.ndarray
    Zs: np.ndarray
    p_norm: np.ndarray


def gi_star(y: np.ndarray, adjacency_with_self: sparse.csr_array) -> GStar:
    """Gi* and its z-score for every ward (Ord & Getis 1995, eq. 14 with self included).

    With binary weights ``w_ij`` that include ``w_ii = 1``::

        Gi*_i = sum_j w_ij x_j / sum_j x_j
        z_i   = (sum_j w_ij x_j - xbar W_i) / (s sqrt((n S1_i - W_i^2) / (n - 1)))

    where ``W_i = sum_j w_ij``, ``S1_i = sum_j w_ij^2``, ``xbar`` the mean and
    ``s = sqrt(sum x^2 / n - xbar^2)`` over all ``n`` wards.

    Parameters
    ----------
    y
        ``(n,)`` values, no NaN, not all equal.
    adjacency_with_self
        ``(n, n)`` binary weights with ones on the diagonal.

    Returns
    -------
    GStar
        A ward that neighbours every other ward gets ``Zs = 0``, ``p_norm = 1``.
    """
    x = np.asarray(y, dtype=float)
    n = x.size
    local_sum = adjacency_with_self @ x
    w_i = np.asarray(adjacency_with_self.sum(axis=1)).ravel()
    s1_i = np.asarray(adjacency_with_self.multiply(adjacency_with_self).sum(axis=1)).ravel()
    mean = x.mean()
    s = np.sqrt((x ** 2).sum() / n - mean ** 2)
    spread = n * s1_i - w_i ** 2
    # A ward whose neighbourhood is the whole map has Gi* = 1 whatever the values (spread 0):
    # nothing to test, so z = 0 (p = 1) rather than 0 / 0.
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(spread > 0, (local_sum - mean * w_i) / (s * np.sqrt(np.maximum(spread, 0) / (n - 1))), 0.0)
    return GStar(Gs=local_sum / x.sum() if x.sum() else np.full(n, np.nan), Zs=z, p_norm=2.0 * ndtr(-np.abs(z)))


def gi_bins(z: np.ndarray, p_adjusted: np.ndarray) -> np.ndarray:
    """ArcGIS-style ``Gi_Bin``: ``sign(z) * 3/2/1`` when the adjusted p is at most 0.01/0.05/0.10, else 0.

    Parameters
    ----------
    z
        Gi* z-scores.
    p_adjusted
        Their p-values after the multiple-testing correction (no correction: ``p`` itself,
        so the bins fall at ``|z|`` = 2.58 / 1.96 / 1.65 as in ArcGIS).

    Returns
    -------
    numpy.ndarray
        Integers from -3 to 3 (positive: hot spot, negative: cold spot).
    """
    level = np.zeros(np.shape(z), dtype=np.int64)
    for value, threshold in reversed(GI_BIN_LEVELS):      # 90 %, then overwrite by 95 %, 99 %
        level[np.asarray(p_adjusted) <= threshold] = value
    return (np.sign(z).astype(np.int64) * level).astype(np.int64)
