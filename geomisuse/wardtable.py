"""The ward table: every layer aggregated to wards — counts and rates per 1,000 residents,
for the whole period and by month; services, needle exchanges and estates per ward.

Where each measure comes from:

========================  ===========================================================
``possession``            MPS ward-level file, "Possession of Drugs"
``trafficking``           MPS ward-level file, "Drug Trafficking"/"Trafficking of Drugs"
``drug_offences``         MPS ward-level file (Drug Offences), else the MPS LSOA annual file,
                          else police.uk ``Drugs``
``asb``                   ASB warnings layer, else police.uk ``Anti-social behaviour``
========================  ===========================================================

When police.uk points are given they are also counted as ``police_uk_drugs_count`` and
``police_uk_asb_count`` whichever source the measures use.

**Annual sources.** A source whose counts are calendar-year totals (the MPS LSOA annual file,
``year`` instead of ``month`` in its table) has no monthly breakdown, and none is made up: in
the monthly table its wards' cells are empty (no data), and the yearly table
(:attr:`WardTable.yearly`) holds its counts beside the year totals of the monthly sources (the
sum of a year's 12 months, empty when any month has no data). A ward's period count is the sum
of its months or, for a ward fed by an annual source, of its years.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .layers.base import LayerResult, normalise_name
from .config import MEASURES, RATE_PER, months_between
from .errors import InputError
from .layers.police_uk import force_area_wards
from .layers.ward_join import OUTSIDE, WardLocator

#: Point layers whose rows are counted in the ward they fall in (the rest are sites).
POINT_COUNT_LAYERS = ("police_uk", "asb_warnings")


@dataclass
class WardTable:
    """The result of :func:`build_ward_table`.

    Attributes
    ----------
    wards
        One row per ward (ward-code order), EPSG:27700: ``ward_code``, ``ward_name``,
        ``borough_name``, ``population``, ``area_km2``, ``M_count``/``M_rate_per_1000`` per
        measure, ``treatment_services_count``, ``needle_exchanges_count``, ``estates_count``
        and, with police.uk input, ``police_uk_drugs_count``/``police_uk_asb_count``; with
        ``previous_months``, ``M_previous_count`` per measure (empty where not covered).
    monthly
        ``ward_code``, ``month`` and ``M_count`` per measure (NaN where a ward-level source
        has no data for that month, and for wards fed by an annual source).
    measures
        Measures with data.
    sources
        Measure -> the layer kind feeding most of its wards.
    fed_by
        Measure -> layer kind -> the ward codes it fed (``"no data"``: wards no source covers).
    warnings
        Messages for the user (the ward join's first).
    layers
        The layers as counted: point and polygon tables carry ``ward_code``, offence and ASB
        points outside every ward moved to their layer's rejects (copies; the inputs are
        left as they were).
    months
        The months of the period (``YYYY-MM``).
    yearly
        ``ward_code``, ``year`` (``YYYY``) and ``M_count`` per measure for the period's whole
        calendar years (:func:`whole_years`): an annual source's counts for the wards it feeds,
        else the sum of the year's months (NaN when any of them has no data).
    """

    wards: gpd.GeoDataFrame
    monthly: pd.DataFrame
    measures: list[str]
    sources: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    layers: dict[str, LayerResult] = field(default_factory=dict)
    months: list[str] = field(default_factory=list)
    fed_by: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    yearly: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["ward_code", "year"]))


@dataclass
class LayerJoin:
    """The result of :func:`join_layers_to_wards`.

    Attributes
    ----------
    layers
        Copies of the layers, point and polygon tables with ``ward_code``.
    warnings
        Messages for the user.
    """

    layers: dict[str, LayerResult]
    warnings: list[str] = field(default_factory=list)


def join_layers_to_wards(wards: gpd.GeoDataFrame, layers: Mapping[str, LayerResult],
                         locator: WardLocator | None = None) -> LayerJoin:
    """Add ``ward_code`` to every point and polygon layer (to copies: the inputs are not changed).

    Offence and ASB points outside every ward are rejected as ``outside the study area``
    (they are listed in ``unmatched.csv``). Sites outside the wards keep a blank
    ``ward_code``: a service across the border still serves the borough's residents.
    Estates are placed by a point inside their shape.

    Parameters
    ----------
    wards
        Ward boundaries in ward-code order (EPSG:27700).
    layers
        Loaded layers (not changed).
    locator
        A prebuilt :class:`WardLocator` for ``wards`` (built here when not given).

    Returns
    -------
    LayerJoin
        The joined copies and the warnings.
    """
    locator = locator or WardLocator(wards.geometry.to_numpy())
    codes = wards["ward_code"].to_numpy()
    warnings = []
    joined = {}
    for kind, given in layers.items():
        # A copy whose accounting can grow without touching the caller's layer (tables and
        # rejects are replaced, never changed in place, so a shallow copy is enough).
        layer = replace(given, excluded=dict(given.excluded), warnings=list(given.warnings))
        joined[kind] = layer
        table = layer.table
        if not isinstance(table, gpd.GeoDataFrame):  # ward-level tables carry ward_code already
            continue
        geoms = table.geometry.to_numpy()
        is_point = shapely.get_type_id(geoms) == 0
        # Only shapes need a point inside them (a million police.uk points do not).
        anchor = geoms.copy()
        anchor[~is_point] = shapely.point_on_surface(geoms[~is_point])
        position = locator.locate(shapely.get_x(anchor), shapely.get_y(anchor))
        if kind in POINT_COUNT_LAYERS:
            _count_points_in_wards(layer, position, codes, wards["borough_name"])
            continue
        ward_code = np.where(position == OUTSIDE, None, codes[np.clip(position, 0, None)])
        table = table.assign(ward_code=ward_code)
        layer.table = table
        outside = table["ward_code"].isna()
        if layer.covers_borough is not None:
            # A force's area: the wards of the boroughs it polices (wards of unknown borough count in).
            layer.wards = force_area_wards(codes, wards["borough_name"], layer.covers_borough)
            layer.exclude(table[~outside & ~table["ward_code"].isin(layer.wards)],
                          "in a ward outside the police force's area")
            table = layer.table
            outside = table["ward_code"].isna()
        if kind in POINT_COUNT_LAYERS:
            layer.reject(table[outside], "outside the study area")
            layer.table = layer.table.reset_index(drop=True)
        elif outside.any():
            warnings.append(f"{kind}: {int(outside.sum())} of {len(table)} lie outside the study wards; "
                            "they count for access but not in any ward's count")
    return LayerJoin(layers=joined, warnings=warnings)


def _count_points_in_wards(layer: LayerResult, position: np.ndarray, codes: np.ndarray,
                           boroughs: pd.Series) -> None:
    """The join of an offence or ASB point layer (:data:`POINT_COUNT_LAYERS`), given the ward
    position of each point: points of a police force in wards outside its area are excluded,
    points outside every ward rejected as ``outside the study area``, and the others keep
    their ``ward_code``; all at once, with the accounting that excluding and rejecting them in
    that order gives (points may be millions: the table is taken once)."""
    table = layer.table
    inside = position != OUTSIDE
    keep = inside.copy()
    if layer.covers_borough is not None:
        # A force's area: the wards of the boroughs it polices (wards of unknown borough count in).
        layer.wards = force_area_wards(codes, boroughs, layer.covers_borough)
        in_area = np.isin(np.asarray(codes, dtype=object), np.array(sorted(layer.wards), dtype=object))
        elsewhere = inside & ~in_area[np.clip(position, 0, None)]
        if elsewhere.any():
            reason = "in a ward outside the police force's area"
            layer.excluded[reason] = layer.excluded.get(reason, 0) + int(elsewhere.sum())
        keep &= ~elsewhere
    layer.list_rejected(table.loc[~inside, ["source_file", "source_row"]], "outside the study area")
    # The codes as a column of them would be (pandas' str or object), taken per point.
    ward_codes = pd.Series(np.asarray(codes, dtype=object)).array.take(position[keep])
    layer.table = table[keep].reset_index(drop=True).assign(ward_code=ward_codes)


def build_ward_table(wards: gpd.GeoDataFrame, layers: Mapping[str, LayerResult | pd.DataFrame],
                     months: list[str] | None = None, previous_months: list[str] | None = None,
                     locator: WardLocator | None = None) -> WardTable:
    """Join the layers to the wards and aggregate them to the ward table.

    Nothing given is changed: the join works on copies (:func:`join_layers_to_wards`).

    Parameters
    ----------
    wards
        Ward boundaries in ward-code order, EPSG:27700: ``ward_code`` and geometry, with
        ``ward_name``, ``borough_name`` and ``area_km2`` where known (made from the code, left
        empty and computed from the geometry otherwise). The boundaries loader's table, or
        any GeoDataFrame with those columns.
    layers
        Layer kind -> loaded layer (:class:`~geomisuse.layers.base.LayerResult`), or a plain
        (Geo)DataFrame in the layer's canonical form (as a loader makes it; its accounting
        then starts from its rows).
    months
        The study period's months (``YYYY-MM``); default every month from the first to the
        last found in the layers.
    previous_months
        The period of equal length just before, for ``M_previous_count`` (left empty for a
        measure whose source does not cover every one of these months).
    locator
        A prebuilt :class:`WardLocator` for ``wards`` (built here when not given).

    Returns
    -------
    WardTable
        With ``layers`` (the joined copies) and ``months``.
    """
    wards = _with_ward_columns(wards)
    joined = join_layers_to_wards(wards, {kind: as_layer(kind, layer) for kind, layer in layers.items()}, locator)
    layers = joined.layers
    months = list(months) if months is not None else months_in_data(layers)
    warnings: list[str] = list(joined.warnings)
    measure_sources = _measure_sources(layers)
    previous_months = list(previous_months or [])
    all_months = previous_months + list(months)
    index = pd.MultiIndex.from_product([wards["ward_code"], all_months], names=["ward_code", "month"])
    monthly = pd.DataFrame(index=index)
    years, previous_years = whole_years(months), whole_years(previous_months)
    year_index = pd.MultiIndex.from_product([wards["ward_code"], previous_years + years], names=["ward_code", "year"])
    annual = pd.DataFrame(index=year_index)  # annual sources' counts, for the wards they feed
    sources: dict[str, str] = {}
    fed_by: dict[str, dict[str, list[str]]] = {}
    names = wards.set_index("ward_code")["ward_name"]
    context = (wards["is_context"].astype(bool) if "is_context" in wards
               else pd.Series(False, index=wards.index)).set_axis(wards["ward_code"])
    for measure in MEASURES:
        if measure not in measure_sources:
            continue
        feed = _feeding_source(wards["ward_code"], measure_sources[measure])
        column = pd.Series(np.nan, index=index, dtype="float64")
        ward_level = index.get_level_values("ward_code")
        month_level = index.get_level_values("month")
        year_column = pd.Series(np.nan, index=year_index, dtype="float64")
        for source in measure_sources[measure]:
            fed = feed.index[feed == source.kind]
            if not len(fed):
                continue
            if source.years is not None:
                # An annual source fills years, never months: its months stay no data.
                counts = source.counts.groupby(["ward_code", "year"])["count"].sum()
                rows = year_index.get_level_values("ward_code").isin(fed) & \
                    year_index.get_level_values("year").isin(source.years)
                year_column[rows] = counts.reindex(year_index[rows]).fillna(0).to_numpy()
                continue
            counts = source.counts.groupby(["ward_code", "month"])["count"].sum()
            rows = ward_level.isin(fed)
            # Inside a source's coverage a ward-month without rows is a real zero, outside it no data.
            if source.months is not None:
                rows &= month_level.isin(source.months)
            column[rows] = counts.reindex(index[rows]).fillna(0).to_numpy()
        monthly[f"{measure}_count"] = column.astype("Int64")
        annual[f"{measure}_count"] = year_column
        fed_by[measure] = {kind: sorted(feed.index[feed == kind]) for kind in dict.fromkeys(feed.dropna())}
        sources[measure] = max(fed_by[measure], key=lambda k: len(fed_by[measure][k])) if fed_by[measure] \
            else measure_sources[measure][0].kind
        uncovered = feed.index[feed.isna()]
        if len(uncovered):
            fed_by[measure]["no data"] = sorted(uncovered)
            kinds = " or ".join(s.kind for s in measure_sources[measure])
            # Context wards are named apart: the study's own wards are what a reader acts on.
            in_study = uncovered[~context.reindex(uncovered).to_numpy()]
            outside = uncovered.difference(in_study, sort=False)
            listed = [f"{len(in_study)} ward(s) ({_listed(names[in_study])})" if len(in_study) else "",
                      f"{len(outside)} context ward(s) ({_listed(names[outside])})" if len(outside) else ""]
            warnings.append(f"{measure}: no data for {' and '.join(filter(None, listed))}: "
                            f"{kinds} does not cover them; shown as no data, not zero")
        if len(fed_by[measure]) > 1 and len(uncovered) < len(feed):
            parts = [f"{kind} for {len(codes)} ward(s)" for kind, codes in fed_by[measure].items()
                     if kind != "no data"]
            if len(parts) > 1:
                warnings.append(f"{measure}: {', '.join(parts)} (each ward from the first source covering it: "
                                f"{' then '.join(s.kind for s in measure_sources[measure])})")
        for source in measure_sources[measure]:
            if source.kind not in fed_by[measure]:
                continue
            if source.years is not None:
                warnings.extend(_annual_coverage(measure, source, months, years, previous_months, previous_years))
                continue
            if source.months is None:
                continue
            missing = [m for m in months if m not in source.months]
            if missing:
                warnings.append(f"{measure}: {source.kind} has no data for {len(missing)} month(s) of the period "
                                f"({missing[0]} to {missing[-1]}); they count as missing, not zero")
    monthly = monthly.reset_index()
    yearly = _yearly_table(monthly, annual, all_months, previous_years + years)
    earlier = monthly[monthly["month"].isin(previous_months)]
    yearly = yearly[yearly["year"].isin(years)].reset_index(drop=True)
    monthly = monthly[monthly["month"].isin(months)].reset_index(drop=True)

    table = wards.copy()
    _add_source_names(table, layers)
    population = layers["population"].table.set_index("ward_code")["population"] if "population" in layers \
        else pd.Series(dtype="float64")
    table["population"] = table["ward_code"].map(population).astype("float64")
    missing = table.loc[table["population"].isna(), "ward_name"].tolist()
    if missing:
        warnings.append(f"no population for {len(missing)} ward(s) ({', '.join(missing[:5])}"
                        f"{', ...' if len(missing) > 5 else ''}); their rates are left empty")
    zero = table.loc[table["population"] == 0, "ward_name"].tolist()
    if zero:
        warnings.append(f"population is 0 for {', '.join(zero[:5])}; their rates are left empty")
    per_ward = monthly.groupby("ward_code", sort=False)
    per_ward_annual = annual[annual.index.get_level_values("year").isin(years)].groupby("ward_code", sort=False)
    earlier_annual = annual[annual.index.get_level_values("year").isin(previous_years)].groupby("ward_code",
                                                                                                sort=False)
    resident_base = table["population"].where(table["population"] > 0)
    for measure in MEASURES:
        column = f"{measure}_count"
        if column in monthly:
            # A ward fed by an annual source has no months: its period count is its years'.
            totals = per_ward[column].sum(min_count=1).astype("float64")
            totals = totals.fillna(per_ward_annual[column].sum(min_count=1))
            table[column] = table["ward_code"].map(totals).astype("Int64")
            table[f"{measure}_rate_per_1000"] = (table[column].astype("float64") / resident_base * RATE_PER)
            if previous_months:
                before = earlier.groupby("ward_code", sort=False)[column].sum(min_count=len(previous_months))
                before = before.astype("float64")
                if previous_years and len(previous_years) * 12 == len(previous_months):
                    before = before.fillna(earlier_annual[column].sum(min_count=len(previous_years)))
                table[f"{measure}_previous_count"] = table["ward_code"].map(before).astype("Int64")
        else:
            table[column] = pd.array([pd.NA] * len(table), dtype="Int64")
            table[f"{measure}_rate_per_1000"] = np.nan
    if "police_uk" in layers:
        points = layers["police_uk"].table
        points = points[points["month"].isin(months)]
        # Points (local engine) count one each; the Dask engine's table is already counted.
        weight = points["count"] if "count" in points else pd.Series(1, index=points.index)
        for measure, column in (("drug_offences", "police_uk_drugs_count"), ("asb", "police_uk_asb_count")):
            rows = (points["measure"] == measure).to_numpy()
            counted = weight[rows].groupby(points["ward_code"].to_numpy()[rows]).sum()
            covered = layers["police_uk"].wards
            counts = table["ward_code"].map(counted).fillna(0)
            if covered is not None:
                counts = counts.where(table["ward_code"].isin(covered))
            table[column] = counts.astype("Int64")
    table["treatment_services_count"] = _sites_per_ward(table, layers, ("treatment_services",))
    table["needle_exchanges_count"] = _sites_per_ward(table, layers, ("pharmacies", "needle_exchanges"),
                                                      needle_exchanges_only=True)
    table["estates_count"] = _sites_per_ward(table, layers, ("estates",))
    measures = [m for m in MEASURES if m in sources]
    first = ["ward_code", "ward_name", "borough_name", "population", "area_km2"]
    table = table[first + [c for c in table.columns if c not in first]]
    return WardTable(wards=table, monthly=monthly, measures=measures, sources=sources, warnings=warnings,
                     layers=layers, months=months, fed_by=fed_by, yearly=yearly)


def with_columns(wards: gpd.GeoDataFrame, columns: pd.DataFrame) -> gpd.GeoDataFrame:
    """The ward table with a stage's columns added, replacing any of the same name (a copy).

    Parameters
    ----------
    wards
        The ward table.
    columns
        Indexed like ``wards``.

    Returns
    -------
    geopandas.GeoDataFrame
    """
    return wards.drop(columns=[c for c in columns.columns if c in wards.columns]).join(columns)


def as_layer(kind: str, layer: LayerResult | pd.DataFrame) -> LayerResult:
    """A loaded layer as it is, or a plain (Geo)DataFrame in canonical form wrapped as one."""
    if isinstance(layer, LayerResult):
        return layer
    if not isinstance(layer, pd.DataFrame):
        raise TypeError(f"layer {kind!r} must be a LayerResult or a data frame, not {type(layer).__name__}")
    table = layer.copy()
    for column, value in (("source_file", f"<{kind} data frame>"), ("source_row", None)):
        if column not in table:
            # Row numbers as a file would have them (header = row 1), for unmatched.csv.
            table[column] = value if value is not None else np.arange(2, len(table) + 2)
    return LayerResult(kind=kind, paths=[], table=table, rows_read=len(table))


def months_in_data(layers: Mapping[str, LayerResult]) -> list[str]:
    """Every month from the first to the last month found in any layer (a year of an annual
    source, its ``year`` column, spans January to December)."""
    found: set[str] = set()
    for layer in layers.values():
        if "month" in layer.table:
            found.update(layer.table["month"].dropna().unique())
        elif "year" in layer.table:
            years = layer.table["year"].dropna().astype(str).unique()
            found.update([f"{y}-01" for y in years] + [f"{y}-12" for y in years])
    return months_between(min(found), max(found)) if found else []


#: Months in each kind of time step (the keys are ``config.TIME_STEPS``).
STEP_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def step_of_month(month: str, time_step: str) -> str:
    """The step label of a ``YYYY-MM`` month: itself, ``YYYY-Qn`` or ``YYYY``."""
    if time_step == "month":
        return month
    if time_step == "quarter":
        return f"{month[:4]}-Q{(int(month[5:7]) - 1) // 3 + 1}"
    return month[:4]


def step_table(monthly: pd.DataFrame, months: list[str], column: str,
               time_step: str) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Sum one count column of the monthly table into complete time steps.

    Parameters
    ----------
    monthly
        ``ward_code``, ``month`` and ``column`` (NaN/NA where the source has no data).
    months
        The study period's months in order.
    column
        Count column, e.g. ``possession_count``.
    time_step
        ``"month"``, ``"quarter"`` or ``"year"``.

    Returns
    -------
    (counts, steps, partial)
        ``counts``: wards x steps (float, NaN where any month of the step has no data for the
        ward); ``steps``: complete step labels in order; ``partial``: steps the period only
        partly covers, left out (a quarter with two months is not comparable with the others).
    """
    label = {m: step_of_month(m, time_step) for m in months}
    months_in = pd.Series(list(label.values()), dtype=object).value_counts()
    ordered = list(dict.fromkeys(label.values()))
    steps = [s for s in ordered if months_in[s] == STEP_MONTHS[time_step]]
    partial = [s for s in ordered if s not in steps]
    frame = monthly.loc[monthly["month"].isin(months), ["ward_code", "month", column]].copy()
    frame["value"] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["step"] = frame["month"].map(label)
    grouped = frame.groupby(["ward_code", "step"], sort=False)["value"]
    # A step with any month missing is missing: summing the rest would read as a fall.
    totals = grouped.sum(min_count=1).where(grouped.count() == grouped.size())
    counts = totals.unstack("step").reindex(columns=steps)
    return counts, steps, partial


def whole_years(months: list[str]) -> list[str]:
    """The calendar years (``YYYY``) all 12 of whose months are in ``months``, in order."""
    in_year = Counter(m[:4] for m in months)
    return [y for y in dict.fromkeys(m[:4] for m in months) if in_year[y] == STEP_MONTHS["year"]]


def _yearly_table(monthly: pd.DataFrame, annual: pd.DataFrame, months: list[str], years: list[str]) -> pd.DataFrame:
    """``ward_code``, ``year`` and ``M_count`` per measure: the annual sources' counts where
    they feed a ward, else the year's 12 months summed (NaN when one has no data)."""
    table = annual.copy()
    for column in annual.columns:
        from_months, steps, _ = step_table(monthly, months, column, "year")
        stacked = from_months.reindex(columns=years).stack(future_stack=True)
        stacked.index.names = ["ward_code", "year"]
        table[column] = annual[column].fillna(stacked.reindex(annual.index)).astype("Int64")
    return table.reset_index()


def _annual_coverage(measure: str, source: "MeasureSource", months: list[str], years: list[str],
                     previous_months: list[str], previous_years: list[str]) -> list[str]:
    """Warnings about an annual source's time coverage: years of the period it does not
    cover (no data, not zero), and months of the period that are no whole calendar year
    (left out of its wards' counts: an annual total cannot be cut to months).

    Raises
    ------
    InputError
        No year of the period is whole (an annual source then has nothing to give).
    """
    warnings = []
    if len(years) * 12 != len(months):
        if not years:
            raise InputError(f"{measure}: {source.kind} counts are calendar-year totals and the period "
                             f"{months[0]} to {months[-1]} holds no whole calendar year; give [study] period "
                             f"as whole years (January to December)")
        warnings.append(f"{measure}: {source.kind} counts are calendar-year totals; the period's months outside "
                        f"its whole years ({years[0]} to {years[-1]}) are left out of its wards' counts")
    missing = [y for y in years if y not in source.years]
    if missing:
        warnings.append(f"{measure}: {source.kind} has no data for {len(missing)} year(s) of the period "
                        f"({missing[0]} to {missing[-1]}); they count as missing, not zero")
    return warnings


def _with_ward_columns(wards: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The boundaries with ``ward_name``, ``borough_name`` and ``area_km2`` (a copy when added)."""
    if not isinstance(wards, gpd.GeoDataFrame) or "ward_code" not in wards:
        raise TypeError("wards must be a GeoDataFrame with a ward_code column (EPSG:27700)")
    missing = {"ward_name": lambda w: w["ward_code"].astype(str), "borough_name": lambda w: None,
               "area_km2": lambda w: w.geometry.area / 1e6}
    if all(column in wards for column in missing):
        return wards
    return wards.assign(**{column: make(wards) for column, make in missing.items() if column not in wards})


@dataclass
class MeasureSource:
    """One source that can feed a measure, with what it covers.

    Attributes
    ----------
    kind
        Layer kind (``mps_ward``, ``police_uk`` ...).
    counts
        ``ward_code, month, count`` rows of this measure (points count 1 each).
    wards
        Study wards it covers (``None``: every study ward).
    months
        Months it covers (``None``: every month).
    years
        For an annual source (``counts`` has ``year`` instead of ``month``): the calendar
        years (``YYYY``) it covers; ``None`` for a monthly source.
    """

    kind: str
    counts: pd.DataFrame
    wards: frozenset[str] | None
    months: list[str] | None
    years: list[str] | None = None


#: Measure -> layer kinds that can feed it, in precedence order (README "Which source feeds
#: which measure"); each ward takes the first one that covers it.
PRECEDENCE: dict[str, tuple[str, ...]] = {
    "possession": ("mps_ward",),
    "trafficking": ("mps_ward",),
    "drug_offences": ("mps_ward", "mps_lsoa", "police_uk"),
    "asb": ("asb_warnings", "police_uk"),
}


def _measure_sources(layers: dict[str, LayerResult]) -> dict[str, list[MeasureSource]]:
    """Measure -> the sources given for it, in precedence order.

    Each covers the wards in ``LayerResult.wards`` (``None``: every study ward): the wards a
    ward-level file lists, or a police force's area (set by :func:`join_layers_to_wards`).
    """
    found: dict[str, list[MeasureSource]] = {}
    for measure, kinds in PRECEDENCE.items():
        for kind in kinds:
            if kind not in layers:
                continue
            layer = layers[kind]
            table = layer.table
            if "year" in table:  # annual ward-level table
                counts = table.loc[table["measure"] == measure, ["ward_code", "year", "count"]]
                source = MeasureSource(kind, counts, layer.wards, None, years=list(layer.years or []))
            elif "count" in table:  # ward-level table
                counts = table.loc[table["measure"] == measure, ["ward_code", "month", "count"]]
                source = MeasureSource(kind, counts, layer.wards, layer.months)
            else:  # points, each one counts once
                counts = table.loc[table["measure"] == measure, ["ward_code", "month"]].assign(count=1)
                source = MeasureSource(kind, counts, layer.wards, layer.months)
            found.setdefault(measure, []).append(source)
    return found


def _feeding_source(ward_codes: pd.Series, sources: list[MeasureSource]) -> pd.Series:
    """Ward code -> the kind of the first source (in precedence order) covering it, or NaN."""
    feed = pd.Series(np.nan, index=pd.Index(ward_codes), dtype="object")
    for source in sources:
        covered = feed.index.isin(source.wards) if source.wards is not None else np.ones(len(feed), bool)
        feed[feed.isna() & covered] = source.kind
    return feed


def _listed(names: pd.Series, limit: int = 5) -> str:
    """Up to ``limit`` ward names, then "and N more"."""
    shown = ", ".join(names.astype(str).head(limit))
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


#: Short names of sources, as briefings show them ("also: St Peter's (MPS)").
SOURCE_SHORT_NAMES = {"mps_ward": "MPS", "mps_lsoa": "MPS LSOA", "asb_warnings": "ASB warnings", "population": "population file"}


def _add_source_names(table: gpd.GeoDataFrame, layers: dict[str, LayerResult]) -> None:
    """Fill ``borough_name`` from a source where the boundaries have none (the MPS
    ``LookUp_BoroughName``), and set ``ward_names_in_sources``: every other name a source
    gives a ward, e.g. ``St Peter's (MPS)``; ``ward_name`` stays the boundary file's."""
    others: dict[str, list[str]] = {code: [] for code in table["ward_code"]}
    own = dict(zip(table["ward_code"], table["ward_name"].map(normalise_name)))
    for kind, layer in layers.items():
        for code, name in sorted(layer.ward_names.items()):
            if code in others and name and normalise_name(name) != own[code]:
                label = f"{name} ({SOURCE_SHORT_NAMES.get(kind, kind)})"
                if label not in others[code]:
                    others[code].append(label)
        if layer.boroughs and table["borough_name"].isna().any():
            table["borough_name"] = table["borough_name"].where(table["borough_name"].notna(),
                                                                table["ward_code"].map(layer.boroughs))
    table["ward_names_in_sources"] = table["ward_code"].map(lambda c: "; ".join(others[c]))


def _sites_per_ward(table: pd.DataFrame, layers: dict[str, LayerResult], kinds: tuple[str, ...],
                    needle_exchanges_only: bool = False) -> pd.Series:
    """Number of sites of the given layer kinds in each ward."""
    counts = pd.Series(0, index=table.index, dtype="int64")
    for kind in kinds:
        if kind not in layers:
            continue
        sites = layers[kind].table
        if needle_exchanges_only:
            sites = sites[sites["is_needle_exchange"]]
        counts += table["ward_code"].map(sites["ward_code"].value_counts()).fillna(0).astype("int64")
    return counts
