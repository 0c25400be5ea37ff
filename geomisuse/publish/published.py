"""The ward and monthly tables as published: counts protected, rates of hidden counts blanked.

:func:`study_protection` protects every published count of a run once
(:func:`.disclosure.protect_study`: the policy per source, primary and secondary suppression
and the LP audit over every relation between ward, monthly, half-period and borough figures);
:func:`published_wards`, :func:`published_monthly` and :func:`published_yearly` apply it to
the run's ward table and monthly and yearly counts, and the map and briefings read borough totals and half-period counts from it.
The exports (:mod:`.tables`), the map and the briefings all publish these tables, so this
module sits below all three and imports none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..config import MEASURES, SUPPRESSION_THRESHOLD
from .text import PER_1000_PATTERN
from .disclosure import STATISTIC_SUFFIXES, StudyProtection, blank_derived, protect_study, rounded_counts

if TYPE_CHECKING:  # publishing reads a run's results; it never drives the pipeline
    from ..pipeline import StudyRun
    from ..config import PublishSettings


#: The protection of the latest run published, so that tables, map and briefings share it.
_LAST: dict = {}


def study_protection(run: StudyRun, settings: PublishSettings) -> StudyProtection:
    """Every published count of a run, protected once (:func:`geomisuse.publish.disclosure.protect_study`)
    and shared by every output of the run."""
    threshold = int(getattr(settings, "suppression_threshold", SUPPRESSION_THRESHOLD))
    rule = getattr(settings, "rule", "threshold")
    suppress = getattr(settings, "suppress", "sources")
    unsuppressed = bool(getattr(settings, "unsuppressed", False))
    key = (id(run), id(run.wards), id(run.monthly), id(getattr(run, "yearly", None)), threshold, rule, suppress,
           unsuppressed)
    if _LAST.get("key") != key or _LAST.get("wards") is not run.wards:
        protection = protect_study(run, threshold, rule, suppress, unsuppressed, seed=int(run.study.seed))
        _LAST.clear()
        _LAST.update(key=key, wards=run.wards, protection=protection)
    return _LAST["protection"]


def published_wards(run: StudyRun, settings: PublishSettings) -> pd.DataFrame:
    """The ward table as published (:class:`geomisuse.publish.disclosure.StudyProtection`).

    Counts of protected measures are replaced by their published text; rates are blanked
    where the count is hidden (and computed from the rounded count under ``round5``); the
    statistics that are functions of a protected measure's counts (LISA I, z and p, Gi* z
    and p) are withheld (their labels and bins stay), and so are gap scores built on a
    protected need measure, whose reasons lose the rate of a hidden count. Public measures
    are published as they are. With ``settings.unsuppressed`` the real values are returned.
    """
    if settings.unsuppressed:
        return run.wards.copy()
    protection = study_protection(run, settings)
    published = run.wards.copy()
    for column, text in protection.ward_text.items():
        published[column] = text
        rate = column.replace("_count", "_rate_per_1000")
        if rate == column or rate not in published:
            continue
        hidden = protection.ward_hidden[column]
        if protection.rule == "round5":
            counts = rounded_counts(run.wards[column].astype("float64").to_numpy())
            population = pd.to_numeric(run.wards["population"], errors="coerce").to_numpy(dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                rates = np.where(population > 0, np.round(counts / population * 1000, 2), np.nan)
            published[rate] = np.where(published[rate].notna(), rates, np.nan)
        published[rate] = published[rate].where(~hidden)
    for measure in [m for m in MEASURES if protection.protected(m)]:
        for suffix in STATISTIC_SUFFIXES:
            if f"{measure}{suffix}" in published:
                published[f"{measure}{suffix}"] = np.nan
    if "gap_need_measure" in published:
        need_protected = published["gap_need_measure"].map(lambda m: protection.protected(str(m))).astype(bool)
        if "gap_score" in published:
            published["gap_score"] = published["gap_score"].where(~need_protected)
        if "gap_reason" in published:
            # The reason quotes the need rate; with the population that would give a hidden count back.
            need_hidden = pd.Series([bool(protection.ward_hidden[f"{m}_count"][k])
                                     if f"{m}_count" in protection.ward_hidden else False
                                     for k, m in enumerate(published["gap_need_measure"])], index=published.index)
            if protection.rule == "round5":
                need_hidden |= need_protected
            published["gap_reason"] = published["gap_reason"].where(
                ~need_hidden,
                published["gap_reason"].astype(str).str.replace(PER_1000_PATTERN, "rate not shown (small count)",
                                                                regex=True))
    # A change next to one of its counts gives the other back: shown only where both counts are.
    hidden = pd.DataFrame(protection.ward_hidden, index=published.index)
    published = blank_derived(published, hidden, _change_sources())
    if protection.rule == "round5":
        # Rounded counts publish no exact change: the change figures of protected measures go.
        for measure in [m for m in MEASURES if protection.protected(m)]:
            for suffix in CHANGE_SUFFIXES:
                if f"{measure}{suffix}" in published:
                    published[f"{measure}{suffix}"] = np.nan
    return published




#: Columns of the test of change (clusters/change.py), each computed from the two counts.
CHANGE_SUFFIXES = ("_change", "_change_pct", "_change_p", "_change_p_adjusted", "_change_significant")


def _change_sources() -> dict[str, list[str]]:
    """Change column -> the counts it is computed from (``M_count`` and ``M_previous_count``)."""
    return {f"{m}{suffix}": [f"{m}_count", f"{m}_previous_count"] for m in MEASURES for suffix in CHANGE_SUFFIXES}


def published_monthly(run: StudyRun, settings: PublishSettings) -> pd.DataFrame:
    """Monthly counts as published: protected measures from the study's protection (a
    ward's months, its period count, its half-period counts and the borough totals are
    protected together), public measures as they are."""
    monthly = run.monthly
    if settings.unsuppressed or monthly.empty:
        return monthly.copy()
    protection = study_protection(run, settings)
    return _with_grids(monthly, protection.monthly_text, run.wards["ward_code"].to_numpy(), list(run.months), "month")


def published_yearly(run: StudyRun, settings: PublishSettings) -> pd.DataFrame:
    """Yearly counts (``wards_yearly.csv``) as published: protected measures from the study's
    protection (a ward's years, its months and its period count are protected together),
    public measures as they are.

    Returns
    -------
    pandas.DataFrame
        ``ward_code``, ``year`` and the ``M_count`` columns (empty without a yearly table).
    """
    yearly = getattr(run, "yearly", None)
    if yearly is None:
        return pd.DataFrame(columns=["ward_code", "year"])
    if settings.unsuppressed or yearly.empty:
        return yearly.copy()
    protection = study_protection(run, settings)
    return _with_grids(yearly, protection.yearly_text, run.wards["ward_code"].to_numpy(), protection.years, "year")


def _with_grids(table: pd.DataFrame, grids: dict[str, np.ndarray], codes: np.ndarray, steps: list[str],
                step: str) -> pd.DataFrame:
    """``table`` (long: ``ward_code``, ``step``, counts) with each column in ``grids`` replaced
    by its published grid (wards x steps, as protected)."""
    published = table.copy()
    for column, grid in grids.items():
        frame = pd.DataFrame(grid, index=codes, columns=list(steps))
        long = frame.rename_axis(index="ward_code", columns=step).stack().rename(column).reset_index()
        published = published.drop(columns=column).merge(long, on=["ward_code", step], how="left")
    return published[table.columns]


def published_emerging(run: StudyRun, settings: PublishSettings) -> pd.DataFrame:
    """The space-time Gi* bins of ``emerging_hotspots.csv`` as published.

    A step's Gi* z is linear in the monthly counts of a ward and its neighbours, like the
    cross-sectional ``M_gi_z``; so for a protected measure the z and p are withheld, as there,
    and only the bins (hot or cold at 90/95/99 %) stay.
    """
    table = run.emerging_bins.copy()
    protection = study_protection(run, settings)
    for measure in [m for m in MEASURES if protection.protected(m)]:
        for column in (f"{measure}_gi_z", f"{measure}_gi_p", f"{measure}_gi_p_adjusted"):
            if column in table:
                table[column] = np.nan
    return table
