"""Writing a run's outputs: the ward table (GeoPackage and CSV), monthly counts, statistics,
satellite sites, unmatched rows, the map, the briefings and the manifest.

Everything is written to a temporary folder beside ``OUT`` and moved into place only when
complete, so a failed run never leaves half-written outputs. Published counts are
suppressed (:mod:`geomisuse.disclosure`) unless the run is explicitly ``unsuppressed``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import __version__
from .escaping import neutralise_csv
from .disclosure import TOTAL_COST_FACTOR, format_counts, link_suppression, primary_mask, protect_table
from ..config import MEASURES, PublishSettings
from ..errors import InputError

if TYPE_CHECKING:  # publishing reads a run's results; it never drives the pipeline
    from ..pipeline import StudyRun

#: Packages whose versions are recorded in the manifest.
RECORDED_PACKAGES = ("geopandas", "shapely", "pyogrio", "pyproj", "pandas", "numpy", "libpysal", "esda",
                     "spopt", "pulp", "folium", "scipy")


def _additive_groups(run: StudyRun, suffix: str) -> list[tuple[list[str], str]]:
    """MPS possession and trafficking add up to all drug offences (in every ward and month)."""
    sources = run.sources
    parts = [m for m in ("possession", "trafficking") if sources.get(m) == "mps_ward"]
    if parts and sources.get("drug_offences") == "mps_ward":
        return [([f"{m}{suffix}" for m in parts], f"drug_offences{suffix}")]
    return []


def _protected_ward_columns(run: StudyRun) -> list[str]:
    wards = run.wards
    columns = [f"{m}{suffix}" for suffix in ("_count", "_previous_count") for m in MEASURES
               if m in run.measures and f"{m}{suffix}" in wards]
    return columns + [c for c in ("police_uk_drugs_count", "police_uk_asb_count") if c in wards]


def _protect_wards(run: StudyRun, threshold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    columns = _protected_ward_columns(run)
    additive = [(parts, total) for suffix in ("_count", "_previous_count")
                for parts, total in _additive_groups(run, suffix) if total in columns]
    return protect_table(run.wards, columns, threshold, additive=additive, column_totals=True)


def published_wards(run: StudyRun, settings: PublishSettings) -> pd.DataFrame:
    """The ward table as published: counts suppressed and rates blanked where a count is hidden.

    All count columns are protected together: each column against its borough total, and
    MPS possession and trafficking against all drug offences. With ``settings.unsuppressed``
    the real values are returned unchanged.
    """
    if settings.unsuppressed:
        return run.wards.copy()
    published, hidden = _protect_wards(run, int(settings.suppression_threshold))
    for column in hidden.columns:
        rate = column.replace("_count", "_rate_per_1000")
        if rate != column and rate in published:
            published[rate] = published[rate].where(~hidden[column])
    if "gap_reason" in published and "gap_need_measure" in published:
        # The reason quotes the need rate; with the population that would give a hidden count back.
        need_hidden = [bool(hidden.at[i, f"{m}_count"]) if f"{m}_count" in hidden else False
                       for i, m in zip(published.index, published["gap_need_measure"])]
        published["gap_reason"] = published["gap_reason"].where(
            ~pd.Series(need_hidden, index=published.index),
            published["gap_reason"].astype(str).str.replace(_RATE_TEXT, "rate not shown (small count)", regex=True))
    return published


#: A rate as quoted in gap reasons, e.g. "rate 0.5 per 1,000" or "(10.2 per 1,000)".
_RATE_TEXT = r"(rate )?\(?\d[\d,]*(\.\d+)? per 1,000\)?"


def published_monthly(run: StudyRun, settings: PublishSettings) -> pd.DataFrame:
    """Monthly counts as published.

    Protected together with the published ward table: a ward's months add up to its period
    count (as published, hidden or not), each month's wards add up to a borough total, and
    MPS possession and trafficking add up to all drug offences in every ward-month.
    """
    monthly = run.monthly
    if settings.unsuppressed:
        return monthly.copy()
    threshold = int(settings.suppression_threshold)
    _, ward_hidden = _protect_wards(run, threshold)
    columns = [c for c in monthly.columns if c.endswith("_count")]
    if not columns or monthly.empty:
        return monthly.copy()
    codes = run.wards["ward_code"].to_numpy()
    months = list(run.months)
    n_wards, n_months = len(codes), len(months)
    size = n_wards * n_months
    grids = [monthly.pivot(index="ward_code", columns="month", values=c).reindex(index=codes, columns=months)
             for c in columns]
    # Cells: each measure's wards x months grid, then the ward-table period counts, whose
    # published or hidden state is already decided (fixed).
    values = np.concatenate([g.to_numpy(dtype="float64").ravel() for g in grids]
                            + [run.wards[c].astype("float64").to_numpy() for c in columns])
    period_start = len(columns) * size
    fixed = np.arange(values.size) >= period_start
    primary = primary_mask(values, threshold) & ~fixed
    hidden = primary.copy()
    hidden[period_start:] = np.concatenate([ward_hidden[c].to_numpy() for c in columns])

    def grid_cells(column: str) -> np.ndarray:
        k = columns.index(column)
        return np.arange(k * size, (k + 1) * size).reshape(n_wards, n_months)

    relations: list[np.ndarray] = []
    for k, column in enumerate(columns):
        cells = grid_cells(column)
        period = period_start + k * n_wards + np.arange(n_wards)
        relations += [np.append(cells[w], period[w]) for w in range(n_wards)]
        relations += list(cells.T)
    factor = np.ones_like(values)
    for parts, total in _additive_groups(run, "_count"):
        if all(c in columns for c in parts + [total]):
            relations += list(np.stack([grid_cells(c).ravel() for c in parts + [total]], axis=1))
            factor[grid_cells(total).ravel()] = TOTAL_COST_FACTOR
    hidden = link_suppression(values, hidden, relations, fixed, factor)
    text = format_counts(values[:period_start], primary[:period_start], (hidden & ~primary)[:period_start],
                         threshold)
    published = monthly.copy()
    for k, column in enumerate(columns):
        grid = pd.DataFrame(text[k * size:(k + 1) * size].reshape(n_wards, n_months), index=codes, columns=months)
        long = grid.rename_axis(index="ward_code", columns="month").stack().rename(column).reset_index()
        published = published.drop(columns=column).merge(long, on=["ward_code", "month"], how="left")
    return published[monthly.columns]


def unmatched_rows(run: StudyRun) -> pd.DataFrame:
    """Every input row that was not counted: layer, file, row and reason."""
    parts = [layer.rejected for layer in run.layers.values() if len(layer.rejected)]
    if not parts:
        return pd.DataFrame(columns=["layer", "file", "row", "reason"])
    frame = pd.concat(parts, ignore_index=True)
    frame["file"] = frame["file"].map(lambda f: _display_path(f, run))
    return frame.sort_values(["layer", "file", "row"], kind="stable").reset_index(drop=True)


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
                  "period": [run.months[0], run.months[-1]] if run.months else None, "months": len(run.months)},
        "seed": study.seed,
        "suppression": {"threshold": int(settings.suppression_threshold), "unsuppressed": bool(settings.unsuppressed),
                        "note": ("UNSUPPRESSED: real small counts, for internal analysis only; do not publish"
                                 if settings.unsuppressed else
                                 f"counts 1-{int(settings.suppression_threshold) - 1} shown as "
                                 f"<{int(settings.suppression_threshold)}; 'c' marks a count hidden to "
                                 "protect another")},
        "inputs": inputs,
        "wards": int(len(run.wards)),
        "measures": dict(run.sources),
        **run.manifest,
        "outputs": outputs,
        "packages": versions,
        "warnings": run.warnings,
    }


#: What a run can write: everything, or only the map or only the briefings.
PARTS = ("all", "map", "briefings")


#: The file that marks a folder as geomisuse's output folder (safe to replace).
OUTPUT_MARKER = ".geomisuse-output"
#: Everything geomisuse writes at the top of an output folder.
OUTPUT_NAMES = frozenset({OUTPUT_MARKER, "map.html", "wards.gpkg", "wards.csv", "wards_monthly.csv",
                          "global_moran.csv", "satellites.csv", "unmatched.csv", "manifest.json", "briefings"})


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
    """
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

                files = write_briefings(run, published, staging / target, settings, wards,
                                        map_link=(out / "map.html").exists())
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
    from .maps.page import write_map

    names: list[str] = []
    wards = published_wards(run, settings)
    wards.to_file(folder / "wards.gpkg", layer="wards", driver="GPKG")
    write_csv(pd.DataFrame(wards.drop(columns="geometry")), folder / "wards.csv")
    write_csv(published_monthly(run, settings), folder / "wards_monthly.csv")
    names += ["wards.gpkg", "wards.csv", "wards_monthly.csv"]
    if run.global_moran is not None:
        write_csv(run.global_moran, folder / "global_moran.csv")
        names.append("global_moran.csv")
    if run.satellites is not None:
        write_csv(run.satellites, folder / "satellites.csv")
        names.append("satellites.csv")
    write_csv(unmatched_rows(run), folder / "unmatched.csv")
    names.append("unmatched.csv")
    write_map(run, wards, folder / "map.html", settings)
    names.append("map.html")
    if settings.briefings:
        files = write_briefings(run, wards, folder / "briefings", settings, map_link=True)
        names += [str(p.relative_to(folder)) for p in files]
    names.append("manifest.json")
    (folder / "manifest.json").write_text(json.dumps(manifest(run, settings, names), indent=2, default=_json_default)
                                          + "\n", encoding="utf-8")
    return names


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a published CSV (UTF-8, no index) with formula-starting text cells neutralised."""
    neutralise_csv(frame).to_csv(path, index=False)


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
