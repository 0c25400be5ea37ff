"""Point sites: treatment services, pharmacies (with their needle-exchange flag), needle
exchanges and candidate satellite sites. CSV with lon/lat or easting/northing, or a
GeoJSON/GeoPackage/Shapefile."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import geopandas as gpd
import pandas as pd

from ..errors import InputError
from ..config import LayerSpec
from .base import (LayerResult, LoadContext, apply_where, coordinate_columns, find_columns, is_vector_file,
                   points_from_table, read_table, read_vector)

NAME_COLUMNS = ["name", "Name", "service_name", "site_name", "organisation_name", "pharmacy_name", "venue"]
TYPE_COLUMNS = ["service_type", "type", "site_type", "category"]
FLAG_COLUMNS = ["needle_exchange", "nsp", "is_needle_exchange", "needle_exchange_service", "needle exchange"]
#: Optional attributes kept when present (shown on maps and briefings).
EXTRA_COLUMNS = ["address", "postcode", "opening_days", "nsp_level", "supervised_consumption", "homes", "landlord"]
_YES = {"yes", "y", "true", "1", "t"}
_NO = {"no", "n", "false", "0", "f", ""}
_DEFAULT_TYPE = {
    "treatment_services": "Treatment service",
    "pharmacies": "Pharmacy",
    "needle_exchanges": "Needle exchange",
    "candidate_sites": "Candidate site",
}


def load_sites(spec: LayerSpec, context: LoadContext | None = None) -> LayerResult:
    """Read a list of sites as points.

    Parameters
    ----------
    spec
        ``[layers.treatment_services]``, ``[layers.pharmacies]``, ``[layers.needle_exchanges]``
        or ``[layers.candidate_sites]``: ``path``; optional ``columns`` mapping (``name``,
        ``service_type``, ``longitude``/``latitude`` or ``easting``/``northing``,
        ``needle_exchange``) and ``where``.
    context
        Unused; accepted so that every loader has the same signature.

    Returns
    -------
    LayerResult
        ``table``: GeoDataFrame (EPSG:27700) with ``name``, ``service_type``,
        ``is_needle_exchange`` (bool), any of :data:`EXTRA_COLUMNS` present, ``source_file``,
        ``source_row``. For pharmacies ``is_needle_exchange`` comes from the flag column
        (``Yes``/``No``); for needle exchanges it is always true.
    """
    path = spec.paths[0]
    kind = spec.kind
    vector = is_vector_file(path)
    frame = read_vector(path, kind) if vector else read_table(path, kind)
    layer = LayerResult(kind, [path], frame, rows_read=len(frame))
    apply_where(layer, spec.options.get("where"), path)
    if vector:
        _points_from_features(layer)
    else:
        x_column, y_column, lonlat = coordinate_columns(layer.table, path, kind, spec.columns)
        points_from_table(layer, x_column, y_column, lonlat)
    columns = find_columns(layer.table, path, kind, {"name": NAME_COLUMNS, "service_type": TYPE_COLUMNS,
                                                     "needle_exchange": FLAG_COLUMNS},
                           spec.columns, optional=("service_type", "needle_exchange"))
    is_needle_exchange = _needle_exchange_flag(layer, columns["needle_exchange"], path)
    table = layer.table
    names = table[columns["name"]].astype(str).str.strip()
    unnamed = names.isin(["", "nan", "None"])
    names = names.where(~unnamed, "(unnamed, row " + table["source_row"].astype(str) + ")")
    if unnamed.any():
        layer.warnings.append(f"{path}: {int(unnamed.sum())} site(s) without a name are shown by row number")
    out = gpd.GeoDataFrame({
        "name": names,
        "service_type": (table[columns["service_type"]].astype(str).str.strip() if columns["service_type"]
                         else _DEFAULT_TYPE.get(kind, "Site")),
        "is_needle_exchange": is_needle_exchange[table.index],
    }, geometry=table.geometry, crs=table.crs, index=table.index)
    layer.table = with_extras(out, table)
    return layer


def with_extras(out: gpd.GeoDataFrame, source: pd.DataFrame) -> gpd.GeoDataFrame:
    """Add the optional attributes of :data:`EXTRA_COLUMNS` found in ``source`` and the row
    provenance columns to a canonical table."""
    for extra in EXTRA_COLUMNS:
        match = next((c for c in source.columns if c.lower() == extra), None)
        if match:
            out[extra] = source[match].astype(str).str.strip()
    out["source_file"] = source["source_file"]
    out["source_row"] = source["source_row"]
    return out.reset_index(drop=True)


def _needle_exchange_flag(layer: LayerResult, column: str | None, path: Path) -> pd.Series:
    """Whether each site is a needle exchange; rows with an unreadable flag are rejected."""
    table = layer.table
    if layer.kind == "needle_exchanges":
        return pd.Series(True, index=table.index)
    if column is None:
        if layer.kind == "pharmacies":
            layer.warnings.append(f"{path}: no needle-exchange column (needle_exchange Yes/No); "
                                  "no pharmacy is counted as a needle exchange")
        return pd.Series(False, index=table.index)
    value = table[column].astype(str).str.strip().str.lower()
    unreadable = ~value.isin(_YES | _NO)
    if unreadable.all() and len(value):
        raise InputError(f"needle-exchange flag '{table[column].iloc[0]}' is not Yes/No", path,
                         row=int(table["source_row"].iloc[0]), column=column)
    layer.reject(table[unreadable], f"needle-exchange flag not Yes/No in column '{column}'")
    return value[~unreadable].isin(_YES)


def _points_from_features(layer: LayerResult) -> None:
    """Point features stay; polygons and lines are represented by a point inside them."""
    table = layer.table
    empty = table.geometry.isna() | table.geometry.is_empty
    layer.reject(table[empty], "no geometry")
    table = layer.table
    not_point = table.geom_type != "Point"
    if not_point.any():
        layer.warnings.append(f"{layer.paths[0]}: {int(not_point.sum())} non-point feature(s) placed at a "
                              "point inside their shape")
        table = table.set_geometry(table.geometry.where(~not_point, table.geometry.representative_point()))
    layer.table = table


def _table(layers: Mapping[str, LayerResult], kind: str) -> gpd.GeoDataFrame | None:
    layer = layers.get(kind)
    return None if layer is None else layer.table


def needle_exchanges(layers: Mapping[str, LayerResult]) -> gpd.GeoDataFrame | None:
    """Needle exchanges: flagged pharmacies and the needle-exchange layer together.

    Parameters
    ----------
    layers
        Loaded layers by kind.

    Returns
    -------
    geopandas.GeoDataFrame or None
        ``None`` when the study has neither layer.
    """
    parts = []
    pharmacies = _table(layers, "pharmacies")
    if pharmacies is not None:
        parts.append(pharmacies[pharmacies["is_needle_exchange"]])
    if _table(layers, "needle_exchanges") is not None:
        parts.append(_table(layers, "needle_exchanges"))
    if not parts:
        return None
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=parts[0].crs)


def other_pharmacies(layers: Mapping[str, LayerResult]) -> gpd.GeoDataFrame | None:
    """Pharmacies that are not needle exchanges (the default satellite candidates), or ``None``."""
    pharmacies = _table(layers, "pharmacies")
    return None if pharmacies is None else pharmacies[~pharmacies["is_needle_exchange"]].reset_index(drop=True)


def gap_inputs(layers: Mapping[str, LayerResult]) -> dict:
    """The site layers of the gap stage, as :func:`geomisuse.gaps.find_gaps` takes them.

    Parameters
    ----------
    layers
        Loaded layers by kind.

    Returns
    -------
    dict
        ``treatment_services``, ``needle_exchanges``, ``candidate_sites`` (the candidate file,
        else the pharmacies that are not needle exchanges: the gap stage then adds a grid over
        the gap wards), ``residents`` and ``candidates_from_file``.
    """
    from_file = _table(layers, "candidate_sites") is not None
    return {
        "treatment_services": _table(layers, "treatment_services"),
        "needle_exchanges": needle_exchanges(layers),
        "candidate_sites": _table(layers, "candidate_sites") if from_file else other_pharmacies(layers),
        "residents": _table(layers, "residents"),
        "candidates_from_file": from_file,
    }
