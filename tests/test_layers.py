"""Loaders: each reads its real-world format and accounts for every row."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest
from pyproj import Transformer

from geomisuse.errors import InputError
from geomisuse.pipeline import prepare
from geomisuse.config import load_study

from conftest import ORIGIN

HEADER = "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Crime type," \
         "Last outcome category,Context"
TO_LONLAT = Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)


def lonlat(dx: float, dy: float) -> tuple[float, float]:
    """Lon/lat of a point dx, dy metres from the tiny borough's south-west corner."""
    return TO_LONLAT.transform(ORIGIN[0] + dx, ORIGIN[1] + dy)


def crime_row(month: str, crime_type: str, dx: float | None, dy: float | None) -> str:
    lon, lat = lonlat(dx, dy) if dx is not None else ("", "")
    lon = f"{lon:.6f}" if lon != "" else ""
    lat = f"{lat:.6f}" if lat != "" else ""
    return f"abc,{month},Force,Force,{lon},{lat},On or near Test Street,E01000001,Test 001A,{crime_type},,"


def add_layer(folder: Path, text: str) -> None:
    with open(folder / "study.toml", "a") as handle:
        handle.write("\n" + text + "\n")


def write_police(folder: Path) -> None:
    rows = [
        crime_row("2025-01", "Drugs", 500, 500),            # ward 1
        crime_row("2025-01", "Drugs", 1500, 500),           # ward 2
        crime_row("2025-02", "Anti-social behaviour", 2500, 1500),  # ward 6
        crime_row("2025-02", "Burglary", 500, 500),         # other type: excluded
        crime_row("2025-02", "Drugs", None, None),          # no coordinates
        crime_row("2025-02", "Drugs", 5000, 5000),          # outside the borough
        crime_row("2023-12", "Drugs", 500, 500),            # outside the period (and the one before)
    ]
    (folder / "police").mkdir()
    (folder / "police" / "2025-01-test-street.csv").write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    # API-style slugs in a zip, read alongside the folder.
    with zipfile.ZipFile(folder / "api.zip", "w") as archive:
        archive.writestr("2025-03.csv", HEADER + "\n" + crime_row("2025-03", "drugs", 500, 1500) + "\n"
                         + crime_row("2025-03", "anti-social-behaviour", 500, 1500) + "\n")


def test_police_uk_accounting_adds_up_and_counts_land_in_wards(tiny):
    write_police(tiny)
    add_layer(tiny, '[layers.police_uk]\npaths = ["police", "api.zip"]')
    add_layer(tiny, "")
    text = (tiny / "study.toml").read_text().replace('name = "Tiny"', 'name = "Tiny"\nperiod = ["2025-01", "2025-03"]')
    (tiny / "study.toml").write_text(text)
    run = prepare(load_study(tiny / "study.toml"))
    layer = run.layers["police_uk"]
    acc = layer.accounting()
    assert acc["rows_read"] == 9
    assert acc["rows_used"] == 5
    assert acc["rows_excluded"] == {"crime type not analysed: Burglary": 1, "month outside the study period": 1}
    assert acc["rows_rejected"] == {"no coordinates": 1, "outside the study area": 1}
    assert acc["rows_read"] == acc["rows_used"] + sum(acc["rows_excluded"].values()) + sum(acc["rows_rejected"].values())
    wards = run.wards.set_index("ward_code")
    assert wards["drug_offences_count"].to_dict() == {"E05000001": 1, "E05000002": 1, "E05000003": 0,
                                                      "E05000004": 1, "E05000005": 0, "E05000006": 0}
    assert wards["asb_count"].sum() == 2
    monthly = run.monthly.set_index(["ward_code", "month"])
    assert monthly.loc[("E05000004", "2025-03"), "drug_offences_count"] == 1
    rejected = layer.rejected.sort_values("row")
    assert rejected["reason"].tolist() == ["no coordinates", "outside the study area"]
    assert rejected["row"].tolist() == [6, 7]  # header is row 1


MPS_TITLE = """MajorText,MinorText,WardName,WardCode,LookUp_BoroughName,202501,202502
Drug Offences,Possession of Drugs,Alpha,E05000001,Tiny,3,4
Drug Offences,Drug Trafficking,Alpha,E05000001,Tiny,1,0
Drug Offences,Possession of Drugs,Bravo,E05000002,Tiny,10,12
Burglary,Burglary - Residential,Bravo,E05000002,Tiny,5,5
Burglary,Burglary - Residential,Charlie,E05000003,Tiny,1,0
Drug Offences,Possession of Drugs,Elsewhere,E05999999,Other,7,7
"""
MPS_UPPER = """MajorText,MinorText,WardName,WardCode,LookUp_BoroughName,202501,202502
DRUG OFFENCES,POSSESSION OF DRUGS,Alpha,E05000001,TINY,3,4
DRUG OFFENCES,TRAFFICKING OF DRUGS,Alpha,E05000001,TINY,1,0
DRUG OFFENCES,POSSESSION OF DRUGS,Bravo,E05000002,TINY,10,12
BURGLARY,BURGLARY - RESIDENTIAL,Bravo,E05000002,TINY,5,5
BURGLARY,BURGLARY - RESIDENTIAL,Charlie,E05000003,TINY,1,0
DRUG OFFENCES,POSSESSION OF DRUGS,Elsewhere,E05999999,OTHER,7,7
"""


@pytest.mark.parametrize("text", [MPS_TITLE, MPS_UPPER], ids=["title-case", "upper-case"])
def test_mps_ward_both_label_vintages(tiny, text):
    (tiny / "mps.csv").write_text(text)
    add_layer(tiny, '[layers.mps_ward]\npath = "mps.csv"')
    run = prepare(load_study(tiny / "study.toml"))
    wards = run.wards.set_index("ward_code")
    assert wards.loc["E05000001", ["possession_count", "trafficking_count", "drug_offences_count"]].tolist() == [7, 1, 8]
    assert wards.loc["E05000002", ["possession_count", "trafficking_count", "drug_offences_count"]].tolist() == [22, 0, 22]
    # A ward the file lists without drug rows had no recorded drug offence: 0.
    assert wards.loc["E05000003", "drug_offences_count"] == 0
    # Wards the file never lists are outside its coverage: no data, not zero, named in a warning.
    assert wards.loc[["E05000004", "E05000005", "E05000006"], "drug_offences_count"].isna().all()
    assert any("no data for 3 ward(s) (Delta, Echo, Foxtrot)" in w for w in run.warnings)
    assert run.manifest["measure_sources"]["drug_offences"] == {
        "mps_ward": ["E05000001", "E05000002", "E05000003"], "no data": ["E05000004", "E05000005", "E05000006"]}
    acc = run.layers["mps_ward"].accounting()
    assert acc["rows_read"] == 6 and acc["rows_used"] == 3
    assert acc["rows_excluded"] == {"crime category not analysed": 2, "ward not in the study area": 1}
    assert run.months == ["2025-01", "2025-02"]


def test_asb_warnings_table_matched_by_name_and_points(tiny):
    (tiny / "asb.csv").write_text("ward_name,month,warnings\nALPHA,2025-01,3\nBravo,2025-01,2\n"
                                  "Nowhere,2025-01,9\nAlpha,2025-02,x\n")
    add_layer(tiny, '[layers.asb_warnings]\npath = "asb.csv"')
    run = prepare(load_study(tiny / "study.toml"))
    assert run.wards.set_index("ward_code")["asb_count"].head(2).tolist() == [3, 2]
    acc = run.layers["asb_warnings"].accounting()
    assert acc["rows_excluded"] == {"ward not in the study area": 1}
    assert acc["rows_rejected"] == {"unparseable count": 1}


def test_asb_warnings_as_points(tiny):
    lon, lat = lonlat(2500, 500)
    (tiny / "asb.csv").write_text(f"month,longitude,latitude\n2025-01,{lon},{lat}\n2025-01,{lon},{lat}\n")
    add_layer(tiny, '[layers.asb_warnings]\npath = "asb.csv"')
    run = prepare(load_study(tiny / "study.toml"))
    assert run.wards.set_index("ward_code").loc["E05000003", "asb_count"] == 2


def test_sites_from_easting_northing_and_lonlat_with_needle_exchange_flag(tiny):
    x0, y0 = ORIGIN
    (tiny / "services.csv").write_text(f"name,service_type,easting,northing\nHub,Treatment hub,{x0 + 500},{y0 + 500}\n"
                                       f"Across the border,Recovery,{x0 + 9000},{y0 + 500}\n")
    lon, lat = lonlat(1500, 1500)
    (tiny / "pharmacies.csv").write_text(f"name,longitude,latitude,needle_exchange\nA,{lon},{lat},Yes\n"
                                         f"B,{lon},{lat},No\nC,{lon},{lat},maybe\nD,,,Yes\n")
    add_layer(tiny, '[layers.treatment_services]\npath = "services.csv"\n[layers.pharmacies]\npath = "pharmacies.csv"')
    run = prepare(load_study(tiny / "study.toml"))
    wards = run.wards.set_index("ward_code")
    assert wards["treatment_services_count"].to_dict()["E05000001"] == 1
    assert wards["treatment_services_count"].sum() == 1  # the one across the border serves but is not counted
    assert len(run.layer_table("treatment_services")) == 2
    assert wards.loc["E05000005", "needle_exchanges_count"] == 1
    acc = run.layers["pharmacies"].accounting()
    assert acc["rows_rejected"] == {"needle-exchange flag not Yes/No in column 'needle_exchange'": 1,
                                    "no coordinates": 1}
    assert run.needle_exchanges()["name"].tolist() == ["A"]
    assert run.other_pharmacies()["name"].tolist() == ["B"]


def test_estates_polygons_are_placed_in_one_ward(tiny):
    import geopandas as gpd
    import shapely

    x0, y0 = ORIGIN
    estate = shapely.box(x0 + 800, y0 + 100, x0 + 1100, y0 + 300)  # mostly in ward 1, a little in ward 2
    gpd.GeoDataFrame({"name": ["Test Estate"], "homes": [300]}, geometry=[estate], crs="EPSG:27700") \
        .to_file(tiny / "estates.gpkg", driver="GPKG")
    add_layer(tiny, '[layers.estates]\npath = "estates.gpkg"')
    run = prepare(load_study(tiny / "study.toml"))
    assert run.wards.set_index("ward_code")["estates_count"].to_dict()["E05000001"] == 1
    assert run.wards["estates_count"].sum() == 1


def test_population_nomis_format_cp1252_and_bom(tiny):
    # Nomis API output (quoted, GEOGRAPHY_CODE / OBS_VALUE) saved by Excel as Windows-1252 with a £ in a note.
    text = ('"GEOGRAPHY_NAME","GEOGRAPHY_CODE","OBS_VALUE","NOTE"\n'
            + "".join(f'"W{i}","E0500000{i}",{1000 * i},"£ n/a"\n' for i in range(1, 7)))
    (tiny / "population.csv").write_bytes(text.encode("cp1252"))
    (tiny / "population_bom.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    for name in ("population.csv", "population_bom.csv"):
        study = (tiny / "study.toml").read_text().split("[layers.population]")[0]
        (tiny / "study.toml").write_text(study + f'[layers.population]\npath = "{name}"\n')
        run = prepare(load_study(tiny / "study.toml"))
        assert run.wards["population"].tolist() == [1000.0 * i for i in range(1, 7)]


def test_cp1252_ward_names_match_boundaries(tiny):
    import geopandas as gpd

    from conftest import tiny_wards

    wards = tiny_wards()
    wards.loc[0, "WD22NM"] = "St. Kathérine's & Wapping"
    wards.to_file(tiny / "wards.geojson", driver="GeoJSON")
    (tiny / "asb.csv").write_bytes("ward_name,month,count\nSt Kathérine's and Wapping,2025-01,6\n".encode("cp1252"))
    add_layer(tiny, '[layers.asb_warnings]\npath = "asb.csv"')
    run = prepare(load_study(tiny / "study.toml"))
    assert run.wards.set_index("ward_code").loc["E05000001", "asb_count"] == 6
    assert gpd.read_file(tiny / "wards.geojson").loc[0, "WD22NM"] == "St. Kathérine's & Wapping"


def test_column_mapping_in_study_file(tiny):
    (tiny / "pop.csv").write_text("area,people\n" + "".join(f"E0500000{i},{i}\n" for i in range(1, 7)))
    add_layer(tiny, '[layers.population]\npath = "pop.csv"\ncolumns = {ward_code = "area", population = "people"}')
    run = prepare(load_study(tiny / "study.toml"))
    assert run.wards["population"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_unknown_layer_kind_is_an_input_error(tiny):
    add_layer(tiny, '[layers.needles]\npath = "x.csv"')
    with pytest.raises(InputError, match="unknown layer"):
        load_study(tiny / "study.toml")


def test_boundary_column_vintages(tmp_path):
    from conftest import tiny_wards

    from geomisuse.layers import load_boundaries
    from geomisuse.config import LayerSpec

    for code, name in (("GSS_CODE", "NAME"), ("ward22_code", "ward22_name"), ("wardcode", "name")):
        frame = tiny_wards().rename(columns={"WD22CD": code, "WD22NM": name})
        path = tmp_path / f"{code}.gpkg"
        frame.to_file(path, driver="GPKG")
        table = load_boundaries(LayerSpec("boundaries", [path])).table
        assert table["ward_code"].tolist()[:2] == ["E05000001", "E05000002"]
        assert table["ward_name"].tolist()[0] == "Alpha"
        assert abs(table["area_km2"].sum() - 6.0) < 1e-9
    assert pd.api.types.is_float_dtype(table["area_km2"])
