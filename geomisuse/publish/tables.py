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

from ..version import __version__
from .exports import csv_table, gpkg_table
from .published import published_monthly, published_wards
from ..config import PublishSettings

if TYPE_CHECKING:  # publishing reads a run's results; it never drives the pipeline
    from ..pipeline import StudyRun

#: Packages whose versions are recorded in the manifest.
RECORDED_PACKAGES = ("geopandas", "shapely", "pyogrio", "pyproj", "pandas", "numpy", "libpysal", "esda",
                     "spopt", "pulp", "folium", "scipy")


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

                existing = out / target
                if wards is not None and existing.is_dir():
                    # Some wards only: the other wards' pages stay as they are.
                    shutil.copytree(existing, staging / target)
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
    gpkg_table(wards).to_file(folder / "wards.gpkg", layer="wards", driver="GPKG")
    csv_table(wards).to_csv(folder / "wards.csv", index=False)
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
