"""Walking access from each ward's residents to treatment services and needle exchanges.

A ward is not a point: its residents live all over it. So access is measured from
*resident sample points*, each carrying a share of the ward's residents:

* **area-weighted** (no finer population layer): points from a seeded, scrambled Halton
  sequence over the ward's bounding box, kept when they fall inside the ward. Halton points
  fill the area far more evenly than plain random points, so 100 of them estimate a
  "share of residents within a walk" to within about two percentage points, where random
  points would wander by seven. Every point carries the same weight.
* **population-weighted** (a ``residents`` layer of LSOA/output-area points or polygons
  with a ``residents`` count): points are the layer's own points, weighted by their count;
  polygons are cut along ward boundaries, each piece's residents apportioned by its area
  (areal interpolation) and spread over Halton points inside the piece. A ward with no
  residents in the layer falls back to area weighting, and the fallback is reported.

Distances are straight lines in EPSG:27700 metres from each sample point to the nearest
service (a KD-tree query). Walking minutes assume a street route ``detour_factor`` times the
straight line, walked at ``walk_speed_kmh``. The walk threshold therefore becomes a
straight-line radius: ``radius_m = threshold_min * speed_m_per_min / detour_factor``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree
from scipy.stats import qmc

from ..config import ANALYSIS_CRS, walk_speed_m_per_min
from ..errors import InputError
from ..layers.ward_join import first_ward_containing

if TYPE_CHECKING:
    from .network import NetworkAccess, WalkingNetwork
    from .settings import GapSettings

#: Column of a finer population layer that holds its resident counts.
#: Service kinds: key used in column names, words used in reasons.
KINDS = {"treatment": "treatment service", "needle_exchange": "needle exchange"}

RESIDENTS_COLUMN = "residents"

#: How the sample points of a ward were placed (the ``basis`` of :class:`ResidentSample`).
BASIS_AREA = "area"
BASIS_POINTS = "resident points"
BASIS_POLYGONS = "resident polygons"

# Halton draws per attempt, as a multiple of the points still wanted; a ward fills on the
# first attempt unless it covers under ~1/4 of its bounding box (long thin wards).
_OVERSAMPLE = 4
_MAX_ATTEMPTS = 12


@dataclass
class ResidentSample:
    """Points standing for the residents of each ward.

    Attributes
    ----------
    ward : numpy.ndarray
        Position (0-based, in the order of the ward table) of each point's ward.
    xy : numpy.ndarray
        ``(n, 2)`` coordinates in EPSG:27700 metres.
    weight : numpy.ndarray
        Share of its ward's residents that each point stands for; sums to 1 in every ward.
    basis : list[str]
        Per ward, how its points were placed (:data:`BASIS_AREA`, :data:`BASIS_POINTS`,
        :data:`BASIS_POLYGONS`).
    fallback_wards : list[int]
        Positions of wards that had no residents in the finer layer and were area-sampled.
    residents_outside : float
        Residents of the finer layer that fall outside every ward (not used).
    """

    ward: np.ndarray
    xy: np.ndarray
    weight: np.ndarray
    basis: list[str]
    fallback_wards: list[int] = field(default_factory=list)
    residents_outside: float = 0.0


def halton_points_in(geometry: shapely.Geometry, n: int, sampler: qmc.Halton) -> np.ndarray:
    """``n`` evenly spread points inside a polygon, area-uniform, from a scrambled Halton sequence.

    Parameters
    ----------
    geometry
        Polygon or MultiPolygon (EPSG:27700).
    n
        Number of points wanted (>= 1).
    sampler
        A seeded scrambled Halton sampler (:func:`halton_sampler`); it continues its sequence
        from one call to the next, so one sampler can serve several polygons.

    Returns
    -------
    numpy.ndarray
        ``(m, 2)`` coordinates with ``1 <= m <= n``. Fewer than ``n`` only for slivers so thin
        that repeated draws miss them; the polygon's representative point is then used.
    """
    minx, miny, maxx, maxy = geometry.bounds
    width, height = maxx - minx, maxy - miny
    if geometry.is_empty or width <= 0 or height <= 0:
        point = geometry.representative_point() if not geometry.is_empty else geometry.centroid
        return np.array([[point.x, point.y]]) if not point.is_empty else np.empty((0, 2))
    shapely.prepare(geometry)
    kept: list[np.ndarray] = []
    count = 0
    for _ in range(_MAX_ATTEMPTS):
        # Consecutive draws continue one sequence, so points stay evenly spread across draws.
        unit = sampler.random(_OVERSAMPLE * max(n - count, 1) + 16)
        x = minx + unit[:, 0] * width
        y = miny + unit[:, 1] * height
        inside = shapely.contains_xy(geometry, x, y)
        if inside.any():
            kept.append(np.column_stack([x[inside], y[inside]]))
            count += int(inside.sum())
        if count >= n:
            break
    if count == 0:
        point = geometry.representative_point()
        return np.array([[point.x, point.y]])
    return np.vstack(kept)[:n]


def halton_sampler(seed: int, position: int) -> qmc.Halton:
    """A scrambled 2-D Halton sampler for one ward, so that a ward's points do not depend on
    the other wards. (SciPy >= 1.15 calls the seed ``rng``, older versions ``seed``.)"""
    rng = np.random.default_rng([int(seed) % (2**32), 0x6A95, position])
    try:
        return qmc.Halton(d=2, scramble=True, rng=rng)
    except TypeError:
        return qmc.Halton(d=2, scramble=True, seed=rng)


def _area_sample(geometry: shapely.Geometry, n: int, seed: int, position: int) -> np.ndarray:
    """Area-weighted sample points of one ward (see :func:`halton_points_in`)."""
    return halton_points_in(geometry, n, halton_sampler(seed, position))


def assign_points_to_wards(wards: gpd.GeoDataFrame, points: gpd.GeoDataFrame) -> np.ndarray:
    """Ward position of each point (-1 when outside every ward).

    The ward join's rule (:func:`geomisuse.layers.ward_join.first_ward_containing`): a point
    on a shared edge goes to the first ward in ward-table order (the table is sorted by ward
    code), exactly as offences and services are counted.

    Parameters
    ----------
    wards
        The ward table (ward-code order) in the points' CRS.
    points
        Point geometries.

    Returns
    -------
    numpy.ndarray
        ``int64`` ward positions.
    """
    tree = shapely.STRtree(wards.geometry.values)
    return first_ward_containing(tree, points.geometry.values).astype(np.int64)


def _resident_pieces(wards: gpd.GeoDataFrame, residents: gpd.GeoDataFrame,
                     ) -> tuple[list[tuple[int, shapely.Geometry, float]], float]:
    """Cut resident polygons along ward boundaries and apportion their counts by area.

    Returns
    -------
    pieces
        ``(ward position, piece geometry, residents in the piece)`` for every piece with
        residents, in (ward, polygon) order.
    outside
        Residents in parts of polygons outside every ward.
    """
    geoms = residents.geometry.values
    counts = residents[RESIDENTS_COLUMN].to_numpy(dtype=float)
    areas = shapely.area(geoms)
    tree = shapely.STRtree(wards.geometry.values)
    res_idx, ward_idx = tree.query(geoms, predicate="intersects")
    order = np.lexsort((res_idx, ward_idx))
    res_idx, ward_idx = res_idx[order], ward_idx[order]
    cut = shapely.intersection(geoms[res_idx], wards.geometry.values[ward_idx])
    cut_area = shapely.area(cut)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(areas[res_idx] > 0, cut_area / areas[res_idx], 0.0)
    piece_residents = counts[res_idx] * share
    outside = float(np.nansum(counts) - np.nansum(piece_residents))
    pieces = [(int(w), g, float(r)) for w, g, r in zip(ward_idx, cut, piece_residents)
              if r > 0 and not g.is_empty and shapely.area(g) > 0]
    return pieces, max(outside, 0.0)


def sample_residents(wards: gpd.GeoDataFrame, residents: gpd.GeoDataFrame | None,
                     points_per_ward: int, seed: int) -> ResidentSample:
    """Points standing for each ward's residents, with their shares of the ward's residents.

    Parameters
    ----------
    wards
        Ward polygons (EPSG:27700), in ward-table order.
    residents
        Optional finer population layer (EPSG:27700) with a ``residents`` count column:
        points (used as they are) or polygons (cut by wards, counts apportioned by area, then
        sampled). ``None`` -> area-weighted sampling of every ward.
    points_per_ward
        Sample points per ward (area sampling) or per ward spread over its resident polygons.
    seed
        Seed; the same inputs and seed give the same points.

    Returns
    -------
    ResidentSample
        Points, their ward positions and weights (summing to 1 in every ward).
    """
    n_wards = len(wards)
    ward_parts: list[np.ndarray] = []
    xy_parts: list[np.ndarray] = []
    weight_parts: list[np.ndarray] = []
    basis = [BASIS_AREA] * n_wards
    have_residents = np.zeros(n_wards, dtype=bool)
    outside = 0.0

    if residents is not None and len(residents):
        counts = residents[RESIDENTS_COLUMN].to_numpy(dtype=float)
        residents = residents[np.isfinite(counts) & (counts > 0)]
    if residents is not None and len(residents):
        kinds = set(residents.geometry.geom_type.dropna())
        if kinds <= {"Point"}:
            where = assign_points_to_wards(wards, residents)
            counts = residents[RESIDENTS_COLUMN].to_numpy(dtype=float)
            outside = float(counts[where < 0].sum())
            keep = where >= 0
            xy = shapely.get_coordinates(residents.geometry.values[keep])
            ward_of = where[keep]
            ward_parts.append(ward_of)
            xy_parts.append(xy)
            weight_parts.append(counts[keep])
            have_residents[np.unique(ward_of)] = True
            for w in np.unique(ward_of):
                basis[w] = BASIS_POINTS
        else:
            pieces, outside = _resident_pieces(wards, residents)
            totals = np.zeros(n_wards)
            for w, _, r in pieces:
                totals[w] += r
            samplers: dict[int, qmc.Halton] = {}
            for w, geom, r in pieces:
                # Points in proportion to the piece's residents, at least one per piece; one
                # sampler per ward (building one costs more than drawing from it).
                n = max(1, int(round(points_per_ward * r / totals[w])))
                if w not in samplers:
                    samplers[w] = halton_sampler(seed, w)
                pts = halton_points_in(geom, n, samplers[w])
                ward_parts.append(np.full(len(pts), w))
                xy_parts.append(pts)
                weight_parts.append(np.full(len(pts), r / len(pts)))
                have_residents[w] = True
                basis[w] = BASIS_POLYGONS

    fallback = []
    for w in range(n_wards):
        if have_residents[w]:
            continue
        if residents is not None:
            fallback.append(w)
        pts = _area_sample(wards.geometry.values[w], points_per_ward, seed, w)
        ward_parts.append(np.full(len(pts), w))
        xy_parts.append(pts)
        weight_parts.append(np.ones(len(pts)))
        basis[w] = BASIS_AREA

    ward = np.concatenate(ward_parts).astype(np.int64) if ward_parts else np.empty(0, np.int64)
    xy = np.vstack(xy_parts) if xy_parts else np.empty((0, 2))
    weight = np.concatenate(weight_parts).astype(float) if weight_parts else np.empty(0)
    order = np.argsort(ward, kind="stable")
    ward, xy, weight = ward[order], xy[order], weight[order]
    totals = np.bincount(ward, weights=weight, minlength=n_wards)
    weight = weight / totals[ward]
    return ResidentSample(ward=ward, xy=xy, weight=weight, basis=basis,
                          fallback_wards=fallback, residents_outside=outside)


def nearest_distance(points_xy: np.ndarray, services_xy: np.ndarray) -> np.ndarray:
    """Straight-line distance from each point to the nearest service.

    Parameters
    ----------
    points_xy
        ``(n, 2)`` coordinates in metres.
    services_xy
        ``(m, 2)`` service coordinates in metres; may be empty.

    Returns
    -------
    numpy.ndarray
        ``n`` distances in metres; ``inf`` everywhere when there are no services.
    """
    if len(services_xy) == 0:
        return np.full(len(points_xy), np.inf)
    distance, _ = cKDTree(services_xy).query(points_xy, k=1)
    return distance


@dataclass
class KindAccess:
    """Access of every ward to one kind of service.

    Attributes
    ----------
    mean_distance_m : numpy.ndarray
        Residents' average straight-line distance to the nearest service (NaN: no service).
    share_within : numpy.ndarray
        Share of residents (0-1) within the walk radius of a service.
    services_within : numpy.ndarray
        Distinct services within the walk radius of at least one of the ward's sample points.
    point_within : numpy.ndarray
        Per sample point: is a service within the walk radius?
    """

    mean_distance_m: np.ndarray
    share_within: np.ndarray
    services_within: np.ndarray
    point_within: np.ndarray


def ward_access(sample: ResidentSample, n_wards: int, services_xy: np.ndarray,
                radius_m: float) -> KindAccess:
    """Per-ward access to one kind of service.

    Parameters
    ----------
    sample
        Resident sample points (:func:`sample_residents`).
    n_wards
        Number of wards.
    services_xy
        ``(m, 2)`` service coordinates in EPSG:27700 metres (may be empty).
    radius_m
        Straight-line walk radius in metres (:func:`geomisuse.config.walk_radius_m`).

    Returns
    -------
    KindAccess
        Distances, shares and counts per ward.
    """
    distance = nearest_distance(sample.xy, services_xy)
    within = distance <= radius_m
    share = np.bincount(sample.ward, weights=sample.weight * within, minlength=n_wards)
    if len(services_xy):
        mean = np.bincount(sample.ward, weights=sample.weight * distance, minlength=n_wards)
        # Each service asks which sample points lie within its radius: services are far
        # fewer than points, so this is the short loop.
        point_tree = cKDTree(sample.xy)
        hits = point_tree.query_ball_point(services_xy, radius_m, return_sorted=False)
        lengths = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
        count = np.zeros(n_wards, dtype=np.int64)
        if lengths.sum():
            service_ids = np.repeat(np.arange(len(hits)), lengths)
            ward_ids = sample.ward[np.concatenate([np.asarray(h, dtype=np.int64) for h in hits])]
            pairs = np.unique(ward_ids * len(hits) + service_ids)
            count = np.bincount(pairs // len(hits), minlength=n_wards)
    else:
        mean = np.full(n_wards, np.nan)
        count = np.zeros(n_wards, dtype=np.int64)
    return KindAccess(mean_distance_m=mean, share_within=share, services_within=count,
                      point_within=within)


def service_xy(services: gpd.GeoDataFrame | None) -> np.ndarray:
    """Coordinates of a point layer's non-empty geometries (``(0, 2)`` for ``None``).

    Parameters
    ----------
    services
        Point GeoDataFrame in EPSG:27700, or ``None``.

    Returns
    -------
    numpy.ndarray
        ``(m, 2)`` coordinates in metres.
    """
    if services is None or len(services) == 0:
        return np.empty((0, 2))
    geoms = services.geometry.values
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    # A polygon service (a site outline) counts from its representative point.
    geoms = np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.point_on_surface(geoms))
    return shapely.get_coordinates(geoms).reshape(-1, 2)


def as_frame(sample: ResidentSample) -> pd.DataFrame:
    """The sample as a table (``ward``, ``x``, ``y``, ``weight``), for inspection and tests."""
    return pd.DataFrame({"ward": sample.ward, "x": sample.xy[:, 0], "y": sample.xy[:, 1],
                         "weight": sample.weight})


@dataclass
class WalkAccess:
    """Walking access of the wards' residents to each service kind.

    Attributes
    ----------
    sample : ResidentSample
        The resident sample points access is measured from.
    kinds : dict[str, KindAccess]
        Per service kind (:data:`KINDS`): mean distance, share of residents and services
        within the walk, per ward; within the walk or not, per sample point.
    minutes : dict[str, numpy.ndarray]
        Per kind, the walk minutes each ward's mean distance implies.
    service_counts : dict[str, int]
        Per kind, the number of services in the study data.
    either, both : numpy.ndarray
        Per sample point: within the walk of a service of either kind / of both kinds.
    any_share : numpy.ndarray
        Per ward, share of residents within the walk of a service of either kind.
    network : NetworkAccess or None
        With a walking network: network distances, snapping and the measured detour factor
        (then ``minutes`` and the shares are over the network); ``None`` for straight lines.
    """

    sample: ResidentSample
    kinds: dict[str, KindAccess]
    minutes: dict[str, np.ndarray]
    service_counts: dict[str, int]
    either: np.ndarray
    both: np.ndarray
    any_share: np.ndarray
    network: NetworkAccess | None = None

    def served(self, access_rule: str) -> np.ndarray:
        """Per sample point, is it already served under ``access_rule``?"""
        return self.both if access_rule == "each_kind" else self.either


def measure_access(wards: gpd.GeoDataFrame, layers: dict[str, gpd.GeoDataFrame | None],
                   residents: gpd.GeoDataFrame | None, settings: GapSettings, seed: int,
                   network: WalkingNetwork | None = None) -> tuple[WalkAccess, list[str]]:
    """Sample each ward's residents and measure their walk to each kind of service.

    Without a network the walk is the straight line times ``settings.detour_factor``; with
    one it is the route over the streets (:func:`geomisuse.gaps.network.network_access`).

    Parameters
    ----------
    wards
        The ward table.
    layers
        Service point layer per kind (:data:`KINDS`), ``None`` when not given.
    residents
        Optional finer population layer.
    settings
        Gap settings (``sample_points`` and the walk).
    seed
        Seed of the resident sampling.
    network
        The walking graph, or ``None`` for the straight-line method.

    Returns
    -------
    tuple
        ``(WalkAccess, warnings)``.

    Raises
    ------
    InputError
        With a network that does not cover some wards.
    """
    warnings: list[str] = []
    n = len(wards)
    sample = sample_residents(wards, residents, settings.sample_points, seed)
    kinds: dict[str, KindAccess] = {}
    minutes: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    services = {kind: service_xy(layer) for kind, layer in layers.items()}
    for kind, xy in services.items():
        counts[kind] = len(xy)
        if not len(xy):
            warnings.append(f"gaps: no {KINDS[kind]}s given, so no ward has access to one")
    measured = None
    if network is not None:
        from .network import network_access

        straight = {kind: nearest_distance(sample.xy, xy) for kind, xy in services.items()}
        walked, measured, notes = network_access(
            network, sample, wards, services, straight, settings.walk_network_m,
            walk_speed_m_per_min(settings.walk_speed_kmh), settings.network_max_snap_m)
        warnings += notes
        for kind, xy in services.items():
            # The straight-line mean stays beside the network figures (nearest_..._m columns).
            mean = (np.bincount(sample.ward, weights=sample.weight * straight[kind], minlength=n)
                    if len(xy) else np.full(n, np.nan))
            kinds[kind] = KindAccess(mean_distance_m=mean,
                                     share_within=walked[kind]["share_within"],
                                     services_within=walked[kind]["services_within"],
                                     point_within=walked[kind]["point_within"])
            minutes[kind] = walked[kind]["minutes"]
    else:
        for kind, xy in services.items():
            kinds[kind] = ward_access(sample, n, xy, settings.walk_radius_m)
            minutes[kind] = settings.walk_minutes(kinds[kind].mean_distance_m)
    treatment = kinds["treatment"].point_within
    needle_exchange = kinds["needle_exchange"].point_within
    either = treatment | needle_exchange
    any_share = np.bincount(sample.ward, weights=sample.weight * either, minlength=n)
    return WalkAccess(sample, kinds, minutes, counts, either, treatment & needle_exchange,
                      any_share, measured), warnings


@dataclass
class AccessVerdict:
    """Whether each ward's access is poor under the access rule.

    Attributes
    ----------
    effective : numpy.ndarray
        Per ward, the share of residents the rule counts as within reach (the smaller of the
        two kinds for ``each_kind``; within reach of either kind for ``any_service``).
    poor : dict[str, numpy.ndarray]
        Per kind, is access poor; under ``any_service`` both carry the combined verdict.
    access_poor : numpy.ndarray
        Per ward, is access poor overall.
    """

    effective: np.ndarray
    poor: dict[str, np.ndarray]
    access_poor: np.ndarray


def judge_access(walk: WalkAccess, settings: GapSettings) -> AccessVerdict:
    """Apply ``settings.access_rule`` and ``settings.access_share`` to the measured """
    if settings.access_rule == "each_kind":
        share = {k: walk.kinds[k].share_within for k in KINDS}
        effective = np.minimum(share["treatment"], share["needle_exchange"])
        poor = {k: share[k] < settings.access_share for k in KINDS}
    else:
        effective = walk.any_share
        poor = dict.fromkeys(KINDS, walk.any_share < settings.access_share)
    return AccessVerdict(effective, poor, effective < settings.access_share)


def point_layer(layer: gpd.GeoDataFrame | None, what: str) -> gpd.GeoDataFrame | None:
    """A point layer in the analysis CRS (``None`` stays ``None``)."""
    if layer is None:
        return None
    if layer.crs is None:
        raise InputError(f"{what} has no coordinate reference system")
    return layer.to_crs(ANALYSIS_CRS) if layer.crs != ANALYSIS_CRS else layer
