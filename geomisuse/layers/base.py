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

import csv
import functools
import hashlib
import re
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import shapely
from pyproj import Transformer

from ..errors import InputError
from ..config import ANALYSIS_CRS

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
    months
        Months a ward-level source covers.
    years
        Calendar years an annual source covers (``None`` for monthly and point sources).
    wards
        Study wards a source covers (``None`` for every study ward).
    ward_names, boroughs
        Ward code -> the ward name and borough this source uses.
    covers_borough
        Borough name -> whether a police force's points cover it (``None``: every ward).
    """

    kind: str
    paths: list[Path]
    table: pd.DataFrame
    rows_read: int
    excluded: dict[str, int] = field(default_factory=dict)
    rejected: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REJECT_COLUMNS))
    warnings: list[str] = field(default_factory=list)
    #: Months a ward-level source covers (a missing month is missing data, not zero).
    months: list[str] | None = None
    #: Calendar years (``YYYY``) an annual source covers (its table has ``year``, not ``month``).
    years: list[str] | None = None
    #: Study wards a source covers (``None``: every study ward). Outside them its counts are
    #: missing data, not zero.
    wards: frozenset[str] | None = None
    #: Ward code -> the name this source gives the ward (kept beside the boundary file's name).
    ward_names: dict[str, str] = field(default_factory=dict)
    #: Ward code -> the borough this source gives the ward.
    boroughs: dict[str, str] = field(default_factory=dict)
    #: For point sources of one police force's area: whether it covers a borough (by name);
    #: ``None``: it covers every study ward.
    covers_borough: Callable[[str], bool] | None = None
    #: The ward vintage (``"2022"``) where the source says it (boundary column ``WD22CD``).
    vintage: str | None = None
    #: The parsed coordinates of a CSV point layer, kept for :func:`check_placement`.
    coordinates: "ParsedCoordinates | None" = None

    @property
    def rows_used(self) -> int:
        """Rows counted in the analysis: read minus excluded minus rejected."""
        return self.rows_read - sum(self.excluded.values()) - len(self.rejected)

    def reject(self, rows: pd.DataFrame, reason: str | pd.Series) -> None:
        """Move ``rows`` (with ``source_file``/``source_row``) from the table to the rejects."""
        if rows.empty:
            return
        self.list_rejected(rows, reason)
        self.table = self.table.drop(index=rows.index)

    def list_rejected(self, rows: pd.DataFrame, reason: str | pd.Series) -> None:
        """Add ``rows`` (with ``source_file``/``source_row``) to the rejects, leaving the table
        as it is (a caller that rejects for several reasons then keeps the other rows once)."""
        if rows.empty:
            return
        new = pd.DataFrame({
            "layer": self.kind,
            "file": _texts(rows["source_file"]),
            "row": rows["source_row"].astype("int64").to_numpy(),
            "reason": reason if isinstance(reason, str) else reason.to_numpy(),
        })
        self.rejected = pd.concat([self.rejected, new], ignore_index=True) if len(self.rejected) else new

    def exclude(self, rows: pd.DataFrame, reason: str) -> None:
        """Move ``rows`` from the table to the excluded count under ``reason``."""
        if rows.empty:
            return
        self.excluded[reason] = self.excluded.get(reason, 0) + len(rows)
        self.table = self.table.drop(index=rows.index)

    def accounting(self) -> dict:
        """The manifest entry: files with checksums, rows read/used, excluded and rejected by reason."""
        # value_counts, not a Counter: a national archive rejects millions of rows.
        rejected_by_reason = dict(sorted(self.rejected["reason"].value_counts().items())) if len(self.rejected) \
            else {}
        return {
            "kind": self.kind,
            "files": [{"path": str(p), "sha256": sha256(p)} for p in self.paths],
            "rows_read": int(self.rows_read),
            "rows_used": int(self.rows_used),
            "rows_excluded": {k: int(v) for k, v in sorted(self.excluded.items())},
            "rows_rejected": {k: int(v) for k, v in rejected_by_reason.items()},
        }


def _texts(column: pd.Series) -> np.ndarray:
    """``column.astype(str).to_numpy()``; for a categorical of a few files' names (hundreds of
    thousands of rejected rows) worked out per category."""
    if isinstance(column.dtype, pd.CategoricalDtype) and not (column.cat.codes.to_numpy() < 0).any():
        return np.asarray(column.cat.categories.astype(str), dtype=object)[column.cat.codes.to_numpy()]
    return column.astype(str).to_numpy()


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (worked out once per file version: a national year is
    over a gigabyte, and the console report and the manifest both ask)."""
    stat = Path(path).stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    return _KNOWN_SHA256.get(key) or _sha256(*key)


#: Digests worked out elsewhere (Dask workers hash the files they read), by (path, size, mtime).
_KNOWN_SHA256: dict[tuple[str, int, int], str] = {}


def remember_sha256(path: Path | str, size: int, mtime_ns: int, digest: str) -> None:
    """Record the SHA-256 of a file's bytes as read by someone else (a Dask worker), so that
    :func:`sha256` does not read the file again while its size and modification time hold."""
    _KNOWN_SHA256[(str(path), int(size), int(mtime_ns))] = digest


@functools.lru_cache(maxsize=4096)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
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


def decode_text(raw: bytes, path: Path | str = "") -> str:
    """Decode CSV bytes: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252.

    Windows-1252 is what Excel writes as "CSV" on English Windows; it agrees with Latin-1 on
    every printable character. Bytes that are not text in any of these (NUL bytes of UTF-16
    without a BOM, bytes Windows-1252 does not define) are refused rather than guessed at.
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise InputError("file starts with a UTF-16 mark but is not UTF-16 text; save it as UTF-8 CSV",
                             path) from None
    if b"\x00" in raw:
        raise InputError("file holds NUL bytes (UTF-16 without a byte-order mark, or not a text file); "
                         "save it as UTF-8 CSV", path)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError as err:
        raise InputError(f"byte {raw[err.start]:#04x} at offset {err.start} is neither UTF-8 nor Windows-1252 "
                         "text; save the file as UTF-8 CSV", path) from None


def _separator(text: str) -> str:
    """``;`` for files exported with semicolons (Excel in decimal-comma locales), else ``,``."""
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    return ";" if header.count(";") > header.count(",") else ","


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
    text = decode_text(raw, name or path)
    if not text.strip():
        raise InputError(f"{kind} file is empty; export it again with a header row and data", name or path)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True,
                            sep=_separator(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
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


#: "11,650" or "1,234,567.5": commas that group thousands.
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
#: "51,5074": a comma that stands for the decimal point.
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")


def to_number(values: pd.Series, decimal_comma: bool = False) -> pd.Series:
    """Parse strings to floats; blanks and unparseable values become NaN.

    Commas are read as thousands separators only where they group digits in threes
    (``"11,650"``); any other comma makes the value unparseable, never a silently different
    number (``"1,5"`` is not 15). With ``decimal_comma`` a single comma between digits is the
    decimal point (``"51,5074"`` is 51.5074), as in longitudes and latitudes written in
    decimal-comma locales, where a thousands reading could not be right.
    """
    number = pd.to_numeric(values, errors="coerce").astype("float64")
    missing = number.isna()
    if missing.any():  # the slow path only for values with spaces or separators
        cleaned = values[missing].astype(str).str.strip()
        if decimal_comma:
            comma = cleaned.str.fullmatch(_DECIMAL_COMMA.pattern)
            cleaned = cleaned.where(~comma, cleaned.str.replace(",", ".", regex=False))
        grouped = cleaned.str.fullmatch(_THOUSANDS.pattern)
        cleaned = cleaned.where(~grouped, cleaned.str.replace(",", "", regex=False))
        number[missing] = pd.to_numeric(cleaned, errors="coerce")
    return number


def number_problems(raw: pd.DataFrame | pd.Series, what: str, integer: bool = False) -> tuple[pd.Series, pd.Series]:
    """Parse a count-like column (or several, e.g. one per month) and say what is wrong per row.

    Parameters
    ----------
    raw
        Cells as read (strings).
    what
        The quantity, for the reasons (``"count"``, ``"population"``).
    integer
        Whether values must be whole numbers (counts).

    Returns
    -------
    (values, reason)
        ``values``: the parsed numbers (same shape as ``raw``); ``reason``: per row ``None``
        when every cell is a finite, non-negative (whole) number, else the first problem of
        ``no {what}`` (blank), ``unparseable {what}``, ``non-finite {what}`` (inf, NaN),
        ``negative {what}``, ``non-integer {what}``.
    """
    frame = raw.to_frame() if isinstance(raw, pd.Series) else raw
    values = frame.apply(to_number).astype("float64")  # float even with no rows
    text = frame.apply(lambda c: c.astype(str).str.strip()).astype(str)
    blank = text.eq("").astype(bool)
    nonfinite_text = text.apply(lambda c: c.str.lower().str.lstrip("+-").isin(["inf", "infinity", "nan"])
                                ).astype(bool)
    checks = [
        (f"no {what}", blank),
        (f"non-finite {what}", nonfinite_text | np.isinf(values)),
        (f"unparseable {what}", values.isna() & ~blank),
        (f"negative {what}", values < 0),
    ]
    if integer:
        checks.append((f"non-integer {what}", np.isfinite(values) & (values % 1 != 0)))
    reason = pd.Series(None, index=frame.index, dtype=object)
    for label, bad in checks:
        row_bad = bad.any(axis=1) & reason.isna()
        reason[row_bad] = label
    reason = reason.astype(object).where(reason.notna(), None)
    return (values.iloc[:, 0] if isinstance(raw, pd.Series) else values), reason


def reject_bad_numbers(layer: LayerResult, raw: pd.DataFrame | pd.Series, what: str,
                       integer: bool = False) -> pd.DataFrame | pd.Series:
    """Reject the rows of ``layer.table`` whose ``raw`` numbers are not usable
    (:func:`number_problems`); return the parsed values of the rows kept."""
    values, reason = number_problems(raw, what, integer)
    bad = reason.notna()
    layer.reject(layer.table.loc[bad[bad].index], reason[bad])
    return values.loc[layer.table.index]


def drop_duplicate_rows(layer: LayerResult, value_columns: Sequence[str], path: Path | str) -> None:
    """De-duplicate a ward-level table so that no row is counted twice.

    Rows that agree in every column but ``value_columns`` describe the same thing (a ward,
    category and month). When their values agree too they are copies: all but the first are
    excluded as ``duplicate row`` with a warning. When their values differ the file says two
    things about one cell and is refused.

    Raises
    ------
    InputError
        Naming the file, both rows and what to do.
    """
    table = layer.table
    if table.empty:
        return
    keys = [c for c in _data_columns(table) if c not in set(value_columns)]
    normalised = table[keys + list(value_columns)].apply(lambda c: c.astype(str).str.strip())
    same_key = normalised.duplicated(subset=keys, keep=False)
    if not same_key.any():
        return
    copies = normalised.duplicated(keep="first")
    conflicting = same_key & ~normalised.duplicated(keep=False)
    if conflicting.any():
        first = normalised[conflicting].iloc[0]
        group = table.loc[(normalised[keys] == first[keys]).all(axis=1), "source_row"].tolist()
        raise InputError(f"rows {group[0]} and {group[1]} describe the same {', '.join(first[keys].head(4))} with "
                         "different values; keep one of them", path)
    rows = table.loc[copies, "source_row"].tolist()
    layer.exclude(table[copies], "duplicate row")
    layer.warnings.append(f"{path}: {len(rows)} duplicate row(s) (row {rows[0]} repeats an earlier row) counted "
                          "once")


def refuse_overlapping_files(frame: pd.DataFrame, key_columns: Sequence[str], path: Path | str,
                             what: str) -> None:
    """Refuse files that cover the same ``key_columns`` value (e.g. the same force and month):
    reading both would count each record twice."""
    if frame.empty or any(c not in frame for c in key_columns):
        return
    # Distinct (key, file) rows first, found on integer codes: a force-month file has one,
    # however many rows it has.
    combined = np.zeros(len(frame), dtype="int64")
    for column in list(key_columns) + ["source_file"]:
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=False)
        combined = combined * (len(uniques) + 1) + codes
    distinct = frame.iloc[np.flatnonzero(~pd.Series(combined).duplicated().to_numpy())]
    parts = [distinct[c].fillna("").astype(str).str.strip() for c in key_columns]
    keys = parts[0].str.cat(parts[1:], sep=" ") if len(parts) > 1 else parts[0]
    files = pd.DataFrame({"key": keys, "file": distinct["source_file"]}).drop_duplicates()
    shared = files[files["key"].duplicated(keep=False)]
    if len(shared):
        key = shared["key"].iloc[0]
        names = shared.loc[shared["key"] == key, "file"].tolist()
        raise InputError(f"{names[0]} and {names[1]} both hold {what} {key}; give each once (remove the copy)",
                         path)


def content_digest(raw: bytes) -> str:
    """Hex SHA-256 of some bytes (to recognise the same file given twice)."""
    return hashlib.sha256(raw).hexdigest()


def by_unique(values: pd.Series, parse) -> pd.Series:
    """Apply a vectorised string ``parse`` to each distinct value once (months, crime types and
    snapped coordinates repeat a great deal), then spread the results back over the rows."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    parsed = parse(pd.Series(uniques, dtype=object))
    if isinstance(parsed, pd.DataFrame):
        return parsed.iloc[codes].set_axis(values.index)
    return pd.Series(parsed.to_numpy()[codes], index=values.index)


def points_from_table(layer: LayerResult, x_column: str, y_column: str, lonlat: bool,
                      judge_swapped: bool = True) -> None:
    """Turn ``layer.table`` into a GeoDataFrame of points in EPSG:27700, rejecting bad rows.

    Rows without coordinates are rejected as ``no coordinates``, rows whose coordinates do
    not parse as ``unparseable coordinates``, and rows outside Great Britain as
    ``coordinates outside Great Britain``. When most rows of a lon/lat file have longitude
    and latitude the wrong way round the whole file is refused with a message that says so.

    Snapped coordinates repeat a great deal (a national year of police.uk has a few hundred
    thousand street points for millions of rows), so each distinct pair of coordinate texts is
    parsed, checked, projected and made a point once, and the rows take their pair's verdict
    and point (rows of one pair share the point object: shapely geometries are immutable).
    Every row gets what checking it on its own would give, and the rejects are listed reason
    by reason in row order, as rejecting reason by reason would list them.

    Parameters
    ----------
    layer
        The layer; its ``table`` is replaced.
    x_column, y_column
        Longitude and latitude columns (``lonlat=True``) or easting and northing.
    lonlat
        Whether coordinates are WGS84 lon/lat (else British National Grid metres).
    judge_swapped
        Whether to refuse a table whose coordinates are mostly swapped. A caller that sees
        only part of a layer (one file on a Dask worker) passes ``False`` and judges the whole
        layer later from :func:`swapped_lonlat` of ``layer.coordinates`` with
        :func:`refuse_swapped`; the swapped rows are rejected either way.
    """
    table = layer.table
    first_file = table["source_file"].iloc[0] if len(table) else ""
    pair, (x_text, y_text) = coordinate_pairs(table[x_column], table[y_column])
    # A comma in a longitude or latitude is a decimal comma (none has thousands); in an easting
    # it groups thousands ("665,415"), and any other comma there makes the value unparseable.
    x_raw, x = _parsed_texts(x_text, lonlat)
    y_raw, y = _parsed_texts(y_text, lonlat)
    rows_of_pair = np.bincount(pair, minlength=len(x))
    verdict = np.full(len(x), _KEEP, dtype=np.int8)
    blank = (x_raw == "") | (y_raw == "")
    verdict[blank] = _NO_COORDINATES
    parsed = ~blank & np.isfinite(x) & np.isfinite(y)  # NaN for text that does not parse
    verdict[~blank & ~parsed] = _UNPARSEABLE
    layer.coordinates = ParsedCoordinates(x[parsed], y[parsed], lonlat, x_column, y_column, str(first_file),
                                          rows=rows_of_pair[parsed])
    with_coordinates = int(rows_of_pair[parsed].sum())
    if lonlat:
        in_gb = (x >= _GB_LON[0]) & (x <= _GB_LON[1]) & (y >= _GB_LAT[0]) & (y <= _GB_LAT[1])
        swapped = parsed & swapped_lonlat(x, y)
        if judge_swapped:
            refuse_swapped(int(rows_of_pair[swapped].sum()), with_coordinates, x_column, y_column, first_file)
        verdict[swapped] = _SWAPPED
        verdict[parsed & ~in_gb & ~swapped] = _OUTSIDE_GB
    else:
        in_grid = (x >= _BNG_X[0]) & (x <= _BNG_X[1]) & (y >= _BNG_Y[0]) & (y <= _BNG_Y[1])
        lonlat_like = ((x >= _GB_LON[0]) & (x <= _GB_LON[1]) & (y >= _GB_LAT[0]) & (y <= _GB_LAT[1]))[parsed]
        if with_coordinates and rows_of_pair[parsed & ~in_grid].sum() > with_coordinates / 2 and lonlat_like.all():
            raise InputError(
                f"'{x_column}'/'{y_column}' hold longitude/latitude, not easting/northing; name them "
                f"longitude/latitude or map them in the study file", first_file, column=x_column)
        verdict[parsed & ~in_grid] = _OUTSIDE_GB
    keep = verdict == _KEEP
    ex, ny = np.full(len(x), np.nan), np.full(len(x), np.nan)
    if lonlat:
        ex[keep], ny[keep] = _TO_BNG.transform(x[keep], y[keep])
    else:
        ex[keep], ny[keep] = x[keep], y[keep]
    point_of_pair = np.full(len(x), None, dtype=object)
    point_of_pair[keep] = shapely.points(ex[keep], ny[keep])
    row_verdict = verdict[pair]
    for code, reason in _COORDINATE_REASONS:
        if (verdict == code).any():
            layer.list_rejected(table.iloc[np.flatnonzero(row_verdict == code)], reason)
    kept = np.flatnonzero(row_verdict == _KEEP)
    layer.table = gpd.GeoDataFrame(table.iloc[kept], geometry=point_of_pair[pair[kept]], crs=ANALYSIS_CRS)


#: What the coordinate checks make of a distinct pair of coordinate texts: kept, or the reason
#: its rows are rejected (listed in this order, as the checks run).
_KEEP, _NO_COORDINATES, _UNPARSEABLE, _SWAPPED, _OUTSIDE_GB = range(5)
_COORDINATE_REASONS = ((_NO_COORDINATES, "no coordinates"), (_UNPARSEABLE, "unparseable coordinates"),
                       (_SWAPPED, "longitude and latitude swapped"),
                       (_OUTSIDE_GB, "coordinates outside Great Britain"))


def coordinate_pairs(x: pd.Series, y: pd.Series) -> tuple[np.ndarray, tuple[pd.Series, pd.Series]]:
    """The distinct pairs of two columns' texts: the pair of each row, and each pair's texts.

    The texts are the cells as ``astype(str)`` gives them, worked out once per distinct cell
    (the columns may be categorical, Arrow or object text). A missing cell (``NaN``,
    ``None``, ``pd.NA``) has the text ``"nan"``: like every text ``astype(str)`` makes of a
    missing value it is neither blank nor a number.

    Returns
    -------
    (pair, (x_texts, y_texts))
        ``pair``: ``intp`` position of each row's pair, in order of first appearance;
        ``x_texts``, ``y_texts``: object Series with the texts of each pair.
    """
    x_code, x_texts = _cell_texts(x)
    y_code, y_texts = _cell_texts(y)
    combined = x_code.astype(np.int64) * (len(y_texts) + 1) + y_code
    pair, distinct = pd.factorize(combined)
    x_of_pair, y_of_pair = np.divmod(distinct, len(y_texts) + 1)
    return pair.astype(np.intp, copy=False), (x_texts.iloc[x_of_pair].reset_index(drop=True),
                                              y_texts.iloc[y_of_pair].reset_index(drop=True))


def _cell_texts(column: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """The code of each cell (position of its text) and the texts (object) of a column."""
    codes, uniques = pd.factorize(column)  # missing cells: -1
    if column.dtype == object and pd.api.types.infer_dtype(uniques, skipna=True) not in ("string", "empty"):
        # Values of other types (numbers): 1, 1.0 and True hash alike but are different texts.
        codes, uniques = pd.factorize(column.astype(str).astype(object).where(column.notna(), "nan"))
    texts = pd.Series(uniques, dtype=object) if column.dtype == object else pd.Series(uniques).astype(str)
    texts = pd.concat([texts.astype(object), pd.Series(["nan"], dtype=object)], ignore_index=True)
    return np.where(codes < 0, len(texts) - 1, codes), texts


def _parsed_texts(texts: pd.Series, lonlat: bool) -> tuple[np.ndarray, np.ndarray]:
    """The stripped texts (object) and their numbers (float, NaN where a text does not parse) of
    coordinate texts, each distinct stripped text parsed once (:func:`to_number`)."""
    stripped = by_unique(texts.astype(object), lambda u: u.astype(str).str.strip().astype(object))
    numbers = by_unique(stripped, lambda u: to_number(u, decimal_comma=lonlat))
    return stripped.to_numpy(dtype=object), numbers.to_numpy(dtype="float64")


def swapped_lonlat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which parsed lon/lat pairs have a latitude of Great Britain as longitude and a longitude
    of Great Britain as latitude (the columns the wrong way round)."""
    return (y >= _GB_LON[0]) & (y <= _GB_LON[1]) & (x >= _GB_LAT[0]) & (x <= _GB_LAT[1])


def refuse_swapped(swapped: int, rows: int, x_column: str, y_column: str, file: str) -> None:
    """Refuse a lon/lat layer most of whose ``rows`` with coordinates are ``swapped``.

    Parameters
    ----------
    swapped, rows
        Rows with swapped coordinates (:func:`swapped_lonlat`) and rows with parsed coordinates,
        over the whole layer (all its files).
    x_column, y_column
        The longitude and latitude columns as the files name them.
    file
        The layer's first file with rows, named by the message.

    Raises
    ------
    InputError
        When more than half of the rows are swapped.
    """
    if rows and swapped > rows / 2:
        raise InputError(
            f"longitude and latitude look swapped ({swapped} of {rows} rows have a "
            f"latitude in '{x_column}' and a longitude in '{y_column}'); swap the columns or map "
            f"them in the study file", file, column=x_column)


@dataclass
class ParsedCoordinates:
    """The coordinates of a CSV point layer as parsed, before any is judged outside.

    Attributes
    ----------
    x, y
        Finite parsed values of the two columns (one per distinct pair of texts, or per row,
        that had both).
    lonlat
        Whether the columns were read as longitude/latitude (else easting/northing).
    x_column, y_column
        The column names, for messages.
    file
        The first file of the layer, for messages.
    rows
        The rows of each pair (``None``: one row each).
    """

    x: np.ndarray
    y: np.ndarray
    lonlat: bool
    x_column: str
    y_column: str
    file: str
    rows: np.ndarray | None = None

    @property
    def weights(self) -> np.ndarray:
        """Rows of each pair (``int64``)."""
        return np.ones(len(self.x), dtype=np.int64) if self.rows is None else np.asarray(self.rows, dtype=np.int64)

    @property
    def row_count(self) -> int:
        """Rows with parsed coordinates."""
        return len(self.x) if self.rows is None else int(np.sum(self.rows))

    def swapped_rows(self) -> int:
        """Rows whose coordinates look swapped (:func:`swapped_lonlat`)."""
        return int(self.weights[swapped_lonlat(self.x, self.y)].sum())


#: How far (metres) beyond the study wards' bounding box a point still counts as "near" the
#: study area when judging which reading of a layer's coordinates is right.
PLACEMENT_MARGIN_M = 2_000.0
#: Share of a layer's rows that, rejected for problems in the data (anything but lying
#: outside the study wards), makes the whole layer an error: the cause is then the file or
#: its column mapping, not a few bad rows.
MOSTLY_REJECTED_SHARE = 0.5


def _near(ex: np.ndarray, ny: np.ndarray, bounds: Sequence[float], weights: np.ndarray | None = None) -> int:
    minx, miny, maxx, maxy = bounds
    m = PLACEMENT_MARGIN_M
    with np.errstate(invalid="ignore"):
        near = (ex >= minx - m) & (ex <= maxx + m) & (ny >= miny - m) & (ny <= maxy + m)
    return int(np.count_nonzero(near)) if weights is None else int(np.asarray(weights, dtype=np.int64)[near].sum())


def _lonlat_to_grid(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    plausible = (lon >= -180) & (lon <= 180) & (lat >= -90) & (lat <= 90)
    ex, ny = _TO_BNG.transform(np.where(plausible, lon, np.nan), np.where(plausible, lat, np.nan))
    return np.asarray(ex, dtype=float), np.asarray(ny, dtype=float)


def check_placement(layer: LayerResult, study_bounds: Sequence[float]) -> None:
    """Refuse a point layer whose coordinates, as read, cannot be right for the study area.

    Each of four readings of the two coordinate columns is tried: as declared, the columns
    swapped, and the other coordinate system (lon/lat read as easting/northing and the
    reverse) each way round. When the declared reading puts fewer than half of the rows
    within :data:`PLACEMENT_MARGIN_M` of the study wards and another reading puts more
    than half there *and* twice as many as the declared one, the layer is refused naming
    that cause. When no row at all lies near the study wards under any reading, the layer
    is refused as belonging to another area (or another CRS). Otherwise points outside the
    wards are listed row by row: police.uk files cover a whole force, most of whose points
    are outside any one borough.

    Parameters
    ----------
    layer
        A layer read by :func:`points_from_table` (others are left alone).
    study_bounds
        ``(minx, miny, maxx, maxy)`` of the study wards in EPSG:27700.

    Raises
    ------
    InputError
        Naming the file, the columns and the likely cause.
    """
    parsed = layer.coordinates
    if parsed is None or not len(parsed.x):
        return
    judge_placement(placement_counts(parsed.x, parsed.y, study_bounds, parsed.rows), parsed.row_count,
                    parsed.lonlat, parsed.x_column, parsed.y_column, parsed.file)


def placement_counts(x: np.ndarray, y: np.ndarray, study_bounds: Sequence[float],
                     rows: np.ndarray | None = None) -> dict[tuple[str, bool], int]:
    """How many rows of parsed coordinates lie near the study wards under each of the four
    readings of :func:`check_placement` (``("lonlat" | "grid", swapped)``, in this order).
    ``x``, ``y`` are one per row, or one per distinct pair with ``rows`` the rows of each.
    The counts of parts of a layer (one file each) add up to the layer's."""
    readings = {
        ("lonlat", False): _lonlat_to_grid(x, y),
        ("lonlat", True): _lonlat_to_grid(y, x),
        ("grid", False): (x, y),
        ("grid", True): (y, x),
    }
    return {key: _near(ex, ny, study_bounds, rows) for key, (ex, ny) in readings.items()}


def judge_placement(near: dict[tuple[str, bool], int], n: int, lonlat: bool, x_column: str, y_column: str,
                    file: str) -> None:
    """The verdict of :func:`check_placement` from the counts of :func:`placement_counts`.

    Parameters
    ----------
    near, n
        Rows near the study wards by reading, and rows with parsed coordinates (the layer's).
    lonlat, x_column, y_column
        How the columns were read and their names.
    file
        The layer's first file, for the message.

    Raises
    ------
    InputError
        As :func:`check_placement`.
    """
    if not n:
        return
    declared = ("lonlat" if lonlat else "grid", False)
    best = max(near, key=lambda k: (near[k], k == declared))
    columns = f"'{x_column}'/'{y_column}'"
    if best != declared and near[declared] < n / 2 and near[best] > n / 2 and near[best] > 2 * near[declared]:
        evidence = f"{near[best]} of {n} rows fall in the study area that way, {near[declared]} as read"
        if best[0] == declared[0]:
            what = "longitude and latitude look swapped" if lonlat else "easting and northing look swapped"
            fix = "swap the columns or map them in the study file"
        elif lonlat:
            what = f"{columns} hold easting/northing (British National Grid metres), not longitude/latitude"
            fix = "name them easting/northing or map them in the study file"
        else:
            what = f"{columns} hold longitude/latitude, not easting/northing"
            fix = "name them longitude/latitude or map them in the study file"
        if best[1] and best[0] != declared[0]:
            what += ", the other way round"
        raise InputError(f"{what} ({evidence}); {fix}", file, column=x_column)
    if near[best] == 0:
        system = "longitude/latitude" if lonlat else "easting/northing (EPSG:27700)"
        raise InputError(
            f"none of the {n} rows with coordinates lies within {PLACEMENT_MARGIN_M / 1000:g} km of the study "
            f"wards, read as {system} or any other way; is the file for another area, are the boundaries "
            f"another borough's, or are {columns} in another CRS?", file, column=x_column)


#: Reasons of rows that are not a problem of the file (a force-wide file has many).
#: Reasons a row lies beyond the study rather than being wrong: points outside the study wards
#: (a police.uk file covers a whole force), small areas a borough's lookup does not know (a
#: London-wide population file). They never make a layer "mostly rejected".
NOT_IN_LOOKUP = "small area not in the lookup"
_AREA_REASONS = frozenset({"outside the study area", NOT_IN_LOOKUP})


def check_mostly_rejected(layer: LayerResult) -> None:
    """Refuse a layer of which most rows are rejected for problems in the data.

    More than :data:`MOSTLY_REJECTED_SHARE` of the rows a layer did not exclude on purpose,
    rejected for reasons other than lying outside the study wards, means the file or its
    column mapping is wrong (decimal commas, text in a count column, a mislabelled
    coordinate column): analysing the remainder would be silently wrong. So is a ward-level
    table none of whose rows names a study ward (another area, or the wrong column).

    Raises
    ------
    InputError
        Naming the file, the commonest reason, its first row and what to check.
    """
    elsewhere = layer.excluded.get("ward not in the study area", 0)
    if elsewhere and layer.rows_used == 0 and not len(layer.rejected):
        raise InputError(f"none of the {layer.rows_read} rows names a ward of the study ({elsewhere} name other "
                         "wards); is the file for another area, or is the ward code column mapped wrongly?",
                         layer.paths[0] if layer.paths else None)
    rejected = layer.rejected
    if not len(rejected):
        return
    considered = layer.rows_read - sum(layer.excluded.values())
    problems = rejected[~rejected["reason"].isin(_AREA_REASONS)]
    if len(problems) < 2 or len(problems) <= MOSTLY_REJECTED_SHARE * considered:
        return
    reason = problems["reason"].value_counts().index[0]
    first = problems[problems["reason"] == reason].iloc[0]
    if "coordinates" in reason or "swapped" in reason or "Great Britain" in reason:
        check = "the coordinate columns, their mapping in the study file and the CRS"
    else:
        check = "that column (decimal commas, text or the wrong column mapped?) and export the file again"
    raise InputError(f"{len(problems)} of {considered} {layer.kind} rows rejected (commonest: {reason}, first at "
                     f"row {int(first['row'])}); check {check}", first["file"])


@dataclass
class LoadContext:
    """What loaders need to know about the study besides their own file.

    Attributes
    ----------
    ward_codes
        The study's ward codes (ward-level tables are filtered to these).
    ward_names
        Normalised ward name -> ward code, for sources that lack codes.
    months
        The study period's months (``YYYY-MM``), or ``None`` for every month in the data.
    ward_geometry
        The study's wards (``ward_code`` and polygons, EPSG:27700), for sources given by
        small-area polygons.
    boundary_vintage
        The boundaries' ward vintage where their columns say it (``WD22CD``: ``"2022"``).
    period
        The study's ``[study] period`` (first and last month) as given, or ``None``;
        ``months`` adds the period before it. Annual sources check it is whole years.
    """

    ward_codes: frozenset[str]
    ward_names: dict[str, str]
    months: list[str] | None = None
    ward_geometry: gpd.GeoDataFrame | None = None
    boundary_vintage: str | None = None
    period: tuple[str, str] | None = None


def normalise_name(name: str) -> str:
    """Fold a ward name for matching: case, '&'/'and', 'St.'/'St', punctuation and spacing."""
    text = str(name).lower().replace("&", " and ").replace("saint ", "st ")
    text = "".join(ch if ch.isalnum() else " " for ch in text)
    return " ".join(text.split())


def study_ward_codes(table: pd.DataFrame, code_column: str | None, name_column: str | None,
                     context: LoadContext) -> pd.Series:
    """The study ward code of each row: by code, else (where the code is blank or there is no
    code column) by normalised name; NaN for rows that are not a study ward.

    A code that names another ward is a different ward, not a cue to try the name.
    """
    codes = pd.Series(pd.NA, index=table.index, dtype="object")
    no_code = pd.Series(True, index=table.index)
    if code_column:
        raw = table[code_column].astype(str).str.strip()
        codes = raw.where(raw.isin(context.ward_codes))
        no_code = raw == ""
    if name_column:
        by_name = table[name_column].map(lambda n: context.ward_names.get(normalise_name(n)))
        codes = codes.where(~(codes.isna() & no_code), by_name)
    return codes


def record_coverage(layer: LayerResult, table: pd.DataFrame, code_column: str | None, name_column: str | None,
                    context: LoadContext, borough_column: str | None = None) -> None:
    """Record which study wards a ward-level source has rows for (any row, whatever its
    category: a ward the file lists has data, a ward it never lists has none), the names it
    gives them and their boroughs.

    Parameters
    ----------
    layer
        The layer; ``wards``, ``ward_names`` and ``boroughs`` are set.
    table
        Its rows before any category or ward filter.
    code_column, name_column, borough_column
        The source's ward code, ward name and borough columns (any may be ``None``).
    context
        The study's wards.
    """
    codes = study_ward_codes(table, code_column, name_column, context)
    layer.wards = frozenset(codes.dropna())
    record_names(layer, table, codes, name_column, borough_column)


def record_names(layer: LayerResult, table: pd.DataFrame, codes: pd.Series, name_column: str | None,
                 borough_column: str | None = None) -> None:
    """Record the ward names and boroughs a source gives the study's wards.

    Parameters
    ----------
    layer
        The layer; ``ward_names`` and ``boroughs`` are set.
    table
        Its rows.
    codes
        The study ward code of each row (NaN for other wards), as from :func:`study_ward_codes`.
    name_column, borough_column
        The source's ward name and borough columns (either may be ``None``).
    """
    found = codes.notna()
    if name_column:
        names = table.loc[found, name_column].astype(str).str.strip()
        layer.ward_names = dict(zip(codes[found], names))
    if borough_column:
        boroughs = table.loc[found, borough_column].astype(str).str.strip()
        layer.boroughs = dict(zip(codes[found], boroughs))


def check_ward_vintage(table: pd.DataFrame, code_column: str | None, name_column: str | None,
                       context: LoadContext, kind: str, path: Path | str, source_vintage: str | None = None) -> None:
    """Refuse a ward-level source whose ward codes are of another vintage than the boundaries.

    The codes match none of the study's wards, or fewer than half of them while the file holds
    the names of unmatched study wards under other codes (wards renamed or recoded by a
    boundary review): either way the counts would land in no ward and read as zero.

    Parameters
    ----------
    table
        The source's rows (before ward filtering).
    code_column, name_column
        Its ward code and name columns (either may be ``None``).
    context
        The study's wards and the boundaries' vintage.
    kind, path
        For the message.
    source_vintage
        What is known of the source's vintage, in words (e.g. the months it covers).

    Raises
    ------
    InputError
        With the vintages seen and what to do.
    """
    if not code_column or not context.ward_codes:
        return
    raw = table[code_column].astype(str).str.strip()
    raw = raw[raw != ""]
    if raw.empty:
        return
    matched = context.ward_codes & set(raw)
    recoded = 0
    if name_column:
        names_elsewhere = {normalise_name(n) for n, c in zip(table[name_column], table[code_column])
                           if str(c).strip() not in context.ward_codes}
        recoded = sum(1 for name, code in context.ward_names.items()
                      if code not in matched and name in names_elsewhere)
    if matched and (len(matched) >= len(context.ward_codes) / 2 or recoded == 0):
        return
    others = sorted(set(raw) - context.ward_codes)
    theirs = f"it has {len(others):,} other ward codes (e.g. {', '.join(others[:2])})"
    if source_vintage:
        theirs += f" and {source_vintage}"
    ours = f"the boundaries are {context.boundary_vintage} wards" if context.boundary_vintage else \
        "the boundaries are of another vintage"
    renamed = f"; {recoded} study ward names appear in it under other codes" if recoded else ""
    raise InputError(
        f"the {kind} file's ward codes match {len(matched)} of the study's {len(context.ward_codes)} wards"
        f"{renamed}: {theirs}; {ours} (e.g. {sorted(context.ward_codes)[0]}). Use boundaries of the file's "
        "vintage, a file published on the boundaries' wards, or give the source by LSOA with a lookup "
        "(README, \"London and other vintages\")", path, column=code_column)


def is_vector_file(path: Path) -> bool:
    """Whether a path names a GeoJSON, GeoPackage or Shapefile (else it is read as CSV)."""
    return path.suffix.lower() in (".geojson", ".json", ".gpkg", ".shp")


def apply_where(layer: LayerResult, where: Mapping[str, object] | None, path: Path | str) -> None:
    """Keep only rows whose columns equal the values given in the study file's ``where`` table.

    ``where = {Status_Code = "A"}`` keeps active pharmacies; a list allows any of its values.
    Other rows are excluded (counted, not listed).
    """
    for column, wanted in (where or {}).items():
        if column not in layer.table.columns:
            raise InputError(f"column '{column}' named in 'where' is not in the file", path, column=column)
        values = {str(v) for v in (wanted if isinstance(wanted, list) else [wanted])}
        keep = layer.table[column].astype(str).str.strip().isin(values)
        layer.exclude(layer.table[~keep], f"not selected by where {column} = {sorted(values)}")


def read_vector(path: Path, kind: str, layer_name: str | None = None) -> gpd.GeoDataFrame:
    """Read a GeoJSON/GeoPackage/Shapefile in EPSG:27700 with ``source_file``/``source_row``.

    ``source_row`` is the 1-based feature number. A file without a CRS is taken as lon/lat
    or British National Grid from its coordinate ranges, with a warning left to the caller.
    """
    require_file(path, kind)
    try:
        frame = gpd.read_file(path, layer=layer_name) if layer_name else gpd.read_file(path)
    except Exception as err:  # pyogrio raises several types; all mean "cannot read this file"
        raise InputError(f"cannot read as a GeoJSON, GeoPackage or Shapefile ({str(err).splitlines()[0]})",
                         path) from None
    if frame.empty:
        raise InputError(f"{kind} file has no features", path)
    if frame.crs is None:
        frame = frame.set_crs(guess_crs(frame.total_bounds, path))
    elif frame.crs.to_epsg() == 4326 and not _fits_lonlat(frame.total_bounds):
        # GeoJSON readers assume lon/lat; a GeoJSON saved in metres without a "crs" member
        # then holds coordinates no longitude can have.
        frame = frame.set_crs(guess_crs(frame.total_bounds, path), allow_override=True)
    frame = frame.to_crs(ANALYSIS_CRS)
    if not np.isfinite(frame.total_bounds).all():
        raise InputError("coordinates do not convert to British National Grid (wrong CRS in the file?); "
                         "save it with its true CRS", path)
    frame["source_file"] = str(path)
    frame["source_row"] = np.arange(1, len(frame) + 1, dtype="int64")
    return frame


def _fits_lonlat(bounds: Sequence[float]) -> bool:
    minx, miny, maxx, maxy = bounds
    return -180 <= minx and maxx <= 180 and -90 <= miny and maxy <= 90


def guess_crs(bounds: Sequence[float], path: Path | str) -> str:
    """The CRS of coordinates with these bounds: lon/lat or British National Grid."""
    minx, miny, maxx, maxy = bounds
    if _GB_LON[0] <= minx and maxx <= _GB_LON[1] and _GB_LAT[0] <= miny and maxy <= _GB_LAT[1]:
        return "EPSG:4326"
    if _BNG_X[0] <= minx and maxx <= _BNG_X[1] and _BNG_Y[0] <= miny and maxy <= _BNG_Y[1]:
        return ANALYSIS_CRS
    raise InputError("file has no CRS and its coordinates are neither lon/lat nor British National Grid; "
                     "save it with a CRS", path)


def coordinate_columns(frame: pd.DataFrame, path: Path | str, kind: str,
                       mapping: Mapping[str, str] | None) -> tuple[str, str, bool]:
    """Find lon/lat or easting/northing columns; return ``(x_column, y_column, is_lonlat)``."""
    mapping = dict(mapping or {})
    lonlat = find_columns(frame, path, kind, {"longitude": ["longitude", "lon", "lng", "long", "x_lon"],
                                              "latitude": ["latitude", "lat", "y_lat"]},
                          mapping, optional=("longitude", "latitude"))
    if lonlat["longitude"] and lonlat["latitude"]:
        return lonlat["longitude"], lonlat["latitude"], True
    grid = find_columns(frame, path, kind, {"easting": ["easting", "eastings", "x", "cp_eastings", "os_x"],
                                            "northing": ["northing", "northings", "y", "cp_northings", "os_y"]},
                        mapping, optional=("easting", "northing"))
    if grid["easting"] and grid["northing"]:
        return grid["easting"], grid["northing"], False
    raise InputError(
        "no coordinate columns: expected longitude/latitude or easting/northing; columns are: "
        f"{', '.join(_data_columns(frame))}; map them in the study file under [layers.{kind}.columns]", path)


_MONTH = re.compile(r"^(\d{4})-?(0[1-9]|1[0-2])(-\d{2})?$")


def parse_months(layer: LayerResult, column: str, months: list[str] | None) -> pd.Series:
    """The ``YYYY-MM`` month of each row of ``layer.table``.

    Accepts ``YYYY-MM``, ``YYYYMM`` and ``YYYY-MM-DD``. Rows that do not parse are rejected as
    ``unparseable month``; when most rows do not parse the column is wrong and the file is
    refused. Rows outside ``months`` (the study period, if given) are excluded.
    """
    raw = layer.table[column].astype(str)
    month = by_unique(raw, month_of_values)
    ok = month.notna()
    if len(raw) and ok.sum() < len(raw) / 2:
        first = layer.table.loc[~ok].iloc[0]
        raise month_column_error(raw[~ok].iloc[0], first["source_file"], int(first["source_row"]), column)
    layer.reject(layer.table[~ok], "unparseable month")
    month = month[ok]
    if months is not None:
        layer.exclude(layer.table[~month.isin(months)], "month outside the study period")
    return month.reindex(layer.table.index)


def month_of_values(values: pd.Series) -> pd.Series:
    """``YYYY-MM`` for each month text (``YYYY-MM``, ``YYYYMM``, ``YYYY-MM-DD``), NaN where it does
    not parse. Meant for distinct values (see :func:`by_unique`)."""
    parts = values.astype(object).astype(str).str.strip().str.extract(_MONTH)
    return (parts[0] + "-" + parts[1]).astype(object)


def month_column_error(value: str, path: Path | str, row: int, column: str) -> InputError:
    """The error for a month column most of whose rows do not parse (the wrong column, or a
    format we do not read), naming the first bad value and where it is."""
    return InputError(f"month '{str(value).strip()}' is not YYYY-MM; check the month column or its mapping in "
                      "the study file", path, row=row, column=column)


#: Bytes read to decide whether a CSV can take the fast reader (header and encoding check).
_SNIFF_BYTES = 1 << 16


def read_csv_columns(path: Path, kind: str, choose, raw: bytes | None = None,
                     name: str | None = None, use_threads: bool = True) -> pa.Table:
    """Read only some columns of a CSV file, as text, into an Arrow table.

    Plain UTF-8 comma-separated files (the police.uk bulk and API files) go straight through
    pyarrow's multi-threaded CSV reader, which parses only the columns asked for. Anything else
    (another encoding, semicolons, rows with a wrong number of fields, quoted line breaks) is
    read by :func:`read_table`, so that its decoding and its messages apply unchanged; its
    missing trailing fields are read as blanks. Either way row ``i`` of the result is the
    file's data row ``i`` (``source_row = i + 2``, the header being row 1).

    Parameters
    ----------
    path
        The file (for messages and, unless ``raw`` is given, for reading).
    kind
        The layer kind, for messages.
    choose
        ``choose(header)`` gets an empty DataFrame with the file's (stripped) column names and
        returns the columns to read; it may raise :class:`InputError` for missing columns.
    raw
        The file's bytes, for members of a zip (else the file is read from disk).
    name
        Name for messages (defaults to ``str(path)``).
    use_threads
        Whether pyarrow parses with its own threads.

    Returns
    -------
    pyarrow.Table
        One string column per chosen column (blanks are empty strings, never null).
    """
    label = name or str(path)
    if raw is None:
        require_file(path, kind)
        with open(path, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    else:
        head = raw[:_SNIFF_BYTES]
    header = _plain_csv_header(head)
    if header is not None:
        wanted = list(dict.fromkeys(choose(pd.DataFrame(columns=header))))
        try:
            source = pa.BufferReader(raw) if raw is not None else str(path)
            return pa_csv.read_csv(
                source,
                read_options=pa_csv.ReadOptions(column_names=header, skip_rows=1, use_threads=use_threads),
                convert_options=pa_csv.ConvertOptions(
                    include_columns=wanted, column_types={c: pa.string() for c in wanted},
                    strings_can_be_null=False, quoted_strings_can_be_null=False))
        except pa.ArrowInvalid:
            pass  # a damaged or unusual row: the general reader below decides what it is
    frame = read_table(path, kind, raw=raw, name=label)
    wanted = list(dict.fromkeys(choose(frame.drop(columns=["source_file", "source_row"]).iloc[:0])))
    # pandas pads short rows with NaN; a missing field is a blank one.
    return pa.table({c: pa.array(frame[c].astype(object).where(frame[c].notna(), "").astype(str).tolist(),
                                 type=pa.string()) for c in wanted})


def _plain_csv_header(head: bytes) -> list[str] | None:
    """The stripped column names when a file's first bytes look like plain UTF-8 CSV with
    comma separators, unique names and no leading spaces before quotes, else ``None``."""
    if not head.strip() or b"\x00" in head or head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    line = head.split(b"\n", 1)[0]
    if len(line) == len(head) and len(head) == _SNIFF_BYTES:
        return None  # a header longer than the sniffed bytes: leave it to the general reader
    try:
        text = line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        return None
    if text.count(";") > text.count(",") or ', "' in text:
        return None
    names = [c.strip() for c in next(csv.reader([text]), [])]
    if not names or len(set(names)) != len(names):
        return None
    return names
