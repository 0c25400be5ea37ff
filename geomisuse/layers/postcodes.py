"""Read a postcode file (Ordnance Survey Code-Point Open, or any CSV of postcodes with
coordinates) to name the nearest postcode of a place.

Code-Point Open columns are ``Postcode, Positional_quality_indicator, Eastings, Northings, ...``
(British National Grid metres); lower-case ``postcode``/``pcds``, ``easting``/``northing`` and
``longitude``/``latitude`` are recognised too. A postcode without a position (Code-Point gives
those 0, 0) is counted and not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import Transformer

from ..config import ANALYSIS_CRS, MAP_CRS
from ..errors import InputError

_CODE = ("postcode", "pcds", "pcd", "postcode_unit")
_EASTING = ("eastings", "easting", "x")
_NORTHING = ("northings", "northing", "y")
_LONGITUDE = ("longitude", "lon", "long")
_LATITUDE = ("latitude", "lat")


@dataclass
class Postcodes:
    """Postcode units with positions.

    Attributes
    ----------
    code : numpy.ndarray
        Postcodes as written in the file (e.g. ``NW1 2DB``).
    xy : numpy.ndarray
        ``(n, 2)`` positions in EPSG:27700 metres.
    report : dict
        ``path``, ``rows_read``, ``rows_used``, ``rows_without_position``.
    """

    code: np.ndarray
    xy: np.ndarray
    report: dict


def _find(columns: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((columns[n] for n in names if n in columns), None)


def read_postcodes(path: str | Path) -> Postcodes:
    """Read a postcode CSV (optionally gzip-compressed).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    Postcodes

    Raises
    ------
    InputError
        File missing, or without a postcode column and coordinates (named in the message).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("postcode file not found; give a Code-Point Open CSV "
                         "(Postcode, Eastings, Northings)", path)
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError, OSError) as err:
        raise InputError(f"cannot read it as CSV ({err})", path) from None
    columns = {str(c).strip().lower(): c for c in header.columns}
    code = _find(columns, _CODE)
    east, north = _find(columns, _EASTING), _find(columns, _NORTHING)
    lon, lat = _find(columns, _LONGITUDE), _find(columns, _LATITUDE)
    if code is None:
        raise InputError("has no postcode column (looked for Postcode, pcds, pcd); name it "
                         "Postcode", path)
    if not (east and north) and not (lon and lat):
        raise InputError("has no coordinates (looked for Eastings/Northings and "
                         "longitude/latitude); add them", path)
    use = [code] + ([east, north] if east and north else [lon, lat])
    table = pd.read_csv(path, usecols=use, encoding="utf-8-sig", dtype={code: str})
    a = pd.to_numeric(table[use[1]], errors="coerce").to_numpy(float)
    b = pd.to_numeric(table[use[2]], errors="coerce").to_numpy(float)
    if not (east and north):
        a, b = Transformer.from_crs(MAP_CRS, ANALYSIS_CRS, always_xy=True).transform(a, b)
        a, b = np.asarray(a), np.asarray(b)
    positioned = np.isfinite(a) & np.isfinite(b) & ~((a == 0) & (b == 0))
    codes = table[code].fillna("").astype(str).str.strip().to_numpy()
    positioned &= codes != ""
    report = {"path": str(path), "rows_read": int(len(table)),
              "rows_used": int(positioned.sum()),
              "rows_without_position": int((~positioned).sum())}
    return Postcodes(code=codes[positioned], xy=np.column_stack([a[positioned], b[positioned]]),
                     report=report)
