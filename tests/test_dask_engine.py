"""The Dask engine gives exactly the local engine's ward table, monthly table, accounting,
warnings, ``unmatched.csv``, refusals and map heat layer.

Each case runs the same study through ``prepare`` twice: locally, and on a module-wide
``LocalCluster`` of two worker processes (so the picklable ward locator and the reading code
travel to real separate processes). Cases: a generated three-year archive with damaged rows
and a zip; the real City of London Police folder over the City and a Met borough (the force
area from ``Falls within`` and from ``covers``); two files of one force-month (refused, exit
2); a file given twice (read once); swapped coordinates and coordinates of another area judged
over all files.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geomisuse.config import load_study, months_between
from geomisuse.demo.archive import write_archive
from geomisuse.errors import InputError
from geomisuse.layers.heat_cells import cell_keys
from geomisuse.pipeline import StudyRun, prepare, uses_dask
from geomisuse.publish.maps.page import _heat_layers, heat_of_cells, heat_points
from geomisuse.config import PublishSettings
from geomisuse.publish.tables import unmatched_rows

from conftest import TINY_CODES, run_cli, tiny_wards
from test_layers import HEADER, crime_row

CITY_FOLDER = "police_uk/city_of_london_street"
LONDON_WARDS = "boundaries/ons_wards2022_london_bsc_simplified.gpkg"


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local


def write_study(folder: Path, engine: str, scheduler: str | None = None, paths: tuple[str, ...] = ("archive", "extra.zip"),
                period: tuple[str, str] | None = ("2022-07", "2024-06"), boundaries: str = '"wards.geojson"',
                extra: str = "") -> str:
    """A study of ``paths`` (police.uk) over ``boundaries`` on ``engine``; returns its path."""
    text = (f'[study]\nname = "Archive"\nengine = "{engine}"\n'
            + (f'period = ["{period[0]}", "{period[1]}"]\n' if period else "")
            + (f'scheduler = "{scheduler}"\n' if scheduler else "")
            + f'\n[boundaries]\npath = {boundaries}\n\n[layers.police_uk]\npaths = {list(paths)!r}\n'.replace("'", '"')
            + extra)
    path = folder / f"study-{engine}.toml"
    path.write_text(text)
    return str(path)


def heat_layers(run: StudyRun) -> list[dict]:
    """The map's police.uk heat layers of a run (as the page embeds them)."""
    layers: list[dict] = []
    _heat_layers(layers, run, PublishSettings(tiles="none"))
    return layers


def run_both(folder: Path, cluster, **study) -> tuple[StudyRun, StudyRun]:
    """The study prepared locally and on the cluster."""
    local = prepare(load_study(write_study(folder, "local", **study)))
    dask_study = load_study(write_study(folder, "dask", cluster.scheduler_address, **study))
    assert uses_dask(dask_study)
    return local, prepare(dask_study)


def refusals_of_both(folder: Path, cluster, **study) -> list[str]:
    """The study refused locally and on the cluster: both messages, which must be the same."""
    messages = []
    for engine, scheduler in (("local", None), ("dask", cluster.scheduler_address)):
        with pytest.raises(InputError) as caught:
            prepare(load_study(write_study(folder, engine, scheduler, **study)))
        messages.append(str(caught.value))
    assert messages[1] == messages[0]
    return messages


def assert_same(local: StudyRun, distributed: StudyRun) -> None:
    """Everything the study publishes from police.uk is the same on both engines."""
    ours, theirs = local.layers["police_uk"], distributed.layers["police_uk"]
    assert theirs.accounting() == ours.accounting()
    assert theirs.months == ours.months
    assert theirs.wards == ours.wards
    assert distributed.warnings == local.warnings
    pd.testing.assert_frame_equal(distributed.monthly, local.monthly)
    columns = [c for c in local.wards.columns if c != "geometry"]
    pd.testing.assert_frame_equal(pd.DataFrame(distributed.wards[columns]), pd.DataFrame(local.wards[columns]))
    pd.testing.assert_frame_equal(theirs.rejected, ours.rejected)
    pd.testing.assert_frame_equal(unmatched_rows(distributed), unmatched_rows(local))
    assert heat_layers(distributed) == heat_layers(local)


@pytest.mark.slow
def test_dask_engine_on_two_worker_processes_equals_the_local_engine(tiny, cluster):
    months = months_between("2021-07", "2024-06")
    write_archive(tiny / "archive", tiny_wards().geometry.to_numpy(), months, rows_per_month=1_500, damage=True)
    # The zip holds the month after the period (its rows are excluded, and counted as such). No
    # damage there: damaged rows plant stray months, and two files of one force-month are refused.
    extra = write_archive(tiny / "extra", tiny_wards().geometry.to_numpy(), ["2024-07"], rows_per_month=700,
                          seed=3)
    with zipfile.ZipFile(tiny / "extra.zip", "w") as bundle:
        bundle.write(extra.files[0], "2024-07-extra-street.csv")
    local, distributed = run_both(tiny, cluster)
    assert_same(local, distributed)
    acc = local.layers["police_uk"].accounting()
    assert acc["rows_read"] == 36 * 1_500 + 700 + 13
    assert acc["rows_rejected"]["outside the study area"] >= 1
    # The period and the 24 months before it are read (briefings compare): the planted 2019 row and
    # the zip's month after the period are out.
    assert acc["rows_excluded"]["month outside the study period"] == 1 + 700
    assert int(local.wards["police_uk_drugs_count"].sum()) > 0
    # The heat layers are drawn, and hold the period's points (not the previous period's).
    heat = heat_layers(distributed)
    assert [layer["name"] for layer in heat] == ["Heat map: drug offences (police.uk points)",
                                                 "Heat map: anti-social behaviour (police.uk points)"]
    assert sum(heat[0]["points"][2::3]) == int(local.wards["police_uk_drugs_count"].sum())


@pytest.mark.parametrize("covers", [None, ["Islington"]], ids=["falls-within", "covers"])
def test_police_force_area_on_tiny_city_and_islington_wards(tiny, cluster, covers):
    """The force area on both engines, on generated files (the quick suite's check; the real
    files follow): the tiny borough's lower row is the City of London, its upper row
    Islington, and every file is the City of London Police's. By ``Falls within`` the force
    covers the City (its crimes in Islington are excluded, Islington reads no data); with
    ``covers = ["Islington"]`` the reverse."""
    wards = tiny_wards()
    wards["LAD22NM"] = ["City of London"] * 3 + ["Islington"] * 3
    wards.to_crs("EPSG:4326").to_file(tiny / "boroughs.geojson", driver="GeoJSON")
    (tiny / "police").mkdir()
    for month in ("2025-01", "2025-02"):
        rows = [crime_row(month, "Drugs", 500 + 1000 * (k % 3), 500 + 1000 * (k % 2)) for k in range(12)]
        rows = [row.replace(",Force,Force,", ",City of London Police,City of London Police,") for row in rows]
        (tiny / "police" / f"{month}-city-of-london-street.csv").write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    extra = f"covers = {covers!r}\n".replace("'", '"') if covers else ""
    local, distributed = run_both(tiny, cluster, paths=("police",), period=None, extra=extra,
                                  boundaries='"boroughs.geojson"')
    assert_same(local, distributed)
    table = distributed.wards.set_index("ward_code")
    covered = TINY_CODES[3:] if covers else TINY_CODES[:3]
    assert distributed.layers["police_uk"].wards == frozenset(covered)
    assert (table.loc[covered, "police_uk_drugs_count"] == 4).all()   # 12 points a month over 6 wards
    assert table.loc[table.index.difference(covered), "police_uk_drugs_count"].isna().all()
    accounting = distributed.layers["police_uk"].accounting()
    assert accounting["rows_excluded"] == {"in a ward outside the police force's area": 12}
    assert accounting["rows_used"] == 12


@pytest.mark.slow   # real files, two engines: ~5 s; the tiny case above is the quick suite's check
@pytest.mark.parametrize("covers", [None, ["Islington"]], ids=["falls-within", "covers"])
def test_police_force_area_on_the_real_city_of_london_files(real, tmp_path, cluster, covers):
    """The City of London Police's real files over the City and Islington: by ``Falls within``
    the force covers the City (its crimes in Islington are excluded, Islington reads no data);
    with ``covers = ["Islington"]`` the reverse."""
    extra = f"covers = {covers!r}\n".replace("'", '"') if covers else ""
    local, distributed = run_both(
        tmp_path, cluster, paths=(str(real / CITY_FOLDER),), period=None, extra=extra,
        boundaries=f'"{real / LONDON_WARDS}"\nwhere = {{LAD22NM = ["City of London", "Islington"]}}')
    assert_same(local, distributed)
    wards = distributed.wards.set_index("ward_code")
    covered = wards.index[wards["borough_name"] == (covers[0] if covers else "City of London")]
    assert distributed.layers["police_uk"].wards == frozenset(covered)
    assert wards.loc[covered, "police_uk_drugs_count"].notna().all()
    assert wards.loc[wards.index.difference(covered), "police_uk_drugs_count"].isna().all()
    excluded = distributed.layers["police_uk"].accounting()["rows_excluded"]
    assert excluded["in a ward outside the police force's area"] > 0
    if not covers:
        assert wards.loc[covered, "police_uk_drugs_count"].sum() > 500  # the City's real drug offences


def generated(folder: Path, months: list[str], rows: int = 300, seed: int = 14) -> list[Path]:
    """A small generated archive over the tiny wards; returns its files."""
    return write_archive(folder, tiny_wards().geometry.to_numpy(), months, rows_per_month=rows, seed=seed).files


def test_two_files_of_one_force_month_are_refused_alike(tiny, cluster):
    files = generated(tiny / "archive", ["2024-01", "2024-02"])
    # Another download of February (one row differs, so it is no copy): both would count.
    (tiny / "more").mkdir()
    text = files[1].read_text()
    (tiny / "more" / "february.csv").write_text(text.replace("Generated Street", "Other Street", 1))
    lines = []
    for engine, scheduler in (("local", None), ("dask", cluster.scheduler_address)):
        study = write_study(tiny, engine, scheduler, paths=("archive", "more"), period=None)
        result = run_cli("run", study, "--out", str(tiny / f"out-{engine}"), "--tiles", "none")
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        lines.append(result.stderr.strip())
    assert lines[1] == lines[0]
    assert "2024-02-generated-street.csv and" in lines[0]
    assert "february.csv both hold the force and month Generated Police 2024-02" in lines[0]


def test_a_file_given_twice_is_read_once_alike(tiny, cluster):
    files = generated(tiny / "archive", ["2024-01", "2024-02", "2024-03"])
    (tiny / "copy").mkdir()
    (tiny / "copy" / "again.csv").write_bytes(files[1].read_bytes())
    local, distributed = run_both(tiny, cluster, paths=("archive", "copy"), period=None)
    assert_same(local, distributed)
    assert any(w.endswith(f"copy/again.csv is a copy of {files[1]}, read once") for w in distributed.warnings)
    assert distributed.layers["police_uk"].rows_read == 3 * 300


def swapped_file(path: Path, month: str, normal: int, swapped: int) -> None:
    """A police.uk file of ``normal`` rows and ``swapped`` rows with longitude and latitude
    the wrong way round, all drug offences in the tiny wards."""
    rows = []
    for k in range(normal + swapped):
        row = crime_row(month, "Drugs", 100 + 150 * (k % 18), 100 + 450 * (k % 4)).split(",")
        if k >= normal:
            row[4], row[5] = row[5], row[4]
        rows.append(",".join(row))
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")


def test_swapped_coordinates_are_judged_over_all_files_alike(tiny, cluster):
    (tiny / "police").mkdir()
    # January is mostly swapped, the layer is not: its swapped rows are rejected, not the file.
    swapped_file(tiny / "police" / "2025-01.csv", "2025-01", normal=4, swapped=8)
    swapped_file(tiny / "police" / "2025-02.csv", "2025-02", normal=30, swapped=0)
    local, distributed = run_both(tiny, cluster, paths=("police",), period=None)
    assert_same(local, distributed)
    assert distributed.layers["police_uk"].accounting()["rows_rejected"] == {"longitude and latitude swapped": 8}
    # Now February is mostly swapped too: the layer is (over both files), naming its first file.
    swapped_file(tiny / "police" / "2025-02.csv", "2025-02", normal=2, swapped=28)
    messages = refusals_of_both(tiny, cluster, paths=("police",), period=None)
    assert "2025-01.csv" in messages[0] and "(36 of 42 rows" in messages[0]


def test_heat_cells_counted_in_parts_add_up_to_the_points_heat_map():
    """Cell counts worked out per file (as on the workers) give the heat map of all the points
    at once, also when the cell doubles (fewer cells than points allowed)."""
    rng = np.random.default_rng(5)
    xy = np.column_stack([rng.uniform(520_000, 540_000, 20_000), rng.uniform(170_000, 190_000, 20_000)])
    points = gpd.GeoSeries(shapely.points(xy), crs="EPSG:27700")
    parts = []
    for chunk in np.array_split(xy, 3):
        keys, counts = np.unique(cell_keys(chunk[:, 0], chunk[:, 1]), return_counts=True)
        parts.append((keys, counts))
    keys = np.concatenate([k for k, _ in parts])
    counts = np.concatenate([c for _, c in parts])
    for max_points in (100_000, 2_000, 50):
        expected, cell = heat_points(points, max_points=max_points)
        got, got_cell = heat_of_cells(keys, counts, max_points=max_points)
        assert got_cell == cell
        np.testing.assert_array_equal(got, expected)
        assert expected[:, 2].sum() == len(xy) and len(expected) <= max_points


def test_auto_engine_stays_local_for_a_small_archive(tiny):
    write_archive(tiny / "archive", tiny_wards().geometry.to_numpy(), ["2024-01"], rows_per_month=100)
    (tiny / "extra.zip").write_bytes(b"")
    with zipfile.ZipFile(tiny / "extra.zip", "w") as bundle:
        bundle.writestr("empty.csv", "Month,Crime type,Longitude,Latitude\n")
    assert not uses_dask(load_study(write_study(tiny, "auto")))


def test_coordinates_of_another_area_are_refused_alike(tiny, cluster):
    """The placement check (points nowhere near the study wards under any reading) is the
    local engine's, over all files, though the Dask layer keeps no coordinates."""
    (tiny / "police").mkdir()
    for month in ("2025-01", "2025-02"):
        rows = [crime_row(month, "Drugs", 60_000 + 100 * k, 500) for k in range(10)]
        (tiny / "police" / f"{month}.csv").write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    messages = refusals_of_both(tiny, cluster, paths=("police",), period=None)
    assert "2025-01.csv" in messages[0] and "none of the 20 rows with coordinates lies within 2 km" in messages[0]
