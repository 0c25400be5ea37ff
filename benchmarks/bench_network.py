"""Benchmark of walking over real streets: Camden's OpenStreetMap extract.

Real inputs: ``camden.osm.pbf`` (Camden and a thin fringe), the 18 Camden wards (GLA 2014,
full resolution), every active NHS ODS pharmacy inside the network's extent. Each ward's
residents are 100 Halton points (area-weighted, seeded). Both service kinds are walked to:
the pharmacies as needle exchanges and, as treatment services, every fifth of them.

Phases, each timed:

1. reading the PBF with pyosmium (the walkable ways with their node locations);
2. building the walking graph (projection, deduplication, largest component) and writing the
   cache;
3. network access: snapping 1,800 resident points and the services, multi-source Dijkstra
   to the nearest of each kind, and the services within the 20-minute walk of each ward;
4. the same with the graph read from the cache, in a fresh process (the "rerun");
5. (context) isochrones of every service, and pyrosm's walking network when pyrosm is
   importable (it is not a dependency).

Run::

    PYTHONPATH=. python benchmarks/bench_network.py

Targets: build + access <= 10 s; cached rerun (cache read + access) <= 2 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
NETWORK = REAL / "networks" / "camden.osm.pbf"


def inputs():
    """Camden's wards (EPSG:27700, by code) and the service layers by kind."""
    import geopandas as gpd
    import pandas as pd

    wards = gpd.read_file(REAL / "boundaries" / "gla_london_wards_2014.gpkg")
    wards = (wards[wards["BOROUGH"] == "Camden"].to_crs("EPSG:27700")
             .rename(columns={"GSS_CODE": "ward_code", "NAME": "ward_name"})
             .sort_values("ward_code").reset_index(drop=True))
    ods = pd.read_csv(REAL / "services" / "nhs_ods_edispensary_london_geocoded.csv", dtype=str)
    ods = ods[ods["Status_Code"] == "A"]
    xy = ods[["cp_Eastings", "cp_Northings"]].astype(float)
    # The network's extent (EPSG:27700) with a 200 m margin: Camden and its fringe.
    inside = xy["cp_Eastings"].between(523500, 532800) & xy["cp_Northings"].between(180500, 187800)
    pharmacies = gpd.GeoDataFrame({"name": ods["Name"][inside].to_numpy()},
                                  geometry=gpd.points_from_xy(xy["cp_Eastings"][inside],
                                                              xy["cp_Northings"][inside]),
                                  crs="EPSG:27700")
    return wards, {"treatment": pharmacies.iloc[::5], "needle_exchange": pharmacies}


def access(network, wards, layers) -> tuple[float, dict]:
    """Seconds of network access for every ward and both kinds, and a few figures."""
    from geomisuse.gaps.settings import GapSettings
    from geomisuse.gaps.walking import measure_access

    start = time.perf_counter()
    walk, _ = measure_access(wards, layers, None, GapSettings(), 20261122, network)
    seconds = time.perf_counter() - start
    return seconds, {"points": int(len(walk.sample.xy)),
                     "services": {k: int(len(v)) for k, v in layers.items()},
                     "detour_needle_exchange": walk.network.detour["needle_exchange"]}


def rerun(cache: str) -> dict:
    """Phase 4 in this (fresh) process: cache read + access."""
    from geomisuse.gaps.network import load_walking_network

    start = time.perf_counter()
    wards, layers = inputs()
    inputs_s = time.perf_counter() - start
    start = time.perf_counter()
    network = load_walking_network(NETWORK, cache)
    load_s = time.perf_counter() - start
    access_s, _ = access(network, wards, layers)
    return {"cache": network.report["cache"], "load_s": load_s, "access_s": access_s,
            "inputs_s": inputs_s}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--rerun":
        print(json.dumps(rerun(sys.argv[2])))
        return
    from geomisuse.gaps.catchments import isochrones
    from geomisuse.gaps.network import load_walking_network
    from geomisuse.gaps.walking import service_xy
    from geomisuse.layers.osm_network import read_walkable_ways

    wards, layers = inputs()
    start = time.perf_counter()
    ways = read_walkable_ways(NETWORK)
    read_s = time.perf_counter() - start
    print(f"file: {NETWORK.name}, {NETWORK.stat().st_size / 1e6:.1f} MB; "
          f"{ways.highway_ways:,} highway ways, {len(ways.segment_nodes):,} walkable segments")
    print(f"1. read (pyosmium): {read_s:.2f} s")

    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        network = load_walking_network(NETWORK, cache)
        build_s = time.perf_counter() - start
        print(f"2. build graph + write cache: {build_s:.2f} s ({network.n_nodes:,} nodes, "
              f"{network.report['segments']:,} segments, {network.report['km']} km, "
              f"{network.report['components']} components before cleaning)")
        access_s, figures = access(network, wards, layers)
        print(f"3. access: {access_s:.2f} s ({figures['points']:,} resident points in "
              f"{len(wards)} wards; {figures['services']['needle_exchange']} needle exchanges, "
              f"{figures['services']['treatment']} treatment services)")
        print(f"   build + access: {build_s + access_s:.2f} s (target <= 10 s)")
        detour = figures["detour_needle_exchange"]
        print(f"   measured detour factor (nearest needle exchange): median {detour['median']}, "
              f"10-90 % {detour['p10']}-{detour['p90']}")

        start = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, "--rerun", cache], capture_output=True,
                              text=True, check=True, cwd=ROOT,
                              env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        process_s = time.perf_counter() - start
        again = json.loads(done.stdout)
        print(f"4. cached rerun (fresh process, cache {again['cache']}): cache read "
              f"{again['load_s']:.3f} s + access {again['access_s']:.2f} s = "
              f"{again['load_s'] + again['access_s']:.2f} s (target <= 2 s); whole process "
              f"{process_s:.1f} s incl. interpreter, imports and reading the wards and "
              f"pharmacies ({again['inputs_s']:.1f} s)")

    xy = service_xy(layers["needle_exchange"])
    start = time.perf_counter()
    shapes = isochrones(network, xy, 1600.0)
    iso_s = time.perf_counter() - start
    print(f"5. (context) isochrones: {len(shapes)} services in {iso_s:.2f} s "
          f"({iso_s / len(shapes) * 1000:.0f} ms each)")
    try:
        from pyrosm import OSM
    except ImportError:
        print("   (context) pyrosm not installed: its figure is in the README")
        return
    start = time.perf_counter()
    nodes, edges = OSM(str(NETWORK)).get_network("walking", nodes=True)
    print(f"   (context) pyrosm get_network('walking'): {time.perf_counter() - start:.2f} s "
          f"({len(nodes):,} nodes, {len(edges):,} edges), against pyosmium's read {read_s:.2f} s "
          f"+ graph {build_s - read_s:.2f} s")


if __name__ == "__main__":
    main()
