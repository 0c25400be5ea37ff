"""The study file and every stage's settings: one typed schema, one place for defaults.

A study is a TOML file. Paths are relative to the study file. Everything except the
boundaries has a default, so the smallest study is::

    [boundaries]
    path = "wards.gpkg"

    [layers.police_uk]
    path = "police_uk/"          # a CSV, a folder of CSVs or a zip of them

The whole file is checked when it is read (:func:`load_study`), by the pydantic models
below: ``[study]`` (:class:`StudySection`), ``[boundaries]`` (:class:`BoundariesSection`),
each ``[layers.KIND]`` (:class:`LayerSection`, one model per kind with the ``columns`` it
can map: :data:`LAYER_COLUMNS`), ``[clusters]`` (:class:`ClusterSettings`), ``[gaps]``
(:class:`GapSettings`) and ``[publish]`` (:class:`PublishSettings`). Types, ranges and
choices are checked, booleans must be TOML ``true``/``false`` (not ``"no"``), and an unknown
key at any level is refused with a "did you mean" hint. ``geomisuse validate`` therefore
checks exactly what ``geomisuse run`` would; a bad value is a one-line :class:`InputError`
naming the file, the ``[section] key`` and what to write instead.

Adding a key
------------
Add one annotated field, with its default, to the model of its section, and describe it in
the model's docstring and in README.md's study-file reference::

    class GapSettings(Section):
        ...
        network: Literal["none", "osm"] = "none"        # a choice
        postcodes: bool = False                           # true/false only
        context_km: float = Field(0.0, ge=0)              # a range

A layer option goes on :class:`LayerSection` (every ``[layers.KIND]`` table) or, for the
boundaries, on :class:`BoundariesSection`; it reaches the loader as ``spec.options["key"]``. A
column a kind can map goes on that kind's ``...Columns`` model (:data:`LAYER_COLUMNS`).
Cross-field rules go in a ``model_validator`` of the model.
Nothing else needs changing: the error messages, the hints and ``validate`` follow
(``tests/test_notebook.py`` checks that the README's reference lists exactly these keys).
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Mapping, get_args

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

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
#: Spatial weights a study may choose in ``[clusters] weights``.
WEIGHTS_KINDS = ("queen", "knn", "distance")
#: Multiple-testing corrections a study may choose in ``[clusters] correction``.
CORRECTIONS = ("none", "bonferroni", "fdr")
#: Rate adjustments of global Moran's I (``[clusters] rate_adjustment``).
RATE_ADJUSTMENTS = ("auto", "none", "empirical_bayes")
#: Time steps of the emerging hot spot analysis (``[clusters] time_step``).
TIME_STEPS = ("month", "quarter", "year")

#: Walking access defaults (see geomisuse.gaps).
WALK_SPEED_KMH = 4.8
#: Street network distance is on average this many times the straight-line distance.
DETOUR_FACTOR = 1.3
WALK_THRESHOLD_MIN = 20.0
SATELLITE_SITES = 3
#: Criteria a need rule may combine (a ward meeting any one has high need).
NEED_CRITERIA = ("lisa", "gi", "top_rate")
#: How poor access is judged (``[gaps] access_rule``).
ACCESS_RULES = ("each_kind", "any_service")
#: Whose unmet need satellite sites cover (``[gaps] satellite_demand``).
SATELLITE_DEMAND = ("gap_wards", "all_wards")
#: Solvers of the covering model (``[gaps] solver``): scipy's HiGHS (``milp``, default), or
#: CBC or HiGHS through spopt and PuLP.
SOLVERS = ("milp", "cbc", "highs")
#: How police.uk files are read (``[study] engine``): ``local`` (this process), ``dask``
#: (partitions on a Dask cluster) or ``auto`` (Dask above DASK_AUTO_BYTES of files).
ENGINES = ("local", "dask", "auto")
#: Above this many bytes of police.uk CSV, ``engine = "auto"`` reads them on Dask (about
#: three national years: one year is ~6 M rows, ~1.3 GB).
DASK_AUTO_BYTES = 4 * 1024 ** 3

#: Default output folder of ``geomisuse run``/``geomisuse demo``.
DEFAULT_OUT = "maps"


#: Layer kinds a study may name under ``[layers.<kind>]``.
LAYER_KINDS = (
    "police_uk",           # street-level crime CSVs (Drugs, Anti-social behaviour)
    "mps_ward",            # MPS ward-level wide CSV (possession, trafficking, all drug offences)
    "mps_lsoa",            # MPS LSOA-level annual drug offences (calendar-year columns), via a lookup
    "asb_warnings",        # ASB warnings: a ward-level table or points
    "treatment_services",  # drug treatment services
    "pharmacies",          # community pharmacies, with a needle-exchange flag column
    "needle_exchanges",    # needle exchanges (every row is one)
    "estates",             # hotspot housing estates: polygons or named points
    "population",          # ward population
    "candidate_sites",     # candidate satellite outreach sites
    "residents",           # finer population layer (LSOA/OA points or polygons with counts)
)

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


# ---------------------------------------------------------------------------------------------
# Walking: the one place where minutes and metres are converted.
# ---------------------------------------------------------------------------------------------

def walk_speed_m_per_min(walk_speed_kmh: float) -> float:
    """Walking speed in metres per minute.

    Parameters
    ----------
    walk_speed_kmh
        Walking speed in km/h (4.8 km/h is a typical adult pace).

    Returns
    -------
    float
        Metres per minute (4.8 km/h -> 80 m/min).
    """
    return walk_speed_kmh * 1000.0 / 60.0


def walk_minutes(distance_m: np.ndarray | float, walk_speed_kmh: float,
                 detour_factor: float) -> np.ndarray | float:
    """Walking minutes for a straight-line distance.

    Parameters
    ----------
    distance_m
        Straight-line distance(s) in metres.
    walk_speed_kmh
        Walking speed in km/h.
    detour_factor
        Street route length divided by straight-line length (>= 1).

    Returns
    -------
    numpy.ndarray or float
        Minutes: ``distance_m * detour_factor / (speed in m/min)``.
    """
    minutes = np.asarray(distance_m, dtype=float) * detour_factor / walk_speed_m_per_min(walk_speed_kmh)
    return float(minutes) if minutes.ndim == 0 else minutes


def walk_radius_m(threshold_min: float, walk_speed_kmh: float, detour_factor: float) -> float:
    """Straight-line radius that a walk of ``threshold_min`` minutes reaches.

    Parameters
    ----------
    threshold_min
        Walk threshold in minutes.
    walk_speed_kmh
        Walking speed in km/h.
    detour_factor
        Street route length divided by straight-line length (>= 1).

    Returns
    -------
    float
        Radius in metres (20 min at 4.8 km/h with detour 1.3 -> 1,230.8 m).
    """
    return threshold_min * walk_speed_m_per_min(walk_speed_kmh) / detour_factor


# ---------------------------------------------------------------------------------------------
# The schema. Every table of the study file is a Section.
# ---------------------------------------------------------------------------------------------

#: A number that must be finite (TOML allows nan and inf).
Number = Annotated[float, Field(allow_inf_nan=False)]
#: A non-empty text value.
Text = Annotated[str, Field(min_length=1)]


class Section(BaseModel):
    """Base of every table of the study file.

    Unknown keys are refused, types are strict (``"no"`` is not a boolean, ``"5"`` not a
    number; a whole number is accepted for a decimal one), and assigning an attribute is
    checked the same way. ``SECTION`` names the table in messages. Settings from a file or a
    dict (:meth:`from_options`) raise :class:`InputError`; made in code (``GapSettings(k=...)``)
    they raise pydantic's ``ValidationError``, a programming error.
    """

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)

    SECTION: ClassVar[str] = ""

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | "Section" | None = None,
                     path: str | Path | None = None) -> "Section":
        """Settings from one table of a study file.

        Parameters
        ----------
        options
            The table as read from TOML (a dict; ``None`` or empty: all defaults), or
            settings already checked (returned as they are).
        path
            The study file, for messages.

        Returns
        -------
        Section
            An instance of the class it is called on.

        Raises
        ------
        InputError
            One line naming the ``[section] key`` and what to write instead.
        """
        if isinstance(options, cls):
            return options
        try:
            return cls.model_validate(dict(options or {}))
        except ValidationError as err:
            raise schema_error(err, cls, path, prefix=(cls.SECTION,) if cls.SECTION else ()) from None

    def with_changes(self, **changes: Any) -> "Section":
        """A checked copy with some values changed (the original is left as it is).

        Raises
        ------
        InputError
            A changed value is not allowed.
        """
        return type(self).from_options({**self.model_dump(), **changes})


def _section_of(model: type[BaseModel]) -> str:
    return getattr(model, "SECTION", "") or ""


class StudySection(Section):
    """The ``[study]`` table.

    Attributes
    ----------
    name
        Title used on maps and briefings.
    borough
        Borough name, where the boundaries do not carry one.
    period
        ``["YYYY-MM", "YYYY-MM"]``, first and last month; default every month in the data.
    seed
        Seed for permutation inference (``--seed`` overrides).
    demo
        Whether the inputs are the fictional demo borough (shown on every page).
    sources
        Free-text data source credits shown on the map and briefings.
    engine
        How police.uk files are read: ``local``, ``dask`` or ``auto`` (:data:`ENGINES`).
    scheduler
        Address of an existing Dask scheduler (``tcp://host:8786``); without it the Dask engine
        starts a local cluster of worker processes for the run.
    """

    SECTION: ClassVar[str] = "study"

    name: Text = "geomisuse study"
    borough: str | None = None
    period: list[str] | None = None
    seed: int = DEFAULT_SEED
    demo: bool = False
    sources: list[str] = Field(default_factory=list)
    engine: Literal[ENGINES] = "local"
    scheduler: str | None = None

    @field_validator("period")
    @classmethod
    def _months_in_order(cls, period: list[str] | None) -> list[str] | None:
        if period is not None and (len(period) != 2 or not all(_MONTH.match(m) for m in period)
                                   or period[0] > period[1]):
            raise ValueError('must be ["YYYY-MM", "YYYY-MM"], first month first')
        return period


class _InputSection(Section):
    """The keys of every input table: where the file is and which rows to use.

    Attributes
    ----------
    path
        A file or folder, relative to the study file.
    paths
        Several files or folders (instead of ``path``).
    where
        Column -> value (or list of values) a row must have to be used, e.g.
        ``{Status_Code = "A"}``; other rows are excluded (counted, not listed).
    """

    path: Text | None = None
    paths: list[Text] | None = None
    where: dict[str, Any] | None = None

    @field_validator("where")
    @classmethod
    def _plain_values(cls, where: dict[str, Any] | None) -> dict[str, Any] | None:
        scalar = (str, int, float)
        for column, wanted in (where or {}).items():
            values = wanted if isinstance(wanted, list) else [wanted]
            if not values or not all(isinstance(v, scalar) for v in values):
                raise ValueError(f"where {column} must be a value or a list of values, "
                                 f'e.g. {{{column} = "A"}} or {{{column} = ["A", "B"]}}')
        return where

    @model_validator(mode="after")
    def _one_path(self) -> "_InputSection":
        if self.path is None and self.paths is None:
            raise ValueError('needs path = "file" (or paths = ["file", ...])')
        if self.path is not None and self.paths is not None:
            raise ValueError("has both path and paths; keep one")
        if self.paths is not None and not self.paths:
            raise ValueError("paths is empty; list at least one file")
        return self

    def spec(self, kind: str, base: Path) -> "LayerSpec":
        """The :class:`LayerSpec` handed to the loader: absolute paths and the other options
        (keys left unset are absent; ``columns`` is always there, maybe empty). Options that
        name files (``lookup``, ``areas``) are made absolute too."""
        raw = self.paths if self.paths is not None else [self.path]
        options = self.model_dump(exclude={"path", "paths", "columns"}, exclude_none=True)
        columns = getattr(self, "columns", None)
        options["columns"] = columns.model_dump(exclude_none=True) if columns is not None else {}
        for key in PATH_OPTIONS:  # files a layer names besides its own, also relative to the study
            if key in options:
                value = options[key]
                resolved = [str((base / p).resolve()) for p in (value if isinstance(value, list) else [value])]
                options[key] = resolved if isinstance(value, list) else resolved[0]
        return LayerSpec(kind=kind, paths=[(base / p).resolve() for p in raw], options=options)


#: Layer options that name files: a small-area -> ward lookup, or the small areas' polygons.
PATH_OPTIONS = ("lookup", "areas")


class SmallAreaKeys(Section):
    """The keys of a layer that may come by small area (LSOA/OA) instead of by ward.

    Attributes
    ----------
    lookup
        An ONS best-fit lookup CSV (small-area code -> ward code columns, e.g. ``LSOA21CD`` ->
        ``WD25CD``), or a list adding the ONS LSOA 2011 -> 2021 lookup.
    areas
        The small areas' polygons (GeoPackage/GeoJSON/Shapefile): each area goes to the ward
        holding a point inside it.
    """

    lookup: Text | list[Text] | None = None
    areas: Text | None = None


class ForceAreaKeys(Section):
    """The keys of a police.uk layer about the area it covers.

    Attributes
    ----------
    covers
        Borough name(s) the files cover; default: from their force (``Falls within``: the City
        of London Police covers the City, the Metropolitan Police Service the other boroughs).
    """

    covers: Text | list[Text] | None = None


class BaseColumns(Section):
    """Column mapping of a layer: canonical field -> the source column holding it."""


class LayerSection(_InputSection):
    """The keys every ``[layers.KIND]`` table takes (each kind adds its ``columns`` fields).

    Attributes
    ----------
    columns
        Canonical field -> source column, where detection does not find it (see each kind's
        ``...Columns`` model for the fields it can map).
    public
        Whether the layer's counts are already public at ward level: ``false`` protects them
        (small counts suppressed, audited), ``true`` publishes them in full; default by source
        (the MPS ward file and police.uk points are public, the other sources are not).
    """

    columns: BaseColumns = Field(default_factory=BaseColumns)
    public: bool | None = None


def _columns_model(name: str, doc: str, *fields: str, points: bool = True) -> type[BaseColumns]:
    """A ``columns`` model: each field an optional source column name; with ``points``, also
    the coordinate columns (``longitude``/``latitude`` or ``easting``/``northing``)."""
    coordinates = ("longitude", "latitude", "easting", "northing") if points else ()
    return create_model(name, __base__=BaseColumns, __doc__=doc,
                        **{field: (Text | None, None) for field in coordinates + fields})


_SITE_COLUMNS = _columns_model("SiteColumns", "Mappable fields of service, pharmacy, needle-exchange and "
                               "candidate site files.", "name", "service_type", "needle_exchange")

#: Layer kind -> the ``columns`` fields it can map (the fields its loader looks for). A layer
#: table is :class:`LayerSection` with that ``columns`` model.
LAYER_COLUMNS: dict[str, type[BaseColumns]] = {
    "police_uk": _columns_model("PoliceUkColumns", "Mappable fields of police.uk street-level CSVs.",
                                "month", "crime_type", "crime_id", "location", "lsoa_code"),
    "mps_ward": _columns_model("MpsWardColumns", "Mappable fields of the MPS ward-level file (month columns "
                               "are found by their YYYYMM names).", "major", "minor", "ward_code", "ward_name",
                               points=False),
    "mps_lsoa": _columns_model("MpsLsoaColumns", "Mappable fields of the MPS LSOA-level annual file (year "
                               "columns are found by their YYYY names).", "lsoa_code", "major", points=False),
    "asb_warnings": _columns_model("AsbColumns", "Mappable fields of ASB warnings (a ward table, or points "
                                   "with a month, or a table by small area with lookup/areas).", "ward_code", "ward_name",
                                   "month", "count", "lsoa_code"),
    "treatment_services": _SITE_COLUMNS,
    "pharmacies": _SITE_COLUMNS,
    "needle_exchanges": _SITE_COLUMNS,
    "estates": _columns_model("EstateColumns", "Mappable fields of hotspot estates.", "name"),
    "population": _columns_model("PopulationColumns", "Mappable fields of the ward population table.",
                                 "ward_code", "ward_name", "population", points=False),
    "candidate_sites": _SITE_COLUMNS,
    "residents": _columns_model("ResidentColumns", "Mappable fields of the finer residents layer.", "residents"),
}
if tuple(LAYER_COLUMNS) != LAYER_KINDS:  # one list of kinds: a new kind needs its columns here
    raise RuntimeError("LAYER_COLUMNS must name every kind of LAYER_KINDS, in order")


#: Layer kind -> the extra keys it takes beyond :class:`LayerSection`.
LAYER_KEYS: dict[str, type[Section]] = {"population": SmallAreaKeys, "mps_lsoa": SmallAreaKeys,
                                        "asb_warnings": SmallAreaKeys, "police_uk": ForceAreaKeys}


def _layer_model(kind: str, columns: type[BaseColumns]) -> type[LayerSection]:
    """The model of one ``[layers.KIND]`` table: :class:`LayerSection` with the kind's columns
    (and its extra keys, :data:`LAYER_KEYS`)."""
    name = "".join(part.title() for part in kind.split("_")) + "Layer"
    bases = (LAYER_KEYS[kind], LayerSection) if kind in LAYER_KEYS else LayerSection
    model = create_model(name, __base__=bases, columns=(columns, Field(default_factory=columns)))
    model.SECTION = f"layers.{kind}"
    model.__doc__ = f"The ``[layers.{kind}]`` table (see :class:`LayerSection`)."
    return model


#: The ``[layers]`` tables: one optional input per kind (see :data:`LAYER_KINDS`).
LayersSection = create_model(
    "LayersSection", __base__=Section,
    **{kind: (_layer_model(kind, columns) | None, None) for kind, columns in LAYER_COLUMNS.items()})
LayersSection.SECTION = "layers"


class BoundariesSection(_InputSection):
    """The ``[boundaries]`` table: the ward boundary file.

    Attributes
    ----------
    layer
        Layer name inside a GeoPackage with several.
    code_column, name_column, borough_column
        Source columns of the GSS ward code, ward name and borough name; detected when not
        given (``WD22CD``/``WD22NM``, ``GSS_CODE``/``NAME``, ``ward22_code`` ...).
    context_km
        Take the file's other wards within this many km of the study's wards (``where``) as
        context: the statistics see them, the outputs do not.
    context
        ``"neighbours"``: the other wards sharing a boundary with the study's, as context.
    """

    SECTION: ClassVar[str] = "boundaries"

    layer: Text | None = None
    code_column: Text | None = None
    name_column: Text | None = None
    borough_column: Text | None = None
    context_km: Annotated[float, Field(gt=0)] | None = None
    context: Literal["neighbours"] | None = None


class ClusterSettings(Section):
    """The ``[clusters]`` table of a study file.

    Attributes
    ----------
    measures
        Measures to analyse; default every measure of :data:`MEASURES` whose
        ``M_rate_per_1000`` column has data.
    weights
        ``"queen"`` (default), ``"knn"`` or ``"distance"``.
    k
        Neighbours for ``"knn"``.
    distance_m
        Distance band in metres for ``"distance"`` (centroid to centroid).
    permutations
        LISA permutations. ``None``: the default rule of
        :func:`~geomisuse.clusters.inference.default_permutations` (999 with no correction;
        with ``fdr``/``bonferroni`` enough that a single ward can be significant, with
        headroom: 1,999 for 20 wards, 99,999 for ~700).
    global_permutations
        Permutations of global Moran's I: one test per measure, so GeoDa's 999 (smallest
        two-sided p 0.002) is enough; raise it for finer p-values. 0: no permutation test.
    correction
        ``"fdr"`` (Benjamini–Hochberg, default), ``"bonferroni"`` or ``"none"``; applied over
        the wards, separately for each measure and for LISA and Gi*.
    alpha
        Significance level of the LISA labels, of the emerging hot spot bins and trends and of
        the test of change (Gi* bins use ArcGIS's fixed 90/95/99 %).
    rate_adjustment
        Global Moran's I on ``"empirical_bayes"`` standardised rates (Assunção & Reis 1999),
        on the raw rates (``"none"``), or ``"auto"``: empirical Bayes when the measure's counts
        and every population are there.
    time_step
        Time step of the emerging hot spot analysis (:mod:`geomisuse.clusters.emerging`):
        ``"month"`` (default), ``"quarter"`` or ``"year"``.
    time_k
        Earlier time steps in each space-time neighbourhood (default 1; ArcGIS's
        "neighborhood time step", sfdep's ``k``). Not ``k``, which is the k-nearest count.
    """

    SECTION: ClassVar[str] = "clusters"

    measures: list[Literal[MEASURES]] | None = None
    weights: Literal[WEIGHTS_KINDS] = DEFAULT_WEIGHTS
    k: int = Field(6, ge=1)
    distance_m: Number | None = Field(None, gt=0)
    permutations: int | None = Field(None, ge=1)
    global_permutations: int = Field(999, ge=0)
    correction: Literal[CORRECTIONS] = DEFAULT_CORRECTION
    alpha: Number = Field(DEFAULT_ALPHA, gt=0, lt=1)
    rate_adjustment: Literal[RATE_ADJUSTMENTS] = "auto"
    time_step: Literal[TIME_STEPS] = "month"
    time_k: int = Field(1, ge=0)

    @model_validator(mode="after")
    def _distance_band(self) -> "ClusterSettings":
        if self.weights == "distance" and self.distance_m is None:
            raise ValueError('weights = "distance" needs distance_m, a distance in metres above 0')
        return self


class GapSettings(Section):
    """The ``[gaps]`` table: need rule, access rule, walking, satellite sites.

    Attributes
    ----------
    need_measure
        Measure whose need is judged (``possession``, ``trafficking``, ``drug_offences``,
        ``asb``). ``None`` (default): ``possession``, or when the study has no possession
        data, ``drug_offences``, then ``trafficking``. A named measure without data is an error.
    need_rule
        Criteria of high need, any one suffices: ``lisa`` (High-High LISA cluster), ``gi``
        (Gi* bin >= ``gi_min_bin``), ``top_rate`` (rate in the top ``top_rate_share`` of wards).
        Without cluster columns only ``top_rate`` can apply (a warning says so). One name or a list.
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
        ``milp`` (default: scipy's HiGHS through ``scipy.optimize.milp``), or through spopt and
        PuLP ``cbc`` (bundled with PuLP < 4) or ``highs`` (needs ``highspy``).
    solver_time_limit_s
        Time limit of the solver in seconds.
    network
        OSM extract (``.osm.pbf``, ``.osm``) or osmnx ``.graphml`` to walk over, relative to
        the study file;
        ``None`` (default): straight line times ``detour_factor`` (see README "Access").
    network_max_snap_m
        A resident point farther than this (metres) from any walkable way is reported; a ward
        with most of its points so is outside the network (an error naming it).
    postcodes
        Postcode file (Code-Point Open CSV: ``Postcode``, ``Eastings``, ``Northings``), relative
        to the study file, naming each satellite site's nearest postcode; ``None``: none.
    """

    SECTION: ClassVar[str] = "gaps"

    need_measure: Literal[MEASURES] | None = None
    # TOML gives a list (or one name); kept as a tuple so the settings stay hashable-looking.
    need_rule: Annotated[tuple[Literal[NEED_CRITERIA], ...], Field(strict=False, min_length=1)] = NEED_CRITERIA
    top_rate_share: Number = Field(0.2, gt=0, le=1)
    gi_min_bin: int = Field(2, ge=1, le=3)
    access_share: Number = Field(0.5, gt=0, le=1)
    access_rule: Literal[ACCESS_RULES] = "each_kind"
    walk_speed_kmh: Number = Field(WALK_SPEED_KMH, gt=0)
    detour_factor: Number = Field(DETOUR_FACTOR, ge=1)
    walk_threshold_min: Number = Field(WALK_THRESHOLD_MIN, gt=0)
    satellites: int = Field(SATELLITE_SITES, ge=0)
    satellite_demand: Literal[SATELLITE_DEMAND] = "all_wards"
    sample_points: int = Field(100, ge=1)
    grid_spacing_m: Number = Field(400.0, ge=0)
    candidate_grid: bool | None = None
    solver: Literal[SOLVERS] = "milp"
    solver_time_limit_s: Number = Field(60.0, gt=0)
    network: Text | None = None
    network_max_snap_m: Number = Field(200.0, gt=0)
    postcodes: Text | None = None

    @field_validator("need_rule", mode="before")
    @classmethod
    def _one_criterion(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @property
    def walk_radius_m(self) -> float:
        """Straight-line radius (metres) that the walk threshold reaches."""
        return walk_radius_m(self.walk_threshold_min, self.walk_speed_kmh, self.detour_factor)

    def walk_minutes(self, distance_m: np.ndarray | float) -> np.ndarray | float:
        """Walking minutes for straight-line distance(s) in metres, at these settings."""
        return walk_minutes(distance_m, self.walk_speed_kmh, self.detour_factor)

    @property
    def walk_network_m(self) -> float:
        """Walking distance (metres) the walk threshold reaches over a street network (no
        detour factor: the route is walked as it is)."""
        return walk_radius_m(self.walk_threshold_min, self.walk_speed_kmh, 1.0)


class PublishSettings(Section):
    """The ``[publish]`` table.

    Attributes
    ----------
    suppression_threshold
        Smallest non-zero count shown as a number (default 5: 1-4 show as ``<5``; 1 turns
        suppression off).
    unsuppressed
        Publish real counts, for analysts' internal use; said in the manifest and on every page.
    tiles
        Basemap: ``"OpenStreetMap"``, another folium tile name, or ``"none"``.
    offline
        Embed the map's JavaScript and CSS so it renders with no network (the default: council
        networks often block CDNs); ``false`` links them from a CDN instead (a smaller page).
    briefings
        Write ward briefings.
    pdf
        Also print the briefings to ``briefings/briefings.pdf`` with headless Chromium (Debian's
        ``chromium`` package and the ``playwright`` Python package); skipped with a warning
        when Chromium is not installed.
    map_simplify_m
        Tolerance (metres, EPSG:27700) of the coverage simplification of ward polygons on the
        map; 0 keeps every vertex. The exports are never simplified.
    suppress
        ``"sources"`` (default): counts from sources whose publisher releases them at ward
        level (the MPS ward file, police.uk points) are published in full, the others (ASB
        warnings, any layer marked ``public = false``) are protected; ``"all"`` protects every
        count. A layer's ``public = true`` publishes its counts in full.
    rule
        ``"threshold"`` (default): protected counts 1 to ``suppression_threshold - 1`` show as
        ``<threshold``; ``"round5"`` (NHS style): protected counts 1-7 show as ``<8`` and the
        others are rounded to the nearest 5.
    """

    SECTION: ClassVar[str] = "publish"

    suppression_threshold: int = Field(SUPPRESSION_THRESHOLD, ge=1)
    unsuppressed: bool = False
    tiles: Text = "OpenStreetMap"
    offline: bool = True
    briefings: bool = True
    pdf: bool = False
    map_simplify_m: Number = Field(10.0, ge=0)
    suppress: Literal["sources", "all"] = "sources"
    rule: Literal["threshold", "round5"] = "threshold"


class StudyFile(Section):
    """The whole study file, as read from TOML."""

    study: StudySection = Field(default_factory=StudySection)
    boundaries: BoundariesSection | None = None
    layers: LayersSection = Field(default_factory=LayersSection)
    clusters: ClusterSettings = Field(default_factory=ClusterSettings)
    gaps: GapSettings = Field(default_factory=GapSettings)
    publish: PublishSettings = Field(default_factory=PublishSettings)


# ---------------------------------------------------------------------------------------------
# Schema errors as one line.
# ---------------------------------------------------------------------------------------------

def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside an annotation such as ``X | None``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _walk(model: type[BaseModel], loc: tuple) -> tuple[type[BaseModel] | None, tuple, tuple]:
    """Follow ``loc`` through nested models: (innermost model, its path, the rest of ``loc``)."""
    path: tuple = ()
    for i, part in enumerate(loc):
        fields = model.model_fields
        if not isinstance(part, str) or part not in fields:
            return model, path, loc[i:]
        inner = _model_in(fields[part].annotation)
        if inner is None:
            return model, path, loc[i:]
        model, path = inner, path + (part,)
    return model, path, ()


def _header(names: tuple) -> str:
    return "[" + ".".join(str(n) for n in names) + "]" if names else "the study file"


def _choices(values: Any) -> str:
    return ", ".join(str(v) for v in values)


def toml_value(value: Any) -> str:
    """A value as it would be written in TOML (``true``, ``"text"``, ``[1, 2]``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def did_you_mean(word: str, known: list[str]) -> str:
    """`` did you mean 'x'?`` for the closest known word, or nothing."""
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f" did you mean '{close[0]}'?" if close else ""


#: pydantic's wording -> the words analysts read in other messages.
_WORDING = (("Input should be", "must be"), ("a valid integer", "a whole number"),
            ("a valid number", "a number"), ("greater than or equal to", "at least"),
            ("less than or equal to", "at most"), ("greater than", "above"), ("less than", "below"),
            ("List should have at least 1 item after validation, not 0", "must list at least one"),
            ("Tuple should have at least 1 item after validation, not 0", "must list at least one"),
            ("a valid string", "text in quotes"), ("a valid list", "a list such as [\"a\", \"b\"]"))


def schema_error(err: ValidationError, root: type[BaseModel], path: str | Path | None,
                 prefix: tuple = ()) -> InputError:
    """The first problem of a validation error as a one-line :class:`InputError`.

    Parameters
    ----------
    err
        pydantic's error.
    root
        The model that was validated (to find the known keys at the problem's level).
    path
        The study file, prefixed to the message.
    prefix
        Table names above ``root`` (``("gaps",)`` when only ``[gaps]`` was validated).

    Returns
    -------
    InputError
        ``FILE: [section] key ...: what is wrong; what to write``.
    """
    problem = err.errors(include_url=False)[0]
    loc = tuple(problem["loc"])
    model, where, rest = _walk(root, loc)
    header = _header(prefix + where)
    kind = problem["type"]
    if kind == "extra_forbidden" and len(rest) == 1:
        word = str(rest[0])
        known = [n for n in model.model_fields]
        if where == () and not prefix and root is StudyFile:
            return InputError(f"unknown section [{word}];{did_you_mean(word, known)} sections are "
                              f"{_choices(known)}", path)
        if model is LayersSection:
            return InputError(f"unknown layer [layers.{word}];{did_you_mean(word, known)} layers are "
                              f"{_choices(known)}", path)
        what = "column field" if issubclass(model, BaseColumns) else "key"
        return InputError(f"{header} unknown {what} '{word}';{did_you_mean(word, known)} "
                          f"{what}s are {_choices(known) or 'none'}", path)
    key = "".join(f"[{p}]" if isinstance(p, int) else ("" if i == 0 else ".") + str(p)
                  for i, p in enumerate(rest))
    message = str(problem["msg"]).removeprefix("Value error, ")
    for theirs, ours in _WORDING:
        message = message.replace(theirs, ours)
    if kind == "bool_type":
        message = "must be true or false (TOML booleans, without quotes)"
    elif kind == "missing":
        message = "is missing"
    value = problem.get("input")
    shown = f" = {toml_value(value)}" if key and kind != "missing" and not isinstance(value, dict) else ""
    return InputError(f"{header} {key}{shown}: {message}".replace("  ", " ").replace(" :", ":"), path)


# ---------------------------------------------------------------------------------------------
# The study as the stages use it.
# ---------------------------------------------------------------------------------------------

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
        Every other key of the layer's table, as checked by the schema (``columns`` mapping,
        ``where`` ...); keys left unset are absent.
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
    """A checked study file.

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
        The stage settings (:class:`ClusterSettings`, :class:`GapSettings`,
        :class:`PublishSettings`), checked.
    engine, scheduler
        How police.uk files are read and on which Dask scheduler (see :class:`StudySection`).
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
    clusters: ClusterSettings = field(default_factory=ClusterSettings)
    gaps: GapSettings = field(default_factory=GapSettings)
    publish: PublishSettings = field(default_factory=PublishSettings)
    engine: str = "local"
    scheduler: str | None = None


def load_study(path: str | Path) -> Study:
    """Read and check a study file: every section, as ``geomisuse run`` uses it.

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
        Missing file, TOML syntax error, unknown section or key (at any level), a value of
        the wrong type or out of range, a bad period.
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


def study_from_dict(data: Mapping[str, Any], base: Path, path: Path | None = None) -> Study:
    """Check the parsed TOML of a study and build a :class:`Study`.

    Parameters
    ----------
    data
        The study file's tables, as ``tomllib`` reads them (not changed).
    base
        Folder that relative paths are resolved against.
    path
        The study file, for messages and :attr:`Study.path`.

    Returns
    -------
    Study

    Raises
    ------
    InputError
        The first problem, on one line naming the ``[section] key``.
    """
    where = path or "study"
    try:
        checked = StudyFile.model_validate(dict(data))
    except ValidationError as err:
        raise schema_error(err, StudyFile, where) from None
    if checked.boundaries is None:
        raise InputError("no [boundaries] path; add [boundaries] path = \"your_wards.gpkg\"", where)
    head = checked.study
    # In the study file's order: the accounting is printed and recorded in that order.
    layers = {kind: getattr(checked.layers, kind).spec(kind, base) for kind in data.get("layers", {})}
    return Study(
        path=path.resolve() if path else None,
        name=head.name,
        borough=head.borough,
        period=tuple(head.period) if head.period else None,
        seed=head.seed,
        demo=head.demo,
        sources=list(head.sources),
        boundaries=checked.boundaries.spec("boundaries", base),
        layers=layers,
        clusters=checked.clusters,
        gaps=_resolve_gap_paths(checked.gaps, base),
        publish=checked.publish,
        engine=head.engine,
        scheduler=head.scheduler,
    )


#: ``[gaps]`` settings that name files (resolved against the study file's folder).
GAP_PATH_KEYS = ("network", "postcodes")


def _resolve_gap_paths(gaps: GapSettings, base: Path) -> GapSettings:
    """The ``[gaps]`` settings with their file paths made absolute (a new object)."""
    changes = {k: str((base / getattr(gaps, k)).resolve()) for k in GAP_PATH_KEYS
               if getattr(gaps, k) is not None}
    return gaps.with_changes(**changes) if changes else gaps


def months_between(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` inclusive, as ``YYYY-MM`` strings."""
    return [str(p) for p in pd.period_range(first, last, freq="M")]


def previous_period(months: list[str]) -> list[str]:
    """The months of the period of equal length just before ``months``."""
    first = pd.Period(months[0], freq="M")
    return [str(first - k) for k in range(len(months), 0, -1)]
