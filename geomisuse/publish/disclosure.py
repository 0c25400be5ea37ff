"""Disclosure control for published outputs.

Counts from 1 to ``threshold - 1`` are *primary* suppressed and shown as ``<5`` (threshold
5). A suppressed cell must not be recoverable by arithmetic on published figures. Published
figures are tied together by additive relations — a ward's months add up to its period
count, the wards add up to a borough total, possession and trafficking add up to all drug
offences — and any relation with exactly one hidden member gives that member away. So, for
every relation with exactly one hidden member, the smallest other non-zero member is hidden
too (*secondary* suppression, shown as ``c``, the ONS "confidential" mark), repeated until
no relation has a lone hidden member. Rates are not computed from hidden cells. The analysis
itself uses the real values.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

#: Mark for a cell suppressed to protect another cell.
SECONDARY_MARK = "c"
#: Partner choice: a total is hidden in preference to a part up to twice its size.
TOTAL_COST_FACTOR = 0.5


def primary_mask(values: np.ndarray, threshold: int) -> np.ndarray:
    """Cells with a count from 1 to ``threshold - 1``."""
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return (values >= 1) & (values < threshold)


def link_suppression(values: np.ndarray, hidden: np.ndarray, relations: Sequence[np.ndarray],
                     fixed: np.ndarray | None = None, cost_factor: np.ndarray | None = None) -> np.ndarray:
    """Secondary suppression over additive relations between cells.

    Parameters
    ----------
    values
        1-D array of every cell's count (NaN for cells with no data).
    hidden
        Cells already hidden (primary suppression, or decided elsewhere).
    relations
        Each an array of cell positions whose values are tied by one published linear relation
        (parts and their total, or parts of a total published elsewhere).
    fixed
        Cells whose status was decided elsewhere (e.g. a ward-table count when protecting
        monthly counts): they count as members but are never chosen as partners.
    cost_factor
        Multiplies each cell's value when choosing a partner (the cheapest is hidden). Totals
        get a lower factor than their parts, so that a small trafficking count costs the
        all-drug-offences figure rather than the possession figure analysts look at.

    Returns
    -------
    numpy.ndarray
        The final hidden mask (includes ``hidden``).
    """
    values = np.asarray(values, dtype=float)
    hidden = np.array(hidden, dtype=bool, copy=True)
    unusable = np.isnan(values) | (values == 0)
    if fixed is not None:
        unusable |= fixed
    cost = np.where(unusable, np.inf, values * (1.0 if cost_factor is None else cost_factor))
    changed = True
    while changed:
        changed = False
        for members in relations:
            if hidden[members].sum() != 1:
                continue
            choice = np.where(hidden[members], np.inf, cost[members])
            if np.isfinite(choice).any():  # else the lone cell equals a total that is small itself
                hidden[members[int(np.argmin(choice))]] = True
                changed = True
    return hidden


def format_counts(values: np.ndarray, primary: np.ndarray, secondary: np.ndarray, threshold: int) -> np.ndarray:
    """Counts as published text: ``<threshold``, ``c``, blank for missing, else the integer."""
    values = np.asarray(values, dtype=float)
    out = np.where(np.isnan(values), "", np.char.mod("%d", np.nan_to_num(values).astype(np.int64))).astype(object)
    out[primary] = f"<{threshold}"
    out[secondary] = SECONDARY_MARK
    return out


class CellGrid:
    """Named count columns of a table laid out as one vector of cells, for :func:`link_suppression`.

    Parameters
    ----------
    frame
        The table; ``columns`` are its count columns (rows are e.g. wards).
    columns
        Count columns to protect.
    """

    def __init__(self, frame: pd.DataFrame, columns: list[str]) -> None:
        self.frame = frame
        self.columns = list(columns)
        self.rows = len(frame)
        self.values = frame[self.columns].astype("float64").to_numpy().T.ravel()

    def cells(self, column: str) -> np.ndarray:
        """Cell positions of one column (one per row)."""
        start = self.columns.index(column) * self.rows
        return np.arange(start, start + self.rows)

    def column_relations(self) -> list[np.ndarray]:
        """Each column adds up to a published total (e.g. the borough's)."""
        return [self.cells(c) for c in self.columns]

    def row_relations(self, parts: list[str], total: str) -> list[np.ndarray]:
        """In every row, ``parts`` add up to ``total``."""
        cells = np.column_stack([self.cells(c) for c in parts + [total]])
        return list(cells)

    def publish(self, hidden: np.ndarray, primary: np.ndarray, threshold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The frame with the protected columns as text, and a frame of hidden flags."""
        text = format_counts(self.values, primary, hidden & ~primary, threshold).reshape(len(self.columns), self.rows)
        published = self.frame.copy()
        flags = pd.DataFrame(hidden.reshape(len(self.columns), self.rows).T, index=self.frame.index,
                             columns=self.columns)
        for i, column in enumerate(self.columns):
            published[column] = text[i]
        return published, flags


def protect_table(frame: pd.DataFrame, count_columns: list[str], threshold: int,
                  additive: Sequence[tuple[list[str], str]] = (), column_totals: bool = True
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Suppress the count columns of a table, primary and secondary.

    Parameters
    ----------
    frame
        Table with count columns (integers, or floats with NaN).
    count_columns
        The columns to protect (all of them together: relations may cross columns).
    threshold
        Smallest published non-zero count.
    additive
        ``(parts, total)`` column groups where the parts add up to the total in every row
        (e.g. possession + trafficking = all drug offences).
    column_totals
        Whether each column's total over all rows may be published (e.g. a borough total).

    Returns
    -------
    (published, hidden)
        ``published``: copy of ``frame`` with the protected columns as text;
        ``hidden``: boolean frame of the cells not shown as numbers (for blanking rates).
    """
    grid = CellGrid(frame, count_columns)
    primary = primary_mask(grid.values, threshold)
    relations = grid.column_relations() if column_totals else []
    factor = np.ones_like(grid.values)
    for parts, total in additive:
        relations += grid.row_relations(parts, total)
        factor[grid.cells(total)] = TOTAL_COST_FACTOR
    hidden = link_suppression(grid.values, primary, relations, cost_factor=factor)
    return grid.publish(hidden, primary, threshold)


def blank_derived(published: pd.DataFrame, hidden: pd.DataFrame, derived: dict[str, list[str]]) -> pd.DataFrame:
    """Empty every figure computed from a hidden count (a change, its percentage, its p-value).

    A change ``a - b`` next to a published ``b`` gives ``a`` back, and so does the p-value of a
    test of ``a`` against ``b``; such figures are shown only where every count they use is.

    Parameters
    ----------
    published
        The table as it will be published (changed in a copy).
    hidden
        Boolean frame of hidden count cells (from :func:`protect_table`), same index.
    derived
        Derived column -> the count columns it is computed from.

    Returns
    -------
    pandas.DataFrame
        A copy with the derived cells emptied wherever one of their counts is hidden.
    """
    out = published.copy()
    for column, sources in derived.items():
        if column not in out:
            continue
        mask = np.zeros(len(out), dtype=bool)
        for source in sources:
            if source in hidden:
                mask |= hidden[source].to_numpy(dtype=bool)
        if mask.any():
            out[column] = out[column].mask(mask)
    return out


def suppress_value(value: float | int | None, threshold: int) -> str:
    """One count as published text (primary suppression only; for single figures in prose)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    value = int(value)
    return f"<{threshold}" if 1 <= value < threshold else str(value)


def secondary_mask(values: np.ndarray, suppressed: np.ndarray, row_totals: bool, column_totals: bool) -> np.ndarray:
    """Secondary suppression on a 2-D table whose row and/or column totals are published.

    Returns the cells to hide in addition to ``suppressed`` (see :func:`link_suppression`).
    """
    values = np.asarray(values, dtype=float)
    index = np.arange(values.size).reshape(values.shape)
    relations = (list(index) if row_totals else []) + (list(index.T) if column_totals else [])
    hidden = link_suppression(values.ravel(), np.asarray(suppressed, dtype=bool).ravel(), relations)
    return hidden.reshape(values.shape) & ~np.asarray(suppressed, dtype=bool)
