"""The pipeline on real London data (../shared/data/real, present in CI)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from geomisuse.pipeline import prepare
from geomisuse.config import load_study

pytestmark = pytest.mark.slow

TOWER_HAMLETS_MPS = [
    "mps_ward_level_crime_2021-09_2023-08_wards2022.csv",
    "mps_ward_level_crime_2023-04_2025-03_wards2022.csv",
]


def write_study(folder: Path, text: str) -> Path:
    path = folder / "study.toml"
    path.write_text(text)
    return path


def mps_source_sums(path: Path, codes, months: list[str]) -> pd.DataFrame:
    """Independent sums from the raw file: ward x measure over the months."""
    raw = pd.read_csv(path)
    raw = raw[raw["WardCode"].isin(codes) & (raw["MajorText"].str.lower() == "drug offences")]
    columns = [m.replace("-", "") for m in months]
    raw["total"] = raw[columns].sum(axis=1)
    minor = raw["MinorText"].str.lower().map({"possession of drugs": "possession", "drug trafficking": "trafficking",
                                              "trafficking of drugs": "trafficking"})
    sums = raw.assign(measure=minor).pivot_table(index="WardCode", columns="measure", values="total", aggfunc="sum")
    sums["drug_offences"] = raw.groupby("WardCode")["total"].sum()
    return sums.reindex(codes).fillna(0).astype(int)


@pytest.mark.parametrize("mps_file, period", [
    (TOWER_HAMLETS_MPS[0], ("2022-09", "2023-08")),
    (TOWER_HAMLETS_MPS[1], ("2024-04", "2025-03")),
], ids=["title-case-2022", "upper-case-2025"])
def test_tower_hamlets_full_resolution_census_population_mps(real, tmp_path, mps_file, period):
    from conftest import tower_hamlets_study

    run = prepare(load_study(tower_hamlets_study(real, tmp_path, period, mps_file)))
    wards = run.wards.set_index("ward_code")
    assert len(wards) == 20
    census = pd.read_csv(real / "population" / "census2021_ward2022_tower_hamlets_usual_residents.csv")
    assert wards["population"].sum() == census["OBS_VALUE"].sum() == 310_313  # Census 2021, rounds to 310,300
    assert abs(wards["area_km2"].sum() - 21.6) < 0.2
    months = run.months
    assert len(months) == 12
    expected = mps_source_sums(real / "mps_ward" / mps_file, wards.index, months)
    for measure in ("possession", "trafficking", "drug_offences"):
        assert (wards[f"{measure}_count"].astype(int) == expected[measure]).all(), measure
    assert (wards["drug_offences_count"] == wards["possession_count"] + wards["trafficking_count"]).all()
    rate = wards["possession_count"] / wards["population"] * 1000
    assert (abs(wards["possession_rate_per_1000"] - rate) < 1e-12).all()
    acc = run.layers["mps_ward"].accounting()
    assert acc["rows_read"] == acc["rows_used"] + sum(acc["rows_excluded"].values()) + sum(acc["rows_rejected"].values())
    assert acc["rows_rejected"] == {}
    # Drug rows of the 20 wards, both minor categories (rows with no crime in the window are absent).
    raw = pd.read_csv(real / "mps_ward" / mps_file)
    drug_rows = raw[raw["WardCode"].isin(wards.index) & (raw["MajorText"].str.lower() == "drug offences")]
    assert acc["rows_used"] == len(drug_rows)
    # The monthly table adds up to the period totals.
    assert (run.monthly.groupby("ward_code")["possession_count"].sum() == wards["possession_count"]).all()


def test_city_of_london_police_uk_accounting(real, tmp_path):
    study = write_study(tmp_path, f"""
[study]
name = "City of London"
[boundaries]
path = "{real}/boundaries/gla_london_wards_2014.gpkg"
where = {{LB_GSS_CD = "E09000001"}}
[layers.police_uk]
path = "{real}/police_uk/city_of_london_street"
""")
    run = prepare(load_study(study))
    layer = run.layers["police_uk"]
    acc = layer.accounting()
    assert acc["rows_read"] == 18_173
    assert len(layer.paths) == 24
    excluded_types = sum(v for k, v in acc["rows_excluded"].items() if k.startswith("crime type not analysed"))
    assert excluded_types == 18_173 - 1_055 - 505
    assert acc["rows_read"] == acc["rows_used"] + sum(acc["rows_excluded"].values()) + sum(acc["rows_rejected"].values())
    wards = run.wards
    assert len(wards) == 25
    assert wards["drug_offences_count"].sum() + wards["asb_count"].sum() == acc["rows_used"]

    # Independent check: geopandas sjoin of the raw Drugs/ASB rows with coordinates.
    raw = pd.concat([pd.read_csv(p) for p in sorted((real / "police_uk" / "city_of_london_street").glob("*.csv"))])
    raw = raw[raw["Crime type"].isin(["Drugs", "Anti-social behaviour"]) & raw["Longitude"].notna()]
    assert acc["rows_rejected"]["no coordinates"] == 1_055 + 505 - len(raw)
    points = gpd.GeoDataFrame(raw, geometry=gpd.points_from_xy(raw["Longitude"], raw["Latitude"]),
                              crs="EPSG:4326").to_crs("EPSG:27700")
    joined = gpd.sjoin(points, wards[["ward_code", "geometry"]], predicate="within")
    drugs = joined[joined["Crime type"] == "Drugs"].groupby("ward_code").size()
    assert (wards.set_index("ward_code")["drug_offences_count"] == drugs.reindex(wards["ward_code"]).fillna(0)).all()
    assert acc["rows_rejected"]["outside the study area"] == len(raw) - len(joined)
    # police.uk has no 2024 files: those months are missing, not zero.
    assert run.months[0] == "2023-01" and run.months[-1] == "2025-12"
    monthly = run.monthly.set_index(["ward_code", "month"])
    assert monthly.xs("2024-06", level="month")["drug_offences_count"].isna().all()
    assert any("no data for 12 month(s)" in w for w in run.warnings)


def test_tower_hamlets_full_run_with_real_pharmacies(real, tmp_path):
    """The whole job on real inputs: ward table, clusters, gaps, map, briefings, exports."""
    from conftest import run_cli

    study = write_study(tmp_path, f"""
[study]
name = "Tower Hamlets"
borough = "Tower Hamlets"
period = ["2024-04", "2025-03"]
sources = ["MPS ward-level crime (London Datastore, OGL)", "Census 2021 (ONS, OGL)", "NHS ODS (OGL)"]
[boundaries]
path = "{real}/boundaries/ons_wards2022_tower_hamlets_bfc.gpkg"
[layers.population]
path = "{real}/population/census2021_ward2022_tower_hamlets_usual_residents.csv"
[layers.mps_ward]
path = "{real}/mps_ward/mps_ward_level_crime_2024-03_2026-03_wards2022.csv"
[layers.pharmacies]
path = "{real}/services/nhs_ods_edispensary_london_geocoded.csv"
where = {{Status_Code = "A", cp_Admin_district_code = "E09000030"}}
""")
    out = tmp_path / "out"
    result = run_cli("run", str(study), "--out", str(out), "--tiles", "none")
    assert result.returncode == 0, result.stderr
    assert "no needle-exchange column" in result.stderr
    wards = pd.read_csv(out / "wards.csv")
    assert len(wards) == 20
    manifest = __import__("json").loads((out / "manifest.json").read_text())
    pharmacies = next(i for i in manifest["inputs"] if i["kind"] == "pharmacies")
    raw = pd.read_csv(real / "services" / "nhs_ods_edispensary_london_geocoded.csv", dtype=str)
    active = raw[(raw["Status_Code"] == "A") & (raw["cp_Admin_district_code"] == "E09000030")]
    assert pharmacies["rows_read"] == len(raw)
    assert pharmacies["rows_used"] + sum(pharmacies["rows_rejected"].values()) == len(active)
    assert int(wards["needle_exchanges_count"].sum()) == 0
    # No treatment services and no needle exchanges given: every ward lacks access, and says so.
    assert wards["gap_reason"].notna().all()
    assert set(manifest["clusters"]["measures"]) == {"possession", "trafficking", "drug_offences"}
    assert (out / "briefings" / "E05009317.html").is_file()
    assert "Bethnal Green" in (out / "map.html").read_text()


def test_gla_ward_profiles_latin1_population_for_2014_wards(real, tmp_path):
    """A real Windows-1252/latin-1 file (the £ sign) read as it comes, matched by 'New code'."""
    study = write_study(tmp_path, f"""
[boundaries]
path = "{real}/boundaries/gla_london_wards_2014.gpkg"
where = {{BOROUGH = "Harrow"}}
[layers.population]
path = "{real}/population/gla_ward_profiles_2015_latin1.csv"
columns = {{ward_code = "New code", population = "Population - 2015"}}
""")
    run = prepare(load_study(study))
    raw = pd.read_csv(real / "population" / "gla_ward_profiles_2015_latin1.csv", encoding="latin-1")
    wards = run.wards
    assert len(wards) == 21 and wards["population"].notna().all()
    harrow = raw[raw["New code"].isin(wards["ward_code"])]
    expected = harrow.set_index("New code")["Population - 2015"].reindex(wards["ward_code"])
    # Excel wrote thousands separators ("11,650"): read as numbers.
    assert (wards["population"].to_numpy() == pd.to_numeric(expected.str.replace(",", "")).to_numpy()).all()
    acc = run.layers["population"].accounting()
    assert acc["rows_read"] == len(raw) and acc["rows_used"] == 21
    assert acc["rows_excluded"] == {"ward not in the study area": len(raw) - 21}


def test_met_police_api_output_with_slugs_for_harrow(real, tmp_path):
    """Real Met data from the police.uk API (slugs, lower-case columns, no LSOA) on Harrow's 2018 wards."""
    api = real / "police_uk" / "police_api_wardpoly_2017-07_2018-06_harrow_barnet_havering_all_crime.csv"
    study = write_study(tmp_path, f"""
[study]
period = ["2017-07", "2018-06"]
[boundaries]
path = "{real}/boundaries/gla_london_wards_2018.gpkg"
where = {{DISTRICT = "Harrow"}}
[layers.police_uk]
path = "{api}"
""")
    run = prepare(load_study(study))
    acc = run.layers["police_uk"].accounting()
    raw = pd.read_csv(api)
    assert acc["rows_read"] == len(raw) == 74_339
    analysed = raw[raw["category"].isin(["drugs", "anti-social-behaviour"])]
    assert sum(v for k, v in acc["rows_excluded"].items() if k.startswith("crime type")) == len(raw) - len(analysed)
    # Independent: which analysed points fall in Harrow's wards.
    points = gpd.GeoDataFrame(analysed, geometry=gpd.points_from_xy(analysed["longitude"], analysed["latitude"]),
                              crs="EPSG:4326").to_crs("EPSG:27700")
    inside = gpd.sjoin(points, run.wards[["ward_code", "geometry"]], predicate="intersects")
    inside = inside[~inside.index.duplicated()]
    assert acc["rows_used"] == len(inside)
    assert acc["rows_rejected"] == {"outside the study area": len(analysed) - len(inside)}
    drugs = inside[inside["category"] == "drugs"]
    assert run.wards["drug_offences_count"].sum() == len(drugs)
    # The Harrow query returned 476 drug offences; nearly all fall inside Harrow's wards.
    harrow_drugs = analysed[(analysed["query_borough"] == "Harrow") & (analysed["category"] == "drugs")]
    assert len(harrow_drugs) == 476
    assert len(drugs) >= 0.95 * len(harrow_drugs)
