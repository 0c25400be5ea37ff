"""police.uk archives on Dask: many monthly files as partitions, joined to wards and counted
where they are read, so that memory follows a few files per worker however many years there are.

Each partition is one CSV (a file, or a member of a zip). A worker reads it with the same
code as the local engine (:func:`~geomisuse.layers.police_uk.read_police_file`), makes the
points with the same checks (:func:`~geomisuse.layers.base.points_from_table`), finds their
wards with the picklable :class:`~geomisuse.layers.ward_join.WardLocator` (sent to each
worker once) and returns only what the study needs: counts per ward, month and measure, the
rows it excluded (by reason) and the rows it rejected (file, row, reason). The client puts
these together into a ward-level police.uk layer (``ward_code, month, measure, count``)
whose accounting is the local engine's, row for row.

Two differences from the local engine, both because the points stay on the workers: the
layer's table holds counts rather than points (the map has no police.uk heat layer), and a
file whose longitude and latitude are mostly swapped is refused on its own (locally the test
looks at all files together).

The cluster is the one at ``[study] scheduler`` (a ``tcp://host:8786`` address) or, without
one, a :class:`distributed.LocalCluster` of worker processes started for the run.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from ..config import LayerSpec
from ..errors import InputError
from .base import REJECT_COLUMNS, LayerResult, LoadContext, month_column_error, points_from_table
from .police_uk import Tally, csv_files, read_member, read_police_file
from .ward_join import OUTSIDE, WardLocator

#: Columns of what a partition returns: one row per count, exclusion reason or rejected row.
_RECORD_COLUMNS = ["record", "ward", "month", "measure", "reason", "file", "row", "count", "column"]


def load_police_uk_dask(spec: LayerSpec, context: LoadContext, locator: WardLocator, ward_codes: np.ndarray,
                        scheduler: str | None = None) -> LayerResult:
    """Load a police.uk archive on Dask, counted by ward, month and measure.

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

    Returns
    -------
    LayerResult
        ``table``: ``ward_code``, ``month``, ``measure``, ``count`` (one row per ward, month and
        measure with points); accounting as the local engine's, with points outside every
        ward rejected as ``outside the study area``.
    """
    import dask
    import dask.dataframe as dd

    files = list(csv_files(spec.paths))
    if not files:
        raise InputError("no CSV files found; point police_uk at a CSV, a folder of CSVs or a zip",
                         spec.paths[0])
    with _client(scheduler) as client:
        shared = client.scatter(locator, broadcast=True)
        parts = [dask.delayed(_partition)(name, path, member, spec, context, shared)
                 for name, path, member in files]
        meta = pd.DataFrame({c: pd.Series(dtype="int64" if c in ("ward", "row", "count") else object)
                             for c in _RECORD_COLUMNS})
        records = dd.from_delayed(parts, meta=meta, verify_meta=False)
        kind = records["record"]
        counted = records[kind == "count"]
        # One pass over the files: every result below comes from the same partitions.
        tallies, counts, excluded, rejected, months = dask.compute(
            records[kind == "tally"],
            counted.groupby(["ward", "month", "measure"])["count"].sum(),
            records[kind == "excluded"].groupby("reason")["count"].sum(),
            records[kind == "rejected"][["file", "row", "reason"]],
            records.loc[kind == "month", "month"].unique())
        counts = counts.reset_index()

    dated = int(tallies.loc[tallies["reason"] == "dated", "count"].sum())
    undated = tallies[tallies["reason"] == "undated"]
    if len(undated) and dated < (dated + int(undated["count"].sum())) / 2:
        first = undated.iloc[0]  # files in reading order: the first undated row of the first file with one
        raise month_column_error(first["month"], first["file"], int(first["row"]), first["column"])
    # Rejected rows in the local engine's order: by reason in the order the checks run, then file order.
    order = {name: k for k, (name, _, _) in enumerate(files)}
    reasons = ["unparseable month", "no coordinates", "unparseable coordinates", "longitude and latitude swapped",
               "coordinates outside Great Britain", "outside the study area"]
    rejected = rejected.assign(_reason=rejected["reason"].map({r: k for k, r in enumerate(reasons)}).fillna(len(reasons)),
                               _file=rejected["file"].map(order))
    rejected = rejected.sort_values(["_reason", "_file", "row"], kind="stable")
    table = pd.DataFrame({"ward_code": ward_codes[counts["ward"].to_numpy()], "month": counts["month"],
                          "measure": counts["measure"], "count": counts["count"].astype("int64")})
    table = table.sort_values(["ward_code", "month", "measure"], kind="stable").reset_index(drop=True)
    layer = LayerResult("police_uk", sorted({path for _, path, _ in files}), table,
                        rows_read=int(tallies.loc[tallies["reason"] == "read", "count"].sum()),
                        excluded={str(k): int(v) for k, v in excluded.items()}, months=sorted(months))
    if len(rejected):
        layer.rejected = pd.DataFrame({"layer": "police_uk", "file": rejected["file"].to_numpy(),
                                       "row": rejected["row"].to_numpy(dtype="int64"),
                                       "reason": rejected["reason"].to_numpy()})[REJECT_COLUMNS]
    return layer


def _partition(name: str, path: Path, member: str | None, spec: LayerSpec, context: LoadContext,
               locator: WardLocator) -> pd.DataFrame:
    """One file on a worker: read, account, make points, find wards, count (see the module).

    Returns the file's records (:data:`_RECORD_COLUMNS`): ``count`` rows (ward position,
    month, measure, count), ``excluded`` rows (reason, count), ``rejected`` rows (file, row,
    reason), ``month`` rows (months with a dated row) and ``tally`` rows (rows ``read``,
    ``dated`` and ``undated``, the last with the first undated value, file, row and column).
    """
    tally = Tally()
    frame = read_police_file(path, spec, context, tally, raw=read_member(path, member), name=name)
    x_column, y_column = tally.coordinate_columns
    layer = LayerResult("police_uk", [path], frame.rename(columns={"longitude": x_column, "latitude": y_column}),
                        rows_read=tally.rows_read)
    points_from_table(layer, x_column, y_column, lonlat=True)
    points = layer.table
    position = locator.locate(points.geometry.x.to_numpy(), points.geometry.y.to_numpy())
    layer.reject(points[position == OUTSIDE], "outside the study area")
    inside = position != OUTSIDE
    counted = (pd.DataFrame({"ward": position[inside], "month": points["month"].to_numpy()[inside],
                             "measure": points["measure"].to_numpy()[inside]})
               .groupby(["ward", "month", "measure"], observed=True).size().rename("count").reset_index())
    rejected = pd.concat([*tally.rejected, layer.rejected], ignore_index=True)
    tallies = pd.DataFrame({"reason": ["read", "dated"], "count": [tally.rows_read, tally.dated_rows]})
    if tally.undated_rows:
        value, label, row = tally.first_undated
        tallies = pd.concat([tallies, pd.DataFrame({"reason": ["undated"], "count": [tally.undated_rows],
                                                    "month": [value], "file": [label], "row": [row],
                                                    "column": [tally.month_column]})], ignore_index=True)
    parts = [
        counted.assign(record="count"),
        pd.DataFrame({"record": "excluded", "reason": list(tally.excluded), "count": list(tally.excluded.values())}),
        pd.DataFrame({"record": "month", "month": sorted(tally.months)}),
        rejected[["file", "row", "reason"]].assign(record="rejected"),
        tallies.assign(record="tally"),
    ]
    records = pd.concat([p for p in parts if len(p)], ignore_index=True).reindex(columns=_RECORD_COLUMNS)
    for column in ("ward", "row", "count"):
        records[column] = pd.to_numeric(records[column]).fillna(-1).astype("int64")
    for column in ("record", "month", "measure", "reason", "file", "column"):
        records[column] = records[column].astype(object)
    return records


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
