"""The police.uk loader as it was before issue 14 (pandas reads every column as text, then
rows are dropped reason by reason, and every row's coordinates are checked and projected): the
reference tests/test_police_uk_fast.py compares the fast loader against. Not used by the package.

police.uk street-level crime CSVs: single files, folders of them, or zips of them.

Only ``Drugs`` and ``Anti-social behaviour`` rows are analysed (police.uk does not split
possession from supply). Crime types may be labels (``Drugs``) as in the bulk CSVs or slugs
(``drugs``, ``anti-social-behaviour``) as in API output.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geomisuse.errors import InputError
from geomisuse.progress import progress
from geomisuse.config import LayerSpec
from geomisuse.config import ANALYSIS_CRS
from geomisuse.layers.base import (_BNG_X, _BNG_Y, _GB_LAT, _GB_LON, _TO_BNG, LayerResult, LoadContext, apply_where,
                                   by_unique, find_columns, parse_months, read_table, refuse_swapped, require_file,
                                   swapped_lonlat, to_number)

#: Normalised crime type -> ward-table measure.
MEASURE_OF_CRIME_TYPE = {"drugs": "drug_offences", "anti social behaviour": "asb"}

COLUMNS = {
    "month": ["Month"],
    "crime_type": ["Crime type", "category", "crime_type"],
    "crime_id": ["Crime ID", "persistent_id", "id"],
    "location": ["Location", "street_name"],
    "lsoa_code": ["LSOA code"],
}


def load_police_uk(spec: LayerSpec, context: LoadContext) -> LayerResult:
    """Read police.uk street-level crime rows as points.

    Parameters
    ----------
    spec
        ``[layers.police_uk]``: ``path``/``paths`` (CSV files, folders, zips), optional
        ``columns`` mapping (``month``, ``crime_type``, ``longitude``, ``latitude``) and ``where``.
    context
        The study period; rows of other months are excluded.

    Returns
    -------
    LayerResult
        ``table``: GeoDataFrame (EPSG:27700) with ``month``, ``measure`` (``drug_offences`` or
        ``asb``), ``crime_type``, ``crime_id``, ``location``, ``source_file``, ``source_row``.
    """
    frames, paths = [], []
    for name, raw, source in progress(_csv_sources(spec.paths), "reading police.uk files"):
        frames.append(read_table(source, "police_uk", raw=raw, name=name))
        paths.append(source)
    if not frames:
        raise InputError("no CSV files found; point police_uk at a CSV, a folder of CSVs or a zip",
                         spec.paths[0])
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    layer = LayerResult("police_uk", sorted(set(paths)), frame, rows_read=len(frame))
    apply_where(layer, spec.options.get("where"), spec.paths[0])
    columns = find_columns(frame, spec.paths[0], "police_uk", COLUMNS, spec.columns,
                           optional=("crime_id", "location", "lsoa_code"))
    x_column = spec.columns.get("longitude", _column(frame, "Longitude", "longitude"))
    y_column = spec.columns.get("latitude", _column(frame, "Latitude", "latitude"))
    for role, column in (("longitude", x_column), ("latitude", y_column)):
        if column not in frame.columns:
            raise InputError(f"no {role} column (expected '{role.title()}'); map it in the study file",
                             spec.paths[0], column=role)

    month = parse_months(layer, columns["month"], None)
    # Months with any row at all are covered; a month with no file is missing data, not zero.
    layer.months = sorted(month.unique())
    if context.months is not None:
        layer.exclude(layer.table[~month.isin(context.months)], "month outside the study period")
    crime_type = by_unique(layer.table[columns["crime_type"]].astype(str), lambda u: u.str.strip())
    measure = by_unique(crime_type, lambda u: u.str.lower().str.replace("-", " ", regex=False)
                        .map(MEASURE_OF_CRIME_TYPE))
    other = measure.isna()
    for label, rows in layer.table[other].groupby(crime_type[other], sort=True):
        layer.exclude(rows, f"crime type not analysed: {label or '(blank)'}")

    table = layer.table
    layer.table = pd.DataFrame({
        "month": month.reindex(table.index),
        "measure": measure.reindex(table.index),
        "crime_type": crime_type.reindex(table.index),
        "crime_id": table[columns["crime_id"]] if columns["crime_id"] else "",
        "location": table[columns["location"]] if columns["location"] else "",
        x_column: table[x_column], y_column: table[y_column],
        "source_file": table["source_file"], "source_row": table["source_row"],
    }, index=table.index)
    points_from_table(layer, x_column, y_column, lonlat=True)
    layer.table = layer.table.drop(columns=[x_column, y_column]).reset_index(drop=True)
    return layer


def _column(frame: pd.DataFrame, *names: str) -> str:
    return next((c for c in frame.columns if c in names), names[0])


def _csv_sources(paths: list[Path]):
    """Yield ``(name, bytes or None, path)`` for every CSV in the given files, folders and zips."""
    for path in paths:
        if path.is_dir():
            members = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".csv", ".zip"))
            yield from _csv_sources(members)
        elif path.suffix.lower() == ".zip":
            require_file(path, "police_uk")
            with zipfile.ZipFile(path) as archive:
                for member in sorted(archive.namelist()):
                    if member.lower().endswith(".csv") and not member.startswith("__MACOSX"):
                        yield f"{path}:{member}", archive.read(member), path
        else:
            require_file(path, "police_uk")
            yield str(path), None, path


def points_from_table(layer: LayerResult, x_column: str, y_column: str, lonlat: bool) -> None:
    """The coordinate checks as they were before issue 14 (row by row: every row's texts parsed
    through :func:`by_unique`, rejected reason by reason with ``drop``, every row projected
    and made a point): the reference for :func:`geomisuse.layers.base.points_from_table`,
    which works on distinct coordinate pairs."""
    table = layer.table
    first_file = table["source_file"].iloc[0] if len(table) else ""
    raw_x = by_unique(table[x_column].astype(str), lambda u: u.str.strip())
    raw_y = by_unique(table[y_column].astype(str), lambda u: u.str.strip())
    x = by_unique(raw_x, lambda u: to_number(u, decimal_comma=lonlat))
    y = by_unique(raw_y, lambda u: to_number(u, decimal_comma=lonlat))
    blank = (raw_x == "") | (raw_y == "")
    layer.reject(table[blank], "no coordinates")
    bad = ~blank & (x.isna() | y.isna() | ~np.isfinite(x) | ~np.isfinite(y))
    layer.reject(table[bad], "unparseable coordinates")
    x, y = x[layer.table.index], y[layer.table.index]
    if lonlat:
        in_gb = x.between(*_GB_LON) & y.between(*_GB_LAT)
        swapped = pd.Series(swapped_lonlat(x.to_numpy(), y.to_numpy()), index=x.index)
        refuse_swapped(int(swapped.sum()), len(x), x_column, y_column, first_file)
        layer.reject(layer.table[swapped], "longitude and latitude swapped")
        outside = (~in_gb & ~swapped)[layer.table.index]
        layer.reject(layer.table[outside], "coordinates outside Great Britain")
        x, y = x[layer.table.index], y[layer.table.index]
        ex, ny = _TO_BNG.transform(x.to_numpy(), y.to_numpy())
    else:
        in_grid = x.between(*_BNG_X) & y.between(*_BNG_Y)
        if len(x) and (~in_grid).sum() > len(x) / 2 and x.between(*_GB_LON).all() and y.between(*_GB_LAT).all():
            raise InputError(
                f"'{x_column}'/'{y_column}' hold longitude/latitude, not easting/northing; name them "
                f"longitude/latitude or map them in the study file", first_file, column=x_column)
        layer.reject(layer.table[~in_grid], "coordinates outside Great Britain")
        ex, ny = x[layer.table.index].to_numpy(), y[layer.table.index].to_numpy()
    layer.table = gpd.GeoDataFrame(layer.table, geometry=shapely.points(ex, ny), crs=ANALYSIS_CRS)
