"""police.uk street-level crime CSVs: single files, folders of them, or zips of them.

Only ``Drugs`` and ``Anti-social behaviour`` rows are analysed (police.uk does not split
possession from supply). Crime types may be labels (``Drugs``) as in the bulk CSVs or slugs
(``drugs``, ``anti-social-behaviour``) as in API output.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Callable

import pandas as pd

from ..errors import InputError
from ..progress import progress
from ..config import LayerSpec
from .base import (LayerResult, LoadContext, apply_where, by_unique, content_digest, find_columns,
                   normalise_name, parse_months, points_from_table, read_table, refuse_overlapping_files,
                   require_file)

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
    frames, paths, seen, duplicates = [], [], {}, []
    for name, raw, source in progress(_csv_sources(spec.paths), "reading police.uk files"):
        raw = raw if raw is not None else source.read_bytes()
        digest = content_digest(raw)
        if digest in seen:  # the same download twice (a folder and its zip): read once
            duplicates.append(f"{name} is a copy of {seen[digest]}, read once")
            continue
        seen[digest] = name
        frames.append(read_table(source, "police_uk", raw=raw, name=name))
        paths.append(source)
    if not frames:
        raise InputError("no CSV files found; point police_uk at a CSV, a folder of CSVs or a zip",
                         spec.paths[0])
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    refuse_overlapping_files(frame, ("Reported by", "Month"), spec.paths[0], "the force and month")
    layer = LayerResult("police_uk", sorted(set(paths)), frame, rows_read=len(frame), warnings=duplicates)
    apply_where(layer, spec.options.get("where"), spec.paths[0])
    columns = find_columns(frame, spec.paths[0], "police_uk", COLUMNS, spec.columns,
                           optional=("crime_id", "location", "lsoa_code"))
    x_column = spec.columns.get("longitude", _column(frame, "Longitude", "longitude"))
    y_column = spec.columns.get("latitude", _column(frame, "Latitude", "latitude"))
    for role, column in (("longitude", x_column), ("latitude", y_column)):
        if column not in frame.columns:
            raise InputError(f"no {role} column (expected '{role.title()}'); map it in the study file",
                             spec.paths[0], column=role)

    layer.covers_borough = force_area(layer.table, spec.options.get("covers"))
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


#: London's police force areas by borough: the City of London Police polices the City, the
#: Metropolitan Police Service the 32 other boroughs. A force's file says nothing about wards
#: outside its area (its few crimes recorded there are the other force's to count).
_CITY = "city of london"
FORCE_AREAS: dict[str, Callable[[str], bool]] = {
    "city of london police": lambda borough: borough == _CITY,
    "metropolitan police service": lambda borough: borough != _CITY,
}


def force_area(table: pd.DataFrame, covers: list[str] | str | None) -> Callable[[str], bool] | None:
    """Which boroughs a police.uk source covers, from the study's ``covers`` option (borough
    names) or from the forces in its ``Falls within`` column; ``None`` when every study ward is
    covered (an unknown force, or no force column)."""
    if covers is not None:
        wanted = {normalise_name(b) for b in (covers if isinstance(covers, list) else [covers])}
        return lambda borough: borough in wanted
    column = _column(table, "Falls within", "falls_within")
    if column not in table.columns:
        return None
    forces = {normalise_name(f) for f in table[column].astype(str).unique() if f.strip()}
    if not forces or not forces <= set(FORCE_AREAS):
        return None
    return lambda borough: any(FORCE_AREAS[force](borough) for force in forces)


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
            try:
                with zipfile.ZipFile(path) as archive:
                    members = [(m, archive.read(m)) for m in sorted(archive.namelist())
                               if m.lower().endswith(".csv") and not m.startswith("__MACOSX")]
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as err:
                raise InputError(f"cannot read the zip ({err}); download it again or unzip it into a folder",
                                 path) from None
            for member, raw in members:
                yield f"{path}:{member}", raw, path
        else:
            require_file(path, "police_uk")
            yield str(path), None, path
