"""What every layer loader shares: reading tabular files, finding columns, making points,
and the accounting of rows read, used, excluded and rejected.

A loader reads its source, keeps the rows it can use and accounts for every other row:

* *excluded* rows are fine but not analysed (another crime type, a month outside the
  study period); they are counted by reason in the manifest;
* *rejected* rows could not be used (no coordinates, unparseable values, outside the study
  area); each is listed in ``unmatched.csv`` with its file, row number and reason.

``rows_read == rows_used + sum(excluded) + len(rejected)`` always holds.
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from ..errors import InputError
from ..settings import ANALYSIS_CRS

#: Columns of the rejected-rows table (and of ``unmatched.csv``).
REJECT_COLUMNS = ["layer", "file", "row", "reason"]

# Great Britain and its waters in lon/lat; used to tell swapped coordinates from real ones.
_GB_LON = (-9.0, 2.5)
_GB_LAT = (49.0, 61.5)
# British National Grid extent (metres).
_BNG_X = (0.0, 700_000.0)
_BNG_Y = (0.0, 1_300_000.0)

_TO_BNG = Transformer.from_crs("EPSG:4326", ANALYSIS_CRS, always_xy=True)


@dataclass
class LayerResult:
    """A loaded layer: its canonical table and the accounting of its rows.

    Attributes
    ----------
    kind
        Layer kind as named in the study file (``police_uk``, ``population`` ...).
    paths
        Source files actually read (a folder or zip expands to its files).
    table
        The canonical (Geo)DataFrame; point and polygon layers are in EPSG:27700 and carry
        ``source_file`` and ``source_row`` so that later stages can report rows they drop.
    rows_read
        Data rows read (header lines not counted).
    excluded
        Reason -> number of rows deliberately not analysed.
    rejected
        One row per rejected input row, columns :data:`REJECT_COLUMNS`.
    warnings
        Messages for the console and the manifest.
    """

    kind: str
    paths: list[Path]
    table: pd.DataFrame
    rows_read: int
    excluded: dict[str, int] = field(default_factory=dict)
    rejected: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REJECT_COLUMNS))
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_used(self) -> int:
        """Rows counted in the analysis: read minus excluded minus rejected."""
        return self.rows_read - sum(self.excluded.values()) - len(self.rejected)

    def reject(self, rows: pd.DataFrame, reason: str | pd.Series) -> None:
        """Move ``rows`` (with ``source_file``/``source_row``) from the table to the rejects."""
        if rows.empty:
            return
        new = pd.DataFrame({
            "layer": self.kind,
            "file": rows["source_file"].astype(str).to_numpy(),
            "row": rows["source_row"].astype("int64").to_numpy(),
            "reason": reason if isinstance(reason, str) else reason.to_numpy(),
        })
        self.rejected = pd.concat([self.rejected, new], ignore_index=True) if len(self.rejected) else new
        self.table = self.table.drop(index=rows.index)

    def exclude(self, rows: pd.DataFrame, reason: str) -> None:
        """Move ``rows`` from the table to the excluded count under ``reason``."""
        if rows.empty:
            return
        self.excluded[reason] = self.excluded.get(reason, 0) + len(rows)
        self.table = self.table.drop(index=rows.index)

    def accounting(self) -> dict:
        """The manifest entry: files with checksums, rows read/used, excluded and rejected by reason."""
        rejected_by_reason = dict(sorted(Counter(self.rejected["reason"]).items())) if len(self.rejected) else {}
        return {
            "kind": self.kind,
            "files": [{"path": str(p), "sha256": sha256(p)} for p in self.paths],
            "rows_read": int(self.rows_read),
            "rows_used": int(self.rows_used),
            "rows_excluded": {k: int(v) for k, v in sorted(self.excluded.items())},
            "rows_rejected": {k: int(v) for k, v in rejected_by_reason.items()},
        }


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def require_file(path: Path, kind: str) -> Path:
    """Return ``path`` if it is a readable file, else raise a one-line :class:`InputError`."""
    if not path.exists():
        raise InputError(f"{kind} file not found; check the path in the study file", path)
    if path.is_dir():
        raise InputError(f"{kind} input is a folder; give a file", path)
    if path.stat().st_size == 0:
        raise InputError(f"{kind} file is empty; export it again with a header row and data", path)
    return path


def decode_text(raw: bytes) -> str:
    """Decode CSV bytes as UTF-8 (with or without BOM), else as Windows-1252 as Excel writes it."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def read_table(path: Path, kind: str, raw: bytes | None = None, name: str | None = None) -> pd.DataFrame:
    """Read a CSV file as strings, with a ``source_file`` and a 1-based ``source_row`` column.

    The header is row 1, so the first data row is row 2: the numbers match what a user sees
    in a text editor or in Excel.

    Parameters
    ----------
    path
        The file (used for messages and, unless ``raw`` is given, for reading).
    kind
        The layer kind, for messages.
    raw
        File bytes already read (for members of a zip).
    name
        Name to record as ``source_file`` (defaults to ``str(path)``).
    """
    if raw is None:
        raw = require_file(path, kind).read_bytes()
    text = decode_text(raw)
    if not text.strip():
        raise InputError(f"{kind} file is empty; export it again with a header row and data", name or path)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.ParserError as err:
        raise InputError(f"cannot read as CSV ({str(err).splitlines()[0]}); save it as comma-separated text",
                         name or path) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame["source_file"] = name or str(path)
    frame["source_row"] = np.arange(2, len(frame) + 2, dtype="int64")
    return frame


def find_columns(frame: pd.DataFrame, path: Path | str, kind: str,
                 wanted: Mapping[str, Sequence[str]], mapping: Mapping[str, str] | None = None,
                 optional: Iterable[str] = ()) -> dict[str, str | None]:
    """Find the source column for each canonical field.

    Parameters
    ----------
    frame
        The table as read.
    path, kind
        For messages.
    wanted
        Canonical field -> candidate source column names, matched case- and
        space-insensitively, in order of preference.
    mapping
        Canonical field -> source column given in the study file; it wins over the candidates.
    optional
        Fields that may be missing (their value in the result is ``None``).

    Returns
    -------
    dict
        Canonical field -> actual column name (or ``None`` for a missing optional field).
    """
    mapping = dict(mapping or {})
    optional = set(optional)
    folded = {_fold(c): c for c in frame.columns}
    found: dict[str, str | None] = {}
    for fieldname, candidates in wanted.items():
        if fieldname in mapping:
            column = mapping[fieldname]
            if column not in frame.columns:
                raise InputError(
                    f"column '{column}' (mapped to {fieldname} in the study file) is not in the file; "
                    f"columns are: {', '.join(_data_columns(frame))}", path)
            found[fieldname] = column
            continue
        match = next((folded[_fold(c)] for c in candidates if _fold(c) in folded), None)
        if match is None and fieldname not in optional:
            raise InputError(
                f"no {fieldname} column (expected one of: {', '.join(candidates)}); columns are: "
                f"{', '.join(_data_columns(frame))}; rename the column or map it in the study file "
                f"under [layers.{kind}.columns]", path, column=fieldname)
        found[fieldname] = match
    return found


def _fold(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def _data_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in ("source_file", "source_row")]


def to_number(values: pd.Series) -> pd.Series:
    """Parse strings to floats; blanks and unparseable values become NaN."""
    return pd.to_numeric(values.astype(str).str.strip().str.replace(",", "", regex=False), errors="coerce")


def points_from_table(layer: LayerResult, x_column: str, y_column: str, lonlat: bool) -> None:
    """Turn ``layer.table`` into a GeoDataFrame of points in EPSG:27700, rejecting bad rows.

    Rows without coordinates are rejected as ``no coordinates``, rows whose coordinates do
    not parse as ``unparseable coordinates``, and rows outside Great Britain as
    ``coordinates outside Great Britain``. When most rows of a lon/lat file have longitude
    and latitude the wrong way round the whole file is refused with a message that says so.

    Parameters
    ----------
    layer
        The layer; its ``table`` is replaced.
    x_column, y_column
        Longitude and latitude columns (``lonlat=True``) or easting and northing.
    lonlat
        Whether coordinates are WGS84 lon/lat (else British National Grid metres).
    """
    table = layer.table
    first_file = table["source_file"].iloc[0] if len(table) else ""
    raw_x = table[x_column].astype(str).str.strip()
    raw_y = table[y_column].astype(str).str.strip()
    x, y = to_number(raw_x), to_number(raw_y)
    blank = (raw_x == "") | (raw_y == "")
    layer.reject(table[blank], "no coordinates")
    bad = ~blank & (x.isna() | y.isna() | ~np.isfinite(x) | ~np.isfinite(y))
    layer.reject(table[bad], "unparseable coordinates")
    x, y = x[layer.table.index], y[layer.table.index]

    if lonlat:
        in_gb = x.between(*_GB_LON) & y.between(*_GB_LAT)
        swapped = y.between(*_GB_LON) & x.between(*_GB_LAT)
        if len(x) and swapped.sum() > len(x) / 2:
            raise InputError(
                f"longitude and latitude look swapped ({int(swapped.sum())} of {len(x)} rows have a "
                f"latitude in '{x_column}' and a longitude in '{y_column}'); swap the columns or map "
                f"them in the study file", first_file, column=x_column)
        layer.reject(layer.table[swapped], "longitude and latitude swapped")
        layer.reject(layer.table[~in_gb & ~swapped], "coordinates outside Great Britain")
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


