"""Emerging hot spot analysis: Getis-Ord Gi* in space and time, Mann-Kendall trends and the
ArcGIS pattern categories ("new hot spot", "intensifying cold spot", ...).

Method (Esri, *How Emerging Hot Spot Analysis works*, ArcGIS Pro tool reference,
``learnmoreemerging.htm``; R's sfdep ``emerging_hotspot_analysis`` implements the same idea):

1. **Space-time cube.** Each ward's monthly counts are summed into time steps (month,
   quarter or year, ``[clusters] time_step``); yearly steps also take the counts of annual
   sources (the ward table's yearly table), which have no months. The value of a bin is the rate per 1,000
   residents in that step (the count where the study has no populations). A step a source
   does not cover, or a ward without data, is a *missing* bin, never a zero: it is left out
   of every sum, mean and neighbourhood below and reported.
2. **Space-time Gi\\*.** The neighbours of bin (ward *i*, step *t*) are *i* itself and its
   contiguity neighbours at step *t* and at the ``time_k`` steps before (default 1, ArcGIS's
   "neighborhood time step" and sfdep's ``k``); binary weights. Gi\\* z is Ord & Getis (1995)
   eq. 14 over all present bins of the cube (ArcGIS's "entire cube" global window): the
   mean and standard deviation are those of every present bin. p is the two-sided normal
   p-value and the correction (default Benjamini-Hochberg FDR, as ArcGIS) runs over all the
   present bins of the measure together. A bin is a *hot* (*cold*) spot when its corrected p
   is at most ``alpha`` and z > 0 (z < 0).
3. **Trends.** The Mann-Kendall test (with the tie correction of the variance and the usual
   continuity correction, as ``pymannkendall.original_test``) on each ward's Gi\\* z series
   (the trend ArcGIS classifies with) and, for the briefings, on its counts.
4. **Categories**, after Esri's published definitions, with ``share`` = hot (cold) bins over
   the ward's present steps and the trend significant when its p <= ``alpha``:

   ====================  =================================================================
   new                   hot in the final step and never significant (hot or cold) before
   consecutive           a single unbroken run of at least two hot steps ending in the final
                         step, never significant before the run, share < 90 %
   intensifying          share >= 90 %, hot in the final step, Gi* z trend significantly
                         upward (cold: downward, i.e. ever colder)
   persistent            share >= 90 %, hot in the final step, no significant trend
   diminishing           share >= 90 %, hot in the final step, z trend significantly
                         downward (cold: upward)
   sporadic              hot in the final step, share < 90 %, on and off before, never cold
   oscillating           hot in the final step, share < 90 %, cold in some earlier step
   historical            not hot in the final step, share >= 90 %
   no pattern            none of the above
   ====================  =================================================================

   Cold categories mirror the hot ones. Where Esri's prose lets two categories overlap,
   geomisuse decides: the final step comes first (a ward hot in the final step gets a hot
   category even if it was a cold spot for 90 % of the steps before, and vice versa); any
   earlier significant bin of the *opposite* kind makes a ward oscillating rather than new
   or consecutive (sfdep decides the same way); persistent, intensifying and diminishing
   need the final step (else the ward is historical).

Differences from sfdep (``emerging_hotspot_analysis``): sfdep uses permutation p-values
without any multiple-testing correction (at 0.01 by default), requires a complete cube
(no missing values), calls a location sporadic without requiring the final step to be hot,
spells "oscilating", and its
intensifying rule counts cold bins too. geomisuse follows Esri's prose on all of these.
Differences from ArcGIS: steps are calendar months/quarters/years of the ward table (not
a cube of points), the neighbours are ward contiguity (queen, as the rest of geomisuse)
rather than a distance band, and the significance level is the study's ``alpha``
(default 0.05; ArcGIS's lowest Gi_Bin is 90 %).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import ndtr

from ..config import RATE_PER
from ..vocabulary import EHSA_CATEGORIES, EHSA_NO_PATTERN
# Steps are the ward table's (its yearly table is made the same way): one definition.
from ..wardtable import STEP_MONTHS, step_of_month, step_table  # noqa: F401 (re-exported)
from .getisord import GStar, gi_bins
from .inference import adjust_p

#: Fewest time steps the analysis runs on: the 90 % rule then allows one miss, and
#: Mann-Kendall on fewer values has little power.
MIN_STEPS = 10
#: Share of steps that makes a ward persistently hot or cold (Esri: "90 percent").
PERSISTENT_SHARE = 0.9
#: Every category, in the order the overview lists them (new and intensifying hot spots first).
CATEGORIES = EHSA_CATEGORIES
NO_PATTERN = EHSA_NO_PATTERN


@dataclass
class EmergingResult:
    """What the emerging hot spot analysis adds to a run.

    Attributes
    ----------
    columns
        Index = the ward table's index; per analysed measure ``M``: ``M_ehsa_category``,
        ``M_ehsa_trend_z``, ``M_ehsa_trend_p`` (Mann-Kendall on the Gi* z series),
        ``M_ehsa_count_trend_z``, ``M_ehsa_count_trend_p`` (on the counts),
        ``M_ehsa_hot_steps``, ``M_ehsa_cold_steps`` (significant bins), ``M_ehsa_steps``
        (present steps).
    bins
        One row per ward and step: ``ward_code``, ``step`` and per measure ``M_gi_z``,
        ``M_gi_p`` (before correction), ``M_gi_p_adjusted``, ``M_gi_bin`` (-3..3, ArcGIS bins
        on the corrected p); empty cells for missing bins.
    steps
        Step labels in order (``2025-01``, ``2025-Q1`` or ``2025``).
    manifest
        The ``emerging`` section of the clusters manifest.
    warnings
        One line each.
    summary_lines
        Console summary, one line per measure with a pattern.
    """

    columns: pd.DataFrame
    bins: pd.DataFrame
    steps: list[str]
    manifest: dict
    warnings: list[str] = field(default_factory=list)
    summary_lines: list[str] = field(default_factory=list)


def space_time_gi_star(values: np.ndarray, adjacency_with_self: sparse.csr_array, time_k: int) -> GStar:
    """Gi* z and p for every bin of a space-time cube (Ord & Getis 1995, eq. 14).

    The neighbourhood of bin ``(t, i)`` is every ward ``j`` with ``w_ij = 1`` (including
    ``i``) at steps ``t - time_k`` to ``t``; all weights binary. Missing bins (NaN) are
    neither tested nor counted in any neighbourhood, mean or variance.

    Parameters
    ----------
    values
        ``(T, n)`` values, steps by wards; NaN for missing bins.
    adjacency_with_self
        ``(n, n)`` binary spatial weights with ones on the diagonal.
    time_k
        Previous steps in the neighbourhood (0: each step on its own, the plain Gi*
        over the cube's mean and variance).

    Returns
    -------
    GStar
        esda's names, each a ``(T, n)`` array: ``Gs`` (share of the cube's total in the
        neighbourhood), ``Zs`` and the two-sided normal ``p_norm``; NaN at missing bins. A bin
        whose neighbourhood is every present bin gets ``Zs = 0``.
    """
    x = np.asarray(values, dtype=float)
    present = np.isfinite(x)
    x0 = np.where(present, x, 0.0)
    n_bins = int(present.sum())
    mean = x0.sum() / n_bins
    s = np.sqrt((x0 ** 2).sum() / n_bins - mean ** 2)
    spatial_sum = (adjacency_with_self @ x0.T).T
    spatial_w = (adjacency_with_self @ present.T.astype(float)).T
    local_sum = _window_sum(spatial_sum, time_k)
    w = _window_sum(spatial_w, time_k)
    spread = n_bins * w - w ** 2           # n S1 - W^2 with S1 = W for binary weights
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(spread > 0, (local_sum - mean * w) / (s * np.sqrt(np.maximum(spread, 0) / (n_bins - 1))), 0.0)
    z = np.where(present, z, np.nan)
    p = np.where(present, 2.0 * ndtr(-np.abs(z)), np.nan)
    total = x0.sum()
    share = np.where(present, local_sum / total, np.nan) if total else np.full_like(z, np.nan)
    return GStar(Gs=share, Zs=z, p_norm=p)


def _window_sum(a: np.ndarray, time_k: int) -> np.ndarray:
    """Row ``t`` = sum of rows ``max(0, t - time_k)`` to ``t``."""
    c = np.cumsum(a, axis=0)
    out = c.copy()
    out[time_k + 1:] -= c[: a.shape[0] - time_k - 1]
    return out


def mann_kendall(series: np.ndarray) -> dict:
    """Mann-Kendall trend test of each row, with the tie-corrected variance.

    ``S = sum_{i<j} sign(x_j - x_i)``; ``Var S = (n(n-1)(2n+5) - sum_g t_g(t_g-1)(2t_g+5)) / 18``
    over groups ``g`` of ``t_g`` tied values; ``z = (S - sign S) / sqrt(Var S)`` (continuity
    correction); ``p = 2 (1 - Phi(|z|))``; ``tau = S / (n(n-1)/2)``. The same as
    ``pymannkendall.original_test``. Missing values (NaN) are dropped from their row.

    Parameters
    ----------
    series
        ``(m, T)``: ``m`` series of ``T`` steps in time order.

    Returns
    -------
    dict of ``(m,)`` arrays
        ``s``, ``var_s``, ``z``, ``p``, ``tau``, ``n`` (values used). Rows with fewer than
        three values get NaN; a row of ties only gets ``z = 0``, ``p = 1``.
    """
    x = np.atleast_2d(np.asarray(series, dtype=float))
    present = np.isfinite(x)
    n = present.sum(axis=1).astype(float)
    diff = x[:, None, :] - x[:, :, None]              # [r, i, j] = x_j - x_i
    upper = np.triu(np.ones(x.shape[1], dtype=bool), k=1)
    both = present[:, :, None] & present[:, None, :]
    with np.errstate(invalid="ignore"):
        s = np.where(both & upper, np.sign(np.nan_to_num(diff)), 0.0).sum(axis=(1, 2))
        # Each value's tie group size, counted once per member: sum over members of
        # (t - 1)(2t + 5) is sum over groups of t(t - 1)(2t + 5).
        group = (both & (diff == 0)).sum(axis=2)
    ties = np.where(present, (group - 1) * (2 * group + 5), 0).sum(axis=1)
    var_s = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(var_s > 0, (s - np.sign(s)) / np.sqrt(var_s), 0.0)
        tau = s / (n * (n - 1) / 2)
    p = 2.0 * ndtr(-np.abs(z))
    short = n < 3
    for a in (z, p, tau):
        a[short] = np.nan
    return {"s": s, "var_s": var_s, "z": z, "p": p, "tau": tau, "n": n}


def classify(hot: np.ndarray, cold: np.ndarray, trend_z: float, trend_p: float, alpha: float) -> str:
    """The ArcGIS emerging hot spot category of one ward (see the module docstring).

    Parameters
    ----------
    hot, cold
        Boolean series over the ward's present steps, oldest first: significant hot / cold bin.
    trend_z, trend_p
        Mann-Kendall z and p of the ward's Gi* z series.
    alpha
        Significance level of the trend.

    Returns
    -------
    str
        One of :data:`CATEGORIES`.
    """
    hot = np.asarray(hot, dtype=bool)
    cold = np.asarray(cold, dtype=bool)
    if hot.size == 0:
        return NO_PATTERN
    trend = 0 if not (np.isfinite(trend_p) and trend_p <= alpha) else int(np.sign(trend_z))
    if hot[-1]:
        return _category(hot, cold, trend, "hot")
    if cold[-1]:
        return _category(cold, hot, -trend, "cold")
    if hot.mean() >= PERSISTENT_SHARE:
        return "historical hot spot"
    if cold.mean() >= PERSISTENT_SHARE:
        return "historical cold spot"
    return NO_PATTERN


def _category(same: np.ndarray, other: np.ndarray, trend: int, kind: str) -> str:
    """Category of a ward significant (of ``kind``) in its final step; ``trend`` +1 = intensifying."""
    share = same.mean()
    if share >= PERSISTENT_SHARE:
        pattern = {1: "intensifying", 0: "persistent", -1: "diminishing"}[trend]
        return f"{pattern} {kind} spot"
    before = same[:-1]
    if other.any():
        return f"oscillating {kind} spot"
    if not before.any():
        return f"new {kind} spot"
    run = len(same) - (np.flatnonzero(~same)[-1] + 1)  # final unbroken run (there is a miss: share < 90 %)
    if run >= 2 and not same[: len(same) - run].any():
        return f"consecutive {kind} spot"
    return f"sporadic {kind} spot"


def emerging_hotspots(wards: pd.DataFrame, monthly: pd.DataFrame, months: list[str], measure: str,
                      adjacency_with_self: sparse.csr_array, time_step: str = "month", time_k: int = 1,
                      correction: str = "fdr", alpha: float = 0.05, family: np.ndarray | None = None,
                      yearly: pd.DataFrame | None = None) -> dict | str:
    """Emerging hot spot analysis of one measure.

    Parameters
    ----------
    wards
        The ward table (``ward_code``, ``population``), rows in the order of the weights.
    monthly
        ``ward_code``, ``month``, ``M_count``.
    months
        The period's months in order.
    measure
        Measure name ``M``.
    adjacency_with_self
        Binary weights with self-weight, ward-table order.
    time_step, time_k, correction, alpha
        As in ``[clusters]``.
    family
        The study's wards (boolean per row; default all). Context wards' bins enter the
        neighbourhoods, mean and variance, but are not tested, classified or output.
    yearly
        ``ward_code``, ``year``, ``M_count`` (the ward table's yearly table), or ``None``.
        With ``time_step = "year"`` its counts are the steps (they include annual sources);
        with months or quarters, wards whose counts are only annual are named in a warning.

    Returns
    -------
    dict or str
        ``columns`` (ward-table index), ``bins`` (long, per ward and step), ``steps``,
        ``record`` (manifest), ``warnings``; or a one-line reason why the measure could
        not be analysed.
    """
    column = f"{measure}_count"
    counts, steps, partial = step_table(monthly, months, column, time_step)
    warnings = []
    annual_only = _annual_only_wards(monthly, months, yearly, column)
    if yearly is not None and time_step == "year" and column in yearly:
        # The yearly table already holds each complete year's months summed, and annual sources.
        counts = (yearly.assign(value=pd.to_numeric(yearly[column], errors="coerce").astype("float64"))
                  .pivot(index="ward_code", columns="year", values="value").reindex(columns=steps))
    elif annual_only:
        hint = (f"{measure}: {len(annual_only)} ward(s) have only annual counts (e.g. the MPS LSOA annual file; "
                f"{', '.join(annual_only[:3])}{' and more' if len(annual_only) > 3 else ''}); emerging hot spots "
                f"by {time_step} leave them out: set [clusters] time_step = \"year\"")
        if counts.reindex(columns=steps).notna().to_numpy().sum() == 0:
            return hint
        warnings.append(hint)
    if partial:
        warnings.append(f"{measure}: emerging hot spots leave out the {time_step}(s) {', '.join(partial)}, which "
                        f"the period only partly covers")
    codes = wards["ward_code"].astype(str).tolist()
    family = np.ones(len(codes), dtype=bool) if family is None else np.asarray(family, bool)
    counts = counts.reindex(index=codes)
    complete = counts.notna().all(axis=0)
    present_steps = [s for s in steps if complete.get(s, False) or counts[s].notna().any()]
    if len(present_steps) < MIN_STEPS:
        return (f"{measure}: emerging hot spots need at least {MIN_STEPS} {time_step}ly steps with data and the "
                f"period has {len(present_steps)}; use a longer period or a shorter [clusters] time_step")
    counts = counts[present_steps]
    dropped_steps = [s for s in steps if s not in present_steps]
    if dropped_steps:
        warnings.append(f"{measure}: no data in {len(dropped_steps)} {time_step}(s) ({dropped_steps[0]} to "
                        f"{dropped_steps[-1]}); emerging hot spots use the other {len(present_steps)}")
    population = pd.to_numeric(wards["population"], errors="coerce").to_numpy(dtype=float)
    use_rates = np.isfinite(population).any() and (population > 0).any()
    count_values = counts.to_numpy(dtype=float).T                     # (T, n)
    if use_rates:
        base = np.where(population > 0, population, np.nan)
        values = count_values / base[None, :] * RATE_PER
    else:
        values = count_values
    gaps = ~np.isfinite(values)
    missing_wards = [c for c, g, f in zip(codes, gaps.all(axis=0), family) if g and f]
    partly = [c for c, g, a, f in zip(codes, gaps.any(axis=0), gaps.all(axis=0), family) if g and not a and f]
    if missing_wards:
        warnings.append(f"{measure}: {len(missing_wards)} ward(s) without data (no counts or no population) left "
                        f"out of the emerging hot spots: {', '.join(missing_wards[:5])}"
                        f"{' and more' if len(missing_wards) > 5 else ''}")
    if partly:
        warnings.append(f"{measure}: {len(partly)} ward(s) have missing steps; their emerging category uses the "
                        f"steps with data: {', '.join(partly[:5])}{' and more' if len(partly) > 5 else ''}")
    if np.nanmax(values) == np.nanmin(values):
        return f"{measure}: every bin has the same value; no emerging hot spots to find"
    gi = space_time_gi_star(values, adjacency_with_self, time_k)
    # From here on only the study's wards: context wards were neighbours, not tests.
    gi = GStar(*(np.where(family[None, :], a, np.nan) for a in (gi.Gs, gi.Zs, gi.p_norm)))
    present = np.isfinite(gi.Zs)
    p_adjusted = np.full_like(gi.p_norm, np.nan)
    p_adjusted[present] = adjust_p(gi.p_norm[present], correction)
    significant = present & (p_adjusted <= alpha)
    hot, cold = significant & (gi.Zs > 0), significant & (gi.Zs < 0)
    trend = mann_kendall(gi.Zs.T)
    count_trend = mann_kendall(count_values.T)
    categories = []
    for i in range(len(codes)):
        keep = present[:, i]
        # A ward with too few steps of its own has no category (listed in the warnings above).
        categories.append(classify(hot[keep, i], cold[keep, i], trend["z"][i], trend["p"][i], alpha)
                          if keep.sum() >= MIN_STEPS else None)
    index = wards.index
    no_data = ~present.any(axis=0)
    out = pd.DataFrame({
        f"{measure}_ehsa_category": pd.Series(categories, index=index, dtype=object),
        f"{measure}_ehsa_trend_z": pd.Series(np.where(no_data, np.nan, trend["z"]), index=index),
        f"{measure}_ehsa_trend_p": pd.Series(np.where(no_data, np.nan, trend["p"]), index=index),
        f"{measure}_ehsa_count_trend_z": pd.Series(np.where(family, count_trend["z"], np.nan), index=index),
        f"{measure}_ehsa_count_trend_p": pd.Series(np.where(family, count_trend["p"], np.nan), index=index),
        f"{measure}_ehsa_hot_steps": pd.Series(hot.sum(axis=0), index=index).astype("Int64").where(~no_data),
        f"{measure}_ehsa_cold_steps": pd.Series(cold.sum(axis=0), index=index).astype("Int64").where(~no_data),
        f"{measure}_ehsa_steps": pd.Series(present.sum(axis=0), index=index).astype("Int64").where(family),
    })
    bins_z = np.where(present, gi.Zs, 0.0)
    bins = gi_bins(bins_z, np.where(present, p_adjusted, 1.0))
    long = pd.DataFrame({
        "ward_code": np.tile(codes, len(present_steps)),
        "step": np.repeat(present_steps, len(codes)),
        f"{measure}_gi_z": gi.Zs.ravel(),
        f"{measure}_gi_p": gi.p_norm.ravel(),
        f"{measure}_gi_p_adjusted": p_adjusted.ravel(),
        f"{measure}_gi_bin": pd.array(np.where(present, bins, 0).ravel(), dtype="Int64"),
    })
    long.loc[~present.ravel(), f"{measure}_gi_bin"] = pd.NA
    long = long[np.tile(family, len(present_steps))].reset_index(drop=True)
    tally = pd.Series([c for c in categories if c]).value_counts()
    record = {
        "steps": len(present_steps), "first_step": present_steps[0], "last_step": present_steps[-1],
        "values": "rate per 1,000 residents per step" if use_rates else "count per step",
        "bins_tested": int(present.sum()),
        "hot_bins": int(hot.sum()), "cold_bins": int(cold.sum()),
        "category_counts": {c: int(tally[c]) for c in CATEGORIES if c in tally},
        "wards_without_data": missing_wards,
        "wards_with_missing_steps": partly,
    }
    return {"columns": out, "bins": long, "steps": present_steps, "record": record, "warnings": warnings}


def _annual_only_wards(monthly: pd.DataFrame, months: list[str], yearly: pd.DataFrame | None,
                       column: str) -> list[str]:
    """Wards with yearly counts of a measure but no monthly count in the period (their source
    is annual), in code order."""
    if yearly is None or column not in yearly or not len(yearly):
        return []
    with_years = set(yearly.loc[yearly[column].notna(), "ward_code"])
    in_period = monthly[monthly["month"].isin(months)] if "month" in monthly else monthly.iloc[:0]
    with_months = set(in_period.loc[in_period[column].notna(), "ward_code"]) if column in in_period else set()
    return sorted(with_years - with_months)


def find_emerging_hotspots(wards: pd.DataFrame, monthly: pd.DataFrame, months: list[str], measures: list[str],
                           adjacency: sparse.csr_array, time_step: str = "month", time_k: int = 1,
                           correction: str = "fdr", alpha: float = 0.05,
                           family: np.ndarray | None = None, yearly: pd.DataFrame | None = None) -> EmergingResult:
    """Emerging hot spot analysis of every measure with monthly counts.

    Parameters
    ----------
    wards
        The ward table (``ward_code``, ``ward_name``, ``population``), rows in the order of
        ``adjacency``.
    monthly
        ``ward_code``, ``month`` and ``M_count`` columns (NaN where a source has no data).
    months
        The period's months in order (``YYYY-MM``).
    measures
        Measures to analyse (those without a ``M_count`` column in ``monthly`` are skipped).
    adjacency
        Binary neighbours without self-weight (zero diagonal), ward-table order; islands
        already linked.
    time_step
        ``"month"`` (default), ``"quarter"`` or ``"year"``.
    time_k
        Previous steps in each bin's neighbourhood (default 1).
    correction
        ``"fdr"`` (default), ``"bonferroni"`` or ``"none"``, over all bins of a measure.
    alpha
        Significance level of bins and trends.
    family
        The study's wards (boolean per row; default all); context wards are neighbours only.
    yearly
        The ward table's yearly table (``ward_code``, ``year``, ``M_count``), or ``None``:
        yearly steps then come from the monthly counts only.

    Returns
    -------
    EmergingResult
        A measure that cannot be analysed (too few steps, no data) gets a warning, no columns.
    """
    from .weights import with_self

    adjacency_with_self = with_self(adjacency)
    columns = pd.DataFrame(index=wards.index)
    bins = None
    steps: list[str] = []
    warnings: list[str] = []
    summary: list[str] = []
    records = {}
    names = dict(zip(wards["ward_code"].astype(str), wards.get("ward_name", wards["ward_code"]).astype(str)))
    for measure in measures:
        if f"{measure}_count" not in monthly:
            continue
        outcome = emerging_hotspots(wards, monthly, months, measure, adjacency_with_self, time_step, time_k,
                                    correction, alpha, family, yearly)
        if isinstance(outcome, str):
            warnings.append(outcome)
            continue
        warnings.extend(outcome["warnings"])
        columns = columns.join(outcome["columns"])
        bins = outcome["bins"] if bins is None else bins.merge(outcome["bins"], on=["ward_code", "step"], how="outer")
        steps = steps or outcome["steps"]
        records[measure] = outcome["record"]
        category = outcome["columns"][f"{measure}_ehsa_category"]
        listed = [f"{names[str(c)]} ({cat})" for cat in CATEGORIES[:-1]
                  for c in wards.loc[category == cat, "ward_code"]]
        if listed:
            summary.append(f"{measure}: emerging hot spots ({time_step}ly, {len(outcome['steps'])} steps): "
                           + "; ".join(listed[:8]) + (f" and {len(listed) - 8} more" if len(listed) > 8 else ""))
    if bins is not None:
        # Step labels of one kind sort in time order (2025-01 < 2025-02, 2025-Q1 < 2025-Q2).
        bins = bins.sort_values(["ward_code", "step"]).reset_index(drop=True)
    manifest = {"time_step": time_step, "time_k": int(time_k), "correction": correction, "alpha": alpha,
                "min_steps": MIN_STEPS, "gi_star": "space-time Gi*, binary weights: the ward, its neighbours, "
                "at this step and the time_k before; FDR over all bins of a measure",
                "trend": "Mann-Kendall with tie correction on each ward's Gi* z series",
                "by_measure": records}
    return EmergingResult(columns=columns, bins=bins if bins is not None else pd.DataFrame(columns=["ward_code", "step"]),
                          steps=steps, manifest=manifest, warnings=warnings, summary_lines=summary)
