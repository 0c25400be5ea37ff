"""Bad input: a one-line error naming the file, row or column and the fix; exit code 2; no
traceback; no output written. Problems that are not errors are warned about and accounted."""

from __future__ import annotations

from pathlib import Path

import shapely

from conftest import ORIGIN, run_cli, tiny_wards
from test_layers import HEADER, add_layer, crime_row


def assert_input_error(folder: Path, *expected: str) -> str:
    out = folder / "out"
    result = run_cli("run", str(folder / "study.toml"), "--out", str(out))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert not out.exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".out")]
    return lines[0]


def write_police(folder: Path, rows: list[str]) -> None:
    (folder / "police.csv").write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    add_layer(folder, '[layers.police_uk]\npath = "police.csv"')


def test_missing_study_file(tmp_path):
    result = run_cli("run", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "nope.toml: study file not found" in result.stderr


def test_missing_layer_file(tiny):
    add_layer(tiny, '[layers.population]\npath = "population.csv"')
    assert_input_error(tiny, "population.csv", "not found", "check the path")


def test_misnamed_column(tiny):
    (tiny / "population.csv").write_text("ward,residents_2021\nE05000001,100\n")
    add_layer(tiny, '[layers.population]\npath = "population.csv"')
    assert_input_error(tiny, "population.csv", "no population column", "residents_2021", "map it in the study file")


def test_unparseable_month(tiny):
    write_police(tiny, [crime_row("Jan 2025", "Drugs", 500, 500), crime_row("Feb 2025", "Drugs", 500, 500)])
    assert_input_error(tiny, "police.csv", "row 2", "'Jan 2025' is not YYYY-MM", "Month")


def test_one_unparseable_month_is_listed_not_fatal(tiny):
    write_police(tiny, [crime_row("2025-01", "Drugs", 500, 500), crime_row("2025-01", "Drugs", 500, 500),
                        crime_row("January", "Drugs", 500, 500)])
    result = run_cli("validate", str(tiny / "study.toml"))
    assert result.returncode == 0, result.stderr
    assert "unparseable month: 1" in result.stdout


def test_empty_file(tiny):
    (tiny / "police.csv").write_text("")
    add_layer(tiny, '[layers.police_uk]\npath = "police.csv"')
    assert_input_error(tiny, "police.csv", "is empty")


def test_header_only_file_reads_as_no_rows(tiny):
    (tiny / "police.csv").write_text(HEADER + "\n")
    add_layer(tiny, '[layers.police_uk]\npath = "police.csv"')
    result = run_cli("validate", str(tiny / "study.toml"))
    assert result.returncode == 0, result.stderr
    assert "police_uk           read        0" in result.stdout


def test_lat_lon_swapped(tiny):
    rows = [crime_row("2025-01", "Drugs", 500, 500) for _ in range(3)]
    swapped = []
    for row in rows:
        cells = row.split(",")
        cells[4], cells[5] = cells[5], cells[4]
        swapped.append(",".join(cells))
    write_police(tiny, swapped)
    assert_input_error(tiny, "police.csv", "longitude and latitude look swapped", "Longitude")


def test_outside_coordinates_are_unmatched_not_an_error(tiny):
    write_police(tiny, [crime_row("2025-01", "Drugs", 500, 500), crime_row("2025-01", "Drugs", 50_000, 500)])
    result = run_cli("validate", str(tiny / "study.toml"))
    assert result.returncode == 0
    assert "outside the study area: 1" in result.stdout


def test_duplicate_ward_codes(tiny):
    wards = tiny_wards()
    wards.loc[1, "WD22CD"] = "E05000001"
    wards.to_file(tiny / "wards.geojson", driver="GeoJSON")
    assert_input_error(tiny, "wards.geojson", "duplicate ward code E05000001", "features 1, 2", "dissolve")


def test_invalid_polygon_is_repaired_with_a_warning(tiny):
    wards = tiny_wards()
    x0, y0 = ORIGIN
    # A self-intersecting "bow tie" for ward 1.
    wards.loc[0, "geometry"] = shapely.Polygon([(x0, y0), (x0 + 1000, y0 + 1000), (x0 + 1000, y0), (x0, y0 + 1000)])
    wards.to_file(tiny / "wards.gpkg", driver="GPKG")
    (tiny / "study.toml").write_text((tiny / "study.toml").read_text().replace("wards.geojson", "wards.gpkg"))
    result = run_cli("validate", str(tiny / "study.toml"))
    assert result.returncode == 0, result.stderr
    assert "repaired 1 invalid ward polygon(s) (Alpha)" in result.stderr


def test_population_missing_for_a_ward_is_warned_and_rate_left_empty(tiny):
    (tiny / "population.csv").write_text("ward_code,population\n" + "".join(
        f"E0500000{i},1000\n" for i in range(1, 6)))
    write_police(tiny, [crime_row("2025-01", "Drugs", 2500, 1500)])
    result = run_cli("validate", str(tiny / "study.toml"))
    assert result.returncode == 0
    add_layer(tiny, '[layers.population]\npath = "population.csv"')
    result = run_cli("validate", str(tiny / "study.toml"))
    assert "no population for 1 ward(s) (Foxtrot); their rates are left empty" in result.stderr


def test_bad_month_column_in_mps_file(tiny):
    (tiny / "mps.csv").write_text("MajorText,MinorText,WardName,WardCode,LookUp_BoroughName,202513\n"
                                  "Drug Offences,Possession of Drugs,Alpha,E05000001,Tiny,3\n")
    add_layer(tiny, '[layers.mps_ward]\npath = "mps.csv"')
    assert_input_error(tiny, "mps.csv", "month column '202513' is not YYYYMM")


def test_unknown_study_key(tiny):
    (tiny / "study.toml").write_text((tiny / "study.toml").read_text().replace("[study]", "[study]\nperoid = 1"))
    assert_input_error(tiny, "study.toml", "[study] unknown key 'peroid'; did you mean 'period'?")


def assert_validate_refuses(folder: Path, expected: str) -> None:
    """``geomisuse validate`` stops with exit 2 and exactly ``FILE: expected`` on one line."""
    result = run_cli("validate", str(folder / "study.toml"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr == f"error: {folder / 'study.toml'}: {expected}\n"


def test_validate_refuses_a_typo_inside_a_layer_table(tiny):
    (tiny / "pop.csv").write_text("ward_code,population\nE05000001,100\n")
    add_layer(tiny, '[layers.population]\npath = "pop.csv"\nwher = {ward_code = "E05000001"}')
    assert_validate_refuses(tiny, "[layers.population] unknown key 'wher'; did you mean 'where'? "
                                  "keys are path, paths, where, columns, lookup, areas")


def test_validate_refuses_a_typo_inside_a_layer_column_mapping(tiny):
    (tiny / "pop.csv").write_text("area,people\nE05000001,100\n")
    add_layer(tiny, '[layers.population]\npath = "pop.csv"\ncolumns = {ward_code = "area", populaton = "people"}')
    assert_validate_refuses(tiny, "[layers.population.columns] unknown column field 'populaton'; did you mean "
                                  "'population'? column fields are ward_code, ward_name, population")


def test_validate_refuses_a_string_boolean(tiny):
    add_layer(tiny, '[publish]\noffline = "no"')
    assert_validate_refuses(tiny, '[publish] offline = "no": must be true or false (TOML booleans, without quotes)')


def test_validate_refuses_a_bad_gaps_value(tiny):
    add_layer(tiny, "[gaps]\nwalk_threshold_min = 0")
    assert_validate_refuses(tiny, "[gaps] walk_threshold_min = 0: must be above 0")


def test_validate_refuses_a_bad_gaps_choice(tiny):
    add_layer(tiny, '[gaps]\naccess_rule = "either"')
    assert_validate_refuses(tiny, "[gaps] access_rule = \"either\": must be 'each_kind' or 'any_service'")


def test_validate_refuses_a_bad_publish_value(tiny):
    add_layer(tiny, "[publish]\nsuppression_threshold = 0")
    assert_validate_refuses(tiny, "[publish] suppression_threshold = 0: must be at least 1")


def test_validate_refuses_a_bad_clusters_value(tiny):
    # The tiny borough has too few wards for the cluster stage: validate still checks its table.
    add_layer(tiny, "[clusters]\nalpha = 1.5")
    assert_validate_refuses(tiny, "[clusters] alpha = 1.5: must be below 1")


def test_not_a_geodata_file(tiny):
    (tiny / "wards.geojson").write_text("this is not json")
    assert_input_error(tiny, "wards.geojson", "cannot read")
