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
from .disclosure import TOTAL_COST_FACTOR, format_counts, link_suppression, primary_mask, protect_table
from ..config import MEASURES, PublishSettings

if TYPE_CHECKING:  # publishing reads a run's results; it never drives the pipeline
    from ..pipeline import StudyRun

#: Packages whose versions are recorded in the manifest.
RECORDED_PACKAGES = ("geopandas", "shapely", "pyogrio", "pyproj", "pandas", "numpy", "libpysal", "esda",
                     "spopt", "pulp", "folium", "scipy", "osmium")


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


def write_outputs(run: StudyRun, out: Path, settings: PublishSettings, part: str = "all",
                  wards: list[str] | None = None) -> list[Path]:
    """Write a run's outputs into ``out``.

    Everything is written into a staging folder beside ``out`` first. ``part="all"`` then
    replaces ``out`` as a whole; ``"map"`` and ``"briefings"`` replace only ``map.html`` or
    the ``briefings`` folder in it. A failure leaves ``out`` as it was.

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
    """
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if part == "all":
            written = _write_all(run, staging, settings)
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
            _swap_in(staging / target, out / target)
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [out / name for name in written]


def _swap_in(new: Path, target: Path) -> None:
    """Put ``new`` where ``target`` is, replacing it (file or folder) only once ``new`` is complete."""
    if target.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, retired / target.name)
        os.replace(new, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(new, target)


def _write_all(run: StudyRun, folder: Path, settings: PublishSettings) -> list[str]:
    from .briefings.pages import write_briefings
    from .maps.page import write_map

    names: list[str] = []
    wards = published_wards(run, settings)
    wards.to_file(folder / "wards.gpkg", layer="wards", driver="GPKG")
    pd.DataFrame(wards.drop(columns="geometry")).to_csv(folder / "wards.csv", index=False)
    published_monthly(run, settings).to_csv(folder / "wards_monthly.csv", index=False)
    names += ["wards.gpkg", "wards.csv", "wards_monthly.csv"]
    if run.global_moran is not None:
        run.global_moran.to_csv(folder / "global_moran.csv", index=False)
        names.append("global_moran.csv")
    if run.satellites is not None:
        run.satellites.to_csv(folder / "satellites.csv", index=False)
        names.append("satellites.csv")
    if getattr(run, "satellite_coverage", None) is not None:
        run.satellite_coverage.to_csv(folder / "satellite_coverage.csv", index=False)
        names.append("satellite_coverage.csv")
    unmatched_rows(run).to_csv(folder / "unmatched.csv", index=False)
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
