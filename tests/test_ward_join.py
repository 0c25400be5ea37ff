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


def test_each_region_is_classified_from_its_first_cell_as_from_any_cell(real, monkeypatch):
    """The grid found from each region's first cell (one pass) is the grid found from the
    cells ``ndimage.minimum_position`` picks (a sort of the grid), on real and generated wards."""
    from scipy import ndimage

    import geomisuse.layers.ward_join as ward_join

    wards = gpd.read_file(real / "boundaries" / "gla_london_wards_2018.gpkg").to_crs(27700)
    cases = [(wards.geometry.to_numpy(), 2048), (wards.geometry.to_numpy(), 300), (_voronoi_wards(), 512),
             (tiny_wards().geometry.to_numpy(), 64)]
    fast = [WardLocator(polygons, cells).grid for polygons, cells in cases]
    calls = []
    monkeypatch.setattr(ward_join, "_first_cells", lambda regions, count: calls.append(count) or
                        _sorted_first_cells(regions, count, ndimage))
    for grid, (polygons, cells) in zip(fast, cases):
        assert np.array_equal(grid, WardLocator(polygons, cells).grid)
    assert len(calls) == len(cases)


def _sorted_first_cells(regions, count, ndimage):
    first = ndimage.minimum_position(regions > 0, regions, index=np.arange(1, count + 1))
    return np.array([p[0] for p in first]), np.array([p[1] for p in first])


def test_first_cells_fall_back_when_labels_are_not_in_order():
    from geomisuse.layers.ward_join import _first_cells

    regions = np.array([[2, 2, 0], [0, 1, 1], [3, 0, 1]])
    rows, cols = _first_cells(regions, 3)
    assert [regions[r, c] for r, c in zip(rows, cols)] == [1, 2, 3]
    regions = np.array([[1, 1, 0], [0, 2, 2], [3, 0, 2]])
    assert [list(a) for a in _first_cells(regions, 3)] == [[0, 1, 2], [0, 1, 0]]


def test_points_sharing_locations_in_boundary_cells_are_each_tested_once(monkeypatch):
    polygons = _voronoi_wards()
    locator = WardLocator(polygons)
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 7000, (500, 2))
    pick = rng.integers(0, 500, 20_000)
    x, y = xy[pick, 0], xy[pick, 1]
    x[:5], y[:5] = -0.0, 0.0  # -0.0 and 0.0 are one location
    expected = WardLocator(polygons).locate(x, y)
    tested = []
    original = locator._exact
    monkeypatch.setattr(locator, "_exact", lambda px, py: tested.append(len(px)) or original(px, py))
    assert np.array_equal(locator.locate(x, y), expected)
    assert tested and tested[0] <= 501
    reference = gpd.sjoin(gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y)), gpd.GeoDataFrame(geometry=polygons),
                          predicate="intersects", how="left").groupby(level=0)["index_right"].min()
    assert np.array_equal(expected, reference.reindex(range(len(x))).fillna(OUTSIDE).astype(int).to_numpy())


def _join_reference(wards, layer):
    """The point layers' join as it was: a ward code for every point, then the points of other
    forces' wards excluded and those outside every ward rejected, one step after the other."""
    from dataclasses import replace

    from geomisuse.layers.police_uk import force_area_wards

    locator = WardLocator(wards.geometry.to_numpy())
    codes = wards["ward_code"].to_numpy()
    layer = replace(layer, excluded=dict(layer.excluded))
    geoms = layer.table.geometry.to_numpy()
    position = locator.locate(shapely.get_x(geoms), shapely.get_y(geoms))
    table = layer.table.assign(ward_code=np.where(position == OUTSIDE, None, codes[np.clip(position, 0, None)]))
    layer.table = table
    outside = table["ward_code"].isna()
    if layer.covers_borough is not None:
        layer.wards = force_area_wards(codes, wards["borough_name"], layer.covers_borough)
        layer.exclude(table[~outside & ~table["ward_code"].isin(layer.wards)], "in a ward outside the police force's area")
        table = layer.table
        outside = table["ward_code"].isna()
    layer.reject(table[outside], "outside the study area")
    layer.table = layer.table.reset_index(drop=True)
    return layer


def test_point_layers_are_joined_at_once_as_step_by_step(monkeypatch):
    import pandas as pd

    from geomisuse.layers.base import LayerResult
    from geomisuse.wardtable import join_layers_to_wards

    wards = tiny_wards().rename(columns={"WD22CD": "ward_code", "WD22NM": "ward_name"})
    wards["borough_name"] = ["North", "North", "South", "South", None, "North"]
    rng = np.random.default_rng(4)
    x0, y0 = ORIGIN
    n = 3_000
    points = gpd.GeoDataFrame({"month": pd.Categorical(rng.choice(["2024-01", "2024-02"], n)),
                               "measure": pd.Categorical(rng.choice(["drug_offences", "asb"], n)),
                               "source_file": pd.Categorical(rng.choice(["a.csv", "b.csv"], n)),
                               "source_row": np.arange(2, n + 2)},
                              geometry=gpd.points_from_xy(rng.uniform(x0 - 500, x0 + 3500, n),
                                                          rng.uniform(y0 - 500, y0 + 2500, n)), crs="EPSG:27700")
    points = points.iloc[rng.permutation(n)[: n - 100]]  # index labels with gaps, not in order
    for covers in (None, lambda borough: borough == "north"):
        layer = LayerResult("police_uk", [], points, rows_read=n, excluded={"other": 100}, covers_borough=covers)
        joined = join_layers_to_wards(wards, {"police_uk": layer}).layers["police_uk"]
        expected = _join_reference(wards, layer)
        pd.testing.assert_frame_equal(joined.table, expected.table)
        pd.testing.assert_frame_equal(joined.rejected, expected.rejected)
        assert joined.excluded == expected.excluded and joined.wards == expected.wards
        assert layer.table is points and len(layer.rejected) == 0  # the caller's layer is not changed
    assert expected.excluded["in a ward outside the police force's area"] > 0
