"""Need: which measure drives the gap stage, and which wards have high need (LISA High-High,
Gi* hot spot, top-quintile rate)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError
from ..config import MEASURE_LABELS
from ..publish.text import gi_bin_text, per_1000_text, share_words
from ..vocabulary import HIGH_HIGH
from .settings import GapSettings, NEED_CRITERIA, NEED_MEASURE_FALLBACK


def choose_need_measure(wards: pd.DataFrame, requested: str | None) -> tuple[str, list[str]]:
    """The measure whose need is judged.

    Parameters
    ----------
    wards
        The ward table.
    requested
        The study's ``need_measure`` or ``None`` for the default order
        (:data:`NEED_MEASURE_FALLBACK`).

    Returns
    -------
    tuple
        ``(measure, warnings)``.

    Raises
    ------
    InputError
        The requested measure (or every fallback) has no counts in the ward table.
    """
    def has_data(measure: str) -> bool:
        column = f"{measure}_count"
        return column in wards and wards[column].notna().any()

    if requested is not None:
        if not has_data(requested):
            raise InputError(f"[gaps] need_measure '{requested}' has no data in this study; "
                             "name a measure the study's layers provide")
        return requested, []
    for measure in NEED_MEASURE_FALLBACK:
        if has_data(measure):
            notes = [] if measure == NEED_MEASURE_FALLBACK[0] else [
                f"gaps: no drug possession data, so need is judged on {MEASURE_LABELS[measure]}"]
            return measure, notes
    raise InputError("[gaps] no drug offence counts (possession, drug_offences or trafficking) "
                     "in the ward table; outreach gaps need one of them")


@dataclass
class NeedAssessment:
    """Need per ward (arrays in ward-table order).

    Attributes
    ----------
    rate : numpy.ndarray
        Need rate per 1,000 residents (NaN: not assessed).
    percentile : numpy.ndarray
        Rank of the rate among assessed wards, in (0, 1]; 1 = highest. NaN: not assessed.
    high : numpy.ndarray
        Need is high under the need rule.
    reasons : list[list[str]]
        Per ward, the criteria met, in words.
    criteria_used : list[str]
        The criteria that could be applied (cluster columns may be absent).
    assessed : numpy.ndarray
        The ward has a resident population (so a rate).
    """

    rate: np.ndarray
    percentile: np.ndarray
    high: np.ndarray
    reasons: list[list[str]]
    criteria_used: list[str]
    assessed: np.ndarray


def assess_need(wards: pd.DataFrame, measure: str, settings: GapSettings,
                ) -> tuple[NeedAssessment, list[str]]:
    """Judge each ward's need for ``measure`` under the need rule.

    Parameters
    ----------
    wards
        The ward table (``population``, ``{measure}_rate_per_1000`` and, when the cluster
        stage ran, ``{measure}_lisa_label`` and ``{measure}_gi_bin``).
    measure
        The need measure.
    settings
        Gap settings (``need_rule``, ``top_rate_share``, ``gi_min_bin``).

    Returns
    -------
    tuple
        ``(NeedAssessment, warnings)``.
    """
    warnings: list[str] = []
    label = MEASURE_LABELS[measure]
    population = pd.to_numeric(wards["population"], errors="coerce").to_numpy(dtype=float)
    assessed = np.isfinite(population) & (population > 0)
    rate_col = f"{measure}_rate_per_1000"
    if rate_col in wards:
        rate = pd.to_numeric(wards[rate_col], errors="coerce").to_numpy(dtype=float)
    else:
        count = pd.to_numeric(wards[f"{measure}_count"], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = count / population * 1000.0
    rate = np.where(assessed, rate, np.nan)
    assessed &= np.isfinite(rate)

    n_assessed = int(assessed.sum())
    percentile = np.full(len(wards), np.nan)
    if n_assessed:
        percentile[assessed] = pd.Series(rate[assessed]).rank(method="average", pct=True)

    criteria = []
    n = len(wards)
    met = {c: np.zeros(n, dtype=bool) for c in NEED_CRITERIA}
    words: dict[str, list[str]] = {c: [""] * n for c in NEED_CRITERIA}
    lisa_col, gi_col = f"{measure}_lisa_label", f"{measure}_gi_bin"
    missing = [c for c in ("lisa", "gi") if c in settings.need_rule
               and (lisa_col if c == "lisa" else gi_col) not in wards]
    if missing:
        warnings.append(f"gaps: no cluster results for {label} ({', '.join(missing)}), so need "
                        "is judged on " + ("the rate alone" if "top_rate" in settings.need_rule
                                           else "the remaining criteria"))
    if "lisa" in settings.need_rule and lisa_col in wards:
        criteria.append("lisa")
        met["lisa"] = (wards[lisa_col].astype("string").fillna("") == HIGH_HIGH).to_numpy()
        words["lisa"] = [f"{HIGH_HIGH} {label} cluster"] * n
    if "gi" in settings.need_rule and gi_col in wards:
        criteria.append("gi")
        gi = pd.to_numeric(wards[gi_col], errors="coerce").to_numpy(dtype=float)
        met["gi"] = np.nan_to_num(gi, nan=-9) >= settings.gi_min_bin
        words["gi"] = [f"{label} {gi_bin_text(int(b), 'reason')}" if np.isfinite(b) and b >= 1 else ""
                       for b in gi]
    if "top_rate" in settings.need_rule:
        criteria.append("top_rate")
        if n_assessed:
            cut = np.quantile(rate[assessed], 1.0 - settings.top_rate_share)
            # A rate of zero is never "high", even when most wards have none.
            met["top_rate"] = assessed & (rate >= cut) & (rate > 0)
        top_share = share_words(settings.top_rate_share)
        words["top_rate"] = [f"{label} rate in the {top_share} ({per_1000_text(r)})"
                             if np.isfinite(r) else "" for r in rate]
    high = np.zeros(n, dtype=bool)
    reasons: list[list[str]] = [[] for _ in range(n)]
    for c in criteria:
        high |= met[c]
        for i in np.flatnonzero(met[c]):
            reasons[i].append(words[c][i])
    high &= assessed
    if not criteria:
        warnings.append("gaps: no need criterion could be applied; no ward is an outreach gap")
    return NeedAssessment(rate, percentile, high, reasons, criteria, assessed), warnings

