"""Tests of the gap stage: walking access, outreach gaps and satellite sites.

Expected values are worked out by hand in the comments next to them.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geomisuse.config import walk_minutes, walk_radius_m, walk_speed_m_per_min
from geomisuse.gaps import walking as access
from geomisuse.gaps import sites as sat
from geomisuse.errors import InputError
from geomisuse.gaps import GapSettings, find_gaps
from geomisuse.gaps.places import from_ward_centre
from geomisuse.gaps.sites import SATELLITE_COLUMNS
from geomisuse.gaps.stage import GAP_COLUMNS

from conftest import demo_run_copy

CRS = "EPSG:27700"


def points(rows: list[tuple[str, float, float]], **extra) -> gpd.GeoDataFrame:
    """A point layer from (name, x, y) rows."""
    return gpd.GeoDataFrame({"name": [r[0] for r in rows], **extra},
                            geometry=[shapely.Point(r[1], r[2]) for r in rows], crs=CRS)


def two_wards() -> gpd.GeoDataFrame:
    """Two 1 km squares side by side: A (0-1000, 0-1000) and B (1000-2000, 0-1000)."""
    return gpd.GeoDataFrame(
        {"ward_code": ["E05000001", "E05000002"], "ward_name": ["Aston", "Byfield"],
         "population": [40.0, 100.0], "possession_count": [4.0, 1.0]},
        geometry=[shapely.box(0, 0, 1000, 1000), shapely.box(1000, 0, 2000, 1000)], crs=CRS)


def grid_borough(n: int = 5, cell: float = 1000.0) -> gpd.GeoDataFrame:
    """An n x n grid of 1 km square wards with 5,000 residents each and modest need."""
    rows = []
    for r in range(n):
        for c in range(n):
            rows.append({"ward_code": f"E05{r:02d}{c:04d}", "ward_name": f"Ward {r}-{c}",
                         "population": 5000.0,
                         "geometry": shapely.box(c * cell, r * cell, (c + 1) * cell, (r + 1) * cell)})
    wards = gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)
    wards["possession_count"] = 10.0 + np.arange(len(wards)) % 7     # 10-16 offences
    wards["possession_rate_per_1000"] = wards["possession_count"] / wards["population"] * 1000
    wards["possession_lisa_label"] = "Not significant"
    wards["possession_gi_bin"] = 0
    return wards.sort_values("ward_code").reset_index(drop=True)


def plant_gap(wards: gpd.GeoDataFrame, code: str) -> gpd.GeoDataFrame:
    """Make one ward a High-High possession cluster with the highest rate."""
    wards = wards.copy()
    at = wards.index[wards["ward_code"] == code][0]
    wards.loc[at, "possession_count"] = 200.0
    wards.loc[at, "possession_rate_per_1000"] = 40.0
    wards.loc[at, "possession_lisa_label"] = "High-High"
    wards.loc[at, "possession_gi_bin"] = 3
    return wards


# --------------------------------------------------------------------------- walking maths

def test_walk_radius_and_minutes_follow_speed_and_detour():
    # 4.8 km/h = 80 m/min; 20 min = 1,600 m of street = 1,600 / 1.3 m in a straight line.
    assert walk_speed_m_per_min(4.8) == pytest.approx(80.0)
    assert walk_radius_m(20, 4.8, 1.3) == pytest.approx(1600 / 1.3)
    # 2.4 km straight line * 1.3 = 3,120 m of street / 80 m/min = 39 min.
    assert walk_minutes(2400.0, 4.8, 1.3) == pytest.approx(39.0)
    assert walk_minutes(np.array([0.0, 800.0]), 4.0, 1.0) == pytest.approx([0.0, 12.0])
    assert GapSettings(walk_threshold_min=30, walk_speed_kmh=6, detour_factor=1.0).walk_radius_m \
        == pytest.approx(3000.0)


# --------------------------------------------------------------------------- hand-made map

def test_distances_on_hand_made_map_with_resident_points():
    """Residents as points: every number can be worked out by hand.

    Ward A has residents at (250, 500) x 30 and (750, 500) x 10; ward B at (1500, 500) x 100.
    Treatment service T at (250, 1500); needle exchange N at (2700, 500).
    Walk radius = 1,600 / 1.3 = 1,230.8 m.
    """
    wards = two_wards()
    residents = points([("a1", 250, 500), ("a2", 750, 500), ("b1", 1500, 500)],
                       residents=[30, 10, 100])
    treatment = points([("T", 250, 1500)])
    needle = points([("N", 2700, 500)])
    result = find_gaps(wards, treatment, needle, None, residents, GapSettings(satellites=0), seed=1)
    col = result.columns

    d_a2 = math.hypot(500, 1000)                     # 1,118.03 m
    d_b_treat = math.hypot(1250, 1000)               # 1,600.78 m
    # A: resident-weighted mean distance to T = (30 * 1000 + 10 * 1118.03) / 40 = 1,029.5 m.
    assert col.loc[0, "nearest_treatment_service_m"] == round((30 * 1000 + 10 * d_a2) / 40)
    assert col.loc[1, "nearest_treatment_service_m"] == round(d_b_treat)
    # A to N: (30 * 2450 + 10 * 1950) / 40 = 2,325 m; B to N: 1,200 m.
    assert col.loc[0, "nearest_needle_exchange_m"] == 2325
    assert col.loc[1, "nearest_needle_exchange_m"] == 1200
    # Walking minutes: 1,029.5 m * 1.3 / 80 = 16.7 min; 1,200 * 1.3 / 80 = 19.5 min.
    assert col.loc[0, "treatment_walk_min"] == pytest.approx(16.7)
    assert col.loc[1, "needle_exchange_walk_min"] == pytest.approx(19.5)
    # Both A points are within 1,230.8 m of T; B's only point is not. B is within reach of N.
    assert col["share_within_walk_treatment"].tolist() == [1.0, 0.0]
    assert col["share_within_walk_needle_exchange"].tolist() == [0.0, 1.0]
    assert col["treatment_services_within_walk"].tolist() == [1, 0]
    assert col["needle_exchanges_within_walk"].tolist() == [0, 1]
    assert result.manifest["sampling"]["wards_by_basis"] == {"resident points": 2}


def test_share_within_walk_is_resident_weighted():
    # A's 30 residents at (250, 500) are 1,000 m from T; its 10 at (750, 500) are 1,118 m.
    # With a 15-minute walk (923 m) nobody reaches T; with the radius between the two
    # (1,050 m = 1,050 * 1.3 / 80 = 17.06 min) exactly the 30 of 40 do: share 0.75.
    wards = two_wards()
    residents = points([("a1", 250, 500), ("a2", 750, 500), ("b1", 1500, 500)],
                       residents=[30, 10, 100])
    settings = GapSettings(satellites=0, walk_threshold_min=1050 * 1.3 / 80)
    result = find_gaps(wards, points([("T", 250, 1500)]), points([("N", 2700, 500)]), None,
                       residents, settings, seed=1)
    assert result.columns.loc[0, "share_within_walk_treatment"] == pytest.approx(0.75)


def test_area_sample_distances_bounded_and_deterministic():
    # A 10 m square ward 3 km from the only service: every resident is 2,990-3,010 m away.
    wards = gpd.GeoDataFrame({"ward_code": ["E05000009"], "ward_name": ["Tiny"],
                              "population": [50.0], "possession_count": [1.0]},
                             geometry=[shapely.box(-5, -5, 5, 5)], crs=CRS)
    service = points([("S", 3000, 0)])
    one = find_gaps(wards, service, service, None, None, GapSettings(satellites=0), seed=7)
    assert 2990 <= one.columns.loc[0, "nearest_treatment_service_m"] <= 3010
    again = find_gaps(wards, service, service, None, None, GapSettings(satellites=0), seed=7)
    pd.testing.assert_frame_equal(one.columns, again.columns)


def test_area_sampling_is_even_inside_and_seeded():
    wards = two_wards()
    sample = access.sample_residents(wards, None, points_per_ward=100, seed=3)
    assert len(sample.xy) == 200
    assert np.allclose(np.bincount(sample.ward, weights=sample.weight), 1.0)
    a = sample.xy[sample.ward == 0]
    assert ((a >= 0) & (a <= 1000)).all()
    # Halton points fill the square evenly: close to half in the left half, a fifth in any
    # fifth (plain random points would often be 8-10 points off).
    assert abs((a[:, 0] < 500).sum() - 50) <= 3
    assert abs((a[:, 1] < 200).sum() - 20) <= 3
    same = access.sample_residents(wards, None, points_per_ward=100, seed=3)
    other = access.sample_residents(wards, None, points_per_ward=100, seed=4)
    assert np.array_equal(sample.xy, same.xy)
    assert not np.array_equal(sample.xy, other.xy)


def test_resident_polygons_place_points_where_people_live():
    # All of A's residents live in its western quarter (0-250 m); B has no polygon and falls
    # back to area sampling, which the manifest reports.
    wards = two_wards()
    residents = gpd.GeoDataFrame({"residents": [400]}, geometry=[shapely.box(-100, 0, 250, 1000)],
                                 crs=CRS)
    sample = access.sample_residents(wards, residents, points_per_ward=40, seed=1)
    a = sample.xy[sample.ward == 0]
    assert len(a) >= 30 and (a[:, 0] <= 250).all()
    assert sample.basis == [access.BASIS_POLYGONS, access.BASIS_AREA]
    assert sample.fallback_wards == [1]
    # 100 of the 400 residents live in the part of the polygon west of the borough.
    assert sample.residents_outside == pytest.approx(400 * 100 / 350)
    result = find_gaps(wards, points([("T", 0, 500)]), None, None, residents,
                       GapSettings(satellites=0), seed=1)
    assert result.manifest["sampling"]["wards_area_sampled_for_lack_of_residents"] == ["E05000002"]
    assert any("no residents in the residents layer" in w for w in result.warnings)
    # Every A resident is within hypot(250, 500) = 559 m of T at (0, 500), and on average
    # nearer than when residents are spread over the whole ward.
    assert result.columns.loc[0, "share_within_walk_treatment"] == 1.0
    assert result.columns.loc[0, "nearest_treatment_service_m"] <= 559
    spread = find_gaps(wards, points([("T", 0, 500)]), None, None, None,
                       GapSettings(satellites=0), seed=1)
    assert result.columns.loc[0, "nearest_treatment_service_m"] < \
        spread.columns.loc[0, "nearest_treatment_service_m"] - 200


def test_resident_point_on_shared_edge_goes_to_one_ward():
    wards = two_wards()
    residents = points([("edge", 1000, 500)], residents=[10])
    where = access.assign_points_to_wards(wards, residents)
    assert where.tolist() == [0]   # first ward in code order


# --------------------------------------------------------------------------- gaps

def test_planted_gap_ranks_first_with_reason():
    wards = plant_gap(grid_borough(), "E0500" "0000")   # south-west corner ward
    treatment = points([("Central Recovery Hub", 2500, 2500)])
    needle = points([("Market Pharmacy NSP", 2600, 2400), ("North NSP", 4500, 4500)])
    result = find_gaps(wards, treatment, needle, None, None, GapSettings(), seed=1)
    col = result.columns
    assert list(col.columns) == GAP_COLUMNS
    top = col.sort_values("gap_rank").iloc[0]
    assert wards.loc[top.name, "ward_code"] == "E05000000"
    assert bool(top["is_outreach_gap"])
    reason = top["gap_reason"]
    assert reason.startswith("High-High drug possession cluster and drug possession hot spot "
                             "(Gi* 99 %) and drug possession rate in the top fifth (40.0 per 1,000)")
    # The ward's residents average ~2.8 km from the hub: 2.8 km * 1.3 / 80 m/min = 46 min.
    assert "nearest treatment service 2.8 km (46 min walk; 0 % of residents within 20 min)" in reason
    assert "nearest needle exchange" in reason
    assert sorted(col["gap_rank"]) == list(range(1, len(wards) + 1))
    # Every gap ranks above every non-gap.
    assert col.loc[col["is_outreach_gap"], "gap_rank"].max() < \
        col.loc[~col["is_outreach_gap"], "gap_rank"].min()
    assert col["gap_score"].between(0, 1).all()


def test_service_inside_the_gap_removes_it():
    wards = plant_gap(grid_borough(), "E05000000")
    treatment = points([("Central Recovery Hub", 2500, 2500)])
    needle = points([("Market Pharmacy NSP", 2600, 2400)])
    before = find_gaps(wards, treatment, needle, None, None, GapSettings(satellites=0), seed=1)
    assert before.columns.loc[0, "is_outreach_gap"]
    # A new service offering treatment and needle exchange in the middle of the ward.
    new = points([("Corner Outreach", 500, 500)])
    after = find_gaps(wards, pd.concat([treatment, new]), pd.concat([needle, new]), None, None,
                      GapSettings(satellites=0), seed=1)
    row = after.columns.loc[0]
    assert not row["is_outreach_gap"]
    assert row["share_within_walk_treatment"] == 1.0
    assert row["gap_reason"].startswith("not a gap: High-High drug possession cluster")
    assert "but residents are within a 20-minute walk of services (100 % of a treatment service" \
        in row["gap_reason"]


def test_needle_exchange_alone_missing_is_a_gap_under_each_kind_but_not_any_service():
    wards = plant_gap(grid_borough(), "E05000000")
    treatment = points([("Corner Recovery", 500, 500)])
    needle = points([("Far NSP", 4500, 4500)])
    each = find_gaps(wards, treatment, needle, None, None, GapSettings(satellites=0), seed=1)
    reason = each.columns.loc[0, "gap_reason"]
    assert each.columns.loc[0, "is_outreach_gap"]
    assert "nearest needle exchange" in reason and "nearest treatment service" not in reason
    anyservice = find_gaps(wards, treatment, needle, None, None,
                           GapSettings(satellites=0, access_rule="any_service"), seed=1)
    assert not anyservice.columns.loc[0, "is_outreach_gap"]


def test_without_cluster_columns_need_is_judged_on_rate_alone():
    wards = plant_gap(grid_borough(), "E05000000").drop(
        columns=["possession_lisa_label", "possession_gi_bin"])
    result = find_gaps(wards, None, None, None, None, GapSettings(satellites=0), seed=1)
    assert any("rate alone" in w for w in result.warnings)
    assert result.manifest["parameters"]["need_criteria_used"] == ["top_rate"]
    # Top fifth of 25 wards by rate: 5 wards (ties at the cut count in).
    assert result.columns["gap_need_high"].sum() >= 5
    assert result.columns.loc[0, "gap_reason"].startswith(
        "drug possession rate in the top fifth (40.0 per 1,000)")


def test_no_services_means_no_access_everywhere_and_says_so():
    wards = plant_gap(grid_borough(), "E05000000")
    result = find_gaps(wards, None, gpd.GeoDataFrame(geometry=[], crs=CRS), None, None,
                       GapSettings(satellites=0), seed=1)
    col = result.columns
    assert col["nearest_treatment_service_m"].isna().all()
    assert (col["share_within_walk_needle_exchange"] == 0).all()
    assert col["gap_access_poor"].all()
    assert "no treatment service in the study data; no needle exchange in the study data" \
        in col.loc[0, "gap_reason"]
    assert sum("no treatment services given" in w or "no needle exchanges given" in w
               for w in result.warnings) == 2


def test_wards_without_population_are_not_assessed_and_explained():
    wards = plant_gap(grid_borough(), "E05000000")
    wards.loc[3, "population"] = np.nan
    wards.loc[4, "population"] = 0.0
    for at in (3, 4):
        wards.loc[at, "possession_rate_per_1000"] = np.nan
    service = points([("Hub", 2500, 2500)])
    result = find_gaps(wards, service, service, None, None, GapSettings(satellites=0), seed=1)
    col = result.columns
    assert col.loc[3, "gap_reason"] == "not assessed: no resident population given"
    assert col.loc[4, "gap_reason"] == "not assessed: no residents (population 0)"
    assert not col.loc[[3, 4], "is_outreach_gap"].any()
    assert col.loc[[3, 4], "gap_score"].isna().all()
    # Unassessed wards rank last, in ward-code order; distances are still measured.
    assert col.loc[[3, 4], "gap_rank"].tolist() == [len(wards) - 1, len(wards)]
    assert col.loc[[3, 4], "nearest_treatment_service_m"].notna().all()
    # No residents, no share of residents.
    assert math.isnan(col.loc[4, "share_within_walk_treatment"])
    assert col.loc[3, "share_within_walk_treatment"] >= 0
    listed = {w["ward_code"]: w["reason"] for w in result.manifest["wards_not_assessed"]}
    assert listed == {wards.loc[3, "ward_code"]: "no resident population given",
                      wards.loc[4, "ward_code"]: "no residents (population 0)"}


def test_need_measure_falls_back_to_all_drug_offences():
    wards = plant_gap(grid_borough(), "E05000000")
    wards = wards.rename(columns=lambda c: c.replace("possession", "drug_offences"))
    wards["possession_count"] = np.nan
    wards["possession_rate_per_1000"] = np.nan
    result = find_gaps(wards, None, None, None, None, GapSettings(satellites=0), seed=1)
    assert result.manifest["parameters"]["need_measure_used"] == "drug_offences"
    assert any("judged on all drug offences" in w for w in result.warnings)
    assert result.columns.loc[0, "gap_reason"].startswith("High-High all drug offences cluster")
    with pytest.raises(InputError, match="need_measure 'possession' has no data"):
        find_gaps(wards, None, None, None, None, GapSettings(need_measure="possession"), seed=1)


# --------------------------------------------------------------------------- settings

def test_settings_from_study_options():
    settings = GapSettings.from_options({"need_rule": "lisa", "satellites": 5,
                                         "walk_threshold_min": 15})
    assert settings.need_rule == ("lisa",) and settings.satellites == 5
    assert GapSettings.from_options(None) == GapSettings()
    with pytest.raises(InputError, match=r"^\[gaps\] unknown key 'walk_minutes'; keys are need_measure, ") as err:
        GapSettings.from_options({"walk_minutes": 10})
    assert "\n" not in str(err.value)
    for bad in ({"access_share": 1.5}, {"need_rule": ["lisa", "hotspots"]}, {"satellites": -1},
                {"detour_factor": 0.8}, {"access_rule": "both"}, {"need_measure": "burglary"},
                {"sample_points": 0}, {"walk_speed_kmh": "fast"}):
        with pytest.raises(InputError, match=r"^\[gaps\] " + next(iter(bad))):
            GapSettings.from_options(bad)


def test_wrong_crs_is_a_user_error():
    wards = grid_borough().to_crs(4326)
    with pytest.raises(InputError, match="EPSG:27700"):
        find_gaps(wards, None, None, None, None, GapSettings(), seed=1)


# --------------------------------------------------------------------------- satellites

def brute_force(cover: np.ndarray, weights: np.ndarray, k: int) -> float:
    """The best need covered by any k of the candidates."""
    return max(sat.covered_need(cover, weights, c)
               for c in itertools.combinations(range(cover.shape[1]), k))


@pytest.mark.parametrize("trial", range(6))
def test_mclp_optimum_equals_brute_force(trial):
    rng = np.random.default_rng(100 + trial)
    n, m, k = 60, 10, 3
    cover = rng.random((n, m)) < 0.12
    weights = rng.integers(1, 50, n).astype(float)
    answer = sat.solve_mclp(cover, weights, k)
    assert len(answer.sites) == k
    assert answer.objective == pytest.approx(brute_force(cover, weights, k))
    assert sum(answer.gains) == pytest.approx(answer.objective)
    assert answer.gains == sorted(answer.gains, reverse=True)


def test_coverage_by_number_of_sites_is_the_best_k_for_each_k():
    rng = np.random.default_rng(7)
    cover = rng.random((50, 8)) < 0.15
    weights = rng.integers(1, 30, 50).astype(float)
    names = gpd.GeoDataFrame({"name": [f"site {j}" for j in range(8)]},
                             geometry=gpd.points_from_xy(range(8), range(8)), crs="EPSG:27700")
    table = sat.coverage_by_site_count(cover, weights, names, float(weights.sum()), GapSettings(),
                                       max_k=5)
    assert table["sites"].tolist() == [1, 2, 3, 4, 5]
    for k, row in zip(table["sites"], table.itertuples()):
        assert row.need_covered == pytest.approx(brute_force(cover, weights, k), abs=0.01)
        assert row.greedy_need_covered <= row.need_covered + 1e-9
        assert len(row.sites_chosen.split("; ")) == k
    assert table["added_by_last_site"].sum() == pytest.approx(table["need_covered"].iloc[-1])
    assert table["share_of_unmet_need"].iloc[-1] == pytest.approx(
        table["need_covered"].iloc[-1] / weights.sum(), abs=1e-4)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_sparse_model_matches_spopts_own_build():
    import pulp
    from spopt.locate import MCLP

    rng = np.random.default_rng(11)
    cover = rng.random((80, 15)) < 0.2
    weights = rng.uniform(0.5, 9.0, 80)
    reference = MCLP.from_cost_matrix(np.where(cover, 0.0, 1.0), weights, service_radius=0.5,
                                      p_facilities=4)
    reference.solve(pulp.PULP_CBC_CMD(msg=False), results=False)
    ours = sat.solve_mclp(cover, weights, 4)
    assert ours.objective == pytest.approx(pulp.value(reference.problem.objective))


def test_mclp_beats_greedy_where_greedy_is_short_sighted():
    # Candidate 0 reaches b, c, d, e (4); candidate 1 reaches a, b, c; candidate 2 reaches d, e, f.
    # Greedy takes 0 first and then adds only 1 point: 5. The optimum is 1 + 2: 6.
    cover = np.array([[0, 1, 0], [1, 1, 0], [1, 1, 0], [1, 0, 1], [1, 0, 1], [0, 0, 1]], bool)
    weights = np.ones(6)
    greedy, gains = sat.greedy_sites(cover, weights, 2)
    assert greedy == [0, 1] and sum(gains) == 5
    answer = sat.solve_mclp(cover, weights, 2)
    assert sorted(answer.sites) == [1, 2] and answer.objective == 6
    assert brute_force(cover, weights, 2) == 6


def test_swaps_mend_a_short_sighted_greedy_answer():
    # The instance above: greedy takes 0 then 1 (5 points); one swap (0 out, 2 in) gives 6.
    cover = np.array([[0, 1, 0], [1, 1, 0], [1, 1, 0], [1, 0, 1], [1, 0, 1], [0, 0, 1]], bool)
    weights = np.ones(6)
    assert sorted(sat.improve_by_swaps(cover, weights, [0, 1])) == [1, 2]


@pytest.mark.parametrize("trial", range(8))
def test_swaps_never_lose_need_and_stop_at_a_local_optimum(trial):
    rng = np.random.default_rng(300 + trial)
    cover = rng.random((70, 12)) < 0.15
    weights = rng.integers(1, 40, 70).astype(float)
    greedy, gains = sat.greedy_sites(cover, weights, 3)
    swapped = sat.improve_by_swaps(cover, weights, greedy)
    after = sat.covered_need(cover, weights, swapped)
    assert after >= sum(gains) - 1e-9 and len(set(swapped)) == len(greedy)
    for out in range(len(swapped)):      # no single swap adds need: checked one by one
        for into in set(range(12)) - set(swapped):
            trial_sites = swapped[:out] + [into] + swapped[out + 1:]
            assert sat.covered_need(cover, weights, trial_sites) <= after + 1e-9
    assert after <= brute_force(cover, weights, 3) + 1e-9


def test_a_model_too_large_for_the_solver_is_answered_by_swaps_and_says_so(monkeypatch):
    cover = np.array([[0, 1, 0], [1, 1, 0], [1, 1, 0], [1, 0, 1], [1, 0, 1], [0, 0, 1]], bool)
    monkeypatch.setattr(sat, "EXACT_MAX_NONZEROS", 5)

    def no_solver(*args, **kwargs):
        raise AssertionError("the solver must not be called")

    monkeypatch.setattr(sat, "solve_mclp", no_solver)
    answer = sat.best_sites(cover, np.ones(6), 2)
    assert sorted(answer.sites) == [1, 2] and answer.objective == 6
    assert answer.status.startswith("greedy improved by swaps (not proven optimal): the model "
                                    "(6 points x 3 candidates) is too large")
    single = sat.best_sites(cover, np.ones(6), 1)     # one site is exact by counting
    assert single.status == sat.OPTIMAL and single.sites == [0] and single.objective == 4


def test_a_time_limited_solver_answer_worse_than_greedy_is_not_shown(monkeypatch):
    # The London-wide failure: HiGHS stopped at its limit with sites covering half of what the
    # greedy sites cover, and the run showed them as the optimum.
    cover = np.array([[0, 1, 0], [1, 1, 0], [1, 1, 0], [1, 0, 1], [1, 0, 1], [0, 0, 1]], bool)
    poor = sat.MclpAnswer([0], [4.0], 4.0, "Feasible (time limit reached; not proven optimal)", 5.0)
    monkeypatch.setattr(sat, "solve_mclp", lambda *args, **kwargs: poor)
    answer = sat.best_sites(cover, np.ones(6), 2)
    assert answer.objective == 6 and sorted(answer.sites) == [1, 2]
    assert answer.status == "best found within the time limit (not proven optimal)"


def test_coverage_table_past_its_time_budget_says_how_each_k_was_found(monkeypatch):
    rng = np.random.default_rng(7)
    cover = rng.random((50, 8)) < 0.15
    weights = rng.integers(1, 30, 50).astype(float)
    names = gpd.GeoDataFrame({"name": [f"site {j}" for j in range(8)]},
                             geometry=gpd.points_from_xy(range(8), range(8)), crs="EPSG:27700")
    monkeypatch.setattr(sat, "COVERAGE_TABLE_LIMIT_S", 0.0)
    table = sat.coverage_by_site_count(cover, weights, names, float(weights.sum()), GapSettings(),
                                       max_k=4)
    assert table["method"].tolist() == ["optimal"] + ["greedy improved by swaps"] * 3
    assert (table["need_covered"] >= table["greedy_need_covered"] - 1e-9).all()


def test_mclp_opens_no_site_that_adds_nothing_and_breaks_ties_by_order():
    # Candidates 1 and 2 each reach every point; 0 reaches one. One site suffices, and of the
    # two equally good ones the earlier (1) is taken.
    cover = np.array([[1, 1, 1], [0, 1, 1], [0, 1, 1]], bool)
    answer = sat.solve_mclp(cover, np.array([2.0, 1.0, 1.0]), 3)
    assert answer.sites == [1] and answer.objective == 4.0


def test_mclp_with_fewer_useful_candidates_than_k():
    cover = np.array([[1, 0, 0], [0, 0, 0]], bool)
    answer = sat.solve_mclp(cover, np.array([3.0, 5.0]), 2)
    assert answer.sites == [0] and answer.objective == 3.0


def test_merging_identical_demand_keeps_the_optimum():
    rng = np.random.default_rng(5)
    demand = rng.uniform(0, 3000, (300, 2))
    cands = rng.uniform(0, 3000, (12, 2))
    weights = rng.uniform(0, 5, 300)
    cover = sat.coverage_matrix(demand, cands, 800)
    patterns, merged = sat.merge_identical_demand(cover, weights)
    assert len(merged) < 300
    reachable = np.asarray(cover.sum(axis=1)).ravel() > 0
    assert merged.sum() == pytest.approx(weights[reachable].sum())
    dense = cover.toarray()
    assert sat.solve_mclp(patterns, merged, 3).objective == pytest.approx(
        brute_force(dense, weights, 3))


def test_default_candidates_add_a_grid_over_gap_wards():
    wards = grid_borough()
    pharmacies = points([("High St Pharmacy", 2500, 2500)])
    cands = sat.default_candidates(pharmacies, wards.iloc[[0]], spacing_m=400)
    assert cands["source"].tolist() == ["pharmacy"] + ["grid"] * 4   # 400 and 800 m in 0-1000
    assert cands.loc[1, "name"] == "Ward 0-0 grid point 1"
    tiny = gpd.GeoDataFrame({"ward_code": ["X"], "ward_name": ["Tiny"]},
                            geometry=[shapely.box(10, 10, 20, 20)], crs=CRS)
    assert len(sat.default_candidates(None, tiny, spacing_m=400)) == 1   # its own point


def test_satellite_sites_cover_the_gap():
    wards = plant_gap(grid_borough(), "E05000000")
    treatment = points([("Central Recovery Hub", 2500, 2500)])
    needle = points([("Market Pharmacy NSP", 2600, 2400)])
    pharmacies = points([("Far Pharmacy", 4500, 4500), ("Corner Pharmacy", 600, 400)],
                        site_type=["pharmacy", "pharmacy"])
    result = find_gaps(wards, treatment, needle, pharmacies, None, GapSettings(satellites=2),
                       seed=1)
    sites = result.satellites
    assert list(sites.columns) == SATELLITE_COLUMNS
    assert sites["rank"].tolist() == [1, 2]
    first = sites.iloc[0]
    assert first["ward_code"] == "E05000000"
    assert first["need_covered"] > 0
    assert 0 < sites["cumulative_share_of_gap_need"].iloc[-1] <= 1.0
    assert sites["share_of_gap_need_covered"].sum() == pytest.approx(
        sites["cumulative_share_of_gap_need"].iloc[-1], abs=1e-3)
    section = result.manifest["satellites"]
    assert section["status"] == "Optimal"
    assert section["optimal_need_covered"] >= section["greedy_need_covered"] - 1e-9
    assert section["candidates"]["pharmacy"] == 2 and section["candidates"]["grid"] >= 1
    assert any(line.startswith("Satellite sites: 2 chosen") for line in result.summary_lines)
    again = find_gaps(wards, treatment, needle, pharmacies, None, GapSettings(satellites=2), seed=1)
    pd.testing.assert_frame_equal(sites, again.satellites)


def test_candidate_file_is_used_as_given():
    wards = plant_gap(grid_borough(), "E05000000")
    venues = points([("Community Centre", 300, 700), ("Library", 3000, 3000)],
                    site_type=["community venue", "library"])
    result = find_gaps(wards, None, None, venues, None, GapSettings(satellites=1), seed=1,
                       candidates_from_file=True)
    assert result.manifest["satellites"]["candidates"] == {"candidate file": 2}
    assert result.satellites["name"].tolist() == ["Community Centre"]
    assert result.satellites.loc[0, "source"] == "candidate file"
    assert result.satellites.loc[0, "site_type"] == "community venue"


def test_no_gaps_no_satellites():
    wards = grid_borough()                        # no cluster, rates all similar
    service = points([(f"S{i}", x, y) for i, (x, y) in
                      enumerate(itertools.product([500, 2500, 4500], repeat=2))])
    result = find_gaps(wards, service, service, None, None, GapSettings(satellite_demand="gap_wards"), seed=1)
    assert not result.columns["is_outreach_gap"].any()
    assert result.satellites.empty and list(result.satellites.columns) == SATELLITE_COLUMNS
    assert result.manifest["satellites"]["skipped"] == "no outreach gaps"
    assert "Satellite sites: none (no outreach gaps)" in result.summary_lines


# --------------------------------------------------------------------------- the demo borough

PROJECT = Path(__file__).resolve().parents[1]
DEMO = PROJECT / "data" / "demo"


def demo_inputs() -> dict:
    """The demo borough's ward table (no cluster stage: need is judged on the rate) and service
    layers, through the real loaders."""
    run = demo_run_copy()
    return {"wards": run.wards, "treatment": run.layer_table("treatment_services"),
            "needle": run.needle_exchanges(), "pharmacies": run.other_pharmacies()}


@pytest.fixture(scope="module")
def demo():
    from geomisuse.demo.borough import PLANTED_GAP_WARDS
    inputs = demo_inputs()
    result = find_gaps(inputs["wards"], inputs["treatment"], inputs["needle"],
                       inputs["pharmacies"], None, GapSettings(), seed=20261122)
    return inputs, result, PLANTED_GAP_WARDS


def test_demo_planted_gap_ranks_first_with_reason(demo):
    inputs, result, planted = demo
    wards, col = inputs["wards"], result.columns
    first = col.sort_values("gap_rank").iloc[0]
    assert wards.loc[first.name, "ward_code"] == planted[0]
    gap_codes = set(wards.loc[col["is_outreach_gap"], "ward_code"])
    assert set(planted) <= gap_codes
    reason = first["gap_reason"]
    # Top-quintile possession, and no service of either kind within 2.5 km (demo guarantee).
    assert reason.startswith("drug possession rate in the top fifth (")
    assert "nearest treatment service" in reason and "nearest needle exchange" in reason
    assert "0 % of residents within 20 min" in reason
    assert first["nearest_treatment_service_m"] > 2000
    assert first["nearest_needle_exchange_m"] > 2000


def test_demo_service_inside_the_gap_removes_it(demo):
    inputs, _, planted = demo
    wards = inputs["wards"]
    ward = wards.loc[wards["ward_code"] == planted[0]].iloc[0]
    spot = ward.geometry.representative_point()
    outreach = gpd.GeoDataFrame({"name": ["New outreach hub"], "service_type": ["treatment"]},
                                geometry=[spot], crs=CRS)
    result = find_gaps(wards, pd.concat([inputs["treatment"], outreach]),
                       pd.concat([inputs["needle"], outreach]), inputs["pharmacies"], None,
                       GapSettings(), seed=20261122)
    at = wards.index[wards["ward_code"] == planted[0]][0]
    assert not result.columns.loc[at, "is_outreach_gap"]
    assert result.columns.loc[at, "gap_reason"].startswith("not a gap: drug possession rate")
    assert result.columns.loc[at, "treatment_services_within_walk"] == 1


def test_demo_first_satellite_serves_the_gap(demo):
    inputs, result, planted = demo
    sites = result.satellites
    assert len(sites) >= 1
    assert sites.loc[0, "ward_code"] == planted[0]
    assert sites.loc[0, "share_of_gap_need_covered"] > 0.3
    section = result.manifest["satellites"]
    assert section["optimal_need_covered"] >= section["greedy_need_covered"] - 1e-9


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("trial", range(6))
def test_scipy_milp_optimum_equals_spopt_cbc_optimum(trial):
    """The default model on scipy.optimize.milp finds what spopt + PuLP's CBC finds (and brute force)."""
    rng = np.random.default_rng(100 + trial)
    n, m, k = 60, 10, 3
    cover = rng.random((n, m)) < 0.12
    weights = rng.integers(1, 50, n).astype(float)
    milp = sat.solve_mclp(cover, weights, k, "milp")
    cbc = sat.solve_mclp(cover, weights, k, "cbc")
    assert milp.status == cbc.status == "Optimal"
    assert milp.objective == pytest.approx(cbc.objective) == pytest.approx(brute_force(cover, weights, k))
    assert milp.sites == cbc.sites  # the same tie-break: fewest sites, then the earliest candidates


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_scipy_milp_matches_cbc_on_a_larger_merged_instance():
    rng = np.random.default_rng(21)
    demand = rng.uniform(0, 6000, (2000, 2))
    cands = rng.uniform(0, 6000, (120, 2))
    cover = sat.coverage_matrix(demand, cands, 700)
    patterns, merged = sat.merge_identical_demand(cover, rng.uniform(0.1, 4.0, 2000))
    milp = sat.solve_mclp(patterns, merged, 5, "milp")
    cbc = sat.solve_mclp(patterns, merged, 5, "cbc")
    assert milp.objective == pytest.approx(cbc.objective)
    assert milp.sites == cbc.sites


def test_grid_sites_say_where_they_are_from_their_ward_centre():
    xy = np.array([[424.0, 424.0], [0.0, -30.0], [-1000.0, 0.0], [100.0, -1240.0], [-300.0, 300.0]])
    words = from_ward_centre(xy, np.zeros((5, 2)), ["A", "B", "C", "D", "E"])
    assert words == ["about 600 m north-east of the centre of A", "at the centre of B",
                     "about 1.0 km west of the centre of C", "about 1.2 km south of the centre of D",
                     "about 400 m north-west of the centre of E"]


def test_demo_grid_sites_are_located_from_the_ward_centre_and_pharmacies_keep_their_name():
    from geomisuse.publish.places import ward_centres
    from geomisuse.publish.text import distance_text

    run = demo_run_copy(("clusters", "gaps"))
    sites, wards = run.satellites, run.wards.set_index("ward_code")
    grid = sites[sites["source"] == "grid"]
    assert len(grid) and (sites.loc[sites["source"] != "grid", "location"] == "").all()
    centres = ward_centres(wards.geometry)
    for row in grid.itertuples():
        centre = centres.loc[row.ward_code]
        dx, dy = row.easting - centre.x, row.northing - centre.y
        assert row.location.startswith(f"about {distance_text(round(float(np.hypot(dx, dy)), -2))} ")
        assert row.location.endswith(f"of the centre of {row.ward_name}")
        direction = row.location.split(" of the centre")[0].split(" ")[-1]
        assert ("north" in direction) <= (dy > 0) and ("south" in direction) <= (dy < 0)
        assert ("east" in direction) <= (dx > 0) and ("west" in direction) <= (dx < 0)
