"""Disclosure control for published outputs.

Counts from 1 to ``threshold - 1`` are *primary* suppressed and shown as ``<5`` (threshold
5). A suppressed cell must not be recoverable by subtraction from a published total, so
where a row or column of parts has a published total and exactly one part is suppressed, the
smallest other non-zero part is suppressed too (*secondary* suppression, shown as ``c``, the
ONS "confidential" mark), repeated until no row or column has a lone suppressed cell.
Rates are not computed from suppressed cells. The analysis itself uses the real values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Mark for a cell suppressed to protect another cell.
SECONDARY_MARK = "c"


def primary_mask(values: np.ndarray, threshold: int) -> np.ndarray:
    """Cells with a count from 1 to ``threshold - 1``."""
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return (values >= 1) & (values < threshold)


def secondary_mask(values: np.ndarray, suppressed: np.ndarray, row_totals: bool, column_totals: bool) -> np.ndarray:
    """Complementary suppression so that no suppressed cell can be recovered from a total.

    Parameters
    ----------
    values
        2-D array of counts (NaN for missing cells, which are never published as numbers).
    suppressed
        Primary mask, same shape.
    row_totals, column_totals
        Whether totals of each row / column are published (then a lone suppressed cell in
        that row / column needs a partner).

    Returns
    -------
    numpy.ndarray
        Boolean mask of the cells to suppress in addition to ``suppressed``.
    """
    values = np.asarray(values, dtype=float)
    hidden = np.array(suppressed, dtype=bool, copy=True)
    candidates = np.where(np.isnan(values) | (values == 0), np.inf, values)
    axes = ([1] if row_totals else []) + ([0] if column_totals else [])
    changed = True
    while changed:
        changed = False
        for axis in axes:
            lone = np.flatnonzero(hidden.sum(axis=axis) == 1)
            for line in lone:
                cells = candidates[line, :] if axis == 1 else candidates[:, line]
                mask = hidden[line, :] if axis == 1 else hidden[:, line]
                choice = np.where(mask, np.inf, cells)
                if not np.isfinite(choice).any():
                    continue  # the total itself is then a small count, suppressed on its own
                pick = int(np.argmin(choice))
                if axis == 1:
                    hidden[line, pick] = True
                else:
                    hidden[pick, line] = True
                changed = True
    return hidden & ~np.asarray(suppressed, dtype=bool)


def format_counts(values: np.ndarray, primary: np.ndarray, secondary: np.ndarray, threshold: int) -> np.ndarray:
    """Counts as published text: ``<threshold``, ``c``, blank for missing, else the integer."""
    values = np.asarray(values, dtype=float)
    out = np.where(np.isnan(values), "", np.char.mod("%d", np.nan_to_num(values).astype(np.int64)))
    out = out.astype(object)
    out[primary] = f"<{threshold}"
    out[secondary] = SECONDARY_MARK
    return out


def protect_table(frame: pd.DataFrame, count_columns: list[str], threshold: int,
                  row_total: str | None = None, column_totals: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Suppress the count columns of a table.

    Parameters
    ----------
    frame
        Table with integer (or float with NaN) count columns.
    count_columns
        The columns to protect together.
    threshold
        Smallest published non-zero count.
    row_total
        A published column that is the sum of ``count_columns`` in each row (it is protected
        on its own and makes each row's parts need secondary suppression).
    column_totals
        Whether column totals over all rows are published (e.g. a borough total).

    Returns
    -------
    (published, hidden)
        ``published``: copy of ``frame`` with the protected columns as text;
        ``hidden``: boolean frame of the cells not shown as numbers (for blanking rates).
    """
    columns = list(count_columns) + ([row_total] if row_total else [])
    values = frame[columns].astype("float64").to_numpy()
    primary = primary_mask(values, threshold)
    secondary = np.zeros_like(primary)
    parts = len(count_columns)
    secondary[:, :parts] = secondary_mask(values[:, :parts], primary[:, :parts], row_total is not None, column_totals)
    if row_total:
        secondary[:, parts:] = secondary_mask(values[:, parts:], primary[:, parts:], False, column_totals)
    published = frame.copy()
    text = format_counts(values, primary, secondary, threshold)
    for i, column in enumerate(columns):
        published[column] = text[:, i]
    hidden = pd.DataFrame(primary | secondary, index=frame.index, columns=columns)
    return published, hidden


def suppress_value(value: float | int | None, threshold: int) -> str:
    """One count as published text (primary suppression only; for single figures in prose)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    value = int(value)
    return f"<{threshold}" if 1 <= value < threshold else str(value)
