"""Benchmark of the emerging hot spot analysis (not a timed test).

    python benchmarks/bench_emerging.py

704 real London wards (ONS 2022 BSC boundaries from the shared real-data folder, queen
neighbours), 36 monthly steps, 4 measures: seeded synthetic Poisson counts with a smooth
east-west gradient and a slow rise in part of the map. Prints the time of the emerging hot
spot analysis (space-time Gi*, FDR over 25,344 bins a measure, Mann-Kendall on z and counts,
categories) and of a whole process doing it (interpreter start and imports included).
Target: under 5 s for the analysis.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARDS = ROOT.parent / "shared" / "data" / "real" / "boundaries" / "ons_wards2022_london_bsc_simplified.gpkg"
MEASURES = ("possession", "trafficking", "drug_offences", "asb")
STEPS = 36


def child() -> None:
    """Build the inputs, then time the analysis alone; print the figures."""
    import geopandas as gpd
    import numpy as np
    import pandas as pd

    from geomisuse.clusters.emerging import find_emerging_hotspots
    from geomisuse.clusters.weights import build_neighbours

    wards = gpd.read_file(WARDS).to_crs("EPSG:27700")
    wards = wards.rename(columns={"ward22_code": "ward_code", "ward22_name": "ward_name"})
    wards = wards.sort_values("ward_code").reset_index(drop=True)
    rng = np.random.default_rng(20261122)
    wards["population"] = rng.integers(6000, 20000, len(wards)).astype(float)
    east = ((wards.centroid.x - wards.centroid.x.min()) / (wards.centroid.x.max() - wards.centroid.x.min())).to_numpy()
    months = [f"{2022 + m // 12}-{m % 12 + 1:02d}" for m in range(STEPS)]
    monthly = pd.DataFrame({"ward_code": np.tile(wards["ward_code"], STEPS), "month": np.repeat(months, len(wards))})
    trend = np.linspace(0.8, 1.2, STEPS)[:, None] * (east > 0.7)[None, :] + (east <= 0.7)[None, :]
    for i, measure in enumerate(MEASURES):
        expected = (wards["population"].to_numpy() / 12_000 * (1 + i) * (0.5 + east))[None, :] * trend
        monthly[f"{measure}_count"] = rng.poisson(expected).ravel().astype(float)
    mark = time.perf_counter()
    neighbours = build_neighbours(wards, "queen")
    build = time.perf_counter() - mark
    mark = time.perf_counter()
    result = find_emerging_hotspots(wards, monthly, months, list(MEASURES), neighbours.adjacency)
    analysis = time.perf_counter() - mark
    counts = {m: result.manifest["by_measure"][m]["category_counts"] for m in MEASURES}
    print(f"wards {len(wards)}, steps {STEPS}, measures {len(MEASURES)}, bins tested "
          f"{sum(r['bins_tested'] for r in result.manifest['by_measure'].values()):,}")
    print(f"queen neighbours: {build:.2f} s")
    print(f"find_emerging_hotspots (4 measures): {analysis:.2f} s  (target < 5 s)")
    print(f"categories (possession): {counts['possession']}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child()
        return
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--child"], check=True, cwd=ROOT,
                   env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    print(f"fresh process, wall time incl. interpreter, imports and reading the boundaries: "
          f"{time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
