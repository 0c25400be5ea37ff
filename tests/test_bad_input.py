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
                                  "keys are path, paths, where, columns, public, lookup, areas")


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


# ---------------------------------------------------------------------------------------------
# The contract (README, "Bad input"): one test per clause and input class.
# ---------------------------------------------------------------------------------------------

import copy
import csv
import io
import json
import math
import os

import pandas as pd
import pytest

from conftest import ROOT, TINY_CODES, write_tiny
from geomisuse.config import load_study
from geomisuse.errors import InputError
from geomisuse.layers.base import (MOSTLY_REJECTED_SHARE, PLACEMENT_MARGIN_M, decode_text, number_problems,
                                   to_number)
from geomisuse.pipeline import prepare
from geomisuse.publish import tables
from geomisuse.publish.briefings.pages import RESERVED_PAGE_NAMES, page_names
from geomisuse.publish.escaping import neutralise_csv, terminal_text
from geomisuse.publish.tables import OUTPUT_MARKER, PublishSettings, check_out_folder, write_outputs
from test_layers import lonlat


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), to show nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def tiny_police(folder: Path, n: int = 6) -> None:
    """``n`` drug offences in January 2025, spread over the tiny wards in turn (``n // 6`` each)."""
    rows = [crime_row("2025-01", "Drugs", 500 + 1000 * (i % 3), 500 + 1000 * (i % 6 // 3)) for i in range(n)]
    write_police(folder, rows)


def tiny_population(folder: Path, values: list[str]) -> None:
    (folder / "population.csv").write_text("ward_code,population\n" + "".join(
        f"{code},{value}\n" for code, value in zip(TINY_CODES, values)))
    add_layer(folder, '[layers.population]\npath = "population.csv"')


# 1. User files are sacred ----------------------------------------------------------------------

def test_out_folder_with_user_files_is_refused_and_left_untouched(tiny):
    out = tiny / "out"
    (out / "sub").mkdir(parents=True)
    (out / "precious.docx").write_bytes(b"board paper draft")
    (out / "sub" / "notes.txt").write_text("mine")
    os.chmod(out / "precious.docx", 0o444)
    before = snapshot(out)
    result = run_cli("run", str(tiny / "study.toml"), "--out", str(out), "--tiles", "none")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert str(out) in lines[0] and "did not write" in lines[0] and "new or empty folder" in lines[0]
    assert snapshot(out) == before
    assert oct((out / "precious.docx").stat().st_mode & 0o777) == "0o444"
    assert sorted(p.name for p in tiny.iterdir()) == ["out", "study.toml", "wards.geojson"]


def test_out_folder_states():
    assert check_out_folder(Path("/nonexistent/geomisuse/out")) == "new"


def test_out_folder_empty_ours_and_mixed(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_out_folder(empty) == "empty"
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / OUTPUT_MARKER).write_text("")
    (ours / "map.html").write_text("old")
    assert check_out_folder(ours) == "ours"
    (ours / "my_notes.txt").write_text("mine")
    with pytest.raises(InputError, match="my_notes.txt"):
        check_out_folder(ours)
    earlier = tmp_path / "earlier"  # a run from before the marker: its manifest says so
    earlier.mkdir()
    (earlier / "manifest.json").write_text(json.dumps({"geomisuse_version": "0.1"}))
    assert check_out_folder(earlier) == "ours"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(InputError, match="is a file or a link"):
        check_out_folder(a_file)


@pytest.fixture(scope="module")
def _tiny_run_once(tmp_path_factory):
    folder = write_tiny(tmp_path_factory.mktemp("tiny-run"))
    tiny_police(folder)
    return prepare(load_study(folder / "study.toml"))


@pytest.fixture
def tiny_run(_tiny_run_once):
    """A prepared tiny study (no statistics), for writing outputs in-process (a copy of one
    preparation per module: the tests here write it, they do not change its inputs)."""
    return copy.deepcopy(_tiny_run_once)


def test_run_into_empty_folder_keeps_the_folder_and_marks_it(tiny_run, tmp_path):
    tmp_path = tmp_path / "outputs"
    out = tmp_path / "given"
    out.mkdir(parents=True)
    inode = out.stat().st_ino
    write_outputs(tiny_run, out, PublishSettings(tiles="none", briefings=False))
    assert out.stat().st_ino == inode  # the user's folder itself is kept
    assert (out / OUTPUT_MARKER).is_file() and (out / "wards.csv").is_file()
    assert check_out_folder(out) == "ours"
    write_outputs(tiny_run, out, PublishSettings(tiles="none", briefings=False))  # and may be replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["given"]


def test_failed_final_move_restores_old_outputs_and_leaves_no_staging(tiny_run, tmp_path, monkeypatch):
    tmp_path = tmp_path / "outputs"
    out = tmp_path / "out"
    write_outputs(tiny_run, out, PublishSettings(tiles="none", briefings=False))
    before = snapshot(out)
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(src).name.startswith(".out.") and Path(dst) == out:  # the staging folder's final move
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(tables.os, "replace", failing_replace)
    with pytest.raises(InputError, match="No space left on device.*nothing was changed"):
        write_outputs(tiny_run, out, PublishSettings(tiles="none", briefings=False))
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failed_move_into_empty_folder_takes_back_what_it_moved(tiny_run, tmp_path, monkeypatch):
    tmp_path = tmp_path / "outputs"
    out = tmp_path / "out"
    out.mkdir(parents=True)
    (out / ".keep").touch()  # hidden user file: not geomisuse's, so refused
    with pytest.raises(InputError, match="did not write"):
        write_outputs(tiny_run, out, PublishSettings(tiles="none", briefings=False))
    (out / ".keep").unlink()
    real_replace = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(13, "Permission denied")
        return real_replace(src, dst)

    monkeypatch.setattr(tables.os, "replace", failing_replace)
    with pytest.raises(InputError, match="Permission denied"):
        write_outputs(tiny_run, out, PublishSettings(tiles="none", briefings=False))
    assert list(out.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# 2. No crash on data ---------------------------------------------------------------------------

def test_wards_without_a_rate_run_through_every_stage_as_no_data(tiny):
    tiny_police(tiny, 30)  # 5 a ward: published, not suppressed
    # Half the rows bad is still a run (more would be refused, see test_a_layer_mostly_rejected...).
    #          Alpha  Bravo Charlie Delta  Echo   Foxtrot
    tiny_population(tiny, ["1000", "", "0", "-5", "inf", "2000"])
    out = tiny / "out"
    result = run_cli("run", str(tiny / "study.toml"), "--out", str(out), "--tiles", "none")
    assert result.returncode == 0, result.stderr
    assert "no population for 3 ward(s) (Bravo, Delta, Echo)" in result.stderr
    assert "population is 0 for Charlie" in result.stderr
    unmatched = pd.read_csv(out / "unmatched.csv")
    population = unmatched[unmatched["layer"] == "population"].set_index("row")["reason"].to_dict()
    assert population == {3: "no population", 5: "negative population", 6: "non-finite population"}
    wards = pd.read_csv(out / "wards.csv").set_index("ward_code")
    assert wards["drug_offences_rate_per_1000"].notna().tolist() == [True] + [False] * 4 + [True]
    page = (out / "briefings" / "E05000002.html").read_text()
    assert "no data" in page
    assert "no data" in (out / "map.html").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    acc = next(i for i in manifest["inputs"] if i["kind"] == "population")
    assert acc["rows_read"] == 6 and acc["rows_used"] == 3


def test_wards_without_a_rate_are_left_out_of_cluster_statistics_by_name(tmp_path):
    # The demo's wards, residents and MPS counts (drug possession), two wards' residents missing.
    study = tmp_path / "demo"
    study.mkdir()
    lines = (ROOT / "data" / "demo" / "population.csv").read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ","         # Marram Fields: blank
    lines[3] = lines[3].rsplit(",", 1)[0] + ",0"        # Lanternhill: zero
    (study / "population.csv").write_text("\n".join(lines) + "\n")
    (study / "study.toml").write_text(f"""[study]
name = "Demo wards, two without residents"
[boundaries]
path = "{ROOT / 'boundaries' / 'northmere_wards.geojson'}"
[layers.population]
path = "population.csv"
[layers.mps_ward]
path = "{ROOT / 'data' / 'demo' / 'mps_ward_level_crime.csv'}"
[publish]
briefings = false
""")                                                # the statistics' outputs only
    out = tmp_path / "out"
    result = run_cli("clusters", str(study / "study.toml"), "--out", str(out), "--tiles", "none")
    assert result.returncode == 0, result.stderr
    assert ("possession: 2 ward(s) without a rate (no population or no count) left out of the cluster "
            "statistics: E05999002 Marram Fields, E05999003 Lanternhill") in result.stderr
    wards = pd.read_csv(out / "wards.csv").set_index("ward_code")
    assert wards.loc[["E05999002", "E05999003"], "possession_lisa_label"].isna().all()
    assert wards.drop(index=["E05999002", "E05999003"])["possession_lisa_label"].notna().all()


def test_number_problems_name_each_reason():
    raw = pd.Series(["3", "", "x", "inf", "-2", "1.5", "nan", "1,234", "1,5"])
    values, reason = number_problems(raw, "count", integer=True)
    assert reason.tolist() == [None, "no count", "unparseable count", "non-finite count", "negative count",
                               "non-integer count", "non-finite count", None, "unparseable count"]
    assert values[7] == 1234


def test_non_integer_and_negative_counts_are_rejected_rows(tiny):
    (tiny / "asb.csv").write_text("ward_code,month,warnings\nE05000001,2025-01,3\nE05000002,2025-01,2.5\n"
                                  "E05000003,2025-01,-1\nE05000004,2025-01,4\nE05000005,2025-01,1\n")
    add_layer(tiny, '[layers.asb_warnings]\npath = "asb.csv"')
    run = prepare(load_study(tiny / "study.toml"))
    acc = run.layers["asb_warnings"].accounting()
    assert acc["rows_rejected"] == {"negative count": 1, "non-integer count": 1}
    assert run.wards["asb_count"].sum() == 8


# 3. Nothing silently wrong ---------------------------------------------------------------------

def test_decimal_comma_is_never_a_thousands_separator():
    assert to_number(pd.Series(["11,650", "1,5", "51,5074"])).tolist()[0] == 11650
    assert math.isnan(to_number(pd.Series(["1,5"]))[0])
    assert to_number(pd.Series(["51,5074", "-0,1278", "1,814"]), decimal_comma=True).tolist() == \
        [51.5074, -0.1278, 1.814]
    assert to_number(pd.Series(["665,415", "665415,5"])).tolist()[0] == 665415
    assert math.isnan(to_number(pd.Series(["665415,5"]))[0])


def test_semicolon_file_with_decimal_comma_coordinates_counts_as_the_plain_file(tiny, tmp_path):
    tiny_police(tiny)
    plain = prepare(load_study(tiny / "study.toml")).wards["drug_offences_count"].tolist()
    rows = list(csv.reader(io.StringIO((tiny / "police.csv").read_text())))
    text = "\n".join(";".join(cell.replace(".", ",") if i in (4, 5) else cell for i, cell in enumerate(row))
                     for row in rows) + "\n"
    (tiny / "police.csv").write_text(text)
    run = prepare(load_study(tiny / "study.toml"))
    assert run.wards["drug_offences_count"].tolist() == plain == [1] * 6
    assert run.layers["police_uk"].accounting()["rows_rejected"] == {}


def test_eastings_in_longitude_columns_are_an_error(tiny):
    x0, y0 = ORIGIN
    (tiny / "services.csv").write_text("name,longitude,latitude\n" + "".join(
        f"S{i},{x0 + 200 * i + 100},{y0 + 500}\n" for i in range(5)))
    add_layer(tiny, '[layers.treatment_services]\npath = "services.csv"')
    assert_input_error(tiny, "services.csv", "'longitude'/'latitude' hold easting/northing", "5 of 5 rows")


def test_longitudes_in_easting_columns_are_an_error(tiny):
    rows = [lonlat(500 + 100 * i, 500) for i in range(5)]
    (tiny / "services.csv").write_text("name,easting,northing\n" + "".join(
        f"S{i},{x:.6f},{y:.6f}\n" for i, (x, y) in enumerate(rows)))
    add_layer(tiny, '[layers.treatment_services]\npath = "services.csv"')
    assert_input_error(tiny, "services.csv", "hold longitude/latitude, not easting/northing")


def test_swapped_easting_and_northing_are_an_error(tiny):
    x0, y0 = ORIGIN
    (tiny / "services.csv").write_text("name,easting,northing\n" + "".join(
        f"S{i},{y0 + 500},{x0 + 100 + 200 * i}\n" for i in range(5)))
    add_layer(tiny, '[layers.treatment_services]\npath = "services.csv"')
    assert_input_error(tiny, "services.csv", "easting and northing look swapped")


def test_a_layer_for_another_area_is_an_error(tiny):
    # Points in Great Britain but 100 km from the tiny borough: another borough's file.
    write_police(tiny, [crime_row("2025-01", "Drugs", 100_000 + i, 100_000) for i in range(4)])
    line = assert_input_error(tiny, "police.csv", "none of the 4 rows with coordinates lies within",
                              f"{PLACEMENT_MARGIN_M / 1000:g} km", "another area")
    assert len(line) <= 400


def test_points_near_but_outside_the_wards_are_listed_not_an_error(tiny):
    # A force-wide file: most points outside the borough is normal, so only listed.
    write_police(tiny, [crime_row("2025-01", "Drugs", 500, 500)]
                 + [crime_row("2025-01", "Drugs", 3500 + 100 * i, 500) for i in range(5)])
    run = prepare(load_study(tiny / "study.toml"))
    assert run.layers["police_uk"].accounting()["rows_rejected"] == {"outside the study area": 5}


def test_a_layer_mostly_rejected_is_an_error(tiny):
    (tiny / "asb.csv").write_text("ward_code,month,warnings\n" + "".join(
        f"{c},2025-01,{v}\n" for c, v in zip(TINY_CODES, ["1", "two", "\"3,5\"", "many", "?", "6"])))
    add_layer(tiny, '[layers.asb_warnings]\npath = "asb.csv"')
    assert MOSTLY_REJECTED_SHARE == 0.5
    assert_input_error(tiny, "asb.csv", "4 of 6 asb_warnings rows rejected", "unparseable count", "row 3")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"])
def test_encodings_decode_correctly(tiny, encoding):
    text = "ward_code,ward_name,population\n" + "".join(
        f"{c},{n},{1000 + i}\n" for i, (c, n) in enumerate(zip(TINY_CODES, ["Café", "Brontë", "Ærø", "Delta",
                                                                            "Échos", "Foxtrot"])))
    (tiny / "population.csv").write_bytes(text.encode(encoding))
    add_layer(tiny, '[layers.population]\npath = "population.csv"')
    run = prepare(load_study(tiny / "study.toml"))
    assert run.wards["population"].tolist() == [1000.0 + i for i in range(6)]
    raw = (tiny / "population.csv").read_bytes()
    assert "Brontë" in decode_text(raw)


def test_undecodable_bytes_and_utf16_without_bom_are_refused(tiny):
    with pytest.raises(InputError, match="neither UTF-8 nor Windows-1252"):
        decode_text(b"ward,population\nA\x81,1\n", "p.csv")
    (tiny / "population.csv").write_bytes("ward_code,population\nE05000001,5\n".encode("utf-16-le"))
    add_layer(tiny, '[layers.population]\npath = "population.csv"')
    assert_input_error(tiny, "population.csv", "NUL bytes", "save it as UTF-8 CSV")


def test_the_same_police_file_twice_is_counted_once_with_a_warning(tiny):
    tiny_police(tiny)
    (tiny / "copy").mkdir()
    (tiny / "copy" / "police.csv").write_bytes((tiny / "police.csv").read_bytes())
    text = (tiny / "study.toml").read_text().replace('path = "police.csv"', 'paths = ["police.csv", "copy"]')
    (tiny / "study.toml").write_text(text)
    run = prepare(load_study(tiny / "study.toml"))
    assert run.wards["drug_offences_count"].tolist() == [1] * 6
    assert any("copy/police.csv is a copy of" in w and "read once" in w for w in run.warnings)


def test_two_files_of_one_force_and_month_are_refused(tiny):
    tiny_police(tiny)
    (tiny / "more.csv").write_text(HEADER + "\n" + crime_row("2025-01", "Drugs", 600, 600) + "\n")
    text = (tiny / "study.toml").read_text().replace('path = "police.csv"', 'paths = ["police.csv", "more.csv"]')
    (tiny / "study.toml").write_text(text)
    assert_input_error(tiny, "police.csv and", "more.csv both hold the force and month Force 2025-01")


MPS_DUPLICATED = """MajorText,MinorText,WardName,WardCode,LookUp_BoroughName,202501,202502
Drug Offences,Possession of Drugs,Alpha,E05000001,Tiny,3,4
Drug Offences,Possession of Drugs,Bravo,E05000002,Tiny,10,12
Drug Offences,Possession of Drugs,Alpha,E05000001,Tiny,3,4
"""


def test_duplicate_rows_of_the_mps_file_are_counted_once(tiny):
    (tiny / "mps.csv").write_text(MPS_DUPLICATED)
    add_layer(tiny, '[layers.mps_ward]\npath = "mps.csv"')
    run = prepare(load_study(tiny / "study.toml"))
    assert run.wards.set_index("ward_code").loc["E05000001", "possession_count"] == 7
    assert run.layers["mps_ward"].accounting()["rows_excluded"]["duplicate row"] == 1
    assert any("1 duplicate row(s) (row 4 repeats an earlier row) counted once" in w for w in run.warnings)


def test_conflicting_rows_of_the_mps_file_are_refused(tiny):
    (tiny / "mps.csv").write_text(MPS_DUPLICATED.rstrip("\n")[:-3] + "5,4\n")
    add_layer(tiny, '[layers.mps_ward]\npath = "mps.csv"')
    assert_input_error(tiny, "mps.csv", "rows 2 and 4 describe the same", "different values")


def test_duplicate_asb_rows_are_counted_once(tiny):
    (tiny / "asb.csv").write_text("ward_code,month,warnings\nE05000001,2025-01,3\nE05000001,2025-01,3\n"
                                  "E05000002,2025-01,1\n")
    add_layer(tiny, '[layers.asb_warnings]\npath = "asb.csv"')
    run = prepare(load_study(tiny / "study.toml"))
    assert run.wards["asb_count"].tolist()[:2] == [3, 1]


def test_corrupt_zip_is_an_error(tiny):
    (tiny / "police.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    add_layer(tiny, '[layers.police_uk]\npath = "police.zip"')
    assert_input_error(tiny, "police.zip", "cannot read the zip")


def _write_wards(tiny: Path, wards, name: str = "wards.geojson") -> None:
    wards.to_file(tiny / name)
    (tiny / "study.toml").write_text((tiny / "study.toml").read_text().replace("wards.geojson", name))


def test_non_polygon_ward_is_an_error(tiny):
    wards = tiny_wards()
    wards.loc[2, "geometry"] = shapely.Point(ORIGIN)
    _write_wards(tiny, wards)
    assert_input_error(tiny, "wards.geojson", "row 3", "ward is a Point, not a polygon")


def test_zero_area_ward_is_an_error(tiny):
    wards = tiny_wards()
    x0, y0 = ORIGIN
    wards.loc[0, "geometry"] = shapely.Polygon([(x0, y0), (x0 + 1000, y0), (x0 + 2000, y0)])
    _write_wards(tiny, wards)
    assert_input_error(tiny, "wards.geojson", "ward E05000001 has no area")


def test_sliver_and_overlapping_wards_are_warned_about(tiny):
    wards = tiny_wards()
    x0, y0 = ORIGIN
    wards.loc[1, "geometry"] = shapely.box(x0 + 500, y0, x0 + 2000, y0 + 1000)      # overlaps Alpha by half
    wards.loc[5, "geometry"] = shapely.box(x0 + 2000, y0 + 1000, x0 + 2000.5, y0 + 2000)  # 500 m²
    _write_wards(tiny, wards)
    result = run_cli("validate", str(tiny / "study.toml"))
    assert result.returncode == 0, result.stderr
    assert "1 pair(s) of wards overlap (E05000001/E05000002)" in result.stderr
    assert "1 ward(s) smaller than 1,000 m² (slivers?): E05000006 Foxtrot" in result.stderr


def test_boundaries_in_a_csv_are_an_error(tiny):
    (tiny / "wards.csv").write_text("WD22CD,WD22NM,WKT\nE05000001,Alpha,\"POLYGON((0 0,1 0,1 1,0 0))\"\n")
    (tiny / "study.toml").write_text((tiny / "study.toml").read_text().replace("wards.geojson", "wards.csv"))
    assert_input_error(tiny, "wards.csv", "must be a GeoJSON, GeoPackage or Shapefile")


def test_geojson_in_metres_without_crs_is_read_as_british_national_grid(tiny):
    wards = tiny_wards().set_crs(None, allow_override=True)
    _write_wards(tiny, wards, "metres.geojson")
    run = prepare(load_study(tiny / "study.toml"))
    assert run.wards["area_km2"].round(6).tolist() == [1.0] * 6


# 4. Safe outputs -------------------------------------------------------------------------------

def test_neutralise_csv_prefixes_formula_text_but_not_numbers():
    frame = pd.DataFrame({"name": ["=HYPERLINK(\"x\")", "+44", "-x", "@SUM(A1)", "\tx", "\rx", "ok", None],
                          "z": [-1.5, 2.0, -3.0, 0.0, 1.0, 1.0, 1.0, 1.0]})
    out = neutralise_csv(frame)
    assert out["name"].tolist()[:7] == ["'=HYPERLINK(\"x\")", "'+44", "'-x", "'@SUM(A1)", "'\tx", "'\rx", "ok"]
    assert pd.isna(out["name"].iloc[7])
    assert out["z"].tolist() == frame["z"].tolist()
    assert frame["name"].iloc[0].startswith("=")  # the input is not changed


def test_formulas_in_names_are_neutralised_in_every_csv(tiny):
    wards = tiny_wards()
    wards.loc[0, "WD22NM"] = '=HYPERLINK("http://evil.example","x")'
    wards.loc[1, "WD22NM"] = "-2+3"
    wards.loc[2, "WD22NM"] = "Charlie\x1b[2J\x1b]0;pwned\x07"
    _write_wards(tiny, wards, "wards.gpkg")
    tiny_police(tiny, 12)
    tiny_population(tiny, ["1000", "2000", "3000", "4000", "5000", "6000"])  # rates differ: Gi* z < 0 somewhere
    out = tiny / "out"
    result = run_cli("run", str(tiny / "study.toml"), "--out", str(out), "--tiles", "none")
    assert result.returncode == 0, result.stderr
    for name in ("wards.csv", "wards_monthly.csv", "unmatched.csv", "global_moran.csv"):
        if (out / name).exists():
            for row in csv.reader(io.StringIO((out / name).read_text())):
                for cell in row:
                    assert not (cell[:1] in ("=", "+", "@", "\t", "\r")
                                or (cell.startswith("-") and not _is_number(cell))), (name, cell)
    names = pd.read_csv(out / "wards.csv")["ward_name"].tolist()
    assert names[:2] == ["'=HYPERLINK(\"http://evil.example\",\"x\")", "'-2+3"]
    assert pd.read_csv(out / "wards.csv")["drug_offences_gi_z"].min() < 0  # numbers stay numbers
    assert "\x1b" not in result.stdout + result.stderr and "\x07" not in result.stdout + result.stderr


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_terminal_text_strips_control_characters_and_bounds_length():
    assert terminal_text("a\x1b[31mb\x07c\u202ed\r\ne") == "a[31mbcd\ne"
    line = terminal_text("x\n" * 500, max_length=100)
    assert len(line) == 100 and "\n" not in line


def test_page_names_are_unique_safe_and_never_reserved():
    codes = ["E05000001", "index", "INDEX", "con", "Nul", "com1", "e05000001", "../etc", "ward-0009", "a b",
             "borough-camden"]
    names = page_names(codes)
    assert len({n.lower() for n in names}) == len(codes)
    assert not {n.lower() for n in names} & RESERVED_PAGE_NAMES
    assert not any(n.startswith("borough-") for n in names)
    assert names[0] == "E05000001" and names[8] == "ward-0009"
    assert all(n == c or n.startswith("ward-") for n, c in zip(names, codes))
    assert all("/" not in n and "." not in n and " " not in n for n in names)


def test_a_ward_coded_index_does_not_overwrite_the_overview(tiny):
    wards = tiny_wards()
    wards.loc[0, "WD22CD"] = "index"
    wards.loc[1, "WD22CD"] = "CON"
    _write_wards(tiny, wards)
    out = tiny / "out"
    result = run_cli("run", str(tiny / "study.toml"), "--out", str(out), "--tiles", "none")
    assert result.returncode == 0, result.stderr
    pages = sorted(p.name for p in (out / "briefings").glob("*.html"))
    assert len(pages) == 7 and "index.html" in pages and "CON.html" not in pages
    assert "borough" in (out / "briefings" / "index.html").read_text().lower()


# 5. CLI values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [("--seed", "-1"), ("--seed", "x"), ("--simplify", "nan"),
                                  ("--simplify", "inf"), ("--simplify", "-3")])
def test_bad_cli_values_are_usage_errors(tiny, args):
    out = tiny / "out"
    result = run_cli("run", str(tiny / "study.toml"), "--out", str(out), *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and args[0] in lines[0], result.stderr
    assert not out.exists()


# Found by the property test ----------------------------------------------------------------------

def test_a_ward_table_naming_no_study_ward_is_an_error(tiny):
    # Another borough's table, matched by name (codes of another vintage are caught earlier).
    (tiny / "asb.csv").write_text("ward_name,month,warnings\nNowhere,2025-01,3\nElsewhere,2025-01,2\n")
    add_layer(tiny, '[layers.asb_warnings]\npath = "asb.csv"')
    assert_input_error(tiny, "asb.csv", "none of the 2 rows names a ward of the study")
    (tiny / "asb.csv").write_text("warnings,month,ward_code\nE05000001,2025-01,3\nE05000002,2025-01,2\n")
    assert_input_error(tiny, "asb.csv", "ward codes match 0 of the study's 6 wards")


def test_number_checks_cope_with_no_rows_left():
    values, reason = number_problems(pd.DataFrame({"202501": pd.Series([], dtype=object)}), "count", integer=True)
    assert values.empty and reason.empty


def test_force_and_month_check_copes_with_a_file_without_the_force_column(tiny):
    tiny_police(tiny)
    header = HEADER.replace("Reported by,", "")
    row = crime_row("2025-02", "Drugs", 600, 600).split(",")
    del row[2]
    (tiny / "more.csv").write_text(header + "\n" + ",".join(row) + "\n")
    text = (tiny / "study.toml").read_text().replace('path = "police.csv"', 'paths = ["police.csv", "more.csv"]')
    (tiny / "study.toml").write_text(text)
    run = prepare(load_study(tiny / "study.toml"))
    assert run.wards["drug_offences_count"].sum() == 7


@pytest.mark.parametrize("section, key", [("[layers.population]\npath = \"p.csv\"", "pathh"),
                                          ("[clusters]", "corection"), ("[gaps]", "walk_minuts"),
                                          ("[publish]", "tile")])
def test_an_unknown_key_anywhere_in_the_study_file_is_an_error(tiny, section, key):
    add_layer(tiny, f"{section}\n{key} = 1")
    result = run_cli("validate", str(tiny / "study.toml"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"unknown key '{key}'" in lines[0] and "study.toml" in lines[0]


@pytest.mark.parametrize("boundaries", [
    "gla_london_wards_2018.gpkg", "ons_wards2022_london_bsc_simplified.gpkg",
    # London's 4,835 LSOAs: about 3 s (the check and the every-pair reference); in CI.
    pytest.param("gla_lsoa2011_london_gen_mhw.gpkg", marks=pytest.mark.slow), "overlapping tiny wards"])
def test_overlap_check_intersects_only_wards_whose_interiors_meet(real, boundaries):
    """Pairs that only share an edge are passed over: the warnings are those of intersecting
    every pair of touching wards, on real boundaries (shared edges, and LSOAs whose generalised
    edges overlap a little) and on overlapping tiny wards."""
    import geopandas as gpd
    import numpy as np

    from geomisuse.layers.boundaries import OVERLAP_SHARE, _check_areas

    def every_pair(wards):
        geoms = wards.geometry.to_numpy()
        left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
        left, right = left[left < right], right[left < right]
        shared = shapely.area(shapely.intersection(geoms[left], geoms[right]))
        smaller = np.minimum(shapely.area(geoms[left]), shapely.area(geoms[right]))
        return int((shared > OVERLAP_SHARE * smaller).sum())

    if boundaries == "overlapping tiny wards":
        x0, y0 = ORIGIN
        wards = tiny_wards()
        wards.loc[1, "geometry"] = shapely.box(x0 + 500, y0, x0 + 2000, y0 + 1000)
    else:
        wards = gpd.read_file(real / "boundaries" / boundaries).to_crs(27700)
    wards = wards.rename(columns={c: "ward_code" for c in wards.columns if c in ("GSS_CODE", "ward22_code", "LSOA11CD", "WD22CD")})
    wards["ward_name"] = wards["ward_code"]
    wards["area_km2"] = wards.geometry.area / 1e6
    warnings = []
    _check_areas(wards, np.arange(len(wards)), "wards", warnings)
    expected = every_pair(wards)
    found = [w for w in warnings if "overlap" in w]
    assert (f"{expected} pair(s) of wards overlap" in found[0]) if expected else not found
    if boundaries == "overlapping tiny wards":
        assert expected == 1   # Bravo moved half over Alpha: the case is not vacuous
