"""The point-to-ward join: exact, deterministic on shared edges, picklable for per-chunk use."""

from __future__ import annotations

import pickle

import geopandas as gpd
import numpy as np
import shapely

from geomisuse.layers.ward_join import OUTSIDE, WardLocator, assign_wards

from conftest import ORIGIN, tiny_wards


def _voronoi_wards(n: int = 40, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    outline = shapely.Polygon([(0, 0), (8000, 500), (7500, 6000), (3000, 7000), (-500, 4000)])
    cells = shapely.voronoi_polygons(shapely.multipoints(rng.uniform(0, 8000, (n, 2))), extend_to=outline)
    polygons = [c.intersection(outline) for c in cells.geoms]
    return np.array([p for p in polygons if not p.is_empty], dtype=object)


def test_locator_matches_exact_point_in_polygon_on_random_points():
    polygons = _voronoi_wards()
    locator = WardLocator(polygons)
    rng = np.random.default_rng(7)
    x, y = rng.uniform(-1000, 9000, 200_000), rng.uniform(-1000, 8000, 200_000)
    found = locator.locate(x, y)
    # Independent reference: geopandas sjoin with "within", plus the smallest ward on ties.
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y))
    joined = gpd.sjoin(points, gpd.GeoDataFrame(geometry=polygons), predicate="intersects", how="left")
    reference = joined.groupby(level=0)["index_right"].min().reindex(range(len(x)))
    expected = reference.fillna(OUTSIDE).astype(int).to_numpy()
    assert (found == expected).all()
    assert (found == OUTSIDE).sum() > 1000  # the test covers points outside too


def test_point_on_shared_edge_counts_once_in_first_ward_by_code():
    wards = tiny_wards()
    locator = WardLocator(wards.geometry.to_numpy())
    x0, y0 = ORIGIN
    # On the edge between wards 1 and 2, on the corner of wards 1, 2, 4, 5, on the outer edge, outside.
    x = np.array([x0 + 1000, x0 + 1000, x0, x0 - 0.01, x0 + 2500])
    y = np.array([y0 + 500, y0 + 1000, y0 + 500, y0 + 500, y0 + 1500])
    assert locator.locate(x, y).tolist() == [0, 0, 0, OUTSIDE, 5]
    # Shuffling the input order does not change any answer.
    order = np.array([4, 2, 0, 3, 1])
    assert locator.locate(x[order], y[order]).tolist() == [5, 0, 0, OUTSIDE, 0]


def test_nan_coordinates_are_outside():
    locator = WardLocator(tiny_wards().geometry.to_numpy())
    assert locator.locate(np.array([np.nan]), np.array([1.0])).tolist() == [OUTSIDE]


def test_locator_pickles_for_per_chunk_use():
    polygons = _voronoi_wards()
    locator = WardLocator(polygons)
    clone = pickle.loads(pickle.dumps(locator))
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 8000, 5000), rng.uniform(0, 7000, 5000)
    chunks = [assign_wards(x[i:i + 1000], y[i:i + 1000], clone) for i in range(0, 5000, 1000)]
    assert (np.concatenate(chunks) == locator.locate(x, y)).all()
