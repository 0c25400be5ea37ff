"""Emerging hot spots (space-time Gi*, Mann-Kendall, ArcGIS categories) and the test of change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pymannkendall
import pytest
from scipy import sparse, stats

from geomisuse.clusters.change import conditional_change_p, significant_change
from geomisuse.clusters.emerging import (CATEGORIES, MIN_STEPS, classify, find_emerging_hotspots, mann_kendall,
                                         space_time_gi_star, step_table)
from geomisuse.clusters.getisord import gi_star
from geomisuse.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def lattice(rows: int, cols: int) -> sparse.csr_array:
    """Queen contiguity of a rows x cols grid of square wards (row-major), zero diagonal."""
    n = rows * cols
    pairs = []
    for r in range(rows):
        for c in range(cols):
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if (dr or dc) and 0 <= rr < rows and 0 <= cc < cols:
                        pairs.append((r * cols + c, rr * cols + cc))
    i, j = np.array(pairs).T
    return sparse.csr_array((np.ones(len(i)), (i, j)), shape=(n, n))


def grid_tables(counts: np.ndarray, population: float = 10_000.0) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Ward table and monthly table for counts of shape (steps, wards), months from 2020-01."""
    steps, n = counts.shape
    months = [f"{2020 + m // 12}-{m % 12 + 1:02d}" for m in range(steps)]
    codes = [f"E05{i:06d}" for i in range(n)]
    wards = pd.DataFrame({"ward_code": codes, "ward_name": [f"Ward {i}" for i in range(n)],
                          "population": population})
    monthly = pd.DataFrame({"ward_code": np.tile(codes, steps), "month": np.repeat(months, n),
                            "possession_count": counts.ravel()})
    return wards, monthly, months


# ------------------------------------------------------------------------------------------
# Mann-Kendall against pymannkendall (an independent implementation)


def test_mann_kendall_matches_pymannkendall_with_ties_and_missing_values():
    rng = np.random.default_rng(5)
    series = rng.poisson(2.0, size=(60, 24)).astype(float)         # many ties
    series[:20] += np.arange(24) * 0.3                               # some trends
    series[3, [2, 7]] = np.nan                                       # missing steps
    ours = mann_kendall(series)
    for i, row in enumerate(series):
        ref = pymannkendall.original_test(row[np.isfinite(row)])
        assert ours["s"][i] == pytest.approx(ref.s)
        assert ours["var_s"][i] == pytest.approx(ref.var_s)
        assert ours["z"][i] == pytest.approx(ref.z)
        assert ours["p"][i] == pytest.approx(ref.p)
        assert ours["tau"][i] == pytest.approx(ref.Tau)
    assert (ours["p"][:20] < 0.01).sum() >= 15                      # the trends are found


def test_mann_kendall_s_is_kendalls_concordance_count():
    rng = np.random.default_rng(9)
    x = rng.integers(0, 5, size=15).astype(float)
    tau_b = stats.kendalltau(np.arange(15), x).statistic
    ours = mann_kendall(x[None, :])
    # S = tau_b sqrt(n0 (n0 - n1)) with n0 = n(n-1)/2 and n1 the tied pairs of x.
    n0 = 15 * 14 / 2
    n1 = sum(c * (c - 1) / 2 for c in np.unique(x, return_counts=True)[1])
    assert ours["s"][0] == pytest.approx(tau_b * np.sqrt(n0 * (n0 - n1)))


def test_mann_kendall_short_and_constant_series():
    out = mann_kendall(np.array([[1.0, 2.0, np.nan, np.nan], [3.0, 3.0, 3.0, 3.0]]))
    assert np.isnan(out["z"][0]) and np.isnan(out["p"][0])
    assert out["z"][1] == 0 and out["p"][1] == 1


# ------------------------------------------------------------------------------------------
# Space-time Gi*


def explicit_space_time_weights(adjacency: sparse.csr_array, steps: int, time_k: int) -> np.ndarray:
    """The (steps n) x (steps n) binary matrix of space-time neighbours, built bin by bin."""
    n = adjacency.shape[0]
    own = adjacency.toarray() + np.eye(n)
    w = np.zeros((steps * n, steps * n))
    for t in range(steps):
        for s in range(max(0, t - time_k), t + 1):
            w[t * n:(t + 1) * n, s * n:(s + 1) * n] = own
    return w


@pytest.mark.parametrize("time_k", [0, 1, 2])
def test_space_time_gi_star_is_gi_star_over_the_explicit_space_time_weights(time_k):
    rng = np.random.default_rng(time_k)
    adjacency = lattice(4, 5)
    values = rng.gamma(2.0, 1.0, size=(7, 20))
    ours = space_time_gi_star(values, adjacency + sparse.eye_array(20, format="csr"), time_k)
    ref = gi_star(values.ravel(), sparse.csr_array(explicit_space_time_weights(adjacency, 7, time_k)))
    assert np.allclose(ours.Zs.ravel(), ref.Zs)
    assert np.allclose(ours.p_norm.ravel(), ref.p_norm)
    assert np.allclose(ours.Gs.ravel(), ref.Gs)


def test_space_time_gi_star_leaves_missing_bins_out_of_everything():
    rng = np.random.default_rng(3)
    adjacency = lattice(3, 4)
    values = rng.gamma(2.0, 1.0, size=(6, 12))
    values[2, 5] = np.nan
    values[:, 11] = np.nan
    ours = space_time_gi_star(values, adjacency + sparse.eye_array(12, format="csr"), 1)
    present = np.isfinite(values.ravel())
    w = explicit_space_time_weights(adjacency, 6, 1)[np.ix_(present, present)]
    ref = gi_star(values.ravel()[present], sparse.csr_array(w))
    assert np.allclose(ours.Zs.ravel()[present], ref.Zs)
    assert np.isnan(ours.Zs.ravel()[~present]).all()


# ------------------------------------------------------------------------------------------
# Categories: each just inside and just outside its definition (10 steps unless said)


def bits(text: str) -> np.ndarray:
    return np.array([c == "1" for c in text])


NONE = bits("0" * 10)
UP, DOWN, FLAT = (3.0, 0.001), (-3.0, 0.001), (0.5, 0.6)


@pytest.mark.parametrize("hot, cold, trend, expected", [
    # new: hot only in the final step
    ("0000000001", "0000000000", FLAT, "new hot spot"),
    ("0010000001", "0000000000", FLAT, "sporadic hot spot"),          # hot before: not new
    ("0000000001", "0100000000", FLAT, "oscillating hot spot"),       # cold before: not new
    # consecutive: a final run of two or more, nothing before, under 90 %
    ("0000000011", "0000000000", FLAT, "consecutive hot spot"),
    ("0100000011", "0000000000", FLAT, "sporadic hot spot"),          # hot before the run
    ("0" * 3 + "1" * 17, "0" * 20, FLAT, "consecutive hot spot"),     # 85 %
    ("0" + "1" * 9, "0" * 10, FLAT, "persistent hot spot"),           # 90 %: no longer consecutive
    # intensifying / persistent / diminishing: at least 90 % and the final step
    ("0111111111", "0000000000", UP, "intensifying hot spot"),
    ("0111111111", "0000000000", (3.0, 0.05), "intensifying hot spot"),   # p = alpha counts
    ("0111111111", "0000000000", (3.0, 0.0501), "persistent hot spot"),
    ("0011111111", "0000000000", UP, "consecutive hot spot"),         # 80 %
    ("1111111111", "0000000000", FLAT, "persistent hot spot"),
    ("1111111111", "0000000000", DOWN, "diminishing hot spot"),
    ("1111111110", "0000000000", DOWN, "historical hot spot"),        # not hot in the final step
    # sporadic / oscillating
    ("1010000101", "0000000000", FLAT, "sporadic hot spot"),
    ("1010000101", "0001000000", FLAT, "oscillating hot spot"),
    # historical: not hot now, at least 90 % before
    ("1111111110", "0000000000", FLAT, "historical hot spot"),
    ("1111111100", "0000000000", FLAT, "no pattern"),                 # 80 %
    ("1111111100", "0000000001", FLAT, "oscillating cold spot"),      # the final step decides
    # cold mirrors hot, with the trend's sign flipped
    ("0000000000", "0000000001", FLAT, "new cold spot"),
    ("0000000000", "0000000011", FLAT, "consecutive cold spot"),
    ("0000000000", "1111111111", DOWN, "intensifying cold spot"),
    ("0000000000", "1111111111", UP, "diminishing cold spot"),
    ("0000000000", "1111111111", FLAT, "persistent cold spot"),
    ("0000000000", "1000100001", FLAT, "sporadic cold spot"),
    ("0000000000", "1111111110", FLAT, "historical cold spot"),
    ("0000000000", "0000000000", UP, "no pattern"),
])
def test_categories_just_inside_and_just_outside(hot, cold, trend, expected):
    assert classify(bits(hot), bits(cold), trend[0], trend[1], alpha=0.05) == expected


def test_every_category_is_reachable_and_spelled_as_the_output_contract():
    assert len(CATEGORIES) == 17 and CATEGORIES[-1] == "no pattern"
    assert all(c == c.lower() for c in CATEGORIES)


# ------------------------------------------------------------------------------------------
# The whole analysis on synthetic maps


def test_patternless_maps_give_categories_to_at_most_the_nominal_share():
    adjacency = lattice(12, 12)
    for seed in range(5):
        counts = np.random.default_rng([seed, 7]).poisson(6.0, size=(24, 144)).astype(float)
        wards, monthly, months = grid_tables(counts)
        result = find_emerging_hotspots(wards, monthly, months, ["possession"], adjacency)
        categories = result.columns["possession_ehsa_category"]
        assert (categories != "no pattern").mean() <= 0.05
        assert (result.bins["possession_gi_bin"].abs() >= 2).mean() <= 0.05


def test_planted_space_time_patterns_are_recovered():
    rng = np.random.default_rng(11)
    steps, rows, cols = 24, 10, 10
    expected = np.full((steps, rows * cols), 5.0)
    block = lambda r0, c0: [r * cols + c for r in range(r0, r0 + 3) for c in range(c0, c0 + 3)]
    rising, new, falling = block(1, 1), block(6, 6), block(1, 6)
    expected[:, rising] *= np.linspace(3.0, 6.0, steps)[:, None]     # always high, climbing
    expected[:, falling] *= np.linspace(6.0, 3.0, steps)[:, None]    # always high, declining
    expected[-1, new] *= 6.0                                          # a surge in the final month
    wards, monthly, months = grid_tables(rng.poisson(expected).astype(float))
    result = find_emerging_hotspots(wards, monthly, months, ["possession"], lattice(rows, cols))
    category = result.columns["possession_ehsa_category"]
    centre = lambda cells: cells[4]
    assert category.iloc[centre(rising)] == "intensifying hot spot"
    assert category.iloc[centre(new)] == "new hot spot"
    assert category.iloc[centre(falling)] == "diminishing hot spot"
    assert result.columns["possession_ehsa_count_trend_p"].iloc[centre(rising)] < 0.01
    assert result.columns["possession_ehsa_count_trend_z"].iloc[centre(falling)] < 0


def test_missing_months_are_missing_steps_not_zeros_and_reported():
    counts = np.random.default_rng(2).poisson(6.0, size=(14, 16)).astype(float)
    wards, monthly, months = grid_tables(counts)
    monthly.loc[monthly["month"] == months[3], "possession_count"] = np.nan     # a month without data
    monthly.loc[monthly["ward_code"] == "E05000015", "possession_count"] = np.nan
    result = find_emerging_hotspots(wards, monthly, months, ["possession"], lattice(4, 4))
    assert months[3] not in set(result.bins["step"])
    assert result.columns["possession_ehsa_steps"].iloc[0] == 13
    assert pd.isna(result.columns["possession_ehsa_category"].iloc[15])
    assert result.bins.loc[result.bins["ward_code"] == "E05000015", "possession_gi_z"].isna().all()
    assert any("no data in 1 month" in w for w in result.warnings)
    assert any("E05000015" in w and "without data" in w for w in result.warnings)


def test_too_few_steps_is_a_clear_warning_not_a_failure():
    counts = np.random.default_rng(2).poisson(6.0, size=(12, 16)).astype(float)
    wards, monthly, months = grid_tables(counts)
    result = find_emerging_hotspots(wards, monthly, months, ["possession"], lattice(4, 4), time_step="quarter")
    assert "possession_ehsa_category" not in result.columns
    assert any(f"at least {MIN_STEPS} quarterly steps" in w and "has 4" in w for w in result.warnings)


def test_quarters_sum_their_months_and_partial_quarters_are_left_out():
    counts = np.arange(2 * 8, dtype=float).reshape(8, 2)         # 8 months x 2 wards
    wards, monthly, months = grid_tables(counts)
    table, steps, partial = step_table(monthly, months[1:], "possession_count", "quarter")
    assert steps == ["2020-Q2"] and partial == ["2020-Q1", "2020-Q3"]
    assert table.loc["E05000000", "2020-Q2"] == counts[3:6, 0].sum()


def test_yearly_steps_from_a_multi_year_series():
    counts = np.random.default_rng(4).poisson(20.0, size=(12 * 11, 9)).astype(float)
    wards, monthly, months = grid_tables(counts)
    result = find_emerging_hotspots(wards, monthly, months, ["possession"], lattice(3, 3), time_step="year")
    assert sorted(result.bins["step"].unique()) == [str(y) for y in range(2020, 2031)]
    assert result.columns["possession_ehsa_steps"].eq(11).all()


def test_settings_keys_are_checked():
    from geomisuse.clusters import ClusterSettings

    assert ClusterSettings.from_options({"time_step": "quarter", "time_k": 2}).time_k == 2
    with pytest.raises(InputError, match="time_step"):
        ClusterSettings.from_options({"time_step": "week"})
    with pytest.raises(InputError, match="time_k"):
        ClusterSettings.from_options({"time_k": -1})


# ------------------------------------------------------------------------------------------
# The test of change


def test_conditional_change_p_is_scipys_exact_binomial_test():
    rng = np.random.default_rng(8)
    a, b = rng.poisson(12, 200), rng.poisson(12, 200)
    a[:3], b[:3] = (0, 0, 7), (0, 7, 0)
    ours = conditional_change_p(a, b)
    ref = [stats.binomtest(int(x), int(x + y)).pvalue if x + y else 1.0 for x, y in zip(a, b)]
    assert np.allclose(ours, ref)
    assert np.isnan(conditional_change_p(np.array([3.0]), np.array([np.nan]))).all()


def test_significant_change_columns_with_fdr():
    wards = pd.DataFrame({"possession_count": pd.array([60, 30, 12, 10, pd.NA], dtype="Int64"),
                          "possession_previous_count": pd.array([20, 31, 0, 10, 5], dtype="Int64")})
    columns, manifest, warnings = significant_change(wards, ["possession"])
    assert columns["possession_change"].tolist()[:4] == [40, -1, 12, 0]
    assert columns["possession_change_pct"].iloc[0] == pytest.approx(200.0)
    assert np.isnan(columns["possession_change_pct"].iloc[2])         # previous count 0
    assert columns["possession_change_significant"].tolist()[:4] == [True, False, True, False]
    assert pd.isna(columns["possession_change_significant"].iloc[4])
    p = columns["possession_change_p"].to_numpy()[:4]
    assert np.allclose(columns["possession_change_p_adjusted"].to_numpy()[:4], stats.false_discovery_control(p))
    assert manifest["by_measure"]["possession"]["significant_increases"] == 2


# ------------------------------------------------------------------------------------------
# The demo borough


@pytest.fixture
def demo_prepared():
    """The demo's ward table (a copy of the session's preparation, free to change)."""
    from conftest import demo_run_copy

    return demo_run_copy()


@pytest.mark.parametrize("seed", [20261122, 1, 2])
def test_demo_planted_emerging_hot_spots_are_recovered(demo_prepared, seed):
    """Gi* inference is analytical, so the permutation seed must not move the categories."""
    from geomisuse.clusters import ClusterSettings, find_clusters
    from geomisuse.demo import borough as demo

    run = demo_prepared
    result = find_clusters(run.wards, ClusterSettings(), seed, monthly=run.monthly, months=run.months)
    table = result.columns.assign(ward_code=run.wards["ward_code"]).set_index("ward_code")
    for category, (measure, codes) in demo.PLANTED_EMERGING.items():
        for code in codes:
            assert table.loc[code, f"{measure}_ehsa_category"] == category
    assert any("Lanternhill (diminishing hot spot)" in line for line in result.summary_lines)
    # The planted rise and fall from 2024 to 2025 are significant changes after FDR.
    for code in demo.PLANTED_RISING_WARDS:
        assert table.loc[code, "possession_change_significant"] and table.loc[code, "possession_change"] > 0
    for code in demo.PLANTED_FALLING_WARDS:
        assert table.loc[code, "possession_change_significant"] and table.loc[code, "possession_change"] < 0
    assert result.emerging_bins.groupby("ward_code").size().eq(12).all()


def test_demo_outputs_carry_emerging_hot_spots_and_protect_change(demo_prepared, tmp_path):
    from geomisuse.pipeline import add_clusters
    from geomisuse.publish import PublishSettings
    from geomisuse.publish.tables import published_wards

    run = demo_prepared
    add_clusters(run)
    published = published_wards(run, PublishSettings())
    hidden = published["asb_count"].astype(str).isin(["<5", "c"]) | \
        published["asb_previous_count"].astype(str).isin(["<5", "c"])
    assert hidden.any()
    for suffix in ("_change", "_change_pct", "_change_p", "_change_p_adjusted", "_change_significant"):
        assert published.loc[hidden, f"asb{suffix}"].isna().all()
        assert published.loc[~hidden, f"asb{suffix}"].notna().all()
    columns = {"ward_code", "step", "possession_gi_z", "possession_gi_p", "possession_gi_bin"}
    assert columns <= set(run.emerging_bins.columns)


@pytest.fixture
def demo_outputs(demo_command):
    """The session's ``geomisuse demo --tiles none``: what it printed and the folder it wrote."""
    return demo_command


def test_demo_summary_prints_the_planted_emerging_hot_spots(demo_outputs):
    printed, _ = demo_outputs
    for planted in ("Gullhaven (new hot spot)", "Northmere Town Centre (intensifying hot spot)",
                    "Lanternhill (diminishing hot spot)"):
        assert planted in printed


def test_demo_map_has_an_emerging_layer_with_the_familiar_legend(demo_outputs):
    import html
    import json
    import re

    _, out = demo_outputs
    page = (out / "map.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="geomisuse-data">(.*?)</script>', page,
                                re.S).group(1))
    layer = next(x for x in data["layers"] if html.unescape(x["name"]) == "Emerging hot spots: drug possession")
    legend = [item[1] for item in layer["legend"]["items"]]
    assert legend[:2] == ["new hot spot", "intensifying hot spot"] and legend[-1] == "no pattern"
    codes = data["ward"]["code"]
    order = list(CATEGORIES)
    assert order[layer["cls"][codes.index("E05999023")]] == "new hot spot"
    assert order[layer["cls"][codes.index("E05999020")]] == "intensifying hot spot"
    trafficking = next(x for x in data["layers"]
                       if html.unescape(x["name"]) == "Emerging hot spots: drug trafficking")
    assert order[trafficking["cls"][codes.index("E05999003")]] == "diminishing hot spot"
    possession = next(m for m in data["ward"]["measures"] if m["key"] == "possession")
    assert possession["ehsa"][codes.index("E05999023")] == "new hot spot"


def test_demo_briefings_say_the_category_in_words_with_a_chart(demo_outputs):
    from bs4 import BeautifulSoup

    from geomisuse.demo import borough as demo

    _, out = demo_outputs
    page = BeautifulSoup((out / "briefings" / "E05999023.html").read_text(encoding="utf-8"), "html.parser")
    item = page.select_one('ul.emerging li[data-measure="possession"]')
    assert "a new hot spot: significant only in the last month (December 2025), never before" in item.get_text()
    circles = page.select('figure.gi-series-box[data-measure="possession"] svg.gi-series circle')
    assert len(circles) == 12
    assert [c["fill"] for c in circles].count("#d62f27") == 1 and circles[-1]["fill"] == "#d62f27"
    assert "No emerging pattern: drug trafficking, anti-social behaviour." in page.select_one("ul.emerging").get_text()
    lanternhill = BeautifulSoup((out / "briefings" / "E05999003.html").read_text(encoding="utf-8"), "html.parser")
    assert "a diminishing hot spot" in lanternhill.select_one('ul.emerging li[data-measure="trafficking"]').get_text()
    overview = BeautifulSoup((out / "briefings" / "index.html").read_text(encoding="utf-8"), "html.parser")
    listed = [li["data-category"] for li in overview.select("ul.emerging-list li")]
    assert listed[0] == "new hot spot" and "intensifying hot spot" in listed[:3]
    assert listed == sorted(listed, key=list(CATEGORIES).index)
    significant = overview.select("table.increases.significant tbody tr")
    assert {tr["data-ward"] for tr in significant} >= set(demo.PLANTED_RISING_WARDS)
    largest = [tr.find_all("td")[4].get_text() for tr in overview.select("table.increases.largest tbody tr")]
    values = [int(v.replace("+", "").replace(",", "")) for v in largest]
    assert values == sorted(values, reverse=True) and all(v > 0 for v in values)


def test_demo_emerging_hotspots_csv(demo_outputs):
    from geomisuse.demo import borough as demo

    _, out = demo_outputs
    table = pd.read_csv(out / "emerging_hotspots.csv")
    for m in ("possession", "trafficking", "drug_offences", "asb"):
        assert {f"{m}_gi_z", f"{m}_gi_p", f"{m}_gi_bin"} <= set(table.columns)
    assert len(table) == 24 * 12 and set(table["step"]) == set(demo.MONTHS)
    wards = pd.read_csv(out / "wards.csv").set_index("ward_code")
    assert wards.loc["E05999020", "possession_ehsa_category"] == "intensifying hot spot"
    assert {"possession_ehsa_trend_z", "possession_ehsa_trend_p", "possession_change", "possession_change_p",
            "possession_change_significant"} <= set(wards.columns)


def test_tower_hamlets_real_mps_counts(real, tmp_path):
    """Real MPS ward counts (Tower Hamlets, 20 wards, Apr 2025 - Mar 2026 against the year before):
    the bins, hot-step tallies and change figures agree with independent computations."""
    from geomisuse.clusters import find_clusters
    from geomisuse.config import load_study
    from geomisuse.pipeline import prepare

    from conftest import tower_hamlets_study

    study = tower_hamlets_study(real, tmp_path, ("2025-04", "2026-03"),
                                "mps_ward_level_crime_2024-03_2026-03_wards2022.csv")
    run = prepare(load_study(study))
    result = find_clusters(run.wards, {}, 1, monthly=run.monthly, months=run.months)
    table = result.columns.assign(ward_code=run.wards["ward_code"]).set_index("ward_code")
    bins = result.emerging_bins
    assert len(bins) == 20 * 12 and bins["possession_gi_z"].notna().all()
    for m in ("possession", "trafficking", "drug_offences"):
        hot = (bins[f"{m}_gi_p_adjusted"] <= 0.05) & (bins[f"{m}_gi_z"] > 0)
        assert (hot.groupby(bins["ward_code"]).sum() == table[f"{m}_ehsa_hot_steps"].astype(int)).all()
        assert set(table[f"{m}_ehsa_category"]) <= set(CATEGORIES)
        # Mann-Kendall of each ward's z series, independently.
        for code, series in bins.groupby("ward_code")[f"{m}_gi_z"]:
            ref = pymannkendall.original_test(series.to_numpy())
            assert table.loc[code, f"{m}_ehsa_trend_z"] == pytest.approx(ref.z)
    wards = run.wards.set_index("ward_code")
    now, before = wards["possession_count"].astype(int), wards["possession_previous_count"].astype(int)
    assert (table["possession_change"].astype(int) == now - before).all()
    ref = [stats.binomtest(int(a), int(a + b)).pvalue for a, b in zip(now, before)]
    assert np.allclose(table["possession_change_p"], ref)
