"""The saved-run state: what the map and the briefings read from a run, kept in the output
folder (``OUT/.geomisuse/``) so that ``geomisuse map OUT`` and ``geomisuse brief OUT``
republish them without running the analysis again.

Format (version :data:`FORMAT_VERSION`):

- ``run.json``: the format and geomisuse versions, the study (its settings as checked), the
  publishing settings the run used, the run's months, measures, sources, manifest sections,
  warnings and the statistics' neighbours, the inputs' sizes and modification times, and which
  tables follow with the dtypes Parquet does not keep;
- one Parquet file per table (GeoParquet for tables with geometry; tables of points only, such
  as the police.uk points, in its native point encoding): the ward table, monthly
  and yearly counts, global Moran, emerging hot spot bins, satellite sites and their coverage, walk
  catchments, context wards, and the tables of the layers the map and briefings draw
  (:data:`PUBLISHED_LAYERS`). An object column mixing types of value (a GeoJSON property that
  is a number in one feature and text in another), which Parquet refuses, is kept as text.

Nothing is pickled: pickles run code when loaded and break across library versions.

**Disclosure.** The state holds the real, unprotected counts: publishing computes the
protection from them each time. The folder is internal: nothing published links to it, and
it must not be shared with the outputs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from ..config import (GAP_PATH_KEYS, PATH_OPTIONS, ClusterSettings, GapSettings, LayerSpec, PublishSettings, Study)
from ..errors import InputError
from ..layers.base import LayerResult
from ..version import __version__

if TYPE_CHECKING:  # publishing reads a run's results; it never drives the pipeline
    from ..pipeline import StudyRun

#: The state's folder inside an output folder (a dot folder: hidden, and never linked to).
STATE_FOLDER = ".geomisuse"
#: The state's description file inside :data:`STATE_FOLDER`.
STATE_FILE = "run.json"
#: Bumped whenever what the state holds, or how it is written, changes meaning; a state of
#: another version is refused (re-run), never guessed at.
FORMAT_VERSION = 1
#: ``run.json``'s ``format`` value: says what the file is to someone who finds it.
FORMAT_NAME = "geomisuse saved run (internal: holds unprotected counts; do not publish)"

#: The run's tables (``StudyRun`` attributes) that publishing reads.
RUN_TABLES = ("wards", "monthly", "yearly", "global_moran", "emerging_bins", "satellites",
              "satellite_coverage", "catchments", "context_wards")
#: Layers whose tables the map and briefings read, and which of their columns (geometry is
#: always kept): ``None`` every column but the row provenance (``source_file``/``source_row``,
#: for the unmatched-rows table only), since the site and estate layers are small and their
#: optional attributes vary by input; the police.uk points (up to millions of rows) only what
#: the heat maps read.
PUBLISHED_LAYERS: dict[str, tuple[str, ...] | None] = {
    "treatment_services": None, "pharmacies": None, "needle_exchanges": None, "estates": None,
    # Points (local engine) or counts per heat cell (Dask engine: ``cell``, ``count``).
    "police_uk": ("measure", "month", "cell", "count"),
}
#: Columns no saved layer table keeps (row provenance; paths are not Parquet values either).
PROVENANCE_COLUMNS = ("source_file", "source_row")


@dataclass
class SavedRun:
    """A saved-run state as read back (:func:`read_state`).

    Attributes
    ----------
    run_fields
        Keyword arguments of :class:`geomisuse.pipeline.StudyRun`: what the map and the
        briefings read (layers without a :data:`PUBLISHED_LAYERS` table have an empty one).
    settings
        The publishing settings the run wrote its outputs with.
    geomisuse_version
        The geomisuse version that wrote the state.
    """

    run_fields: dict[str, Any]
    settings: PublishSettings
    geomisuse_version: str


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

def write_state(run: StudyRun, folder: Path, settings: PublishSettings) -> list[str]:
    """Write the state of ``run`` into ``folder/.geomisuse`` (``folder`` is the output
    folder being staged: the state is moved into place with the other outputs).

    Call it before the map and briefings are written, so that the state is what they were
    made from (the briefings add warnings of their own, e.g. about the PDF).

    Parameters
    ----------
    run
        The analysed study.
    folder
        The (staging) output folder.
    settings
        The publishing settings the outputs are written with.

    Returns
    -------
    list of str
        The files written, relative to ``folder``.
    """
    state = folder / STATE_FOLDER
    state.mkdir()
    tables: dict[str, dict] = {}

    def save(name: str, frame: pd.DataFrame | None) -> None:
        if frame is None:
            return
        geo = isinstance(frame, gpd.GeoDataFrame)
        # Parquet reads text back as pandas' string dtype; record the object columns to restore.
        objects = [c for c in frame.columns if frame[c].dtype == object and (not geo or c != frame.geometry.name)]
        mixed = [c for c in objects if not _parquet_values(frame[c])]
        if mixed:  # e.g. a GeoJSON property that is a number in one feature and text in another
            frame = frame.assign(**{c: frame[c].map(lambda v: v if _missing(v) else str(v)) for c in mixed})
        frame.to_parquet(state / f"{name}.parquet", index=True, **_geometry_encoding(frame))
        tables[name] = {"geo": geo, "object_columns": [str(c) for c in objects]}

    for name in RUN_TABLES:
        save(name, getattr(run, name))
    layers = {}
    for kind, layer in run.layers.items():
        layers[kind] = {"paths": [str(p) for p in layer.paths]}
        if kind in PUBLISHED_LAYERS and layer.table is not None:
            save(f"layer-{kind}", _published_columns(layer.table, PUBLISHED_LAYERS[kind]))
            layers[kind]["table"] = f"layer-{kind}"
    study = run.study
    description = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "geomisuse_version": __version__,
        "study": _study_json(study),
        "settings": settings.model_dump(mode="json"),
        "months": list(run.months),
        "measures": list(run.measures),
        "sources": dict(run.sources),
        "manifest": run.manifest,
        "warnings": list(run.warnings),
        # The briefings name neighbours; saving them keeps republishing free of the weights.
        "neighbours": [[int(k) for k in ks] for ks in run.ward_neighbours()],
        "layers": layers,
        "tables": tables,
        "inputs": input_fingerprints(study),
    }
    (state / STATE_FILE).write_text(json.dumps(description, default=_json_value) + "\n", encoding="utf-8")
    return [f"{STATE_FOLDER}/{p.name}" for p in sorted(state.iterdir())]


def _geometry_encoding(frame: pd.DataFrame) -> dict:
    """GeoParquet's native point encoding (coordinates as numbers, GeoParquet 1.1) for a table
    of points only, such as the police.uk points (a million at 6 M rows: WKB made every point a
    blob); WKB, the default, for any other geometry. ``gpd.read_parquet`` reads both."""
    if not isinstance(frame, gpd.GeoDataFrame) or not len(frame):
        return {}
    kinds = shapely.get_type_id(frame.geometry.to_numpy())
    return {"geometry_encoding": "geoarrow"} if (kinds == 0).all() else {}


def _parquet_values(column: pd.Series) -> bool:
    """Whether Parquet stores an object column as it is (one type of value; not a mixture
    such as numbers and text, which it refuses)."""
    try:
        pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return False
    return True


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _published_columns(table: pd.DataFrame, columns: tuple[str, ...] | None) -> pd.DataFrame:
    """The columns of a layer table that publishing reads (see :data:`PUBLISHED_LAYERS`)."""
    geometry = [table.geometry.name] if isinstance(table, gpd.GeoDataFrame) else []
    keep = ([c for c in table.columns if c not in PROVENANCE_COLUMNS] if columns is None
            else [c for c in table.columns if c in columns or c in geometry])
    return table[keep]


def _study_json(study: Study) -> dict:
    """The study as JSON values (paths as text)."""
    def spec(s: LayerSpec) -> dict:
        return {"kind": s.kind, "paths": [str(p) for p in s.paths], "options": s.options}

    return {"path": str(study.path) if study.path else None, "name": study.name, "borough": study.borough,
            "period": list(study.period) if study.period else None, "seed": study.seed, "demo": study.demo,
            "sources": list(study.sources), "boundaries": spec(study.boundaries),
            "layers": {kind: spec(s) for kind, s in study.layers.items()},
            "clusters": study.clusters.model_dump(mode="json"), "gaps": study.gaps.model_dump(mode="json"),
            "publish": study.publish.model_dump(mode="json"), "engine": study.engine, "scheduler": study.scheduler}


def _json_value(value: Any) -> Any:
    """JSON for the numpy and pandas values the manifest sections hold."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (Path, os.PathLike)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if value is pd.NA:
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ---------------------------------------------------------------------------------------------
# The inputs' fingerprints
# ---------------------------------------------------------------------------------------------

def input_paths(study: Study) -> list[Path]:
    """Every file or folder the study reads: the study file, the boundaries and every layer
    (with their lookup or small-area files), the walking network and the postcodes."""
    paths = [study.path] if study.path is not None else []
    for spec in [study.boundaries, *study.layers.values()]:
        paths.extend(spec.paths)
        for key in PATH_OPTIONS:
            value = spec.options.get(key)
            paths.extend(Path(v) for v in ([] if value is None else value if isinstance(value, list) else [value]))
    paths.extend(Path(getattr(study.gaps, key)) for key in GAP_PATH_KEYS if getattr(study.gaps, key))
    return list(dict.fromkeys(paths))


def input_fingerprints(study: Study) -> dict[str, Any]:
    """Size and modification time (ns) of every input, by path.

    Size and time, not a hash: they cost microseconds where hashing London's inputs costs
    seconds on every republish, and they change whenever a file is edited, replaced or
    downloaded again (a mere ``touch`` also counts as a change: the safe side). A folder's
    entry lists every file under it, so an added or removed file counts too; hidden files
    (caches, editors' temporaries) are left out.

    Returns
    -------
    dict
        Path -> ``[size, mtime_ns]`` for a file, ``{relative path: [size, mtime_ns]}`` for a
        folder, ``None`` for a path that does not exist.
    """
    return {str(p): _fingerprint(p) for p in input_paths(study)}


def _fingerprint(path: Path) -> Any:
    try:
        if path.is_dir():
            found = {}
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(f for f in files if not f.startswith(".")):
                    full = Path(root) / name
                    stat = full.stat()
                    found[str(full.relative_to(path))] = [stat.st_size, stat.st_mtime_ns]
            return found
        stat = path.stat()
        return [stat.st_size, stat.st_mtime_ns]
    except OSError:
        return None


def changed_input(saved: dict[str, Any]) -> str | None:
    """The first recorded input that is not as it was, in words, or ``None``."""
    for path, before in saved.items():
        now = _fingerprint(Path(path))
        if now == before:
            continue
        if now is None:
            return f"input '{path}' is gone"
        if isinstance(before, dict) and isinstance(now, dict):
            names = sorted(set(before) ^ set(now)) or sorted(k for k in now if now[k] != before[k])
            return f"input folder '{path}' changed ('{names[0]}')"
        return f"input '{path}' changed"
    return None


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------

def has_state(folder: Path) -> bool:
    """Whether ``folder`` holds a saved-run state."""
    return (Path(folder) / STATE_FOLDER / STATE_FILE).is_file()


def read_state(folder: Path) -> SavedRun:
    """Read the saved-run state of an output folder, checking that it can be republished.

    Parameters
    ----------
    folder
        An output folder written by ``geomisuse run`` (or ``demo``, ``clusters --out``,
        ``gaps --out``).

    Returns
    -------
    SavedRun

    Raises
    ------
    InputError
        No state in the folder, a state of another format version or damaged, or an input
        that changed since the run: each says to re-run ``geomisuse run``.
    """
    folder = Path(folder)
    rerun = "re-run 'geomisuse run STUDY --out FOLDER' (or give the study file instead of the folder)"
    path = folder / STATE_FOLDER / STATE_FILE
    if not path.is_file():
        raise InputError(f"no saved run here ({STATE_FOLDER}/{STATE_FILE} is missing: the folder was not written by "
                         f"'geomisuse run' of this version); {rerun}", folder)
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
        version = description.get("format_version")
    except (OSError, ValueError, AttributeError):
        raise InputError(f"the saved run cannot be read; {rerun}", path) from None
    if version != FORMAT_VERSION:
        raise InputError(f"the saved run has format version {version} and this geomisuse ({__version__}) reads "
                         f"version {FORMAT_VERSION}; {rerun}", folder)
    changed = changed_input(description["inputs"])
    if changed:
        raise InputError(f"the saved run is out of date: {changed} since the run; {rerun}", folder)
    try:
        tables = {name: _read_table(folder / STATE_FOLDER / f"{name}.parquet", info)
                  for name, info in description["tables"].items()}
    except (OSError, ValueError) as err:
        raise InputError(f"the saved run's tables cannot be read ({err}); {rerun}", folder) from None
    study = _study_from_json(description["study"])
    layers = {kind: LayerResult(kind=kind, paths=[Path(p) for p in entry["paths"]],
                                table=tables[entry["table"]] if "table" in entry else pd.DataFrame(), rows_read=0)
              for kind, entry in description["layers"].items()}
    fields = {name: tables.get(name) for name in RUN_TABLES}
    fields.update(study=study, months=description["months"], measures=description["measures"],
                  sources=description["sources"], layers=layers, manifest=description["manifest"],
                  warnings=description["warnings"], neighbours=description["neighbours"])
    return SavedRun(run_fields=fields, settings=PublishSettings.model_validate(description["settings"], strict=False),
                    geomisuse_version=description["geomisuse_version"])


def _read_table(path: Path, info: dict) -> pd.DataFrame:
    frame = gpd.read_parquet(path) if info["geo"] else pd.read_parquet(path)
    for column in info["object_columns"]:
        values = frame[column].astype(object)
        frame[column] = values.where(values.notna(), None)
    return frame


def _study_from_json(data: dict) -> Study:
    def spec(s: dict) -> LayerSpec:
        return LayerSpec(kind=s["kind"], paths=[Path(p) for p in s["paths"]], options=s["options"])

    return Study(path=Path(data["path"]) if data["path"] else None, name=data["name"], borough=data["borough"],
                 period=tuple(data["period"]) if data["period"] else None, seed=data["seed"], demo=data["demo"],
                 sources=data["sources"], boundaries=spec(data["boundaries"]),
                 layers={kind: spec(s) for kind, s in data["layers"].items()},
                 clusters=ClusterSettings.model_validate(data["clusters"], strict=False),
                 gaps=GapSettings.model_validate(data["gaps"], strict=False),
                 publish=PublishSettings.model_validate(data["publish"], strict=False),
                 engine=data["engine"], scheduler=data["scheduler"])
