"""The cluster stage: ward table in, cluster columns, global Moran table and manifest out.

For each analysed measure (a rate per 1,000 residents):

1. neighbours: queen contiguity (or k-nearest / distance band), islands linked to their nearest
   ward (:mod:`.weights`);
2. global Moran's I on row-standardised weights, on empirical-Bayes standardised rates when
   counts and populations are there (:mod:`.moran`), two-sided permutation p;
3. local Moran (LISA) on the rates: local I, quadrant, two-sided conditional-permutation
   pseudo p, and the label after the multiple-testing correction;
4. Getis-Ord Gi* on the rates with binary weights including the ward itself: z, two-sided
   normal p, ArcGIS bin -3..3 after the same correction (:mod:`.getisord`).
5. the change on the previous period of equal length, with the exact conditional test
   (:mod:`.change`: ``M_change``, ``M_change_p``, ``M_change_significant``);
6. with the monthly counts, emerging hot spots (:mod:`.emerging`: ``M_ehsa_category``,
   ``M_ehsa_trend_z``, ``M_ehsa_trend_p`` and the space-time bins of ``emerging_hotspots.csv``).

Column meanings (``M`` = measure) — see also the output contract in DESIGN.md:

``M_lisa_i``
    Local Moran's I (Anselin 1995, GeoDa's value).
``M_lisa_p``
    Two-sided conditional-permutation pseudo p-value, **before** correction; twice the
    folded value GeoDa/esda print (see :mod:`.inference`). Smallest possible ``2 / (R + 1)``.
``M_lisa_p_adjusted``
    ``M_lisa_p`` after the correction (Bonferroni, or Benjamini–Hochberg adjusted p).
``M_lisa_label``
    ``High-High``, ``Low-Low``, ``High-Low``, ``Low-High`` where ``M_lisa_p_adjusted <= alpha``,
    else ``Not significant``.
``M_lisa_quadrant``
    Moran scatterplot quadrant, 1 High-High, 2 Low-High, 3 Low-Low, 4 High-Low, whatever the p.
``M_lisa_z``
    Analytical z of local I under total randomisation (Anselin 1995, eqs. 13); for reference.
``M_gi_z``, ``M_gi_p``, ``M_gi_p_adjusted``
    Gi* z-score, its two-sided normal p-value (as ArcGIS), and that p after the correction.
``M_gi_bin``
    ArcGIS ``Gi_Bin``: ±3/±2/±1 when ``M_gi_p_adjusted`` <= 0.01/0.05/0.10, else 0.

A ward without a rate for ``M`` (no population, or no count) is left out of that measure's
statistics, and all its ``M_lisa_*``/``M_gi_*`` cells are empty; a warning names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import geopandas as gpd
import numpy as np
import pandas as pd

from ..errors import InputError
from ..config import DEFAULT_SEED, MEASURES, ClusterSettings
from ..vocabulary import HIGH_HIGH, LOW_LOW
from ..wardtable import with_columns
from .change import significant_change
from .emerging import find_emerging_hotspots
from .getisord import gi_bins, gi_star
from .inference import (adjust_p, default_permutations, draw_orderings,
                        permutation_warning)
from .moran import empirical_bayes_standardise, global_moran, lisa_labels, local_moran
from .weights import Neighbours, build_neighbours, row_standardised, subset_neighbours, with_self

#: Fewest wards for which every statistic here is defined (Var[I] divides by n - 3).
MIN_WARDS = 4
#: Below this many wards the statistics have little power; the user is told.
FEW_WARDS = 10
#: Ward names listed in console summary lines before "and N more".
_LIST_NAMES = 6


@dataclass
class ClusterResult:
    """What the cluster stage adds to a run.

    Attributes
    ----------
    columns
        Index = the ward table's index; the ``M_lisa_*`` and ``M_gi_*`` columns of every
        analysed measure (see the module docstring for their meaning).
    global_moran
        One row per analysed measure: ``measure``, ``moran_i``, ``expected_i``, ``z``,
        ``p_sim``, ``permutations``, ``rate_adjustment``, then ``z_sim``, ``n_wards``.
    manifest
        The ``clusters`` section of ``manifest.json``.
    warnings
        Messages for the user, one line each.
    summary_lines
        Short console summary, one line per measure.
    emerging_bins
        Space-time Gi* per ward and step (``emerging_hotspots.csv``; see
        :class:`.emerging.EmergingResult`), or ``None`` without monthly counts.
    wards
        The ward table given with ``columns`` added (a new table).
    neighbours
        Each ward's neighbours under the weights the statistics used (sorted ward positions in
        the ward table's order, islands' links included, symmetrised: see
        :meth:`~geomisuse.clusters.weights.Neighbours.lists`), so that publishing groups
        clusters with the statistics' own neighbours without importing this package.
    """

    columns: pd.DataFrame
    global_moran: pd.DataFrame
    manifest: dict
    warnings: list[str] = field(default_factory=list)
    summary_lines: list[str] = field(default_factory=list)
    emerging_bins: pd.DataFrame | None = None
    wards: gpd.GeoDataFrame | None = None
    neighbours: list[list[int]] = field(default_factory=list)


GLOBAL_MORAN_COLUMNS = ["measure", "moran_i", "expected_i", "z", "p_sim", "permutations",
                        "rate_adjustment", "z_sim", "n_wards"]


def find_clusters(wards: gpd.GeoDataFrame, settings: ClusterSettings | Mapping[str, Any] | None = None,
                  seed: int = DEFAULT_SEED, family: np.ndarray | None = None, monthly: pd.DataFrame | None = None,
                  months: list[str] | None = None, yearly: pd.DataFrame | None = None) -> ClusterResult:
    """Global Moran's I, LISA and Gi*, and with monthly counts emerging hot spots and the
    test of change, for every analysed measure of the ward table.

    Parameters
    ----------
    wards
        The ward table: EPSG:27700, one row per ward, with ``ward_code``, ``ward_name``,
        ``population`` and the ``M_count`` / ``M_rate_per_1000`` columns.
    settings
        The ``[clusters]`` settings: :class:`~geomisuse.config.ClusterSettings`, or a dict of
        its keys (checked as the study file's table is); default all defaults.
    seed
        Seed of every permutation; same inputs and seed give identical numbers.
    family
        Which wards are the study's (boolean, one per row; default all). The others are
        context wards: they enter the weights, spatial lags, Gi* sums and global Moran's I,
        but not the multiple-testing family, the permutation count or the lists of findings
        (nor the test of change; in emerging hot spots they enter the neighbourhoods only).
    monthly
        ``ward_code``, ``month``, ``M_count`` (the run's monthly table), for the emerging hot
        spot analysis (:mod:`.emerging`); ``None`` skips it.
    months
        The period's months in order (with ``monthly``).
    yearly
        ``ward_code``, ``year``, ``M_count`` (the run's yearly table, which holds annual
        sources such as the MPS LSOA file): the steps of ``time_step = "year"``; ``None``:
        years are summed from ``monthly``.

    Returns
    -------
    ClusterResult

    Raises
    ------
    InputError
        Too few wards, a requested measure without data, or empirical Bayes requested
        without counts and populations.
    """
    settings = ClusterSettings.from_options(settings)
    if len(wards) < MIN_WARDS:
        raise InputError(f"spatial clusters need at least {MIN_WARDS} wards and the study has {len(wards)}; "
                         "use a boundary file covering more wards")
    if wards.crs is not None and wards.crs.is_geographic:
        raise InputError("the ward table must be in a projected CRS (EPSG:27700) for the cluster stage")
    warnings: list[str] = []
    measures = _choose_measures(wards, settings, warnings)
    if len(wards) < FEW_WARDS:
        warnings.append(f"only {len(wards)} wards: cluster statistics have little power on so few; "
                        "read them as descriptive")
    neighbours = build_neighbours(wards, settings.weights, settings.k, settings.distance_m)
    for island in neighbours.islands:
        warnings.append(f"ward {island['ward_code']} {island['ward_name']} has no neighbour under "
                        f"{settings.weights} weights; linked to its nearest ward {island['linked_to_code']} "
                        f"{island['linked_to_name']} ({island['distance_m']:.0f} m away)")
    columns = pd.DataFrame(index=wards.index)
    global_rows, per_measure, summary_lines = [], {}, []
    orderings_cache: dict[tuple[int, int, int], np.ndarray] = {}
    family = np.ones(len(wards), dtype=bool) if family is None else np.asarray(family, bool)
    for measure in measures:
        outcome = _analyse_measure(wards, measure, neighbours, settings, seed, orderings_cache, warnings, family)
        if outcome is None:
            continue
        measure_columns, global_row, record = outcome
        columns = columns.join(measure_columns)
        global_rows.append(global_row)
        per_measure[measure] = record
        summary_lines.append(_summary_line(measure, global_row, record, settings))
    global_table = pd.DataFrame(global_rows, columns=GLOBAL_MORAN_COLUMNS)
    analysed = list(per_measure)
    change_columns, change_manifest, change_warnings = significant_change(wards, analysed, settings.correction,
                                                                          settings.alpha, family)
    columns = columns.join(change_columns)
    warnings.extend(change_warnings)
    emerging = None
    if monthly is not None and months:
        emerging = find_emerging_hotspots(wards, monthly, months, analysed, neighbours.adjacency, settings.time_step,
                                          settings.time_k, settings.correction, settings.alpha, family, yearly)
        columns = columns.join(emerging.columns)
        warnings.extend(emerging.warnings)
        summary_lines.extend(emerging.summary_lines)
    manifest = {
        "weights": neighbours.summary(),
        "measures": list(per_measure),
        "correction": settings.correction,
        "alpha": settings.alpha,
        "seed": int(seed),
        "permutations": {m: r["permutations"] for m, r in per_measure.items()},
        "permutations_rule": ("study setting" if settings.permutations is not None else
                              "default: smallest of 999, 1,999, 4,999, 9,999, ... with R + 1 >= "
                              "2 (2 / bar), bar = alpha (no correction) or alpha / wards"),
        "p_values": {
            "global": "p_sim: two-sided permutation pseudo p, 2 (min(M_ge, M_le) + 1) / (R + 1)",
            "lisa": "M_lisa_p: two-sided conditional-permutation pseudo p (2x GeoDa's folded value), "
                    "before correction; label uses M_lisa_p_adjusted <= alpha",
            "gi": "M_gi_p: two-sided normal p of the analytical Gi* z (as ArcGIS), before correction; "
                  "bin uses M_gi_p_adjusted <= 0.01/0.05/0.10",
        },
        "high_high": {m: r["high_high"] for m, r in per_measure.items()},
        "by_measure": per_measure,
        "change": change_manifest,
    }
    if emerging is not None:
        manifest["emerging"] = emerging.manifest
    return ClusterResult(columns=columns, global_moran=global_table, manifest=manifest,
                         warnings=warnings, summary_lines=summary_lines, wards=with_columns(wards, columns),
                         neighbours=neighbours.lists(),
                         emerging_bins=None if emerging is None else emerging.bins)


def _analyse_measure(wards: gpd.GeoDataFrame, measure: str, neighbours: Neighbours,
                     settings: ClusterSettings, seed: int, orderings_cache: dict,
                     warnings: list[str], family: np.ndarray) -> tuple[pd.DataFrame, dict, dict] | None:
    """All statistics of one measure; ``None`` (with a warning) when it cannot be analysed."""
    rate = pd.to_numeric(wards[f"{measure}_rate_per_1000"], errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(rate)
    dropped = wards.loc[~keep]
    if len(dropped):
        warnings.append(f"{measure}: {len(dropped)} ward(s) without a rate (no population or no count) left out "
                        f"of the cluster statistics: {_names(dropped)}")
    n = int(keep.sum())
    if n < MIN_WARDS:
        warnings.append(f"{measure}: only {n} wards have a rate; at least {MIN_WARDS} are needed, measure skipped")
        return None
    y = rate[keep]
    if np.ptp(y) == 0:
        warnings.append(f"{measure}: every ward has the same rate ({y[0]:g}); no clusters to find, measure skipped")
        return None
    kept_wards = wards.loc[keep]
    local = subset_neighbours(neighbours, keep, wards)
    for island in local.islands:
        warnings.append(f"{measure}: ward {island['ward_code']} {island['ward_name']} has no neighbour with a rate; "
                        f"linked to its nearest ward with one, {island['linked_to_code']} {island['linked_to_name']}")
    adjacency = local.adjacency

    tested = family[keep]  # the multiple-testing family: the study's wards with a rate
    n_tests = int(tested.sum())
    permutations = settings.permutations or default_permutations(n_tests, settings.alpha, settings.correction)
    if settings.permutations is not None:
        message = permutation_warning(permutations, n_tests, settings.alpha, settings.correction, measure)
        if message:
            warnings.append(message)

    # Global Moran's I, on empirical-Bayes standardised rates where possible.
    adjustment, values = _global_values(wards.loc[keep], measure, y, settings.rate_adjustment, warnings)
    global_permutations = settings.global_permutations
    glob = global_moran(values, row_standardised(adjacency), global_permutations,
                        np.random.default_rng([seed, 1]))
    global_row = {"measure": measure, "moran_i": glob.I, "expected_i": glob.EI, "z": glob.z_rand,
                  "p_sim": glob.p_sim, "permutations": global_permutations, "rate_adjustment": adjustment,
                  "z_sim": glob.z_sim, "n_wards": n}

    # LISA: shared random orderings, reused by every measure with the same wards and seed.
    length = int(np.diff(adjacency.indptr).max()) + 1
    key = (n, length, permutations)
    if key not in orderings_cache:
        orderings_cache[key] = draw_orderings(n, length, permutations, np.random.default_rng([seed, 2]))
    lisa = local_moran(y, adjacency, orderings_cache[key])
    lisa_p_adjusted = _adjust_within(lisa.p_sim, tested, settings.correction)
    labels = lisa_labels(lisa.q, lisa_p_adjusted <= settings.alpha)

    gi = gi_star(y, with_self(adjacency))
    gi_p_adjusted = _adjust_within(gi.p_norm, tested, settings.correction)
    bins = gi_bins(gi.Zs, gi_p_adjusted)

    index = kept_wards.index
    out = pd.DataFrame({
        f"{measure}_lisa_i": pd.Series(lisa.Is, index=index),
        f"{measure}_lisa_p": pd.Series(lisa.p_sim, index=index),
        f"{measure}_lisa_label": pd.Series(labels, index=index, dtype=object),
        f"{measure}_gi_z": pd.Series(gi.Zs, index=index),
        f"{measure}_gi_p": pd.Series(gi.p_norm, index=index),
        f"{measure}_gi_bin": pd.Series(bins, index=index).astype("Int64"),
        f"{measure}_lisa_quadrant": pd.Series(lisa.q, index=index).astype("Int64"),
        f"{measure}_lisa_z": pd.Series(lisa.z_rand, index=index),
        f"{measure}_lisa_p_adjusted": pd.Series(lisa_p_adjusted, index=index),
        f"{measure}_gi_p_adjusted": pd.Series(gi_p_adjusted, index=index),
    }).reindex(wards.index)

    def listed(mask) -> list[dict]:
        rows = kept_wards.loc[np.asarray(mask, dtype=bool) & tested]
        return [{"ward_code": str(c), "ward_name": str(nm)} for c, nm in zip(rows["ward_code"], rows["ward_name"])]

    record = {
        "n_wards": n,
        "excluded_wards": dropped["ward_code"].astype(str).tolist(),
        "permutations": int(permutations),
        "global_permutations": int(global_permutations),
        "rate_adjustment": adjustment,
        "orderings_shared": f"{permutations} orderings of {n} wards, first {length} entries",
        "high_high": listed(labels == HIGH_HIGH),
        "low_low": listed(labels == LOW_LOW),
        "gi_hot_spots": listed(bins > 0),
        "gi_cold_spots": listed(bins < 0),
        "lisa_label_counts": {str(k): int(v) for k, v in pd.Series(labels[tested]).value_counts().items()},
        "gi_bin_counts": {str(k): int(v) for k, v in sorted(pd.Series(bins[tested]).value_counts().items())},
    }
    if local.islands:
        record["islands"] = local.islands
    return out, global_row, record


def _adjust_within(p: np.ndarray, family: np.ndarray, correction: str) -> np.ndarray:
    """p-values adjusted over the ``family`` only; wards outside it (context) keep NaN, so no
    label or bin of theirs is significant."""
    adjusted = np.full(p.shape, np.nan)
    adjusted[family] = adjust_p(p[family], correction)
    return adjusted


def _choose_measures(wards: gpd.GeoDataFrame, settings: ClusterSettings, warnings: list[str]) -> list[str]:
    """The measures to analyse: the study's list (each must have data) or every measure with data."""
    def has_data(measure: str) -> bool:
        column = f"{measure}_rate_per_1000"
        return column in wards and pd.to_numeric(wards[column], errors="coerce").notna().any()

    if settings.measures is not None:
        for measure in settings.measures:
            if not has_data(measure):
                raise InputError(f"[clusters] measures lists '{measure}' but the ward table has no {measure} "
                                 f"rates; add its layer to the study or remove it from measures")
        return list(dict.fromkeys(settings.measures))
    chosen = [m for m in MEASURES if has_data(m)]
    if not chosen:
        warnings.append("no measure has rates per 1,000 in the ward table; no cluster statistics computed")
    return chosen


def _global_values(wards: gpd.GeoDataFrame, measure: str, rate: np.ndarray, adjustment: str,
                   warnings: list[str]) -> tuple[str, np.ndarray]:
    """The values global Moran's I is computed on, and which adjustment that is."""
    counts = pd.to_numeric(wards.get(f"{measure}_count"), errors="coerce")
    population = pd.to_numeric(wards.get("population"), errors="coerce")
    possible = (counts is not None and population is not None and counts.notna().all()
                and population.notna().all() and (population > 0).all())
    if adjustment == "empirical_bayes" and not possible:
        raise InputError(f"[clusters] rate_adjustment = \"empirical_bayes\" needs {measure}_count and a population "
                         "above 0 for every ward; add a population layer or use rate_adjustment = \"auto\"")
    if adjustment == "none" or not possible:
        if adjustment == "auto":
            warnings.append(f"{measure}: global Moran's I on raw rates (counts or populations missing, so no "
                            "empirical-Bayes adjustment)")
        return "none", rate
    return "empirical_bayes", empirical_bayes_standardise(counts.to_numpy(float), population.to_numpy(float))


def _summary_line(measure: str, global_row: dict, record: dict, settings: ClusterSettings) -> str:
    """E.g. ``possession: Moran's I 0.41 (p 0.0001); High-High in A, B (FDR 5%); Gi* hot spots 3``."""
    level = f"{settings.alpha * 100:g}%"
    correction = {"fdr": f"FDR {level}", "bonferroni": f"Bonferroni {level}", "none": f"uncorrected {level}"}
    names = [w["ward_name"] for w in record["high_high"]]
    more = len(names) - _LIST_NAMES
    listed = ", ".join(names[:_LIST_NAMES]) + (f" and {more} more" if more > 0 else "")
    high_high = f"{HIGH_HIGH} in {listed}" if names else f"no {HIGH_HIGH} wards"
    eb = ", empirical Bayes" if global_row["rate_adjustment"] == "empirical_bayes" else ""
    return (f"{measure}: Moran's I {global_row['moran_i']:.2f} (p {global_row['p_sim']:.2g}{eb}); "
            f"{high_high} ({correction[settings.correction]}); Gi* hot spots {len(record['gi_hot_spots'])}, "
            f"cold spots {len(record['gi_cold_spots'])}")


def _names(rows: pd.DataFrame, limit: int = 5) -> str:
    """"E05000001 Name, ..." for up to ``limit`` wards, then "and N more"."""
    items = [f"{c} {n}" for c, n in zip(rows["ward_code"], rows.get("ward_name", rows["ward_code"]))]
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")
