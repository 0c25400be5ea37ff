"""The stages of a study run, wired in order: load -> ward table -> clusters -> gaps.

Each function is usable on its own from a notebook; :func:`analyse` runs them all and
:func:`geomisuse.publish.write_outputs` writes the results.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd

from .layers import LOADERS, LayerResult, LoadContext, load_boundaries
from .layers.base import normalise_name
from .progress import progress
from .config import Study, months_between, previous_period
from .layers.ward_join import WardLocator
from .wardtable import build_ward_table, join_layers_to_wards

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
        The measures with data in this study (subset of ``settings.MEASURES``).
    layers
        Loaded inputs by layer kind. Point and polygon tables carry ``ward_code`` once joined.
    global_moran
        One row per analysed measure (cluster stage), else ``None``.
    satellites
        Suggested satellite sites (gap stage), else ``None``.
    satellite_coverage
        Need covered by the best k satellite sites, k = 1..10 (gap stage), else ``None``.
    catchments
        Walk catchment polygon of each service (gap stage: network isochrones when the study
        names a walking network, else straight-line circles), else ``None``.
    manifest
        Stage sections for ``manifest.json`` (``clusters``, ``gaps`` ...).
    warnings
        Everything a user should read, in the order it was found.
    """

    study: Study
    wards: gpd.GeoDataFrame
    monthly: pd.DataFrame
    months: list[str]
    measures: list[str]
    layers: dict[str, LayerResult]
    global_moran: pd.DataFrame | None = None
    satellites: pd.DataFrame | None = None
    satellite_coverage: pd.DataFrame | None = None
    catchments: gpd.GeoDataFrame | None = None
    manifest: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def layer_table(self, kind: str) -> gpd.GeoDataFrame | None:
        """The canonical table of a loaded layer, or ``None`` when the study has no such layer."""
        layer = self.layers.get(kind)
        return None if layer is None else layer.table

    def needle_exchanges(self) -> gpd.GeoDataFrame | None:
        """Needle exchanges: flagged pharmacies and the needle-exchange layer together (or ``None``)."""
        parts = []
        pharmacies = self.layer_table("pharmacies")
        if pharmacies is not None:
            parts.append(pharmacies[pharmacies["is_needle_exchange"]])
        if self.layer_table("needle_exchanges") is not None:
            parts.append(self.layer_table("needle_exchanges"))
        if not parts:
            return None
        return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=parts[0].crs)

    def other_pharmacies(self) -> gpd.GeoDataFrame | None:
        """Pharmacies that are not needle exchanges (default satellite candidates), or ``None``."""
        pharmacies = self.layer_table("pharmacies")
        return None if pharmacies is None else pharmacies[~pharmacies["is_needle_exchange"]].reset_index(drop=True)


#: Stages after the ward table, in order.
STAGES = ("clusters", "gaps")


def load_inputs(study: Study) -> tuple[LayerResult, dict[str, LayerResult], list[str]]:
    """Read the boundaries and every layer of a study.

    Parameters
    ----------
    study
        The study.

    Returns
    -------
    (boundaries, layers, months)
        The ward boundaries, the loaded layers by kind, and the months of the period (the
        study's period, else every month from the first to the last found in the data).
        With a study period, layers also hold the previous period of equal length.
    """
    boundaries = load_boundaries(study.boundaries)
    wards = boundaries.table
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
    )
    layers = {}
    for kind in progress(list(study.layers), "reading layers"):
        layers[kind] = LOADERS[kind](study.layers[kind], context)
    return boundaries, layers, months or months_in_data(layers)


def months_in_data(layers: dict[str, LayerResult]) -> list[str]:
    """Every month from the first to the last month found in any layer."""
    found: set[str] = set()
    for layer in layers.values():
        if "month" in layer.table:
            found.update(layer.table["month"].dropna().unique())
    return months_between(min(found), max(found)) if found else []


def prepare(study: Study) -> StudyRun:
    """Load the inputs, join them to wards and build the ward table (no statistics yet)."""
    boundaries, layers, months = load_inputs(study)
    wards = boundaries.table
    warnings = list(boundaries.warnings)
    for layer in layers.values():
        warnings.extend(layer.warnings)
    warnings.extend(join_layers_to_wards(wards, layers, WardLocator(wards.geometry.to_numpy())))
    table = build_ward_table(wards, layers, months, previous_period(months) if study.period else None)
    warnings.extend(table.warnings)
    run = StudyRun(study=study, wards=table.wards, monthly=table.monthly, months=months,
                   measures=table.measures, layers={"boundaries": boundaries, **layers}, warnings=warnings)
    run.manifest["measures"] = table.sources
    return run


def add_clusters(run: StudyRun) -> list[str]:
    """Run the cluster stage on ``run.wards`` and record its results; returns summary lines."""
    from .clusters import ClusterSettings, find_clusters

    result = find_clusters(run.wards, ClusterSettings.from_options(run.study.clusters), run.study.seed)
    run.wards = _replace_columns(run.wards, result.columns)
    run.global_moran = result.global_moran
    run.manifest["clusters"] = result.manifest
    run.warnings.extend(result.warnings)
    return result.summary_lines


def add_gaps(run: StudyRun) -> list[str]:
    """Run the gap stage on ``run.wards`` and record its results; returns summary lines."""
    from .gaps import GapSettings, find_gaps

    settings = GapSettings.from_options(run.study.gaps)
    network, postcodes = _gap_inputs(run, settings)
    from_file = run.layer_table("candidate_sites") is not None
    # Without a candidate file the gap stage adds a grid over the gap wards to these pharmacies.
    candidates = run.layer_table("candidate_sites") if from_file else run.other_pharmacies()
    result = find_gaps(run.wards, run.layer_table("treatment_services"), run.needle_exchanges(), candidates,
                       run.layer_table("residents"), settings, run.study.seed, candidates_from_file=from_file,
                       network=network, postcodes=postcodes)
    run.wards = _replace_columns(run.wards, result.columns)
    run.satellites = result.satellites
    run.satellite_coverage = result.coverage_by_sites
    run.catchments = result.catchments
    run.manifest["gaps"] = result.manifest
    run.warnings.extend(result.warnings)
    return result.summary_lines


def _gap_inputs(run: StudyRun, settings):
    """The walking network (cached next to the study file) and the postcode file the gap
    settings name, each ``None`` when not named; recorded in the manifest's inputs."""
    from .gaps.network import CACHE_FOLDER, load_walking_network
    from .layers.postcodes import read_postcodes

    network = postcodes = None
    if settings.network:
        cache = run.study.path.parent / CACHE_FOLDER if run.study.path is not None else None
        network = load_walking_network(settings.network, cache)
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


def _replace_columns(wards, columns: pd.DataFrame):
    """Add a stage's columns to the ward table, replacing any from an earlier run of that stage."""
    return wards.drop(columns=[c for c in columns.columns if c in wards.columns]).join(columns)
