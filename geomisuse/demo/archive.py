"""Generated police.uk street-level archives at any size, for the scale tests and benchmarks.

The files have the real bulk-download schema (``Crime ID, Month, Reported by, Falls within,
Longitude, Latitude, Location, LSOA code, LSOA name, Crime type, Last outcome category,
Context``), one file per month in ``YYYY-MM/YYYY-MM-generated-street.csv`` folders as police.uk
ships them. As in the real data, crimes are snapped to a limited set of street points (so
coordinates repeat a great deal), anti-social behaviour has no crime ID, about 1.5 % of rows
have no location, some snap points lie outside the study wards, and the crime types come in
roughly their national proportions (ASB about a fifth, drugs about 3 %).

Nothing here describes a real place: the snap points are uniform over the wards' bounding box,
and street and LSOA names are invented (``LSOA code`` values are ``E019xxxxx``, outside ONS's
range).

``damage`` adds, to the first file, rows of every kind a loader must account for: unparseable
months, unparseable and blank coordinates, swapped and out-of-country coordinates, a blank
crime type, API slugs, leading spaces, quoted commas, and optionally (``short_row``) a row
with missing fields, which sends that file through the general CSV reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import shapely
from pyproj import Transformer

from ..config import ANALYSIS_CRS

HEADER = ["Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location",
          "LSOA code", "LSOA name", "Crime type", "Last outcome category", "Context"]

#: Crime types and their approximate shares of police.uk rows in England and Wales.
CRIME_TYPES = {
    "Anti-social behaviour": 0.20, "Violence and sexual offences": 0.30, "Public order": 0.08,
    "Criminal damage and arson": 0.08, "Other theft": 0.07, "Shoplifting": 0.06, "Vehicle crime": 0.06,
    "Burglary": 0.05, "Drugs": 0.03, "Other crime": 0.03, "Bicycle theft": 0.01,
    "Theft from the person": 0.01, "Robbery": 0.01, "Possession of weapons": 0.01,
}
OUTCOMES = ["Investigation complete; no suspect identified", "Unable to prosecute suspect",
            "Under investigation", "Offender given a caution", "Local resolution", ""]
#: Share of rows without a location ("No Location" in police.uk's terms: blank coordinates).
NO_LOCATION_SHARE = 0.015

_TO_LONLAT = Transformer.from_crs(ANALYSIS_CRS, "EPSG:4326", always_xy=True)


@dataclass
class Archive:
    """A generated archive: its folder, files (month order) and the number of data rows."""

    folder: Path
    files: list[Path]
    rows: int


def write_archive(folder: Path, polygons: np.ndarray, months: list[str], rows_per_month: int,
                  seed: int = 14, snap_points: int | None = None, damage: bool = False,
                  short_row: bool = False) -> Archive:
    """Write a police.uk-format archive, one CSV per month.

    Parameters
    ----------
    folder
        Created if needed; gets one ``YYYY-MM`` subfolder per month.
    polygons
        Ward polygons in EPSG:27700 (the snap points are drawn over their bounding box).
    months
        ``YYYY-MM`` months, one file each.
    rows_per_month
        Data rows per file (before ``damage`` rows).
    seed
        Seed of the generator: the same arguments give the same bytes.
    snap_points
        Number of distinct street points (default: one per 25 rows a month, 1,000 to 250,000).
    damage, short_row
        Add the damaged rows described in the module docstring to the first file.

    Returns
    -------
    Archive
    """
    rng = np.random.default_rng(seed)
    count = snap_points or int(np.clip(rows_per_month // 25, 1_000, 250_000))
    minx, miny, maxx, maxy = shapely.total_bounds(polygons)
    lon, lat = _TO_LONLAT.transform(rng.uniform(minx, maxx, count), rng.uniform(miny, maxy, count))
    snap_lon = pa.array(np.char.mod("%.6f", np.round(lon, 6)))
    snap_lat = pa.array(np.char.mod("%.6f", np.round(lat, 6)))
    snap_street = pa.array(np.char.add("On or near Generated Street ", np.arange(count).astype(str)))
    snap_lsoa = np.arange(count) // 8
    lsoa_code = pa.array(np.char.add("E019", np.char.zfill(snap_lsoa.astype(str), 5)))
    lsoa_name = pa.array(np.char.add("Generated ", np.char.zfill(snap_lsoa.astype(str), 4)))
    types = np.array(list(CRIME_TYPES))
    shares = np.array(list(CRIME_TYPES.values()))
    files = []
    total = 0
    for k, month in enumerate(months):
        n = rows_per_month
        point = rng.integers(0, count, n)
        crime = rng.choice(len(types), n, p=shares / shares.sum())
        located = rng.random(n) >= NO_LOCATION_SHARE
        is_asb = types[crime] == "Anti-social behaviour"
        blank = pa.array([""] * n) if n else pa.array([], pa.string())
        columns = {
            "Crime ID": pc.if_else(pa.array(is_asb), "", _hex_ids(rng, n)),
            "Month": pa.array([month] * n, pa.string()),
            "Reported by": pa.array(["Generated Police"] * n, pa.string()),
            "Falls within": pa.array(["Generated Police"] * n, pa.string()),
            "Longitude": pc.if_else(pa.array(located), snap_lon.take(pa.array(point)), ""),
            "Latitude": pc.if_else(pa.array(located), snap_lat.take(pa.array(point)), ""),
            "Location": pc.if_else(pa.array(located), snap_street.take(pa.array(point)), "No Location"),
            "LSOA code": pc.if_else(pa.array(located), lsoa_code.take(pa.array(point)), ""),
            "LSOA name": pc.if_else(pa.array(located), lsoa_name.take(pa.array(point)), ""),
            "Crime type": pa.array(types[crime]),
            "Last outcome category": pc.if_else(pa.array(is_asb), "",
                                                pa.array(np.array(OUTCOMES)[rng.integers(0, len(OUTCOMES), n)])),
            "Context": blank,
        }
        path = folder / month / f"{month}-generated-street.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pa_csv.write_csv(pa.table(columns), path,
                         write_options=pa_csv.WriteOptions(quoting_style="needed"))
        # pyarrow quotes the header names; police.uk does not.
        _unquote_header(path)
        if damage and k == 0:
            total += _append_damaged_rows(path, month, snap_lon[0].as_py(), snap_lat[0].as_py(), short_row)
        files.append(path)
        total += n
    return Archive(folder=folder, files=files, rows=total)


def _hex_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` random 64-character hex crime IDs, built as one Arrow buffer."""
    data = rng.bytes(32 * n).hex().encode("ascii")
    offsets = np.arange(0, 64 * n + 1, 64, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data))


def _unquote_header(path: Path) -> None:
    with open(path, "r+b") as handle:
        first = handle.readline()
        rest = handle.read()
        handle.seek(0)
        handle.write(first.replace(b'"', b""))
        handle.write(rest)
        handle.truncate()


#: The damaged rows: (month, longitude, latitude, crime type, location); ``{lon}``/``{lat}``
#: stand for a snap point in the study area.
_DAMAGED = [
    ("January 2024", "{lon}", "{lat}", "Drugs", "bad month"),
    ("2024/13", "{lon}", "{lat}", "Other theft", "bad month of an excluded type"),
    ("{month}", "abc", "{lat}", "Drugs", "unparseable longitude"),
    ("{month}", "", "{lat}", "Drugs", "half blank"),
    ("{month}", "{lat}", "{lon}", "Drugs", "swapped"),
    ("{month}", "0.0", "0.0", "Anti-social behaviour", "off Africa"),
    ("{month}", "{lon}", "{lat}", "", "blank crime type"),
    ("{month}", "{lon}", "{lat}", "drugs", "API slug"),
    ("{month}", "{lon}", "{lat}", "anti-social-behaviour", "API slug"),
    (" {month}", " {lon}", " {lat}", " Drugs", "leading spaces"),
    ("{month}", "{lon}", "{lat}", "Drugs", '"On or near A, B and C"'),
    ("{month}", "-0.9", "51.0", "Drugs", "in England outside the wards"),
    ("2019-06", "{lon}", "{lat}", "Drugs", "another year"),
]


def _append_damaged_rows(path: Path, month: str, lon: str, lat: str, short_row: bool) -> int:
    lines = []
    for k, (row_month, row_lon, row_lat, crime_type, location) in enumerate(_DAMAGED):
        fill = {"month": month, "lon": lon, "lat": lat}
        lines.append(",".join([f"damaged{k:02d}", row_month.format(**fill), "Generated Police", "Generated Police",
                               row_lon.format(**fill), row_lat.format(**fill), location, "", "", crime_type, "", ""]))
    if short_row:
        lines.append(f"short,{month},Generated Police,Generated Police,{lon},{lat}")
    with open(path, "a", encoding="utf-8", newline="\n") as handle:
        handle.write("\n".join(lines) + "\n")
    return len(lines)
