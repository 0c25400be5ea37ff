"""Walking over real streets: the Camden OpenStreetMap extract, its walking graph, network
distances checked against networkx, a railway barrier, the cache, coverage errors, isochrones,
satellites named by street and postcode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.sparse.csgraph import connected_components

from geomisuse.errors import InputError
from geomisuse.gaps.catchments import isochrones
from geomisuse.gaps.network import (Snap, cache_path, load_walking_network,
                                    nearest_network_distance, network_distances_within)
from geomisuse.gaps.settings import GapSettings
from geomisuse.gaps.walking import measure_access, nearest_distance, sample_residents
from geomisuse.layers.osm_network import walking_exclusion
from geomisuse.layers.postcodes import read_postcodes

SEED = 20261122
#: 20 minutes at 4.8 km/h over the network.
LIMIT_M = 1600.0
#: A resident point in Kentish Town and a point 365 m away in Haverstock, with the railway
#: lines (Midland main line and the Gospel Oak line) between them: found by a search over
#: Camden for the pair with the longest walk for its straight line.
KENTISH_TOWN_XY = (528612.0, 185233.0)
HAVERSTOCK_XY = (528336.0, 184994.0)


@pytest.fixture(scope="module")
def camden(real, tmp_path_factory):
    """Camden's network (cached in a temporary folder), its 18 wards and active pharmacies."""
    cache = tmp_path_factory.mktemp("cache")
    network = load_walking_network(real / "networks" / "camden.osm.pbf", cache)
    wards = gpd.read_file(real / "boundaries" / "gla_london_wards_2014.gpkg")
    wards = (wards[wards["BOROUGH"] == "Camden"].to_crs("EPSG:27700")
             .rename(columns={"GSS_CODE": "ward_code", "NAME": "ward_name"})
             .sort_values("ward_code").reset_index(drop=True))
    raw = pd.read_csv(real / "services" / "nhs_ods_edispensary_london_geocoded.csv", dtype=str)
    active = raw[(raw["Status_Code"] == "A") & (raw["cp_Admin_district_code"] == "E09000007")]
    pharmacies = active[["cp_Eastings", "cp_Northings"]].to_numpy(float)
    sample = sample_residents(wards, None, 100, SEED)
    return {"network": network, "wards": wards, "pharmacies": pharmacies, "sample": sample,
            "cache": cache, "names": active["Name"].tolist()}


def test_walking_rules():
    assert walking_exclusion("motorway", None, None, None) == "highway=motorway"
    assert walking_exclusion("proposed", None, None, None) == "highway=proposed"
    assert walking_exclusion("footway", "no", None, None) == "foot=no"
    assert walking_exclusion("service", None, None, "private") == "private"
    assert walking_exclusion("residential", None, "private", None) == "private"
    # A private road that people may walk down is kept.
    assert walking_exclusion("service", "permissive", "private", None) is None
    assert walking_exclusion("primary", None, None, None) is None
    assert walking_exclusion("steps", None, None, None) is None


def test_camden_graph_accounts_for_every_way_and_is_one_component(camden):
    network = camden["network"]
    report = network.report
    assert report["highway_ways_read"] == 10_674          # SOURCES.md: 10,674 highway ways
    assert report["ways_kept"] + sum(report["ways_excluded"].values()) == report["highway_ways_read"]
    assert report["ways_excluded"]["private"] > 0 and report["ways_excluded"]["foot=no"] > 0
    # SOURCES.md: a walking graph of about 31,500 nodes and 595 km.
    assert 30_000 <= network.n_nodes <= 33_000 and network.n_nodes == report["nodes"]
    assert 550 <= report["km"] <= 640
    n, _ = connected_components(network.graph(), directed=False)
    assert n == 1
    ends = network.node_xy[network.segment_nodes]
    assert np.allclose(np.hypot(*(ends[:, 0] - ends[:, 1]).T), network.segment_length_m)


def test_network_walk_is_never_shorter_than_the_straight_line(camden):
    network, sample, pharmacies = camden["network"], camden["sample"], camden["pharmacies"]
    points, sites = network.snap(sample.xy), network.snap(pharmacies)
    walked = nearest_network_distance(network, points, sites)
    straight = nearest_distance(sample.xy, pharmacies)
    assert len(walked) == 1_800 and np.isfinite(walked).all()
    assert (walked >= straight - 1e-6).all()
    # Every pair within reach, not only the nearest, is at least its straight line.
    within = network_distances_within(network, points, sites, LIMIT_M).tocoo()
    crow = np.hypot(*(sample.xy[within.row] - pharmacies[within.col]).T)
    assert within.nnz > 10_000 and (within.data >= crow - 1e-6).all()
    # The nearest site by network is in the within-reach matrix at the same distance.
    near = walked <= LIMIT_M
    best = np.asarray(within.tocsr().max(axis=1).todense()).ravel() > 0
    assert (best == near).all()


def _networkx_graph(network, points: Snap, sites: Snap) -> nx.Graph:
    """The same streets as a networkx graph, with every point and site spliced into its
    segment (the segment cut at each joining point) and joined to it by its snap leg."""
    graph = nx.Graph()
    for (u, v), length in zip(network.segment_nodes.tolist(), network.segment_length_m):
        graph.add_edge(u, v, weight=float(length))
    attached: dict[int, list[tuple[float, object, float]]] = {}
    for label, snap in (("p", points), ("s", sites)):
        for i, (seg, along, offset) in enumerate(zip(snap.segment, snap.along_m, snap.offset_m)):
            attached.setdefault(int(seg), []).append((float(along), (label, i), float(offset)))
    for seg, items in attached.items():
        u, v = network.segment_nodes[seg].tolist()
        graph.remove_edge(u, v)
        chain, position = [u], [0.0]
        for along, name, offset in sorted(items, key=lambda t: t[0]):
            joint = ("j", name)
            chain.append(joint)
            position.append(along)
            graph.add_edge(joint, name, weight=offset)
        chain.append(v)
        position.append(float(network.segment_length_m[seg]))
        for a, b, pa, pb in zip(chain[:-1], chain[1:], position[:-1], position[1:]):
            graph.add_edge(a, b, weight=pb - pa)
    return graph


def test_hand_checked_routes_against_networkx(camden):
    network, sample, pharmacies = camden["network"], camden["sample"], camden["pharmacies"]
    chosen = np.arange(0, 1_800, 150)                 # 12 resident points, every ward's first few
    points, sites = network.snap(sample.xy[chosen]), network.snap(pharmacies)
    graph = _networkx_graph(network, points, sites)
    reference = nx.multi_source_dijkstra_path_length(
        graph, {("s", j) for j in range(len(pharmacies))})
    ours = nearest_network_distance(network, points, sites)
    assert np.allclose(ours, [reference[("p", i)] for i in range(len(chosen))], atol=1e-6)
    # One point to every site within reach, both ways.
    single = nx.single_source_dijkstra_path_length(graph, ("p", 0), cutoff=LIMIT_M)
    within = network_distances_within(network, points, sites, LIMIT_M).toarray()[0]
    expected = np.array([single.get(("s", j), 0.0) for j in range(len(pharmacies))])
    assert (within > 0).sum() >= 3
    assert np.allclose(within, expected, atol=1e-6)


def test_railway_barrier_makes_the_walk_longer_than_the_detour_factor_says(camden):
    network = camden["network"]
    resident, service = np.array([KENTISH_TOWN_XY]), np.array([HAVERSTOCK_XY])
    walked = nearest_network_distance(network, network.snap(resident), network.snap(service))[0]
    straight = float(np.hypot(*(resident - service)[0]))
    assert 360 < straight < 370
    assert walked > 3 * straight          # about 1.5 km round the railway
    # The ward beside the railway: its residents' walk to that one service, over the streets,
    # is longer than the straight line x 1.3 that the fallback assumes.
    wards = camden["wards"]
    layers = {"treatment": gpd.GeoDataFrame(geometry=gpd.points_from_xy(*service.T), crs="EPSG:27700"),
              "needle_exchange": None}
    settings = GapSettings()
    by_network, _ = measure_access(wards, layers, None, settings, SEED, network)
    by_line, _ = measure_access(wards, layers, None, settings, SEED)
    kentish = int(np.flatnonzero(wards["ward_name"] == "Kentish Town")[0])
    assert by_network.minutes["treatment"][kentish] > 1.2 * by_line.minutes["treatment"][kentish]
    assert by_network.kinds["treatment"].share_within[kentish] < \
        by_line.kinds["treatment"].share_within[kentish]


def test_measured_detour_factor_is_reported(camden):
    wards, network = camden["wards"], camden["network"]
    layers = {"treatment": gpd.GeoDataFrame(geometry=gpd.points_from_xy(*camden["pharmacies"].T),
                                            crs="EPSG:27700"), "needle_exchange": None}
    walk, warnings = measure_access(wards, layers, None, GapSettings(), SEED, network)
    detour = walk.network.detour["treatment"]
    assert detour["points"] == 1_800
    assert 1.0 <= detour["p10"] <= detour["p25"] <= detour["median"] <= detour["p75"] <= detour["p90"]
    # Independently: the ratio over the same points.
    points, sites = network.snap(walk.sample.xy), network.snap(camden["pharmacies"])
    ratio = (nearest_network_distance(network, points, sites)
             / nearest_distance(walk.sample.xy, camden["pharmacies"]))
    assert detour["median"] == round(float(np.median(ratio)), 2)
    assert walk.network.report["points_far_from_network"] == 0
    assert not [w for w in warnings if "walkable way" in w]
    # Snap legs are walked: every point's minutes include its walk to the street.
    assert (walk.network.snap_m >= 0).all() and walk.network.report["snap_m"]["max"] < 200


def test_cache_is_reused_and_a_damaged_cache_rebuilt(camden, real, tmp_path):
    source = real / "networks" / "camden.osm.pbf"
    first = load_walking_network(source, tmp_path)
    assert first.report["cache"] == "written"
    cached = cache_path(source, tmp_path, first.report["sha256"])
    assert cached.is_file() and first.report["sha256"][:16] in cached.name
    second = load_walking_network(source, tmp_path)
    assert second.report["cache"] == "hit"
    assert np.array_equal(second.node_xy, first.node_xy)
    assert np.array_equal(second.segment_nodes, first.segment_nodes)
    assert second.names == first.names
    # The cached graph gives the same distances.
    xy = camden["sample"].xy[:50]
    assert np.array_equal(
        nearest_network_distance(first, first.snap(xy), first.snap(camden["pharmacies"])),
        nearest_network_distance(second, second.snap(xy), second.snap(camden["pharmacies"])))
    cached.write_bytes(b"not a cache")
    assert load_walking_network(source, tmp_path).report["cache"] == "written"
    # Another file (same bytes under a new name) gets its own cache file.
    copy = tmp_path / "copy.osm.pbf"
    shutil.copyfile(source, copy)
    assert load_walking_network(copy, tmp_path).report["cache"] == "written"


def test_network_not_covering_the_study_area_names_the_wards(camden, real):
    wards = gpd.read_file(real / "boundaries" / "gla_london_wards_2014.gpkg")
    harrow = wards[wards["BOROUGH"] == "Harrow"].head(2)
    wards = (pd.concat([wards[wards["BOROUGH"] == "Camden"], harrow]).to_crs("EPSG:27700")
             .rename(columns={"GSS_CODE": "ward_code", "NAME": "ward_name"})
             .sort_values("ward_code").reset_index(drop=True))
    layers = {"treatment": None, "needle_exchange": None}
    with pytest.raises(InputError) as err:
        measure_access(wards, layers, None, GapSettings(), SEED, camden["network"])
    message = str(err.value)
    assert "does not cover 2 ward(s)" in message and "camden.osm.pbf" in message
    for code, name in zip(harrow["GSS_CODE"], harrow["NAME"]):
        assert f"{name} ({code})" in message
    assert "Kentish Town" not in message and "\n" not in message


def test_isochrones_lie_within_the_walk_and_hold_the_points_reached(camden):
    network, sample = camden["network"], camden["sample"]
    services = camden["pharmacies"][:5]
    shapes = isochrones(network, services, LIMIT_M)
    points, sites = network.snap(sample.xy), network.snap(services)
    reach = network_distances_within(network, points, sites, LIMIT_M).tocsc()
    for j, shape in enumerate(shapes):
        assert shape.is_valid and shape.contains(shapely.Point(*sites.xy[j]))
        # Nothing beyond the straight-line reach of the walk (plus one cell of drawing).
        assert shape.within(shapely.Point(*services[j]).buffer(LIMIT_M + 75))
        # A network walk reaches less than the crow-fly disc.
        assert shape.area < 0.8 * np.pi * LIMIT_M ** 2
        reached = reach[:, j].indices
        assert len(reached) > 20
        inside = shapely.contains_xy(shape.buffer(50), points.xy[reached, 0], points.xy[reached, 1])
        assert inside.mean() > 0.97


def test_postcodes_read_from_code_point_open(real):
    path = real / "services" / "os_codepoint_open_2025_london_postcodes.csv.gz"
    postcodes = read_postcodes(path)
    raw = pd.read_csv(path, usecols=["Postcode", "Eastings", "Northings"])
    assert postcodes.report["rows_read"] == len(raw) == 180_460
    assert postcodes.report["rows_used"] + postcodes.report["rows_without_position"] == len(raw)
    row = raw[raw["Postcode"] == "NW1 8RJ"].iloc[0]
    at = postcodes.xy[postcodes.code == "NW1 8RJ"][0]
    assert tuple(at) == (row["Eastings"], row["Northings"])


def test_postcode_file_without_coordinates_is_a_one_line_error(tmp_path):
    bad = tmp_path / "pc.csv"
    bad.write_text("Postcode,Quality\nNW1 8RJ,10\n")
    with pytest.raises(InputError, match="pc.csv: has no coordinates"):
        read_postcodes(bad)


@pytest.fixture(scope="module")
def camden_run(real, tmp_path_factory):
    """Camden with the real network, MPS counts and ODS pharmacies (as needle exchanges, since
    ODS has no NSP flag), run by the command line; returns (study folder, completed process)."""
    from conftest import run_cli

    tmp_path = tmp_path_factory.mktemp("camden")
    (tmp_path / "services.csv").write_text(
        "name,service_type,longitude,latitude\n"
        "Test service A,treatment,-0.1300,51.5390\nTest service B,treatment,-0.1200,51.5300\n")
    ods = f"{real}/services/nhs_ods_edispensary_london_geocoded.csv"
    (tmp_path / "study.toml").write_text(f"""
[study]
name = "Camden over the streets"
borough = "Camden"
period = ["2021-09", "2022-08"]
[boundaries]
path = "{real}/boundaries/gla_london_wards_2014.gpkg"
where = {{BOROUGH = "Camden"}}
[layers.population]
path = "{real}/population/gla_housing_density_ward_2011_2050.csv"
columns = {{ward_code = "Code", population = "Population"}}
where = {{Year = "2021"}}
[layers.mps_ward]
path = "{real}/mps_ward/mps_ward_level_crime_2020-09_2022-08_wards2018.csv"
[layers.pharmacies]
path = "{ods}"
where = {{Status_Code = "A", cp_Admin_district_code = "E09000007"}}
[layers.needle_exchanges]
path = "{ods}"
where = {{Status_Code = "A", cp_Admin_district_code = "E09000007"}}
[layers.treatment_services]
path = "services.csv"
[gaps]
network = "{real}/networks/camden.osm.pbf"
postcodes = "{real}/services/os_codepoint_open_2025_london_postcodes.csv.gz"
""")
    result = run_cli("run", str(tmp_path / "study.toml"), "--out", str(tmp_path / "out"),
                     "--tiles", "none", "--offline")
    return tmp_path, result


@pytest.mark.slow
def test_camden_run_over_the_streets(real, camden_run):
    """Network-based gaps, isochrone catchments on the map, satellites by street and postcode."""
    tmp_path, result = camden_run
    out = tmp_path / "out"
    assert result.returncode == 0, result.stderr
    assert "access: over the street network" in result.stdout
    assert "measured detour factor to the nearest needle exchange: median" in result.stdout
    assert list((tmp_path / ".geomisuse-cache").glob("camden-*-walking-v1.npz"))

    wards = pd.read_csv(out / "wards.csv")
    assert (wards["access_method"] == "street network").all()
    # Network walking distance is at least the straight line, ward by ward.
    for kind in ("treatment", "needle_exchange"):
        assert (wards[f"{kind}_network_walk_m"] >= wards[f"nearest_{kind.replace('treatment', 'treatment_service')}_m"] - 1).all()
        assert np.allclose(wards[f"{kind}_walk_min"], wards[f"{kind}_network_walk_m"] / 80.0, atol=0.1)
    manifest = json.loads((out / "manifest.json").read_text())
    access = manifest["gaps"]["access"]
    assert access["method"] == "street network" and access["network"]["cache"] == "written"
    assert access["detour_factor_measured"]["needle_exchange"]["points"] == 1_800

    sites = pd.read_csv(out / "satellites.csv")
    assert len(sites) == 3
    assert sites["street_name"].notna().all() and sites["postcode"].str.match(r"^[A-Z]{1,2}\d").all()
    assert (sites["postcode_distance_m"] < 300).all()
    assert sites["map_url"].str.startswith("https://www.openstreetmap.org/?mlat=").all()
    network = load_walking_network(real / "networks" / "camden.osm.pbf", None)
    grid = sites[sites["source"] == "grid"]
    if len(grid):   # grid sites stand on a street
        on = network.snap(grid[["easting", "northing"]].to_numpy(float))
        assert (on.offset_m < 0.2).all()
    coverage = pd.read_csv(out / "satellite_coverage.csv")
    assert coverage["sites"].tolist() == list(range(1, len(coverage) + 1)) and len(coverage) >= 5
    assert (np.diff(coverage["need_covered"]) > 0).all()
    assert (coverage["need_covered"] >= coverage["greedy_need_covered"] - 1e-6).all()
    assert coverage.loc[2, "need_covered"] == pytest.approx(sites["need_covered"].sum(), abs=0.05)

    page = (out / "map.html").read_text()
    assert page.count('"kind": "areas"') + page.count('"kind":"areas"') == 2
    assert "Open on OpenStreetMap" in page and "OpenStreetMap contributors" in page
    briefing_text = " ".join(p.read_text() for p in (out / "briefings").glob("*.html"))
    assert sites["postcode"].iloc[0] in briefing_text


def test_points_far_from_any_way_are_reported_not_dropped(camden):
    wards = camden["wards"]
    layers = {"treatment": gpd.GeoDataFrame(geometry=gpd.points_from_xy(*camden["pharmacies"].T),
                                            crs="EPSG:27700"), "needle_exchange": None}
    settings = GapSettings(network_max_snap_m=60.0)
    walk, warnings = measure_access(wards, layers, None, settings, SEED, camden["network"])
    far = walk.network.far_points
    assert 0 < far.sum() < 100 and len(walk.sample.xy) == 1_800       # kept, not dropped
    assert (walk.network.snap_m[far] > 60).all() and (walk.network.snap_m[~far] <= 60).all()
    report = walk.network.report
    assert report["points_far_from_network"] == int(far.sum())
    assert sum(w["points"] for w in report["wards_with_points_far_from_network"]) == int(far.sum())
    assert any(f"{int(far.sum())} resident point(s)" in w and "over 60 m" in w for w in warnings)


PLANTED_OSM = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="geomisuse test">
  <node id="1" lat="51.5000" lon="-0.1000"/>
  <node id="2" lat="51.5000" lon="-0.0990"/>
  <node id="3" lat="51.5010" lon="-0.0990"/>
  <node id="4" lat="51.5010" lon="-0.1000"/>
  <node id="5" lat="51.5020" lon="-0.1000"/>
  <node id="6" lat="51.5020" lon="-0.0990"/>
  <node id="7" lat="51.5100" lon="-0.1100"/>
  <node id="8" lat="51.5100" lon="-0.1090"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="footway"/><tag k="name" v="Planted Path"/></way>
  <way id="11"><nd ref="3"/><nd ref="4"/><tag k="highway" v="residential"/><tag k="name" v="Planted Road"/></way>
  <way id="12"><nd ref="4"/><nd ref="5"/><tag k="highway" v="motorway"/></way>
  <way id="13"><nd ref="5"/><nd ref="6"/><tag k="highway" v="footway"/><tag k="foot" v="no"/></way>
  <way id="14"><nd ref="1"/><nd ref="6"/><tag k="highway" v="service"/><tag k="access" v="private"/></way>
  <way id="15"><nd ref="7"/><nd ref="8"/><tag k="highway" v="path"/></way>
  <way id="16"><nd ref="2"/><nd ref="99"/><tag k="highway" v="steps"/></way>
  <way id="17"><nd ref="5"/><nd ref="6"/><tag k="building" v="yes"/></way>
</osm>
"""


def test_planted_osm_file_rules_accounting_and_lengths(tmp_path):
    from pyproj import Transformer

    path = tmp_path / "planted.osm"
    path.write_text(PLANTED_OSM)
    network = load_walking_network(path, None)
    report = network.report
    assert report["highway_ways_read"] == 7                       # the building is no highway
    assert report["ways_excluded"] == {"foot=no": 1, "highway=motorway": 1, "missing nodes": 1,
                                       "private": 1}
    assert report["ways_kept"] == 3 and report["components"] == 2
    # The largest component is nodes 1-2-3-4 (the path and the road); 7-8 is cut off.
    assert network.n_nodes == 4 and report["nodes_outside_largest_component"] == 2
    to_bng = Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True)
    lonlat = {1: (-0.1, 51.5), 2: (-0.099, 51.5), 3: (-0.099, 51.501), 4: (-0.1, 51.501)}
    xy = {k: np.array(to_bng.transform(*v)) for k, v in lonlat.items()}
    expected = sorted(float(np.hypot(*(xy[a] - xy[b]))) for a, b in ((1, 2), (2, 3), (3, 4)))
    assert np.allclose(sorted(network.segment_length_m), expected)
    assert sorted(network.names) == ["", "Planted Path", "Planted Road"]
    # From node 1 to node 4 the walk goes round by 2 and 3 (the private drive 1-6 is not used).
    start, end = network.snap(xy[1][None]), network.snap(xy[4][None])
    assert nearest_network_distance(network, start, end)[0] == pytest.approx(sum(expected))


@pytest.mark.parametrize("content, message", [
    (b"not OpenStreetMap data " * 10, "cannot read it as OpenStreetMap data"),
    (b'<?xml version="1.0"?><osm version="0.6"><node id="1" lat="51.5" lon="-0.1"/></osm>',
     "holds no way a pedestrian may use"),
])
def test_bad_network_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / ("bad.osm.pbf" if content.startswith(b"not") else "bad.osm")
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        load_walking_network(path, tmp_path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
    with pytest.raises(InputError, match="walking network file not found"):
        load_walking_network(tmp_path / "missing.osm.pbf", tmp_path)


def test_study_file_network_and_postcode_paths_are_relative_to_it(tmp_path):
    from geomisuse.config import load_study

    (tmp_path / "sub").mkdir()
    study = tmp_path / "sub" / "study.toml"
    study.write_text('[boundaries]\npath = "w.gpkg"\n[gaps]\nnetwork = "../net.osm.pbf"\n'
                     'postcodes = "pc.csv"\nsatellites = 2\n')
    gaps = load_study(study).gaps
    assert gaps.network == str((tmp_path / "net.osm.pbf").resolve())
    assert gaps.postcodes == str((tmp_path / "sub" / "pc.csv").resolve())
    assert gaps.satellites == 2
    with pytest.raises(InputError, match="network_max_snap_m"):
        GapSettings.from_options({"network_max_snap_m": 0})


@pytest.mark.slow
@pytest.mark.browser
def test_camden_map_draws_isochrones_and_links_sites(camden_run):
    pytest.importorskip("playwright.sync_api")
    from playwright.sync_api import sync_playwright
    from test_map_browser import CHROMIUM, LAUNCH_ARGS, Page

    tmp_path, result = camden_run
    assert result.returncode == 0, result.stderr
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            headless=True, args=LAUNCH_ARGS)
        page = Page(chromium, tmp_path / "out" / "map.html")
        try:
            def count(selector: str) -> int:
                return page.eval(f"document.querySelectorAll({json.dumps(selector)}).length")

            assert count(".leaflet-gm-catchments-pane path") == 0
            page.toggle("Needle exchanges: 20-min walk")
            drawn = count(".leaflet-gm-catchments-pane path")
            assert drawn == 61                                 # one isochrone per pharmacy
            page.toggle("Treatment services: 20-min walk")
            assert count(".leaflet-gm-catchments-pane path") == drawn + 2
            # A satellite site opens a popup with its street, postcode and an OpenStreetMap link.
            shown = page.page.locator("#gm-layers .gm-overlay", has_text="Suggested satellite sites") \
                .first.locator("input").is_checked()
            if not shown:
                page.toggle("Suggested satellite sites")
            page.eval("""() => { geomisuse.map.eachLayer(l => {
                if (l.getPopup && l.getPopup() && !window.gmSite) { window.gmSite = l; } });
                window.gmSite.openPopup(); }""")
            link = page.page.locator(".leaflet-popup-content a")
            assert link.get_attribute("href").startswith("https://www.openstreetmap.org/?mlat=")
            sites = pd.read_csv(tmp_path / "out" / "satellites.csv")
            popup = page.page.locator(".leaflet-popup-content").inner_text()
            assert any(location in popup for location in sites["location"])
            assert page.errors == [] and page.requests == [] and page.dialogs == []
        finally:
            page.close()
            chromium.close()


def test_osmnx_graphml_gives_the_same_walk_as_the_osm_file(tmp_path):
    """The planted streets saved as osmnx saves a graph (both directions of each street, one
    edge with a bent geometry), read as GraphML: same rules, same lengths."""
    graph = nx.MultiDiGraph(crs="epsg:4326")
    for node, (lon, lat) in {1: (-0.1, 51.5), 2: (-0.099, 51.5), 3: (-0.099, 51.501),
                             4: (-0.1, 51.501), 5: (-0.1, 51.502)}.items():
        graph.add_node(node, x=lon, y=lat)
    for u, v, tags in [(1, 2, {"highway": "footway", "name": "Planted Path"}),
                       (2, 3, {"highway": "footway", "name": "Planted Path"}),
                       (4, 5, {"highway": "motorway"})]:
        graph.add_edge(u, v, **tags)
        graph.add_edge(v, u, **tags)
    # 3 -> 4 bends through a corner at (-0.0995, 51.5015).
    graph.add_edge(3, 4, highway="residential", name="Planted Road",
                   geometry="LINESTRING (-0.099 51.501, -0.0995 51.5015, -0.1 51.501)")
    path = tmp_path / "planted.graphml"
    nx.write_graphml(graph, path)
    network = load_walking_network(path, tmp_path)
    report = network.report
    assert report["highway_ways_read"] == 4 and report["ways_excluded"] == {"highway=motorway": 1}
    assert network.n_nodes == 5 and sorted(network.names) == ["", "Planted Path", "Planted Road"]
    from pyproj import Transformer
    to_bng = Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True)
    xy = np.array(to_bng.transform([-0.1, -0.099, -0.099, -0.0995, -0.1],
                                   [51.5, 51.5, 51.501, 51.5015, 51.501])).T
    legs = np.hypot(*np.diff(xy, axis=0).T)
    start, end = network.snap(xy[:1]), network.snap(xy[4:])
    assert nearest_network_distance(network, start, end)[0] == pytest.approx(legs.sum())
    projected = tmp_path / "projected.graphml"
    graph.graph["crs"] = "epsg:27700"
    nx.write_graphml(graph, projected)
    with pytest.raises(InputError, match="is a projected graph"):
        load_walking_network(projected, None)


def test_validate_reads_the_network_and_postcodes_and_writes_no_cache(tiny):
    from conftest import run_cli

    study = tiny / "study.toml"   # the tiny borough (validate does not place the network)
    (tiny / "planted.osm").write_text(PLANTED_OSM)
    (tiny / "postcodes.csv").write_text(
        "Postcode,Eastings,Northings\nAB1 2CD,530000,180000\nAB1 2CE,,\n")
    study.write_text(study.read_text() + '\n[gaps]\nnetwork = "planted.osm"\npostcodes = "postcodes.csv"\n')
    result = run_cli("validate", str(study))
    assert result.returncode == 0, result.stderr
    assert "walking network    4 nodes, 3 segments" in result.stdout
    assert "(cache: not written (validate))" in result.stdout
    assert "postcodes          read        2  used        1  without a position 1" in result.stdout
    assert not (tiny / ".geomisuse-cache").exists()
    # A broken network file is found by validate, not first by run.
    (tiny / "planted.osm").write_bytes(b"not OpenStreetMap data " * 10)
    broken = run_cli("validate", str(study))
    assert broken.returncode == 2 and len(broken.stderr.strip().splitlines()) == 1
    assert "planted.osm" in broken.stderr and "cannot read it as OpenStreetMap data" in broken.stderr
