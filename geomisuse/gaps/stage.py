"""Outreach gaps: wards where drug-related need is high and walking access to services is poor,
and the satellite outreach sites that would reach most of that unmet need.

The stage in one paragraph (each step is a function below):

1. **Access** (:mod:`geomisuse.access`): points standing for each ward's residents (area-
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
5. **Satellite sites** (:mod:`geomisuse.satellites`): the maximal covering location problem
   over the unmet need of the gap wards.

Every ward gets a ``gap_reason`` in plain words, gaps and non-gaps alike, e.g.
"High-High drug possession cluster; nearest needle exchange 2.4 km (39 min walk), 0 % of
residents within a 20-minute walk" or "not a gap: ...". Wards without a resident
population are "not assessed" and say why.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import Transformer

from . import walking as access
from . import sites as sat
from ..errors import InputError
from ..config import (ANALYSIS_CRS, DETOUR_FACTOR, MAP_CRS, MEASURE_LABELS, MEASURES,
                       SATELLITE_SITES, WALK_SPEED_KMH, WALK_THRESHOLD_MIN)

#: Need measures tried, in order, when the study does not name one.
NEED_MEASURE_FALLBACK = ("possession", "drug_offences", "trafficking")
#: Criteria a need rule may combine (a ward meeting any one has high need).
NEED_CRITERIA = ("lisa", "gi", "top_rate")
ACCESS_RULES = ("each_kind", "any_service")
SATELLITE_DEMAND = ("gap_wards", "all_wards")
#: Gi* bin -> confidence level, as ArcGIS labels them.
GI_CONFIDENCE = {1: 90, 2: 95, 3: 99}

#: Service kinds: key used in column names, words used in reasons.
KINDS = {"treatment": "treatment service", "needle_exchange": "needle exchange"}

#: Columns this stage adds to the ward table, in order (the contract names come first).
GAP_COLUMNS = [
    "nearest_treatment_service_m", "nearest_needle_exchange_m", "gap_score", "gap_rank",
    "is_outreach_gap", "gap_reason",
    "treatment_walk_min", "needle_exchange_walk_min",
    "share_within_walk_treatment", "share_within_walk_needle_exchange",
    "treatment_services_within_walk", "needle_exchanges_within_walk",
    "gap_need_measure", "gap_need_high", "gap_access_poor",
]

SATELLITE_COLUMNS = [
    "rank", "name", "source", "site_type", "easting", "northing", "longitude", "latitude",
    "ward_code", "ward_name", "need_covered", "share_of_gap_need_covered",
    "cumulative_share_of_gap_need", "residents_newly_within_walk", "in_greedy_answer",
]

_TO_LONLAT = Transformer.from_crs(ANALYSIS_CRS, MAP_CRS, always_xy=True)


@dataclass
class GapSettings:
    """Settings of the gap stage: the ``[gaps]`` table of a study file.

    Attributes
    ----------
    need_measure
        Measure whose need is judged (``possession``, ``trafficking``, ``drug_offences``,
        ``asb``). ``None`` (default): ``possession``, or when the study has no possession
        data, ``drug_offences``, then ``trafficking``. A named measure without data is an error.
    need_rule
        Criteria of high need, any one suffices: ``lisa`` (High-High LISA cluster), ``gi``
        (Gi* bin >= ``gi_min_bin``), ``top_rate`` (rate in the top ``top_rate_share`` of wards).
        Without cluster columns only ``top_rate`` can apply (a warning says so).
    top_rate_share
        Share of wards (with a rate) counted as top rate; 0.2 = top fifth.
    gi_min_bin
        Smallest Gi* bin counted as a hot spot: 1, 2 or 3 (90, 95, 99 % confidence).
    access_share
        Access is poor when under this share of residents are within the walk threshold.
    access_rule
        ``each_kind`` (poor when either treatment or needle-exchange access is poor) or
        ``any_service`` (poor when under ``access_share`` are within reach of any service).
    walk_speed_kmh, detour_factor, walk_threshold_min
        Walking speed (km/h), street route / straight line ratio, walk threshold (minutes).
    satellites
        Number of satellite sites to choose (k); 0 skips the satellite search.
    satellite_demand
        ``gap_wards``: the unmet need of the outreach gaps; ``all_wards``: of every ward.
    sample_points
        Resident sample points per ward.
    grid_spacing_m
        Spacing of the grid of candidate sites over the gap wards (metres); 0 = no grid.
    candidate_grid
        Add that grid to the candidates? ``None`` (default): only when the candidates are the
        default ones (pharmacies without a needle exchange), not a candidate file.
    solver
        ``cbc`` (bundled with PuLP < 4) or ``highs`` (needs ``highspy``).
    solver_time_limit_s
        Time limit of the solver in seconds.
    """

    need_measure: str | None = None
    need_rule: tuple[str, ...] = NEED_CRITERIA
    top_rate_share: float = 0.2
    gi_min_bin: int = 2
    access_share: float = 0.5
    access_rule: str = "each_kind"
    walk_speed_kmh: float = WALK_SPEED_KMH
    detour_factor: float = DETOUR_FACTOR
    walk_threshold_min: float = WALK_THRESHOLD_MIN
    satellites: int = SATELLITE_SITES
    satellite_demand: str = "all_wards"
    sample_points: int = 100
    grid_spacing_m: float = 400.0
    candidate_grid: bool | None = None
    solver: str = "cbc"
    solver_time_limit_s: float = 60.0

    @classmethod
    def from_options(cls, options: dict | None) -> "GapSettings":
        """Settings from the study file's ``[gaps]`` table.

        Parameters
        ----------
        options
            Key -> value as read from TOML (``None`` or empty -> all defaults).

        Returns
        -------
        GapSettings

        Raises
        ------
        InputError
            Unknown key, wrong type or value out of range (one line naming the key).
        """
        options = dict(options or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(f"[gaps] unknown setting '{unknown[0]}'; known settings: "
                             + ", ".join(sorted(known)))
        if isinstance(options.get("need_rule"), str):
            options["need_rule"] = [options["need_rule"]]
        if "need_rule" in options:
            options["need_rule"] = tuple(options["need_rule"])
        settings = cls(**options)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check types and ranges; raise :class:`InputError` naming the first bad key."""
        def bad(key: str, what: str) -> InputError:
            return InputError(f"[gaps] {key} must be {what}, not {getattr(self, key)!r}")

        def number(key: str, low: float, high: float = math.inf, low_open: bool = False) -> None:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad(key, "a number")
            if not (low < value if low_open else low <= value) or value > high or math.isnan(value):
                raise bad(key, f"{'above' if low_open else 'at least'} {low:g}"
                          + (f" and at most {high:g}" if high < math.inf else ""))

        if self.need_measure is not None and self.need_measure not in MEASURES:
            raise bad("need_measure", "one of " + ", ".join(MEASURES))
        if not self.need_rule or any(c not in NEED_CRITERIA for c in self.need_rule):
            raise bad("need_rule", "a list drawn from " + ", ".join(NEED_CRITERIA))
        number("top_rate_share", 0.0, 1.0, low_open=True)
        if self.gi_min_bin not in GI_CONFIDENCE or isinstance(self.gi_min_bin, bool):
            raise bad("gi_min_bin", "1, 2 or 3")
        number("access_share", 0.0, 1.0, low_open=True)
        if self.access_rule not in ACCESS_RULES:
            raise bad("access_rule", " or ".join(ACCESS_RULES))
        number("walk_speed_kmh", 0.0, low_open=True)
        number("detour_factor", 1.0)
        number("walk_threshold_min", 0.0, low_open=True)
        if isinstance(self.satellites, bool) or not isinstance(self.satellites, int) \
                or self.satellites < 0:
            raise bad("satellites", "a whole number, 0 or more")
        if self.satellite_demand not in SATELLITE_DEMAND:
            raise bad("satellite_demand", " or ".join(SATELLITE_DEMAND))
        if isinstance(self.sample_points, bool) or not isinstance(self.sample_points, int) \
                or self.sample_points < 1:
            raise bad("sample_points", "a whole number, 1 or more")
        number("grid_spacing_m", 0.0)
        if self.candidate_grid is not None and not isinstance(self.candidate_grid, bool):
            raise bad("candidate_grid", "true or false")
        if self.solver not in ("cbc", "highs"):
            raise bad("solver", "'cbc' or 'highs'")
        number("solver_time_limit_s", 0.0, low_open=True)

    @property
    def walk_radius_m(self) -> float:
        """Straight-line radius (metres) that the walk threshold reaches."""
        return access.walk_radius_m(self.walk_threshold_min, self.walk_speed_kmh,
                                    self.detour_factor)


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
    """

    columns: pd.DataFrame
    satellites: pd.DataFrame
    manifest: dict
    warnings: list[str] = field(default_factory=list)
    summary_lines: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- formatting

def format_distance(metres: float) -> str:
    """``850 m`` below a kilometre, ``2.4 km`` above; for reasons a board member reads."""
    if metres < 995:
        return f"{int(round(metres, -1)) if metres >= 100 else int(round(metres))} m"
    return f"{metres / 1000:.1f} km"


def _percent(share: float) -> str:
    return f"{100 * share:.0f} %"


def _share_words(share: float) -> str:
    """0.2 -> 'top fifth'; other shares as a percentage."""
    words = {0.5: "top half", 0.25: "top quarter", 0.2: "top fifth", 0.1: "top tenth"}
    return words.get(round(share, 6), f"top {100 * share:g} %")


# --------------------------------------------------------------------------- need

def choose_need_measure(wards: pd.DataFrame, requested: str | None) -> tuple[str, list[str]]:
    """The measure whose need is judged.

    Parameters
    ----------
    wards
        The ward table.
    requested
        The study's ``need_measure`` or ``None`` for the default order
        (:data:`NEED_MEASURE_FALLBACK`).

    Returns
    -------
    tuple
        ``(measure, warnings)``.

    Raises
    ------
    InputError
        The requested measure (or every fallback) has no counts in the ward table.
    """
    def has_data(measure: str) -> bool:
        column = f"{measure}_count"
        return column in wards and wards[column].notna().any()

    if requested is not None:
        if not has_data(requested):
            raise InputError(f"[gaps] need_measure '{requested}' has no data in this study; "
                             "name a measure the study's layers provide")
        return requested, []
    for measure in NEED_MEASURE_FALLBACK:
        if has_data(measure):
            notes = [] if measure == NEED_MEASURE_FALLBACK[0] else [
                f"gaps: no drug possession data, so need is judged on {MEASURE_LABELS[measure]}"]
            return measure, notes
    raise InputError("[gaps] no drug offence counts (possession, drug_offences or trafficking) "
                     "in the ward table; outreach gaps need one of them")


@dataclass
class NeedAssessment:
    """Need per ward (arrays in ward-table order).

    Attributes
    ----------
    rate : numpy.ndarray
        Need rate per 1,000 residents (NaN: not assessed).
    percentile : numpy.ndarray
        Rank of the rate among assessed wards, in (0, 1]; 1 = highest. NaN: not assessed.
    high : numpy.ndarray
        Need is high under the need rule.
    reasons : list[list[str]]
        Per ward, the criteria met, in words.
    criteria_used : list[str]
        The criteria that could be applied (cluster columns may be absent).
    assessed : numpy.ndarray
        The ward has a resident population (so a rate).
    """

    rate: np.ndarray
    percentile: np.ndarray
    high: np.ndarray
    reasons: list[list[str]]
    criteria_used: list[str]
    assessed: np.ndarray


def assess_need(wards: pd.DataFrame, measure: str, settings: GapSettings,
                ) -> tuple[NeedAssessment, list[str]]:
    """Judge each ward's need for ``measure`` under the need rule.

    Parameters
    ----------
    wards
        The ward table (``population``, ``{measure}_rate_per_1000`` and, when the cluster
        stage ran, ``{measure}_lisa_label`` and ``{measure}_gi_bin``).
    measure
        The need measure.
    settings
        Gap settings (``need_rule``, ``top_rate_share``, ``gi_min_bin``).

    Returns
    -------
    tuple
        ``(NeedAssessment, warnings)``.
    """
    warnings: list[str] = []
    label = MEASURE_LABELS[measure]
    population = pd.to_numeric(wards["population"], errors="coerce").to_numpy(dtype=float)
    assessed = np.isfinite(population) & (population > 0)
    rate_col = f"{measure}_rate_per_1000"
    if rate_col in wards:
        rate = pd.to_numeric(wards[rate_col], errors="coerce").to_numpy(dtype=float)
    else:
        count = pd.to_numeric(wards[f"{measure}_count"], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = count / population * 1000.0
    rate = np.where(assessed, rate, np.nan)
    assessed &= np.isfinite(rate)

    n_assessed = int(assessed.sum())
    percentile = np.full(len(wards), np.nan)
    if n_assessed:
        percentile[assessed] = pd.Series(rate[assessed]).rank(method="average", pct=True)

    criteria = []
    n = len(wards)
    met = {c: np.zeros(n, dtype=bool) for c in NEED_CRITERIA}
    words: dict[str, list[str]] = {c: [""] * n for c in NEED_CRITERIA}
    lisa_col, gi_col = f"{measure}_lisa_label", f"{measure}_gi_bin"
    missing = [c for c in ("lisa", "gi") if c in settings.need_rule
               and (lisa_col if c == "lisa" else gi_col) not in wards]
    if missing:
        warnings.append(f"gaps: no cluster results for {label} ({', '.join(missing)}), so need "
                        "is judged on " + ("the rate alone" if "top_rate" in settings.need_rule
                                           else "the remaining criteria"))
    if "lisa" in settings.need_rule and lisa_col in wards:
        criteria.append("lisa")
        met["lisa"] = (wards[lisa_col].astype("string").fillna("") == "High-High").to_numpy()
        words["lisa"] = [f"High-High {label} cluster"] * n
    if "gi" in settings.need_rule and gi_col in wards:
        criteria.append("gi")
        gi = pd.to_numeric(wards[gi_col], errors="coerce").to_numpy(dtype=float)
        met["gi"] = np.nan_to_num(gi, nan=-9) >= settings.gi_min_bin
        words["gi"] = [f"{label} hot spot (Gi* {GI_CONFIDENCE.get(int(b), 95)} %)"
                       if np.isfinite(b) and b >= 1 else "" for b in gi]
    if "top_rate" in settings.need_rule:
        criteria.append("top_rate")
        if n_assessed:
            cut = np.quantile(rate[assessed], 1.0 - settings.top_rate_share)
            # A rate of zero is never "high", even when most wards have none.
            met["top_rate"] = assessed & (rate >= cut) & (rate > 0)
        share_words = _share_words(settings.top_rate_share)
        words["top_rate"] = [f"{label} rate in the {share_words} ({r:.1f} per 1,000)"
                             if np.isfinite(r) else "" for r in rate]
    high = np.zeros(n, dtype=bool)
    reasons: list[list[str]] = [[] for _ in range(n)]
    for c in criteria:
        high |= met[c]
        for i in np.flatnonzero(met[c]):
            reasons[i].append(words[c][i])
    high &= assessed
    if not criteria:
        warnings.append("gaps: no need criterion could be applied; no ward is an outreach gap")
    return NeedAssessment(rate, percentile, high, reasons, criteria, assessed), warnings


# --------------------------------------------------------------------------- reasons

def _kind_text(kind: str, distance: float, minutes: float, share: float,
               threshold: float, any_services: bool) -> str:
    """'nearest needle exchange 2.4 km (39 min walk; 0 % of residents within 20 min)'."""
    if not any_services:
        return f"no {KINDS[kind]} in the study data"
    text = f"nearest {KINDS[kind]} {format_distance(distance)} ({minutes:.0f} min walk"
    if np.isfinite(share):
        text += f"; {_percent(share)} of residents within {threshold:g} min"
    return text + ")"


def gap_reason(i: int, need: NeedAssessment, poor: dict[str, bool], is_gap: bool,
               kind_values: dict[str, tuple[float, float, float]], population: float,
               settings: GapSettings, measure: str, any_services: dict[str, bool],
               any_share: float) -> str:
    """The plain-English reason for one ward's gap status.

    Parameters
    ----------
    i
        Ward position.
    need
        Need assessment of all wards.
    poor
        Per kind, is access poor (``each_kind``); under ``any_service`` both carry the combined
        verdict.
    is_gap
        Is the ward an outreach gap?
    kind_values
        Per kind: (mean distance m, walk minutes, share within the walk).
    population
        The ward's population (NaN when not given).
    settings
        Gap settings.
    measure
        The need measure.
    any_services
        Per kind, does the study have any service of that kind?
    any_share
        Share of residents within reach of any service (``any_service`` rule).

    Returns
    -------
    str
        E.g. "High-High drug possession cluster; nearest needle exchange 2.4 km (39 min walk),
        0 % of residents within a 20-minute walk", or "not a gap: ...", or "not assessed: ...".
    """
    if not need.assessed[i]:
        if not np.isfinite(population):
            return "not assessed: no resident population given"
        if population <= 0:
            return "not assessed: no residents (population 0)"
        return f"not assessed: no {MEASURE_LABELS[measure]} rate"
    threshold = settings.walk_threshold_min
    kinds_poor = [k for k in KINDS if poor[k]]
    if settings.access_rule == "any_service" and kinds_poor:
        access_text = (f"{_percent(any_share)} of residents within a {threshold:g}-minute walk "
                       "of any service (" + "; ".join(
                           _kind_text(k, *kind_values[k], threshold, any_services[k])
                           for k in KINDS) + ")")
    else:
        access_text = "; ".join(_kind_text(k, *kind_values[k], threshold, any_services[k])
                                for k in kinds_poor)
    need_text = " and ".join(need.reasons[i])
    if is_gap:
        return f"{need_text}; {access_text}"
    if need.high[i]:
        shares = [f"{_percent(kind_values[k][2])} of a {KINDS[k]}" for k in KINDS]
        return (f"not a gap: {need_text}, but residents are within a {threshold:g}-minute walk "
                f"of services ({' and '.join(shares)})")
    rate_text = (f"{MEASURE_LABELS[measure]} rate {need.rate[i]:.1f} per 1,000 is not high "
                 f"(higher than {100 * need.percentile[i]:.0f} % of wards")
    rate_text += ", no cluster or hot spot)" if {"lisa", "gi"} & set(need.criteria_used) else ")"
    if kinds_poor:
        return f"not a gap: {rate_text}, though access is poor: {access_text}"
    return f"not a gap: {rate_text}"


# --------------------------------------------------------------------------- main

def _point_layer(layer: gpd.GeoDataFrame | None, what: str) -> gpd.GeoDataFrame | None:
    """A point layer in the analysis CRS (``None`` stays ``None``)."""
    if layer is None:
        return None
    if layer.crs is None:
        raise InputError(f"{what} has no coordinate reference system")
    return layer.to_crs(ANALYSIS_CRS) if layer.crs != ANALYSIS_CRS else layer


def _check_wards(wards: gpd.GeoDataFrame) -> None:
    """Raise :class:`InputError` when the ward table lacks what the gap stage reads."""
    missing = [c for c in ("ward_code", "ward_name", "population") if c not in wards]
    if missing:
        raise InputError("ward table lacks column(s) " + ", ".join(missing)
                         + " needed for outreach gaps")
    if wards.crs is None or wards.crs != ANALYSIS_CRS:
        raise InputError(f"ward table must be in {ANALYSIS_CRS} for outreach gaps")


def find_gaps(wards: gpd.GeoDataFrame, treatment_services: gpd.GeoDataFrame | None,
              needle_exchanges: gpd.GeoDataFrame | None,
              candidate_sites: gpd.GeoDataFrame | None,
              residents: gpd.GeoDataFrame | None, settings: GapSettings, seed: int,
              *, candidates_from_file: bool = False) -> GapResult:
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
        :class:`GapSettings`.
    seed
        Seed of the resident sampling.
    candidates_from_file
        ``True`` when ``candidate_sites`` came from the study's candidate file: they are used
        as they are (``source = "candidate file"``) and no grid is added unless
        ``settings.candidate_grid`` is true.

    Returns
    -------
    GapResult
        Ward columns, satellite sites, manifest section, warnings and a console summary.

    Raises
    ------
    InputError
        Missing ward columns, wrong CRS, no need measure with data, solver missing.
    """
    settings.validate()
    _check_wards(wards)
    layers, residents = _input_layers(treatment_services, needle_exchanges, residents)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    walk, warnings = measure_access(wards, layers, residents, settings, seed)
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
        candidates_from_file=candidates_from_file, timings=timings)
    warnings += sat_warnings

    manifest = {
        "parameters": _parameters_section(settings, measure, need, seed),
        "sampling": _sampling_section(wards, walk.sample),
        "services": dict(walk.service_counts),
        "outreach_gaps": int(is_gap.sum()),
        "gap_wards": [str(c) for c in wards["ward_code"].to_numpy()[order][:int(is_gap.sum())]],
        "wards_not_assessed": not_assessed,
        "satellites": sat_manifest,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
    summary = summary_lines(wards, columns, sites, sat_manifest, measure, settings)
    return GapResult(columns=columns, satellites=sites, manifest=manifest,
                     warnings=warnings, summary_lines=summary)


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
    layers = {"treatment": _point_layer(treatment_services, "treatment services"),
              "needle_exchange": _point_layer(needle_exchanges, "needle exchanges")}
    residents = _point_layer(residents, "residents layer")
    if residents is not None and access.RESIDENTS_COLUMN not in residents:
        raise InputError("residents layer lacks a 'residents' count column")
    return layers, residents


# --------------------------------------------------------------------------- access

@dataclass
class WalkAccess:
    """Walking access of the wards' residents to each service kind.

    Attributes
    ----------
    sample : access.ResidentSample
        The resident sample points access is measured from.
    kinds : dict[str, access.KindAccess]
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
    """

    sample: access.ResidentSample
    kinds: dict[str, access.KindAccess]
    minutes: dict[str, np.ndarray]
    service_counts: dict[str, int]
    either: np.ndarray
    both: np.ndarray
    any_share: np.ndarray

    def served(self, access_rule: str) -> np.ndarray:
        """Per sample point, is it already served under ``access_rule``?"""
        return self.both if access_rule == "each_kind" else self.either


def measure_access(wards: gpd.GeoDataFrame, layers: dict[str, gpd.GeoDataFrame | None],
                   residents: gpd.GeoDataFrame | None, settings: GapSettings, seed: int,
                   ) -> tuple[WalkAccess, list[str]]:
    """Sample each ward's residents and measure their walk to each kind of service.

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

    Returns
    -------
    tuple
        ``(WalkAccess, warnings)``.
    """
    warnings: list[str] = []
    n = len(wards)
    sample = access.sample_residents(wards, residents, settings.sample_points, seed)
    kinds: dict[str, access.KindAccess] = {}
    minutes: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for kind, layer in layers.items():
        xy = access.service_xy(layer)
        counts[kind] = len(xy)
        if not len(xy):
            warnings.append(f"gaps: no {KINDS[kind]}s given, so no ward has access to one")
        kinds[kind] = access.ward_access(sample, n, xy, settings.walk_radius_m)
        minutes[kind] = access.walk_minutes(kinds[kind].mean_distance_m, settings.walk_speed_kmh,
                                            settings.detour_factor)
    treatment = kinds["treatment"].point_within
    needle_exchange = kinds["needle_exchange"].point_within
    either = treatment | needle_exchange
    any_share = np.bincount(sample.ward, weights=sample.weight * either, minlength=n)
    return WalkAccess(sample, kinds, minutes, counts, either, treatment & needle_exchange,
                      any_share), warnings


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
    """Apply ``settings.access_rule`` and ``settings.access_share`` to the measured access."""
    if settings.access_rule == "each_kind":
        share = {k: walk.kinds[k].share_within for k in KINDS}
        effective = np.minimum(share["treatment"], share["needle_exchange"])
        poor = {k: share[k] < settings.access_share for k in KINDS}
    else:
        effective = walk.any_share
        poor = dict.fromkeys(KINDS, walk.any_share < settings.access_share)
    return AccessVerdict(effective, poor, effective < settings.access_share)


# --------------------------------------------------------------------------- gaps

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
    reasons = [
        gap_reason(i, need, {k: bool(verdict.poor[k][i]) for k in KINDS}, bool(is_gap[i]),
                   {k: (walk.kinds[k].mean_distance_m[i], float(walk.minutes[k][i]), share[k][i])
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
    }, index=wards.index)


# --------------------------------------------------------------------------- manifest

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
    return {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()},
            "need_measure_used": measure, "need_criteria_used": need.criteria_used,
            "walk_radius_m": round(settings.walk_radius_m, 1),
            "walk_speed_m_per_min": round(access.walk_speed_m_per_min(settings.walk_speed_kmh), 2),
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


# --------------------------------------------------------------------------- satellites

def _candidate_table(wards: gpd.GeoDataFrame, candidate_sites: gpd.GeoDataFrame | None,
                     is_gap: np.ndarray, settings: GapSettings,
                     candidates_from_file: bool) -> gpd.GeoDataFrame:
    """Candidates as given, plus the grid over gap wards when that applies."""
    add_grid = settings.candidate_grid if settings.candidate_grid is not None \
        else not candidates_from_file
    given = _point_layer(candidate_sites, "candidate sites")
    source = sat.SOURCE_FILE if candidates_from_file else sat.SOURCE_PHARMACY
    if given is not None and len(given):
        if "site_type" not in given:
            given = given.assign(site_type=source)
        if "name" not in given:
            given = given.assign(name=[f"site {i + 1}" for i in range(len(given))])
        given = given[~(given.geometry.is_empty | given.geometry.isna())]
    gap_wards = wards[is_gap] if add_grid else wards.iloc[0:0]
    return sat.default_candidates(given, gap_wards[["ward_code", "ward_name", "geometry"]],
                                  settings.grid_spacing_m if add_grid else 0.0, source=source)


def choose_satellites(wards: gpd.GeoDataFrame, sample: access.ResidentSample,
                      need_count: np.ndarray, served: np.ndarray, is_gap: np.ndarray,
                      candidate_sites: gpd.GeoDataFrame | None, settings: GapSettings,
                      candidates_from_file: bool, timings: dict[str, float],
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

    Returns
    -------
    tuple
        ``(satellites table, manifest section, warnings)``.
    """
    section: dict = {"k": settings.satellites, "demand": settings.satellite_demand}
    if settings.satellites == 0:
        return _no_sites(section, "satellites = 0")
    unmet, gap_unmet = _unmet_need(sample, need_count, served, is_gap, settings.satellite_demand)
    section["unmet_need"] = round(float(unmet.sum()), 2)
    section["gap_need_unmet"] = round(float(gap_unmet.sum()), 2)
    if not is_gap.any() and settings.satellite_demand == "gap_wards":
        return _no_sites(section, "no outreach gaps")

    candidates = _candidate_table(wards, candidate_sites, is_gap, settings, candidates_from_file)
    section["candidates"] = {str(k): int(v) for k, v in
                             candidates["source"].value_counts().sort_index().items()}
    if unmet.sum() <= 0 or not len(candidates):
        return _no_sites(section, "no unmet need" if len(candidates) else "no candidate sites",
                         warn=True)

    solution, warnings = _solve_sites(sample.xy, unmet, candidates, settings, timings)
    section.update(_solution_section(solution, candidates, settings, timings))
    table = _site_rows(wards, candidates, solution, unmet, gap_unmet, sample)
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
    optimum : satellites.MclpAnswer or None
        The solver's answer; ``None`` when it gave no optimal answer.
    greedy : list[int]
        The greedy answer (candidate positions in pick order).
    greedy_need : float
        Unmet need the greedy answer covers.
    """

    keep: np.ndarray
    cover: object
    merged_points: int
    candidates_in_reach: int
    optimum: sat.MclpAnswer | None
    greedy: list[int]
    greedy_need: float

    @property
    def chosen(self) -> list[int]:
        """The sites shown: the optimum, or the greedy answer when the solver failed."""
        return self.optimum.sites if self.optimum is not None else self.greedy


def _solve_sites(xy: np.ndarray, unmet: np.ndarray, candidates: gpd.GeoDataFrame,
                 settings: GapSettings, timings: dict[str, float],
                 ) -> tuple[SiteSolution, list[str]]:
    """Solve the MCLP over the points with unmet need, and the greedy answer beside it.

    Fills ``timings`` with ``spopt_import``, ``mclp`` and ``greedy`` (seconds).
    """
    warnings: list[str] = []
    start = time.perf_counter()
    import spopt.locate  # noqa: F401  (a one-off ~2 s import; timed apart from the solve)
    timings["spopt_import"] = time.perf_counter() - start

    start = time.perf_counter()
    keep = unmet > 0
    cover = sat.coverage_matrix(xy[keep], access.service_xy(candidates), settings.walk_radius_m)
    patterns, merged = sat.merge_identical_demand(cover, unmet[keep])
    in_reach = int(patterns.any(axis=0).sum()) if patterns.size else 0
    try:
        optimum = sat.solve_mclp(patterns, merged, settings.satellites, settings.solver,
                                 settings.solver_time_limit_s)
    except RuntimeError as err:  # spopt raises when the solver reports no optimal answer
        optimum = None
        warnings.append(f"gaps: the solver gave no optimal answer ({err}); the greedy sites "
                        "are shown instead")
    timings["mclp"] = time.perf_counter() - start

    start = time.perf_counter()
    greedy, greedy_gains = sat.greedy_sites(patterns, merged, settings.satellites)
    timings["greedy"] = time.perf_counter() - start

    solution = SiteSolution(keep, cover, len(merged), in_reach, optimum, greedy,
                            float(sum(greedy_gains)))
    if len(solution.chosen) < settings.satellites:
        warnings.append(f"gaps: {len(solution.chosen)} satellite site(s) reach all the unmet "
                        f"need that any candidate site can reach; {settings.satellites} were "
                        "asked for")
    return solution, warnings


def _solution_section(solution: SiteSolution, candidates: gpd.GeoDataFrame,
                      settings: GapSettings, timings: dict[str, float]) -> dict:
    """The manifest's account of the solve: sizes, solver, optimum vs greedy, times."""
    import pulp
    import spopt

    optimum = solution.optimum
    return {
        "demand_points": int(solution.keep.sum()),
        "merged_demand_points": solution.merged_points,
        "candidates_in_reach": solution.candidates_in_reach,
        "solver": f"{settings.solver.upper()} via PuLP {pulp.__version__}, spopt {spopt.__version__}",
        "status": optimum.status if optimum is not None else "failed",
        "solve_seconds": round(timings["mclp"], 3),
        "optimal_need_covered": round(optimum.objective, 2) if optimum is not None else None,
        "greedy_need_covered": round(solution.greedy_need, 2),
        "greedy_sites": [str(candidates["name"].iloc[j]) for j in solution.greedy],
        "greedy_seconds": round(timings["greedy"], 4),
        "need_units": "need-measure offences attributed to residents by their share of the ward",
    }


def _site_rows(wards: gpd.GeoDataFrame, candidates: gpd.GeoDataFrame, solution: SiteSolution,
               unmet: np.ndarray, gap_unmet: np.ndarray,
               sample: access.ResidentSample) -> pd.DataFrame:
    """One row per chosen site, with the need each adds to the sites ranked above it."""
    keep = solution.keep
    unmet, gap_unmet = unmet[keep], gap_unmet[keep]
    population = pd.to_numeric(wards["population"], errors="coerce").fillna(0).to_numpy(float)
    residents = (population[sample.ward] * sample.weight)[keep]
    gap_total = float(gap_unmet.sum())
    covered = np.zeros(solution.cover.shape[0], dtype=bool)
    chosen, greedy = solution.chosen, set(solution.greedy)
    site_ward = access.assign_points_to_wards(wards, candidates.iloc[chosen])
    rows = []
    cumulative = 0.0
    for rank, (j, w) in enumerate(zip(chosen, site_ward), start=1):
        reach = solution.cover[:, j].toarray().ravel() & ~covered
        covered |= reach
        gap_gain = float(gap_unmet[reach].sum())
        cumulative += gap_gain
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
        })
    return pd.DataFrame(rows, columns=SATELLITE_COLUMNS)


def summary_lines(wards: pd.DataFrame, columns: pd.DataFrame, sites: pd.DataFrame,
                  sat_manifest: dict, measure: str, settings: GapSettings) -> list[str]:
    """A few console lines: how many gaps, the top ones, the satellite sites.

    Parameters
    ----------
    wards
        The ward table.
    columns
        The gap columns.
    sites
        The satellite table.
    sat_manifest
        The satellite manifest section.
    measure
        The need measure.
    settings
        Gap settings.

    Returns
    -------
    list[str]
    """
    n_gaps = int(columns["is_outreach_gap"].sum())
    lines = [f"Outreach gaps: {n_gaps} of {len(columns)} wards (need: {MEASURE_LABELS[measure]}; "
             f"walk threshold {settings.walk_threshold_min:g} min)"]
    top = columns[columns["is_outreach_gap"]].sort_values("gap_rank").head(3)
    for idx, row in top.iterrows():
        lines.append(f"  {int(row['gap_rank'])}. {wards.loc[idx, 'ward_name']}: {row['gap_reason']}")
    if len(sites):
        optimal = sat_manifest.get("optimal_need_covered")
        greedy = sat_manifest.get("greedy_need_covered")
        share = sites["cumulative_share_of_gap_need"].iloc[-1]
        lines.append(f"Satellite sites: {len(sites)} chosen, covering "
                     + (f"{100 * share:.0f} % of the gaps' unmet need" if pd.notna(share)
                        else "unmet need")
                     + f" (optimum {optimal}, greedy {greedy})")
        for _, row in sites.iterrows():
            lines.append(f"  {row['rank']}. {row['name']} ({row['ward_name']})")
    elif "skipped" in sat_manifest:
        lines.append(f"Satellite sites: none ({sat_manifest['skipped']})")
    return lines
