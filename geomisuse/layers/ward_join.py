"""Point-to-ward join: which ward each point falls in, fast and deterministic.

The study area is covered by a regular grid. Cells crossed by a ward boundary are marked;
every other cell lies wholly inside one ward (or outside them all) and answers for the
points in it by lookup. Only points in boundary cells (a few per cent) are tested exactly
against the polygons. A point on a shared ward edge, or on a vertex shared by several
wards, is counted in the ward that comes first in ward-code order, so every point is
counted at most once and always in the same ward.

:func:`assign_wards` works on one chunk of coordinates and the :class:`WardLocator` pickles,
so the join can run per partition on a distributed engine, e.g.
``ddf.map_partitions(lambda df: assign_wards(df.x.values, df.y.values, locator))``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from scipy import ndimage
from shapely import STRtree

#: Returned for points outside every ward.
OUTSIDE = -1
#: Grid code of cells crossed by a ward boundary (their points are tested exactly).
_BOUNDARY = -2


class WardLocator:
    """A spatial index of ward polygons answering "which ward is this point in?".

    Parameters
    ----------
    polygons
        Ward polygons in ward-code order, in a projected CRS (metres).
    cells_across
        Grid cells along the longer side of the study area's bounding box. More cells mean
        fewer exact tests and a larger grid (``cells_across**2`` int32 at most: 16 MB at 2,048).

    Attributes
    ----------
    grid
        ``int32`` array (rows = y, columns = x): a ward position, :data:`OUTSIDE`, or the
        boundary code.
    origin, cell_size
        Grid origin (x, y) and cell size in CRS units.
    """

    def __init__(self, polygons: np.ndarray, cells_across: int = 2048) -> None:
        self.polygons = np.asarray(polygons, dtype=object)
        minx, miny, maxx, maxy = shapely.total_bounds(self.polygons)
        self.cell_size = max(maxx - minx, maxy - miny, 1.0) / cells_across
        # One cell of padding so that points on the outer bounding box still fall in the grid.
        self.origin = (minx - self.cell_size, miny - self.cell_size)
        self.shape = (int(np.ceil((maxy - miny) / self.cell_size)) + 2,
                      int(np.ceil((maxx - minx) / self.cell_size)) + 2)
        self._tree: STRtree | None = None
        self.grid = self._classify_cells()

    @property
    def tree(self) -> STRtree:
        """STRtree over the polygons (built lazily: it does not pickle)."""
        if self._tree is None:
            shapely.prepare(self.polygons)
            self._tree = STRtree(self.polygons)
        return self._tree

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_tree"] = None
        return state

    def _cells_of(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.floor((y - self.origin[1]) / self.cell_size), np.floor((x - self.origin[0]) / self.cell_size))

    def _classify_cells(self) -> np.ndarray:
        # Mark every cell a boundary passes through: sample each ring densely (under half a
        # cell apart) and widen the marks by one cell, so a boundary clipping a cell corner
        # between two samples is still caught.
        lines = shapely.get_parts(shapely.boundary(self.polygons))
        coords, line_of = shapely.get_coordinates(lines, return_index=True)
        same_line = line_of[:-1] == line_of[1:]
        start, end = coords[:-1][same_line], coords[1:][same_line]
        steps = np.maximum(np.ceil(np.hypot(*(end - start).T) / (self.cell_size / 2)), 1).astype(np.intp)
        offsets = np.repeat(np.cumsum(steps) - steps, steps)
        t = (np.arange(steps.sum()) - offsets) / np.repeat(steps, steps)
        samples = np.vstack([np.repeat(start, steps, axis=0) + np.repeat(end - start, steps, axis=0) * t[:, None],
                             end])
        row, col = self._cells_of(samples[:, 0], samples[:, 1])
        boundary = np.zeros(self.shape, dtype=bool)
        boundary[row.astype(np.intp), col.astype(np.intp)] = True
        boundary = ndimage.binary_dilation(boundary, structure=np.ones((3, 3), dtype=bool))
        # Cells not touched by a boundary form connected regions, each wholly inside one ward
        # or outside all of them: one exact test per region labels all its cells.
        regions, count = ndimage.label(~boundary)
        grid = np.full(self.shape, _BOUNDARY, dtype=np.int32)
        if count:
            first_row, first_col = _first_cells(regions, count)
            centres_row = first_row.astype(float) + 0.5
            centres_col = first_col.astype(float) + 0.5
            ward = self._exact(self.origin[0] + centres_col * self.cell_size,
                               self.origin[1] + centres_row * self.cell_size)
            lookup = np.concatenate([[_BOUNDARY], ward]).astype(np.int32)
            grid = lookup[regions]
        return grid

    def _exact(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Exact point-in-polygon; ties on shared edges go to the smallest ward position."""
        if not x.size:
            return np.full(x.shape, OUTSIDE, dtype=np.int32)
        return first_ward_containing(self.tree, shapely.points(x, y))

    def locate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Ward position (0-based, ward-code order) of each point, or :data:`OUTSIDE`.

        Parameters
        ----------
        x, y
            Point coordinates in the polygons' CRS. NaN coordinates are outside.

        Returns
        -------
        numpy.ndarray
            ``int32`` ward positions.
        """
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        row, col = self._cells_of(x, y)
        on_grid = (col >= 0) & (col < self.shape[1]) & (row >= 0) & (row < self.shape[0])
        result = np.full(x.shape, OUTSIDE, dtype=np.int32)
        result[on_grid] = self.grid[row[on_grid].astype(np.intp), col[on_grid].astype(np.intp)]
        exact = np.flatnonzero(result == _BOUNDARY)
        if exact.size:
            # Many points share a location (police.uk snaps crimes to street points): test each
            # once, found by hashing the pair as one complex number (a 1-D factorize is many
            # times faster than np.unique(axis=0); -0.0 and 0.0 are one location, as they are
            # one point).
            pairs = np.empty(exact.size, dtype=np.complex128)
            pairs.real, pairs.imag = x[exact], y[exact]
            inverse, xy = pd.factorize(pairs)
            result[exact] = self._exact(xy.real.copy(), xy.imag.copy())[inverse]
        return result


def _first_cells(regions: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """A cell (row, column) of each of the ``count`` labelled regions (labels ``1..count``).

    Any cell of a region answers for all of it. ``ndimage.label`` numbers regions in the order
    it meets them in the grid, so the cells where the running maximum of the labels rises are
    each region's first: one pass instead of ``ndimage.minimum_position``'s sort of the grid
    (which is used should the labels come in another order).
    """
    flat = regions.ravel()
    rises = np.flatnonzero(np.diff(np.maximum.accumulate(flat), prepend=0) > 0)
    if len(rises) == count and np.array_equal(flat[rises], np.arange(1, count + 1)):
        return np.divmod(rises, regions.shape[1])
    first = ndimage.minimum_position(regions > 0, regions, index=np.arange(1, count + 1))
    return np.array([p[0] for p in first], dtype=np.intp), np.array([p[1] for p in first], dtype=np.intp)


def first_ward_containing(tree: STRtree, points: np.ndarray) -> np.ndarray:
    """The point-in-ward rule itself: the first ward (in ward-code order) each point touches.

    A point inside a ward, on its boundary, or on a vertex it shares with other wards
    belongs to the ward with the smallest position among those it intersects, so a point on a
    shared edge counts exactly once and always in the same ward. :class:`WardLocator` applies
    it to the points its grid cannot answer; the gap stage to resident and site points.

    Parameters
    ----------
    tree
        STRtree over the ward polygons in ward-code order.
    points
        Shapely point geometries (missing or empty ones are outside).

    Returns
    -------
    numpy.ndarray
        ``int32`` ward positions, :data:`OUTSIDE` for points in no ward.
    """
    points = np.asarray(points, dtype=object)
    result = np.full(points.shape, OUTSIDE, dtype=np.int32)
    if not points.size:
        return result
    point_index, ward_index = tree.query(points, predicate="intersects")
    first = np.full(points.size, np.iinfo(np.int32).max, dtype=np.int64)
    np.minimum.at(first, point_index, ward_index)
    found = first != np.iinfo(np.int32).max
    result[found] = first[found]
    return result


def assign_wards(x: np.ndarray, y: np.ndarray, locator: WardLocator) -> np.ndarray:
    """Ward position of each point of one chunk (see :meth:`WardLocator.locate`)."""
    return locator.locate(x, y)
