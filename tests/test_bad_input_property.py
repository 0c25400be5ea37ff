"""Property: whatever damage is done to the demo study's CSV files, a run ends with exit 0 and
complete accounting, or with exit 2 and one line; never with exit 1 (an internal error)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT
from geomisuse import cli

DEMO = ROOT / "data" / "demo"
#: The CSV inputs damaged (one police.uk month stands for the folder).
FILES = ["population.csv", "mps_ward_level_crime.csv", "asb_warnings.csv", "pharmacies.csv",
         "treatment_services.csv", "police_uk/2025-06-northmere-street.csv"]
#: Cell values that have broken, or could break, a loader or a later stage.
NASTY = ["", " ", "0", "-1", "-0", "1.5", "1,5", "3,000", "1e308", "inf", "-inf", "NaN", "nan", "None", "NULL",
         "N/A", "=1+1", "@SUM(A1)", "+44", "\t", "\r", "\x1b[2J", "\u202e", "café", "index", "con", "../x",
         "E05999001", "2025-13", "202512", "2025-06", "52,0621", "1,8146", "665415", "241173", "9" * 30,
         "'", '"', "<script>", "${alert(1)}", "Yes", "No", "Drugs", "Anti-social behaviour"]

cell = st.one_of(st.sampled_from(NASTY), st.text(max_size=6))
damage = st.one_of(
    st.tuples(st.just("cell"), st.integers(0, 10**6), st.integers(0, 40), cell),
    st.tuples(st.just("delete_row"), st.integers(0, 10**6)),
    st.tuples(st.just("duplicate_row"), st.integers(0, 10**6)),
    st.tuples(st.just("delete_column"), st.integers(0, 40)),
    st.tuples(st.just("swap_header"), st.integers(0, 40), st.integers(0, 40)),
    st.tuples(st.just("truncate"), st.floats(0.0, 1.0)),
    st.tuples(st.just("encode"), st.sampled_from(["utf-8-sig", "utf-16", "cp1252", "latin-1"])),
)


def apply(path: Path, damages: list[tuple]) -> None:
    """Apply cell-level damage to the parsed rows, then byte-level damage to the file."""
    # A file damaged twice may no longer be UTF-8: read what there is.
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8", errors="replace"))))
    encoding, cut = "utf-8", None
    for kind, *args in damages:
        body = len(rows) - 1
        if kind == "cell" and body > 0:
            row = rows[1 + args[0] % body]
            if row:
                row[args[1] % len(row)] = args[2]
        elif kind == "delete_row" and body > 0:
            del rows[1 + args[0] % body]
        elif kind == "duplicate_row" and body > 0:
            rows.append(list(rows[1 + args[0] % body]))
        elif kind == "delete_column" and rows and rows[0]:
            column = args[0] % len(rows[0])
            rows = [r[:column] + r[column + 1:] for r in rows]
        elif kind == "swap_header" and rows and rows[0]:
            i, j = args[0] % len(rows[0]), args[1] % len(rows[0])
            rows[0][i], rows[0][j] = rows[0][j], rows[0][i]
        elif kind == "truncate":
            cut = args[0]
        elif kind == "encode":
            encoding = args[0]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    data = text.getvalue().encode(encoding, errors="replace")
    if cut is not None:
        data = data[:int(len(data) * cut)]
    path.write_bytes(data)


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run the command line in this process; returns (exit code, stdout, stderr)."""
    code = cli.run_command(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_accounting(out: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    unmatched = pd.read_csv(out / "unmatched.csv")
    for entry in manifest["inputs"]:
        rejected = sum(entry["rows_rejected"].values())
        assert entry["rows_read"] == entry["rows_used"] + sum(entry["rows_excluded"].values()) + rejected, entry
        assert entry["rows_used"] >= 0
        assert int((unmatched["layer"] == entry["kind"]).sum()) == rejected, entry["kind"]


@pytest.mark.slow
@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(FILES), st.lists(damage, min_size=1, max_size=3)), min_size=1, max_size=3))
def test_damaged_demo_inputs_give_exit_0_with_accounting_or_exit_2_with_one_line(capsys, changes):
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "demo"
        shutil.copytree(DEMO, study)
        text = (study / "study.toml").read_text().replace("../../boundaries", str(ROOT / "boundaries"))
        (study / "study.toml").write_text(text)
        for name, damages in changes:
            apply(study / name, damages)
        out = Path(tmp) / "out"
        code, stdout, stderr = run_main(["run", str(study / "study.toml"), "--out", str(out), "--tiles", "none"],
                                        capsys)
        assert code in (0, 2), stderr
        if code == 2:
            lines = stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), stderr
            assert "\x1b" not in lines[0] and len(lines[0]) <= 400
            assert not out.exists()
            assert [p.name for p in Path(tmp).iterdir()] == ["demo"]
        else:
            check_accounting(out)
