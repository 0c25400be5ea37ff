"""police.uk archives on Dask: many monthly files as partitions, joined to wards and counted
where they are read, so that memory follows a few files per worker however many years there are.

Each partition is one CSV (a file, or a member of a zip), one task on the cluster. A worker
reads it with the local engine's code (:func:`~geomisuse.layers.police_uk.read_police_file`,
its own :class:`~geomisuse.layers.police_uk.Tally`), makes the points with the same checks
(:func:`~geomisuse.layers.base.points_from_table`), finds their wards with the picklable
:class:`~geomisuse.layers.ward_join.WardLocator` (sent to each worker once) and returns a
:class:`FilePart`: the file's content digest, its tally, its rejected rows (row numbers by
reason), how many of its coordinates look swapped, and its points counted by ward, month,
measure and heat-map cell. No point leaves the worker.

The client then does what the local engine does with the whole layer, with the same code and
in the same order: it passes over copies of a file already read (:class:`~geomisuse.layers.
police_uk.Copies`), raises the first file's reading error, adds the tallies up in reading order
and refuses two files of one force-month, a wrong month column and mostly swapped coordinates
over all files together, and checks that the coordinates fit the study area as read (the
pipeline's placement check, from the files' counts); it finds the police force's area from ``covers`` or the files'
``Falls within`` and excludes counts in wards outside it. The layer's table holds counts per
ward, month, measure and heat cell (``ward_code, month, measure, cell, count``), from which
the ward table counts as from points and the map draws the local engine's heat layer.

The cluster is the one at ``[study] scheduler`` (a ``tcp://host:8786`` address) or, without
one, a :class:`distributed.LocalCluster` of worker processes started for the run.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import shapely

from ..config import LayerSpec
from ..errors import InputError
from ..progress import progress
from .base import (REJECT_COLUMNS, LayerResult, LoadContext, judge_placement, placement_counts,
                   points_from_table, refuse_swapped, remember_sha256)
from .heat_cells import cell_keys
from .police_uk import (Copies, Tally, check_month_column, csv_files, force_area_wards, no_files_error,
                        read_police_file, read_source, refuse_shared_force_months, tally_force_area)
from .ward_join import OUTSIDE, WardLocator

#: Reasons of rejected rows in the order the local engine rejects them (reading, then the
#: coordinate checks of :func:`~geomisuse.layers.base.points_from_table`, then the ward join);
#: its rejected table lists them by reason in this order, each in reading order of the files.
REJECT_ORDER = ("unparseable month", "no coordinates", "unparseable coordinates", "longitude and latitude swapped",
                "coordinates outside Great Britain", "outside the study area")

#: The excluded-rows reason of crimes a force records in the other force's wards (as the
#: local engine's ward join words it).
OUTSIDE_FORCE_AREA = "in a ward outside the police force's area"


@dataclass
class FilePart:
    """What a worker returns for one file: enough for the client to do with the whole layer
    what the local engine does, and nothing per point.

    Attributes
    ----------
    name
        The file's name as the local engine records it (``path`` or ``zip:member``).
    digest
        SHA-256 of its bytes (a copy of a file already read is read once).
    error
        The :class:`InputError` reading it raised (the client raises the first file's).
    tally
        Its rows read, excluded by reason, months and force-months (``rejected`` left empty:
        the rejected rows are in ``rejected``).
    rejected
        Reason -> the rejected rows' numbers (``source_row``, ascending).
    analysed
        Rows that reached the coordinate checks (the swapped refusal names the layer's first
        file with any).
    with_coordinates, swapped
        Rows with parsed coordinates, and how many of them look swapped.
    near
        Of those, the rows near the study wards under each reading of the columns
        (:func:`~geomisuse.layers.base.placement_counts`), for the placement check.
    counts
        Points in the study wards by ``ward`` (position in the locator), ``month``,
        ``measure``, ``cell`` (heat cell key) and ``count``.
    stat
        Size and modification time of a plain file as hashed (``None`` for a zip member): the
        manifest's checksum is then ``digest``, not read again on the client.
    """

    name: str
    digest: str
    error: InputError | None = None
    tally: Tally = field(default_factory=Tally)
    rejected: dict[str, np.ndarray] = field(default_factory=dict)
    analysed: int = 0
    with_coordinates: int = 0
    swapped: int = 0
    near: dict[tuple[str, bool], int] = field(default_factory=dict)
    counts: pd.DataFrame | None = None
    stat: tuple[int, int] | None = None


def load_police_uk_dask(spec: LayerSpec, context: LoadContext, locator: WardLocator, ward_codes: np.ndarray,
                        scheduler: str | None = None, boroughs: Sequence[str | None] | None = None) -> LayerResult:
    """Load a police.uk archive on Dask, counted by ward, month, measure and heat cell.

    Parameters
    ----------
    spec, context
        As for :func:`~geomisuse.layers.police_uk.load_police_uk`.
    locator
        The study's ward locator; ``ward_codes[position]`` is the code of a located ward.
    ward_codes
        Ward codes in the locator's order.
    scheduler
        Address of an existing Dask scheduler; ``None`` starts a local cluster for this call.
    boroughs
        The wards' borough names in the same order (``None`` for unknown), for the police
        force's area; ``None``: no ward's borough is known.

    Returns
    -------
    LayerResult
        ``table``: ``ward_code``, ``month``, ``measure``, ``cell`` (the heat cell key of
        :func:`~geomisuse.layers.heat_cells.cell_keys`) and ``count``; accounting, warnings,
        months, ``covers_borough`` and ``wards`` as the local engine's after its ward join,
        with points outside every ward rejected as ``outside the study area``.
    """
    files = list(csv_files(spec.paths))
    if not files:
        raise no_files_error(spec)
    # Workers need the period only; the ward polygons would travel with every task.
    slim = replace(context, ward_geometry=None)
    with _client(scheduler) as client:
        shared_spec, shared_context, shared_locator = (client.scatter(item, broadcast=True)
                                                       for item in (spec, slim, locator))
        futures = client.map(_partition, [n for n, _, _ in files], [p for _, p, _ in files],
                             [m for _, _, m in files], spec=shared_spec, context=shared_context,
                             locator=shared_locator, pure=False)
        _progress(client, futures)
        parts: list[FilePart] = client.gather(futures)
    return combine_parts(spec, parts, [path for _, path, _ in files], ward_codes, boroughs)


def combine_parts(spec: LayerSpec, parts: list[FilePart], paths: list[Path], ward_codes: np.ndarray,
                  boroughs: Sequence[str | None] | None) -> LayerResult:
    """The layer from the files' parts, in reading order, with the local engine's whole-layer
    checks in its order (see the module).

    Parameters
    ----------
    spec
        The layer's settings.
    parts, paths
        Each file's :class:`FilePart` and source path (the zip for a member), in reading order.
    ward_codes, boroughs
        As for :func:`load_police_uk_dask`.

    Returns
    -------
    LayerResult
        See :func:`load_police_uk_dask`.
    """
    copies = Copies()
    kept: list[FilePart] = []
    read_paths = []
    for part, path in zip(parts, paths):
        if part.stat is not None:
            remember_sha256(path, *part.stat, part.digest)
        if copies.is_copy(part.name, part.digest):
            continue
        if part.error is not None:
            raise part.error  # the local engine stops at the first file it cannot read
        kept.append(part)
        read_paths.append(path)
    tally = Tally()
    for part in kept:
        tally.add(part.tally)
    refuse_shared_force_months(tally, spec)
    check_month_column(tally)
    first = next((part.name for part in kept if part.analysed), "")
    x_column, y_column = tally.coordinate_columns
    refuse_swapped(sum(p.swapped for p in kept), sum(p.with_coordinates for p in kept), x_column, y_column, first)

    table = _counts_table([p.counts for p in kept if p.counts is not None and len(p.counts)], ward_codes)
    layer = LayerResult("police_uk", sorted(set(read_paths)), table, rows_read=tally.rows_read,
                        excluded=dict(tally.excluded), months=sorted(tally.months))
    layer.rejected = _rejected(kept)
    layer.warnings.extend(copies.warnings)
    layer.covers_borough = tally_force_area(tally, spec)
    if layer.covers_borough is not None:
        # As the local engine's ward join: the force's wards are its coverage; its crimes
        # recorded in other wards are excluded (and wards outside every force's area read no data).
        known = boroughs if boroughs is not None else [None] * len(ward_codes)
        layer.wards = force_area_wards(ward_codes, known, layer.covers_borough)
        outside = ~table["ward_code"].isin(layer.wards).to_numpy()
        if outside.any():
            layer.excluded[OUTSIDE_FORCE_AREA] = layer.excluded.get(OUTSIDE_FORCE_AREA, 0) + \
                int(table["count"].to_numpy()[outside].sum())
            layer.table = table[~outside].reset_index(drop=True)
    # The pipeline's placement check of a point layer (check_placement, after loading), from the
    # files' counts: the layer keeps no coordinates to check.
    near: dict[tuple[str, bool], int] = {}
    for part in kept:
        for reading, count in part.near.items():
            near[reading] = near.get(reading, 0) + count
    judge_placement(near, sum(p.with_coordinates for p in kept), True, x_column, y_column, first)
    return layer


def _counts_table(frames: list[pd.DataFrame], ward_codes: np.ndarray) -> pd.DataFrame:
    """The files' counts as one table (``ward_code``, ``month``, ``measure``, ``cell``,
    ``count``), sorted; months and measures as categoricals, as the local engine's points."""
    if not frames:
        return pd.DataFrame({"ward_code": pd.Series(dtype=object), "month": pd.Categorical([]),
                             "measure": pd.Categorical([]), "cell": pd.Series(dtype="int64"),
                             "count": pd.Series(dtype="int64")})
    union = pd.api.types.union_categoricals
    table = pd.DataFrame({
        "ward": np.concatenate([f["ward"].to_numpy() for f in frames]),
        "month": union([f["month"] for f in frames], sort_categories=True),
        "measure": union([f["measure"] for f in frames], sort_categories=True),
        "cell": np.concatenate([f["cell"].to_numpy() for f in frames]),
        "count": np.concatenate([f["count"].to_numpy() for f in frames]),
    })
    # Files of one month from several forces count in the same cells: one row each.
    table = (table.groupby(["ward", "month", "measure", "cell"], observed=True, sort=True)["count"].sum()
             .reset_index())
    return pd.DataFrame({"ward_code": np.asarray(ward_codes, dtype=object)[table["ward"].to_numpy()],
                         "month": table["month"], "measure": table["measure"],
                         "cell": table["cell"].to_numpy(), "count": table["count"].to_numpy(dtype="int64")})


def _rejected(parts: list[FilePart]) -> pd.DataFrame:
    """The files' rejected rows in the local engine's order: by reason (:data:`REJECT_ORDER`,
    any other after them), then by file in reading order, then by row."""
    found = {reason for part in parts for reason in part.rejected}
    reasons = [r for r in REJECT_ORDER if r in found] + sorted(found - set(REJECT_ORDER))
    files, rows, why = [], [], []
    for reason in reasons:
        for part in parts:
            numbers = part.rejected.get(reason)
            if numbers is not None and len(numbers):
                rows.append(numbers)
                # One name object per file, repeated by reference (millions of rows share a few).
                files.append(np.full(len(numbers), part.name, dtype=object))
                why.append(np.full(len(numbers), reason, dtype=object))
    if not rows:
        return pd.DataFrame(columns=REJECT_COLUMNS)
    return pd.DataFrame({"layer": "police_uk", "file": np.concatenate(files),
                         "row": np.concatenate(rows).astype("int64"), "reason": np.concatenate(why)})[REJECT_COLUMNS]


def _partition(name: str, path: Path, member: str | None, spec: LayerSpec, context: LoadContext,
               locator: WardLocator) -> FilePart:
    """One file on a worker: read, account, make points, find wards, count (see the module).

    Reading errors are returned, not raised: the client raises the first file's, as the local
    engine would (a worker's traceback would also reach the console as more than one line).
    """
    source = read_source(name, path, member)
    part = FilePart(name=name, digest=source.digest, stat=source.stat)
    tally = part.tally
    try:
        frame = read_police_file(path, spec, context, tally, raw=source.raw, name=name, text_columns=False)
        del source
        x_column, y_column = tally.coordinate_columns
        layer = LayerResult("police_uk", [path], frame.rename(columns={"longitude": x_column, "latitude": y_column}),
                            rows_read=tally.rows_read)
        part.analysed = len(frame)
        # Swapped coordinates are judged over all files, by the client.
        points_from_table(layer, x_column, y_column, lonlat=True, judge_swapped=False)
    except InputError as err:
        part.error = err
        return part
    parsed = layer.coordinates
    part.with_coordinates = parsed.row_count
    part.swapped = parsed.swapped_rows()
    part.near = placement_counts(parsed.x, parsed.y, shapely.total_bounds(locator.polygons), parsed.rows)
    points = layer.table
    x, y = points.geometry.x.to_numpy(), points.geometry.y.to_numpy()
    position = locator.locate(x, y)
    inside = position != OUTSIDE
    layer.reject(points[~inside], "outside the study area")
    part.counts = (pd.DataFrame({"ward": position[inside].astype(np.int32),
                                 "month": pd.Categorical(points["month"].to_numpy()[inside]),
                                 "measure": pd.Categorical(points["measure"].to_numpy()[inside]),
                                 "cell": cell_keys(x[inside], y[inside])})
                   .groupby(["ward", "month", "measure", "cell"], observed=True).size().rename("count")
                   .reset_index())
    rejected = pd.concat([*tally.rejected, layer.rejected], ignore_index=True)
    tally.rejected = []
    part.rejected = {str(reason): rows["row"].to_numpy(dtype="int64")
                     for reason, rows in rejected.groupby("reason", sort=False)}
    return part


def _progress(client, futures: list) -> None:
    """A progress bar of the files done (on a terminal), waiting for them all."""
    from distributed import as_completed

    for _ in progress(as_completed(futures), "reading police.uk files", total=len(futures)):
        pass


@contextmanager
def _client(scheduler: str | None) -> Iterator:
    """A Dask client on the scheduler at ``scheduler``, or on a local cluster of worker
    processes (one per core, one thread each: the reading is already multi-threaded)."""
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    workers = max(1, min(os.cpu_count() or 1, 8))
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client
