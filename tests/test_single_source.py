"""One source of truth for each concept, and a package without import cycles.

Each test here pins one concept to the module that defines it and checks that every place a
reader meets it (map, briefings, gap reasons, exports) says the same thing: the LISA labels
and Gi* bins (geomisuse.vocabulary), their wording and every distance, rate and period
(geomisuse.publish.text), the neighbours (the cluster statistics' weights), and which ward a
point is in (the ward join's rule).
"""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from conftest import ROOT, TINY_CODES, demo_run_copy, tiny_wards
from geomisuse import vocabulary
from geomisuse.clusters import ClusterSettings, find_clusters
from geomisuse.clusters.weights import build_neighbours
from geomisuse.gaps import walking
from geomisuse.layers.ward_join import OUTSIDE, WardLocator
from geomisuse.publish import text
from geomisuse.publish.briefings.findings import cluster_words
from geomisuse.publish.briefings.pages import build_data
from geomisuse.publish.maps import page as map_page
from geomisuse.publish.published import published_wards
from geomisuse.publish.tables import PublishSettings

PACKAGE = ROOT / "geomisuse"


# --------------------------------------------------------------------------- the import graph

def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str, path: Path) -> set[str]:
    """Every geomisuse module ``name`` imports, at the top or inside functions (imports under
    ``if TYPE_CHECKING:`` are for type checkers only and do not run)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.split(".")[0] == "geomisuse")
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[:len(package.split(".")) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.split(".")[0] == "geomisuse":
                    # "from . import walking" imports the module walking; "from .x import f" imports x.
                    found.update(f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target
                                 for a in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in MODULES and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """Every geomisuse module -> the geomisuse modules it imports (read when a test asks, not
    at collection)."""
    return {name: imported_modules(name, path) for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or round a loop (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_the_import_graph_reads_the_package(graph):
    # The graph is real: it sees top-level, relative, in-function and "from . import x" imports.
    assert "geomisuse.publish.text" in graph["geomisuse.gaps.reasons"]
    assert "geomisuse.gaps.walking" in graph["geomisuse.gaps.sites"]          # from . import walking
    assert "geomisuse.clusters.weights" in graph["geomisuse.pipeline"]        # inside a method
    assert "geomisuse.pipeline" not in graph["geomisuse.publish.tables"]      # TYPE_CHECKING only
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle(graph):
    assert cycles(graph) == []


def test_publishing_imports_no_analysis_stage(graph):
    analysis = ("geomisuse.clusters", "geomisuse.gaps", "geomisuse.pipeline")
    for name, imported in graph.items():
        if name.startswith("geomisuse.publish"):
            bad = sorted(m for m in imported if m.startswith(analysis))
            assert bad == [], f"{name} imports {bad}"
    # Nor through anything it imports, however deep (Python also runs geomisuse/__init__.py
    # first, the notebook API that wires every stage; that is the package's, not publishing's).
    reached, todo = set(), [m for m in graph if m.startswith("geomisuse.publish")]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo.extend(graph[module])
    assert sorted(m for m in reached if m.startswith(analysis)) == []
    assert "geomisuse.vocabulary" in reached and "geomisuse.layers.base" in reached   # the walk is real


def test_the_shared_vocabulary_imports_nothing_of_the_package(graph):
    assert graph["geomisuse.vocabulary"] == set()
    assert graph["geomisuse.publish.text"] <= {"geomisuse.vocabulary"}


@pytest.mark.slow
def test_every_module_imports_alone_in_a_fresh_interpreter():
    from concurrent.futures import ThreadPoolExecutor

    def import_alone(name: str) -> str:
        done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, cwd=ROOT,
                              env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=300)
        return f"{name}: {done.stderr.strip().splitlines()[-1]}" if done.returncode else ""

    names = sorted(m for m in MODULES if not m.endswith("__main__"))   # __main__ runs the CLI
    assert len(names) > 40
    with ThreadPoolExecutor(max_workers=2) as pool:                     # the machine's two cores
        failed = [f for f in pool.map(import_alone, names) if f]
    assert failed == []


# --------------------------------------------------------------------------- LISA and Gi* words

def test_lisa_labels_are_the_quadrants_and_the_map_colours_them_all():
    assert set(vocabulary.LISA_LABELS) == set(vocabulary.QUADRANT_LABELS.values()) | {vocabulary.NOT_SIGNIFICANT}
    assert list(map_page.LISA_COLOURS) == list(vocabulary.LISA_LABELS)
    assert len(set(map_page.LISA_COLOURS.values())) == len(vocabulary.LISA_LABELS)
    # The cluster stage writes only these labels.
    rng = np.random.default_rng(3)
    wards = tiny_grid(5, 5, rng.gamma(2.0, 2.0, 25))
    labels = find_clusters(wards, ClusterSettings(correction="none", permutations=999), seed=3) \
        .columns["possession_lisa_label"]
    assert set(labels) <= set(vocabulary.LISA_LABELS)


def test_map_legend_tooltip_and_briefing_say_the_same_gi_bins():
    bins = [3, 2, 1, 0, -1, -2, -3]
    assert list(vocabulary.GI_BINS) == bins
    assert vocabulary.GI_CONFIDENCE == {3: 99, 2: 95, 1: 90}
    wards = pd.DataFrame({"possession_gi_bin": pd.array(bins, dtype="Int64")})
    layers: list[dict] = []
    map_page._cluster_layers(layers, wards, ["possession"])
    [gi_layer] = [layer for layer in layers if layer["name"].startswith("Hot/cold")]
    legend = {b: item[1] for b, item in zip(bins, gi_layer["legend"]["items"])}
    assert gi_layer["cls"] == list(range(7)) and gi_layer["colours"] == list(map_page.GI_COLOURS.values())
    for b in bins:
        tooltip = map_page._gi_text(b)
        briefing = cluster_words("possession", vocabulary.NOT_SIGNIFICANT, [], None, b)
        if b == 0:
            assert legend[b] == tooltip == vocabulary.NOT_SIGNIFICANT and "Gi*" not in briefing
            continue
        kind, confidence = vocabulary.gi_kind(b), str(vocabulary.GI_CONFIDENCE[abs(b)])
        for words in (legend[b], tooltip, briefing):
            assert kind in words.lower() and confidence in words, (b, words)
        assert legend[b] == f"{kind.capitalize()} spot, {confidence} % confidence"
        assert f"Getis-Ord Gi*: {kind} spot ({confidence}% confidence)." in briefing


def test_gi_bins_of_the_statistic_follow_the_vocabulary_levels():
    from geomisuse.clusters.getisord import gi_bins
    for level, threshold in vocabulary.GI_BIN_LEVELS:
        assert gi_bins(np.array([2.0, -2.0]), np.array([threshold, threshold])).tolist() == [level, -level]
        assert abs(gi_bins(np.array([2.0]), np.array([threshold * 1.01]))[0]) < level


# --------------------------------------------------------------------------- figures in words

def test_figure_wording():
    assert [text.distance_text(m) for m in (0, 853.4, 999.6, 1000, 2449, 12345.0)] == \
        ["0 m", "853 m", "1,000 m", "1.0 km", "2.4 km", "12.3 km"]
    assert [text.distance_text(m, "rounded") for m in (42, 853.4, 994, 996, 2449)] == \
        ["42 m", "850 m", "990 m", "1.0 km", "2.4 km"]
    assert text.distance_text(float("nan")) == text.distance_text(None) == ""
    assert (text.signed_count(12), text.signed_count(-3), text.signed_percent(25.4)) == ("+12", "\u22123", "+25%")
    assert (text.count_text("1234"), text.count_text("1234", "as published"), text.count_text("<5")) == \
        ("1,234", "1234", "<5")
    assert (text.rate_text(1234.56), text.per_1000_text(10.25), text.share_percent(0.25)) == \
        ("1,234.6", "10.2 per 1,000", "25 %")
    assert text.period_text(["2024-04", "2024-05"]) == "Apr 2024 – May 2024 (2 months)"
    assert text.span(["2024-04", "2024-05", "2025-03"]) == "Apr 2024 to Mar 2025"
    import re
    for sentence in (f"rate {text.per_1000_text(0.5)} is", f"({text.per_1000_text(1234.5)})"):
        assert re.sub(text.PER_1000_PATTERN, "X", sentence) in ("X is", "X")


@pytest.fixture(scope="module")
def demo_analysed():
    return demo_run_copy(("clusters", "gaps"))


def test_map_briefings_and_reasons_word_distances_by_the_one_rule(demo_analysed):
    run = demo_analysed
    settings = PublishSettings()
    published = published_wards(run, settings)
    data = build_data(run, published, settings)
    info = map_page._ward_info(run, run.wards, [], settings)
    checked = 0
    for i, (ward, row) in enumerate(zip(data["wards"], run.wards.itertuples())):
        for column, what in (("nearest_treatment_service_m", "treatment service"),
                             ("nearest_needle_exchange_m", "needle exchange")):
            metres = getattr(row, column)
            exact = text.distance_text(metres)
            assert any(f"nearest {what} {exact} " in s for s in ward["gap"]["nearest"]), ward["gap"]["nearest"]
            assert any(f"residents on average {exact}" in n["text"][i] for n in info["nearest"])
            if f"nearest {what} " in row.gap_reason:
                # The column is the same mean distance rounded to the metre; the reason worded it
                # before that rounding, so it reads as a value within half a metre of the column.
                worded = {text.distance_text(metres + d, "rounded") for d in (-0.5, 0.0, 0.5)}
                assert any(f"nearest {what} {w} (" in row.gap_reason for w in worded), (worded, row.gap_reason)
                checked += 1
    assert checked >= 3


# --------------------------------------------------------------------------- neighbours

def tiny_grid(rows: int, cols: int, possession: np.ndarray) -> gpd.GeoDataFrame:
    """``rows x cols`` 1 km squares with a possession rate each (a ward table for find_clusters)."""
    cells = [shapely.box(c * 1000, r * 1000, (c + 1) * 1000, (r + 1) * 1000) for r in range(rows) for c in range(cols)]
    n = len(cells)
    table = gpd.GeoDataFrame({"ward_code": [f"E05{i:06d}" for i in range(n)], "ward_name": [f"W{i}" for i in range(n)],
                              "population": np.full(n, 10000.0)}, geometry=cells, crs="EPSG:27700")
    table["possession_rate_per_1000"] = possession
    table["possession_count"] = np.round(possession * 10)
    return table


def test_briefings_name_the_neighbours_of_the_statistics_weights(demo_analysed):
    run = demo_analysed
    queen = build_neighbours(run.wards, "queen")
    assert run.ward_neighbours() == queen.lists()
    settings = PublishSettings()
    published = published_wards(run, settings)
    names = run.wards["ward_name"].tolist()
    data = build_data(run, published, settings, overview_only=True)  # the neighbour lists, no drawings
    for i, ward in enumerate(data["wards"]):
        assert ward["neighbours"] == [names[k] for k in queen.lists()[i]]
    # With k-nearest weights the briefings follow them: the run carries the stage's neighbours.
    knn = find_clusters(run.wards, ClusterSettings(weights="knn", k=3, permutations=99), seed=1)
    other = dataclasses.replace(run, neighbours=knn.neighbours)
    expected = build_neighbours(run.wards, "knn", k=3).lists()
    assert knn.neighbours == expected and expected != queen.lists()
    knn_data = build_data(other, published_wards(other, settings), settings, overview_only=True)
    assert [w["neighbours"] for w in knn_data["wards"]] == [[names[k] for k in e] for e in expected]


def test_a_run_without_clusters_still_has_queen_neighbours():
    run = demo_run_copy()   # prepare() of the demo study
    assert run.neighbours is None
    assert run.ward_neighbours() == build_neighbours(run.wards, "queen").lists()


# --------------------------------------------------------------------------- point in ward

def test_gap_stage_and_ward_join_put_every_point_in_the_same_ward():
    wards = tiny_wards().rename(columns={"WD22CD": "ward_code", "WD22NM": "ward_name"})
    x0, y0 = 530000.0, 180000.0
    # Inside, on shared edges, on the vertex four wards share, on the outer boundary, outside.
    xy = np.array([[500, 500], [1000, 500], [1500, 1000], [1000, 1000], [2000, 1000], [0, 0], [3000, 2000],
                   [1500, 1500], [-1, 500], [3500, 500], [2999.999, 1999.999]]) + [x0, y0]
    expected = [0, 0, 1, 0, 1, 0, 5, 4, OUTSIDE, OUTSIDE, 5]
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs="EPSG:27700")
    assert walking.assign_points_to_wards(wards, points).tolist() == expected
    assert WardLocator(wards.geometry.to_numpy()).locate(xy[:, 0], xy[:, 1]).tolist() == expected
    # The rule is "smallest ward code": on the four-ward vertex that is the first of the four codes.
    assert TINY_CODES[expected[3]] == min(TINY_CODES[k] for k in (0, 1, 3, 4))
