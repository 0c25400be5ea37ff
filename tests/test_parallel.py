"""Work spread over forked workers (geomisuse.parallel) gives what one process gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import demo_run_copy
from geomisuse import parallel
from geomisuse.config import PublishSettings
from geomisuse.errors import InputError
from geomisuse.publish.briefings.pages import write_briefings
from geomisuse.publish.published import published_wards

needs_fork = pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(),
                                reason="no fork on this platform")


@pytest.fixture(autouse=True)
def two_workers(monkeypatch):
    """Two worker processes by default here, whatever the rest of the suite runs with (under
    pytest-xdist conftest gives each test process its share of the cores: 1 on two cores)."""
    monkeypatch.setenv(parallel.WORKERS_VARIABLE, "2")


@needs_fork
def test_results_come_back_in_order_from_other_processes():
    here = os.getpid()
    offset = 1000  # a closure: the workers inherit it, nothing is pickled on the way in
    results = parallel.fork_map(lambda k: (k + offset, os.getpid()), range(100), workers=2, min_items=1)
    assert [value for value, _ in results] == list(range(1000, 1100))
    assert here not in {pid for _, pid in results}  # (which worker takes which run is the pool's choice)


def test_few_items_or_one_worker_run_here():
    here = os.getpid()
    assert parallel.fork_map(lambda k: os.getpid(), range(5), workers=2, min_items=10) == [here] * 5
    assert parallel.fork_map(lambda k: os.getpid(), range(100), workers=1, min_items=1) == [here] * 100
    assert parallel.fork_map(lambda k: k, [], workers=2, min_items=0) == []


@needs_fork
def test_an_error_in_a_worker_is_raised_here():
    def fail_at_7(k):
        if k == 7:
            raise ValueError("item 7 is bad")
        return k

    with pytest.raises(ValueError, match="item 7 is bad"):
        parallel.fork_map(fail_at_7, range(20), workers=2, min_items=1)


@needs_fork
def test_nested_work_in_a_worker_runs_in_that_worker():
    results = parallel.fork_map(lambda k: parallel.fork_map(lambda j: (j, os.getpid()), range(3), workers=2,
                                                            min_items=1),
                                range(4), workers=2, min_items=1)
    for inner in results:
        assert [j for j, _ in inner] == [0, 1, 2]
        assert len({pid for _, pid in inner}) == 1  # ran where it was asked, not in a new pool


def _pages(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@needs_fork
def test_briefings_drawn_by_two_workers_are_the_pages_one_process_draws(tmp_path, monkeypatch):
    """The demo's wards split into four boroughs, so that the borough overviews, the ward
    pages and their drawings all go to workers; every page is the same byte for byte."""
    run = demo_run_copy(("clusters", "gaps"))
    run.wards["borough_name"] = [f"Part {k % 4 + 1}" for k in range(len(run.wards))]
    settings = PublishSettings()
    published = published_wards(run, settings)
    serial = write_briefings(run, published, tmp_path / "one", settings, workers=1)
    monkeypatch.setattr(parallel, "MIN_ITEMS", 1)
    pools = []
    get_context = parallel.multiprocessing.get_context
    monkeypatch.setattr(parallel.multiprocessing, "get_context", lambda method: pools.append(method) or get_context(method))
    forked = write_briefings(run, published, tmp_path / "two", settings, workers=2)
    assert pools == ["fork"] * 3  # the ward drawings, the borough overviews and the ward pages
    assert [p.name for p in serial] == [p.name for p in forked]
    assert len([p for p in serial if p.name.startswith("borough-")]) == 4
    one, two = _pages(tmp_path / "one"), _pages(tmp_path / "two")
    assert one == two
    assert any('<svg class="map"' in page.decode() for page in two.values())


@needs_fork
def test_started_value_and_error_come_back():
    assert parallel.start(lambda: os.getpid()).result() != os.getpid()

    def fail():
        raise ValueError("no answer")

    pending = parallel.start(fail)
    with pytest.raises(ValueError, match="no answer"):
        pending.result()


@needs_fork
def test_a_result_asked_in_another_worker_is_worked_out_there():
    pending = parallel.start(lambda: ("started", os.getpid()))
    other = parallel.fork_map(lambda k: pending.result(), range(2), workers=2, min_items=1)
    assert all(label == "started" and pid != os.getpid() for label, pid in other)
    assert pending.result()[0] == "started"  # the answer is still here for the process that asked first


@needs_fork
def test_a_cancelled_worker_is_stopped_and_its_work_done_here_if_asked():
    import time

    pending = parallel.start(lambda: (time.sleep(60) if parallel._IN_WORKER else None) or os.getpid())
    process = pending._process
    pending.cancel()
    assert not process.is_alive()
    assert pending.result() == os.getpid()  # asked after all: worked out here


def test_queen_contiguity_started_early_is_the_contiguity_of_any_part(real, monkeypatch):
    """The contiguity begun while the layers load (for every ward of the boundary file)
    gives each later part of the wards exactly what libpysal gives that part alone."""
    import geopandas as gpd
    import numpy as np

    from geomisuse.clusters import weights

    wards = gpd.read_file(real / "boundaries" / "ons_wards2022_london_bsc_simplified.gpkg").to_crs(27700)
    monkeypatch.setattr(weights, "_STARTED", [])
    weights.start_queen_adjacency(wards.geometry)
    rng = np.random.default_rng(5)
    part = wards.iloc[rng.permutation(len(wards))[:300]]  # shuffled: the order is the part's own
    direct = weights._queen_of(part.geometry)
    started = weights.queen_adjacency(part.geometry)
    assert started.shape == direct.shape == (300, 300) and direct.nnz > 600
    assert (started != direct).nnz == 0
    assert started.has_sorted_indices and started.diagonal().sum() == 0
    # Wards the started contiguity does not hold are worked out directly.
    moved = part.geometry.translate(1.0, 0.0)
    assert weights._started_part(moved) is None
    assert (weights.queen_adjacency(moved) != weights._queen_of(moved)).nnz == 0


def test_workers_from_the_environment(monkeypatch):
    monkeypatch.setenv(parallel.WORKERS_VARIABLE, "1")
    assert parallel.cores() == 1
    here = os.getpid()
    assert parallel.fork_map(lambda k: os.getpid(), range(100), min_items=1) == [here] * 100
    assert parallel.start(os.getpid).result() == here
    monkeypatch.setenv(parallel.WORKERS_VARIABLE, "3")
    assert parallel.cores() == 3
    for bad in ("0", "two", "-1", "1.5"):
        monkeypatch.setenv(parallel.WORKERS_VARIABLE, bad)
        with pytest.raises(InputError, match="GEOMISUSE_WORKERS"):
            parallel.cores()


def test_bad_workers_variable_is_exit_2_and_one_line(monkeypatch, tmp_path):
    from conftest import run_cli

    monkeypatch.setenv(parallel.WORKERS_VARIABLE, "many")
    result = run_cli("demo", "--out", str(tmp_path / "out"), "--tiles", "none")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "GEOMISUSE_WORKERS='many'" in result.stderr
    assert not (tmp_path / "out" / "map.html").exists()


@needs_fork
def test_a_demo_run_on_worker_processes_writes_what_one_process_writes(demo_out, tmp_path, monkeypatch):
    """The whole demo analysed and published afresh with two workers (the queen contiguity
    begun in a worker while the layers load and read by the cluster stage; the state and the
    map written by a forked worker, which asks for the neighbours) gives the bytes of the
    session's demo run (under pytest-xdist made with one process: conftest)."""
    from conftest import run_cli
    from test_notebook import STABLE_OUTPUTS

    forks = []
    get_context = parallel.multiprocessing.get_context
    monkeypatch.setattr(parallel.multiprocessing, "get_context", lambda method: forks.append(method) or get_context(method))
    out = tmp_path / "out"
    result = run_cli("demo", "--out", str(out), "--tiles", "none")
    assert result.returncode == 0, result.stderr
    assert forks.count("fork") >= 2   # the contiguity worker and the state and map worker
    pages = sorted(p.relative_to(demo_out).as_posix() for p in (demo_out / "briefings").glob("*.html"))
    assert len(pages) == 25
    for name in sorted(set(STABLE_OUTPUTS) | set(pages)):
        assert (out / name).read_bytes() == (demo_out / name).read_bytes(), name


def test_contiguity_is_started_only_for_queen_weights(monkeypatch):
    """Under k-nearest or distance weights the statistics' neighbours are what the briefings
    name, so no worker builds a contiguity nothing reads."""
    import dataclasses

    from conftest import DEMO_STUDY
    from geomisuse.clusters import weights
    from geomisuse.config import load_study
    from geomisuse.pipeline import load_inputs

    study = load_study(DEMO_STUDY)
    started = []
    monkeypatch.setattr(weights, "start_queen_adjacency", lambda geoms: started.append(len(geoms)))
    load_inputs(dataclasses.replace(study, clusters=study.clusters.model_copy(update={"weights": "knn"})))
    assert started == []
    load_inputs(study)
    assert started and started[0] > 1
