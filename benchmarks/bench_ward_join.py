"""Benchmark: the point-to-ward join on a generated police.uk-format file of 1 million rows.

Compares geomisuse's grid-indexed join (:mod:`geomisuse.ward_join`) with a plain
``geopandas.sjoin`` on the same points and wards (all 657 full-resolution London wards of
2018, from ../shared/data/real). Each method runs in its own fresh process so that peak
memory (max RSS) is its own. Prints rows per second and peak memory.

    python benchmarks/bench_ward_join.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARDS = ROOT.parent / "shared" / "data" / "real" / "boundaries" / "gla_london_wards_2018.gpkg"
HEADER = ("Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Crime type,"
          "Last outcome category,Context")


def generate(path: Path, rows: int, seed: int = 1) -> None:
    """Write a police.uk-format CSV of ``rows`` Drugs/ASB rows at snap points over London."""
    import geopandas as gpd
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    wards = gpd.read_file(WARDS).to_crs("EPSG:4326")
    minx, miny, maxx, maxy = wards.total_bounds
    # police.uk snaps crimes to a fixed set of street points; 200,000 distinct points here.
    snaps = np.column_stack([rng.uniform(minx, maxx, 200_000), rng.uniform(miny, maxy, 200_000)])
    pick = rng.integers(0, len(snaps), rows)
    frame = pd.DataFrame({
        "Crime ID": "", "Month": rng.choice([f"2025-{m:02d}" for m in range(1, 13)], rows),
        "Reported by": "Metropolitan Police Service", "Falls within": "Metropolitan Police Service",
        "Longitude": np.round(snaps[pick, 0], 6), "Latitude": np.round(snaps[pick, 1], 6),
        "Location": "On or near Test Street", "LSOA code": "", "LSOA name": "",
        "Crime type": rng.choice(["Drugs", "Anti-social behaviour"], rows), "Last outcome category": "",
        "Context": ""})
    frame.to_csv(path, index=False)


class RssSampler:
    """Samples this process's resident memory every 5 ms from a thread (peak of the join alone;
    ru_maxrss would show the earlier peak of reading the CSV)."""

    def __init__(self) -> None:
        self.start_mb = self.peak_mb = self._rss_mb()
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    @staticmethod
    def _rss_mb() -> float:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * resource.getpagesize() / 2**20

    def _sample(self) -> None:
        while self._running:
            self.peak_mb = max(self.peak_mb, self._rss_mb())
            time.sleep(0.005)

    def stop(self) -> None:
        self._running = False
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss_mb())


def measure(method: str, path: Path) -> dict:
    """Run one method in this process: read points, join, count per ward."""
    import geopandas as gpd
    import numpy as np
    import pandas as pd

    frame = pd.read_csv(path, usecols=["Longitude", "Latitude"])
    wards = gpd.read_file(WARDS).to_crs("EPSG:27700").sort_values("GSS_CODE").reset_index(drop=True)
    points = gpd.GeoSeries(gpd.points_from_xy(frame["Longitude"], frame["Latitude"]), crs="EPSG:4326") \
        .to_crs("EPSG:27700")
    x, y = points.x.to_numpy(), points.y.to_numpy()
    rows = len(frame)
    sampler = RssSampler()
    start = time.perf_counter()
    if method == "loader":
        # For context: the whole police.uk loader (decode, validate, accounting, points in EPSG:27700).
        from geomisuse.layers.base import LoadContext
        from geomisuse.layers.police_uk import load_police_uk
        from geomisuse.config import LayerSpec

        layer = load_police_uk(LayerSpec("police_uk", [path]), LoadContext(frozenset(), {}, None))
        built, counts = start, np.array([layer.rows_used])
    elif method == "geomisuse":
        from geomisuse.layers.ward_join import WardLocator

        locator = WardLocator(wards.geometry.to_numpy())
        built = time.perf_counter()
        position = locator.locate(x, y)
        counts = np.bincount(position[position >= 0], minlength=len(wards))
    else:
        built = start
        joined = gpd.sjoin(gpd.GeoDataFrame(geometry=points), wards[["geometry"]], predicate="intersects")
        # One ward per point, as geomisuse does, for the same answer.
        first = joined.groupby(level=0)["index_right"].min()
        counts = np.bincount(first.to_numpy(), minlength=len(wards))
    elapsed = time.perf_counter() - start
    sampler.stop()
    return {"method": method, "rows": rows, "seconds": elapsed, "index_seconds": built - start,
            "rows_per_second": rows / elapsed, "counted": int(counts.sum()),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "join_extra_mb": sampler.peak_mb - sampler.start_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--method", choices=["geomisuse", "sjoin", "loader"], help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        print(json.dumps(measure(args.method, args.file)))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "police-uk-1m.csv"
        generate(path, args.rows)
        print(f"file: {args.rows:,} police.uk rows, {path.stat().st_size / 1e6:.0f} MB; wards: {WARDS.name}")
        results = []
        for method in ("geomisuse", "sjoin", "loader"):
            out = subprocess.run([sys.executable, __file__, "--method", method, "--file", str(path)],
                                 capture_output=True, text=True, check=True, env={"PYTHONPATH": str(ROOT)})
            results.append(json.loads(out.stdout))
    loader = results.pop()
    print(f"(context) police.uk loader, read to validated points: {loader['seconds']:.2f} s, "
          f"{loader['rows_per_second'] / 1e6:.2f} M rows/s")
    for r in results:
        print(f"{r['method']:>10}: join {r['seconds']:.2f} s (index {r['index_seconds']:.2f} s), "
              f"{r['rows_per_second'] / 1e6:.2f} M rows/s, counted {r['counted']:,}, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB (whole process, incl. reading the CSV); "
              f"RSS growth during the join +{r['join_extra_mb']:.0f} MB (memory freed earlier may be reused)")
    assert results[0]["counted"] == results[1]["counted"], "the two joins disagree"
    print(f"speed-up: {results[1]['seconds'] / results[0]['seconds']:.1f}x (index build included)")


if __name__ == "__main__":
    main()
