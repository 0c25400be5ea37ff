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

The model is spopt's :class:`spopt.locate.MCLP` (its variables, objective, site-count
constraint and ``solve``) and PuLP's bundled CBC solves it. Two things keep it fast (see
"Performance notes" in DESIGN.md): the instance is made small first (points no candidate
reaches are dropped, candidates reaching no point are dropped, and points reached by exactly
the same candidates are merged into one point carrying their summed need), and each coverage
constraint lists only the candidates in reach (:func:`build_mclp`). Neither changes the
optimum; the tests check it against a brute-force search and spopt's own dense build.

The greedy answer (repeatedly take the site adding the most uncovered need) is computed too:
it is what a person with a map would do, it is never worse than 63 % of the optimum, and the
gap between the two tells a board how much the optimisation adds.
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

from ..errors import InputError
from ..config import ANALYSIS_CRS

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
        ``(n, m)`` dense boolean coverage.
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
    for _ in range(min(k, cover.shape[1])):
        gain = uncovered @ cover
        if sites:
            gain[sites] = -1.0
        best = int(np.argmax(gain))  # first maximum -> earliest candidate wins ties
        if gain[best] <= 0:
            break
        sites.append(best)
        gains.append(float(gain[best]))
        uncovered[cover[:, best]] = 0.0
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


def solve_mclp(cover: np.ndarray, weights: np.ndarray, k: int, solver_name: str = "cbc",
               time_limit_s: float | None = 60.0) -> MclpAnswer:
    """Choose ``k`` sites maximising the need covered, with spopt's MCLP and a MILP solver.

    Parameters
    ----------
    cover
        ``(n, m)`` dense boolean coverage of (merged) demand points by candidates.
    weights
        ``n`` needs (> 0).
    k
        Most sites to choose; fewer when fewer already cover all the need they can reach.
    solver_name
        ``cbc`` or ``highs`` (:func:`pulp_solver`).
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
