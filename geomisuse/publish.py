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
from dataclasses import dataclass, fields
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .disclosure import format_counts, primary_mask, protect_table, secondary_mask
from .errors import InputError
from .run import StudyRun
from .settings import MEASURES, SUPPRESSION_THRESHOLD

#: Packages whose versions are recorded in the manifest.
RECORDED_PACKAGES = ("geopandas", "shapely", "pyogrio", "pyproj", "pandas", "numpy", "libpysal", "esda",
                     "spopt", "pulp", "folium", "scipy")


@dataclass
class PublishSettings:
    """The study file's ``[publish]`` table.

    Attributes
    ----------
    suppression_threshold
        Smallest non-zero count shown as a number (default 5: 1-4 show as ``<5``).
    unsuppressed
        Publish real counts, for analysts' internal use; said in the manifest and on every page.
    tiles
        Basemap: ``"OpenStreetMap"``, another folium tile name, or ``"none"``.
    offline
        Embed the map's JavaScript and CSS so it renders with no network.
    briefings
        Write ward briefings.
    map_simplify_m
        Tolerance (metres, EPSG:27700) of the coverage simplification of ward polygons on the
        map; 0 keeps every vertex. The exports are never simplified.
    """

    suppression_threshold: int = SUPPRESSION_THRESHOLD
    unsuppressed: bool = False
    tiles: str = "OpenStreetMap"
    offline: bool = False
    briefings: bool = True
    map_simplify_m: float = 10.0

    @classmethod
    def from_options(cls, options: dict) -> "PublishSettings":
        """Build from the ``[publish]`` table; unknown keys are an input error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(f"unknown key '{unknown[0]}' in [publish]; keys are {', '.join(sorted(known))}")
        settings = cls(**options)
        if int(settings.suppression_threshold) < 1:
            raise InputError("[publish] suppression_threshold must be 1 or more (1 turns suppression off)")
        return settings


def published_wards(run: StudyRun, settings: PublishSettings) -> pd.DataFrame:
    """The ward table as published: counts suppressed and rates blanked where a count is hidden.

    With ``settings.unsuppressed`` the real values are returned unchanged.
    """
    wards = run.wards
    if settings.unsuppressed:
        return wards.copy()
    threshold = int(settings.suppression_threshold)
    published = wards.copy()
    sources = run.manifest.get("measures", {})
    groups: list[tuple[list[str], str | None]] = []
    for suffix in ("_count", "_previous_count"):
        present = [m for m in MEASURES if m in run.measures and f"{m}{suffix}" in wards]
        # MPS possession and trafficking add up to all drug offences: protect them as parts of it.
        additive = [m for m in ("possession", "trafficking") if m in present and sources.get(m) == "mps_ward"]
        if additive and "drug_offences" in present and sources.get("drug_offences") == "mps_ward":
            groups.append(([f"{m}{suffix}" for m in additive], f"drug_offences{suffix}"))
            present = [m for m in present if m not in additive and m != "drug_offences"]
        groups += [([f"{m}{suffix}"], None) for m in present]
    groups += [([c], None) for c in ("police_uk_drugs_count", "police_uk_asb_count") if c in wards]
    for columns, total in groups:
        protected, hidden = protect_table(wards, columns, threshold, row_total=total, column_totals=True)
        for column in hidden.columns:
            published[column] = protected[column]
            rate = column.replace("_count", "_rate_per_1000")
            if rate in published:
                published[rate] = published[rate].where(~hidden[column])
    return published


def published_monthly(run: StudyRun, settings: PublishSettings) -> pd.DataFrame:
    """Monthly counts as published: each measure protected across months (the period total is
    published) and across wards (borough monthly totals may be shown)."""
    monthly = run.monthly
    if settings.unsuppressed:
        return monthly.copy()
    published = monthly.copy()
    for column in [c for c in monthly.columns if c.endswith("_count")]:
        grid = monthly.pivot(index="ward_code", columns="month", values=column)
        protected = _protect_grid(grid, int(settings.suppression_threshold))
        long = protected.reset_index().melt(id_vars="ward_code", var_name="month", value_name=column)
        published = published.drop(columns=column).merge(long, on=["ward_code", "month"], how="left")
    return published[monthly.columns]


def _protect_grid(grid: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """A wards x months grid protected against both its row totals (each ward's period
    count) and its column totals (the borough's monthly count)."""
    values = grid.to_numpy(dtype="float64")
    primary = primary_mask(values, threshold)
    secondary = secondary_mask(values, primary, row_totals=True, column_totals=True)
    return pd.DataFrame(format_counts(values, primary, secondary, threshold), index=grid.index, columns=grid.columns)


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
        **run.manifest,
        "outputs": outputs,
        "packages": versions,
        "warnings": run.warnings,
    }


def write_outputs(run: StudyRun, out: Path, settings: PublishSettings) -> list[Path]:
    """Write every output of a run into ``out`` (replacing what was there).

    Parameters
    ----------
    run
        The analysed study.
    out
        Output folder; created, or replaced as a whole once the new outputs are complete.
    settings
        Publishing settings.

    Returns
    -------
    list of Path
        The files written, inside ``out``.
    """
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        written = _write_all(run, staging, settings)
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, retired / out.name)
            os.replace(staging, out)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [out / name for name in written]


def _write_all(run: StudyRun, folder: Path, settings: PublishSettings) -> list[str]:
    from .maps import write_map

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
    unmatched_rows(run).to_csv(folder / "unmatched.csv", index=False)
    names.append("unmatched.csv")
    write_map(run, wards, folder / "map.html", settings)
    names.append("map.html")
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
