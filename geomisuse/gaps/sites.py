"""Satellite outreach sites: where k new sessions would bring the most unmet need within a walk.

This is the **maximal covering location problem** (MCLP, Church & ReVelle 1974). With

* ``i`` a demand point (a resident sample point whose need is not yet met), ``a_i`` its need,
* ``j`` a candidate site, ``N_i`` the candidates within the walk radius of ``i``,
* ``y_j = 1`` when site ``j`` is chosen, ``x_i = 1`` when point ``i`` is covered,

choose sites to

    maximise    sum_i a_i x_i                      (need newly covered)
    subject to  x_i <= sum_{j in N_i} y_j           (covered only by a chosen site in reach)
                sum_j y_j <= k                      (at most k sites)
                x_i, y_j in {0, 1}

By default the model is written straight onto ``scipy.optimize.milp`` (HiGHS, shipped with
scipy): :func:`solve_mclp_milp`. ``solver = "cbc"`` or ``"highs"`` builds the same model as
spopt's :class:`spopt.locate.MCLP` (its variables, objective, site-count constraint and
``solve``) and solves it through PuLP; spopt and PuLP are then imported, and only then (they
pull in matplotlib and scikit-learn: ~0.7 s of every run otherwise). Two things keep it fast (see
"Performance notes" in DESIGN.md): the instance is made small first (points no candidate
reaches are dropped, candidates reaching no point are dropped, and points reached by exactly
the same candidates are merged into one point carrying their summed need), and each coverage
constraint lists only the candidates in reach (:func:`build_mclp`). Neither changes the
optimum; the tests check it against a brute-force search and spopt's own dense build.

The greedy answer (repeatedly take the site adding the most uncovered need) is computed too:
it is what a person with a map would do, it is never worse than 63 % of the optimum, and the
gap between the two tells a board how much the optimisation adds.

:func:`best_sites` decides how each k is answered. One site is found exactly by counting. A
model of up to :data:`EXACT_MAX_NONZEROS` goes to the solver; a larger one (a London-wide
study) is answered by the greedy sites improved by swaps (:func:`improve_by_swaps`), and
says so: HiGHS checks its time limit only between phases, and on the London-wide model single
solves given 5 s ran for over a minute and stopped with sites covering half of the greedy
answer's need. Whatever the path, the answer shown is never worse than the greedy one.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.spatial import cKDTree

from pyproj import Transformer

from ..config import ANALYSIS_CRS, MAP_CRS
from ..errors import InputError
from . import walking as access
from .network import WalkingNetwork, network_distances_within
from .places import PLACE_COLUMNS, describe_places, from_ward_centre
from .settings import GapSettings
from .walking import point_layer
from ..layers.postcodes import Postcodes
from ..publish.places import ward_centres

#: ``source`` values of candidate sites.
SOURCE_FILE = "candidate file"
SOURCE_PHARMACY = "pharmacy"
SOURCE_GRID = "grid"

#: Columns of a candidate-site table.
CANDIDATE_COLUMNS = ["name", "site_type", "source", "geometry"]


def grid_points_in(polygon: shapely.Geometry, spacing_m: float) -> np.ndarray:
    """Points of a regular grid (aligned to multiples of ``spacing_m``) inside a polygon.

    Parameters
    ----------
    polygon
        Polygon or MultiPolygon in EPSG:27700.
    spacing_m
        Grid spacing in metres.

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` coordinates, row by row from the south-west; the polygon's representative
        point when no grid point falls inside (a ward smaller than one grid cell).
    """
    minx, miny, maxx, maxy = polygon.bounds
    xs = np.arange(np.ceil(minx / spacing_m), np.floor(maxx / spacing_m) + 1) * spacing_m
    ys = np.arange(np.ceil(miny / spacing_m), np.floor(maxy / spacing_m) + 1) * spacing_m
    gx, gy = np.meshgrid(xs, ys)
    gx, gy = gx.ravel(), gy.ravel()
    inside = shapely.contains_xy(polygon, gx, gy) if len(gx) else np.zeros(0, dtype=bool)
    if not inside.any():
        point = polygon.representative_point()
        return np.array([[point.x, point.y]])
    return np.column_stack([gx[inside], gy[inside]])


def default_candidates(pharmacies_not_nsp: gpd.GeoDataFrame | None,
                       gap_wards: gpd.GeoDataFrame, spacing_m: float,
                       source: str = SOURCE_PHARMACY) -> gpd.GeoDataFrame:
    """The default candidate sites: pharmacies that are not needle exchanges, plus a grid.

    A pharmacy that does not yet run a needle exchange is the cheapest place to add one; the
    grid over the gap wards lets the model also suggest places no pharmacy covers (a
    community centre or a van stop near that grid point).

    Parameters
    ----------
    pharmacies_not_nsp
        Point layer (EPSG:27700) with a ``name`` column, or ``None``/empty.
    gap_wards
        Ward polygons (EPSG:27700) with ``ward_code`` and ``ward_name`` to lay the grid over
        (normally the outreach gaps).
    spacing_m
        Grid spacing in metres; ``0`` or less -> no grid. Every gap ward gets at least one
        grid point (its representative point when it is smaller than a grid cell).
    source
        ``source`` value given to the pharmacy rows.

    Returns
    -------
    geopandas.GeoDataFrame
        ``name``, ``site_type``, ``source`` (``pharmacy`` or ``grid``) and point geometry in
        EPSG:27700; pharmacies first (in their input order), then grid points by ward code.
    """
    parts = []
    if pharmacies_not_nsp is not None and len(pharmacies_not_nsp):
        ph = pharmacies_not_nsp.to_crs(ANALYSIS_CRS)
        names = ph["name"] if "name" in ph else pd.Series("pharmacy", index=ph.index)
        site_type = ph["site_type"] if "site_type" in ph else pd.Series("pharmacy", index=ph.index)
        parts.append(gpd.GeoDataFrame(
            {"name": names.astype(str).to_numpy(), "site_type": site_type.astype(str).to_numpy(),
             "source": source},
            geometry=ph.geometry.to_numpy(), crs=ANALYSIS_CRS))
    if spacing_m and spacing_m > 0 and len(gap_wards):
        rows = []
        for _, ward in gap_wards.to_crs(ANALYSIS_CRS).sort_values("ward_code").iterrows():
            for n, (x, y) in enumerate(grid_points_in(ward.geometry, spacing_m), start=1):
                rows.append({"name": f"{ward['ward_name']} grid point {n}",
                             "site_type": "grid point", "source": SOURCE_GRID,
                             "geometry": shapely.Point(x, y)})
        if rows:
            parts.append(gpd.GeoDataFrame(rows, geometry="geometry", crs=ANALYSIS_CRS))
    if not parts:
        return gpd.GeoDataFrame({c: [] for c in CANDIDATE_COLUMNS[:-1]},
                                geometry=gpd.GeoSeries([], crs=ANALYSIS_CRS), crs=ANALYSIS_CRS)
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry",
                            crs=ANALYSIS_CRS)


def coverage_matrix(demand_xy: np.ndarray, candidate_xy: np.ndarray,
                    radius_m: float) -> sparse.csr_matrix:
    """Which candidates reach which demand points within the walk radius.

    Parameters
    ----------
    demand_xy
        ``(n, 2)`` demand point coordinates (metres).
    candidate_xy
        ``(m, 2)`` candidate site coordinates (metres).
    radius_m
        Straight-line walk radius in metres.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n, m)`` boolean: ``[i, j]`` is true when site ``j`` is within ``radius_m`` of ``i``.
    """
    n, m = len(demand_xy), len(candidate_xy)
    if n == 0 or m == 0:
        return sparse.csr_matrix((n, m), dtype=bool)
    pairs = cKDTree(demand_xy).sparse_distance_matrix(
        cKDTree(candidate_xy), radius_m, output_type="ndarray")
    return sparse.csr_matrix((np.ones(len(pairs), dtype=bool), (pairs["i"], pairs["j"])),
                             shape=(n, m))


def merge_identical_demand(cover: sparse.csr_matrix, weights: np.ndarray,
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Merge demand points reached by exactly the same candidates; drop unreachable ones.

    Parameters
    ----------
    cover
        ``(n, m)`` boolean coverage (:func:`coverage_matrix`).
    weights
        ``n`` needs (>= 0).

    Returns
    -------
    tuple
        ``(patterns, merged_weights)``: a dense ``(g, m)`` boolean array with one row per
        distinct non-empty set of candidates (in order of first appearance), and the summed
        need of each row. Points with zero need are dropped as well.
    """
    cover = cover.tocsr()
    cover.sort_indices()
    groups: dict[bytes, int] = {}
    merged: list[float] = []
    rows: list[np.ndarray] = []
    for i in range(cover.shape[0]):
        cols = cover.indices[cover.indptr[i]:cover.indptr[i + 1]]
        if len(cols) == 0 or weights[i] <= 0:
            continue
        key = cols.tobytes()
        g = groups.get(key)
        if g is None:
            groups[key] = len(rows)
            rows.append(cols)
            merged.append(float(weights[i]))
        else:
            merged[g] += float(weights[i])
    patterns = np.zeros((len(rows), cover.shape[1]), dtype=bool)
    for g, cols in enumerate(rows):
        patterns[g, cols] = True
    return patterns, np.asarray(merged, dtype=float)


def covered_need(cover: np.ndarray, weights: np.ndarray, chosen: list[int] | np.ndarray) -> float:
    """Total need of the demand points reached by at least one chosen site.

    Parameters
    ----------
    cover
        ``(n, m)`` boolean coverage (dense or sparse).
    weights
        ``n`` needs.
    chosen
        Candidate positions.

    Returns
    -------
    float
        The covered need.
    """
    if len(chosen) == 0:
        return 0.0
    reached = np.asarray(cover[:, list(chosen)].sum(axis=1)).ravel() > 0
    return float(weights[reached].sum())


def greedy_sites(cover: np.ndarray, weights: np.ndarray, k: int) -> tuple[list[int], list[float]]:
    """The greedy answer: k times, take the site adding the most still-uncovered need.

    Parameters
    ----------
    cover
        ``(n, m)`` boolean coverage, dense or sparse.
    weights
        ``n`` needs.
    k
        Number of sites.

    Returns
    -------
    tuple
        ``(sites, gains)``: candidate positions in the order taken, and the need each newly
        covered. Ties go to the earlier candidate. Stops early when no site adds need.
    """
    uncovered = weights.astype(float).copy()
    sites: list[int] = []
    gains: list[float] = []
    # Sparse: a dense boolean matrix times a float vector is first copied to float64 whole
    # (20,000 points x 6,000 candidates: 1 GB).
    reach = sparse.csc_matrix(cover, dtype=np.float64)
    for _ in range(min(k, cover.shape[1])):
        gain = reach.T @ uncovered
        if sites:
            gain[sites] = -1.0
        best = int(np.argmax(gain))  # first maximum -> earliest candidate wins ties
        if gain[best] <= 0:
            break
        sites.append(best)
        gains.append(float(gain[best]))
        uncovered[reach[:, best].indices] = 0.0
    return sites, gains


def order_by_contribution(cover: np.ndarray, weights: np.ndarray,
                          sites: list[int]) -> tuple[list[int], list[float]]:
    """Rank chosen sites: first the one covering most need, then most of what remains ...

    Parameters
    ----------
    cover
        ``(n, m)`` dense boolean coverage.
    weights
        ``n`` needs.
    sites
        Chosen candidate positions.

    Returns
    -------
    tuple
        ``(sites, gains)`` in rank order with the need each adds to those ranked above it;
        the gains sum to the need the set covers. Sites that add nothing are dropped.
    """
    if not sites:
        return [], []
    order, gains = greedy_sites(cover[:, sites], weights, len(sites))
    # A site adding nothing beyond the others is left out (greedy_sites stops before it).
    return [int(sites[p]) for p in order], gains


def improve_by_swaps(cover: np.ndarray | sparse.spmatrix, weights: np.ndarray,
                     sites: list[int], max_swaps: int = 100) -> list[int]:
    """Improve a set of sites by swapping one chosen site for one other until no swap helps.

    The vertex substitution of Teitz and Bart (1968), applied to the maximal covering problem:
    each round takes the single swap (one site out, one candidate in) that adds the most
    covered need, and stops when none adds any. The need covered never falls.

    Parameters
    ----------
    cover
        ``(n, m)`` boolean coverage, dense or sparse.
    weights
        ``n`` needs.
    sites
        Starting candidate positions (the greedy answer).
    max_swaps
        Most swaps made.

    Returns
    -------
    list[int]
        Candidate positions (the starting order, swapped sites in their place). Ties go to the
        earlier candidate, so the answer is deterministic.
    """
    reach = sparse.csc_matrix(cover, dtype=np.float64)
    weights = np.asarray(weights, dtype=float)
    sites = list(sites)
    if not sites or len(sites) >= reach.shape[1]:
        return sites

    def rows(j: int) -> np.ndarray:
        return reach.indices[reach.indptr[j]:reach.indptr[j + 1]]

    times_covered = np.zeros(reach.shape[0], dtype=np.int64)
    for j in sites:
        times_covered[rows(j)] += 1
    # Float noise must not count as a gain, or two equal swaps could alternate for ever.
    tolerance = 1e-9 * float(weights.sum())
    for _ in range(max_swaps):
        best_gain, best = tolerance, None
        for position, out in enumerate(sites):
            alone = rows(out)[times_covered[rows(out)] == 1]
            open_need = np.where(times_covered == 0, weights, 0.0)
            open_need[alone] = weights[alone]
            gain = reach.T @ open_need - float(weights[alone].sum())
            gain[sites] = -np.inf
            into = int(np.argmax(gain))
            if gain[into] > best_gain:
                best_gain, best = float(gain[into]), (position, into)
        if best is None:
            break
        position, into = best
        times_covered[rows(sites[position])] -= 1
        times_covered[rows(into)] += 1
        sites[position] = into
    return sites


#: Status of an answer proven to cover the most need possible.
OPTIMAL = "Optimal"
#: Largest covering model (coverage nonzeros of the merged demand points, candidates in reach)
#: given to the exact solver. Measured 2026-12-01: borough models (Tower Hamlets, 18,036
#: nonzeros) solve in 0.3-2.3 s a k; the London-wide model (32,354 points x 3,126 candidates,
#: 625,155 nonzeros) overran a 5 s time limit to 67-73 s a k (HiGHS checks the limit only
#: between phases) and its root LP alone took 25 s.
EXACT_MAX_NONZEROS = 200_000


def best_sites(cover: np.ndarray | sparse.spmatrix, weights: np.ndarray, k: int,
               solver_name: str = "milp", time_limit_s: float | None = 60.0,
               exact: bool = True) -> MclpAnswer:
    """The best ``k`` sites that can be found in proportionate time, and how sure that is.

    * ``k = 1``: the single candidate covering most need, found by counting (exact).
    * A model of up to :data:`EXACT_MAX_NONZEROS`: :func:`solve_mclp`. When the solver stops
      at its time limit, the better of its answer and the greedy one improved by swaps.
    * A larger model: the greedy answer improved by swaps (:func:`improve_by_swaps`).

    Parameters
    ----------
    cover
        ``(n, m)`` boolean coverage of (merged) demand points by candidates, dense or sparse
        (a ``csc`` float matrix is used as it is, so callers solving many k convert once).
    weights
        ``n`` needs (> 0).
    k
        Most sites to choose.
    solver_name, time_limit_s
        As :func:`solve_mclp`.
    exact
        ``False``: do not call the solver (no time is left for it).

    Returns
    -------
    MclpAnswer
        ``status`` is :data:`OPTIMAL` only for a proven optimum; otherwise it says how the
        sites were found. The need covered is never below the greedy answer's.
    """
    start = time.perf_counter()
    reach = sparse.csc_matrix(cover, dtype=np.float64)
    nonzeros = reach.nnz
    if nonzeros == 0:
        return MclpAnswer([], [], 0.0, "nothing to cover", time.perf_counter() - start)
    if k == 1:  # the greedy first pick is the best single site (ties: the earliest candidate)
        sites, gains = greedy_sites(reach, weights, 1)
        return MclpAnswer(sites, gains, float(sum(gains)), OPTIMAL, time.perf_counter() - start)
    solved = None
    exact = exact and nonzeros <= EXACT_MAX_NONZEROS
    if exact:
        dense = cover if isinstance(cover, np.ndarray) else reach.toarray() > 0
        try:
            solved = solve_mclp(dense, weights, k, solver_name, time_limit_s)
        except RuntimeError:  # no answer at all within the time limit
            solved = None
        if solved is not None and solved.status == OPTIMAL:
            return solved
    greedy, _ = greedy_sites(reach, weights, k)
    sites, gains = order_by_contribution(reach, weights, improve_by_swaps(reach, weights, greedy))
    if solved is not None and solved.objective > sum(gains) + 1e-9:
        sites, gains = solved.sites, solved.gains
    if exact:
        status = "best found within the time limit (not proven optimal)"
    elif nonzeros <= EXACT_MAX_NONZEROS:
        status = "greedy improved by swaps (not proven optimal): no time was left for the solver"
    else:
        status = (f"greedy improved by swaps (not proven optimal): the model ({cover.shape[0]:,} "
                  f"points x {cover.shape[1]:,} candidates) is too large to solve exactly")
    return MclpAnswer(sites, gains, covered_need(reach, weights, sites), status,
                      time.perf_counter() - start)


def pulp_solver(name: str = "cbc", time_limit_s: float | None = None):
    """A PuLP solver that works on a fresh ``pip install``.

    Parameters
    ----------
    name
        ``cbc`` (PuLP's bundled CBC binary; PuLP < 4) or ``highs`` (needs ``highspy``).
    time_limit_s
        Give up after this many seconds (the best answer found is then not proven optimal).

    Returns
    -------
    pulp.LpSolver
        A silent solver.

    Raises
    ------
    InputError
        When the solver is not installed.
    """
    import pulp

    if name == "cbc":
        with warnings.catch_warnings():
            # PuLP 3 announces that PuLP 4 drops the bundled CBC; pyproject pins pulp < 4.
            warnings.simplefilter("ignore", DeprecationWarning)
            solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s)
        hint = "reinstall PuLP below version 4 (pip install 'pulp>=2.8,<4'), which bundles CBC"
    elif name == "highs":
        solver = pulp.HiGHS(msg=False, timeLimit=time_limit_s)
        hint = "pip install highspy"
    else:
        raise InputError(f"[gaps] solver must be 'cbc' or 'highs', not '{name}'")
    if not solver.available():
        raise InputError(f"the {name.upper()} solver for satellite sites is not available: {hint}")
    return solver


@dataclass
class MclpAnswer:
    """An answer to the maximal covering problem.

    Attributes
    ----------
    sites : list[int]
        Chosen candidate positions, ranked by :func:`order_by_contribution`.
    gains : list[float]
        Need each site adds to the sites ranked above it.
    objective : float
        Need covered by all the sites.
    status : str
        PuLP status (``Optimal`` ...) or ``nothing to cover``.
    seconds : float
        Wall time of building and solving the model.
    """

    sites: list[int]
    gains: list[float]
    objective: float
    status: str
    seconds: float


def solve_mclp(cover: np.ndarray, weights: np.ndarray, k: int, solver_name: str = "milp",
               time_limit_s: float | None = 60.0) -> MclpAnswer:
    """Choose ``k`` sites maximising the need covered, with a MILP solver.

    Parameters
    ----------
    cover
        ``(n, m)`` dense boolean coverage of (merged) demand points by candidates.
    weights
        ``n`` needs (> 0).
    k
        Most sites to choose; fewer when fewer already cover all the need they can reach.
    solver_name
        ``milp`` (:func:`solve_mclp_milp`, scipy's HiGHS), or ``cbc`` or ``highs`` through
        spopt and PuLP (:func:`pulp_solver`).
    time_limit_s
        Solver time limit in seconds.

    Returns
    -------
    MclpAnswer
        The sites (positions into ``cover``'s columns) in rank order and their need.
    """
    start = time.perf_counter()
    useful = np.flatnonzero(cover.any(axis=0)) if cover.size else np.empty(0, dtype=np.int64)
    if len(useful) == 0:
        return MclpAnswer([], [], 0.0, "nothing to cover", time.perf_counter() - start)
    if solver_name == "milp":
        return solve_mclp_milp(cover, weights, k, time_limit_s)
    import pulp

    with warnings.catch_warnings():
        # spopt builds variables the way PuLP 3 deprecates for PuLP 4: one warning per variable.
        warnings.simplefilter("ignore", DeprecationWarning)
        model = build_mclp(cover[:, useful], weights, k)
        model = model.solve(pulp_solver(solver_name, time_limit_s), results=False)
    status = pulp.LpStatus[model.problem.status]
    if getattr(model.problem, "sol_status", None) == pulp.LpSolutionIntegerFeasible:
        status = "Feasible (time limit reached; not proven optimal)"
    chosen = [int(useful[j]) for j, var in enumerate(model.fac_vars)
              if var.value() is not None and var.value() > 0.5]
    sites, gains = order_by_contribution(cover, weights, chosen)
    return MclpAnswer(sites, gains, covered_need(cover, weights, sites), status,
                      time.perf_counter() - start)


def solve_mclp_milp(cover: np.ndarray, weights: np.ndarray, k: int,
                    time_limit_s: float | None = 60.0) -> MclpAnswer:
    """The model of :func:`build_mclp`, solved by ``scipy.optimize.milp`` (HiGHS).

    Variables are the ``m`` sites ``y_j`` (binary) then the ``n`` points ``x_i`` (in [0, 1]). The
    objective (minimised) is ``-sum_i a_i x_i + sum_j eps (1 + j/m) y_j``, the same need
    covered and the same tie-break as :func:`build_mclp`; the constraints are
    ``x_i - sum_{j in N_i} y_j <= 0`` (one sparse row per point) and ``sum_j y_j <= k``.

    Parameters
    ----------
    cover
        ``(n, m)`` dense boolean coverage (merged demand points x candidates).
    weights
        ``n`` needs (> 0).
    k
        Most sites to choose.
    time_limit_s
        Solver time limit in seconds.

    Returns
    -------
    MclpAnswer
        As :func:`solve_mclp`; ``status`` is ``Optimal``, or says the time limit was reached.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    start = time.perf_counter()
    useful = np.flatnonzero(cover.any(axis=0))
    reach = sparse.csr_matrix(cover[:, useful], dtype=float)
    n, m = reach.shape
    weights = np.asarray(weights, dtype=float)
    eps = 1e-3 * float(weights[weights > 0].min()) / (2 * k) if (weights > 0).any() else 0.0
    objective = np.concatenate([eps * (1 + np.arange(m) / m), -weights])
    coverage = sparse.hstack([-reach, sparse.identity(n, format="csr")], format="csr")
    site_count = sparse.csr_matrix(np.concatenate([np.ones(m), np.zeros(n)])[None, :])
    constraints = [LinearConstraint(coverage, -np.inf, 0.0), LinearConstraint(site_count, -np.inf, k)]
    options = {"time_limit": time_limit_s} if time_limit_s else {}
    # Only the sites need to be integer: with them fixed, each x_i = min(1, sites in reach) at
    # the optimum anyway, and HiGHS branches on m variables instead of m + n.
    integrality = np.concatenate([np.ones(m), np.zeros(n)])
    result = milp(objective, constraints=constraints, integrality=integrality, bounds=Bounds(0, 1),
                  options=options)
    if result.x is None:
        raise RuntimeError(f"scipy.optimize.milp: {result.message}")
    status = OPTIMAL if result.status == 0 else "Feasible (time limit reached; not proven optimal)"
    chosen = [int(useful[j]) for j in np.flatnonzero(result.x[:m] > 0.5)]
    sites, gains = order_by_contribution(cover, weights, chosen)
    return MclpAnswer(sites, gains, covered_need(cover, weights, sites), status, time.perf_counter() - start)


def build_mclp(cover: np.ndarray, weights: np.ndarray, k: int, name: str = "satellite_sites"):
    """spopt's MCLP model, with sparse coverage constraints and a deterministic tie-break.

    ``spopt.locate.MCLP.from_cost_matrix`` writes every constraint with a term for every
    candidate, zero or not: 4,000 demand points x 700 candidates is 2.8 million PuLP terms
    and half a minute of Python before the solver starts. The model below uses the same spopt
    variables and ``solve`` but writes each constraint ``sum_{j in N_i} y_j >= x_i`` over the
    candidates in reach only (~25 terms). Two deliberate differences:

    * at most k sites (``sum_j y_j <= k``), so that no site is opened that adds nothing;
    * a tie-break: each site costs ``eps * (1 + j / m)``, with ``eps`` so small that all k
      sites together cost less than the smallest need of any point. The need covered stays
      the true maximum; among equally good answers the solver takes the one with fewest
      sites, then the earliest candidates (candidate-file or pharmacy rows before grid points).

    Parameters
    ----------
    cover
        ``(n, m)`` dense boolean coverage.
    weights
        ``n`` needs (> 0).
    k
        Number of sites.
    name
        Problem name.

    Returns
    -------
    spopt.locate.MCLP
        Ready to ``solve(solver)``.
    """
    import pulp
    from spopt.locate import MCLP
    from spopt.locate.base import FacilityModelBuilder

    n, m = cover.shape
    model = MCLP(name, pulp.LpProblem(name, pulp.LpMaximize))
    FacilityModelBuilder.add_facility_integer_variable(model, range(m), "x[{i}]")
    FacilityModelBuilder.add_client_integer_variable(model, range(n), "y[{i}]")
    sites, points = model.fac_vars, model.cli_vars
    model.aij = cover.astype(np.int8)
    eps = 1e-3 * float(weights[weights > 0].min()) / (2 * k) if (weights > 0).any() else 0.0
    model.problem += (
        pulp.lpSum(float(w) * points[i] for i, w in enumerate(weights))
        - pulp.lpSum(eps * (1 + j / m) * sites[j] for j in range(m)), "need_covered")
    for i in range(n):
        model.problem += pulp.lpSum(sites[j] for j in np.flatnonzero(cover[i])) >= points[i]
    model.problem += pulp.lpSum(sites) <= k, "at_most_k_sites"
    return model


SATELLITE_COLUMNS = [
    "rank", "name", "source", "site_type", "easting", "northing", "longitude", "latitude",
    "ward_code", "ward_name", "need_covered", "share_of_gap_need_covered",
    "cumulative_share_of_gap_need", "residents_newly_within_walk", "in_greedy_answer",
    # The one metric sites are ranked and described by: the share of the unmet need the sites
    # are asked to serve (all wards' by default, the gap wards' with satellite_demand =
    # "gap_wards") that each site adds to those ranked above it.
    "share_of_unmet_need_covered", "cumulative_share_of_unmet_need",
    *PLACE_COLUMNS,
]

#: Columns of the "coverage vs number of sites" table (k = 1 .. :data:`COVERAGE_MAX_K`).
COVERAGE_COLUMNS = ["sites", "need_covered", "share_of_unmet_need", "added_by_last_site",
                    "greedy_need_covered", "sites_chosen", "method"]
COVERAGE_MAX_K = 10
#: Longest a single k of the coverage table may take to solve (seconds), and all of them
#: together: ten solves must not cost a study ten times the satellite solve itself (three
#: boroughs, 69,992 nonzeros: every k from 4 on ran to a 5 s limit).
COVERAGE_SOLVE_LIMIT_S = 5.0
COVERAGE_TABLE_LIMIT_S = 10.0


_TO_LONLAT = Transformer.from_crs(ANALYSIS_CRS, MAP_CRS, always_xy=True)


def _candidate_table(wards: gpd.GeoDataFrame, candidate_sites: gpd.GeoDataFrame | None,
                     is_gap: np.ndarray, settings: GapSettings,
                     candidates_from_file: bool,
                     network: WalkingNetwork | None = None) -> gpd.GeoDataFrame:
    """Candidates as given, plus the grid over gap wards when that applies; with a network,
    grid points move to the nearest point of the nearest street (a place one can stand)."""
    add_grid = settings.candidate_grid if settings.candidate_grid is not None \
        else not candidates_from_file
    given = point_layer(candidate_sites, "candidate sites")
    source = SOURCE_FILE if candidates_from_file else SOURCE_PHARMACY
    if given is not None and len(given):
        if "site_type" not in given:
            given = given.assign(site_type=source)
        if "name" not in given:
            given = given.assign(name=[f"site {i + 1}" for i in range(len(given))])
        given = given[~(given.geometry.is_empty | given.geometry.isna())]
    gap_wards = wards[is_gap] if add_grid else wards.iloc[0:0]
    table = default_candidates(given, gap_wards[["ward_code", "ward_name", "geometry"]],
                               settings.grid_spacing_m if add_grid else 0.0, source=source)
    grid = (table["source"] == SOURCE_GRID).to_numpy()
    if network is not None and grid.any():
        snapped = network.snap(access.service_xy(table[grid]))
        geometry = table.geometry.to_numpy().copy()
        geometry[grid] = shapely.points(snapped.xy)
        table = table.set_geometry(gpd.GeoSeries(geometry, index=table.index, crs=ANALYSIS_CRS))
    return table


def choose_satellites(wards: gpd.GeoDataFrame, sample: access.ResidentSample,
                      need_count: np.ndarray, served: np.ndarray, is_gap: np.ndarray,
                      candidate_sites: gpd.GeoDataFrame | None, settings: GapSettings,
                      candidates_from_file: bool, timings: dict[str, float],
                      network: WalkingNetwork | None = None, postcodes: Postcodes | None = None,
                      ) -> tuple[pd.DataFrame, dict, list[str]]:
    """Choose ``settings.satellites`` sites covering most unmet need (MCLP) and the greedy answer.

    The need of a ward (its need-measure count) is spread over its resident sample points by
    their weights. A point's need is *unmet* when the point is not already served: under
    ``each_kind`` it is not within the walk of both a treatment service and a needle
    exchange; under ``any_service``, of either. Only the unmet need of the demand wards
    (``satellite_demand``) counts.

    Parameters
    ----------
    wards
        The ward table.
    sample
        Resident sample points.
    need_count
        Need-measure count per ward (offences), NaN as 0.
    served
        Per sample point, is it already served?
    is_gap
        Per ward, is it an outreach gap?
    candidate_sites, candidates_from_file
        See :func:`find_gaps`.
    settings
        Gap settings.
    timings
        Filled with ``mclp`` and ``greedy`` wall times (seconds).
    network
        The walking graph: coverage is then a network walk within the threshold and grid
        candidates are snapped to the streets; ``None``: straight-line radius.
    postcodes
        Postcode points naming each site's nearest postcode, or ``None``.

    Returns
    -------
    tuple
        ``(satellites table, manifest section, warnings)``; the section's ``coverage_table``
        is the "coverage vs number of sites" table (:data:`COVERAGE_COLUMNS`).
    """
    section: dict = {"k": settings.satellites, "demand": settings.satellite_demand}
    if settings.satellites == 0:
        return _no_sites(section, "satellites = 0")
    unmet, gap_unmet = _unmet_need(sample, need_count, served, is_gap, settings.satellite_demand)
    section["unmet_need"] = round(float(unmet.sum()), 2)
    section["gap_need_unmet"] = round(float(gap_unmet.sum()), 2)
    if not is_gap.any() and settings.satellite_demand == "gap_wards":
        return _no_sites(section, "no outreach gaps")

    candidates = _candidate_table(wards, candidate_sites, is_gap, settings, candidates_from_file,
                                  network)
    section["candidates"] = {str(k): int(v) for k, v in
                             candidates["source"].value_counts().sort_index().items()}
    if unmet.sum() <= 0 or not len(candidates):
        return _no_sites(section, "no unmet need" if len(candidates) else "no candidate sites",
                         warn=True)

    solution, warnings = _solve_sites(sample.xy, unmet, candidates, settings, timings, network)
    section.update(_solution_section(solution, candidates, settings, timings))
    table = _site_rows(wards, candidates, solution, unmet, gap_unmet, sample, network, postcodes)
    start = time.perf_counter()
    section["coverage_table"] = coverage_by_site_count(
        solution.patterns, solution.merged_need, candidates, float(unmet.sum()), settings,
        solved={settings.satellites: solution.answer})
    timings["coverage_table"] = time.perf_counter() - start
    return table, section, warnings


def _no_sites(section: dict, reason: str, warn: bool = False,
              ) -> tuple[pd.DataFrame, dict, list[str]]:
    """The empty answer of :func:`choose_satellites`, with ``reason`` as ``skipped``."""
    section["skipped"] = reason
    warnings = [f"gaps: no satellite sites suggested ({reason})"] if warn else []
    return pd.DataFrame({c: pd.Series(dtype=object) for c in SATELLITE_COLUMNS}), section, warnings


def _unmet_need(sample: access.ResidentSample, need_count: np.ndarray, served: np.ndarray,
                is_gap: np.ndarray, demand: str) -> tuple[np.ndarray, np.ndarray]:
    """Per sample point, the unmet need of the demand wards and of the gap wards.

    A point's need is its ward's count times its weight; it is unmet where the point is not
    already served. Under ``demand = "gap_wards"`` the two arrays are the same.
    """
    point_need = need_count[sample.ward] * sample.weight
    gap_unmet = np.where(served | ~is_gap[sample.ward], 0.0, point_need)
    if demand == "gap_wards":
        return gap_unmet, gap_unmet
    return np.where(served, 0.0, point_need), gap_unmet


@dataclass
class SiteSolution:
    """The chosen satellite sites and how they were found.

    Attributes
    ----------
    keep : numpy.ndarray
        Per sample point, does it have unmet need (is it a demand point)?
    cover : scipy.sparse.csr_matrix
        Demand point x candidate: is the point within the walk of the candidate?
    merged_points : int
        Demand points left after merging those with identical coverage.
    candidates_in_reach : int
        Candidates that reach any demand point.
    answer : MclpAnswer
        The sites shown (:func:`best_sites`): ``answer.status`` says whether they are proven
        optimal.
    greedy : list[int]
        The greedy answer (candidate positions in pick order).
    greedy_need : float
        Unmet need the greedy answer covers.
    patterns : scipy.sparse.csc_matrix
        The merged demand points' coverage (points x candidates), as the solvers and the
        coverage table read it (converted once: a London-wide model is 100 M cells dense).
    merged_need : numpy.ndarray
        The merged demand points' need.
    """

    keep: np.ndarray
    cover: object
    merged_points: int
    candidates_in_reach: int
    answer: MclpAnswer
    greedy: list[int]
    greedy_need: float
    patterns: sparse.csc_matrix
    merged_need: np.ndarray

    @property
    def chosen(self) -> list[int]:
        """The sites shown, in rank order."""
        return self.answer.sites


def _solve_sites(xy: np.ndarray, unmet: np.ndarray, candidates: gpd.GeoDataFrame,
                 settings: GapSettings, timings: dict[str, float],
                 network: WalkingNetwork | None = None) -> tuple[SiteSolution, list[str]]:
    """Solve the MCLP over the points with unmet need, and the greedy answer beside it.

    Fills ``timings`` with ``spopt_import``, ``mclp`` and ``greedy`` (seconds).
    """
    warnings: list[str] = []
    start = time.perf_counter()
    if settings.solver != "milp":
        import spopt.locate  # noqa: F401  (a one-off ~2 s import; timed apart from the solve)
    timings["spopt_import"] = time.perf_counter() - start

    start = time.perf_counter()
    keep = unmet > 0
    if network is not None:
        limit = settings.walk_network_m
        cover = network_distances_within(network, network.snap(xy[keep]),
                                         network.snap(access.service_xy(candidates)), limit)
        cover = sparse.csr_matrix(cover, dtype=bool)
    else:
        cover = coverage_matrix(xy[keep], access.service_xy(candidates), settings.walk_radius_m)
    dense, merged = merge_identical_demand(cover, unmet[keep])
    in_reach = int(dense.any(axis=0).sum()) if dense.size else 0
    patterns = sparse.csc_matrix(dense, dtype=np.float64)
    answer = best_sites(patterns, merged, settings.satellites, settings.solver,
                        settings.solver_time_limit_s)
    if answer.status not in (OPTIMAL, "nothing to cover"):
        warnings.append(f"gaps: the satellite sites are the {answer.status}")
    timings["mclp"] = time.perf_counter() - start

    start = time.perf_counter()
    greedy, greedy_gains = greedy_sites(patterns, merged, settings.satellites)
    timings["greedy"] = time.perf_counter() - start

    solution = SiteSolution(keep, cover, len(merged), in_reach, answer, greedy,
                            float(sum(greedy_gains)), patterns, merged)
    if len(solution.chosen) < settings.satellites:
        warnings.append(f"gaps: {len(solution.chosen)} satellite site(s) reach all the unmet "
                        f"need that any candidate site can reach; {settings.satellites} were "
                        "asked for")
    return solution, warnings


def _solution_section(solution: SiteSolution, candidates: gpd.GeoDataFrame,
                      settings: GapSettings, timings: dict[str, float]) -> dict:
    """The manifest's account of the solve: sizes, solver, optimum vs greedy, times."""
    answer = solution.answer
    if settings.solver == "milp":
        import scipy

        solver = f"HiGHS via scipy.optimize.milp (scipy {scipy.__version__})"
    else:
        import pulp
        import spopt

        solver = f"{settings.solver.upper()} via PuLP {pulp.__version__}, spopt {spopt.__version__}"
    return {
        "demand_points": int(solution.keep.sum()),
        "merged_demand_points": solution.merged_points,
        "candidates_in_reach": solution.candidates_in_reach,
        "solver": solver,
        "status": answer.status,
        "solve_seconds": round(timings["mclp"], 3),
        "need_covered": round(answer.objective, 2),
        "optimal_need_covered": round(answer.objective, 2) if answer.status == OPTIMAL else None,
        "greedy_need_covered": round(solution.greedy_need, 2),
        "greedy_sites": [str(candidates["name"].iloc[j]) for j in solution.greedy],
        "greedy_seconds": round(timings["greedy"], 4),
        "need_units": "need-measure offences attributed to residents by their share of the ward",
    }


def _site_rows(wards: gpd.GeoDataFrame, candidates: gpd.GeoDataFrame, solution: SiteSolution,
               unmet: np.ndarray, gap_unmet: np.ndarray, sample: access.ResidentSample,
               network: WalkingNetwork | None = None,
               postcodes: Postcodes | None = None) -> pd.DataFrame:
    """One row per chosen site, with the need each adds to the sites ranked above it."""
    keep = solution.keep
    unmet, gap_unmet = unmet[keep], gap_unmet[keep]
    population = pd.to_numeric(wards["population"], errors="coerce").fillna(0).to_numpy(float)
    residents = (population[sample.ward] * sample.weight)[keep]
    gap_total = float(gap_unmet.sum())
    total = float(unmet.sum())
    covered = np.zeros(solution.cover.shape[0], dtype=bool)
    chosen, greedy = solution.chosen, set(solution.greedy)
    site_ward = access.assign_points_to_wards(wards, candidates.iloc[chosen])
    site_xy = access.service_xy(candidates.iloc[chosen])
    # A grid point's name says nothing of where it is: without a street or postcode, say where
    # it is from its ward's centre (the centre the briefings measure distances from).
    grid = np.flatnonzero((site_ward >= 0) & (candidates["source"].iloc[chosen].to_numpy() == SOURCE_GRID))
    fallback = np.full(len(chosen), "", dtype=object)
    if len(grid):
        centres = shapely.get_coordinates(ward_centres(wards.geometry.iloc[site_ward[grid]]).to_numpy())
        fallback[grid] = from_ward_centre(site_xy[grid], centres,
                                          wards["ward_name"].iloc[site_ward[grid]].astype(str).tolist())
    places = describe_places(site_xy, network, postcodes, fallback.tolist())
    rows = []
    cumulative = cumulative_all = 0.0
    for rank, (j, w) in enumerate(zip(chosen, site_ward), start=1):
        reach = solution.cover[:, j].toarray().ravel() & ~covered
        covered |= reach
        gap_gain = float(gap_unmet[reach].sum())
        gain = float(unmet[reach].sum())
        cumulative += gap_gain
        cumulative_all += gain
        point = candidates.geometry.iloc[j]
        lon, lat = _TO_LONLAT.transform(point.x, point.y)
        rows.append({
            "rank": rank, "name": str(candidates["name"].iloc[j]),
            "source": str(candidates["source"].iloc[j]),
            "site_type": str(candidates["site_type"].iloc[j]),
            "easting": round(point.x, 1), "northing": round(point.y, 1),
            "longitude": round(lon, 6), "latitude": round(lat, 6),
            "ward_code": str(wards["ward_code"].iloc[w]) if w >= 0 else "",
            "ward_name": str(wards["ward_name"].iloc[w]) if w >= 0 else "outside the study area",
            "need_covered": round(float(unmet[reach].sum()), 2),
            "share_of_gap_need_covered": round(gap_gain / gap_total, 4) if gap_total else np.nan,
            "cumulative_share_of_gap_need": round(cumulative / gap_total, 4) if gap_total else np.nan,
            "residents_newly_within_walk": int(round(float(residents[reach].sum()))),
            "in_greedy_answer": j in greedy,
            "share_of_unmet_need_covered": round(gain / total, 4) if total else np.nan,
            "cumulative_share_of_unmet_need": round(cumulative_all / total, 4) if total else np.nan,
            **places.iloc[rank - 1].to_dict(),
        })
    return pd.DataFrame(rows, columns=SATELLITE_COLUMNS)


def coverage_by_site_count(patterns: np.ndarray | sparse.spmatrix, need: np.ndarray,
                           candidates: gpd.GeoDataFrame, unmet_total: float,
                           settings: GapSettings, max_k: int = COVERAGE_MAX_K,
                           solved: dict[int, MclpAnswer] | None = None) -> pd.DataFrame:
    """What each extra site adds: the best need covered with k = 1 .. ``max_k`` sites.

    Each k is answered on its own by :func:`best_sites` (the best 3 sites need not include the
    best 2), with the greedy answer beside it; a k the solver cannot prove optimal within
    :data:`COVERAGE_SOLVE_LIMIT_S` shows the best answer found, and its ``method`` says how it
    was found.

    Parameters
    ----------
    patterns, need
        Merged demand points' coverage (points x candidates; dense, or the sparse matrix of
        :attr:`SiteSolution.patterns`) and need (:func:`merge_identical_demand`).
    candidates
        The candidate table (for the chosen sites' names).
    unmet_total
        All the unmet need (the share's denominator).
    settings
        Gap settings (solver and its time limit).
    max_k
        Largest number of sites.
    solved
        Answers already found, by k (the run's own k), so they are not solved again.

    Returns
    -------
    pandas.DataFrame
        :data:`COVERAGE_COLUMNS`, one row per k; rows stop once no extra site adds need.
        ``method`` is ``optimal``, ``best found within the time limit`` or ``greedy improved
        by swaps``.
    """
    rows = []
    reach = sparse.csc_matrix(patterns, dtype=np.float64)
    _, gains = greedy_sites(reach, need, max_k)
    limit = min(settings.solver_time_limit_s or COVERAGE_SOLVE_LIMIT_S, COVERAGE_SOLVE_LIMIT_S)
    deadline = time.perf_counter() + COVERAGE_TABLE_LIMIT_S
    previous = 0.0
    for k in range(1, max_k + 1):
        answer = (solved or {}).get(k)
        if answer is None:
            # Past the table's time budget the solver is given no more time: best_sites then
            # answers with the greedy sites improved by swaps.
            left = deadline - time.perf_counter()
            answer = best_sites(reach, need, k, settings.solver, min(limit, left), exact=left > 0.5)
        if k > 1 and answer.objective <= previous + 1e-9:
            break
        rows.append({
            "sites": k, "need_covered": round(answer.objective, 2),
            "share_of_unmet_need": round(answer.objective / unmet_total, 4) if unmet_total else np.nan,
            "added_by_last_site": round(answer.objective - previous, 2),
            "greedy_need_covered": round(float(sum(gains[:k])), 2),
            "sites_chosen": "; ".join(str(candidates["name"].iloc[j]) for j in answer.sites),
            "method": "optimal" if answer.status == OPTIMAL else answer.status.split(" (")[0],
        })
        previous = answer.objective
    return pd.DataFrame(rows, columns=COVERAGE_COLUMNS)

