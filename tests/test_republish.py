"""``geomisuse map RUN_DIR`` and ``geomisuse brief RUN_DIR``: republishing a finished run from
the saved state in its output folder (``.geomisuse/``), without running the analysis."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import DEMO_STUDY, run_cli
from geomisuse.publish.state import FORMAT_VERSION, STATE_FILE, STATE_FOLDER, changed_input, input_fingerprints


@pytest.fixture
def run_dir(demo_out: Path, tmp_path: Path) -> Path:
    """A copy of the session's demo run folder (``demo --tiles none``), free to change."""
    folder = tmp_path / "run"
    shutil.copytree(demo_out, folder)
    return folder


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` (hidden ones too): relative path -> (bytes, mtime in ns)."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def changed(before: dict, after: dict) -> set[str]:
    """Files added, removed, rewritten or touched between two snapshots."""
    return {k for k in set(before) | set(after) if before.get(k) != after.get(k)}


def state_json(folder: Path) -> dict:
    return json.loads((folder / STATE_FOLDER / STATE_FILE).read_text(encoding="utf-8"))


def edit_state(folder: Path, **changes) -> None:
    data = state_json(folder)
    data.update(changes)
    (folder / STATE_FOLDER / STATE_FILE).write_text(json.dumps(data), encoding="utf-8")


def assert_one_line_exit_2(result, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr


# --------------------------------------------------------------------------- what a run saves

def test_a_run_saves_its_state_and_no_published_file_points_at_it(demo_out):
    state = state_json(demo_out)
    assert state["format_version"] == FORMAT_VERSION and state["geomisuse_version"]
    assert "do not publish" in state["format"]
    assert str(DEMO_STUDY.resolve()) in state["inputs"]                      # the study file is an input
    files = sorted(p.name for p in (demo_out / STATE_FOLDER).iterdir())
    assert files == sorted([STATE_FILE, *(f"{t}.parquet" for t in state["tables"])])   # JSON + Parquet, no pickle
    assert {"wards", "monthly", "layer-police_uk", "layer-pharmacies"} <= set(state["tables"])
    published = [demo_out / "map.html", demo_out / "manifest.json", *(demo_out / "briefings").glob("*.html")]
    for path in published:
        assert STATE_FOLDER + "/" not in path.read_text(encoding="utf-8"), path.name
    # Only what the heat maps read of the police.uk points (not crime IDs, locations, rows).
    import geopandas as gpd

    police = gpd.read_parquet(demo_out / STATE_FOLDER / "layer-police_uk.parquet")
    assert sorted(police.columns) == ["geometry", "measure", "month"]


# --------------------------------------------------------------------------- republishing

def test_republished_map_and_briefings_are_byte_identical_to_the_run(run_dir, demo_out):
    # The run's own settings (here --tiles none) are the starting point: no options needed.
    result = run_cli("map", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert f"map: {run_dir / 'map.html'}" in result.stdout
    result = run_cli("brief", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert (run_dir / "map.html").read_bytes() == (demo_out / "map.html").read_bytes()
    pages = sorted(p.name for p in (demo_out / "briefings").iterdir())
    assert len(pages) == 25 and sorted(p.name for p in (run_dir / "briefings").iterdir()) == pages
    for name in pages:
        assert (run_dir / "briefings" / name).read_bytes() == (demo_out / "briefings" / name).read_bytes(), name


def test_republishing_runs_no_analysis(run_dir, monkeypatch):
    import geomisuse.cli as cli
    import geomisuse.clusters as clusters
    import geomisuse.clusters.weights as weights
    import geomisuse.gaps as gaps
    import geomisuse.pipeline as pipeline

    def refuse(*args, **kwargs):
        raise AssertionError("the analysis ran")

    for module, name in ((cli, "analyse"), (pipeline, "analyse"), (pipeline, "prepare"), (pipeline, "load_inputs"),
                         (clusters, "find_clusters"), (weights, "build_neighbours"), (gaps, "find_gaps")):
        monkeypatch.setattr(module, name, refuse)
    assert run_cli("map", str(run_dir), "--tiles", "OpenStreetMap").returncode == 0
    result = run_cli("brief", str(run_dir), "--ward", "saltmarsh")
    assert result.returncode == 0, result.stderr
    assert run_cli("map", str(DEMO_STUDY), "--out", str(run_dir.parent / "x")).returncode == 1  # the patch is live


def test_brief_one_ward_rewrites_only_its_page_and_the_overview(run_dir):
    before = snapshot(run_dir)
    result = run_cli("brief", str(run_dir), "--ward", "E05999007")
    assert result.returncode == 0, result.stderr
    after = snapshot(run_dir)
    assert changed(before, after) == {"briefings/E05999007.html", "briefings/index.html"}
    assert after["briefings/E05999007.html"][0] == before["briefings/E05999007.html"][0]   # same page again


def test_map_with_other_tiles_changes_only_the_map(run_dir):
    before = snapshot(run_dir)
    result = run_cli("map", str(run_dir), "--tiles", "OpenStreetMap")
    assert result.returncode == 0, result.stderr
    after = snapshot(run_dir)
    assert changed(before, after) == {"map.html"}
    assert b"tile.openstreetmap.org" in after["map.html"][0] and b"tile.openstreetmap.org" not in before["map.html"][0]


def test_out_writes_the_part_elsewhere_and_leaves_the_run_alone(run_dir, tmp_path):
    before = snapshot(run_dir)
    result = run_cli("map", str(run_dir), "--out", str(tmp_path / "other"), "--simplify", "0")
    assert result.returncode == 0, result.stderr
    assert snapshot(run_dir) == before
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == [".geomisuse-output", "map.html"]


def test_unsuppressed_is_never_carried_over_from_the_run(run_dir):
    # As if the run had been written --unsuppressed: republishing protects unless told again.
    edit_state(run_dir, settings={**state_json(run_dir)["settings"], "unsuppressed": True})
    result = run_cli("map", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert "give --unsuppressed again" in result.stderr
    assert 'id="gm-unsuppressed"' not in (run_dir / "map.html").read_text(encoding="utf-8")
    result = run_cli("map", str(run_dir), "--unsuppressed")
    assert result.returncode == 0 and 'id="gm-unsuppressed"' in (run_dir / "map.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- refusals

def test_refusals_are_one_line_exit_2_and_change_nothing(run_dir, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("mine\n")
    cases = [
        (plain, ("map", str(plain)), ("no saved run here", "geomisuse run")),
        (run_dir, ("map", str(run_dir), "--seed", "7"), ("--seed changes the analysis",)),
        (run_dir, ("brief", str(run_dir), "--ward", "Nowhere Green"), ("no ward 'Nowhere Green'",)),
        (run_dir, ("brief", str(run_dir), "--out", str(plain)), ("did not write",)),
    ]
    for folder, args, words in cases:
        before = snapshot(folder)
        assert_one_line_exit_2(run_cli(*args), *words)
        assert snapshot(folder) == before, args
    edit_state(run_dir, format_version=FORMAT_VERSION + 1)
    before = snapshot(run_dir)
    assert_one_line_exit_2(run_cli("brief", str(run_dir)), f"format version {FORMAT_VERSION + 1}", "geomisuse run")
    assert snapshot(run_dir) == before
    # Nothing staged is left beside the folders.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "run"]


def test_changed_inputs_make_the_saved_run_stale(tiny):
    out = tiny / "out"
    assert run_cli("run", str(tiny / "study.toml"), "--out", str(out), "--tiles", "none").returncode == 0
    assert run_cli("map", str(out)).returncode == 0
    wards = tiny / "wards.geojson"
    wards.write_bytes(wards.read_bytes() + b"\n")
    before = snapshot(out)
    assert_one_line_exit_2(run_cli("map", str(out)), "out of date", "wards.geojson", "geomisuse run")
    assert snapshot(out) == before
    # The study file is an input too (its settings are the analysis').
    assert run_cli("run", str(tiny / "study.toml"), "--out", str(out), "--tiles", "none").returncode == 0
    study = tiny / "study.toml"
    study.write_text(study.read_text() + "\n")
    assert_one_line_exit_2(run_cli("brief", str(out)), "study.toml' changed")


def test_a_folder_input_changes_when_a_file_is_added_or_edited(tmp_path):
    from geomisuse.config import LayerSpec, Study

    folder = tmp_path / "police"
    folder.mkdir()
    (folder / "2025-01.csv").write_text("a\n")
    (folder / ".cache").write_text("ignored\n")
    study = Study(path=None, name="t", borough=None, period=None, seed=1, demo=False, sources=[],
                  boundaries=LayerSpec("boundaries", [tmp_path / "wards.gpkg"]),
                  layers={"police_uk": LayerSpec("police_uk", [folder])})
    saved = input_fingerprints(study)
    assert saved[str(tmp_path / "wards.gpkg")] is None and changed_input(saved) is None
    (folder / ".cache").write_text("still ignored\n")
    assert changed_input(saved) is None
    (folder / "2025-02.csv").write_text("b\n")
    assert changed_input(saved) == f"input folder '{folder}' changed ('2025-02.csv')"
    saved = input_fingerprints(study)
    (folder / "2025-01.csv").write_text("edited\n")
    assert "changed ('2025-01.csv')" in changed_input(saved)
    (tmp_path / "wards.gpkg").write_text("x")          # a file that appeared where there was none
    assert changed_input({str(tmp_path / "wards.gpkg"): None}) == f"input '{tmp_path / 'wards.gpkg'}' changed"


def test_a_restored_run_cannot_write_every_output(run_dir, tmp_path):
    from geomisuse.pipeline import load_run
    from geomisuse.publish.tables import write_outputs

    run, saved = load_run(run_dir)
    assert run.restored_from == run_dir and saved.settings.tiles == "none"
    with pytest.raises(ValueError, match="map or the briefings only"):
        write_outputs(run, tmp_path / "all", saved.settings)
    assert not (tmp_path / "all").exists()


def test_a_layer_column_of_mixed_values_is_saved_as_text(tmp_path):
    import geopandas as gpd
    import shapely

    from conftest import demo_run_copy
    from geomisuse.pipeline import load_run
    from geomisuse.publish.state import write_state
    from geomisuse.publish.tables import PublishSettings

    run = demo_run_copy()
    estates = run.layers["estates"].table
    estates["landlord"] = [7, "Council", None, *["Trust"] * (len(estates) - 3)]   # Parquet refuses this mixture
    out = tmp_path / "out"
    out.mkdir()
    write_state(run, out, PublishSettings())
    back, _ = load_run(out)
    assert list(back.layer_table("estates")["landlord"])[:3] == ["7", "Council", None]
    assert isinstance(back.layer_table("estates"), gpd.GeoDataFrame) and back.wards.equals(run.wards)
    assert all(isinstance(g, shapely.Geometry) for g in back.layer_table("police_uk").geometry)


def test_points_are_saved_in_geoparquet_point_encoding_and_read_back_exactly(tmp_path):
    import geopandas as gpd
    import pyarrow.parquet as pq
    import shapely

    from conftest import demo_run_copy
    from geomisuse.pipeline import load_run
    from geomisuse.publish.state import write_state
    from geomisuse.publish.tables import PublishSettings

    run = demo_run_copy()
    out = tmp_path / "out"
    out.mkdir()
    write_state(run, out, PublishSettings())
    back, _ = load_run(out)
    for kind in ("police_uk", "treatment_services", "estates"):
        saved, table = back.layer_table(kind), run.layer_table(kind)
        assert isinstance(saved, gpd.GeoDataFrame) and saved.crs == table.crs
        assert shapely.equals_exact(saved.geometry.to_numpy(), table.geometry.to_numpy(), tolerance=0).all(), kind
        assert saved.drop(columns="geometry").equals(table[list(saved.columns.drop("geometry"))]), kind
    encoding = {}
    for kind in ("police_uk", "estates"):
        meta = json.loads(pq.read_metadata(out / STATE_FOLDER / f"layer-{kind}.parquet").metadata[b"geo"])
        encoding[kind] = meta["columns"]["geometry"]["encoding"]
    # Points in the native encoding; the estates (polygons and points) as WKB, as before.
    assert encoding == {"police_uk": "point", "estates": "WKB"}
