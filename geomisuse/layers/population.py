"""Resident population: ward totals (for rates) and, optionally, a finer layer of small-area
counts (for where residents live within wards, used by the access measures)."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from ..errors import InputError
from ..config import LayerSpec
from .small_areas import aggregate_areas, small_area_column
from .base import (LayerResult, LoadContext, apply_where, coordinate_columns, find_columns,
                   is_vector_file, points_from_table, read_table, read_vector, study_ward_codes,
                   reject_bad_numbers)

WARD_COLUMNS = {
    "ward_code": ["ward_code", "WD22CD", "WD23CD", "WD24CD", "WD25CD", "GSS_CODE", "GEOGRAPHY_CODE", "Code",
                  "New code", "ward22_code"],
    "ward_name": ["ward_name", "WD22NM", "WD23NM", "WD24NM", "NAME", "GEOGRAPHY_NAME", "Ward_Name", "Names",
                  "ward22_name"],
    "population": ["population", "residents", "usual_residents", "OBS_VALUE", "Population", "All Ages",
                   "Persons_All-Ages", "Population - 2015", "Observation"],
}
RESIDENT_COLUMNS = ["residents", "population", "usual_residents", "USUALRES", "OBS_VALUE", "Persons_All-Ages",
                    "count"]


def load_population(spec: LayerSpec, context: LoadContext) -> LayerResult:
    """Read ward populations.

    Parameters
    ----------
    spec
        ``[layers.population]``: ``path`` to a CSV with a ward code (or name) and a resident
        count (ONS, Nomis and GLA column names are recognised); optional ``columns`` and
        ``where`` (e.g. ``{Year = "2021"}`` for the GLA multi-year file).
    context
        The study's wards: rows of other wards are excluded.

    Returns
    -------
    LayerResult
        ``table``: DataFrame ``ward_code, population`` (one row per study ward found).

    Raises
    ------
    InputError
        Missing columns, or a ward listed twice.
    """
    path = spec.paths[0]
    frame = read_table(path, "population")
    layer = LayerResult("population", [path], frame, rows_read=len(frame))
    apply_where(layer, spec.options.get("where"), path)
    columns = find_columns(frame, path, "population", WARD_COLUMNS, spec.columns,
                           optional=("ward_code", "ward_name"))
    area_column = None if "ward_code" in spec.columns else small_area_column(layer.table)
    if area_column is not None:
        return _population_by_small_area(layer, area_column, columns["population"], spec, context)
    table = layer.table
    codes = study_ward_codes(table, columns["ward_code"], None, context)
    if columns["ward_name"] and codes.isna().all():
        # Codes of another ward vintage match nothing: fall back to names for the whole file.
        codes = study_ward_codes(table, None, columns["ward_name"], context)
    layer.exclude(table[codes.isna()], "ward not in the study area")
    value = reject_bad_numbers(layer, layer.table[columns["population"]], "population")
    codes = codes[layer.table.index]
    duplicated = codes[codes.duplicated()]
    if len(duplicated):
        rows = layer.table.loc[codes == duplicated.iloc[0], "source_row"].tolist()
        raise InputError(f"ward {duplicated.iloc[0]} has more than one population row (rows "
                         f"{', '.join(map(str, rows))}); keep one, or filter with 'where' (e.g. a year)", path)
    layer.table = (pd.DataFrame({"ward_code": codes.to_numpy(), "population": value[layer.table.index].to_numpy()})
                   .sort_values("ward_code").reset_index(drop=True))
    return layer


def _population_by_small_area(layer: LayerResult, area_column: str, value_column: str, spec: LayerSpec,
                              context: LoadContext) -> LayerResult:
    """Ward populations summed from a small-area table (several rows per area, e.g. age bands, summed)."""
    value = reject_bad_numbers(layer, layer.table[value_column], "population")
    layer.table = layer.table.assign(population=value[layer.table.index])
    summed, mapping = aggregate_areas(layer, area_column, ["population"], spec.options, context)
    layer.paths = [*layer.paths, *mapping.paths]
    layer.warnings.extend(mapping.warnings)
    layer.table = summed.sort_values("ward_code").reset_index(drop=True)
    return layer


def load_residents(spec: LayerSpec, context: LoadContext | None = None) -> LayerResult:
    """Read a finer population layer: small areas (points or polygons) with resident counts.

    Parameters
    ----------
    spec
        ``[layers.residents]``: ``path`` to a GeoPackage/GeoJSON/Shapefile of polygons or
        points, or a CSV with coordinates; the count column is found among
        :data:`RESIDENT_COLUMNS` or mapped as ``columns.residents``.

    Returns
    -------
    LayerResult
        ``table``: GeoDataFrame (EPSG:27700) with ``residents`` and geometry.
    """
    path = spec.paths[0]
    vector = is_vector_file(path)
    frame = read_vector(path, "residents") if vector else read_table(path, "residents")
    layer = LayerResult("residents", [path], frame, rows_read=len(frame))
    apply_where(layer, spec.options.get("where"), path)
    if not vector:
        x_column, y_column, lonlat = coordinate_columns(layer.table, path, "residents", spec.columns)
        points_from_table(layer, x_column, y_column, lonlat)
    column = find_columns(layer.table, path, "residents", {"residents": RESIDENT_COLUMNS}, spec.columns)["residents"]
    value = reject_bad_numbers(layer, layer.table[column], "resident count")
    table = layer.table
    layer.table = gpd.GeoDataFrame({"residents": value[table.index], "source_file": table["source_file"],
                                    "source_row": table["source_row"]},
                                   geometry=table.geometry, crs=table.crs).reset_index(drop=True)
    return layer
