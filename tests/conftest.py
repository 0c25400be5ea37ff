"""Shared fixtures: a tiny hand-made borough, the real London data folder, and a CLI runner."""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import geopandas as gpd

# geopandas, shapely and click are imported where they are used: this module is also loaded by
# the pytest-xdist controller, which runs no test and starts the workers only after loading it.

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"

# Under pytest-xdist the test processes share the cores already (-n 2 on the project's two):
# each gets its share for geomisuse's own forked workers (GEOMISUSE_WORKERS, geomisuse.parallel),
# 1 on the project machine, unless the variable is set. Without this every study a test
# prepares forked a contiguity worker and every run written a map worker, on cores both test
# processes were using: about 35 s of CPU and 15 s of the quick suite's 60 s. The forked ways
# are tested in tests/test_parallel.py, which sets the variable itself.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("GEOMISUSE_WORKERS", str(max(1, len(os.sched_getaffinity(0))
                                                       // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

# Tiny borough: 3 x 2 square wards of 1 km in British National Grid, codes in ward order.
#   E05000004 E05000005 E05000006      (y 1000-2000)
#   E05000001 E05000002 E05000003      (y 0-1000)
ORIGIN = (530000.0, 180000.0)
TINY_CODES = [f"E0500000{i}" for i in range(1, 7)]
TINY_NAMES = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"]


def tiny_wards() -> gpd.GeoDataFrame:
    """The tiny borough's wards as a GeoDataFrame in EPSG:27700 (ONS 2022 column names)."""
    import geopandas as gpd
    import shapely

    x0, y0 = ORIGIN
    boxes = [shapely.box(x0 + c * 1000, y0 + r * 1000, x0 + (c + 1) * 1000, y0 + (r + 1) * 1000)
             for r in range(2) for c in range(3)]
    return gpd.GeoDataFrame({"WD22CD": TINY_CODES, "WD22NM": TINY_NAMES}, geometry=boxes, crs="EPSG:27700")


#: Test modules, slowest first. pytest-xdist hands out whole modules in collection order
#: (``--dist loadfile --no-loadscope-reorder`` in pyproject.toml), so the two workers start on
#: the long ones and finish together on short ones. First the modules with long slow tests
#: (the whole suite, CI: disclosure_audit ~170 s, single_source ~130 s, london ~60 s, the
#: browser pages and the hypothesis property ~40 s each), then by their time in the quick suite
#: (bad_input 8 s, dask_engine 7 s, cli 6 s, police_uk_fast, parallel, demo_files 3-5 s, ...; 2
#: December 2026). Modules not listed (each about 1 s or less) keep their collection order after these;
#: the order of tests within a module is kept.
SLOWEST_FIRST = ("test_disclosure_audit", "test_single_source", "test_london", "test_reading_browser",
                 "test_bad_input_property", "test_briefings_browser", "test_bad_input", "test_dask_engine",
                 "test_cli", "test_map_browser", "test_network", "test_scale", "test_police_uk_fast",
                 "test_parallel", "test_demo_files", "test_yearly", "test_briefings", "test_notebook",
                 "test_republish", "test_map", "test_gaps", "test_ward_join", "test_emerging", "test_layers",
                 "test_clusters", "test_real_data", "test_published_csv")


def pytest_collection_modifyitems(items: list) -> None:
    rank = {name: k for k, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))   # a stable sort


def write_tiny(folder: Path) -> Path:
    """The tiny borough's boundary file and a minimal study.toml in ``folder``; returns it."""
    tiny_wards().to_crs("EPSG:4326").to_file(folder / "wards.geojson", driver="GeoJSON")
    (folder / "study.toml").write_text('[study]\nname = "Tiny"\n\n[boundaries]\npath = "wards.geojson"\n')
    return folder


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A folder with the tiny borough's boundary file and a minimal study.toml; returns the folder."""
    return write_tiny(tmp_path)


@pytest.fixture(scope="session")
def real() -> Path:
    """The real London data beside the project (always present in CI)."""
    if not REAL.is_dir():
        pytest.skip("../shared/data/real is not present")
    return REAL


DEMO_STUDY = ROOT / "data" / "demo" / "study.toml"

# The demo borough's analysis, shared within a test process. Many tests read the demo's ward
# table or its finished run; they share one preparation (``prepare``: inputs read and joined,
# the ward table built) and one run of each list of stages, and each gets a deep copy. The
# analysis itself is checked by the tests of the stages, and its determinism by
# tests/test_notebook.py (an independent second run of the whole demo, byte for byte).


@functools.lru_cache(maxsize=None)
def _demo_study():
    """The committed demo study, as read from its file (never handed out: compare with it)."""
    from geomisuse.config import load_study

    return load_study(DEMO_STUDY)


_DEMO_PREPARED: list = []


def _prepare_sharing_the_demo(prepare):
    """``prepare`` that prepares the unchanged demo study once (with ``prepare`` itself) and
    then returns deep copies of that run; any other study is prepared as usual."""
    def shared(study):
        if study != _demo_study():
            return prepare(study)
        if not _DEMO_PREPARED:
            _DEMO_PREPARED.append(prepare(study))
        return copy.deepcopy(_DEMO_PREPARED[0])

    shared.__wrapped__ = prepare
    return shared


@functools.lru_cache(maxsize=None)
def _demo_analysis(stages: tuple[str, ...], skip_unavailable: bool = False):
    """``analyse(demo study, stages, skip_unavailable)`` computed once per process: the real
    ``analyse`` on a copy of the shared preparation. Do not change what it returns."""
    from geomisuse import pipeline

    if skip_unavailable and not pipeline.unavailable_stages(_demo_analysis(())[0]):
        # analyse() only acts on skip_unavailable for a stage the data cannot support.
        return _demo_analysis(stages)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "prepare", _prepare_sharing_the_demo(pipeline.prepare))
        return pipeline.analyse(copy.deepcopy(_demo_study()), stages, skip_unavailable)


def _demo_run(stages: tuple[str, ...]):
    return _demo_analysis(tuple(stages))[0]


def demo_run_copy(stages: tuple[str, ...] = ()):
    """The demo borough's run after ``stages`` (``()``: the ward table only; ``("clusters",
    "gaps")``: everything), computed once per test session; each call returns a deep copy,
    so a test may change it freely."""
    return copy.deepcopy(_demo_run(tuple(stages)))


@contextlib.contextmanager
def demo_analysis_shared():
    """While active, the command line analyses the unchanged demo study (same file, same
    settings, same seed) from :func:`_demo_analysis` (a deep copy each time) instead of again;
    every other study, and ``--seed``, are analysed as usual. For tests of what a command
    writes and prints, not of the analysis."""
    import geomisuse.cli as cli
    from geomisuse.pipeline import STAGES

    real = cli.analyse

    def analyse(study, stages=STAGES, skip_unavailable=False):
        if study != _demo_study():
            return real(study, stages, skip_unavailable)
        run, summary = _demo_analysis(tuple(stages), skip_unavailable)
        return copy.deepcopy(run), list(summary)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "analyse", analyse)
        yield


@pytest.fixture
def shared_demo_analysis():
    """:func:`demo_analysis_shared` for one test."""
    with demo_analysis_shared():
        yield


@pytest.fixture(scope="session")
def demo_command(tmp_path_factory) -> tuple[str, Path]:
    """``geomisuse demo --out OUT --tiles none``, run once per session (its analysis shared,
    :func:`demo_analysis_shared`); returns what it printed and OUT (read it, do not change it)."""
    out = tmp_path_factory.mktemp("demo") / "out"
    with demo_analysis_shared():
        result = run_cli("demo", "--out", str(out), "--tiles", "none")
    assert result.returncode == 0, result.stderr
    assert f"map:    {out / 'map.html'}" in result.stdout
    return result.stdout, out


@pytest.fixture(scope="session")
def demo_out(demo_command) -> Path:
    """The session's ``geomisuse demo --out OUT --tiles none`` folder OUT (read it, do not change it)."""
    return demo_command[1]


@dataclass
class CliResult:
    """What a command line run gave: the exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path | None = None) -> CliResult:
    """Run ``geomisuse ARGS`` in this process (click's ``CliRunner``), in ``cwd`` (default the
    checkout); returns the exit code, stdout and stderr as a subprocess would give them.

    The command line's own error handling (:func:`geomisuse.cli.run_command`) runs as in
    ``python cli.py``: bad input is exit 2 and one line on stderr. Subprocess smoke tests
    (``run_cli_subprocess``) check the console script and ``python cli.py`` themselves.
    """
    from click.testing import CliRunner

    from geomisuse.cli import run_command

    runner = CliRunner()
    previous = Path.cwd()
    os.chdir(cwd or ROOT)
    try:
        with runner.isolation() as (out, err, _):
            code = run_command([str(a) for a in args])
            sys.stdout.flush()
            sys.stderr.flush()
            stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    finally:
        os.chdir(previous)
    return CliResult(returncode=code, stdout=stdout, stderr=stderr)


def run_cli_subprocess(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python cli.py ARGS`` in a fresh process; returns the completed process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=600)


def tower_hamlets_study(real: Path, folder: Path, period: tuple[str, str], mps_file: str) -> Path:
    """A study of Tower Hamlets' 20 wards (full-resolution 2022 boundaries, Census 2021 residents,
    the MPS ward file ``mps_file``) over ``period``; returns the study file written in ``folder``."""
    path = folder / "study.toml"
    path.write_text(f"""
[study]
name = "Tower Hamlets"
period = ["{period[0]}", "{period[1]}"]
[boundaries]
path = "{real}/boundaries/ons_wards2022_tower_hamlets_bfc.gpkg"
[layers.population]
path = "{real}/population/census2021_ward2022_tower_hamlets_usual_residents.csv"
[layers.mps_ward]
path = "{real}/mps_ward/{mps_file}"
""")
    return path
