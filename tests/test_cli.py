"""The command line end to end on the demo borough: outputs, accounting, suppression,
determinism, exit codes, and the README's commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from geomisuse.config import MEASURES

from conftest import ROOT, run_cli, run_cli_subprocess

CONTRACT_COLUMNS = ["ward_code", "ward_name", "borough_name", "population", "area_km2",
                    *[f"{m}_{s}" for m in MEASURES for s in ("count", "rate_per_1000")],
                    "treatment_services_count", "needle_exchanges_count", "estates_count",
                    *[f"{m}_{s}" for m in MEASURES for s in ("lisa_i", "lisa_p", "lisa_label", "gi_z", "gi_p",
                                                             "gi_bin")],
                    "nearest_treatment_service_m", "nearest_needle_exchange_m", "gap_score", "gap_rank",
                    "is_outreach_gap", "gap_reason"]



def test_demo_writes_the_output_contract(demo_out):
    for name in ("map.html", "wards.gpkg", "wards.csv", "wards_monthly.csv", "global_moran.csv", "satellites.csv",
                 "emerging_hotspots.csv", "unmatched.csv", "manifest.json", "briefings/index.html"):
        assert (demo_out / name).is_file(), name
    wards = pd.read_csv(demo_out / "wards.csv", dtype=str)
    assert [c for c in CONTRACT_COLUMNS if c not in wards.columns] == []
    assert list(wards.columns[:5]) == CONTRACT_COLUMNS[:5]
    assert len(wards) == 24 and wards["ward_code"].is_unique
    import geopandas as gpd

    gpkg = gpd.read_file(demo_out / "wards.gpkg", layer="wards")
    assert gpkg.crs.to_epsg() == 27700 and len(gpkg) == 24
    moran = pd.read_csv(demo_out / "global_moran.csv")
    assert list(moran.columns[:7]) == ["measure", "moran_i", "expected_i", "z", "p_sim", "permutations",
                                       "rate_adjustment"]
    monthly = pd.read_csv(demo_out / "wards_monthly.csv", dtype=str)
    assert list(monthly.columns[:2]) == ["ward_code", "month"] and len(monthly) == 24 * 12


def test_published_counts_are_suppressed(demo_out):
    """Default policy: the ASB warnings (council records) are protected; the MPS counts are
    published in full, as the Metropolitan Police publishes them, small values too."""
    for name in ("wards.csv", "wards_monthly.csv"):
        table = pd.read_csv(demo_out / name, dtype=str, keep_default_na=False)
        values = table[[c for c in table.columns if c.startswith("asb_") and c.endswith("_count")]].stack()
        assert not pd.to_numeric(values, errors="coerce").between(1, 4).any(), name
        assert (values == "<5").any()
        mps = pd.to_numeric(table["trafficking_count"], errors="coerce")
        assert mps.notna().all() and mps.between(1, 4).any(), name
    wards = pd.read_csv(demo_out / "wards.csv", dtype=str, keep_default_na=False)
    hidden = wards["asb_count"].isin(["<5", "c"])
    assert hidden.any() and (wards.loc[hidden, "asb_rate_per_1000"] == "").all()


def test_manifest_accounting_adds_up_and_unmatched_lists_every_rejected_row(demo_out):
    manifest = json.loads((demo_out / "manifest.json").read_text())
    rejected = 0
    for entry in manifest["inputs"]:
        total = entry["rows_used"] + sum(entry["rows_excluded"].values()) + sum(entry["rows_rejected"].values())
        assert entry["rows_read"] == total, entry["kind"]
        rejected += sum(entry["rows_rejected"].values())
        for item in entry["files"]:
            assert not item["path"].startswith("/"), "paths are relative to the study file"
    unmatched = pd.read_csv(demo_out / "unmatched.csv")
    assert len(unmatched) == rejected > 0
    assert set(unmatched.columns) == {"layer", "file", "row", "reason"}
    assert manifest["seed"] == 20261122 and manifest["study"]["demo"] is True
    assert manifest["suppression"]["unsuppressed"] is False
    assert manifest["clusters"]["weights"]["kind"] == "queen"
    assert set(manifest["outputs"]) >= {"map.html", "wards.csv", "manifest.json", "briefings/index.html"}


# Same inputs and seed give identical outputs: tests/test_notebook.py runs the demo a second
# time, through the notebook API, and compares the bytes with this session's demo_out.


def test_validate_writes_nothing(tmp_path):
    study = ROOT / "data" / "demo" / "study.toml"
    before = sorted(p.name for p in study.parent.iterdir())
    result = run_cli("validate", str(study), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ok: every input read" in result.stdout
    assert list(tmp_path.iterdir()) == []
    assert sorted(p.name for p in study.parent.iterdir()) == before


def test_failed_run_leaves_previous_outputs_untouched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "wards.csv").write_text("previous run\n")
    (tmp_path / "study.toml").write_text('[boundaries]\npath = "missing.gpkg"\n')
    result = run_cli("run", str(tmp_path / "study.toml"), "--out", str(out))
    assert result.returncode == 2
    assert (out / "wards.csv").read_text() == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "study.toml"]


def test_unknown_command_is_a_usage_error():
    result = run_cli("frobnicate")
    assert result.returncode == 2
    assert "No such command 'frobnicate'" in result.stderr and "Traceback" not in result.stderr


# The other tests drive the command line in this process; these check the real entry points.

def test_python_cli_py_bad_input_is_exit_2_and_one_line(tmp_path):
    (tmp_path / "study.toml").write_text('[boundaries]\npath = "wards.gpkg"\n[gaps]\nsatellites = "three"\n')
    result = run_cli_subprocess("validate", str(tmp_path / "study.toml"))
    assert result.returncode == 2
    assert result.stderr == (f"error: {tmp_path / 'study.toml'}: [gaps] satellites = \"three\": "
                             "must be a whole number\n")
    assert result.stdout == ""


def test_python_m_geomisuse_prints_the_version():
    result = subprocess.run([sys.executable, "-m", "geomisuse", "--version"], capture_output=True, text=True,
                            cwd=ROOT, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "geomisuse, version 0.1.0\n"


@pytest.mark.usefixtures("shared_demo_analysis")
def test_brief_for_one_ward_by_name(tmp_path):
    result = run_cli("brief", str(ROOT / "data" / "demo" / "study.toml"), "--ward", "saltmarsh",
                     "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    pages = sorted(p.name for p in (tmp_path / "out" / "briefings").glob("E05*.html"))
    assert pages == ["E05999007.html"]
    result = run_cli("brief", str(ROOT / "data" / "demo" / "study.toml"), "--ward", "Nowhere Green",
                     "--out", str(tmp_path / "out2"))
    assert result.returncode == 2 and "no ward 'Nowhere Green'" in result.stderr


@pytest.mark.usefixtures("shared_demo_analysis")
def test_brief_for_one_ward_leaves_the_other_pages_alone(tmp_path):
    study = str(ROOT / "data" / "demo" / "study.toml")
    out = tmp_path / "out"
    assert run_cli("brief", study, "--out", str(out)).returncode == 0
    pages = {p.name: p.read_bytes() for p in (out / "briefings").glob("E05*.html")}
    assert len(pages) == 24
    other = out / "briefings" / "E05999001.html"
    other.write_text(other.read_text(encoding="utf-8") + "<!-- kept -->", encoding="utf-8")
    result = run_cli("brief", study, "--ward", "saltmarsh", "--out", str(out))
    assert result.returncode == 0, result.stderr
    after = {p.name for p in (out / "briefings").glob("E05*.html")}
    assert after == set(pages)
    assert other.read_text(encoding="utf-8").endswith("<!-- kept -->")  # not rewritten, not deleted


def test_debug_is_accepted_before_or_after_the_command(tiny):
    study = str(tiny / "study.toml")
    # One real command, then the other positions on --help (the option is parsed before the work).
    for args in (("validate", study, "--debug"), ("--debug", "validate", "--help"), ("validate", "--debug", "--help")):
        result = run_cli(*args)
        assert result.returncode == 0, (args, result.stderr)
    assert "no such option" not in run_cli("map", "--debug", "--help").stderr.lower()


def test_demo_takes_pdf():
    result = run_cli("demo", "--help")
    assert result.returncode == 0 and "--pdf" in result.stdout


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start\n.*?```(?:bash|sh)?\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_gives_the_two_commands():
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("geomisuse demo") and "pip install" in commands[0]
    assert commands[1] == "bash .ci/run"
    assert "pytest" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_readme_demo_command_runs_the_installed_console_script(tmp_path):
    """The console script from the README's install (present when installed with pip -e)."""
    script = Path(sys.executable).parent / "geomisuse"
    if not script.exists():
        pytest.skip("geomisuse is not installed in this environment (run via .ci/run)")
    result = subprocess.run([str(script), "demo", "--out", str(tmp_path / "demo")], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "demo" / "map.html").is_file()
    assert "map:" in result.stdout and "tables:" in result.stdout


@pytest.mark.usefixtures("shared_demo_analysis")
def test_clusters_and_gaps_commands_print_the_planted_findings():
    from geomisuse.demo import borough as demo

    study = str(ROOT / "data" / "demo" / "study.toml")
    result = run_cli("clusters", study)
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if l.strip().startswith("possession:"))
    names = pd.read_csv(ROOT / "data" / "demo" / "population.csv").set_index("WD22CD")["WD22NM"]
    assert all(names[code] in line for code in demo.PLANTED_POSSESSION_CLUSTER)
    result = run_cli("gaps", study)
    assert result.returncode == 0, result.stderr
    first = result.stdout.split("Outreach gaps:")[1].splitlines()[1]
    assert first.strip().startswith(f"1. {names[demo.PLANTED_GAP_WARDS[0]]}:")


@pytest.mark.usefixtures("shared_demo_analysis")
def test_map_command_replaces_only_the_map(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".geomisuse-output").write_text("an earlier run's folder\n")
    (out / "wards.csv").write_text("kept\n")
    result = run_cli("map", str(ROOT / "data" / "demo" / "study.toml"), "--out", str(out), "--tiles", "none",
                     "--offline")
    assert result.returncode == 0, result.stderr
    assert (out / "wards.csv").read_text() == "kept\n"
    page = (out / "map.html").read_text()
    assert "DEMO DATA" in page and "unpkg.com" not in page and "cdn.jsdelivr" not in page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_single_ward_study_runs_without_clusters_and_says_why(tiny):
    text = (tiny / "study.toml").read_text().replace('path = "wards.geojson"',
                                                     'path = "wards.geojson"\nwhere = {WD22CD = "E05000001"}')
    (tiny / "study.toml").write_text(text)
    result = run_cli("run", str(tiny / "study.toml"), "--out", str(tiny / "out"), "--tiles", "none")
    assert result.returncode == 0, result.stderr
    assert "clusters skipped: they need at least 4 wards and the study has 1" in result.stderr
    assert "gaps skipped: they need drug offence counts" in result.stderr
    assert (tiny / "out" / "map.html").is_file()
    result = run_cli("clusters", str(tiny / "study.toml"))
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: spatial clusters need at least 4 wards and the study has 1; "
                                     "use a boundary file covering more wards")
