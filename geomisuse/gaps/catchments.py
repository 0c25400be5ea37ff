"""Walk catchments of the services, for the map: what a walk of the threshold reaches.

With a walking network a catchment is a **network isochrone**: the streets reachable from the
service within the walk (segments wholly within reach, and the reachable part of the segments
where the walk runs out), drawn as the union of the :data:`ISOCHRONE_CELL_M` grid cells those
streets pass through (the homes along them), simplified by :data:`ISOCHRONE_SIMPLIFY_M` so that
the map stays small. (Buffering the reached streets and dissolving the buffers gives nearly
the same shape but took 2-3 s per service on Camden; the cells' coverage union takes 0.1 s.)
Without a network it is the straight-line circle of radius ``threshold x speed / detour``.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse.csgraph import dijkstra

from ..config import ANALYSIS_CRS
from .network import WalkingNetwork
from .settings import GapSettings
from .walking import service_xy

#: Side (metres) of the grid cells an isochrone is made of.
ISOCHRONE_CELL_M = 50.0
#: Points are taken along the reached streets at most this far apart (metres).
_STEP_M = 20.0
#: Douglas-Peucker tolerance (metres) of the drawn isochrones.
ISOCHRONE_SIMPLIFY_M = 20.0

#: ``method`` values of a catchment.
METHOD_ISOCHRONE = "network isochrone"
METHOD_CIRCLE = "straight-line circle"


def isochrones(network: WalkingNetwork, sites_xy: np.ndarray, limit_m: float,
               cell_m: float = ISOCHRONE_CELL_M,
               simplify_m: float = ISOCHRONE_SIMPLIFY_M) -> np.ndarray:
    """The area within a network walk of ``limit_m`` metres of each site.

    Parameters
    ----------
    network
        The walking graph.
    sites_xy
        ``(m, 2)`` site coordinates (EPSG:27700).
    limit_m
        Walking distance reached (metres).
    cell_m, simplify_m
        Grid cell side and simplification tolerance (metres).

    Returns
    -------
    numpy.ndarray
        ``m`` polygons (EPSG:27700); an empty polygon for a site whose snap leg alone is
        longer than ``limit_m``.
    """
    sites = network.snap(sites_xy)
    graph = network.with_sites(sites)
    u, v = network.segment_nodes[:, 0], network.segment_nodes[:, 1]
    length = network.segment_length_m
    xy_u, xy_v = network.node_xy[u], network.node_xy[v]
    shapes = []
    for j in range(len(sites.segment)):
        distance = dijkstra(graph, directed=False, indices=network.n_nodes + j, limit=limit_m)
        du, dv = distance[u], distance[v]
        left_u, left_v = limit_m - du, limit_m - dv
        whole = (left_u >= 0) & (left_v >= 0)
        # Where the walk runs out on a segment: the part reached from its reachable end.
        from_u = (left_u >= 0) & ~whole
        from_v = (left_v >= 0) & ~whole
        t_u = np.clip(left_u[from_u] / length[from_u], 0, 1)[:, None]
        t_v = np.clip(left_v[from_v] / length[from_v], 0, 1)[:, None]
        starts = np.vstack([xy_u[whole], xy_u[from_u], xy_v[from_v]])
        ends = np.vstack([xy_v[whole], xy_u[from_u] + t_u * (xy_v[from_u] - xy_u[from_u]),
                          xy_v[from_v] + t_v * (xy_u[from_v] - xy_v[from_v])])
        # The service's own segment, from the service's joining point, when it is in reach.
        left_site = limit_m - sites.offset_m[j]
        if left_site < 0:
            shapes.append(shapely.Polygon())
            continue
        starts = np.vstack([starts, sites.xy[j:j + 1]])
        ends = np.vstack([ends, sites.xy[j:j + 1] + [0.01, 0.0]])
        cells = _cells_along(starts, ends, cell_m)
        boxes = shapely.box(cells[:, 0] * cell_m, cells[:, 1] * cell_m,
                            (cells[:, 0] + 1) * cell_m, (cells[:, 1] + 1) * cell_m)
        area = shapely.coverage_union_all(boxes)
        shapes.append(shapely.simplify(area, simplify_m, preserve_topology=True))
    return np.array(shapes, dtype=object)


def _cells_along(starts: np.ndarray, ends: np.ndarray, cell_m: float) -> np.ndarray:
    """``(k, 2)`` distinct grid cell indices of points every :data:`_STEP_M` or less along
    the straight pieces from ``starts`` to ``ends``, sorted."""
    length = np.hypot(*(ends - starts).T)
    steps = np.ceil(length / _STEP_M).astype(np.int64) + 1
    piece = np.repeat(np.arange(len(starts)), steps)
    position = np.arange(len(piece)) - np.repeat(np.cumsum(steps) - steps, steps)
    fraction = (position / np.maximum(steps[piece] - 1, 1))[:, None]
    points = starts[piece] + fraction * (ends[piece] - starts[piece])
    index = np.floor(points / cell_m).astype(np.int64)
    # One integer key per cell: a 1-D unique is several times faster than unique(axis=0).
    low = index.min(axis=0)
    span = int(index[:, 1].max() - low[1]) + 1
    keys = np.unique((index[:, 0] - low[0]) * span + (index[:, 1] - low[1]))
    return np.column_stack([keys // span + low[0], keys % span + low[1]])


def walk_catchments(layers: dict[str, gpd.GeoDataFrame | None], settings: GapSettings,
                    network: WalkingNetwork | None) -> gpd.GeoDataFrame:
    """One walk catchment per service, for the map.

    Parameters
    ----------
    layers
        Service point layers by kind (EPSG:27700), ``None`` where not given.
    settings
        Gap settings (walk threshold, speed, detour factor).
    network
        The walking graph, or ``None`` (straight-line circles).

    Returns
    -------
    geopandas.GeoDataFrame
        ``kind``, ``name``, ``method`` (:data:`METHOD_ISOCHRONE` or :data:`METHOD_CIRCLE`),
        ``walk_min`` and polygon geometry in EPSG:27700, services in layer order.
    """
    rows, shapes = [], []
    for kind, layer in layers.items():
        xy = service_xy(layer)
        if not len(xy):
            continue
        geoms = layer.geometry.values
        present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        names = (layer["name"].astype(str) if "name" in layer
                 else pd.Series("", index=layer.index))[present].tolist()
        if network is not None:
            limit = settings.walk_network_m
            polygons, method = isochrones(network, xy, limit), METHOD_ISOCHRONE
        else:
            polygons = shapely.buffer(shapely.points(xy), settings.walk_radius_m, quad_segs=16)
            method = METHOD_CIRCLE
        for name, polygon in zip(names, polygons):
            rows.append({"kind": kind, "name": name, "method": method,
                         "walk_min": settings.walk_threshold_min})
            shapes.append(polygon)
    return gpd.GeoDataFrame(rows, columns=["kind", "name", "method", "walk_min"],
                            geometry=gpd.GeoSeries(shapes, crs=ANALYSIS_CRS), crs=ANALYSIS_CRS)
