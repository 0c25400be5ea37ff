"""The outreach map (geomisuse.maps) without a browser: what reaches the page, escaping,
simplification, classes, heat aggregation, catchments, tiles and offline assets.

The browser tests (tests/test_map_browser.py) reuse :func:`full_run` and :data:`EVIL`.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geomisuse.publish.maps import page as maps
from geomisuse.errors import InputError
from geomisuse.publish.escaping import safe_text, script_json
from geomisuse.pipeline import prepare
from geomisuse.publish.tables import PublishSettings, published_wards
from geomisuse.config import GapSettings, load_study

from conftest import demo_run_copy

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo" / "study.toml"

#: Names that must show as text and run nothing.
EVIL = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "${alert(1)}",
    "`${alert(1)}`",
    "\"'><img src=x onerror=\"window.__pwned=1\">",
    "</script><script>window.__pwned=2</script>",
    "back\\slash \\u003c \\x3c quote\" apostrophe' ${window.__pwned=3}",
    "<!-- <svg onload=alert(1)>",
]
LISA = ["High-High", "Low-Low", "High-Low", "Low-High", "Not significant"]


def data_block(page: str) -> dict:
    """The JSON data block of a written map."""
    match = re.search(r'<script type="application/json" id="geomisuse-data">(.*?)</script>', page, re.S)
    assert match, "no data block"
    return json.loads(match.group(1))


def demo_run():
    """The demo borough up to the ward table (no statistics)."""
    return demo_run_copy()


def add_fake_stages(run, gaps=(2, 5, 11)) -> None:
    """Cluster and gap columns and satellites in the shape those stages give (made-up values),
    so every layer of the map is drawn even before those stages exist."""
    n = len(run.wards)
    wards = run.wards.copy()
    for k, m in enumerate(run.measures):
        wards[f"{m}_lisa_i"] = np.linspace(-1, 1, n)
        wards[f"{m}_lisa_p"] = 0.01
        wards[f"{m}_lisa_label"] = [LISA[(i + k) % 5] for i in range(n)]
        wards[f"{m}_gi_z"] = np.linspace(-3, 3, n)
        wards[f"{m}_gi_p"] = 0.01
        wards[f"{m}_gi_bin"] = [((i + k) % 7) - 3 for i in range(n)]
    wards["nearest_treatment_service_m"] = np.linspace(200, 3000, n).round()
    wards["nearest_needle_exchange_m"] = np.linspace(100, 2500, n).round()
    wards["treatment_walk_min"] = (wards["nearest_treatment_service_m"] * 1.3 / 80).round(1)
    wards["needle_exchange_walk_min"] = (wards["nearest_needle_exchange_m"] * 1.3 / 80).round(1)
    flags = np.zeros(n, dtype=bool)
    flags[list(gaps)] = True
    wards["is_outreach_gap"] = flags
    wards["gap_score"] = np.linspace(1, 0, n)
    wards["gap_rank"] = np.arange(1, n + 1)
    wards["gap_reason"] = ["High-High drug possession cluster; nearest needle exchange 2.4 km" if f
                           else "not a gap: residents are within a 20-minute walk" for f in flags]
    run.wards = wards
    centre = wards.geometry.iloc[gaps[0]].representative_point()
    lonlat = gpd.GeoSeries([centre], crs=wards.crs).to_crs("EPSG:4326").iloc[0]
    run.satellites = pd.DataFrame({
        "rank": [1], "name": ["Satellite pharmacy"], "source": ["pharmacy"], "site_type": ["pharmacy"],
        "easting": [centre.x], "northing": [centre.y], "longitude": [lonlat.x], "latitude": [lonlat.y],
        "ward_code": [wards["ward_code"].iloc[gaps[0]]], "ward_name": [wards["ward_name"].iloc[gaps[0]]],
        "need_covered": [40.0], "share_of_gap_need_covered": [0.35], "residents_newly_within_walk": [5200],
        "share_of_unmet_need_covered": [0.2], "cumulative_share_of_unmet_need": [0.2]})
    # The gap stage walks with the study's [gaps] settings; the map reads them from the run.
    run.study.gaps = GapSettings(walk_threshold_min=15.0, walk_speed_kmh=4.8, detour_factor=1.3)
    run.manifest["gaps"] = {"parameters": run.study.gaps.model_dump()}


def make_evil(run) -> None:
    """Put hostile text into every name the map shows (wards, services, pharmacies, estates,
    satellites, the study title and sources, gap reasons)."""
    def cycle(n):
        return [EVIL[i % len(EVIL)] + f" #{i}" for i in range(n)]
    run.wards = run.wards.copy()
    run.wards["ward_name"] = cycle(len(run.wards))
    if "gap_reason" in run.wards:
        run.wards["gap_reason"] = cycle(len(run.wards))
    for kind, columns in (("treatment_services", ("name", "service_type", "address")),
                          ("pharmacies", ("name", "address", "nsp_level")),
                          ("estates", ("name", "landlord"))):
        table = run.layers[kind].table.copy()
        for column in columns:
            table[column] = cycle(len(table))
        run.layers[kind].table = table
    if run.satellites is not None:
        run.satellites["name"] = cycle(len(run.satellites))
        run.satellites["ward_name"] = EVIL[1]
    run.study.name = EVIL[0] + " study"
    run.study.borough = EVIL[2]
    run.study.sources = list(EVIL)


def full_run(evil: bool = False):
    """The demo borough with (made-up) cluster and gap results: every layer present."""
    run = demo_run()
    add_fake_stages(run)
    if evil:
        make_evil(run)
    return run


def write(run, path: Path, **options) -> str:
    settings = PublishSettings.from_options({"tiles": "none", "offline": True, **options})
    maps.write_map(run, published_wards(run, settings), path, settings)
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    run = full_run()
    path = tmp_path_factory.mktemp("map") / "map.html"
    return run, write(run, path)


@pytest.fixture(scope="module")
def protected(tmp_path_factory):
    """The demo map with every measure protected (``suppress = "all"``): suppression exercised."""
    run = full_run()
    path = tmp_path_factory.mktemp("map-protected") / "map.html"
    return run, write(run, path, suppress="all")


# ---------------------------------------------------------------------------------------------
# what reaches the page


def test_every_layer_is_listed_with_a_legend(rich):
    run, page = rich
    data = data_block(page)
    names = [html.unescape(layer["name"]) for layer in data["layers"]]
    measures = run.measures
    expected = ([f"Rate: {maps.MEASURE_LABELS[m]} per 1,000 residents" for m in measures]
                + [f"Clusters (LISA): {maps.MEASURE_LABELS[m]}" for m in measures]
                + [f"Hot/cold spots (Gi*): {maps.MEASURE_LABELS[m]}" for m in measures]
                + ["Outreach gap wards", "Treatment services", "Treatment services: 15-min walk",
                   "Needle exchanges", "Needle exchanges: 15-min walk", "Suggested satellite sites", "Estates",
                   "Heat map: drug offences (police.uk points)",
                   "Heat map: anti-social behaviour (police.uk points)"])
    assert names == expected
    assert all(layer["legend"]["items"] for layer in data["layers"])
    # ward colourings are one exclusive choice; the rest are overlays
    assert [layer["group"] for layer in data["layers"]] == ["ward"] * (3 * len(measures)) + ["overlay"] * 9


def test_default_layers_are_need_and_services(rich):
    _, page = rich
    shown = [html.unescape(layer["name"]) for layer in data_block(page)["layers"] if layer["show"]]
    assert sorted(shown) == sorted(["Rate: drug possession per 1,000 residents",
                                    "Treatment services", "Needle exchanges"])


def test_only_published_values_reach_the_page(protected):
    run, page = protected
    published = published_wards(run, PublishSettings(suppress="all"))
    ward = data_block(page)["ward"]
    for entry in ward["measures"]:
        m = entry["key"]
        assert entry["count"] == [html.escape(str(v)) for v in published[f"{m}_count"]]
        rates = pd.to_numeric(published[f"{m}_rate_per_1000"], errors="coerce")
        assert entry["rate"] == ["" if pd.isna(r) else f"{r:,.1f}" for r in rates]
    # a suppressed ward shows <5 or c, and its real count is nowhere in its tooltip data
    hidden = [i for i, v in enumerate(published["possession_count"]) if v in ("<5", "c")]
    assert hidden, "the demo should have a suppressed possession count"
    i = hidden[0]
    real = int(run.wards["possession_count"].iloc[i])
    possession = next(e for e in ward["measures"] if e["key"] == "possession")
    assert possession["count"][i] in ("&lt;5", "c") and possession["rate"][i] == ""
    assert str(real) not in (possession["count"][i], possession["rate"][i])


def test_rate_classes_cover_published_rates_only(protected):
    run, page = protected
    data = data_block(page)
    layer = next(lay for lay in data["layers"] if lay["kind"] == "fill" and lay["measure"] == "possession")
    published = published_wards(run, PublishSettings(suppress="all"))
    rates = pd.to_numeric(published["possession_rate_per_1000"], errors="coerce")
    suppressed = layer["colours"].index(maps.SUPPRESSED_COLOUR)
    for cls, rate, count in zip(layer["cls"], rates, published["possession_count"]):
        if pd.isna(rate):
            assert cls == suppressed if count in ("<5", "c") else cls == -1
        else:
            assert 0 <= cls < suppressed


def test_title_period_sources_and_demo_banner(rich):
    run, page = rich
    assert "Northmere (fictional demo borough)" in page
    assert "Jan 2025 – Dec 2025 (12 months)" in page
    assert 'id="gm-demo"' in page and "DEMO DATA" in page
    assert "Sources: Fictional data generated by geomisuse.demo" in page
    assert "gm-unsuppressed" not in page.split("</style>")[-1]


def test_unsuppressed_banner(tmp_path):
    run = demo_run()
    page = write(run, tmp_path / "map.html", unsuppressed=True)
    assert 'id="gm-unsuppressed"' in page and "UNSUPPRESSED – internal use only" in page
    possession = next(e for e in data_block(page)["ward"]["measures"] if e["key"] == "possession")
    assert possession["count"] == [f"{int(v):,}" for v in run.wards["possession_count"]]


def test_gap_wards_satellites_and_catchments(rich):
    run, page = rich
    data = data_block(page)
    gap = next(lay for lay in data["layers"] if lay["kind"] == "outline")
    assert gap["wards"] == [2, 5, 11]
    assert data["ward"]["gap"]["flag"][2] == 1 and "rank 3" in data["ward"]["gap"]["text"][2]
    circles = [lay for lay in data["layers"] if lay["kind"] == "circles"]
    assert {c["radius"] for c in circles} == {round(15 * 4.8 * 1000 / 60 / 1.3, 1)}
    sat = next(lay for lay in data["layers"] if lay.get("types") and lay["types"][0]["shape"] == "star")
    assert "adds 20 % of the unmet need" in sat["items"][0][3]
    nearest = data["ward"]["nearest"]
    assert [n["label"] for n in nearest] == ["Nearest treatment service", "Nearest needle exchange"]
    assert "from the ward centre" in nearest[0]["text"][0] and "min walk" in nearest[0]["text"][0]


def test_map_without_cluster_or_gap_results(tmp_path):
    page = write(demo_run(), tmp_path / "map.html")
    kinds = [lay["kind"] for lay in data_block(page)["layers"]]
    assert "outline" not in kinds and kinds.count("fill") == 4
    assert "Clusters (LISA)" not in page and "Satellite" not in page


def test_boundaries_only_study(tiny, tmp_path):
    run = prepare(load_study(tiny / "study.toml"))
    page = write(run, tmp_path / "map.html")
    data = data_block(page)
    assert data["layers"] == [] and len(data["wards"]["features"]) == 6
    assert data["ward"]["name"] == ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"]


def test_ward_link_hash_is_supported(rich):
    _, page = rich
    assert "geomisuse.ready()" in page and "ward=" in page


# ---------------------------------------------------------------------------------------------
# safety


def test_hostile_names_are_escaped_everywhere(tmp_path):
    run = full_run(evil=True)
    page = write(run, tmp_path / "map.html")
    body = page
    for needle in ("<script>alert", "<img src=x", "${alert", "`${", "onerror=\"window", "<svg onload",
                   "${window", "</script><script>window"):
        assert needle not in body, needle
    # every <script> element is ours: Leaflet, plugins, the data block, map.js, folium's
    scripts = re.findall(r"<script[^>]*>", page)
    assert all(s in ("<script>", '<script type="application/json" id="geomisuse-data">') for s in scripts)
    data = data_block(page)
    # the names survive, escaped, and decode back to the originals
    names = [html.unescape(n) for n in data["ward"]["name"]]
    assert names == list(run.wards["ward_name"])
    assert safe_text(EVIL[0] + " study") in page
    labels = [item[3] for layer in data["layers"] for item in layer.get("items", [])
              if len(item) > 3 and isinstance(item[3], str)]
    assert labels, "no point labels to check"
    for label in labels:
        assert "<img" not in label and "<script" not in label


def test_safe_text_and_script_json():
    assert safe_text("${x}`\\") == "&#36;&#123;x&#125;&#96;&#92;"
    assert safe_text(float("nan")) == "" and safe_text(None) == "" and safe_text(pd.NA) == ""
    text = script_json({"a": "</script><!-- & \u2028"})
    assert "</" not in text and "<!--" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!-- & \u2028"}


# ---------------------------------------------------------------------------------------------
# geometry, classes, points


def test_simplified_wards_keep_shared_edges(real):
    wards = gpd.read_file(real / "boundaries" / "gla_london_wards_2018.gpkg")
    before = shapely.get_num_coordinates(wards.geometry.to_numpy()).sum()
    out = maps.simplify_wards(wards.geometry, maps.SIMPLIFY_M)
    after = shapely.get_num_coordinates(out.to_numpy()).sum()
    assert after < 0.45 * before
    assert out.crs == "EPSG:4326"
    # still a coverage: no overlaps, and neighbours share their edge (no gaps or slivers)
    projected = out.to_crs("EPSG:27700").to_numpy()
    assert shapely.coverage_is_valid(projected)
    assert shapely.is_valid(out.to_numpy()).all()
    total = shapely.area(projected).sum()
    union = shapely.union_all(projected).area
    assert abs(union - total) / total < 1e-6
    assert abs(total - wards.area.sum()) / wards.area.sum() < 0.002
    # no narrow gaps (slivers) between neighbours, where the original had none
    assert shapely.coverage_is_valid(wards.geometry.to_numpy(), gap_width=2.0)
    assert shapely.coverage_is_valid(projected, gap_width=2.0)
    # every coordinate rounded to 5 decimals
    xy = shapely.get_coordinates(out.to_numpy())
    assert np.allclose(xy, np.round(xy, 5), atol=1e-12)


def test_simplification_setting_on_real_full_resolution_wards(real, tmp_path):
    """Tower Hamlets' full-resolution (BFC) wards: the tolerance setting reaches the page."""
    study = tmp_path / "study.toml"
    study.write_text(f'[study]\nname = "Tower Hamlets"\n[boundaries]\npath = '
                     f'"{(real / "boundaries" / "ons_wards2022_tower_hamlets_bfc.gpkg").as_posix()}"\n')
    run = prepare(load_study(study))
    vertices = {}
    for tolerance in (0, 10, 50):
        page = write(run, tmp_path / f"map{tolerance}.html", map_simplify_m=tolerance)
        features = data_block(page)["wards"]["features"]
        vertices[tolerance] = sum(len(ring) for f in features for ring in f["geometry"]["coordinates"])
    source = int(shapely.get_num_coordinates(run.wards.geometry.to_numpy()).sum())
    assert vertices[0] <= source and vertices[0] > 0.9 * source
    assert vertices[50] < vertices[10] < 0.6 * vertices[0]
    with pytest.raises(InputError, match="map_simplify_m"):
        write(run, tmp_path / "bad.html", map_simplify_m="lots")


def test_plain_simplify_would_open_gaps(real):
    """Why coverage simplification: plain per-polygon simplify leaves slivers between wards."""
    wards = gpd.read_file(real / "boundaries" / "gla_london_wards_2018.gpkg").head(120)
    plain = shapely.simplify(wards.geometry.to_numpy(), 20, preserve_topology=True)
    assert not shapely.coverage_is_valid(plain)
    coverage = shapely.coverage_simplify(wards.geometry.to_numpy(), 20)
    assert shapely.coverage_is_valid(coverage)


def test_class_breaks():
    assert maps.class_breaks([]) == []
    breaks = maps.class_breaks(np.arange(1, 101))
    assert len(breaks) == 4 and breaks == sorted(breaks)
    assert maps.class_breaks([0, 0, 0, 0, 5]) == [0.0]
    assert maps.class_breaks([2.0, 2.0, np.nan]) == []


def test_heat_points_aggregate_and_keep_every_point():
    rng = np.random.default_rng(1)
    xy = rng.uniform([500000, 170000], [560000, 200000], size=(20000, 2))
    points = gpd.GeoSeries(shapely.points(xy), crs="EPSG:27700")
    cells, cell = maps.heat_points(points, max_points=2000)
    assert len(cells) <= 2000 and cells[:, 2].sum() == 20000 and cell >= 400
    few, cell = maps.heat_points(points.head(10))
    assert len(few) == 10 and cell == maps.HEAT_CELL_M


def test_walk_catchment_defaults_and_gap_parameters():
    run = demo_run()
    minutes, radius = maps.walk_catchment(run)
    assert minutes == 20 and radius == pytest.approx(20 * 4.8 * 1000 / 60 / 1.3)
    run.study.gaps = GapSettings(walk_threshold_min=10, walk_speed_kmh=3.6, detour_factor=1.0)
    assert maps.walk_catchment(run) == (10.0, pytest.approx(600.0))


def test_many_sites_are_clustered(tmp_path):
    run = demo_run()
    table = run.layers["pharmacies"].table
    many = pd.concat([table] * 10, ignore_index=True)
    many["is_needle_exchange"] = True
    run.layers["pharmacies"].table = gpd.GeoDataFrame(many, crs=table.crs)
    page = write(run, tmp_path / "map.html")
    layer = next(lay for lay in data_block(page)["layers"] if lay["kind"] == "markers"
                 and lay["types"][0]["glyph"] == "N")
    assert layer["cluster"] is True
    assert "L.MarkerClusterGroup" in page or "MarkerClusterGroup" in page


# ---------------------------------------------------------------------------------------------
# tiles and assets


def test_tiles_none_named_and_unknown(tmp_path):
    run = demo_run()
    assert "tile.openstreetmap.org" not in write(run, tmp_path / "a.html")
    page = write(run, tmp_path / "b.html", tiles="OpenTopoMap")
    assert "tile.opentopomap.org" in page
    page = write(run, tmp_path / "c.html", tiles="OpenStreetMap")
    assert "tile.openstreetmap.org" in page
    with pytest.raises(InputError, match="unknown basemap tiles"):
        write(run, tmp_path / "d.html", tiles="No Such Tiles")


def test_offline_page_links_nothing(rich):
    _, page = rich
    tags = re.findall(r"<(?:script|link|img)\b[^>]*>", re.sub(r"<script>.*?</script>", "", page, flags=re.S))
    assert not [t for t in tags if re.search(r"(src|href)\s*=", t)]
    assert "cdn." not in page and "sourceMappingURL" not in page
    assert "images/layers.png" not in page
    assert len(page) < 600_000


def test_online_page_links_cdn_assets(tmp_path):
    page = write(demo_run(), tmp_path / "map.html", offline=False)
    assert 'src="https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"' in page
    assert "jquery" not in page and "bootstrap" not in page
    assert "leaflet_heat.min.js" in page
