"""The stages of a study run, wired in order: load -> ward table -> clusters -> gaps.

:func:`analyse` runs them all on a :class:`StudyRun` and :func:`geomisuse.publish.write_outputs`
writes the results. From a notebook the stages are called one by one (``geomisuse``'s top-level
functions) and :func:`publish` writes their results as a run would.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import geopandas as gpd
import pandas as pd

from .layers import LOADERS, LayerResult, LoadContext, load_boundaries
from .layers.base import check_mostly_rejected, check_placement, normalise_name
from .layers.sites import gap_inputs, needle_exchanges, other_pharmacies
from .progress import progress
from .config import DASK_AUTO_BYTES, GapSettings, PublishSettings, Study, months_between, previous_period
from .wardtable import WardTable, build_ward_table, months_in_data, with_columns

if TYPE_CHECKING:  # the stages are imported when they run: the demo and the CLI start faster
    from .clusters import ClusterResult
    from .gaps import GapResult
    from .publish.state import SavedRun


@dataclass
class StudyRun:
    """Everything a run has produced so far.

    Attributes
    ----------
    study
        The study settings.
    wards
        The ward table: one row per ward in ``ward_code`` order, EPSG:27700, with the
        columns of the output contract (README, "Outputs"). Each stage adds its columns.
    monthly
        ``ward_code``, ``month`` (``YYYY-MM``) and one ``M_count`` column per measure present.
    months
        The months of the period, in order.
    measures
        The measures with data in this study (subset of ``config.MEASURES``).
    layers
        Loaded inputs by layer kind. Point and polygon tables carry ``ward_code`` once joined.
    sources
        Measure -> layer kind it was counted from (:attr:`WardTable.sources`); publishing
        protects the MPS relation possession + trafficking = all drug offences from it.
    global_moran
        One row per analysed measure (cluster stage), else ``None``.
    satellites
        Suggested satellite sites (gap stage), else ``None``.
    emerging_bins
        Space-time Gi* per ward and time step (cluster stage, ``emerging_hotspots.csv``), else ``None``.
    satellite_coverage
        Need covered by the best k satellite sites, k = 1..10 (gap stage), else ``None``.
    catchments
        Walk catchment polygon of each service (gap stage: network isochrones when the study
        names a walking network, else straight-line circles), else ``None``.
    manifest
        Stage sections for ``manifest.json`` (``clusters``, ``gaps`` ...).
    warnings
        Everything a user should read, in the order it was found.
    neighbours
        Each ward's neighbours (sorted ward positions) under the cluster statistics' weights,
        set by the cluster stage; read it through :meth:`ward_neighbours`.
    context_wards
        Wards around the study taken as context (``[boundaries] context_km`` or ``context``):
        the same columns as ``wards``; the statistics see them, the outputs do not.
    yearly
        ``ward_code``, ``year`` (``YYYY``) and ``M_count`` per measure for the period's whole
        calendar years (:attr:`WardTable.yearly`: annual sources, and the monthly ones summed),
        study wards only; ``None`` for a run assembled without it.
    restored_from
        The output folder whose saved state this run was read from (:func:`load_run`), else
        ``None``. Such a run holds what the map and briefings read, and no more.
    """

    study: Study
    wards: gpd.GeoDataFrame
    monthly: pd.DataFrame
    months: list[str]
    measures: list[str]
    layers: dict[str, LayerResult]
    sources: dict[str, str]
    global_moran: pd.DataFrame | None = None
    satellites: pd.DataFrame | None = None
    emerging_bins: pd.DataFrame | None = None
    satellite_coverage: pd.DataFrame | None = None
    catchments: gpd.GeoDataFrame | None = None
    manifest: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    neighbours: list[list[int]] | None = None
    context_wards: gpd.GeoDataFrame | None = None
    yearly: pd.DataFrame | None = None
    restored_from: Path | None = None

    def ward_neighbours(self) -> list[list[int]]:
        """Each ward's neighbours, as the cluster statistics define them.

        The cluster stage's own (its weights, islands linked) when it ran; otherwise queen
        contiguity built by the same code, :func:`geomisuse.clusters.weights.build_neighbours`,
        so that briefings name the same neighbours either way.

        Returns
        -------
        list[list[int]]
            One list of sorted ward positions per ward, in ward-table order.
        """
        if self.neighbours is None:
            from .clusters.weights import build_neighbours

            self.neighbours = (build_neighbours(self.wards, "queen").lists() if len(self.wards) > 1
                               else [[] for _ in range(len(self.wards))])
        return self.neighbours

    def part_neighbours(self, keep) -> list[list[int]]:
        """:meth:`ward_neighbours` restricted to some of the wards (one borough of London),
        renumbered to their positions among them.

        Parameters
        ----------
        keep
            Boolean per ward of ``wards``.
        """
        from .clusters.weights import neighbours_within

        return neighbours_within(self.ward_neighbours(), keep)

    @property
    def walking(self) -> GapSettings:
        """The walking settings of the run (speed, detour factor, threshold, radius): the
        study's ``[gaps]`` settings, which the gap stage used; publishing reads them here."""
        return self.study.gaps

    def layer_table(self, kind: str) -> gpd.GeoDataFrame | None:
        """The canonical table of a loaded layer, or ``None`` when the study has no such layer."""
        layer = self.layers.get(kind)
        return None if layer is None else layer.table

    def needle_exchanges(self) -> gpd.GeoDataFrame | None:
        """Needle exchanges: flagged pharmacies and the needle-exchange layer together (or ``None``)."""
        return needle_exchanges(self.layers)

    def other_pharmacies(self) -> gpd.GeoDataFrame | None:
        """Pharmacies that are not needle exchanges (default satellite candidates), or ``None``."""
        return other_pharmacies(self.layers)


#: Stages after the ward table, in order.
STAGES = ("clusters", "gaps")


@dataclass
class Inputs:
    """The result of :func:`load_inputs`: a study's files, read and checked.

    Attributes
    ----------
    boundaries
        The ward boundaries (``boundaries.table``: one row per ward, EPSG:27700).
    layers
        Loaded layers by kind, in the study file's order.
    months
        The months of the period: the study's, else every month from the first to the last
        found in the data.
    previous_months
        With a study period, the period of equal length before it (layers hold it too, for
        the briefings' comparisons); else ``None``.
    warnings
        The readers' messages, boundaries first.
    """

    boundaries: LayerResult
    layers: dict[str, LayerResult]
    months: list[str]
    previous_months: list[str] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def wards(self) -> gpd.GeoDataFrame:
        """The ward boundaries' table."""
        return self.boundaries.table


def load_inputs(study: Study) -> Inputs:
    """Read the boundaries and every layer of a study.

    Parameters
    ----------
    study
        The study (:func:`geomisuse.load_study`).

    Returns
    -------
    Inputs
    """
    boundaries = load_boundaries(study.boundaries)
    wards = boundaries.table
    if len(wards) > 1 and study.clusters.weights == "queen":
        from .clusters.weights import start_queen_adjacency

        # The statistics' and the briefings' neighbours, worked out while the layers load
        # (under other weights the briefings name the statistics' neighbours instead).
        start_queen_adjacency(wards.geometry)
    names = Counter(normalise_name(n) for n in wards["ward_name"])
    ambiguous = sorted(n for n, k in names.items() if k > 1)
    if ambiguous:
        boundaries.warnings.append(f"ward names shared by more than one ward ({', '.join(ambiguous[:3])}) "
                                   "are matched by code only")
    months = months_between(*study.period) if study.period else None
    context = LoadContext(
        ward_codes=frozenset(wards["ward_code"]),
        ward_names={normalise_name(n): c for n, c in zip(wards["ward_name"], wards["ward_code"])
                    if normalise_name(n) not in ambiguous},
        # The period before, of equal length, is read too: briefings compare against it.
        months=previous_period(months) + months if months else None,
        ward_geometry=wards[["ward_code", "geometry"]],
        boundary_vintage=boundaries.vintage,
        period=tuple(study.period) if study.period else None,
    )
    layers = {}
    for kind in progress(list(study.layers), "reading layers"):
        if kind == "police_uk" and uses_dask(study):
            from .layers.police_uk_dask import load_police_uk_dask
            from .layers.ward_join import WardLocator

            # Points are joined to wards where the workers read them: they never come back here.
            layers[kind] = load_police_uk_dask(study.layers[kind], context, WardLocator(wards.geometry.to_numpy()),
                                               wards["ward_code"].to_numpy(), study.scheduler,
                                               boroughs=wards["borough_name"].tolist())
        else:
            layers[kind] = LOADERS[kind](study.layers[kind], context)
        check_placement(layers[kind], wards.total_bounds)
    warnings = list(boundaries.warnings)
    for layer in layers.values():
        warnings.extend(layer.warnings)
    return Inputs(boundaries=boundaries, layers=layers, months=months or months_in_data(layers),
                  previous_months=previous_period(months) if months else None, warnings=warnings)


def uses_dask(study: Study) -> bool:
    """Whether the study's police.uk files are read on Dask: ``engine = "dask"``, or ``auto``
    with more than :data:`~geomisuse.config.DASK_AUTO_BYTES` of them."""
    if study.engine != "auto":
        return study.engine == "dask"
    from .layers.police_uk import csv_files

    spec = study.layers.get("police_uk")
    total = sum(path.stat().st_size for path in {p for _, p, _ in csv_files(spec.paths)}) if spec else 0
    return total > DASK_AUTO_BYTES


def assemble_run(study: Study, inputs: Inputs, table: WardTable) -> StudyRun:
    """The run state of a study whose ward table is built (no statistics yet).

    Parameters
    ----------
    study, inputs, table
        The study, its inputs (:func:`load_inputs`) and its ward table (:func:`build_ward_table`).

    Returns
    -------
    StudyRun
        With the inputs' and the table's warnings, in that order.
    """
    study_wards, context_wards = split_context(table.wards)
    monthly = table.monthly[table.monthly["ward_code"].isin(study_wards["ward_code"])].reset_index(drop=True)
    yearly = table.yearly[table.yearly["ward_code"].isin(study_wards["ward_code"])].reset_index(drop=True)
    run = StudyRun(study=study, wards=study_wards, monthly=monthly, months=table.months,
                   measures=table.measures, layers={"boundaries": inputs.boundaries, **table.layers},
                   sources=dict(table.sources), warnings=inputs.warnings + table.warnings,
                   context_wards=context_wards, yearly=yearly)
    studied = set(study_wards["ward_code"])
    run.manifest["measure_sources"] = {m: {kind: [c for c in codes if c in studied] for kind, codes in fed.items()}
                                       for m, fed in table.fed_by.items()}
    annual = {kind: {"years": list(layer.years), "measures": sorted(set(layer.table["measure"]))}
              for kind, layer in table.layers.items() if layer.years is not None}
    if annual:  # sources with calendar-year counts only (no months): see wards_yearly.csv
        run.manifest["annual_sources"] = annual
    if context_wards is not None:
        run.manifest["context_wards"] = [{"ward_code": c, "ward_name": n, "borough_name": b} for c, n, b in zip(
            context_wards["ward_code"], context_wards["ward_name"], context_wards["borough_name"])]
    return run


def split_context(wards: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None]:
    """The study's wards and the context wards (``None`` without ``[boundaries] context``) of
    a ward table; both keep their row labels, so that together they restore the whole."""
    if "is_context" not in wards:
        return wards, None
    context = wards["is_context"].to_numpy(dtype=bool)
    return wards[~context].drop(columns="is_context"), wards[context].drop(columns="is_context")


def prepare(study: Study) -> StudyRun:
    """Load the inputs, join them to wards and build the ward table (no statistics yet)."""
    inputs = load_inputs(study)
    table = build_ward_table(inputs.wards, inputs.layers, inputs.months, inputs.previous_months)
    for layer in table.layers.values():  # after the join, which rejects points outside the wards
        check_mostly_rejected(layer)
    return assemble_run(study, inputs, table)


def add_clusters(run: StudyRun) -> list[str]:
    """Run the cluster stage on ``run.wards`` and record its results; returns summary lines."""
    from .clusters import find_clusters

    if run.context_wards is None:
        result = find_clusters(run.wards, run.study.clusters, run.study.seed, monthly=run.monthly, months=run.months,
                               yearly=run.yearly)
    else:
        # Context wards enter the weights, lags, Gi* and rates; the FDR family and outputs are the study's.
        together = pd.concat([run.wards, run.context_wards]).sort_index()
        result = find_clusters(together, run.study.clusters, run.study.seed,
                               family=together.index.isin(run.wards.index), monthly=run.monthly, months=run.months,
                               yearly=run.yearly)
        run.context_wards = with_columns(run.context_wards, result.columns.loc[run.context_wards.index])
        result.manifest["context_wards"] = int(len(run.context_wards))
        from .clusters.weights import neighbours_within

        study = together.index.isin(run.wards.index)
        result = replace(result, columns=result.columns.loc[run.wards.index],
                         neighbours=neighbours_within(result.neighbours, study))
    record_clusters(run, result)
    return result.summary_lines


def record_clusters(run: StudyRun, result: ClusterResult) -> None:
    """Put the cluster stage's results into the run: columns, global Moran table, manifest, warnings."""
    run.wards = with_columns(run.wards, result.columns)
    run.global_moran = result.global_moran
    run.emerging_bins = result.emerging_bins
    run.neighbours = result.neighbours
    run.manifest["clusters"] = result.manifest
    run.warnings.extend(result.warnings)


def add_gaps(run: StudyRun) -> list[str]:
    """Run the gap stage on ``run.wards`` and record its results; returns summary lines."""
    from .gaps import find_gaps

    network, postcodes = network_inputs(run)
    result = find_gaps(run.wards, **gap_inputs(run.layers), settings=run.study.gaps, seed=run.study.seed,
                       network=network, postcodes=postcodes)
    record_gaps(run, result)
    return result.summary_lines


def record_gaps(run: StudyRun, result: GapResult) -> None:
    """Put the gap stage's results into the run: columns, satellite sites, the coverage table,
    catchments, manifest, warnings."""
    run.wards = with_columns(run.wards, result.columns)
    run.satellites = result.satellites
    run.satellite_coverage = result.coverage_by_sites
    run.catchments = result.catchments
    run.manifest["gaps"] = result.manifest
    run.warnings.extend(result.warnings)


def network_inputs(run: StudyRun, write_cache: bool = True):
    """The walking network (cached in :data:`geomisuse.gaps.network.CACHE_FOLDER` next to the
    study file; ``write_cache=False`` only reads a cache) and the postcodes that ``[gaps]
    network`` / ``postcodes`` name, each ``None`` when not named; the postcode file's
    accounting goes into the manifest.

    Returns
    -------
    tuple
        ``(WalkingNetwork or None, Postcodes or None)``.
    """
    from .gaps.network import CACHE_FOLDER, load_walking_network
    from .layers.postcodes import read_postcodes

    settings = run.study.gaps
    network = postcodes = None
    if settings.network:
        cache = run.study.path.parent / CACHE_FOLDER if run.study.path is not None else None
        network = load_walking_network(settings.network, cache, write_cache)
    if settings.postcodes:
        postcodes = read_postcodes(settings.postcodes)
        run.manifest["postcodes"] = postcodes.report
    return network, postcodes


def unavailable_stages(run: StudyRun) -> dict[str, str]:
    """Stages the study's data cannot support, with the reason in words."""
    from .clusters.stage import MIN_WARDS

    reasons = {}
    if len(run.wards) < MIN_WARDS:
        reasons["clusters"] = f"they need at least {MIN_WARDS} wards and the study has {len(run.wards)}"
    if not {"possession", "trafficking", "drug_offences"} & set(run.measures):
        reasons["gaps"] = "they need drug offence counts (police.uk, or the MPS ward file) and the study has none"
    return reasons


def analyse(study: Study, stages: tuple[str, ...] = STAGES,
            skip_unavailable: bool = False) -> tuple[StudyRun, list[str]]:
    """Run the study up to and including ``stages``.

    Parameters
    ----------
    study
        The study.
    stages
        Stages after the ward table, in order.
    skip_unavailable
        Skip, with a warning, a stage the data cannot support (too few wards for cluster
        statistics, no drug offences for gaps) instead of stopping with its error; a whole
        run still maps and briefs what there is.

    Returns
    -------
    (run, summary_lines)
    """
    run = prepare(study)
    summary = []
    if skip_unavailable:
        for stage, reason in unavailable_stages(run).items():
            if stage in stages:
                run.warnings.append(f"{stage} skipped: {reason}")
                stages = tuple(s for s in stages if s != stage)
    for stage in progress(stages, "analysing"):
        summary.extend({"clusters": add_clusters, "gaps": add_gaps}[stage](run))
    return run, summary


def load_run(folder: str | Path) -> tuple[StudyRun, SavedRun]:
    """A finished run read back from the saved state in its output folder (no analysis).

    Parameters
    ----------
    folder
        An output folder written by ``geomisuse run`` (``demo``, ``clusters --out``,
        ``gaps --out``, :func:`publish` with ``part="all"``).

    Returns
    -------
    (run, saved)
        The run, enough to republish the map and the briefings (:attr:`StudyRun.restored_from`
        is ``folder``), and the state (its publishing settings and the geomisuse version that
        wrote it).

    Raises
    ------
    InputError
        No saved state, an incompatible one, or inputs changed since the run
        (:func:`geomisuse.publish.state.read_state`).
    """
    from .publish.state import read_state

    saved = read_state(Path(folder))
    return StudyRun(**saved.run_fields, restored_from=Path(folder)), saved


def publish(out: str | Path, *, study: Study, inputs: Inputs, table: WardTable,
            clusters: ClusterResult | None = None, gaps: GapResult | None = None,
            settings: PublishSettings | Mapping[str, Any] | None = None, part: str = "all",
            wards: list[str] | None = None) -> list[Path]:
    """Write the outputs of stages run one by one (from a notebook), as ``geomisuse run`` does.

    Parameters
    ----------
    out
        Output folder (replaced as a whole once complete, with ``part="all"``).
    study, inputs, table
        The study, its inputs (:func:`load_inputs`) and its ward table (:func:`build_ward_table`).
    clusters, gaps
        The results of :func:`~geomisuse.clusters.find_clusters` and
        :func:`~geomisuse.gaps.find_gaps`, where those stages ran.
    settings
        :class:`~geomisuse.config.PublishSettings` or a dict of its keys; default the study's
        ``[publish]`` settings.
    part, wards
        As :func:`geomisuse.publish.write_outputs`: ``"all"``, ``"map"`` or ``"briefings"``,
        and the wards to brief.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    InputError
        Bad settings.
    """
    from .publish import write_outputs

    run = assemble_run(study, inputs, table)
    if clusters is not None:
        record_clusters(run, clusters)
    if gaps is not None:
        record_gaps(run, gaps)
    settings = study.publish if settings is None else PublishSettings.from_options(settings)
    return write_outputs(run, Path(out), settings, part=part, wards=wards)
