"""Benchmark of the cluster stage on ~700 wards (not a timed test).

    python benchmarks/bench_clusters.py            # geomisuse.clusters in a fresh process
    python benchmarks/bench_clusters.py --esda     # also esda's Moran_Local / G_Local, for comparison
    /path/to/venv-with-numba/bin/python benchmarks/bench_clusters.py --esda   # esda with numba

The wards are the 704 real London wards of 2022 (ONS BSC boundaries, from the shared real-data
folder), reprojected to EPSG:27700, with seeded synthetic populations and counts for the four
measures. The parent process starts a fresh Python child and reports its wall time from
process start to exit (interpreter start and imports included); the child reports its steps.
Target: four measures, LISA and Gi* at the default permutation count, <= 3 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARDS = ROOT.parent / "shared" / "data" / "real" / "boundaries" / "ons_wards2022_london_bsc_simplified.gpkg"
MEASURES = ("possession", "trafficking", "drug_offences", "asb")


def child(breakdown_too: bool, with_esda: bool) -> dict:
    """What a fresh process does: the stage cold; then, if asked, a warm breakdown and esda."""
    steps = {}
    start = time.perf_counter()
    import geopandas as gpd
    import numpy as np
    steps["import numpy, pandas, geopandas"] = time.perf_counter() - start

    mark = time.perf_counter()
    from geomisuse.clusters import ClusterSettings, find_clusters
    from geomisuse.clusters import getisord, inference, moran, weights
    steps["import geomisuse.clusters"] = time.perf_counter() - mark

    mark = time.perf_counter()
    wards = gpd.read_file(WARDS).to_crs("EPSG:27700")
    wards = wards.rename(columns={"ward22_code": "ward_code", "ward22_name": "ward_name"})
    wards = wards.sort_values("ward_code").reset_index(drop=True)
    rng = np.random.default_rng(20261122)
    wards["population"] = rng.integers(6000, 20000, len(wards)).astype(float)
    wards["area_km2"] = wards.area / 1e6
    # A smooth east-west gradient plus noise, so there is some spatial structure to find.
    east = (wards.centroid.x - wards.centroid.x.min()) / (wards.centroid.x.max() - wards.centroid.x.min())
    for i, measure in enumerate(MEASURES):
        expected = wards["population"] / 1000 * (1.0 + i) * (0.5 + east.to_numpy()) * rng.gamma(4, 0.25, len(wards))
        wards[f"{measure}_count"] = rng.poisson(expected).astype(float)
        wards[f"{measure}_rate_per_1000"] = wards[f"{measure}_count"] / wards["population"] * 1000
    steps["read boundaries + synthetic data"] = time.perf_counter() - mark

    settings = ClusterSettings()
    mark = time.perf_counter()
    result = find_clusters(wards, settings, seed=20261122)
    steps["find_clusters (4 measures, cold)"] = time.perf_counter() - mark
    info = {"wards": len(wards), "measures": list(result.global_moran["measure"]),
            "permutations": result.manifest["permutations"], "global_permutations": settings.global_permutations,
            "mean_neighbours": result.manifest["weights"]["mean_neighbours"],
            "high_high": {m: len(v) for m, v in result.manifest["high_high"].items()}}
    if not breakdown_too:
        return {"steps": steps, "breakdown": {}, "info": info}

    # Breakdown, second pass (warm), with the stage's building blocks.
    breakdown = {}
    mark = time.perf_counter()
    neighbours = weights.build_neighbours(wards)
    breakdown["queen weights"] = time.perf_counter() - mark
    adjacency = neighbours.adjacency
    n = len(wards)
    permutations = inference.default_permutations(n, settings.alpha, settings.correction)
    mark = time.perf_counter()
    orderings = inference.draw_orderings(n, int(neighbours.cardinality.max()) + 1, permutations,
                                         np.random.default_rng(1))
    breakdown[f"draw {permutations} shared orderings"] = time.perf_counter() - mark
    for name, block in (
        ("global Moran, EB, 999 perm, x4", lambda y, c: moran.global_moran(
            moran.empirical_bayes_standardise(c, wards["population"].to_numpy()),
            weights.row_standardised(adjacency), 999, np.random.default_rng(2))),
        (f"LISA, {permutations} perm, x4", lambda y, c: moran.local_moran(y, adjacency, orderings)),
        ("Gi*, x4", lambda y, c: getisord.gi_star(y, weights.with_self(adjacency))),
    ):
        mark = time.perf_counter()
        for measure in MEASURES:
            block(wards[f"{measure}_rate_per_1000"].to_numpy(), wards[f"{measure}_count"].to_numpy())
        breakdown[name] = time.perf_counter() - mark

    if with_esda:
        import warnings
        warnings.simplefilter("ignore")
        mark = time.perf_counter()
        import esda
        from libpysal.weights import Queen
        breakdown["esda: import esda + libpysal"] = time.perf_counter() - mark
        w = Queen.from_dataframe(wards, use_index=False, silence_warnings=True)
        y = wards["possession_rate_per_1000"].to_numpy()
        for count in (999, 9999):
            mark = time.perf_counter()
            esda.Moran_Local(y, w, permutations=count, seed=1, n_jobs=1)
            breakdown[f"esda: Moran_Local {count} perm, 1st call"] = time.perf_counter() - mark
            mark = time.perf_counter()
            esda.Moran_Local(y, w, permutations=count, seed=1, n_jobs=1)
            breakdown[f"esda: Moran_Local {count} perm, 2nd call"] = time.perf_counter() - mark
        mark = time.perf_counter()
        esda.G_Local(y, w, star=True, transform="B", permutations=9999, seed=1, n_jobs=1)
        breakdown["esda: G_Local(star) 9999 perm"] = time.perf_counter() - mark
        try:
            import numba
            info["numba"] = numba.__version__
        except ImportError:
            info["numba"] = None
    return {"steps": steps, "breakdown": breakdown, "info": info}


def main() -> None:
    if "--child" in sys.argv:
        print(json.dumps(child("--breakdown" in sys.argv, "--esda" in sys.argv)))
        return
    if not WARDS.exists():
        sys.exit(f"real ward boundaries not found at {WARDS}")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    script = [sys.executable, str(Path(__file__).resolve()), "--child"]
    # 1. The measured run: a fresh process that imports, reads, runs the stage and exits.
    start = time.perf_counter()
    out = subprocess.run(script, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    report = json.loads(out.stdout.strip().splitlines()[-1])
    # 2. Another process for the warm breakdown (and esda), not part of the wall time.
    extra = ["--breakdown"] + (["--esda"] if "--esda" in sys.argv else [])
    out = subprocess.run(script + extra, env=env, capture_output=True, text=True, check=True)
    detail = json.loads(out.stdout.strip().splitlines()[-1])
    info = {**report["info"], **detail["info"]}
    print(f"cluster stage benchmark: {info['wards']} wards, measures {', '.join(info['measures'])}, "
          f"mean {info['mean_neighbours']} neighbours")
    print(f"  LISA permutations {info['permutations']}, global {info['global_permutations']}; "
          f"High-High wards per measure {info['high_high']}")
    print(f"fresh process wall time (interpreter start to exit): {wall:.2f} s")
    for name, seconds in report["steps"].items():
        print(f"  {name:<40} {seconds:6.2f} s")
    print("breakdown (separate process, steps after a first cold run):")
    for name, seconds in detail["breakdown"].items():
        print(f"  {name:<40} {seconds:6.2f} s")
    if "numba" in info:
        print(f"numba: {info['numba'] or 'not installed'}")


if __name__ == "__main__":
    main()
