"""Scale work beyond the police.uk loader: heat cells, briefing outlines, lazy imports."""

from __future__ import annotations

import subprocess
import sys

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geomisuse.publish.briefings.pages import _MAP_TOLERANCE_PX, WardOutlines, _map_frame, svg_shape, ward_outlines
from geomisuse.publish.maps.page import heat_points

from conftest import ROOT


def test_heat_cells_keyed_as_one_integer_equal_the_pairwise_unique():
    rng = np.random.default_rng(7)
    xy = rng.uniform([500_000, 170_000], [560_000, 200_000], (120_000, 2)).round(-1)
    cells, cell_m = heat_points(gpd.GeoSeries(shapely.points(xy), crs="EPSG:27700"), max_points=3_000)
    reference, counts = np.unique(np.floor(xy / cell_m).astype(np.int64), axis=0, return_counts=True)
    assert len(cells) == len(reference) <= 3_000
    assert np.array_equal(cells[:, 2], counts)  # same cells, same order, same counts
    assert cells[:, 2].sum() == len(xy)


def test_each_ward_outline_is_simplified_once_within_every_page_tolerance(real):
    wards = gpd.read_file(real / "boundaries" / "gla_london_wards_2018.gpkg").to_crs("EPSG:27700").iloc[:80]
    geoms = wards.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    neighbours = [[int(k) for k in tree.query(g, predicate="touches")] for g in geoms]
    outlines = ward_outlines(geoms, neighbours)
    assert len(outlines) == len(geoms)
    assert shapely.get_num_coordinates(outlines).sum() < shapely.get_num_coordinates(geoms).sum()
    finest = np.full(len(geoms), np.inf)
    for i in range(len(geoms)):
        minx, miny, maxx, maxy, scale, _, _ = _map_frame(geoms, [i, *neighbours[i]])
        for k in tree.query(shapely.box(minx, miny, maxx, maxy), predicate="intersects"):
            finest[k] = min(finest[k], _MAP_TOLERANCE_PX / scale)
    # Each ward once, at the finest tolerance of the pages that draw it (0.6 px there).
    for k in range(len(geoms)):
        assert shapely.equals_exact(outlines[k], shapely.simplify(geoms[k], finest[k]), tolerance=0)
    # The pages' outlines, simplified when first drawn, are these.
    drawn = WardOutlines(geoms, neighbours)
    for k in range(len(geoms)):
        shape = svg_shape(outlines[k])
        assert drawn[k].template == shape.template and np.array_equal(drawn[k].xy, shape.xy)


@pytest.mark.slow
def test_a_default_run_does_not_import_spopt_or_pulp():
    code = ("import sys; from geomisuse.config import load_study; from geomisuse.pipeline import analyse; "
            "analyse(load_study('data/demo/study.toml')); "
            "print(sorted(m for m in ('spopt', 'pulp') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
