"""The study file and the project-wide settings: which boundary and layer files to read, the
period, the settings of each stage, and the defaults every study starts from.

A study is a TOML file. Paths are relative to the study file. Everything except the
boundaries has a default, so the smallest study is::

    [boundaries]
    path = "wards.gpkg"

    [layers.police_uk]
    path = "police_uk/"          # a CSV, a folder of CSVs or a zip of them

The sections ``[clusters]``, ``[gaps]`` and ``[publish]`` are handed as plain dicts to the
stage they belong to, which checks its own keys (see each stage's ``Settings``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import InputError

#: Analysis CRS: British National Grid, metres.
ANALYSIS_CRS = "EPSG:27700"
#: Map edge CRS: WGS84 longitude/latitude.
MAP_CRS = "EPSG:4326"

#: The measures of the ward table, in output order. Each becomes ``M_count`` and
#: ``M_rate_per_1000`` columns (see the output contract in README.md).
MEASURES: tuple[str, ...] = ("possession", "trafficking", "drug_offences", "asb")

#: Human-readable labels for the measures, used in maps, briefings and reasons.
MEASURE_LABELS: dict[str, str] = {
    "possession": "drug possession",
    "trafficking": "drug trafficking",
    "drug_offences": "all drug offences",
    "asb": "anti-social behaviour",
}

#: Rates are per this many residents.
RATE_PER = 1000

#: Default seed for permutation inference and demo generation.
DEFAULT_SEED = 20261122

#: Published counts from 1 to SUPPRESSION_THRESHOLD - 1 are shown as "<threshold".
SUPPRESSION_THRESHOLD = 5

#: Cluster statistics defaults (see geomisuse.clusters).
DEFAULT_CORRECTION = "fdr"
DEFAULT_ALPHA = 0.05
DEFAULT_WEIGHTS = "queen"

#: Walking access defaults (see geomisuse.gaps).
WALK_SPEED_KMH = 4.8
#: Street network distance is on average this many times the straight-line distance.
DETOUR_FACTOR = 1.3
WALK_THRESHOLD_MIN = 20.0
SATELLITE_SITES = 3

#: Default output folder of ``geomisuse run``/``geomisuse demo``.
DEFAULT_OUT = "maps"


#: Layer kinds a study may name under ``[layers.<kind>]``.
LAYER_KINDS = (
    "police_uk",           # street-level crime CSVs (Drugs, Anti-social behaviour)
    "mps_ward",            # MPS ward-level wide CSV (possession, trafficking, all drug offences)
    "asb_warnings",        # ASB warnings: a ward-level table or points
    "treatment_services",  # drug treatment services
    "pharmacies",          # community pharmacies, with a needle-exchange flag column
    "needle_exchanges",    # needle exchanges (every row is one)
    "estates",             # hotspot housing estates: polygons or named points
    "population",          # ward population
    "candidate_sites",     # candidate satellite outreach sites
    "residents",           # finer population layer (LSOA/OA points or polygons with counts)
)

_SECTIONS = {"study", "boundaries", "layers", "clusters", "gaps", "publish"}
_STUDY_KEYS = {"name", "borough", "period", "seed", "demo", "sources"}
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass
class LayerSpec:
    """One input named in the study file.

    Attributes
    ----------
    kind
        One of :data:`LAYER_KINDS` (or ``boundaries``).
    paths
        Absolute paths (a layer may list several files or folders).
    options
        Every other key of the layer's table (``columns`` mapping, ``format`` ...).
    """

    kind: str
    paths: list[Path]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> dict[str, str]:
        """Canonical field -> source column mapping given in the study file."""
        return dict(self.options.get("columns", {}))


@dataclass
class Study:
    """A parsed study file.

    Attributes
    ----------
    path
        The study file (``None`` for studies built in code).
    name
        Title used on maps and briefings.
    borough
        Borough name, where the boundaries do not carry one.
    period
        ``(first, last)`` month as ``YYYY-MM``, or ``None`` for every month in the data.
    seed
        Seed for permutation inference.
    demo
        Whether the inputs are the fictional demo borough (shown on every page).
    sources
        Free-text data source credits shown on the map and briefings.
    boundaries
        The ward boundary input.
    layers
        Layer kind -> input.
    clusters, gaps, publish
        The stage settings sections, as given.
    """

    path: Path | None
    name: str
    borough: str | None
    period: tuple[str, str] | None
    seed: int
    demo: bool
    sources: list[str]
    boundaries: LayerSpec
    layers: dict[str, LayerSpec]
    clusters: dict[str, Any] = field(default_factory=dict)
    gaps: dict[str, Any] = field(default_factory=dict)
    publish: dict[str, Any] = field(default_factory=dict)


def load_study(path: str | Path) -> Study:
    """Read and check a study file.

    Parameters
    ----------
    path
        The TOML study file.

    Returns
    -------
    Study

    Raises
    ------
    InputError
        Missing file, TOML syntax error, unknown section or key, bad period.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("study file not found; give the path to a .toml study file", path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"not valid TOML ({err})", path) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text; save the study file as UTF-8", path) from None
    return study_from_dict(data, path.parent.resolve(), path)


def study_from_dict(data: dict[str, Any], base: Path, path: Path | None = None) -> Study:
    """Build a :class:`Study` from the parsed TOML; relative paths are resolved against ``base``."""
    where = path or "study"
    unknown = set(data) - _SECTIONS
    if unknown:
        raise InputError(f"unknown section [{sorted(unknown)[0]}]; sections are "
                         f"{', '.join(sorted(_SECTIONS))}", where)
    head = data.get("study", {})
    bad = set(head) - _STUDY_KEYS
    if bad:
        raise InputError(f"unknown key '{sorted(bad)[0]}' in [study]; keys are {', '.join(sorted(_STUDY_KEYS))}",
                         where)
    if "boundaries" not in data or "path" not in data["boundaries"]:
        raise InputError("no [boundaries] path; add [boundaries] path = \"your_wards.gpkg\"", where)
    period = head.get("period")
    if period is not None:
        if (not isinstance(period, list) or len(period) != 2
                or not all(isinstance(m, str) and _MONTH.match(m) for m in period) or period[0] > period[1]):
            raise InputError('[study] period must be ["YYYY-MM", "YYYY-MM"], first month first', where)
        period = (period[0], period[1])
    layers = {}
    for kind, spec in data.get("layers", {}).items():
        if kind not in LAYER_KINDS:
            raise InputError(f"unknown layer [layers.{kind}]; layers are {', '.join(LAYER_KINDS)}", where)
        layers[kind] = _layer_spec(kind, spec, base, where)
    return Study(
        path=path.resolve() if path else None,
        name=str(head.get("name", "geomisuse study")),
        borough=head.get("borough"),
        period=period,
        seed=int(head.get("seed", DEFAULT_SEED)),
        demo=bool(head.get("demo", False)),
        sources=[str(s) for s in head.get("sources", [])],
        boundaries=_layer_spec("boundaries", data["boundaries"], base, where),
        layers=layers,
        clusters=dict(data.get("clusters", {})),
        gaps=_resolve_gap_paths(dict(data.get("gaps", {})), base),
        publish=dict(data.get("publish", {})),
    )


#: ``[gaps]`` settings that name files (resolved against the study file's folder).
GAP_PATH_KEYS = ("network", "postcodes")


def _resolve_gap_paths(gaps: dict[str, Any], base: Path) -> dict[str, Any]:
    """The ``[gaps]`` table with its file paths made absolute (other values as given)."""
    return {k: (str((base / v).resolve()) if k in GAP_PATH_KEYS and isinstance(v, str) else v)
            for k, v in gaps.items()}


def _layer_spec(kind: str, spec: Any, base: Path, where: Path | str) -> LayerSpec:
    if not isinstance(spec, dict) or not ("path" in spec or "paths" in spec):
        raise InputError(f"[{'layers.' if kind != 'boundaries' else ''}{kind}] needs a path", where)
    raw = spec.get("paths", spec.get("path"))
    raw = raw if isinstance(raw, list) else [raw]
    paths = [(base / str(p)).resolve() for p in raw]
    options = {k: v for k, v in spec.items() if k not in ("path", "paths")}
    return LayerSpec(kind=kind, paths=paths, options=options)


def months_between(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` inclusive, as ``YYYY-MM`` strings."""
    return [str(p) for p in pd.period_range(first, last, freq="M")]


def previous_period(months: list[str]) -> list[str]:
    """The months of the period of equal length just before ``months``."""
    first = pd.Period(months[0], freq="M")
    return [str(first - k) for k in range(len(months), 0, -1)]
