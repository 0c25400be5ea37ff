"""police.uk street-level crime CSVs: single files, folders of them, or zips of them.

Only ``Drugs`` and ``Anti-social behaviour`` rows are analysed (police.uk does not split
possession from supply). Crime types may be labels (``Drugs``) as in the bulk CSVs or slugs
(``drugs``, ``anti-social-behaviour``) as in API output.

A national year is about 6 million rows in several hundred files, of which about a quarter
are analysed, so the loader works at the speed of the read: each file is read on its own
(memory follows the files being read, not the year) with pyarrow's CSV reader, and only the
columns it needs. Two files at a time are read, hashed, parsed and accounted for on worker
threads (:func:`read_parts`; the reads, hashing, parsing and most of the accounting release
the GIL), each with a tally of its own, and the tallies are added up in reading order; the
files' digests find copies and are the manifest's checksums. Months, crime types and
coordinates repeat a great deal, so each distinct value is parsed once (Arrow dictionary
encoding) and the verdicts are spread back over the rows as boolean masks; the analysed rows
are taken once at the end. The rows' accounting is the same as reading everything with pandas
and dropping row by row would give, in the same order of reasons: ``where`` selection,
unparseable month, month outside the study period, crime type not analysed, then the
coordinate checks of :func:`~geomisuse.layers.base.points_from_table`.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..config import LayerSpec
from ..errors import InputError
from ..progress import progress
from .base import (REJECT_COLUMNS, LayerResult, LoadContext, content_digest, find_columns, month_column_error,
                   month_of_values, normalise_name, points_from_table, read_csv_columns, refuse_overlapping_files,
                   remember_sha256, require_file, sha256)

#: Normalised crime type -> ward-table measure.
MEASURE_OF_CRIME_TYPE = {"drugs": "drug_offences", "anti social behaviour": "asb"}

COLUMNS = {
    "month": ["Month"],
    "crime_type": ["Crime type", "category", "crime_type"],
    "crime_id": ["Crime ID", "persistent_id", "id"],
    "location": ["Location", "street_name"],
    "lsoa_code": ["LSOA code"],
}

#: Columns that repeat a great deal (snap points, months, files), kept as categoricals.
_CATEGORICAL = ("month", "measure", "crime_type", "location", "source_file", "longitude", "latitude")


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
        ``asb``), ``crime_type``, ``location`` and ``source_file`` (categoricals), ``crime_id``
        (Arrow strings) and ``source_row``; ``months``: every month with a row at all.
    """
    tally = Tally()
    copies = Copies()
    parts, paths = [], []
    # Two files at a time are read, hashed, parsed and accounted for on worker threads (file
    # reads, hashlib, pyarrow's parser and much of the accounting release the GIL), each with a
    # tally of its own; here, in reading order, copies are passed over and the tallies added up.
    for part in progress(read_parts(spec, context), "reading police.uk files"):
        part.remember_digest()
        if copies.is_copy(part.name, part.digest):
            continue
        if part.error is not None:
            raise part.error  # the first file that cannot be read, after its copy check
        tally.add(part.tally)
        parts.append(part.frame)
        paths.append(part.path)
        del part  # the files' bytes and tables are not held
    if not parts:
        raise no_files_error(spec)
    refuse_shared_force_months(tally, spec)
    layer = finish_layer(spec, tally, parts, sorted(set(paths)))
    layer.warnings.extend(copies.warnings)
    layer.covers_borough = tally_force_area(tally, spec)
    return layer


def no_files_error(spec: LayerSpec) -> InputError:
    """The error for a police.uk layer whose paths hold no CSV file."""
    return InputError("no CSV files found; point police_uk at a CSV, a folder of CSVs or a zip", spec.paths[0])


@dataclass
class Copies:
    """The files read so far, by content: the same download given twice (a folder and its zip,
    or a file copied into two folders) is read once, with a warning.

    Attributes
    ----------
    seen
        Content digest -> the name of the first file with that content.
    warnings
        One message per copy passed over, in reading order.
    """

    seen: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def is_copy(self, name: str, digest: str) -> bool:
        """Whether the file ``name`` with content ``digest`` repeats an earlier file (warned);
        else it is remembered as read."""
        if digest in self.seen:
            self.warnings.append(f"{name} is a copy of {self.seen[digest]}, read once")
            return True
        self.seen[digest] = name
        return False


def refuse_shared_force_months(tally: Tally, spec: LayerSpec) -> None:
    """Refuse two files holding the same force and month (``Reported by``, ``Month``): reading
    both would count each crime twice (a copy with other bytes, or an edited download)."""
    if tally.force_months:
        refuse_overlapping_files(pd.concat(tally.force_months, ignore_index=True), ("Reported by", "Month"),
                                 spec.paths[0], "the force and month")


def tally_force_area(tally: Tally, spec: LayerSpec) -> Callable[[str], bool] | None:
    """The boroughs the layer covers (:func:`force_area`), from ``covers`` or from the forces
    the files name in ``Falls within``."""
    forces = pd.DataFrame({"Falls within": sorted(tally.forces)}) if tally.forces else pd.DataFrame()
    return force_area(forces, spec.options.get("covers"))


@dataclass
class Tally:
    """What the files read so far add up to: rows, exclusions, rejected months, months seen.

    The checks that look at a whole layer (is the month column the wrong one?) run on these
    totals after the last file, exactly as if the files had been read as one table.
    """

    rows_read: int = 0
    excluded: Counter = field(default_factory=Counter)
    rejected: list[pd.DataFrame] = field(default_factory=list)
    months: set[str] = field(default_factory=set)
    dated_rows: int = 0
    undated_rows: int = 0
    first_undated: tuple[str, str, int] | None = None  # value, file, row
    month_column: str = "Month"
    #: The coordinate columns as the files name them (messages quote them).
    coordinate_columns: tuple[str, str] = ("Longitude", "Latitude")
    #: Each file's distinct (Reported by, Month, source_file): two files of one force-month are refused.
    force_months: list[pd.DataFrame] = field(default_factory=list)
    #: Forces named in ``Falls within`` (which boroughs the files cover).
    forces: set[str] = field(default_factory=set)

    def add(self, other: Tally) -> None:
        """Add the tally of the next file(s) in reading order, as if this tally had read them
        (the Dask engine tallies each file on a worker and adds them up in reading order)."""
        self.rows_read += other.rows_read
        self.excluded.update(other.excluded)
        self.rejected.extend(other.rejected)
        self.months |= other.months
        self.dated_rows += other.dated_rows
        self.undated_rows += other.undated_rows
        self.first_undated = self.first_undated or other.first_undated
        # Each file read sets these (the last file's names are the ones messages quote).
        self.month_column = other.month_column
        self.coordinate_columns = other.coordinate_columns
        self.force_months.extend(other.force_months)
        self.forces |= other.forces


def read_police_file(path: Path, spec: LayerSpec, context: LoadContext, tally: Tally,
                     raw: bytes | None = None, name: str | None = None, text_columns: bool = True,
                     use_threads: bool = True) -> pd.DataFrame:
    """Read one police.uk CSV: account for its rows in ``tally``, return its analysed rows.

    Parameters
    ----------
    path
        The file (or the zip holding it, with ``raw`` and ``name``).
    spec, context
        The layer's settings and the study period.
    tally
        Updated with the file's rows read, excluded and rejected.
    raw, name
        The bytes and the ``zip:member`` name of a zip member.
    text_columns
        Whether to return ``crime_id`` and ``location`` (a caller that only counts points
        leaves them out; they are still read, so that a file reads, or falls back to the
        general reader, exactly as with them).
    use_threads
        Whether pyarrow parses the file with threads of its own (a caller reading files on
        threads of its own passes ``False``).

    Returns
    -------
    pandas.DataFrame
        The analysed rows (Drugs and ASB in the period with a parseable month): ``month``,
        ``measure``, ``crime_type``, ``crime_id``, ``location``, ``longitude``, ``latitude``
        (raw text), ``source_file``, ``source_row``; categoricals but for ``crime_id`` (Arrow
        text) and ``source_row``.
    """
    label = name or str(path)
    roles: dict[str, str | None] = {}

    def choose(header: pd.DataFrame) -> list[str]:
        where = spec.options.get("where") or {}
        for column in where:
            if column not in header.columns:
                raise InputError(f"column '{column}' named in 'where' is not in the file", spec.paths[0],
                                 column=column)
        roles.update(find_columns(header, spec.paths[0], "police_uk", COLUMNS, spec.columns,
                                  optional=("crime_id", "location", "lsoa_code")))
        for role, exact in (("longitude", ("Longitude", "longitude")), ("latitude", ("Latitude", "latitude"))):
            column = spec.columns.get(role, next((c for c in header.columns if c in exact), exact[0]))
            if column not in header.columns:
                raise InputError(f"no {role} column (expected '{role.title()}'); map it in the study file",
                                 spec.paths[0], column=role)
            roles[role] = column
        extra = [c for c in ("Reported by", "Month", "Falls within") if c in header.columns]
        return [c for c in roles.values() if c] + list(where) + extra

    table = read_csv_columns(path, "police_uk", choose, raw=raw, name=label, use_threads=use_threads)
    rows = table.num_rows
    tally.rows_read += rows
    tally.month_column = roles["month"]
    tally.coordinate_columns = (roles["longitude"], roles["latitude"])
    source_row = np.arange(2, rows + 2, dtype="int64")
    remaining = np.ones(rows, dtype=bool)
    if "Reported by" in table.column_names and "Month" in table.column_names:
        pairs = table.select(["Reported by", "Month"]).group_by(["Reported by", "Month"]).aggregate([]).to_pandas()
        tally.force_months.append(pairs.assign(source_file=label))
    if "Falls within" in table.column_names:
        tally.forces.update(f for f in pc.unique(table["Falls within"]).to_pylist() if f.strip())

    for column, wanted in (spec.options.get("where") or {}).items():
        values = {str(v) for v in (wanted if isinstance(wanted, list) else [wanted])}
        codes, distinct = _encoded(table[column])
        selected = distinct.str.strip().isin(values).to_numpy()[codes]
        _exclude(tally, remaining & ~selected, f"not selected by where {column} = {sorted(values)}")
        remaining &= selected

    codes, distinct = _encoded(table[roles["month"]])
    month_of_distinct = month_of_values(distinct)
    dated = month_of_distinct.notna().to_numpy()[codes]
    undated = remaining & ~dated
    tally.dated_rows += int((remaining & dated).sum())
    tally.undated_rows += int(undated.sum())
    if undated.any():
        first = int(np.flatnonzero(undated)[0])
        tally.first_undated = tally.first_undated or (distinct.iloc[codes[first]], label, int(source_row[first]))
        tally.rejected.append(pd.DataFrame({"layer": "police_uk", "file": label, "row": source_row[undated],
                                            "reason": "unparseable month"}))
    remaining &= dated
    seen = np.flatnonzero(np.bincount(codes[remaining], minlength=len(distinct)))
    tally.months.update(month_of_distinct.iloc[seen].tolist())
    if context.months is not None:
        in_period = month_of_distinct.isin(context.months).to_numpy()[codes]
        _exclude(tally, remaining & ~in_period, "month outside the study period")
        remaining &= in_period

    type_codes, type_distinct = _encoded(table[roles["crime_type"]])
    crime_type_of_distinct = type_distinct.str.strip()
    measure_of_distinct = (crime_type_of_distinct.str.lower().str.replace("-", " ", regex=False)
                           .map(MEASURE_OF_CRIME_TYPE))
    analysed = measure_of_distinct.notna().to_numpy()[type_codes]
    other = remaining & ~analysed
    if other.any():
        per_distinct = np.bincount(type_codes[other], minlength=len(type_distinct))
        for label_text, count in pd.Series(per_distinct).groupby(crime_type_of_distinct.to_numpy()).sum().items():
            if count:
                tally.excluded[f"crime type not analysed: {label_text or '(blank)'}"] += int(count)
    remaining &= analysed

    keep = np.flatnonzero(remaining)
    text = ("crime_id", "location") if text_columns else ()
    kept = table.select([roles[r] for r in (*text, "longitude", "latitude") if roles[r]]).take(pa.array(keep))
    # Categoricals made from the distinct values (a file's months, crime types, snap points
    # and street names repeat a great deal); finish_layer unites their categories.
    return pd.DataFrame({
        "month": _categorical(month_of_distinct, codes[keep]),
        "measure": _categorical(measure_of_distinct, type_codes[keep]),
        "crime_type": _categorical(crime_type_of_distinct, type_codes[keep]),
        # pandas' skipinitialspace, as the general reader does.
        **({"crime_id": _text(kept, roles["crime_id"])} if text else {}),
        **({"location": _text_categorical(kept, roles["location"])} if text else {}),
        "longitude": _text_categorical(kept, roles["longitude"]),
        "latitude": _text_categorical(kept, roles["latitude"]),
        "source_file": pd.Categorical.from_codes(np.zeros(len(keep), dtype=np.int8), categories=pd.Index([label])),
        "source_row": source_row[keep],
    })


def finish_layer(spec: LayerSpec, tally: Tally, parts: list[pd.DataFrame], paths: list[Path]) -> LayerResult:
    """Put the files' analysed rows together, run the whole-layer checks and make the points.

    Parameters
    ----------
    spec
        The layer's settings (for messages).
    tally
        The accounting of every file read, in reading order.
    parts
        Each file's analysed rows (:func:`read_police_file`), in reading order.
    paths
        The source files.

    Returns
    -------
    LayerResult
        See :func:`load_police_uk`.
    """
    check_month_column(tally)
    frame = pd.DataFrame({column: _united([part[column] for part in parts]) if column in _CATEGORICAL else
                          _concatenated([part[column] for part in parts]) for column in parts[0].columns})
    layer = LayerResult("police_uk", paths, frame, rows_read=tally.rows_read, excluded=dict(tally.excluded),
                        months=sorted(tally.months))
    if tally.rejected:
        layer.rejected = pd.concat(tally.rejected, ignore_index=True)[REJECT_COLUMNS]
    # The coordinate columns carry the file's own names again: the checks' messages quote them.
    x_column, y_column = tally.coordinate_columns
    layer.table = frame.rename(columns={"longitude": x_column, "latitude": y_column})
    points_from_table(layer, x_column, y_column, lonlat=True)
    layer.table = layer.table.drop(columns=[x_column, y_column]).reset_index(drop=True)
    return layer


def check_month_column(tally: Tally) -> None:
    """Refuse a layer most of whose rows (after ``where``) have no parseable month: the month
    column is the wrong one, or in a format we do not read. Judged over every file read."""
    considered = tally.dated_rows + tally.undated_rows
    if considered and tally.dated_rows < considered / 2:
        value, label, row = tally.first_undated
        raise month_column_error(value, label, row, tally.month_column)


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
    column = "Falls within"
    if column not in table.columns:
        return None
    forces = {normalise_name(f) for f in table[column].astype(str).unique() if f.strip()}
    if not forces or not forces <= set(FORCE_AREAS):
        return None
    return lambda borough: any(FORCE_AREAS[force](borough) for force in forces)


def force_area_wards(ward_codes: np.ndarray, boroughs: Sequence[str | None],
                     covers_borough: Callable[[str], bool]) -> frozenset[str]:
    """The wards of a police force's area: those of the boroughs it covers, and wards whose
    borough is unknown (``None``; nothing says they are another force's).

    Parameters
    ----------
    ward_codes, boroughs
        The study's ward codes and their borough names, in the same order.
    covers_borough
        From :func:`force_area` (normalised borough name -> covered).
    """
    inside = [b is None or covers_borough(normalise_name(b)) for b in boroughs]
    return frozenset(np.asarray(ward_codes)[np.asarray(inside, dtype=bool)])


def _encoded(column: pa.ChunkedArray) -> tuple[np.ndarray, pd.Series]:
    """Dictionary-encode a text column: the code of each row and the distinct values (object)."""
    encoded = column.combine_chunks().dictionary_encode() if column.num_chunks else pa.array([], pa.string()) \
        .dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp, copy=False)
    return codes, pd.Series(encoded.dictionary.to_pylist(), dtype=object)


def _exclude(tally: Tally, rows: np.ndarray, reason: str) -> None:
    count = int(rows.sum())
    if count:
        tally.excluded[reason] += count


def _text(table: pa.Table, column: str | None) -> pd.Series:
    """A kept column as Arrow-backed text without leading spaces ("" when the file lacks it)."""
    return pd.Series(pd.arrays.ArrowStringArray(_trimmed(table, column)), dtype=pd.StringDtype("pyarrow"))


def _trimmed(table: pa.Table, column: str | None) -> pa.Array:
    if column is None:
        return pa.array([""] * table.num_rows, type=pa.string())
    return pc.utf8_ltrim(table[column], characters=" ").combine_chunks()


def _text_categorical(table: pa.Table, column: str | None) -> pd.Categorical:
    """:func:`_text` as a categorical (categories Arrow-backed text, as ``pd.Categorical`` of
    :func:`_text` makes them; in order of appearance until :func:`_united` sorts them)."""
    encoded = _trimmed(table, column).dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    categories = pd.Index(pd.arrays.ArrowStringArray(encoded.dictionary), dtype=pd.StringDtype("pyarrow"))
    return pd.Categorical.from_codes(codes, categories=categories)


def _categorical(values_of_distinct: pd.Series, codes: np.ndarray) -> pd.Categorical:
    """The values ``values_of_distinct[codes]`` as a categorical; missing values stay missing.

    Several distinct texts may have one value (``2024-01`` and ``202401``): their codes are
    merged. The categories are an :class:`~pandas.Index` of the values as pandas infers it
    (``str`` or ``object`` by pandas' string option, as a column of the values would be).
    """
    merged, categories = pd.factorize(values_of_distinct.to_numpy(dtype=object))  # missing: -1
    rows = merged[codes]
    # Only the values of these rows are categories (as pd.Categorical of the rows has them).
    used = np.bincount(rows[rows >= 0], minlength=len(categories)) > 0
    position = np.where(used, np.cumsum(used) - 1, -1)
    rows = np.where(rows >= 0, position[rows], -1)
    return pd.Categorical.from_codes(rows, categories=pd.Index(categories[used]))


def _united(columns: list[pd.Series]) -> pd.Categorical:
    """The files' categorical columns as one, with sorted categories (as ``pd.Categorical`` of
    the whole column would have them)."""
    present = [c for c in columns if len(c)]
    if not present:  # no categories, of the type a column of no values had
        return pd.Categorical([], categories=columns[0].cat.categories[:0])
    if all(c.cat.categories.dtype == pd.StringDtype("pyarrow") for c in present):
        return _united_arrow(present)
    return pd.api.types.union_categoricals([pd.Categorical(c) for c in present], sort_categories=True)


def _united_arrow(columns: list[pd.Series]) -> pd.Categorical:
    """:func:`_united` of categoricals with Arrow text categories (snap points and street names:
    tens of thousands of categories a file), their dictionaries united by pyarrow and sorted
    (``union_categoricals`` looks each file's categories up in pandas' hash table: ten times as
    long)."""
    chunks = []
    for column in columns:
        codes = column.cat.codes.to_numpy()
        values = pa.array(column.cat.categories.array).cast(pa.large_string())
        chunks.append(pa.DictionaryArray.from_arrays(pa.array(codes, type=pa.int32(), mask=codes < 0), values))
    united = pa.chunked_array(chunks).unify_dictionaries()
    dictionary = united.chunks[0].dictionary
    codes = np.concatenate([chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False) for chunk in united.chunks])
    order = pc.array_sort_indices(dictionary).to_numpy()  # text sorts by code point, as pandas sorts it
    rank = np.empty(len(order) + 1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    rank[-1] = -1  # missing values stay missing
    categories = pd.Index(pd.arrays.ArrowStringArray(dictionary.take(pa.array(order)).cast(pa.large_string())),
                          dtype=pd.StringDtype("pyarrow"))
    return pd.Categorical.from_codes(rank[codes], categories=categories)


def _concatenated(columns: list[pd.Series]) -> pd.Series | np.ndarray:
    """The files' other columns (crime IDs, row numbers) as one."""
    return pd.concat(columns, ignore_index=True) if len(columns) > 1 else columns[0]


def csv_files(paths: list[Path]) -> Iterator[tuple[str, Path, str | None]]:
    """Yield ``(name, path, zip member or None)`` for every CSV in the given files, folders and
    zips, in reading order (folders searched recursively, sorted; a zip's members sorted)."""
    for path in paths:
        if path.is_dir():
            members = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".csv", ".zip"))
            yield from csv_files(members)
        elif path.suffix.lower() == ".zip":
            require_file(path, "police_uk")
            try:
                with zipfile.ZipFile(path) as archive:
                    names = sorted(archive.namelist())
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as err:
                raise InputError(f"cannot read the zip ({err}); download it again or unzip it into a folder",
                                 path) from None
            for member in names:
                if member.lower().endswith(".csv") and not member.startswith("__MACOSX"):
                    yield f"{path}:{member}", path, member
        else:
            require_file(path, "police_uk")
            yield str(path), path, None


def read_member(path: Path, member: str | None) -> bytes | None:
    """The bytes of a zip member (``None`` for a plain file, which is read from disk)."""
    if member is None:
        return None
    with zipfile.ZipFile(path) as archive:
        return archive.read(member)


@dataclass
class SourceBytes:
    """One CSV's bytes as read, with their SHA-256.

    Attributes
    ----------
    name, path
        The file's name as recorded (``path`` or ``zip:member``) and its file (the zip for a member).
    raw
        Its bytes.
    digest
        Hex SHA-256 of ``raw`` (a copy of a file already read is read once).
    stat
        Size and modification time of a plain file that did not change while it was read
        (``None`` for a zip member): the file's checksum is then ``digest``.
    """

    name: str
    path: Path
    raw: bytes
    digest: str
    stat: tuple[int, int] | None = None


def read_source(name: str, path: Path, member: str | None) -> SourceBytes:
    """Read and hash one CSV (a file, or a member of the zip ``path``)."""
    raw = read_member(path, member)
    if raw is not None:
        return SourceBytes(name, path, raw, content_digest(raw))
    before = path.stat()
    raw = path.read_bytes()
    after = path.stat()
    # Only a file that did not change while it was read has this digest at this mtime.
    same = (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns) and len(raw) == after.st_size
    return SourceBytes(name, path, raw, content_digest(raw), (after.st_size, after.st_mtime_ns) if same else None)


@dataclass
class FileRead:
    """One CSV read on a worker thread (:func:`read_parts`).

    Attributes
    ----------
    name, path, digest, stat
        As :class:`SourceBytes` (the bytes are not kept).
    tally
        The file's own accounting (added to the layer's unless the file is a copy).
    frame
        Its analysed rows (:func:`read_police_file`); ``None`` when reading it failed.
    error
        The error reading it raised (raised at its turn, after its copy check).
    """

    name: str
    path: Path
    digest: str
    stat: tuple[int, int] | None
    tally: Tally
    frame: pd.DataFrame | None = None
    error: Exception | None = None

    def remember_digest(self) -> None:
        """Record ``digest`` as the file's checksum for the manifest (a plain file that did not
        change while it was read), so that it is not read and hashed again."""
        if self.stat is not None:
            remember_sha256(self.path, *self.stat, self.digest)


def read_part(name: str, path: Path, member: str | None, spec: LayerSpec, context: LoadContext) -> FileRead:
    """Read, hash, parse and account for one CSV with a tally of its own (see :func:`read_parts`)."""
    source = read_source(name, path, member)  # an error here is raised at the file's turn
    part = FileRead(name, path, source.digest, source.stat, Tally())
    try:
        part.frame = read_police_file(path, spec, context, part.tally, raw=source.raw, name=name, use_threads=False)
    except Exception as err:  # noqa: BLE001 - raised by the caller in reading order
        part.error = err
    return part


#: Files read at once by :func:`read_parts`, at most: one a worker (:func:`geomisuse.parallel.cores`,
#: two on the project machine), up to this (each file read holds its bytes and its table; the
#: accounting holds the GIL at times). ``None``: from the cores.
READ_THREADS: int | None = None


def _read_threads() -> int:
    from ..parallel import cores

    return READ_THREADS or max(1, min(cores(), 4))


def read_parts(spec: LayerSpec, context: LoadContext, threads: int | None = None) -> Iterator[FileRead]:
    """:func:`read_part` of every CSV of the layer, yielded in reading order, ``threads`` files
    (default: one a worker, at most four) at a time on worker threads (pyarrow parses each with one thread).

    Only the files being read are held, besides what has been yielded. An error listing the
    files (a missing path, a damaged zip) or reading a file's bytes is raised when its turn
    comes, as reading them one after the other would raise it. A zip's checksum (the
    manifest's) is worked out on a worker the first time one of its members is listed.
    """
    threads = threads or _read_threads()
    listed = csv_files(spec.paths)
    pending: deque[Future] = deque()
    zips: set[Path] = set()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="geomisuse-read") as pool:

        def submit_next() -> bool:
            try:
                name, path, member = next(listed)
            except StopIteration:
                return False
            except Exception as err:  # noqa: BLE001 - raised at its turn, after the files before it
                failed: Future = Future()
                failed.set_exception(err)
                pending.append(failed)
                return False
            if member is not None and path not in zips:
                zips.add(path)
                pool.submit(sha256, path)  # cached for the manifest
            pending.append(pool.submit(read_part, name, path, member, spec, context))
            return True

        more = all(submit_next() for _ in range(threads))
        try:
            while pending:
                part = pending.popleft().result()
                more = more and submit_next()
                yield part
                del part
        finally:
            for future in pending:
                future.cancel()
