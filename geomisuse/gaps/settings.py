"""Settings of the gap stage (the study file's ``[gaps]`` table): need rule, access rule,
walking, satellite sites, with their defaults and checks."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields


from ..errors import InputError
from .walking import walk_radius_m
from ..vocabulary import GI_CONFIDENCE
from ..config import DETOUR_FACTOR, MEASURES, SATELLITE_SITES, WALK_SPEED_KMH, WALK_THRESHOLD_MIN


#: Need measures tried, in order, when the study does not name one.
NEED_MEASURE_FALLBACK = ("possession", "drug_offences", "trafficking")


#: Criteria a need rule may combine (a ward meeting any one has high need).
NEED_CRITERIA = ("lisa", "gi", "top_rate")


ACCESS_RULES = ("each_kind", "any_service")


SATELLITE_DEMAND = ("gap_wards", "all_wards")





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
    network
        OSM extract (``.osm.pbf`` or ``.osm``) to walk over; ``None`` (default): straight line
        times ``detour_factor``. The study file's path is relative to the study file.
    network_max_snap_m
        A resident point farther than this (metres) from any walkable way is reported; a ward
        with most of its points so is outside the network (an error naming it).
    postcodes
        Postcode file (Code-Point Open CSV: ``Postcode``, ``Eastings``, ``Northings``) naming
        the nearest postcode of each suggested satellite site; ``None``: no postcodes.
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
    network: str | None = None
    network_max_snap_m: float = 200.0
    postcodes: str | None = None

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
        for key in ("network", "postcodes"):
            if getattr(self, key) is not None and not isinstance(getattr(self, key), str):
                raise bad(key, "a file path in quotes")
        number("network_max_snap_m", 0.0, low_open=True)

    @property
    def walk_radius_m(self) -> float:
        """Straight-line radius (metres) that the walk threshold reaches."""
        return walk_radius_m(self.walk_threshold_min, self.walk_speed_kmh,
                                    self.detour_factor)

