"""Outreach gaps: wards where drug-related need is high and walking access to services is poor,
and the satellite outreach sites that would reach most of that unmet need.

The stage in one paragraph (each step is a function below):

1. **Access** (:mod:`.walking`): points standing for each ward's residents (area-
   or population-weighted, seeded), their straight-line distance to the nearest treatment
   service and needle exchange, the walking minutes that distance implies, the share of
   residents within the walk threshold (default 20 minutes) and the services within it.
2. **Need**: a ward's need is high when, for the need measure (default ``possession``), it is
   a High-High LISA cluster, a Gi* hot spot at 95 % or more, or its rate is in the top fifth
   of wards (any one of these; the list is configurable).
3. **Gap**: high need and poor access. Access is poor, by default, when under half of the
   ward's residents are within the walk threshold of a treatment service, or under half are
   within it of a needle exchange (``access_rule = "each_kind"``: outreach needs both).
   ``access_rule = "any_service"`` instead asks whether half are within reach of either kind.
4. **Score**: ``gap_score = need_percentile * (1 - access_share)`` in [0, 1], where
   ``need_percentile`` is the ward's rank among wards by need rate (1 = highest) and
   ``access_share`` the share of residents that the access rule counts as within reach (the
   smaller of the two kinds for ``each_kind``). ``gap_rank`` puts the outreach gaps first
   (by score), then every other assessed ward by score, then wards that could not be
   assessed; ties go to the lower ward code.
5. **Satellite sites** (:mod:`.sites`): the maximal covering location problem
   over the unmet need of the gap wards.

Every ward gets a ``gap_reason`` in plain words, gaps and non-gaps alike, e.g.
"High-High drug possession cluster; nearest needle exchange 2.4 km (39 min walk), 0 % of
residents within a 20-minute walk" or "not a gap: ...". Wards without a resident
population are "not assessed" and say why.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

import geopandas as gpd
import numpy as np
import pandas as pd

from ..errors import InputError
from ..config import ANALYSIS_CRS, DEFAULT_SEED, walk_speed_m_per_min
from ..wardtable import with_columns
from .need import NeedAssessment, assess_need, choose_need_measure
from .reasons import gap_reason, summary_lines
from .settings import GapSettings
from .sites import choose_satellites
from .catchments import walk_catchments
from .network import WalkingNetwork, load_walking_network
from .walking import AccessVerdict, KINDS, WalkAccess, judge_access, measure_access, point_layer
from ..layers.postcodes import Postcodes, read_postcodes
from . import walking as access


#: Columns this stage adds to the ward table, in order (the contract names come first).
GAP_COLUMNS = [
    "nearest_treatment_service_m", "nearest_needle_exchange_m", "gap_score", "gap_rank",
    "is_outreach_gap", "gap_reason",
    "treatment_walk_min", "needle_exchange_walk_min",
    "share_within_walk_treatment", "share_within_walk_needle_exchange",
    "treatment_services_within_walk", "needle_exchanges_within_walk",
    "gap_need_measure", "gap_need_high", "gap_access_poor",
    "access_method", "treatment_network_walk_m", "needle_exchange_network_walk_m",
]

#: ``access_method`` values: walking over the streets, or the straight line times the detour.
METHOD_NETWORK = "street network"
METHOD_STRAIGHT = "straight line x detour factor"


@dataclass
class GapResult:
    """What the gap stage produced.

    Attributes
    ----------
    columns : pandas.DataFrame
        Indexed like the ward table; :data:`GAP_COLUMNS`.
    satellites : pandas.DataFrame
        :data:`SATELLITE_COLUMNS`, one row per suggested site in rank order (may be empty).
    manifest : dict
        Parameters, sampling, wards not assessed and why, solver, timings, greedy vs optimum.
    warnings : list[str]
        Things the user should read.
    summary_lines : list[str]
        A short console summary.
    catchments : geopandas.GeoDataFrame or None
        Walk catchments of the services (:func:`geomisuse.gaps.catchments.walk_catchments`):
        network isochrones with a network, else straight-line circles.
    coverage_by_sites : pandas.DataFrame or None
        Need covered by the best k satellite sites, k = 1..10
        (:data:`geomisuse.gaps.sites.COVERAGE_COLUMNS`); ``None`` when no sites were sought.
    wards : geopandas.GeoDataFrame
        The ward table given with ``columns`` added (a new table).
    """

    columns: pd.DataFrame
    satellites: pd.DataFrame
    manifest: dict
    warnings: list[str] = field(default_factory=list)
    summary_lines: list[str] = field(default_factory=list)
    catchments: gpd.GeoDataFrame | None = None
    coverage_by_sites: pd.DataFrame | None = None
    wards: gpd.GeoDataFrame | None = None


def _check_wards(wards: gpd.GeoDataFrame) -> None:
    """Raise :class:`InputError` when the ward table lacks what the gap stage reads."""
    missing = [c for c in ("ward_code", "ward_name", "population") if c not in wards]
    if missing:
        raise InputError("ward table lacks column(s) " + ", ".join(missing)
                         + " needed for outreach gaps")
    if wards.crs is None or wards.crs != ANALYSIS_CRS:
        raise InputError(f"ward table must be in {ANALYSIS_CRS} for outreach gaps")


def find_gaps(wards: gpd.GeoDataFrame, treatment_services: gpd.GeoDataFrame | None = None,
              needle_exchanges: gpd.GeoDataFrame | None = None,
              candidate_sites: gpd.GeoDataFrame | None = None,
              residents: gpd.GeoDataFrame | None = None,
              settings: GapSettings | Mapping[str, Any] | None = None, seed: int = DEFAULT_SEED,
              *, candidates_from_file: bool = False, network: WalkingNetwork | None = None,
              postcodes: Postcodes | None = None) -> GapResult:
    """Access, outreach gaps and satellite sites for every ward.

    Parameters
    ----------
    wards
        The ward table (EPSG:27700), one row per ward in ``ward_code`` order: ``ward_code``,
        ``ward_name``, ``population``, geometry, ``M_count``/``M_rate_per_1000`` and, when the
        cluster stage ran, ``M_lisa_label`` and ``M_gi_bin``.
    treatment_services, needle_exchanges
        Point layers (``name`` ...); ``None`` or empty -> no ward has access to that kind.
    candidate_sites
        Candidate satellite sites (points with ``name`` and optionally ``site_type``). When
        the study names no candidate file, pass the pharmacies that are not needle exchanges:
        a grid over the gap wards is then added (:func:`geomisuse.satellites.default_candidates`).
    residents
        Optional finer population layer with a ``residents`` count (points or polygons).
    settings
        :class:`~geomisuse.config.GapSettings`, or a dict of its keys (checked as the study
        file's ``[gaps]`` table is); default all defaults.
    seed
        Seed of the resident sampling.
    candidates_from_file
        ``True`` when ``candidate_sites`` came from the study's candidate file: they are used
        as they are (``source = "candidate file"``) and no grid is added unless
        ``settings.candidate_grid`` is true.
    network
        The walking graph (:func:`geomisuse.gaps.network.load_walking_network`): access,
        catchments and satellite coverage are then measured over the streets. ``None``: the
        file ``settings.network`` names is read (no cache), or without one the straight line
        times ``settings.detour_factor``.
    postcodes
        Postcode points (:func:`geomisuse.layers.postcodes.read_postcodes`) naming the nearest
        postcode of each satellite site; ``None``: those of ``settings.postcodes``, if any.

    Returns
    -------
    GapResult
        Ward columns, the ward table with them, satellite sites, manifest section, warnings
        and a console summary. Nothing given is changed.

    Raises
    ------
    InputError
        Missing ward columns, wrong CRS, no need measure with data, solver missing.
    """
    settings = GapSettings.from_options(settings)
    _check_wards(wards)
    # Settings that name a network or postcode file are enough on their own (from a notebook);
    # a study run passes the network it read through the cache.
    if network is None and settings.network:
        network = load_walking_network(settings.network, None)
    if postcodes is None and settings.postcodes:
        postcodes = read_postcodes(settings.postcodes)
    layers, residents = _input_layers(treatment_services, needle_exchanges, residents)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    walk, warnings = measure_access(wards, layers, residents, settings, seed, network)
    timings["access"] = time.perf_counter() - start

    start = time.perf_counter()
    measure, notes = choose_need_measure(wards, settings.need_measure)
    warnings += notes
    need, notes = assess_need(wards, measure, settings)
    warnings += notes
    verdict = judge_access(walk, settings)
    is_gap, score, order = score_and_rank(wards, need, verdict)
    columns = _gap_columns(wards, need, walk, verdict, is_gap, score, order, measure, settings)
    timings["gaps"] = time.perf_counter() - start

    not_assessed = _wards_not_assessed(wards, need, columns["gap_reason"].to_numpy())
    warnings += _assessment_warnings(not_assessed, walk.sample)

    need_count = pd.to_numeric(wards[f"{measure}_count"], errors="coerce").fillna(0)
    sites, sat_manifest, sat_warnings = choose_satellites(
        wards, walk.sample, need_count=need_count.to_numpy(dtype=float),
        served=walk.served(settings.access_rule), is_gap=is_gap,
        candidate_sites=candidate_sites, settings=settings,
        candidates_from_file=candidates_from_file, timings=timings, network=network,
        postcodes=postcodes)
    warnings += sat_warnings
    start = time.perf_counter()
    catchments = walk_catchments(layers, settings, network)
    timings["catchments"] = time.perf_counter() - start

    manifest = {
        "parameters": _parameters_section(settings, measure, need, seed),
        "sampling": _sampling_section(wards, walk.sample),
        "services": dict(walk.service_counts),
        "access": (walk.network.report if walk.network is not None
                   else {"method": METHOD_STRAIGHT, "detour_factor": settings.detour_factor,
                         "walk_radius_m": round(settings.walk_radius_m, 1)}),
        "outreach_gaps": int(is_gap.sum()),
        "gap_wards": [str(c) for c in wards["ward_code"].to_numpy()[order][:int(is_gap.sum())]],
        "wards_not_assessed": not_assessed,
        "satellites": sat_manifest,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
    summary = access_lines(walk, settings) + summary_lines(wards, columns, sites, sat_manifest,
                                                           measure, settings)
    return GapResult(columns=columns, satellites=sites, manifest=manifest,
                     warnings=warnings, summary_lines=summary, wards=with_columns(wards, columns),
                     catchments=catchments,
                     coverage_by_sites=sat_manifest.pop("coverage_table", None))


def _input_layers(treatment_services: gpd.GeoDataFrame | None,
                  needle_exchanges: gpd.GeoDataFrame | None,
                  residents: gpd.GeoDataFrame | None,
                  ) -> tuple[dict[str, gpd.GeoDataFrame | None], gpd.GeoDataFrame | None]:
    """The service layers by kind (:data:`KINDS`) and the residents layer, in the analysis CRS.

    Raises
    ------
    InputError
        A layer without a CRS, or a residents layer without a ``residents`` column.
    """
    layers = {"treatment": point_layer(treatment_services, "treatment services"),
              "needle_exchange": point_layer(needle_exchanges, "needle exchanges")}
    residents = point_layer(residents, "residents layer")
    if residents is not None and access.RESIDENTS_COLUMN not in residents:
        raise InputError("residents layer lacks a 'residents' count column")
    return layers, residents


def score_and_rank(wards: pd.DataFrame, need: NeedAssessment, verdict: AccessVerdict,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which wards are outreach gaps, their gap score, and the order of the gap ranking.

    Returns
    -------
    tuple
        ``(is_gap, score, order)``: ``score = need_percentile * (1 - access share)`` (NaN when
        not assessed); ``order`` lists ward positions from gap rank 1 down: gaps first, then
        by score (highest first, unassessed last), then by ward code.
    """
    is_gap = need.high & verdict.access_poor & need.assessed
    score = np.where(need.assessed, need.percentile * (1.0 - verdict.effective), np.nan)
    order = np.lexsort((wards["ward_code"].astype(str).to_numpy(),
                        -np.nan_to_num(score, nan=-1.0), ~is_gap))
    return is_gap, score, order


def _gap_columns(wards: pd.DataFrame, need: NeedAssessment, walk: WalkAccess,
                 verdict: AccessVerdict, is_gap: np.ndarray, score: np.ndarray,
                 order: np.ndarray, measure: str, settings: GapSettings) -> pd.DataFrame:
    """The :data:`GAP_COLUMNS`, indexed like the ward table."""
    n = len(wards)
    population = pd.to_numeric(wards["population"], errors="coerce").to_numpy(dtype=float)
    # A ward with no residents has no share of residents to report.
    no_residents = np.isfinite(population) & (population <= 0)
    share = {k: np.where(no_residents, np.nan, walk.kinds[k].share_within) for k in KINDS}
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    any_services = {k: walk.service_counts[k] > 0 for k in KINDS}
    # A reason quotes the distance its minutes are walked over: the route, with a network.
    walked_m = {k: (walk.network.network_mean_m[k] if walk.network is not None
                    else walk.kinds[k].mean_distance_m) for k in KINDS}
    reasons = [
        gap_reason(i, need, {k: bool(verdict.poor[k][i]) for k in KINDS}, bool(is_gap[i]),
                   {k: (walked_m[k][i], float(walk.minutes[k][i]), share[k][i])
                    for k in KINDS},
                   population[i], settings, measure, any_services, walk.any_share[i])
        for i in range(n)]
    treatment, needle_exchange = walk.kinds["treatment"], walk.kinds["needle_exchange"]
    return pd.DataFrame({
        "nearest_treatment_service_m": np.round(treatment.mean_distance_m, 0),
        "nearest_needle_exchange_m": np.round(needle_exchange.mean_distance_m, 0),
        "gap_score": np.round(score, 4),
        "gap_rank": rank,
        "is_outreach_gap": is_gap,
        "gap_reason": reasons,
        "treatment_walk_min": np.round(walk.minutes["treatment"], 1),
        "needle_exchange_walk_min": np.round(walk.minutes["needle_exchange"], 1),
        "share_within_walk_treatment": np.round(share["treatment"], 4),
        "share_within_walk_needle_exchange": np.round(share["needle_exchange"], 4),
        "treatment_services_within_walk": treatment.services_within,
        "needle_exchanges_within_walk": needle_exchange.services_within,
        "gap_need_measure": measure,
        "gap_need_high": need.high,
        "gap_access_poor": np.where(no_residents, False, verdict.access_poor),
        "access_method": METHOD_NETWORK if walk.network is not None else METHOD_STRAIGHT,
        "treatment_network_walk_m": _network_mean(walk, "treatment", n),
        "needle_exchange_network_walk_m": _network_mean(walk, "needle_exchange", n),
    }, index=wards.index)


def _network_mean(walk: WalkAccess, kind: str, n: int) -> np.ndarray:
    """Per ward, mean network walking distance to the nearest service of ``kind`` (m), or NaN."""
    if walk.network is None:
        return np.full(n, np.nan)
    return np.round(walk.network.network_mean_m[kind], 0)


def access_lines(walk: WalkAccess, settings: GapSettings) -> list[str]:
    """Console lines saying how walking was measured (and the detour factor it found)."""
    if walk.network is None:
        return [f"access: straight line x {settings.detour_factor:g} detour factor (no [gaps] "
                "network given)"]
    report = walk.network.report
    built = report["network"]
    lines = [f"access: over the street network ({built['nodes']:,} nodes, {built['km']:,} km; "
             f"cache {built.get('cache', 'off')})"]
    for kind, words in KINDS.items():
        detour = walk.network.detour[kind]
        if detour.get("points"):
            lines.append(f"  measured detour factor to the nearest {words}: median "
                         f"{detour['median']:.2f} (10-90 %: {detour['p10']:.2f}-"
                         f"{detour['p90']:.2f}); the straight-line method assumes "
                         f"{settings.detour_factor:g}")
    return lines


def _wards_not_assessed(wards: pd.DataFrame, need: NeedAssessment,
                        reasons: np.ndarray) -> list[dict]:
    """Code, name and reason of each ward that could not be assessed."""
    return [{"ward_code": str(wards["ward_code"].iloc[i]),
             "ward_name": str(wards["ward_name"].iloc[i]),
             "reason": reasons[i].removeprefix("not assessed: ")}
            for i in np.flatnonzero(~need.assessed)]


def _assessment_warnings(not_assessed: list[dict], sample: access.ResidentSample) -> list[str]:
    """Warnings about wards not assessed and wards whose residents were area-sampled."""
    warnings = []
    if not_assessed:
        warnings.append(f"gaps: {len(not_assessed)} ward(s) not assessed for outreach gaps "
                        "(no resident population or no rate); see the manifest")
    if sample.fallback_wards:
        warnings.append(f"gaps: {len(sample.fallback_wards)} ward(s) have no residents in the "
                        "residents layer; their access is measured over the ward's area")
    return warnings


def _parameters_section(settings: GapSettings, measure: str, need: NeedAssessment,
                        seed: int) -> dict:
    """The settings as given, plus the measure, criteria, walk radius and speed used."""
    return {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.model_dump().items()},
            "need_measure_used": measure, "need_criteria_used": need.criteria_used,
            "walk_radius_m": round(settings.walk_radius_m, 1),
            "walk_speed_m_per_min": round(walk_speed_m_per_min(settings.walk_speed_kmh), 2),
            "seed": int(seed)}


def _sampling_section(wards: pd.DataFrame, sample: access.ResidentSample) -> dict:
    """How the residents were sampled: points, wards per basis, area-sampled wards."""
    return {
        "points": int(len(sample.xy)),
        "wards_by_basis": dict(sorted(Counter(sample.basis).items())),
        "wards_area_sampled_for_lack_of_residents": [
            str(wards["ward_code"].iloc[w]) for w in sample.fallback_wards],
        "residents_outside_wards": round(sample.residents_outside, 1),
    }

