"""Published CSVs written fast: the vectorised formula neutralisation gives the cells the
cell-by-cell one gave, and text-and-integer tables (``unmatched.csv``) are written byte for byte
as ``DataFrame.to_csv`` writes them, under both settings of pandas' string option."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from geomisuse.publish.escaping import neutralise_csv, neutralise_csv_cell
from geomisuse.publish.tables import _write_text_csv, write_csv

#: Texts a CSV writer or a spreadsheet treats specially, and ordinary ones.
TEXTS = ["plain", "with,comma", 'with "quotes"', "new\nline", "carriage\rreturn", "=SUM(A1)",
         '=HYPERLINK("http://x","y")', "+44", "-x", "@cmd", "\tx", "\rx", "é ü 中文", "", " lead", "trail ",
         "'already", '"', ",", "a;b", "=", None]


@pytest.fixture(params=[True, False], ids=["arrow-strings", "object-strings"])
def string_option(request):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pd.option_context("future.infer_string", request.param):
            yield request.param


def neutralised_cell_by_cell(frame: pd.DataFrame) -> pd.DataFrame:
    """The neutralisation as it was: every cell of every text column through the cell rule."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise_csv_cell)
    out.columns = [neutralise_csv_cell(str(c)) for c in out.columns]
    return out


def frames() -> list[pd.DataFrame]:
    rng = np.random.default_rng(3)
    many = [TEXTS[i] for i in rng.integers(0, len(TEXTS), 5_000)]
    return [
        pd.DataFrame({"text": TEXTS, "n": np.arange(len(TEXTS)), "again": TEXTS[::-1]}),
        pd.DataFrame({"layer": "police_uk", "file": many, "row": rng.integers(-5, 10**9, 5_000),
                      "reason": many[::-1]}),
        pd.DataFrame({"arrow": pd.Series(TEXTS, dtype="string[pyarrow]"), "n": np.arange(len(TEXTS), dtype="int32")}),
        pd.DataFrame({"categories": pd.Categorical(TEXTS), "text": TEXTS}),
        pd.DataFrame({"=formula header": ["x", "y"], "b,c": [1, 2]}),
        # Not text and integers only: to_csv writes them.
        pd.DataFrame({"mixed": ["=x", 1, 2.5, True, None, -3], "n": range(6)}),
        pd.DataFrame({"text": ["=a", "b"], "float": [1.5, -0.1]}),
        pd.DataFrame({"text": ["=a", "b"], "nullable": pd.array([1, None], dtype="Int64")}),
        pd.DataFrame({"lists": [["=a"], ["b"]], "n": [1, 2]}),
        pd.DataFrame({"missing": [None, np.nan, None], "n": [1, 2, 3], "empty": pd.Series([None] * 3, dtype=object)}),
        pd.DataFrame({"text": pd.Series([None, "=x", None], dtype=object), "n": [1, 2, 3]}),
        pd.DataFrame({"only": TEXTS}),
        pd.DataFrame({"text": pd.Series([], dtype=object), "n": pd.Series([], dtype="int64")}),
    ]


def test_vectorised_neutralisation_gives_the_cells_of_the_cell_by_cell_one(string_option):
    for frame in frames():
        before = frame.copy()
        new, old = neutralise_csv(frame), neutralised_cell_by_cell(frame)
        assert list(new.columns) == list(old.columns)
        for position in range(old.shape[1]):
            new_cells, old_cells = new.iloc[:, position].tolist(), old.iloc[:, position].tolist()
            assert len(new_cells) == len(old_cells)
            for a, b in zip(new_cells, old_cells):
                if isinstance(b, list) or not pd.isna(b):
                    assert a == b and type(a) is type(b), (a, b)
                else:
                    assert pd.isna(a), (a, b)
        # Written alike (the columns' dtypes may differ where map inferred another one, e.g. a text
        # column of object dtype becoming pandas' str: the cells are the same).
        assert new.to_csv(index=False) == old.to_csv(index=False)
        pd.testing.assert_frame_equal(frame, before)  # the input is not changed
    out = neutralise_csv(pd.DataFrame({"t": ["=1", "1", "-2"], "x": [1, "=2", 3.0]}))
    assert out["t"].tolist() == ["'=1", "1", "'-2"] and out["x"].tolist() == [1, "'=2", 3.0]


def test_text_tables_are_written_byte_for_byte_as_to_csv_writes_them(string_option, tmp_path):
    fast_kinds = []
    for k, frame in enumerate(frames()):
        safe = neutralise_csv(frame)
        fast, slow = tmp_path / f"fast{k}.csv", tmp_path / f"slow{k}.csv"
        fast_kinds.append(_write_text_csv(safe, fast))
        safe.to_csv(slow, index=False)
        if fast_kinds[-1]:
            assert fast.read_bytes() == slow.read_bytes(), k
        write_csv(frame, tmp_path / f"written{k}.csv")
        assert (tmp_path / f"written{k}.csv").read_bytes() == slow.read_bytes(), k
    # Text and integer tables take the fast writer; the others, a lone column and no rows do not.
    assert fast_kinds == [True, True, True, True, True, False, False, False, False, False, True, False, False]


def test_a_large_unmatched_table_round_trips(tmp_path, string_option):
    rng = np.random.default_rng(5)
    files = np.array([f"police_uk/2024-{m:02d}/street.csv" for m in range(1, 13)] + ['odd, "name".csv'], dtype=object)
    frame = pd.DataFrame({"layer": "police_uk", "file": files[rng.integers(0, len(files), 200_000)],
                          "row": rng.integers(2, 500_000, 200_000),
                          "reason": np.array(["outside the study area", "no coordinates"], dtype=object)[
                              rng.integers(0, 2, 200_000)]})
    write_csv(frame, tmp_path / "unmatched.csv")
    back = pd.read_csv(tmp_path / "unmatched.csv", dtype={"row": "int64"}, keep_default_na=False)
    assert back["file"].tolist() == frame["file"].tolist() and back["row"].tolist() == frame["row"].tolist()
    neutralise_csv(frame).to_csv(tmp_path / "pandas.csv", index=False)
    assert (tmp_path / "unmatched.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()


def unmatched_rows_by_sorting(run) -> pd.DataFrame:
    """unmatched_rows as it was: file names through a categorical, then sort_values."""
    from geomisuse.publish.tables import _display_path

    parts = [layer.rejected for layer in run.layers.values() if len(layer.rejected)]
    frame = pd.concat(parts, ignore_index=True)
    files = pd.Categorical(frame["file"].astype(str))
    frame["file"] = pd.Series(files.rename_categories([_display_path(f, run) for f in files.categories]),
                              index=frame.index).astype(str)
    return frame.sort_values(["layer", "file", "row"], kind="stable").reset_index(drop=True)


def test_unmatched_rows_sorted_on_codes_equal_those_sorted_by_text(tmp_path, string_option):
    from types import SimpleNamespace

    from geomisuse.layers.base import LayerResult
    from geomisuse.publish.tables import unmatched_rows

    rng = np.random.default_rng(9)
    names = [str(tmp_path / "b" / "x.csv"), str(tmp_path / "a.zip") + ":2024-01/z.csv", str(tmp_path / "a.zip") +
             ":2024-01/y.csv", "/elsewhere/é.csv", str(tmp_path / "B.csv")]
    layers = {}
    for kind in ("police_uk", "asb_warnings", "pharmacies"):
        n = int(rng.integers(50, 400))
        layer = LayerResult(kind, [], pd.DataFrame(), rows_read=n)
        layer.rejected = pd.DataFrame({"layer": kind, "file": rng.choice(names, n), "row": rng.integers(2, 60, n),
                                       "reason": rng.choice(["no coordinates", "outside the study area", "=x"], n)})
        layers[kind] = layer
    run = SimpleNamespace(layers=layers, study=SimpleNamespace(path=tmp_path / "study.toml"))
    new, old = unmatched_rows(run), unmatched_rows_by_sorting(run)
    pd.testing.assert_frame_equal(new, old)
    assert new["row"].duplicated().any()  # ties on (layer, file, row) keep their order
