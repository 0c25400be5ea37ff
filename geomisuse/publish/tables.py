"""Writing a run's outputs: the ward table (GeoPackage and CSV), monthly counts, statistics,
satellite sites, unmatched rows, the map, the briefings and the manifest.

Everything is written to a temporary folder beside ``OUT`` and moved into place only when
complete, so a failed run never leaves half-written outputs. Published counts are
suppressed (:mod:`geomisuse.disclosure`) unless the run is explicitly ``unsuppressed``.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..parallel import start
from ..version import __version__
from .disclosure import STATISTIC_SUFFIXES
from .exports import csv_table, gpkg_table
from .published import published_emerging, published_monthly, published_wards, published_yearly, study_protection
from ..config import MEASURES, PublishSettings
from .escaping import neutralise_csv
from .state import STATE_FOLDER, write_state
from ..errors import InputError

if TYPE_CHECKING:  # publishing reads a run's results; it never drives the pipeline
    from ..pipeline import StudyRun

#: Packages whose versions are recorded in the manifest.
RECORDED_PACKAGES = ("geopandas", "shapely", "pyogrio", "pyproj", "pandas", "numpy", "libpysal", "esda",
                     "spopt", "pulp", "folium", "scipy", "osmium")


def unmatched_rows(run: StudyRun) -> pd.DataFrame:
    """Every input row that was not counted: layer, file, row and reason."""
    parts = [layer.rejected for layer in run.layers.values() if len(layer.rejected)]
    if not parts:
        return pd.DataFrame(columns=["layer", "file", "row", "reason"])
    frame = pd.concat(parts, ignore_index=True)
    if frame["row"].dtype.kind not in "iu" or frame["layer"].isna().any() or frame["file"].isna().any():
        files = pd.Categorical(frame["file"].astype(str))
        frame["file"] = pd.Series(files.rename_categories([_display_path(f, run) for f in files.categories]),
                                  index=frame.index).astype(str)
        return frame.sort_values(["layer", "file", "row"], kind="stable").reset_index(drop=True)
    # Rejected rows share a few layers and files (a national year rejects half a million rows):
    # each distinct path is worked out once and the rows sorted on integer codes, in the order
    # sorting by layer, file (as shown) and row gives (stable: ties keep their order).
    layer_codes, layers = pd.factorize(frame["layer"])
    file_codes, files = pd.factorize(frame["file"].astype(str))
    shown = np.array([_display_path(f, run) for f in files], dtype=object)
    order = np.lexsort((frame["row"].to_numpy(), _ranks(shown)[file_codes], _ranks(layers)[layer_codes]))
    table = frame.take(order).reset_index(drop=True)
    table["file"] = shown[file_codes[order]]
    return table


def _ranks(values) -> np.ndarray:
    """The position of each value among the sorted distinct values (equal values, equal ranks)."""
    return np.unique(np.asarray(values, dtype=object), return_inverse=True)[1].ravel()


def manifest(run: StudyRun, settings: PublishSettings, outputs: list[str]) -> dict:
    """The run manifest: inputs with accounting, parameters, seed, versions, warnings."""
    inputs = []
    for layer in run.layers.values():
        entry = layer.accounting()
        for item in entry["files"]:
            item["path"] = _display_path(item["path"], run)
        inputs.append(entry)
    versions = {}
    for package in RECORDED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    study = run.study
    return {
        "geomisuse_version": __version__,
        "study": {"name": study.name, "file": _display_path(study.path, run) if study.path else None,
                  "borough": study.borough, "demo": study.demo, "sources": study.sources,
                  "period": [run.months[0], run.months[-1]] if run.months else None, "months": len(run.months),
                  "years": _whole_years(run)},
        "seed": study.seed,
        "suppression": _suppression_entry(run, settings),
        "inputs": inputs,
        "wards": int(len(run.wards)),
        "measures": dict(run.sources),
        **run.manifest,
        "outputs": outputs,
        "packages": versions,
        "warnings": run.warnings,
    }


def _suppression_entry(run: StudyRun, settings: PublishSettings) -> dict:
    """The manifest's account of disclosure control: threshold, rule, which rule applied to
    which measure and why, and the audit's figures."""
    protection = study_protection(run, settings)
    threshold = protection.threshold
    if settings.unsuppressed:
        note = "UNSUPPRESSED: real small counts, for internal analysis only; do not publish"
    elif settings.rule == "round5":
        note = (f"protected counts 1-{threshold - 1} shown as <{threshold}, the others rounded to the nearest 5; "
                "'c' marks a count hidden to protect another (any value, zero included)")
    else:
        note = (f"protected counts 1-{threshold - 1} shown as <{threshold}; 'c' marks a count hidden to "
                "protect another (any value, zero included)")
    return {"threshold": threshold, "unsuppressed": bool(settings.unsuppressed), "rule": settings.rule,
            "suppress": settings.suppress, "note": note,
            "policy": {m: {"source": p.source, "protected": p.protected, "reason": p.reason}
                       for m, p in protection.policies.items()},
            "withheld_statistics": [f"{m}{s}" for m in MEASURES if protection.protected(m)
                                    for s in STATISTIC_SUFFIXES if f"{m}{s}" in run.wards],
            "audit": protection.audit}


def _whole_years(run: StudyRun) -> int:
    """Whole calendar years of the period (the rows of ``wards_yearly.csv`` per ward)."""
    yearly = getattr(run, "yearly", None)
    return int(yearly["year"].nunique()) if yearly is not None and len(yearly) else 0


#: What a run can write: everything, or only the map or only the briefings.
PARTS = ("all", "map", "briefings")


#: The file that marks a folder as geomisuse's output folder (safe to replace).
OUTPUT_MARKER = ".geomisuse-output"
#: Everything geomisuse writes at the top of an output folder.
OUTPUT_NAMES = frozenset({OUTPUT_MARKER, "map.html", "wards.gpkg", "wards.csv", "wards_monthly.csv",
                          "wards_yearly.csv", "global_moran.csv", "emerging_hotspots.csv", "satellites.csv",
                          "satellite_coverage.csv", "unmatched.csv", "manifest.json", "briefings",
                          STATE_FOLDER})


def check_out_folder(out: Path) -> str:
    """Say whether geomisuse may write into ``out``, before any work is done.

    Returns
    -------
    str
        ``"new"`` (does not exist), ``"empty"`` (an empty folder: outputs are moved into it)
        or ``"ours"`` (carries :data:`OUTPUT_MARKER`, or is an earlier run's folder with its
        ``manifest.json``, and holds nothing else than geomisuse's outputs: replaced whole).

    Raises
    ------
    InputError
        ``out`` is a file, or a folder that holds anything geomisuse did not write.
    """
    out = Path(out)
    if not out.exists() and not out.is_symlink():
        return "new"
    if not out.is_dir() or out.is_symlink():
        raise InputError("--out must be a folder geomisuse can replace, and this is a file or a link; "
                         "give a new or empty folder", out)
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return "empty"
    foreign = [name for name in entries if name not in OUTPUT_NAMES]
    if not (OUTPUT_MARKER in entries or _earlier_manifest(out)) or foreign:
        example = (foreign or entries)[0]
        raise InputError(f"output folder holds files geomisuse did not write (e.g. '{example}'); geomisuse "
                         "replaces its output folder, so give a new or empty folder, or move those files away",
                         out)
    return "ours"


def _earlier_manifest(out: Path) -> bool:
    """Whether ``out`` holds the manifest of a run from before the marker file existed."""
    try:
        return "geomisuse_version" in json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


def write_outputs(run: StudyRun, out: Path, settings: PublishSettings, part: str = "all",
                  wards: list[str] | None = None) -> list[Path]:
    """Write a run's outputs into ``out``.

    Everything is written into a staging folder beside ``out`` first. ``part="all"`` then
    replaces ``out`` as a whole; ``"map"`` and ``"briefings"`` replace only ``map.html`` or
    the ``briefings`` folder in it. ``out`` must be new, empty or geomisuse's own
    (:func:`check_out_folder`); nothing geomisuse did not write is deleted. A failure,
    including of the final move, leaves ``out`` as it was and no staging folder behind.

    Parameters
    ----------
    run
        The analysed study.
    out
        Output folder.
    settings
        Publishing settings.
    part
        One of :data:`PARTS`.
    wards
        With ``part="briefings"``: the ward codes to write pages for (default all).

    Returns
    -------
    list of Path
        The files written, inside ``out``.

    Raises
    ------
    InputError
        ``out`` is not geomisuse's to write, or cannot be written (permissions, disk space).
    ValueError
        ``part="all"`` of a run read back from a saved state, which holds only what the map
        and briefings read (not the accounting, the manifest or the unmatched rows).
    """
    if part == "all" and getattr(run, "restored_from", None) is not None:
        raise ValueError("a run read back from its saved state republishes the map or the briefings only")
    out = Path(out).absolute()
    state = check_out_folder(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as err:
        raise InputError(f"cannot create the output folder ({err.strerror}); choose a folder you can write to",
                         out) from None
    try:
        (staging / OUTPUT_MARKER).write_text("Written by geomisuse; the whole folder is replaced on the next run.\n",
                                             encoding="utf-8")
        if part == "all":
            written = _write_all(run, staging, settings)
            if state == "empty":
                _move_entries(staging, out)
            else:
                _swap_in(staging, out)
        else:
            published = published_wards(run, settings)
            target = "map.html" if part == "map" else "briefings"
            if part == "map":
                from .maps.page import write_map

                write_map(run, published, staging / target, settings)
                written = [target]
            else:
                from .briefings.pages import write_briefings

                existing = out / target
                if wards is not None and existing.is_dir():
                    # Some wards only: the other wards' pages stay as they are.
                    shutil.copytree(existing, staging / target)
                files = write_briefings(run, published, staging / target, settings, wards,
                                        map_link=(out / "map.html").exists(),
                                        tables_link=(out / "wards.csv").exists())
                written = [str(p.relative_to(staging)) for p in files]
            out.mkdir(exist_ok=True)
            if not (out / OUTPUT_MARKER).exists():
                os.replace(staging / OUTPUT_MARKER, out / OUTPUT_MARKER)
            _swap_in(staging / target, out / target)
    except OSError as err:
        raise InputError(f"cannot write the outputs ({err.strerror or err}); check that the folder is writable "
                         "and the disk has space; nothing was changed", out) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / name for name in written]


def _move_entries(staging: Path, out: Path) -> None:
    """Move every entry of ``staging`` into the empty folder ``out``; on failure take them out again."""
    moved = []
    try:
        for entry in sorted(staging.iterdir()):
            os.replace(entry, out / entry.name)
            moved.append(out / entry.name)
    except BaseException:
        for path in moved:  # only what this run put there
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        raise


def _swap_in(new: Path, target: Path) -> None:
    """Put ``new`` where ``target`` is, replacing it (file or folder) only once ``new`` is complete.

    When the final move fails the old ``target`` is put back before the error propagates.
    """
    if not target.exists():
        os.replace(new, target)
        return
    retired_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    retired = retired_dir / target.name
    os.replace(target, retired)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(retired, target)
        shutil.rmtree(retired_dir, ignore_errors=True)
        raise
    shutil.rmtree(retired_dir, ignore_errors=True)


def _write_all(run: StudyRun, folder: Path, settings: PublishSettings) -> list[str]:
    from .briefings.pages import write_briefings

    names: list[str] = []
    wards = published_wards(run, settings)
    # A worker process saves the run's state (what the map and briefings are made from; not
    # listed in the manifest's outputs: an internal folder holding unprotected counts, never
    # published) and draws the map, while the tables and briefings are written here.
    run.ward_neighbours()  # worked out here, where the briefings need them too, before the worker forks
    saved_and_mapped = start(functools.partial(_save_and_map, run, wards, folder, settings))
    gpkg_table(wards).to_file(folder / "wards.gpkg", layer="wards", driver="GPKG")
    write_csv(csv_table(wards), folder / "wards.csv")
    write_csv(published_monthly(run, settings), folder / "wards_monthly.csv")
    names += ["wards.gpkg", "wards.csv", "wards_monthly.csv"]
    yearly = published_yearly(run, settings)
    if len(yearly):  # the period holds a whole calendar year
        write_csv(yearly, folder / "wards_yearly.csv")
        names.append("wards_yearly.csv")
    if run.global_moran is not None:
        write_csv(run.global_moran, folder / "global_moran.csv")
        names.append("global_moran.csv")
    if run.emerging_bins is not None:
        write_csv(published_emerging(run, settings), folder / "emerging_hotspots.csv")
        names.append("emerging_hotspots.csv")
    if run.satellites is not None:
        write_csv(run.satellites, folder / "satellites.csv")
        names.append("satellites.csv")
    if getattr(run, "satellite_coverage", None) is not None:
        write_csv(run.satellite_coverage, folder / "satellite_coverage.csv")
        names.append("satellite_coverage.csv")
    write_csv(unmatched_rows(run), folder / "unmatched.csv")
    names.append("unmatched.csv")
    names.append("map.html")
    if settings.briefings:
        files = write_briefings(run, wards, folder / "briefings", settings, map_link=True)
        names += [str(p.relative_to(folder)) for p in files]
    saved_and_mapped.result()
    names.append("manifest.json")
    (folder / "manifest.json").write_text(json.dumps(manifest(run, settings, names), indent=2, default=_json_default)
                                          + "\n", encoding="utf-8")
    return names


def _save_and_map(run: StudyRun, published: pd.DataFrame, folder: Path, settings: PublishSettings) -> None:
    from .maps.page import write_map

    write_state(run, folder, settings)
    write_map(run, published, folder / "map.html", settings)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a published CSV (UTF-8, no index) with formula-starting text cells neutralised.

    A table of text and integer columns only (``unmatched.csv``: hundreds of thousands of rows
    repeating a few file names and reasons) is written by :func:`_write_text_csv`, byte for byte
    as ``DataFrame.to_csv`` writes it, many times faster; any other table by ``to_csv``.
    """
    safe = neutralise_csv(frame)
    if not _write_text_csv(safe, path):
        safe.to_csv(path, index=False)


def _write_text_csv(frame: pd.DataFrame, path: Path) -> bool:
    """Write ``frame`` as ``frame.to_csv(path, index=False)`` would, if it has at least two
    columns and every column is integers (numpy) or text (missing cells written blank); return
    whether it was written.

    Each distinct text is quoted by Python's CSV writer with pandas' settings (what ``to_csv``
    does to every cell), and the rows are joined by pyarrow.
    """
    if frame.shape[1] < 2 or not len(frame):  # a lone blank field is quoted: leave that to pandas
        return False
    if isinstance(frame.columns, pd.MultiIndex):
        return False
    try:
        fields = []
        for position in range(frame.shape[1]):
            column = frame.iloc[:, position]
            if isinstance(column.dtype, np.dtype) and column.dtype.kind in "iu":
                fields.append(pa.array(column.to_numpy()).cast(pa.large_string()))
                continue
            if not (column.dtype == object or isinstance(column.dtype, (pd.StringDtype, pd.CategoricalDtype))):
                return False
            codes, distinct = pd.factorize(column)  # missing cells: -1
            distinct = list(distinct)
            if not all(type(v) is str for v in distinct):
                return False
            rendered = pa.array(_csv_fields(distinct) + [""], type=pa.large_string())
            fields.append(rendered.take(pa.array(np.where(codes < 0, len(distinct), codes))))
        text = pa.large_string()
        rows = pc.binary_join_element_wise(*fields, pa.scalar(",", text))
        lines = pc.binary_join_element_wise(rows, pa.scalar(os.linesep, text), pa.scalar("", text))
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset:lines.offset + len(lines) + 1]
        body = memoryview(lines.buffers()[2])[offsets[0]:offsets[-1]]
        header = _csv_line([str(c) for c in frame.columns]).encode("utf-8")
    except (TypeError, ValueError, UnicodeError, pa.ArrowException):
        return False  # to_csv decides (it raises on text that is not valid UTF-8)
    with open(path, "wb") as handle:
        handle.write(header)
        handle.write(body)
    return True


def _csv_line(values: list[str]) -> str:
    """One row as ``to_csv`` writes it (Python's CSV writer, pandas' settings)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=os.linesep, quoting=csv.QUOTE_MINIMAL).writerow(values)
    return buffer.getvalue()


def _csv_fields(values: list[str]) -> list[str]:
    """Each text as a field of a row of several (quoted where it needs it, as ``to_csv`` does)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=os.linesep, quoting=csv.QUOTE_MINIMAL)
    tail = len("," + os.linesep)
    fields = []
    for value in values:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([value, ""])
        fields.append(buffer.getvalue()[:-tail])
    return fields


def _display_path(path, run: StudyRun) -> str:
    """A path relative to the study file's folder where possible (no home folders in outputs)."""
    text = str(path)
    base = run.study.path.parent if run.study.path else Path.cwd()
    file_part, sep, member = text.partition(".zip:")
    try:
        rel = os.path.relpath(file_part + (".zip" if sep else ""), base)
    except ValueError:
        return text
    return rel + (":" + member if sep else "")


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    if value is pd.NA:
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
