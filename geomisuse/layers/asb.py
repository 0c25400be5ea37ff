"""Anti-social behaviour warnings: a ward-level table (ward, month, count) or points."""

from __future__ import annotations

import pandas as pd

from ..config import LayerSpec
from .base import (LayerResult, LoadContext, apply_where, coordinate_columns, find_columns, parse_months,
                   points_from_table, read_table)
from .ward_counts import ward_counts_from_table


def load_asb_warnings(spec: LayerSpec, context: LoadContext) -> LayerResult:
    """Read ASB warnings.

    Parameters
    ----------
    spec
        ``[layers.asb_warnings]``: ``path`` to a CSV that is either a ward-level table
        (ward code or name, ``month``, ``count``/``warnings``) or one row per warning with
        coordinates (lon/lat or easting/northing) and a ``month``; optional ``columns``, ``where``.
    context
        Study wards and period.

    Returns
    -------
    LayerResult
        Ward-level: DataFrame ``ward_code, month, measure ("asb"), count``.
        Points: GeoDataFrame with ``month``, ``measure``, ``source_file``, ``source_row``;
        the ward table joins them to wards.
    """
    path = spec.paths[0]
    frame = read_table(path, "asb_warnings")
    layer = LayerResult("asb_warnings", [path], frame, rows_read=len(frame))
    apply_where(layer, spec.options.get("where"), path)
    folded = {c.lower() for c in frame.columns}
    has_points = bool(folded & {"longitude", "lon", "easting", "eastings", "x"}) or "longitude" in spec.columns \
        or "easting" in spec.columns
    if not has_points:
        ward_counts_from_table(layer, spec, context, "asb")
        return layer
    x_column, y_column, lonlat = coordinate_columns(layer.table, path, "asb_warnings", spec.columns)
    month_col = find_columns(layer.table, path, "asb_warnings", {"month": ["month", "period", "date"]},
                             spec.columns)["month"]
    month = parse_months(layer, month_col, context.months)
    table = layer.table
    layer.table = pd.DataFrame({"month": month[table.index], "measure": "asb", x_column: table[x_column],
                                y_column: table[y_column], "source_file": table["source_file"],
                                "source_row": table["source_row"]}, index=table.index)
    points_from_table(layer, x_column, y_column, lonlat=lonlat)
    layer.table = layer.table.drop(columns=[x_column, y_column]).reset_index(drop=True)
    return layer
