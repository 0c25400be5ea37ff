"""The ward and monthly tables as published: counts protected, rates of hidden counts blanked.

:func:`published_wards` and :func:`published_monthly` apply :mod:`.disclosure` to a run's
ward table and monthly counts with the additive relations between them (a ward's months add
up to its period count, the wards to a borough total, MPS possession and trafficking to all
drug offences). The exports (:mod:`.tables`), the map and the briefings all publish these
tables, so this module sits below all three and imports none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..config import MEASURES
from .text import PER_1000_PATTERN
from .disclosure import TOTAL_COST_FACTOR, format_counts, link_suppression, primary_mask, protect_table

if TYPE_CHECKING:  # publishing reads a run's results; it never drives the pipeline
    from ..pipeline import StudyRun
    from ..config import PublishSettings


def _additive_groups(run: StudyRun, suffix: str) -> list[tuple[list[str], str]]:
    """MPS possession and trafficking add up to all drug offences (in every ward and month)."""
    sources = run.sources
    parts = [m for m in ("possession", "trafficking") if sources.get(m) == "mps_ward"]
    if parts and sources.get("drug_offences") == "mps_ward":
        return [([f"{m}{suffix}" for m in parts], f"drug_offences{suffix}")]
    return []


def _protected_ward_columns(run: StudyRun) -> list[str]:
    wards = run.wards
    columns = [f"{m}{suffix}" for suffix in ("_count", "_previous_count") for m in MEASURES
               if m in run.measures and f"{m}{suffix}" in wards]
    return columns + [c for c in ("police_uk_drugs_count", "police_uk_asb_count") if c in wards]


def _protect_wards(run: StudyRun, threshold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    columns = _protected_ward_columns(run)
    additive = [(parts, total) for suffix in ("_count", "_previous_count")
                for parts, total in _additive_groups(run, suffix) if total in columns]
    return protect_table(run.wards, columns, threshold, additive=additive, column_totals=True)


def published_wards(run: StudyRun, settings: PublishSettings) -> pd.DataFrame:
    """The ward table as published: counts suppressed and rates blanked where a count is hidden.

    All count columns are protected together: each column against its borough total, and
    MPS possession and trafficking against all drug offences. With ``settings.unsuppressed``
    the real values are returned unchanged.
    """
    if settings.unsuppressed:
        return run.wards.copy()
    published, hidden = _protect_wards(run, int(settings.suppression_threshold))
    for column in hidden.columns:
        rate = column.replace("_count", "_rate_per_1000")
        if rate != column and rate in published:
            published[rate] = published[rate].where(~hidden[column])
    if "gap_reason" in published and "gap_need_measure" in published:
        # The reason quotes the need rate; with the population that would give a hidden count back.
        need_hidden = [bool(hidden.at[i, f"{m}_count"]) if f"{m}_count" in hidden else False
                       for i, m in zip(published.index, published["gap_need_measure"])]
        published["gap_reason"] = published["gap_reason"].where(
            ~pd.Series(need_hidden, index=published.index),
            published["gap_reason"].astype(str).str.replace(PER_1000_PATTERN, "rate not shown (small count)", regex=True))
    return published




def published_monthly(run: StudyRun, settings: PublishSettings) -> pd.DataFrame:
    """Monthly counts as published.

    Protected together with the published ward table: a ward's months add up to its period
    count (as published, hidden or not), each month's wards add up to a borough total, and
    MPS possession and trafficking add up to all drug offences in every ward-month.
    """
    monthly = run.monthly
    if settings.unsuppressed:
        return monthly.copy()
    threshold = int(settings.suppression_threshold)
    _, ward_hidden = _protect_wards(run, threshold)
    columns = [c for c in monthly.columns if c.endswith("_count")]
    if not columns or monthly.empty:
        return monthly.copy()
    codes = run.wards["ward_code"].to_numpy()
    months = list(run.months)
    n_wards, n_months = len(codes), len(months)
    size = n_wards * n_months
    grids = [monthly.pivot(index="ward_code", columns="month", values=c).reindex(index=codes, columns=months)
             for c in columns]
    # Cells: each measure's wards x months grid, then the ward-table period counts, whose
    # published or hidden state is already decided (fixed).
    values = np.concatenate([g.to_numpy(dtype="float64").ravel() for g in grids]
                            + [run.wards[c].astype("float64").to_numpy() for c in columns])
    period_start = len(columns) * size
    fixed = np.arange(values.size) >= period_start
    primary = primary_mask(values, threshold) & ~fixed
    hidden = primary.copy()
    hidden[period_start:] = np.concatenate([ward_hidden[c].to_numpy() for c in columns])

    def grid_cells(column: str) -> np.ndarray:
        k = columns.index(column)
        return np.arange(k * size, (k + 1) * size).reshape(n_wards, n_months)

    relations: list[np.ndarray] = []
    for k, column in enumerate(columns):
        cells = grid_cells(column)
        period = period_start + k * n_wards + np.arange(n_wards)
        relations += [np.append(cells[w], period[w]) for w in range(n_wards)]
        relations += list(cells.T)
    factor = np.ones_like(values)
    for parts, total in _additive_groups(run, "_count"):
        if all(c in columns for c in parts + [total]):
            relations += list(np.stack([grid_cells(c).ravel() for c in parts + [total]], axis=1))
            factor[grid_cells(total).ravel()] = TOTAL_COST_FACTOR
    hidden = link_suppression(values, hidden, relations, fixed, factor)
    text = format_counts(values[:period_start], primary[:period_start], (hidden & ~primary)[:period_start],
                         threshold)
    published = monthly.copy()
    for k, column in enumerate(columns):
        grid = pd.DataFrame(text[k * size:(k + 1) * size].reshape(n_wards, n_months), index=codes, columns=months)
        long = grid.rename_axis(index="ward_code", columns="month").stack().rename(column).reset_index()
        published = published.drop(columns=column).merge(long, on=["ward_code", "month"], how="left")
    return published[monthly.columns]
