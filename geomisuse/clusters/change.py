"""Significant change: is a ward's count in the period more than noise away from the previous
period of equal length?

Test: the exact conditional (binomial) test for two Poisson counts (Przyborowski & Wilenski
1940). If the ward's expected count is the same in both periods (same residents, same length),
then given the total ``n = a + b`` of the period count ``a`` and the previous count ``b``,
``a ~ Binomial(n, 1/2)``. The two-sided p-value sums the probabilities of every outcome no more
likely than ``a``; for ``p = 1/2`` the distribution is symmetric, so this is
``min(1, 2 P(X <= min(a, b)))`` (``1`` when ``a = b``), the value of
``scipy.stats.binomtest(a, n).pvalue``. The correction (default Benjamini-Hochberg FDR) runs
over the wards with both counts.

Columns (``M`` = measure): ``M_change`` (count minus previous count), ``M_change_pct``
(percent of the previous count; empty when it is 0), ``M_change_p`` (before correction),
``M_change_p_adjusted``, ``M_change_significant`` (adjusted p <= alpha).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import bdtr  # binomial CDF; scipy.stats costs ~1 s to import

from .inference import adjust_p


def conditional_change_p(current: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Two-sided exact conditional p-value of ``current`` against ``previous`` (see module docstring).

    Parameters
    ----------
    current, previous
        Counts of equal-length periods (NaN where unknown).

    Returns
    -------
    numpy.ndarray
        p-values; NaN where either count is unknown; 1 where both are 0.
    """
    a = np.asarray(current, dtype=float)
    b = np.asarray(previous, dtype=float)
    known = np.isfinite(a) & np.isfinite(b)
    n = np.where(known, a + b, 0.0).astype(np.int64)
    low = np.where(known, np.minimum(a, b), 0.0).astype(np.int64)
    p = np.where(n > 0, np.minimum(1.0, 2.0 * bdtr(low, np.maximum(n, 1), 0.5)), 1.0)
    return np.where(known, p, np.nan)


def significant_change(wards: pd.DataFrame, measures: list[str], correction: str = "fdr",
                       alpha: float = 0.05, family: np.ndarray | None = None) -> tuple[pd.DataFrame, dict, list[str]]:
    """Change from the previous period, with its exact test, for every measure that has both counts.

    Parameters
    ----------
    wards
        The ward table with ``M_count`` and ``M_previous_count``.
    measures
        Measures to test.
    correction
        ``"fdr"``, ``"bonferroni"`` or ``"none"``, over the wards of a measure.
    alpha
        Significance level.
    family
        The study's wards (boolean per row; default all); context wards are not tested.

    Returns
    -------
    (columns, manifest, warnings)
        Columns on the ward table's index (see the module docstring); the manifest's
        ``change`` section; warnings (a measure without previous counts).
    """
    columns = pd.DataFrame(index=wards.index)
    record, warnings = {}, []
    for measure in measures:
        now_column, before_column = f"{measure}_count", f"{measure}_previous_count"
        if before_column not in wards or pd.to_numeric(wards[before_column], errors="coerce").isna().all():
            warnings.append(f"{measure}: no counts for the previous period, so no test of change; give the study "
                            "a [study] period and inputs covering the period of equal length before it")
            continue
        now = pd.to_numeric(wards[now_column], errors="coerce").to_numpy(dtype=float)
        before = pd.to_numeric(wards[before_column], errors="coerce").to_numpy(dtype=float)
        p = conditional_change_p(now, before)
        if family is not None:
            p = np.where(np.asarray(family, bool), p, np.nan)
        known = np.isfinite(p)
        adjusted = np.full_like(p, np.nan)
        adjusted[known] = adjust_p(p[known], correction)
        change = now - before
        with np.errstate(invalid="ignore", divide="ignore"):
            pct = np.where(before > 0, change / before * 100.0, np.nan)
        significant = pd.array(np.where(known, adjusted <= alpha, False), dtype="boolean")
        significant[~known] = pd.NA
        columns[f"{measure}_change"] = pd.array(np.where(known, change, np.nan), dtype="Float64").astype("Int64")
        columns[f"{measure}_change_pct"] = np.where(known, pct, np.nan)
        columns[f"{measure}_change_p"] = p
        columns[f"{measure}_change_p_adjusted"] = adjusted
        columns[f"{measure}_change_significant"] = significant
        record[measure] = {
            "wards_tested": int(known.sum()),
            "significant_increases": int(((adjusted <= alpha) & (change > 0) & known).sum()),
            "significant_decreases": int(((adjusted <= alpha) & (change < 0) & known).sum()),
        }
    manifest = {"test": "exact conditional binomial test of the period count against the previous period of "
                        "equal length (two-sided)", "correction": correction, "alpha": alpha, "by_measure": record}
    return columns, manifest, warnings
