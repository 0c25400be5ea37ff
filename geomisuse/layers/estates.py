"""Hotspot housing estates: polygons (GeoJSON/GeoPackage/Shapefile) or named points (CSV)."""

from __future__ import annotations

import geopandas as gpd

from ..config import LayerSpec
from .base import (LayerResult, LoadContext, apply_where, coordinate_columns, find_columns, is_vector_file,
                   points_from_table, read_table, read_vector)
from .sites import with_extras

NAME_COLUMNS = ["name", "estate", "estate_name", "Name"]


def load_estates(spec: LayerSpec, context: LoadContext | None = None) -> LayerResult:
    """Read estates.

    Parameters
    ----------
    spec
        ``[layers.estates]``: ``path`` to polygons or to a CSV of named points; optional
        ``columns`` (``name``, coordinates) and ``where``.
    context
        Unused; same signature as every loader.

    Returns
    -------
    LayerResult
        ``table``: GeoDataFrame (EPSG:27700) with ``name``, polygon or point geometry,
        extras such as ``landlord`` and ``homes``, ``source_file`` and ``source_row``.
    """
    path = spec.paths[0]
    vector = is_vector_file(path)
    frame = read_vector(path, "estates") if vector else read_table(path, "estates")
    layer = LayerResult("estates", [path], frame, rows_read=len(frame))
    apply_where(layer, spec.options.get("where"), path)
    if vector:
        empty = layer.table.geometry.isna() | layer.table.geometry.is_empty
        layer.reject(layer.table[empty], "no geometry")
        invalid = ~layer.table.geometry.is_valid
        if invalid.any():
            layer.warnings.append(f"{path}: repaired {int(invalid.sum())} invalid estate polygon(s)")
            layer.table = layer.table.set_geometry(layer.table.geometry.make_valid())
    else:
        x_column, y_column, lonlat = coordinate_columns(layer.table, path, "estates", spec.columns)
        points_from_table(layer, x_column, y_column, lonlat)
    table = layer.table
    name = find_columns(table, path, "estates", {"name": NAME_COLUMNS}, spec.columns)["name"]
    out = gpd.GeoDataFrame({"name": table[name].astype(str).str.strip()}, geometry=table.geometry,
                           crs=table.crs, index=table.index)
    layer.table = with_extras(out, table)
    return layer
