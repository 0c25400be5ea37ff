"""Square grid cells of points (EPSG:27700) for heat maps, each cell keyed as one integer.

The map's heat layer counts police.uk points per cell; the finest cell is
:data:`HEAT_CELL_M` metres and doubles until few enough cells hold points. Cells are indexed
from the grid's origin (column ``floor(x / cell)``, row ``floor(y / cell)``), so that cell
counts worked out in different places (one file on each Dask worker) add up to what all the
points give at once, and a coarser cell is found from the finer one's index by integer
division: ``floor(x / 2c) == floor(x / c) // 2`` exactly in floating point, because halving
is exact.

A cell's key is ``(column + offset) * rows + (row + offset)``: one integer whose order is
the order of (column, row) pairs, and a 1-D ``np.unique`` on keys is many times faster than
``np.unique(axis=0)`` on pairs (8 s for 6 M points).
"""

from __future__ import annotations

import numpy as np

#: Finest heat map grid cell (metres).
HEAT_CELL_M = 25.0

#: Cell indices are shifted by this much to be non-negative in a key: 2**20 cells of 25 m is
#: over 26,000 km, more than any British National Grid coordinate of Great Britain.
_OFFSET = 1 << 20
#: Rows in a key (column and row both fit in 21 bits, so a key fits in 42).
_ROWS = 1 << 21


def cell_keys(x: np.ndarray, y: np.ndarray, cell_m: float = HEAT_CELL_M) -> np.ndarray:
    """The key of the ``cell_m`` cell holding each point (finite EPSG:27700 metres).

    Parameters
    ----------
    x, y
        Easting and northing of the points.
    cell_m
        The cell size in metres.

    Returns
    -------
    numpy.ndarray
        int64 keys, one per point.
    """
    column = np.floor(np.asarray(x, dtype="float64") / cell_m).astype(np.int64)
    row = np.floor(np.asarray(y, dtype="float64") / cell_m).astype(np.int64)
    return _key(column, row)


def _key(column: np.ndarray, row: np.ndarray) -> np.ndarray:
    return (column + _OFFSET) * _ROWS + (row + _OFFSET)


def _cells(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return keys // _ROWS - _OFFSET, keys % _ROWS - _OFFSET


def coarsen_cells(keys: np.ndarray, counts: np.ndarray | None = None, max_cells: int = 10_000,
                  cell_m: float = HEAT_CELL_M) -> tuple[np.ndarray, np.ndarray, float]:
    """Points (or point counts) per cell, the cell doubled until at most ``max_cells`` hold any.

    Parameters
    ----------
    keys
        Cell keys at ``cell_m`` (:func:`cell_keys`), one per point or per counted cell (keys may
        repeat: their counts add up).
    counts
        Points in each keyed cell (``None``: one point per key).
    max_cells
        The most cells the result may have.
    cell_m
        The size of the cells ``keys`` index.

    Returns
    -------
    (cells, counts, cell_m)
        ``cells``: ``(n, 2)`` int64 column and row indices of the cells holding points, in
        (column, row) order; ``counts``: the points in each (int64); ``cell_m``: the cell size.
    """
    keys = np.asarray(keys, dtype=np.int64)
    while True:
        unique, inverse = np.unique(keys, return_inverse=True)
        if len(unique) <= max_cells:
            break
        column, row = _cells(unique)
        # Only the distinct cells are coarsened; the points follow through ``inverse``.
        keys = _key(column // 2, row // 2)[inverse]
        cell_m *= 2
    # float64 weights add whole numbers exactly (below 2**53).
    weights = None if counts is None else np.asarray(counts, dtype="float64")
    totals = np.bincount(inverse.ravel(), weights=weights, minlength=len(unique)).astype(np.int64)
    column, row = _cells(unique)
    return np.column_stack([column, row]), totals, cell_m
