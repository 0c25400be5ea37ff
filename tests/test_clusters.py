"""Tests of the cluster stage (geomisuse.clusters), each against a known or independently
computed value: GeoDa's Columbus figure, neighbours written out from their rules, esda's statistics, exact
enumeration of permutation distributions, hand-worked quadrants, and the null behaviour."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from scipy import sparse, stats
from shapely.geometry import box

from geomisuse.clusters import ClusterSettings, find_clusters
from geomisuse.clusters.getisord import gi_bins, gi_star
from geomisuse.clusters.inference import (adjust_p, conditional_sum_counts, default_permutations,
                                          draw_orderings, permutation_warning, required_permutations,
                                          two_sided_p)
from geomisuse.clusters.moran import empirical_bayes_standardise, global_moran, local_moran
from geomisuse.clusters.weights import (build_neighbours, distance_band_adjacency, knn_adjacency,
                                        queen_adjacency, row_standardised, with_self)
from geomisuse.errors import InputError
from geomisuse.config import MEASURES

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
LONDON_WARDS = REAL / "boundaries" / "ons_wards2022_london_bsc_simplified.gpkg"
LABELS = {"High-High", "Low-Low", "High-Low", "Low-High", "Not significant"}


# --------------------------------------------------------------------------- helpers

def grid_wards(rows: int, cols: int, rates: dict[str, np.ndarray] | None = None,
               population: np.ndarray | None = None, size: float = 1000.0) -> gpd.GeoDataFrame:
    """A ward table of ``rows x cols`` square wards (row-major), EPSG:27700, with the given rates."""
    cells = [box(c * size, -(r + 1) * size, (c + 1) * size, -r * size) for r in range(rows) for c in range(cols)]
    n = len(cells)
    table = gpd.GeoDataFrame({
        "ward_code": [f"E05{i:06d}" for i in range(n)],
        "ward_name": [f"Ward {i}" for i in range(n)],
        "population": np.full(n, 10000.0) if population is None else population,
        "area_km2": np.full(n, size * size / 1e6),
    }, geometry=cells, crs="EPSG:27700")
    for measure in MEASURES:
        rate = (rates or {}).get(measure)
        table[f"{measure}_rate_per_1000"] = np.nan if rate is None else np.asarray(rate, dtype=float)
        table[f"{measure}_count"] = (np.nan if rate is None
                                     else np.round(np.asarray(rate) * table["population"] / 1000))
    return table


def dense_grid_queen(rows: int, cols: int) -> np.ndarray:
    """Queen adjacency of a grid written out directly (king's moves)."""
    cells = [(r, c) for r in range(rows) for c in range(cols)]
    return np.array([[1.0 if a != b and abs(a[0] - b[0]) <= 1 and abs(a[1] - b[1]) <= 1 else 0.0
                      for b in cells] for a in cells])


def columbus() -> gpd.GeoDataFrame:
    from libpysal import examples
    return gpd.read_file(examples.get_path("columbus.shp"))


# --------------------------------------------------------------------------- weights

def shared_vertex_pairs(geoms: gpd.GeoSeries) -> sparse.csr_array:
    """Queen neighbours written out: wards with an identical boundary coordinate (the rule
    geomisuse's own code applied before libpysal.graph; an independent reference)."""
    import shapely
    coords, owner = shapely.get_coordinates(np.asarray(geoms.values), return_index=True)
    _, point = np.unique(coords, axis=0, return_inverse=True)
    table = pd.DataFrame({"point": point.ravel(), "ward": owner}).drop_duplicates()
    pairs = table.merge(table, on="point")
    pairs = pairs[pairs["ward_x"] != pairs["ward_y"]].drop_duplicates(["ward_x", "ward_y"])
    n = len(geoms)
    return sparse.csr_array((np.ones(len(pairs)), (pairs["ward_x"], pairs["ward_y"])), shape=(n, n))


def nearest_pairs(points: np.ndarray, k: int) -> sparse.csr_array:
    """Each point's k nearest others by scipy's cKDTree (reference; unique distances only)."""
    from scipy.spatial import cKDTree
    distance, nearest = cKDTree(points).query(points, k=k + 1)
    assert (np.diff(distance, axis=1) > 0).all(), "ties would make the reference arbitrary"
    n = len(points)
    return sparse.csr_array((np.ones(n * k), (np.repeat(np.arange(n), k), nearest[:, 1:].ravel())), shape=(n, n))


def band_pairs(points: np.ndarray, distance_m: float) -> sparse.csr_array:
    """Pairs of points at most distance_m apart, from the full distance matrix (reference)."""
    d = np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1))
    near = (d <= distance_m) & ~np.eye(len(points), dtype=bool)
    return sparse.csr_array(near.astype(float))


def same_neighbours(a, b) -> bool:
    return a.shape == b.shape and (abs(sparse.csr_array(a) - sparse.csr_array(b)) > 0).nnz == 0


def test_queen_is_shared_vertex_contiguity_on_columbus_tiny_and_demo():
    from conftest import tiny_wards
    for geoms in (columbus().geometry, tiny_wards().geometry,
                  gpd.read_file(Path(__file__).resolve().parents[1] / "boundaries" / "northmere_wards.geojson")
                  .to_crs(27700).geometry, grid_wards(4, 5).geometry):
        ours = queen_adjacency(geoms)
        assert same_neighbours(ours, shared_vertex_pairs(geoms))
        assert ours.diagonal().sum() == 0 and set(ours.data) == {1.0}
    # The tiny borough's 3 x 2 squares: corners have 3 queen neighbours, middles 5.
    np.testing.assert_array_equal(np.diff(queen_adjacency(tiny_wards().geometry).indptr), [3, 5, 3, 3, 5, 3])
    assert same_neighbours(queen_adjacency(grid_wards(3, 3).geometry), dense_grid_queen(3, 3))


def test_knn_and_distance_band_match_references():
    wards = columbus()
    points = np.column_stack([wards.geometry.centroid.x, wards.geometry.centroid.y])
    for k in (1, 4, 6):
        assert same_neighbours(knn_adjacency(points, k), nearest_pairs(points, k))
    for band in (0.5, 1.0, 2.0):
        assert same_neighbours(distance_band_adjacency(points, band), band_pairs(points, band))
    # A distance band nobody reaches leaves every row empty (islands for link_islands), no self-loops.
    assert distance_band_adjacency(points, 1e-6).nnz == 0
    with pytest.raises(InputError, match="same centroid"):
        knn_adjacency(np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 2.0], [3.0, 1.0]]), 1)


@pytest.mark.skipif(not REAL.exists(), reason="real data folder not present")
@pytest.mark.parametrize("boundary_file", ["ons_wards2022_london_bsc_simplified.gpkg",
                                           pytest.param("gla_london_wards_2018.gpkg", marks=pytest.mark.slow)])
def test_weights_match_references_on_london_wards(boundary_file):
    wards = gpd.read_file(REAL / "boundaries" / boundary_file).to_crs(27700)
    geoms = wards.geometry.reset_index(drop=True)
    assert same_neighbours(queen_adjacency(geoms), shared_vertex_pairs(geoms))
    centroids = np.column_stack([geoms.centroid.x, geoms.centroid.y])
    assert same_neighbours(knn_adjacency(centroids, 6), nearest_pairs(centroids, 6))
    assert same_neighbours(distance_band_adjacency(centroids, 2500.0), band_pairs(centroids, 2500.0))
    if boundary_file.startswith("ons"):
        # The 704 wards are topologically clean: every ward has a neighbour, so no island is linked.
        summary = build_neighbours(wards.rename(columns={"ward22_code": "ward_code",
                                                         "ward22_name": "ward_name"})).summary()
        assert summary["islands"] == [] and summary["n_wards"] == 704 and summary["min_neighbours"] >= 1


def test_island_is_linked_to_nearest_ward_and_reported():
    wards = grid_wards(3, 3, {"possession": np.arange(9.0)})
    island = gpd.GeoDataFrame({"ward_code": ["E05999999"], "ward_name": ["Eel Island"], "population": [5000.0],
                               "area_km2": [1.0], "possession_rate_per_1000": [4.0], "possession_count": [20.0]},
                              geometry=[box(3500, -1000, 4500, 0)], crs="EPSG:27700")   # 500 m east of Ward 2
    wards = pd.concat([wards, island], ignore_index=True)
    result = find_clusters(wards, ClusterSettings(), seed=1)
    [linked] = result.manifest["weights"]["islands"]
    assert linked == {"ward_code": "E05999999", "ward_name": "Eel Island", "linked_to_code": "E05000002",
                      "linked_to_name": "Ward 2", "distance_m": 500.0}
    assert any("Eel Island" in w and "Ward 2" in w for w in result.warnings)
    assert result.columns["possession_lisa_label"].notna().all()
    assert result.manifest["weights"]["min_neighbours"] == 1


def test_single_ward_and_too_few_wards_give_a_clear_message():
    with pytest.raises(InputError, match="at least 4 wards and the study has 1"):
        find_clusters(grid_wards(1, 1, {"possession": [3.0]}), ClusterSettings(), seed=1)
    with pytest.raises(InputError, match="has 3"):
        find_clusters(grid_wards(1, 3, {"possession": [3.0, 1.0, 2.0]}), ClusterSettings(), seed=1)


def test_knn_and_distance_options_are_recorded():
    wards = grid_wards(4, 4, {"possession": np.arange(16.0)})
    knn = find_clusters(wards, ClusterSettings(weights="knn", k=3), seed=1).manifest["weights"]
    assert (knn["kind"], knn["k"], knn["min_neighbours"], knn["max_neighbours"]) == ("knn", 3, 3, 3)
    band = find_clusters(wards, ClusterSettings(weights="distance", distance_m=1000.0), seed=1).manifest["weights"]
    # Centroids 1 km apart: rook neighbours, 2 (corner) to 4 (inside).
    assert (band["kind"], band["distance_m"]) == ("distance", 1000.0)
    assert (band["min_neighbours"], band["max_neighbours"]) == (2, 4)
    assert band["mean_neighbours"] == pytest.approx(48 / 16)


# --------------------------------------------------------------------------- global Moran

def test_columbus_crime_global_moran_is_geoda_figure():
    data = columbus()
    weights = row_standardised(queen_adjacency(data.geometry))
    result = global_moran(data["CRIME"].to_numpy(), weights, 999, np.random.default_rng(0))
    assert round(result.I, 3) == 0.500                        # GeoDa: I = 0.500
    assert result.EI == pytest.approx(-1 / 48)
    import esda
    from libpysal.weights import Queen
    reference = esda.Moran(data["CRIME"].to_numpy(), Queen.from_dataframe(data, use_index=False), permutations=0)
    assert result.I == pytest.approx(reference.I, rel=1e-12)
    assert result.VI_rand == pytest.approx(reference.VI_rand, rel=1e-10)
    assert result.z_rand == pytest.approx(reference.z_rand, rel=1e-10)
    assert result.p_sim == pytest.approx(2 / 1000)                  # no relabelling beats I = 0.5


def test_columbus_through_the_stage():
    data = columbus()
    wards = gpd.GeoDataFrame({"ward_code": data["POLYID"].astype(str), "ward_name": data["POLYID"].astype(str),
                              "population": np.nan, "area_km2": data["AREA"],
                              "possession_rate_per_1000": data["CRIME"], "possession_count": np.nan},
                             geometry=data.geometry, crs="EPSG:27700")
    result = find_clusters(wards, ClusterSettings(rate_adjustment="none"), seed=7)
    row = result.global_moran.iloc[0]
    assert (row["measure"], round(row["moran_i"], 3), row["rate_adjustment"]) == ("possession", 0.5, "none")
    assert list(result.global_moran.columns[:7]) == ["measure", "moran_i", "expected_i", "z", "p_sim",
                                                     "permutations", "rate_adjustment"]


def test_empirical_bayes_matches_assuncao_reis_and_esda():
    counts = np.array([30, 25, 25, 15, 33, 21, 30, 20])
    population = np.array([100, 100, 110, 90, 100, 90, 110, 90])
    # The example of esda.smoothing.assuncao_rate.
    np.testing.assert_allclose(empirical_bayes_standardise(counts, population)[:4],
                               [1.03843594, -0.04099089, -0.56250375, -1.73061861], rtol=1e-7)
    import esda
    from libpysal.weights import Queen
    data = columbus()
    rng = np.random.default_rng(3)
    population = rng.integers(500, 5000, len(data)).astype(float)
    counts = np.round(data["CRIME"].to_numpy() * population / 100)
    ours = global_moran(empirical_bayes_standardise(counts, population),
                        row_standardised(queen_adjacency(data.geometry)), 0, rng)
    theirs = esda.Moran_Rate(counts, population, Queen.from_dataframe(data, use_index=False), permutations=0)
    assert ours.I == pytest.approx(theirs.I, rel=1e-12)


# --------------------------------------------------------------------------- local Moran

def test_local_moran_against_formulas_and_exact_enumeration():
    """Local I (Anselin 1995 eq. 12), E[I_i] and Var[I_i] (eq. 13) on a 2 x 3 map, three ways."""
    adjacency = dense_grid_queen(2, 3)
    y = np.array([3.0, 8.0, 1.0, 6.0, 2.0, 9.0])
    n = y.size
    result = local_moran(y, sparse.csr_array(adjacency), None)

    # 1. Written out from the paper, loop by loop.
    z = y - y.mean()
    m2 = sum(v * v for v in z) / n
    m4 = sum(v ** 4 for v in z) / n
    b2 = m4 / m2 ** 2
    for i in range(n):
        w = adjacency[i] / adjacency[i].sum()
        local_i = z[i] / m2 * sum(w[j] * z[j] for j in range(n))
        w_i = sum(w)
        w_i2 = sum(wj * wj for wj in w)
        w_ikh2 = sum(w[k] * w[h] for k in range(n) for h in range(n) if k != h)   # 2 w_i(kh)
        expected = -w_i / (n - 1)
        variance = (w_i2 * (n - b2) / (n - 1) + w_ikh2 * (2 * b2 - n) / ((n - 1) * (n - 2))
                    - w_i ** 2 / (n - 1) ** 2)
        assert result.Is[i] == pytest.approx(local_i, rel=1e-12)
        assert result.EI[i] == pytest.approx(expected, rel=1e-12)
        assert result.VI[i] == pytest.approx(variance, rel=1e-12)
        assert result.z_rand[i] == pytest.approx((local_i - expected) / math.sqrt(variance), rel=1e-12)

    # 2. The moments are those of total randomisation: enumerate all 720 relabellings.
    weights = adjacency / adjacency.sum(axis=1, keepdims=True)
    every = []
    for order in itertools.permutations(range(n)):
        v = y[list(order)]
        zz = v - v.mean()
        every.append(zz / ((zz ** 2).mean()) * (weights @ zz))
    every = np.array(every)
    np.testing.assert_allclose(result.EI, every.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(result.VI, every.var(axis=0), rtol=1e-12)

    # 3. esda's local I is (n - 1) / n times Anselin's / GeoDa's.
    import esda
    from libpysal.weights import W
    w = W({i: list(np.flatnonzero(adjacency[i])) for i in range(n)})
    reference = esda.Moran_Local(y, w, permutations=0)
    np.testing.assert_allclose(result.Is * (n - 1) / n, reference.Is, rtol=1e-12)


def test_quadrants_and_labels_on_hand_made_3x3_map():
    values = np.array([9, 9, 1,
                       9, 1, 1,
                       1, 1, 9], dtype=float)
    # Mean 41/9 = 4.56. Worked by hand with queen neighbours, e.g. the centre (1) has the mean
    # of all eight others, 40/8 = 5 > 4.56: Low-High; the corner 9 at bottom right has
    # neighbours 1, 1, 1: High-Low.
    expected = np.array([1, 4, 3,
                         4, 2, 3,
                         3, 3, 4])
    result = local_moran(values, sparse.csr_array(dense_grid_queen(3, 3)), None)
    np.testing.assert_array_equal(result.q, expected)

    # Through the stage with no correction and alpha 0.99, only wards with p > 0.99 are
    # "Not significant", every other label is its quadrant's.
    clusters = find_clusters(grid_wards(3, 3, {"possession": values}),
                             ClusterSettings(correction="none", alpha=0.99, permutations=999), seed=5).columns
    names = {1: "High-High", 2: "Low-High", 3: "Low-Low", 4: "High-Low"}
    np.testing.assert_array_equal(clusters["possession_lisa_quadrant"].to_numpy(dtype=int), expected)
    for quadrant, p, label in zip(expected, clusters["possession_lisa_p"], clusters["possession_lisa_label"]):
        assert label == (names[quadrant] if p <= 0.99 else "Not significant")
    # The centre neighbours every other ward: every draw is the same set, so p = 1, never a cluster.
    assert clusters.loc[4, "possession_lisa_p"] == 1.0
    assert clusters.loc[4, "possession_lisa_label"] == "Not significant"
    assert {"High-High", "Low-Low", "High-Low"} <= set(clusters["possession_lisa_label"]) <= LABELS


def test_conditional_permutation_p_matches_exact_enumeration():
    """Monte Carlo two-sided p against the exact conditional distribution (all k-subsets)."""
    y = np.array([5.0, 1.0, 7.0, 2.0, 2.0, 9.0, 4.0])
    adjacency = dense_grid_queen(1, 7)                     # a row of 7 wards: k = 1 or 2
    adjacency[0, 2] = adjacency[2, 0] = 1.0                # ward 0 gets a third neighbour
    adjacency = sparse.csr_array(adjacency)
    k = np.diff(adjacency.indptr)
    observed = adjacency @ y
    permutations = 40000
    orderings = draw_orderings(y.size, int(k.max()) + 1, permutations, np.random.default_rng(11))
    at_least, at_most = conditional_sum_counts(y, k, observed, orderings)
    for i in range(y.size):
        others = np.delete(y, i)
        sums = np.array([others[list(c)].sum() for c in itertools.combinations(range(y.size - 1), int(k[i]))])
        p_ge, p_le = np.mean(sums >= observed[i] - 1e-9), np.mean(sums <= observed[i] + 1e-9)
        exact = min(1.0, 2 * min(p_ge, p_le))
        tolerance = 4 * math.sqrt(max(p_ge * (1 - p_ge), 1e-4) / permutations) * 2 + 2 / permutations
        assert two_sided_p(at_least[i], at_most[i], permutations) == pytest.approx(exact, abs=tolerance)
    # The local Moran's p for a ward exactly at the mean is 1 (I_i = 0 under every draw).
    at_mean = np.array([2.0, 4.0, 6.0, 1.0, 7.0])
    p = local_moran(at_mean, sparse.csr_array(dense_grid_queen(1, 5)),
                    draw_orderings(5, 3, 99, np.random.default_rng(1))).p_sim
    assert p[1] == 1.0 and at_mean[1] == at_mean.mean()


def test_orderings_are_distinct_and_uniform():
    orderings = draw_orderings(9, 9, 20000, np.random.default_rng(2))
    assert all(len(set(row)) == 9 for row in orderings[:500])
    # Each ward appears in each position with probability 1/9.
    frequency = np.stack([(orderings == w).mean(axis=0) for w in range(9)])
    np.testing.assert_allclose(frequency, 1 / 9, atol=0.015)


# --------------------------------------------------------------------------- Gi*

def test_gi_star_z_against_formula_and_esda():
    adjacency = dense_grid_queen(3, 4)
    y = np.array([4.0, 8.0, 1.0, 0.0, 3.0, 12.0, 7.0, 2.0, 5.0, 6.0, 1.0, 9.0])
    n = y.size
    result = gi_star(y, with_self(sparse.csr_array(adjacency)))
    xbar = y.mean()
    s = math.sqrt((y ** 2).sum() / n - xbar ** 2)
    for i in range(n):
        w = adjacency[i].copy()
        w[i] = 1.0
        z = (w @ y - xbar * w.sum()) / (s * math.sqrt((n * (w ** 2).sum() - w.sum() ** 2) / (n - 1)))
        assert result.Zs[i] == pytest.approx(z, rel=1e-12)
        assert result.p_norm[i] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-12)
    import esda
    from libpysal.weights import W
    w = W({i: list(np.flatnonzero(adjacency[i])) for i in range(n)})
    reference = esda.G_Local(y, w, transform="B", star=True, permutations=0)
    np.testing.assert_allclose(result.Zs, reference.Zs, rtol=1e-10)


def test_gi_bins_follow_arcgis_confidence_levels():
    z = np.array([3.0, 2.6, 2.0, 1.7, 1.6, 0.0, -1.7, -2.0, -2.6])
    p = 2 * stats.norm.sf(np.abs(z))
    np.testing.assert_array_equal(gi_bins(z, p), [3, 3, 2, 1, 0, 0, -1, -2, -3])
    # After a correction the adjusted p decides: the same z can fall a bin.
    np.testing.assert_array_equal(gi_bins(np.array([2.6, 2.6]), np.array([0.02, 0.2])), [2, 0])


# --------------------------------------------------------------------------- corrections, permutations

def bh_step_up_rejects(p: np.ndarray, alpha: float) -> np.ndarray:
    """Benjamini-Hochberg (1995) as its paper states it: reject the k smallest p-values, k the
    largest rank with p_(k) <= k alpha / m (an independent reference for ``adjust_p``)."""
    order = np.argsort(p, kind="stable")
    m = p.size
    passing = np.flatnonzero(p[order] <= np.arange(1, m + 1) * alpha / m)
    rejected = np.zeros(m, dtype=bool)
    if passing.size:
        rejected[order[:passing[-1] + 1]] = True
    return rejected


def test_corrections_match_the_step_up_procedure_and_the_definition():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, np.nan, 0.5])
    tested = ~np.isnan(p)
    q = adjust_p(p, "fdr")
    # Hand-worked BH adjusted p-values: running minimum of m p_(i) / i from the largest p down.
    np.testing.assert_allclose(q[tested], [0.009, 0.036, 0.0756, 0.0756, 0.0756, 0.09, 0.0951428571, 0.230625, 0.5],
                               rtol=1e-9)
    for alpha in (0.01, 0.05, 0.08, 0.1):
        np.testing.assert_array_equal(q[tested] <= alpha, bh_step_up_rejects(p[tested], alpha))
    rng = np.random.default_rng(16)
    for _ in range(20):
        draws = np.concatenate([rng.uniform(0, 0.01, 5), rng.uniform(size=45)])
        # The formula this module used before scipy's, (m p_(i)) / i: equal to the last bit or one below it.
        order = np.argsort(draws, kind="stable")
        before = np.empty(50)
        before[order] = np.minimum(1, np.minimum.accumulate((draws[order] * 50 / np.arange(1, 51))[::-1])[::-1])
        np.testing.assert_allclose(adjust_p(draws, "fdr"), before, rtol=0, atol=2.3e-16)
        np.testing.assert_array_equal(adjust_p(draws, "fdr") <= 0.05, bh_step_up_rejects(draws, 0.05))
    np.testing.assert_allclose(adjust_p(p, "bonferroni")[tested], np.minimum(1, p[tested] * 9))
    assert np.isnan(q[8]) and np.isnan(adjust_p(p, "bonferroni")[8])
    np.testing.assert_array_equal(adjust_p(p, "none"), p)


def test_default_permutations_can_reach_significance():
    for n in (5, 20, 30, 100, 704, 5000):
        for correction in ("none", "bonferroni", "fdr"):
            count = default_permutations(n, 0.05, correction)
            bar = 0.05 if correction == "none" else 0.05 / n
            assert 2 / (count + 1) <= bar / 2 + 1e-15        # one permuted value may beat a ward
            assert count >= 999
    assert default_permutations(704, 0.05, "fdr") == 99999
    assert default_permutations(20, 0.05, "bonferroni") == 1999
    assert default_permutations(704, 0.05, "none") == 999
    assert required_permutations(704, 0.05, "bonferroni") == 28159


def test_a_permutation_count_that_cannot_reach_significance_warns_what_to_change():
    assert permutation_warning(99999, 704, 0.05, "bonferroni", "asb") is None
    message = permutation_warning(999, 704, 0.05, "bonferroni", "asb")
    assert "no ward can be significant" in message and "at least 28159" in message
    message = permutation_warning(9999, 704, 0.05, "fdr", "asb")
    assert "group of at least 3 wards" in message and "at least 28159" in message
    rng = np.random.default_rng(4)
    wards = grid_wards(6, 6, {"possession": rng.gamma(2.0, 1.0, 36)})
    result = find_clusters(wards, ClusterSettings(permutations=99, correction="bonferroni"), seed=1)
    assert any("set [clusters] permutations to at least 1439" in w for w in result.warnings)
    quiet = find_clusters(wards, ClusterSettings(correction="bonferroni"), seed=1)
    assert not any("permutations" in w for w in quiet.warnings)


# --------------------------------------------------------------------------- the stage

def test_same_seed_same_numbers_and_seed_matters():
    rng = np.random.default_rng(8)
    wards = grid_wards(7, 7, {m: rng.gamma(2.0, 2.0, 49) for m in ("possession", "asb")})
    first = find_clusters(wards, ClusterSettings(), seed=123)
    again = find_clusters(wards, ClusterSettings(), seed=123)
    pd.testing.assert_frame_equal(first.columns, again.columns)
    pd.testing.assert_frame_equal(first.global_moran, again.global_moran)
    assert first.manifest == again.manifest
    other = find_clusters(wards, ClusterSettings(), seed=124)
    assert not np.array_equal(first.columns["possession_lisa_p"], other.columns["possession_lisa_p"])


def test_output_columns_and_manifest():
    rng = np.random.default_rng(9)
    rates = rng.gamma(2.0, 2.0, 64)
    rates[[0, 1, 8, 9]] += 30                                   # a high corner
    wards = grid_wards(8, 8, {"possession": rates, "trafficking": rng.gamma(2.0, 1.0, 64)})
    wards.index = wards.index + 100                             # any index is kept
    result = find_clusters(wards, ClusterSettings(), seed=1)
    assert result.columns.index.equals(wards.index)
    for measure in ("possession", "trafficking"):
        for suffix in ("lisa_i", "lisa_p", "lisa_label", "gi_z", "gi_p", "gi_bin"):
            assert f"{measure}_{suffix}" in result.columns
        assert set(result.columns[f"{measure}_lisa_label"]) <= LABELS
        assert result.columns[f"{measure}_gi_bin"].between(-3, 3).all()
    assert "asb_lisa_i" not in result.columns                 # no ASB data: not analysed
    assert list(result.global_moran["measure"]) == ["possession", "trafficking"]
    assert set(result.global_moran["rate_adjustment"]) == {"empirical_bayes"}
    high_high = {w["ward_code"] for w in result.manifest["high_high"]["possession"]}
    assert high_high and high_high <= {"E05000000", "E05000001", "E05000008", "E05000009"}
    manifest = result.manifest
    assert manifest["weights"]["kind"] == "queen" and manifest["seed"] == 1
    assert (manifest["weights"]["min_neighbours"], manifest["weights"]["max_neighbours"]) == (3, 8)
    assert manifest["permutations"] == {"possession": 9999, "trafficking": 9999}   # 64 wards, FDR 5 %
    assert result.summary_lines[0].startswith("possession: Moran's I")
    assert "High-High in Ward " in result.summary_lines[0] and "(FDR 5%)" in result.summary_lines[0]


def test_ward_without_population_is_left_out_with_a_warning():
    rng = np.random.default_rng(10)
    population = np.full(25, 8000.0)
    population[12] = np.nan
    rates = rng.gamma(2.0, 2.0, 25)
    rates[12] = np.nan
    wards = grid_wards(5, 5, {"possession": rates}, population=population)
    result = find_clusters(wards, ClusterSettings(), seed=1)
    assert any("E05000012 Ward 12" in w and "left out" in w for w in result.warnings)
    assert result.columns.loc[12].isna().all()
    assert result.columns.drop(index=12)["possession_lisa_label"].notna().all()
    assert result.global_moran.loc[0, "n_wards"] == 24
    # The 24 wards analysed all have counts and populations: empirical Bayes over them.
    assert result.global_moran.loc[0, "rate_adjustment"] == "empirical_bayes"
    # Without counts, "auto" falls back to raw rates and says so.
    raw = find_clusters(wards.assign(possession_count=np.nan), ClusterSettings(), seed=1)
    assert raw.global_moran.loc[0, "rate_adjustment"] == "none"
    assert any("raw rates" in w for w in raw.warnings)


def test_settings_errors_are_one_line_and_say_what_to_do():
    with pytest.raises(InputError, match=r"^\[clusters\] unknown key 'permutation'; did you mean 'permutations'\? "
                                         "keys are measures, "):
        ClusterSettings.from_options({"permutation": 999})
    with pytest.raises(InputError, match=r"^\[clusters\] measures\[0\] = \"heroin\": must be 'possession', "):
        ClusterSettings.from_options({"measures": ["heroin"]})
    with pytest.raises(InputError, match="correction = \"holm\": must be 'none', 'bonferroni' or 'fdr'"):
        ClusterSettings.from_options({"correction": "holm"})
    with pytest.raises(InputError, match="needs distance_m"):
        ClusterSettings.from_options({"weights": "distance"})
    settings = ClusterSettings.from_options({"measures": ["asb"], "permutations": 4999, "alpha": 0.1})
    assert (settings.measures, settings.permutations, settings.alpha) == (["asb"], 4999, 0.1)
    wards = grid_wards(3, 3, {"possession": np.arange(9.0)})
    with pytest.raises(InputError, match="lists 'asb' but the ward table has no asb rates"):
        find_clusters(wards, settings, seed=1)
    no_counts = wards.assign(possession_count=np.nan)
    with pytest.raises(InputError, match="empirical_bayes\" needs possession_count"):
        find_clusters(no_counts, ClusterSettings(rate_adjustment="empirical_bayes"), seed=1)
    flat = grid_wards(3, 3, {"possession": np.ones(9)})
    result = find_clusters(flat, ClusterSettings(), seed=1)
    assert result.global_moran.empty and any("same rate" in w for w in result.warnings)
    for message in result.warnings:
        assert "\n" not in message


@pytest.mark.slow  # 90 analyses of 144 wards: ~10 s per correction
@pytest.mark.parametrize("correction", ["none", "bonferroni", "fdr"])
def test_no_more_wards_flagged_than_nominal_on_spatially_random_data(correction):
    """Rates drawn independently of place (Poisson counts over unequal populations): the
    share of ward tests flagged stays at or below alpha = 0.05, within Monte Carlo error."""
    rows = cols = 12
    n, seeds, alpha = rows * cols, 30, 0.05
    lisa_flagged = gi_flagged = 0
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        population = rng.integers(4000, 16000, n).astype(float)
        rates = rng.poisson(population * 4 / 1000) / population * 1000
        wards = grid_wards(rows, cols, {"possession": rates}, population=population)
        result = find_clusters(wards, ClusterSettings(correction=correction, alpha=alpha), seed=seed)
        lisa_flagged += int((result.columns["possession_lisa_label"] != "Not significant").sum())
        gi_flagged += int((result.columns["possession_gi_bin"].abs() >= 2).sum())       # 95 % and 99 % bins
    tests = n * seeds
    slack = 3 * math.sqrt(alpha * (1 - alpha) / tests)
    assert lisa_flagged / tests <= alpha + slack
    assert gi_flagged / tests <= alpha + slack


# --------------------------------------------------------------------------- the demo borough

@pytest.fixture(scope="module")
def demo_clusters():
    from conftest import demo_run_copy

    run = demo_run_copy()   # prepare() of the demo study
    study = run.study
    result = find_clusters(run.wards, ClusterSettings.from_options(study.clusters), study.seed)
    return run.wards, result


def test_demo_possession_high_high_is_the_planted_cluster(demo_clusters):
    from geomisuse.demo import borough as demo
    wards, result = demo_clusters
    table = result.columns.assign(ward_code=wards["ward_code"]).set_index("ward_code")
    planted = set(demo.PLANTED_POSSESSION_CLUSTER)
    high_high = set(table.index[table["possession_lisa_label"] == "High-High"])
    # Default settings (FDR 5 %): exactly the planted cluster.
    assert high_high == planted
    assert set(table.index[table["possession_lisa_quadrant"] == 1]) >= planted
    assert {w["ward_code"] for w in result.manifest["high_high"]["possession"]} == high_high
    # Uncorrected at 5 %, exactly the planted cluster; Gi* at 95 %+ after FDR, also exactly it.
    uncorrected = find_clusters(wards, ClusterSettings(correction="none"), seed=20261122).columns
    assert set(wards["ward_code"][uncorrected["possession_lisa_label"] == "High-High"]) == planted
    assert set(table.index[table["possession_gi_bin"] >= 2]) == planted
    assert result.summary_lines[0].startswith("possession: Moran's I 0.7")


def test_demo_planted_low_cluster_is_low_low(demo_clusters):
    from geomisuse.demo import borough as demo
    wards, result = demo_clusters
    table = result.columns.assign(ward_code=wards["ward_code"]).set_index("ward_code")
    assert set(table.index[table["possession_lisa_label"] == "Low-Low"]) == set(demo.PLANTED_LOW_CLUSTER)


def test_demo_estate_ward_is_a_trafficking_hot_spot(demo_clusters):
    from geomisuse.demo import borough as demo
    wards, result = demo_clusters
    table = result.columns.assign(ward_code=wards["ward_code"]).set_index("ward_code")
    assert table.loc[demo.PLANTED_ESTATE_WARD, "trafficking_gi_bin"] == 3
    assert table["trafficking_gi_z"].idxmax() == demo.PLANTED_ESTATE_WARD
    # Global Moran's I: every demo measure is clustered, on empirical-Bayes rates.
    moran = result.global_moran.set_index("measure")
    assert (moran["rate_adjustment"] == "empirical_bayes").all() and (moran["p_sim"] <= 0.01).all()


# --------------------------------------------------------------------------- real London data

@pytest.mark.slow
@pytest.mark.skipif(not LONDON_WARDS.exists(), reason="real data folder not present")
def test_real_london_possession_clusters_in_the_west_end():
    """679 MPS wards (2022 set, City excluded: not policed by the MPS), possession of drugs
    2023-04 to 2025-03, residents from Census 2021 LSOAs via the ONS best-fit lookup."""
    import esda
    from libpysal.weights import Queen
    wards = gpd.read_file(LONDON_WARDS).to_crs(27700).rename(
        columns={"ward22_code": "ward_code", "ward22_name": "ward_name"})
    mps = pd.read_csv(REAL / "mps_ward" / "mps_ward_level_crime_2023-04_2025-03_wards2022.csv")
    months = [c for c in mps.columns if c.isdigit()]
    possession = mps[mps["MinorText"].str.upper() == "POSSESSION OF DRUGS"]
    possession = possession.groupby("WardCode")[months].sum().sum(axis=1)
    lookup = pd.read_csv(REAL / "boundaries" / "lookup_lsoa21_ward25_lad25_bestfit_london.csv")
    census = pd.read_csv(REAL / "population" / "census2021_lsoa2021_london_age5.csv")
    residents = census.groupby("Lower layer Super Output Areas Code")["Observation"].sum()
    population = lookup.assign(people=lookup["LSOA21CD"].map(residents)).groupby("WD25CD")["people"].sum()
    wards = wards[wards["ward_code"].isin(possession.index)].sort_values("ward_code").reset_index(drop=True)
    wards["population"] = wards["ward_code"].map(population).astype(float)
    wards["area_km2"] = wards.area / 1e6
    wards["possession_count"] = wards["ward_code"].map(possession).astype(float)
    wards["possession_rate_per_1000"] = wards["possession_count"] / wards["population"] * 1000
    for measure in ("trafficking", "drug_offences", "asb"):
        wards[f"{measure}_count"] = np.nan
        wards[f"{measure}_rate_per_1000"] = np.nan
    assert len(wards) == 679 and wards["population"].notna().all()

    result = find_clusters(wards, ClusterSettings(), seed=20261122)
    assert result.manifest["weights"]["islands"] == [] and result.manifest["permutations"]["possession"] == 99999
    moran = result.global_moran.iloc[0]
    assert moran["rate_adjustment"] == "empirical_bayes" and moran["moran_i"] > 0.15 and moran["p_sim"] == 0.002
    # Raw-rate Moran's I agrees with esda on the same real map.
    raw = global_moran(wards["possession_rate_per_1000"].to_numpy(),
                       row_standardised(queen_adjacency(wards.geometry)), 0, np.random.default_rng(0))
    reference = esda.Moran(wards["possession_rate_per_1000"].to_numpy(),
                           Queen.from_dataframe(wards, use_index=False, silence_warnings=True), permutations=0)
    assert raw.I == pytest.approx(reference.I, rel=1e-10)
    # St James's and West End have London's highest possession rates (over 100 per 1,000):
    # High-High, and every High-High ward is in central Camden or Westminster.
    table = result.columns.join(wards[["ward_code", "LAD22NM"]]).set_index("ward_code")
    high_high = table[table["possession_lisa_label"] == "High-High"]
    assert {"E05013806", "E05013808"} <= set(high_high.index)
    assert set(high_high["LAD22NM"]) <= {"Camden", "Westminster"}
