"""The fast police.uk loader gives exactly what the pandas loader it replaced gave.

``police_uk_reference.py`` is that loader (every column read as text with pandas, then row
drops); both are run on the same files and compared row by row: the accounting (rows read,
excluded and rejected by reason, the rejected rows with file and row number, months covered)
and the loaded points (every column and the coordinates). Each comparison runs with and
without pandas' Arrow-backed string inference.
"""

from __future__ import annotations

import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
import shapely

from geomisuse.config import LayerSpec
from geomisuse.demo.archive import write_archive
from geomisuse.errors import InputError
from geomisuse.layers.base import LoadContext
from geomisuse.layers.police_uk import load_police_uk

from conftest import tiny_wards
from police_uk_reference import load_police_uk as load_police_uk_reference


@pytest.fixture(params=[True, False], ids=["arrow-strings", "object-strings"])
def string_option(request):
    """Run the test under both settings of pandas' ``future.infer_string``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the option is deprecated in pandas 3; users still set it
        with pd.option_context("future.infer_string", request.param):
            yield request.param


def both(spec: LayerSpec, context: LoadContext):
    return load_police_uk(spec, context), load_police_uk_reference(spec, context)


def assert_same(new, old) -> None:
    assert new.rows_read == old.rows_read
    assert new.excluded == old.excluded
    assert new.accounting()["rows_rejected"] == old.accounting()["rows_rejected"]
    assert new.rows_used == old.rows_used == len(new.table)
    assert new.months == old.months
    assert [str(p) for p in new.paths] == [str(p) for p in old.paths]
    rejected_new = new.rejected.astype({"row": "int64"}).astype(str).reset_index(drop=True)
    rejected_old = old.rejected.astype({"row": "int64"}).astype(str).reset_index(drop=True)
    pd.testing.assert_frame_equal(rejected_new, rejected_old, check_dtype=False)
    columns = ["month", "measure", "crime_type", "crime_id", "location", "source_file"]
    for column in columns:
        assert new.table[column].astype(str).tolist() == old.table[column].astype(str).tolist(), column
    assert new.table["source_row"].tolist() == old.table["source_row"].tolist()
    assert np.array_equal(shapely.get_coordinates(new.table.geometry.to_numpy()),
                          shapely.get_coordinates(old.table.geometry.to_numpy()))
    assert new.table.crs == old.table.crs


def context(months=None) -> LoadContext:
    return LoadContext(ward_codes=frozenset(), ward_names={}, months=months)


@pytest.fixture
def damaged_archive(tmp_path):
    archive = write_archive(tmp_path / "archive", tiny_wards().geometry.to_numpy(),
                            ["2024-01", "2024-02", "2024-03"], rows_per_month=3_000, damage=True)
    return archive


def test_generated_archive_with_damaged_rows_matches(damaged_archive, string_option):
    new, old = both(LayerSpec("police_uk", [damaged_archive.folder]), context(["2024-01", "2024-02"]))
    assert_same(new, old)
    assert new.rows_read == damaged_archive.rows
    rejected = new.accounting()["rows_rejected"]
    # The planted damage is all there, under the reasons the old loader gave it.
    assert rejected["unparseable month"] == 2
    assert rejected["unparseable coordinates"] >= 1
    assert rejected["longitude and latitude swapped"] >= 1
    assert rejected["coordinates outside Great Britain"] >= 1
    assert new.excluded["crime type not analysed: (blank)"] == 1
    assert new.excluded["month outside the study period"] > 3_000
    assert "damaged09" in set(new.table["crime_id"])  # leading spaces read as pandas does
    assert "On or near A, B and C" in set(new.table["location"])


def test_clean_and_damaged_utf8_files_take_the_fast_reader(damaged_archive, monkeypatch):
    import geomisuse.layers.base as base

    def general_reader(*args, **kwargs):
        raise AssertionError("the general reader was used")

    monkeypatch.setattr(base, "read_table", general_reader)
    layer = load_police_uk(LayerSpec("police_uk", [damaged_archive.folder]), context())
    assert layer.rows_read == damaged_archive.rows


def test_file_with_a_short_row_goes_through_the_general_reader_and_matches(tmp_path, string_option):
    archive = write_archive(tmp_path / "archive", tiny_wards().geometry.to_numpy(), ["2024-01", "2024-02"],
                            rows_per_month=500, damage=True, short_row=True)
    new, old = both(LayerSpec("police_uk", [archive.folder]), context())
    assert_same(new, old)
    assert new.rows_read == archive.rows


def test_zip_windows_1252_where_and_mapped_columns_match(tmp_path, string_option):
    archive = write_archive(tmp_path / "archive", tiny_wards().geometry.to_numpy(), ["2024-01", "2024-02", "2024-03"],
                            rows_per_month=400, damage=True)
    with zipfile.ZipFile(tmp_path / "archive.zip", "w") as bundle:
        for path in archive.files[:2]:
            bundle.write(path, path.name)
    # Another force-month (two files of one force and month are refused), in Windows-1252.
    text = archive.files[2].read_text(encoding="utf-8").replace("Generated Street", "Généré Street")
    assert "Généré" in text
    (tmp_path / "cp1252.csv").write_bytes(text.encode("cp1252"))
    spec = LayerSpec("police_uk", [tmp_path / "archive.zip", tmp_path / "cp1252.csv"],
                     {"where": {"Reported by": ["Generated Police"]}})
    assert_same(*both(spec, context()))


def test_swapped_file_and_bad_month_column_are_refused_alike(tmp_path, string_option):
    archive = write_archive(tmp_path / "archive", tiny_wards().geometry.to_numpy(), ["2024-01"], rows_per_month=50)
    path = archive.files[0]
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame[["Longitude", "Latitude"]] = frame[["Latitude", "Longitude"]].to_numpy()
    frame.to_csv(tmp_path / "swapped.csv", index=False)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame["Month"] = "Jan 2024"
    frame.to_csv(tmp_path / "months.csv", index=False)
    for name in ("swapped.csv", "months.csv"):
        spec = LayerSpec("police_uk", [tmp_path / name])
        with pytest.raises(InputError) as new_error:
            load_police_uk(spec, context())
        with pytest.raises(InputError) as old_error:
            load_police_uk_reference(spec, context())
        assert str(new_error.value) == str(old_error.value)


def test_real_city_of_london_files_match(real, string_option):
    folder = real / "police_uk" / "city_of_london_street"
    new, old = both(LayerSpec("police_uk", [folder]), context())
    assert_same(new, old)
    assert new.rows_read == 18_173


def test_real_api_output_with_slugs_matches(real, string_option):
    path = real / "police_uk" / "police_api_wardpoly_2017-07_2018-06_harrow_barnet_havering_all_crime.csv"
    months = [f"2017-{m:02d}" for m in range(7, 13)]
    new, old = both(LayerSpec("police_uk", [path]), context(months))
    assert_same(new, old)
    assert new.rows_read == 74_339


# ---------------------------------------------------------------------------------------------
# The coordinate checks on distinct pairs, the files read two at a time, and their digests
# ---------------------------------------------------------------------------------------------

#: Coordinate texts that exercise every check: blanks, spaces, decimal and thousands commas,
#: numbers that are not finite, swapped and outside pairs, missing cells, repeats.
LONLAT_TEXTS = [("-0.1", "51.5"), (" -0.1", "51.5 "), ("-0,1", "51,5"), ("", "51.5"), ("-0.1", ""), ("", ""),
                ("abc", "51.5"), ("inf", "51.5"), ("nan", "51.5"), ("51.5", "-0.1"), ("10.0", "51.5"),
                ("-0.1", "70"), ("1,234", "51.5"), ("+0.2", "5.15e1"), (None, "51.5"), ("-0.1", None),
                (None, None), ("-0.1", "51.5"), ("-0.1000", "51.5"), ("-9.0", "49.0"), ("2.5", "61.5")]
GRID_TEXTS = [("530000", "180000"), ("530,000", "180,000"), ("53,0000", "180000"), ("", "180000"), ("x", "1"),
              ("-5", "180000"), ("700000", "1300000"), ("700001", "180000"), (None, "180000"),
              ("530000", "180000"), (" 530000.5", "180000 ")]


def _coordinate_layer(texts, kind: str):
    from geomisuse.layers.base import LayerResult

    frame = pd.DataFrame({"x": pd.Series([t[0] for t in texts], dtype=object),
                          "y": pd.Series([t[1] for t in texts], dtype=object),
                          "source_file": "f.csv", "source_row": np.arange(2, len(texts) + 2)})
    if kind == "categorical":
        frame[["x", "y"]] = frame[["x", "y"]].astype("category")
    elif kind == "arrow":
        frame[["x", "y"]] = frame[["x", "y"]].astype(pd.StringDtype("pyarrow"))
    elif kind == "str":
        frame[["x", "y"]] = frame[["x", "y"]].astype(str)
    return LayerResult("police_uk", [], frame.set_axis(np.arange(100, 100 + len(frame))), rows_read=len(frame))


@pytest.mark.parametrize("kind", ["object", "categorical", "arrow", "str"])
@pytest.mark.parametrize("lonlat", [True, False], ids=["lonlat", "grid"])
def test_coordinate_checks_of_distinct_pairs_equal_the_row_by_row_checks(kind, lonlat, string_option):
    from geomisuse.layers.base import points_from_table
    from police_uk_reference import points_from_table as points_row_by_row

    texts = (LONLAT_TEXTS if lonlat else GRID_TEXTS) * 3
    new, old = _coordinate_layer(texts, kind), _coordinate_layer(texts, kind)
    points_from_table(new, "x", "y", lonlat=lonlat)
    points_row_by_row(old, "x", "y", lonlat=lonlat)
    pd.testing.assert_frame_equal(new.rejected.astype(str), old.rejected.astype(str))
    assert new.table.index.tolist() == old.table.index.tolist()
    assert new.table["source_row"].tolist() == old.table["source_row"].tolist()
    assert np.array_equal(shapely.get_coordinates(new.table.geometry.to_numpy()),
                          shapely.get_coordinates(old.table.geometry.to_numpy()))
    assert new.table.crs == old.table.crs
    assert len(new.rejected) + len(new.table) == len(texts)
    # The parsed pairs, weighted by their rows, are the rows with parsed coordinates.
    parsed = new.coordinates
    assert parsed.row_count == len(new.table) + (new.rejected["reason"].isin(
        ["longitude and latitude swapped", "coordinates outside Great Britain"])).sum()
    assert len(parsed.x) < parsed.row_count  # each pair once


def test_rows_of_one_snap_point_share_its_point():
    from geomisuse.layers.base import points_from_table

    layer = _coordinate_layer([("-0.1", "51.5")] * 4 + [(" -0.1", "51.5")], "object")
    points_from_table(layer, "x", "y", lonlat=True)
    geoms = layer.table.geometry.to_numpy()
    assert geoms[0] is geoms[3] and geoms[0] is not geoms[4] and geoms[0].equals(geoms[4])


def test_placement_counts_of_distinct_pairs_equal_those_of_rows():
    from geomisuse.layers.base import placement_counts

    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1, 60, 50), rng.uniform(-1, 60, 50)
    rows = rng.integers(1, 5, 50)
    bounds = (500_000.0, 150_000.0, 560_000.0, 200_000.0)
    assert placement_counts(x, y, bounds, rows) == placement_counts(np.repeat(x, rows), np.repeat(y, rows), bounds)


def test_loaded_categoricals_have_the_whole_columns_sorted_categories(damaged_archive, string_option):
    """The files' categoricals are united as ``pd.Categorical`` of the whole column would make
    them: the sorted values of the rows analysed (rows the coordinate checks reject afterwards
    keep their categories, as they did), never a file's values of rows not analysed."""
    layer = load_police_uk(LayerSpec("police_uk", [damaged_archive.folder]), context(["2024-01", "2024-02"]))
    for column in ("month", "measure", "crime_type", "location", "source_file"):
        values = layer.table[column]
        categories = values.cat.categories.tolist()
        assert isinstance(values.dtype, pd.CategoricalDtype), column
        assert categories == sorted(categories) and set(values.astype(object)) <= set(categories), column
        whole = pd.Categorical(pd.Series(values.astype(object).to_numpy()).astype(values.cat.categories.dtype))
        assert values.cat.categories.dtype == whole.categories.dtype, column
    assert set(layer.table["month"].cat.categories) == {"2024-01", "2024-02"}
    assert set(layer.table["measure"].cat.categories) == {"drug_offences", "asb"}
    assert {c.lower().replace("-", " ") for c in layer.table["crime_type"].cat.categories} == \
        {"drugs", "anti social behaviour"}


def test_files_read_two_at_a_time_keep_the_order_of_errors(tmp_path, monkeypatch):
    from geomisuse.layers import police_uk

    archive = write_archive(tmp_path / "archive", tiny_wards().geometry.to_numpy(),
                            ["2024-01", "2024-02", "2024-03", "2024-04"], rows_per_month=200)
    # A file of the wrong format, then a folder that is gone: the first one's error is raised.
    bad = archive.files[1]
    bad.write_text("a;b\n1;2\n")
    spec = LayerSpec("police_uk", [archive.folder, tmp_path / "missing"])
    with pytest.raises(InputError, match="no month column"):
        load_police_uk(spec, context())
    # Without the bad file the missing path is the error, after every file before it is read.
    bad.unlink()
    read = []
    original = police_uk.read_part
    monkeypatch.setattr(police_uk, "read_part", lambda name, *a: read.append(name) or original(name, *a))
    with pytest.raises(InputError, match="not found"):
        load_police_uk(spec, context())
    assert read == [str(p) for p in archive.files if p != bad]

def test_files_read_on_one_two_or_three_threads_give_the_same_layer(damaged_archive, monkeypatch, string_option):
    from geomisuse.layers import police_uk

    spec = LayerSpec("police_uk", [damaged_archive.folder])
    layers = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(police_uk, "READ_THREADS", threads)
        layers.append(load_police_uk(spec, context(["2024-01", "2024-02"])))
    for layer in layers[1:]:
        assert_same(layer, layers[0])
        assert layer.months == layers[0].months and layer.warnings == layers[0].warnings


def test_a_copy_read_two_at_a_time_is_passed_over_and_its_digest_serves_the_manifest(tmp_path):
    import hashlib

    from geomisuse.layers import base

    archive = write_archive(tmp_path / "archive", tiny_wards().geometry.to_numpy(), ["2024-01", "2024-02"],
                            rows_per_month=300)
    copy = tmp_path / "copy" / archive.files[0].name
    copy.parent.mkdir()
    copy.write_bytes(archive.files[0].read_bytes())
    layer = load_police_uk(LayerSpec("police_uk", [archive.folder, copy.parent]), context())
    assert layer.rows_read == archive.rows
    assert layer.warnings == [f"{copy} is a copy of {archive.files[0]}, read once"]
    for path in archive.files + [copy]:
        stat = path.stat()
        assert base._KNOWN_SHA256[(str(path), stat.st_size, stat.st_mtime_ns)] == \
            hashlib.sha256(path.read_bytes()).hexdigest()
    assert [f["sha256"] for f in layer.accounting()["files"]] == \
        [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(archive.files)]


def test_a_zip_is_hashed_once_for_the_manifest(tmp_path):
    import hashlib

    archive = write_archive(tmp_path / "archive", tiny_wards().geometry.to_numpy(), ["2024-01", "2024-02"],
                            rows_per_month=100)
    with zipfile.ZipFile(tmp_path / "archive.zip", "w") as bundle:
        for path in archive.files:
            bundle.write(path, path.name)
    layer = load_police_uk(LayerSpec("police_uk", [tmp_path / "archive.zip"]), context())
    assert layer.accounting()["files"] == [{"path": str(tmp_path / "archive.zip"),
                                            "sha256": hashlib.sha256((tmp_path / "archive.zip").read_bytes())
                                            .hexdigest()}]


def test_a_layer_with_no_row_analysed_has_the_column_types_it_had(damaged_archive, string_option):
    """Every file's rows outside the period: no categories, of the types a column of no
    values had (text from Arrow, the file name's as pandas infers a text, the others object)."""
    layer = load_police_uk(LayerSpec("police_uk", [damaged_archive.folder]), context(["1999-01"]))
    table = layer.table
    assert len(table) == 0 and layer.rows_used == 0
    categories = {c: table[c].cat.categories.dtype for c in ("month", "measure", "crime_type", "location", "source_file")}
    assert categories == {"month": object, "measure": object, "crime_type": object,
                          "location": pd.StringDtype("pyarrow"), "source_file": pd.Index(["a"]).dtype}


def test_arrow_categories_united_by_pyarrow_equal_union_categoricals():
    from geomisuse.layers.police_uk import _united

    rng = np.random.default_rng(2)
    texts = ["", "a", "B", "b", "é", "Z", "中", "On or near A, B and C", " lead", "0.1", "-0.1", "10", "9"]
    arrow = pd.StringDtype("pyarrow")
    parts = []
    for n in (0, 5, 40, 1, 300):
        values = pd.Series([texts[i] for i in rng.integers(0, len(texts), n)], dtype=arrow)
        if n == 40:
            values[3] = pd.NA
        parts.append(pd.Series(pd.Categorical(values)))
    united = _united(parts)
    expected = pd.api.types.union_categoricals([pd.Categorical(p) for p in parts if len(p)], sort_categories=True)
    assert united.equals(expected) and united.categories.dtype == expected.categories.dtype == arrow
    assert list(united.categories) == sorted(united.categories)
    assert pd.isna(united[5 + 3])
