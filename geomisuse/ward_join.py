"""Point-to-ward join: which ward each point falls in, fast and deterministic.

The study area is covered by a regular grid. A cell that lies wholly inside one ward answers
for every point in it by lookup; only points in cells that touch a ward boundary (a few per
cent of them) are tested exactly against the polygons. A point on a shared ward edge, or on
a vertex shared by several wards, is counted in the ward that comes first in ward-code order,
so every point is counted at most once and always in the same ward.

:func:`assign_wards` works on one chunk of coordinates and the :class:`WardLocator` pickles,
so the join can run per partition on a distributed engine, e.g.
``ddf.map_partitions(lambda df: assign_wards(df.x.values, df.y.values, locator))``.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely import STRtree

#: Grid cell code for cells that intersect a ward boundary (points there are tested exactly).
_BOUNDARY = -2
#: Returned for points outside every ward.
OUTSIDE = -1


class WardLocator:
    """A spatial index of ward polygons answering "which ward is this point in?".

    Parameters
    ----------
    polygons
        Ward polygons in ward-code order, in a projected CRS (metres).
    cells_across
        Grid cells along the longer side of the study area's bounding box. More cells mean
        fewer exact tests but a larger index; 512 suits a borough and all of London alike.

    Attributes
    ----------
    grid
        ``int32`` array (rows = y, columns = x): a ward position, :data:`OUTSIDE`, or the
        boundary code.
    origin, cell_size
        Grid origin (x, y) and cell size in CRS units.
    """

    def __init__(self, polygons: np.ndarray, cells_across: int = 512) -> None:
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

    def _classify_cells(self) -> np.ndarray:
        rows, cols = self.shape
        x0, y0 = self.origin
        xs = x0 + np.arange(cols) * self.cell_size
        ys = y0 + np.arange(rows) * self.cell_size
        gx, gy = np.meshgrid(xs, ys)
        boxes = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + self.cell_size, gy.ravel() + self.cell_size)
        cell_index, ward_index = self.tree.query(boxes, predicate="intersects")
        hits = np.bincount(cell_index, minlength=boxes.size)
        grid = np.full(boxes.size, OUTSIDE, dtype=np.int32)
        grid[hits > 1] = _BOUNDARY
        single = hits[cell_index] == 1
        cells, wards = cell_index[single], ward_index[single]
        inside = shapely.contains_properly(self.polygons[wards], boxes[cells])
        grid[cells[inside]] = wards[inside]
        grid[cells[~inside]] = _BOUNDARY
        return grid.reshape(self.shape)

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
        col = np.floor((x - self.origin[0]) / self.cell_size)
        row = np.floor((y - self.origin[1]) / self.cell_size)
        on_grid = (col >= 0) & (col < self.shape[1]) & (row >= 0) & (row < self.shape[0])
        result = np.full(x.shape, OUTSIDE, dtype=np.int32)
        result[on_grid] = self.grid[row[on_grid].astype(np.intp), col[on_grid].astype(np.intp)]
        exact = np.flatnonzero(result == _BOUNDARY)
        result[exact] = OUTSIDE
        if exact.size:
            points = shapely.points(x[exact], y[exact])
            point_index, ward_index = self.tree.query(points, predicate="intersects")
            # Smallest ward position per point: the ward-code order breaks ties on shared edges.
            first = np.full(exact.size, np.iinfo(np.int32).max, dtype=np.int64)
            np.minimum.at(first, point_index, ward_index)
            found = first != np.iinfo(np.int32).max
            result[exact[found]] = first[found]
        return result


def assign_wards(x: np.ndarray, y: np.ndarray, locator: WardLocator) -> np.ndarray:
    """Ward position of each point of one chunk (see :meth:`WardLocator.locate`)."""
    return locator.locate(x, y)
