"""The committed demo borough files: reproducible, fictional, well-formed, and planted as
geomisuse.demo says."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Point, shape

from geomisuse.demo import borough as demo

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / demo.DEMO_DIR
POLICE = DEMO / "police_uk"
_TO_BNG = Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True)
STUDY_COLUMNS = [m.replace("-", "") for m in demo.MONTHS]
PREVIOUS_COLUMNS = [m.replace("-", "") for m in demo.PREVIOUS_MONTHS]


def _bng(geom):
    return shapely.transform(geom, lambda c: np.column_stack(_TO_BNG.transform(c[:, 0], c[:, 1])))


@pytest.fixture(scope="module")
def wards() -> dict[str, shapely.Polygon]:
    """Ward code -> polygon in EPSG:27700, read from the committed GeoJSON."""
    data = json.loads((ROOT / demo.BOUNDARY_FILE).read_text(encoding="utf-8"))
    return {f["properties"]["WD22CD"]: _bng(shape(f["geometry"])) for f in data["features"]}


@pytest.fixture(scope="module")
def police() -> pd.DataFrame:
    frames = [pd.read_csv(p, dtype=str, keep_default_na=False).assign(file=p.name)
              for p in sorted(POLICE.glob("*.csv"))]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def mps() -> pd.DataFrame:
    return pd.read_csv(DEMO / "mps_ward_level_crime.csv", dtype={"WardCode": str})


def _centroid(wards, code: str) -> Point:
    return wards[code].centroid


# --- reproducibility -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, dict[Path, bytes]]:
    """The demo generated afresh into a folder: (folder, relative path -> bytes). Read only."""
    folder = tmp_path_factory.mktemp("generated")
    return folder, {p.relative_to(folder): p.read_bytes() for p in demo.generate_demo(folder)}


def test_regenerated_demo_has_the_committed_files_and_tells_the_planted_story(generated):
    """The generator is the source of the demo: regenerating gives exactly the committed set of
    files (no stale ones), and the study on the regenerated files recovers the planted story.
    (Same seed, same bytes is checked below; the committed bytes are not compared: a generator
    change that keeps the story is allowed, and ``geomisuse demo --regenerate`` updates them.)"""
    import geomisuse as gm

    folder, written = generated
    committed = {p.relative_to(ROOT) for p in DEMO.rglob("*") if p.is_file()} | {Path(demo.BOUNDARY_FILE)}
    assert set(written) == committed
    study = gm.load_study(folder / demo.DEMO_DIR / "study.toml")
    inputs = gm.load_inputs(study)
    table = gm.build_ward_table(inputs.wards, inputs.layers, months=inputs.months,
                                previous_months=inputs.previous_months)
    clusters = gm.find_clusters(table.wards, seed=study.seed)
    wards = clusters.wards.set_index("ward_code")
    labels = wards["possession_lisa_label"]
    assert set(labels.index[labels == "High-High"]) == set(demo.PLANTED_POSSESSION_CLUSTER)
    assert set(labels.index[labels == "Low-Low"]) == set(demo.PLANTED_LOW_CLUSTER)
    assert wards["trafficking_rate_per_1000"].idxmax() == demo.PLANTED_ESTATE_WARD
    assert wards.loc[demo.PLANTED_ESTATE_WARD, "trafficking_gi_bin"] >= 2
    gaps = gm.find_gaps(clusters.wards, **gm.gap_inputs(table.layers), seed=study.seed).wards
    assert gaps.sort_values("gap_rank")["ward_code"].iloc[0] == demo.PLANTED_GAP_WARDS[0]
    rate = wards["possession_rate_per_1000"]
    previous = wards["possession_previous_count"].astype(float) / wards["population"] * 1000
    for code in demo.PLANTED_RISING_WARDS:
        assert rate[code] > previous[code]
    for code in demo.PLANTED_FALLING_WARDS:
        assert rate[code] < previous[code]


def test_generate_twice_same_bytes_and_regenerate_reports_no_change(generated, tmp_path):
    _, first = generated
    second = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in demo.generate_demo(tmp_path / "b")}
    assert first == second
    assert demo.regenerate(tmp_path / "b") == []
    (tmp_path / "b" / demo.DEMO_DIR / "population.csv").write_text("tampered\n")
    assert demo.regenerate(tmp_path / "b") == [(demo.DEMO_DIR / "population.csv").as_posix()]


def test_other_seed_gives_other_numbers_same_codes(tmp_path):
    other = demo.build_files(seed=7)
    committed = (DEMO / "mps_ward_level_crime.csv").read_text(encoding="utf-8")
    assert other[demo.DEMO_DIR / "mps_ward_level_crime.csv"] != committed
    pop = pd.read_csv(io.StringIO(other[demo.DEMO_DIR / "population.csv"]))
    assert list(pop.WD22CD) == [w.code for w in demo.WARDS]


def test_demo_files_are_small():
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    total += (ROOT / demo.BOUNDARY_FILE).stat().st_size
    assert total < 2_500_000


def _study_year_parts(files: dict[str, str]) -> dict[str, str]:
    """The 2025 (study period) part of every file that spans both years, as text."""
    police = "".join(files[f"police_uk/{m}-northmere-street.csv"] for m in demo.MONTHS)
    rows = list(csv.reader(io.StringIO(files["mps_ward_level_crime.csv"])))
    keep = [j for j, c in enumerate(rows[0]) if not c.isdigit() or c in STUDY_COLUMNS]
    mps = demo._csv_text([[r[j] for j in keep] for r in rows])
    rows = list(csv.reader(io.StringIO(files["asb_warnings.csv"])))
    asb = demo._csv_text([rows[0]] + [r for r in rows[1:] if r[2] in demo.MONTHS])
    return {"police_uk": police, "mps": mps, "asb": asb}


def _previous_year_parts(files: dict[str, str]) -> str:
    police = "".join(files[f"police_uk/{m}-northmere-street.csv"] for m in demo.PREVIOUS_MONTHS)
    rows = list(csv.reader(io.StringIO(files["mps_ward_level_crime.csv"])))
    keep = [j for j, c in enumerate(rows[0]) if c in PREVIOUS_COLUMNS]
    return police + demo._csv_text([[r[j] for j in keep] for r in rows])


def test_study_year_data_unchanged_by_the_previous_year(monkeypatch):
    # 2024 draws from generators of its own: planting a different change in 2024 must leave
    # every 2025 number of the committed files as it is (other tests rely on those counts).
    committed = {p.relative_to(DEMO).as_posix(): p.read_text(encoding="utf-8")
                 for p in DEMO.rglob("*") if p.is_file()}
    monkeypatch.setattr(demo, "FALLING_POSSESSION_FACTOR", 3.0)
    monkeypatch.setattr(demo, "RISING_POSSESSION_FACTOR", 1.2)
    other = {rel.relative_to(demo.DEMO_DIR).as_posix(): text for rel, text in demo.build_files().items()
             if rel.parts[:2] == demo.DEMO_DIR.parts}
    assert _previous_year_parts(other) != _previous_year_parts(committed)
    assert _study_year_parts(other) == _study_year_parts(committed)


# --- boundaries ------------------------------------------------------------------------------


def test_ward_codes_unique_fictional_and_properties(wards):
    data = json.loads((ROOT / demo.BOUNDARY_FILE).read_text(encoding="utf-8"))
    props = [f["properties"] for f in data["features"]]
    codes = [p["WD22CD"] for p in props]
    assert 22 <= len(codes) <= 24
    assert len(set(codes)) == len(codes)
    assert all(c.startswith("E05999") and len(c) == 9 for c in codes)
    assert {tuple(sorted(p)) for p in props} == {("LAD22CD", "LAD22NM", "WD22CD", "WD22NM")}
    assert {p["LAD22CD"] for p in props} == {"E09999999"}
    assert {p["LAD22NM"] for p in props} == {"Northmere (demo)"}
    assert len({p["WD22NM"] for p in props}) == len(props)


def test_coordinates_are_rounded_lonlat_at_sea():
    data = json.loads((ROOT / demo.BOUNDARY_FILE).read_text(encoding="utf-8"))
    coords = np.array([xy for f in data["features"] for xy in f["geometry"]["coordinates"][0]])
    assert np.allclose(coords, np.round(coords, 6), atol=0, rtol=0)
    x, y = _TO_BNG.transform(coords[:, 0], coords[:, 1])
    # Open sea off the Suffolk coast: nowhere near a real borough.
    assert 660_000 <= x.min() and x.max() <= 670_000
    assert 240_000 <= y.min() and y.max() <= 250_000


def test_wards_form_a_valid_coverage(wards):
    polys = list(wards.values())
    assert all(p.is_valid and p.geom_type == "Polygon" for p in polys)
    assert shapely.coverage_is_valid(polys)
    union = shapely.union_all(polys)
    assert union.geom_type == "Polygon" and len(union.interiors) == 0
    assert union.area == pytest.approx(sum(p.area for p in polys), rel=1e-9)
    assert 35e6 < union.area < 60e6  # about 8 km x 6 km, irregular


def test_every_ward_has_a_queen_neighbour(wards):
    codes = list(wards)
    tree = shapely.STRtree(list(wards.values()))
    for i, code in enumerate(codes):
        hits = [j for j in tree.query(wards[code], predicate="touches") if j != i]
        assert hits, f"{code} has no neighbour"


def _neighbours(wards, code):
    return {c for c, p in wards.items() if c != code and p.touches(wards[code])}


def test_planted_clusters_are_contiguous(wards):
    for group in (demo.PLANTED_POSSESSION_CLUSTER, demo.PLANTED_LOW_CLUSTER):
        assert set(group) <= set(wards)
        reached, todo = {group[0]}, [group[0]]
        while todo:
            for n in _neighbours(wards, todo.pop()) & set(group):
                if n not in reached:
                    reached.add(n)
                    todo.append(n)
        assert reached == set(group)
    assert "E05999020" in demo.PLANTED_POSSESSION_CLUSTER  # the town centre


def test_gap_wards_at_the_edge_and_not_next_to_the_cluster(wards):
    outline = shapely.union_all(list(wards.values()))
    for code in demo.PLANTED_GAP_WARDS:
        assert wards[code].boundary.intersection(outline.boundary).length > 500
        assert not _neighbours(wards, code) & set(demo.PLANTED_POSSESSION_CLUSTER)
        assert code not in demo.PLANTED_POSSESSION_CLUSTER + demo.PLANTED_LOW_CLUSTER


# --- services --------------------------------------------------------------------------------


def test_gap_wards_far_from_every_service_and_needle_exchange(wards):
    services = pd.read_csv(DEMO / "treatment_services.csv")
    assert list(services.columns) == ["name", "service_type", "address", "easting", "northing"]
    assert 4 <= len(services) <= 6
    pharm = pd.read_csv(DEMO / "pharmacies.csv", keep_default_na=False)
    assert set(pharm.needle_exchange) == {"Yes", "No"}
    nsp = pharm[pharm.needle_exchange == "Yes"]
    assert 0.25 <= len(nsp) / len(pharm) <= 0.4
    assert set(nsp.nsp_level) <= {"Level 1", "Level 2"} and set(pharm[pharm.needle_exchange == "No"].nsp_level) == {""}
    nx, ny = _TO_BNG.transform(nsp.longitude.to_numpy(float), nsp.latitude.to_numpy(float))
    points = np.vstack([services[["easting", "northing"]].to_numpy(float), np.column_stack([nx, ny])])
    for code in demo.PLANTED_GAP_WARDS:
        c = _centroid(wards, code)
        dist = np.hypot(points[:, 0] - c.x, points[:, 1] - c.y)
        assert dist.min() >= demo.GAP_MIN_DISTANCE_M
    # ...while an ordinary pharmacy is close: the gap is about needle exchanges, not pharmacies.
    px, py = _TO_BNG.transform(pharm.longitude.to_numpy(float), pharm.latitude.to_numpy(float))
    c = _centroid(wards, demo.PLANTED_GAP_WARDS[0])
    assert np.hypot(px - c.x, py - c.y).min() < demo.GAP_MIN_DISTANCE_M


def test_all_services_and_pharmacies_inside_the_borough(wards):
    outline = shapely.union_all(list(wards.values()))
    services = pd.read_csv(DEMO / "treatment_services.csv")
    pharm = pd.read_csv(DEMO / "pharmacies.csv", keep_default_na=False)
    px, py = _TO_BNG.transform(pharm.longitude.to_numpy(float), pharm.latitude.to_numpy(float))
    assert shapely.contains_xy(outline, services.easting, services.northing).all()
    assert shapely.contains_xy(outline, px, py).all()


def test_hotspot_estate_inside_its_ward(wards):
    data = json.loads((DEMO / "estates.geojson").read_text(encoding="utf-8"))
    estates = {f["properties"]["name"]: (f["properties"], _bng(shape(f["geometry"])))
               for f in data["features"]}
    assert 6 <= len(estates) <= 10
    assert {tuple(sorted(p)) for p, _ in estates.values()} == {("homes", "landlord", "name")}
    _, hotspot = estates[demo.PLANTED_HOTSPOT_ESTATE]
    assert wards[demo.PLANTED_ESTATE_WARD].contains(hotspot)
    for _, poly in estates.values():
        assert sum(w.contains(poly) for w in wards.values()) == 1


# --- MPS ward-level table ----------------------------------------------------------------------


def test_mps_header_and_drug_totals(mps):
    # 24 month columns, chronological (2024-01 ... 2025-12), as in the London Datastore file.
    months = PREVIOUS_COLUMNS + STUDY_COLUMNS
    assert months == [m.replace("-", "") for m in demo.ALL_MONTHS] and months == sorted(months)
    assert len(months) == 24
    assert list(mps.columns) == ["MajorText", "MinorText", "WardName", "WardCode", "LookUp_BoroughName"] + months
    drugs = mps[mps.MajorText == "Drug Offences"]
    assert set(drugs.MinorText) == {"Possession of Drugs", "Drug Trafficking"}
    north = drugs[drugs.LookUp_BoroughName == demo.LAD_NAME]
    assert set(north.WardCode) == {w.code for w in demo.WARDS}
    total = north.groupby("WardCode")[months].sum()
    parts = (north[north.MinorText == "Possession of Drugs"].set_index("WardCode")[months]
             + north[north.MinorText == "Drug Trafficking"].set_index("WardCode")[months])
    pd.testing.assert_frame_equal(total.sort_index(), parts.sort_index(), check_names=False)
    # Small counts exist, for the suppression tests downstream.
    values = north[months].to_numpy().ravel()
    assert ((values >= 1) & (values <= 4)).sum() > 50


def test_mps_has_rows_to_filter_out(mps):
    assert (mps.MajorText != "Drug Offences").sum() > 0
    other = mps[mps.LookUp_BoroughName != demo.LAD_NAME]
    assert set(other.LookUp_BoroughName) == {"Southmere (demo)"}
    assert 2 <= other.WardCode.nunique() <= 3 and other.WardCode.str.startswith("E05998").all()


def test_mps_planted_rates(mps):
    months = STUDY_COLUMNS
    pop = pd.read_csv(DEMO / "population.csv").set_index("WD22CD").population
    north = mps[mps.LookUp_BoroughName == demo.LAD_NAME]
    year = north.assign(total=north[months].sum(axis=1)).pivot(index="WardCode", columns="MinorText", values="total")
    poss = year["Possession of Drugs"] / pop * 1000
    traf = year["Drug Trafficking"] / pop * 1000
    cluster, low = list(demo.PLANTED_POSSESSION_CLUSTER), list(demo.PLANTED_LOW_CLUSTER)
    rest = poss.drop(cluster + low + list(demo.PLANTED_GAP_WARDS))
    assert poss[cluster].min() > 10 and poss[low].max() < 1.5 and rest.max() < 8
    assert traf.idxmax() == demo.PLANTED_ESTATE_WARD and traf.max() > 4 * traf.median()
    for code in demo.PLANTED_GAP_WARDS:  # top quintile of possession
        assert poss.rank(pct=True)[code] >= 0.8


def _mps_year_totals(mps, minor: str) -> pd.DataFrame:
    """Northmere ward -> (previous, study) year totals of one MPS minor category."""
    rows = mps[(mps.LookUp_BoroughName == demo.LAD_NAME) & (mps.MinorText == minor)].set_index("WardCode")
    return pd.DataFrame({"previous": rows[PREVIOUS_COLUMNS].sum(axis=1), "study": rows[STUDY_COLUMNS].sum(axis=1)})


def test_study_period_and_previous_period():
    assert demo.MONTHS == tuple(f"2025-{m:02d}" for m in range(1, 13))
    assert demo.PREVIOUS_MONTHS == tuple(f"2024-{m:02d}" for m in range(1, 13))
    assert demo.ALL_MONTHS == demo.PREVIOUS_MONTHS + demo.MONTHS
    assert 'period = ["2025-01", "2025-12"]' in (DEMO / "study.toml").read_text(encoding="utf-8")


def test_planted_change_constants():
    assert 1 <= len(demo.PLANTED_RISING_WARDS) <= 2
    assert set(demo.PLANTED_RISING_WARDS) <= set(demo.PLANTED_POSSESSION_CLUSTER)
    assert not set(demo.PLANTED_FALLING_WARDS) & set(
        demo.PLANTED_RISING_WARDS + demo.PLANTED_POSSESSION_CLUSTER + demo.PLANTED_GAP_WARDS)
    assert 1.6 <= demo.RISING_POSSESSION_FACTOR <= 2.0 and demo.FALLING_POSSESSION_FACTOR == 2.0
    now, before = demo.ward_rates(), demo.ward_rates(previous=True)
    changed = {demo.WARDS[i].code for i in np.flatnonzero(now["possession"] != before["possession"])}
    assert changed == set(demo.PLANTED_RISING_WARDS + demo.PLANTED_FALLING_WARDS)
    for key in ("trafficking", "asb"):
        np.testing.assert_array_equal(now[key], before[key])


def test_mps_planted_change_against_the_previous_year(mps):
    poss = _mps_year_totals(mps, "Possession of Drugs")
    change = poss.study / poss.previous
    rising, falling = list(demo.PLANTED_RISING_WARDS), list(demo.PLANTED_FALLING_WARDS)
    # Rising wards: each clearly up, together about +60-100 %.
    assert (change[rising] > 1.6).all()
    together = poss.study[rising].sum() / poss.previous[rising].sum()
    assert 1.6 <= together <= 2.0
    # Falling ward: down by about half.
    assert change[falling].between(0.4, 0.6).all()
    # Everyone else: similar (Poisson noise) - the borough total within 10 %, and every ward
    # with enough counts to judge within -35 %/+50 %, below the rising and above the falling wards.
    rest = poss.drop(rising + falling)
    assert 0.9 <= rest.study.sum() / rest.previous.sum() <= 1.1
    big = rest[(rest.previous >= 30) & (rest.study >= 30)]
    assert len(big) >= 6
    ratio = big.study / big.previous
    assert ratio.between(0.65, 1.5).all()
    assert ratio.max() < change[rising].min() and ratio.min() > change[falling].max()
    # The cluster existed in 2024 too, weaker.
    pop = pd.read_csv(DEMO / "population.csv").set_index("WD22CD").population
    rate = poss.previous / pop * 1000
    cluster = list(demo.PLANTED_POSSESSION_CLUSTER)
    assert rate[cluster].mean() > 2 * rate.median()
    assert rate[cluster].mean() < (poss.study / pop * 1000)[cluster].mean()
    # Trafficking and ASB warnings: no planted change, the borough totals are similar.
    traf = _mps_year_totals(mps, "Drug Trafficking")
    assert 0.8 <= traf.study.sum() / traf.previous.sum() <= 1.25
    asb = pd.read_csv(DEMO / "asb_warnings.csv")
    year = asb.groupby(asb.month.str[:4]).warnings.sum()
    assert 0.8 <= year["2025"] / year["2024"] <= 1.25


# --- other tables ------------------------------------------------------------------------------


def test_population_and_asb_warnings():
    pop = pd.read_csv(DEMO / "population.csv")
    assert list(pop.columns) == ["WD22CD", "WD22NM", "population"]
    assert pop.population.between(6_000, 14_000).all()
    asb = pd.read_csv(DEMO / "asb_warnings.csv")
    assert list(asb.columns) == ["ward_code", "ward_name", "month", "warnings"]
    assert len(asb) == len(pop) * 24 and not asb.duplicated(["ward_code", "month"]).any()
    assert set(asb.month) == set(demo.ALL_MONTHS)
    study = asb[asb.month.isin(demo.MONTHS)]
    rate = study.groupby("ward_code").warnings.sum() / pop.set_index("WD22CD").population
    for code in demo.PLANTED_GAP_WARDS:
        assert rate.rank(pct=True)[code] >= 0.8


def test_study_file_loads():
    from geomisuse.config import load_study

    study = load_study(DEMO / "study.toml")
    assert study.demo and study.borough == "Northmere (demo)"
    assert study.period == ("2025-01", "2025-12")
    assert study.boundaries.paths[0] == (ROOT / demo.BOUNDARY_FILE).resolve()
    for spec in study.layers.values():
        assert all(p.exists() for p in spec.paths)


# --- police.uk -------------------------------------------------------------------------------


def test_police_uk_files_have_the_real_header():
    files = sorted(POLICE.glob("*.csv"))
    assert len(files) == 24
    assert [f.name for f in files] == [f"{m}-northmere-street.csv" for m in demo.ALL_MONTHS]
    for f in files:
        with open(f, newline="", encoding="utf-8") as fh:
            assert next(csv.reader(fh)) == [
                "Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location",
                "LSOA code", "LSOA name", "Crime type", "Last outcome category", "Context"]


def test_police_uk_rows(police):
    assert (police.Month == police.file.str[:7]).all()
    assert set(police["Reported by"]) == set(police["Falls within"]) == {"Northmere Constabulary (demo)"}
    assert set(police["Crime type"]) == {
        "Drugs", "Anti-social behaviour", "Burglary", "Vehicle crime", "Violence and sexual offences",
        "Shoplifting", "Criminal damage and arson", "Other theft"}
    per_month = police.groupby("Month").size()
    assert per_month.between(300, 1_500).all()
    asb = police["Crime type"] == "Anti-social behaviour"
    assert (police.loc[asb, "Crime ID"] == "").all() and (police.loc[asb, "Last outcome category"] == "").all()
    assert police.loc[~asb, "Crime ID"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert police.loc[~asb, "Crime ID"].is_unique
    # Snapped to a fixed set of points: coordinates repeat a lot.
    located = police[police.Longitude != ""]
    assert located.Longitude.str.fullmatch(r"-?\d+\.\d{6}").all()
    n_points = located[["Longitude", "Latitude"]].drop_duplicates().shape[0]
    assert 200 <= n_points <= 600 and n_points < len(located) / 5
    assert located.Location.str.startswith("On or near ").all()
    assert located["LSOA code"].str.fullmatch(r"E0199[89]\d{3}").all()


def test_police_uk_rows_without_coordinates(police):
    missing = police[police.Longitude == ""]
    share = len(missing) / len(police)
    assert share == pytest.approx(demo.NO_LOCATION_SHARE, abs=0.006)
    assert (missing.Latitude == "").all() and (missing["LSOA code"] == "").all()
    assert (missing.Location == "No Location").all()


def test_police_uk_rows_outside_borough(police, wards):
    outline = shapely.union_all(list(wards.values()))
    located = police[police.Longitude != ""]
    x, y = _TO_BNG.transform(located.Longitude.to_numpy(float), located.Latitude.to_numpy(float))
    inside = shapely.contains_xy(outline, x, y)
    share = (~inside).sum() / len(police)
    assert share == pytest.approx(demo.OUTSIDE_SHARE, abs=0.005)
    d = shapely.distance(outline, shapely.points(x[~inside], y[~inside]))
    assert d.min() >= 250 and d.max() <= 3_100
    assert located.loc[~inside, "LSOA name"].str.startswith("Southmere").all()


def test_police_uk_drugs_follow_the_planted_pattern(police, wards):
    drugs = police[(police["Crime type"] == "Drugs") & (police.Longitude != "")]
    x, y = _TO_BNG.transform(drugs.Longitude.to_numpy(float), drugs.Latitude.to_numpy(float))
    pop = pd.read_csv(DEMO / "population.csv").set_index("WD22CD").population
    counts = pd.Series({c: shapely.contains_xy(p, x, y).sum() for c, p in wards.items()})
    rate = counts / pop * 1000
    assert rate[list(demo.PLANTED_POSSESSION_CLUSTER)].mean() > 2 * rate.median()
    assert rate[list(demo.PLANTED_LOW_CLUSTER)].mean() < 0.5 * rate.median()
    data = json.loads((DEMO / "estates.geojson").read_text(encoding="utf-8"))
    hotspot = next(_bng(shape(f["geometry"])) for f in data["features"]
                   if f["properties"]["name"] == demo.PLANTED_HOTSPOT_ESTATE)
    on_estate = shapely.contains_xy(hotspot, x, y).sum()
    assert on_estate > 0.5 * counts[demo.PLANTED_ESTATE_WARD]


def test_police_uk_drugs_follow_the_planted_change(police, wards):
    drugs = police[(police["Crime type"] == "Drugs") & (police.Longitude != "")]
    x, y = _TO_BNG.transform(drugs.Longitude.to_numpy(float), drugs.Latitude.to_numpy(float))
    previous = drugs.Month.isin(demo.PREVIOUS_MONTHS).to_numpy()
    counts = pd.DataFrame({c: {"previous": shapely.contains_xy(p, x[previous], y[previous]).sum(),
                               "study": shapely.contains_xy(p, x[~previous], y[~previous]).sum()}
                           for c, p in wards.items()}).T
    rising, falling = list(demo.PLANTED_RISING_WARDS), list(demo.PLANTED_FALLING_WARDS)
    assert counts.study[rising].sum() > 1.4 * counts.previous[rising].sum()
    assert counts.study[falling].sum() < 0.75 * counts.previous[falling].sum()
    rest = counts.drop(rising + falling)
    assert 0.85 <= rest.study.sum() / rest.previous.sum() <= 1.15
