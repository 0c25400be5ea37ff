"""The notebook API: the README's example runs and writes what ``geomisuse demo`` writes; the
stages take plain data frames and keyword settings and never change what they are given; the
README's study-file reference lists exactly the schema's keys."""

from __future__ import annotations

import contextlib
import io
import json
import re

import geopandas as gpd
import pandas as pd
import pytest
import shapely

import geomisuse as gm
from geomisuse import config
from geomisuse.errors import InputError

from conftest import ROOT, TINY_CODES, tiny_wards

#: Outputs whose bytes do not depend on timings or random element ids.
STABLE_OUTPUTS = ("wards.csv", "wards_monthly.csv", "global_moran.csv", "satellites.csv", "unmatched.csv",
                  "briefings/index.html", "briefings/E05999007.html")


def readme_notebook() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.search(r"## From a notebook\n.*?```python\n(.*?)```", text, re.S).group(1)


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """Run the README's example (cwd = the checkout, output redirected); returns its namespace and folder."""
    out = tmp_path_factory.mktemp("notebook") / "out"
    code = readme_notebook()
    assert '"maps/notebook"' in code
    code = code.replace('"maps/notebook"', repr(str(out)))
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.chdir(ROOT), contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), namespace)
    return namespace, out, printed.getvalue()


def test_readme_example_writes_what_the_demo_command_writes(notebook, demo_out):
    """Two independent runs of the same inputs and seed (the notebook API here, the command
    line in ``demo_out``) give the same bytes: the stages wired by hand equal ``run``, and the
    run is deterministic."""
    _, out, printed = notebook
    for name in STABLE_OUTPUTS:
        assert (out / name).read_bytes() == (demo_out / name).read_bytes(), name
    ours, theirs = (json.loads((f / "manifest.json").read_text()) for f in (out, demo_out))
    for key in ("inputs", "measures", "study", "seed", "warnings"):
        assert ours[key] == theirs[key], key

    def untimed(section: dict) -> dict:  # the disclosure audit records how long it took
        return {k: (untimed(v) if isinstance(v, dict) else v) for k, v in section.items()
                if "second" not in k and not k.endswith("_s")}

    assert untimed(ours["suppression"]) == untimed(theirs["suppression"])
    assert "moran_i" in printed and "gap_reason" in printed


def test_readme_example_results_have_uniform_attributes(notebook):
    namespace, _, _ = notebook
    table, clusters, gaps = namespace["table"], namespace["clusters"], namespace["gaps"]
    for result in (table, clusters, gaps):
        assert isinstance(result.wards, gpd.GeoDataFrame) and len(result.wards) == 24
        assert isinstance(result.warnings, list)
    for result in (clusters, gaps):
        assert set(result.columns.columns) <= set(result.wards.columns)
        assert isinstance(result.manifest, dict) and result.summary_lines
    assert "possession_lisa_label" in gaps.wards and "gap_reason" in gaps.wards
    assert "gap_reason" not in clusters.wards


def test_stages_do_not_change_their_inputs():
    study = gm.load_study(ROOT / "data" / "demo" / "study.toml")
    inputs = gm.load_inputs(study)
    before = {kind: (layer.table.copy(), layer.accounting(), len(layer.rejected)) for kind, layer in
              inputs.layers.items()}
    wards_before = inputs.wards.copy()
    table = gm.build_ward_table(inputs.wards, inputs.layers, months=inputs.months)
    pd.testing.assert_frame_equal(inputs.wards, wards_before)
    for kind, (frame, accounting, rejected) in before.items():
        pd.testing.assert_frame_equal(inputs.layers[kind].table, frame)
        assert inputs.layers[kind].accounting() == accounting and len(inputs.layers[kind].rejected) == rejected
    # The join did move the police.uk points outside the borough to the rejects, of its copy.
    assert len(table.layers["police_uk"].rejected) > len(inputs.layers["police_uk"].rejected)
    ward_table = table.wards.copy()
    clusters = gm.find_clusters(table.wards, settings={"permutations": 999}, seed=1)
    pd.testing.assert_frame_equal(table.wards, ward_table)
    after_clusters = clusters.wards.copy()
    gaps = gm.find_gaps(clusters.wards, **gm.gap_inputs(table.layers), settings={"satellites": 1})
    pd.testing.assert_frame_equal(clusters.wards, after_clusters)
    assert len(gaps.satellites) == 1


def test_build_ward_table_takes_plain_data_frames():
    wards = tiny_wards().rename(columns={"WD22CD": "ward_code"})[["ward_code", "geometry"]]
    x0, y0 = 530000.0, 180000.0
    points = gpd.GeoDataFrame(
        {"measure": ["drug_offences", "drug_offences", "asb", "drug_offences"],
         "month": ["2025-01", "2025-02", "2025-02", "2025-02"]},
        geometry=[shapely.Point(x0 + 500, y0 + 500), shapely.Point(x0 + 600, y0 + 400),
                  shapely.Point(x0 + 2500, y0 + 1500), shapely.Point(x0 - 500, y0)],  # the last: outside
        crs="EPSG:27700")
    population = pd.DataFrame({"ward_code": TINY_CODES, "population": [1000.0, 2000, 500, 4000, 800, 1000]})
    table = gm.build_ward_table(wards, {"police_uk": points, "population": population})
    assert table.months == ["2025-01", "2025-02"]
    got = table.wards.set_index("ward_code")
    assert got.loc["E05000001", "drug_offences_count"] == 2
    assert got.loc["E05000001", "drug_offences_rate_per_1000"] == pytest.approx(2.0)
    assert got.loc["E05000006", "asb_count"] == 1 and got["drug_offences_count"].sum() == 2
    assert got.loc["E05000002", "ward_name"] == "E05000002"
    assert got["area_km2"].tolist() == pytest.approx([1.0] * 6)
    police = table.layers["police_uk"]
    assert police.rows_read == 4 and police.rows_used == 3
    assert police.rejected[["file", "row", "reason"]].values.tolist() == [
        ["<police_uk data frame>", 5, "outside the study area"]]
    assert "ward_code" not in points  # the caller's frame is untouched


def test_stage_settings_as_dicts_are_checked_like_the_study_file():
    # Settings are checked before the data, with the study file's one-line messages.
    with pytest.raises(InputError, match=r"^\[clusters\] alpha = 2: must be below 1$"):
        gm.find_clusters(gpd.GeoDataFrame(geometry=[]), settings={"alpha": 2})
    with pytest.raises(InputError, match=r"^\[gaps\] unknown key 'satelites'; did you mean 'satellites'\?"):
        gm.find_gaps(gpd.GeoDataFrame(geometry=[]), settings={"satelites": 2})
    with pytest.raises(InputError, match=r"^\[publish\] pdf = \"yes\": must be true or false"):
        gm.PublishSettings.from_options({"pdf": "yes"})


# --------------------------------------------------------------------------- schema vs README

def readme_reference() -> dict[str, set[str]]:
    """Section -> keys listed in the README's study file reference table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"### Study file reference\n(.*?)\n## ", text, re.S).group(1)
    keys: dict[str, set[str]] = {}
    section = None
    for line in block.splitlines():
        if not line.startswith("| ") or line.startswith("| section") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        section = cells[0].strip("`[]") or section
        keys.setdefault(section, set()).update(re.findall(r"`(\w+)`", cells[1].replace(" or ", ", ")))
    return keys


def test_readme_study_file_reference_lists_exactly_the_schema_keys():
    listed = readme_reference()
    schema = {"study": config.StudySection, "boundaries": config.BoundariesSection,
              "layers.KIND": config.LayerSection, "clusters": config.ClusterSettings,
              "gaps": config.GapSettings, "publish": config.PublishSettings}
    assert set(listed) == set(schema)
    for section, model in schema.items():
        keys = set(model.model_fields)
        if section == "layers.KIND":  # and the keys some kinds add (config.LAYER_KEYS)
            keys |= {key for extra in config.LAYER_KEYS.values() for key in extra.model_fields}
        assert listed[section] == keys, section
    # Every kind's column fields are named in the README's columns row.
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| | `columns` |"))
    for kind in config.LAYER_KINDS:
        model = config.LayersSection.model_fields[kind].annotation
        columns = config._model_in(model).model_fields["columns"].annotation
        for name in columns.model_fields:
            assert f"`{name}`" in row, (kind, name)


def test_a_run_cannot_be_made_without_the_measure_sources_disclosure_reads():
    """Publishing protects possession + trafficking = all drug offences where all three come
    from the MPS file; it reads that from the run's ``sources``, which a run must have (it
    used to come from a manifest key that a hand-built run could silently lack)."""
    from geomisuse.pipeline import StudyRun

    from conftest import demo_run_copy

    run = demo_run_copy()
    assert run.sources == {"possession": "mps_ward", "trafficking": "mps_ward", "drug_offences": "mps_ward",
                           "asb": "asb_warnings"}
    with pytest.raises(TypeError, match="sources"):
        StudyRun(study=run.study, wards=run.wards, monthly=run.monthly, months=run.months,
                 measures=run.measures, layers=run.layers)
