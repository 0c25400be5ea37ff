"""Benchmark of the gap stage on all of London: ~700 wards, ~300 candidate sites.

Real inputs: the 704 ONS 2022 ward boundaries and the coordinates of real London pharmacies
(NHS ODS, geocoded by postcode). Synthetic, seeded: ward populations, possession counts
(a few smooth "hot" areas plus noise), the cluster labels that such counts would get, which
pharmacies run a needle exchange and where the treatment services are.

Run::

    PYTHONPATH=. python benchmarks/bench_gaps.py [--seed N] [--candidates 300] [--lsoa]

``--lsoa`` adds a finer population layer: the 4,994 real LSOA 2021 polygons with seeded
synthetic resident counts (population-weighted sampling instead of area-weighted).

Target: access + gaps + satellites (MCLP and greedy) <= 10 s of wall time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from geomisuse.gaps import GapSettings, find_gaps

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
WARDS = REAL / "boundaries" / "ons_wards2022_london_bsc_simplified.gpkg"
PHARMACIES = REAL / "services" / "nhs_ods_edispensary_london_geocoded.csv"


def london_wards(seed: int) -> gpd.GeoDataFrame:
    """The 704 London wards with seeded synthetic population, possession counts and labels."""
    wards = gpd.read_file(WARDS).to_crs("EPSG:27700")
    wards = wards.rename(columns={"ward22_code": "ward_code", "ward22_name": "ward_name"})
    wards = wards.sort_values("ward_code").reset_index(drop=True)[
        ["ward_code", "ward_name", "geometry"]]
    rng = np.random.default_rng(seed)
    wards["population"] = rng.integers(6000, 18000, len(wards)).astype(float)
    wards.loc[rng.choice(len(wards), 3, replace=False), "population"] = np.nan  # not given
    centre = wards.geometry.centroid
    x, y = centre.x.to_numpy(), centre.y.to_numpy()
    # Five hot areas ~2 km across: rate per 1,000 rises from ~2 to ~12 at their centres.
    hot = rng.choice(len(wards), 5, replace=False)
    bump = sum(np.exp(-((x - x[h]) ** 2 + (y - y[h]) ** 2) / (2 * 2000.0 ** 2)) for h in hot)
    rate = 2.0 + 10.0 * bump + rng.gamma(2.0, 0.5, len(wards))
    wards["possession_count"] = np.round(rate * wards["population"].fillna(0) / 1000)
    wards["possession_rate_per_1000"] = wards["possession_count"] / wards["population"] * 1000
    wards["possession_lisa_label"] = np.where(bump > 0.6, "High-High", "Not significant")
    wards["possession_gi_bin"] = np.select([bump > 0.8, bump > 0.5], [3, 2], 0)
    return wards


def london_services(seed: int, n_candidates: int):
    """Needle exchanges (a fifth of pharmacies), treatment services (~3 per borough area)
    and candidate sites (other pharmacies), all at real pharmacy coordinates."""
    table = pd.read_csv(PHARMACIES, usecols=["Name", "cp_Eastings", "cp_Northings"]).dropna()
    table = table.drop_duplicates(["cp_Eastings", "cp_Northings"]).reset_index(drop=True)
    rng = np.random.default_rng(seed + 1)
    order = rng.permutation(len(table))
    nsp = table.iloc[order[: len(table) // 5]]
    treatment = table.iloc[order[len(table) // 5: len(table) // 5 + 100]]
    candidates = table.iloc[order[len(table) // 5 + 100: len(table) // 5 + 100 + n_candidates]]

    def layer(frame: pd.DataFrame, kind: str) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame(
            {"name": frame["Name"].to_numpy(), "site_type": kind},
            geometry=gpd.points_from_xy(frame["cp_Eastings"], frame["cp_Northings"]),
            crs="EPSG:27700")

    return layer(treatment, "treatment service"), layer(nsp, "pharmacy"), layer(candidates,
                                                                                "pharmacy")


def main() -> None:
    """Time each step and the whole stage; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--candidates", type=int, default=300)
    parser.add_argument("--lsoa", action="store_true", help="LSOA polygons as residents layer")
    args = parser.parse_args()
    residents = None
    if args.lsoa:
        residents = gpd.read_file(REAL / "boundaries" / "ons_lsoa2021_london_gen20.gpkg")
        residents = residents[["LSOA21CD", "geometry"]].to_crs("EPSG:27700")
        residents["residents"] = np.random.default_rng(args.seed + 2).integers(
            1000, 2500, len(residents))

    start = time.perf_counter()
    wards = london_wards(args.seed)
    treatment, nsp, candidates = london_services(args.seed, args.candidates)
    print(f"inputs: {len(wards)} wards, {len(treatment)} treatment services, {len(nsp)} needle "
          f"exchanges, {len(candidates)} candidate pharmacies "
          f"(read in {time.perf_counter() - start:.2f} s)")

    import spopt.locate  # noqa: F401  (a one-off import, timed apart)

    runs = [("candidate file (300 pharmacies)", True, GapSettings()),
            ("default candidates (pharmacies + grid over gap wards)", False, GapSettings()),
            ("stress: 10 sites for the unmet need of all wards, default candidates", False,
             GapSettings(satellites=10, satellite_demand="all_wards"))]
    for label, from_file, settings in runs:
        start = time.perf_counter()
        result = find_gaps(wards, treatment, nsp, candidates, residents, settings, seed=args.seed,
                           candidates_from_file=from_file)
        total = time.perf_counter() - start
        t = result.manifest["timings_s"]
        s = result.manifest["satellites"]
        print(f"\n{label}")
        print(f"  access (sampling {result.manifest['sampling']['points']} points + KD-trees): "
              f"{t['access']:.2f} s")
        print(f"  gaps (need rule, score, reasons):                    {t['gaps']:.2f} s")
        print(f"  MCLP build + solve ({s.get('merged_demand_points')} merged demand points x "
              f"{s.get('candidates_in_reach')} candidates in reach of "
              f"{sum(s.get('candidates', {}).values())}): {t.get('mclp', 0):.2f} s "
              f"[{s.get('status')}]")
        print(f"  greedy:                                              {t.get('greedy', 0):.3f} s")
        print(f"  total find_gaps:                                     {total:.2f} s "
              f"({'OK' if total <= 10 else 'OVER'} the 10 s target)")
        print(f"  outreach gaps: {result.manifest['outreach_gaps']}; need covered: optimum "
              f"{s.get('optimal_need_covered')} vs greedy {s.get('greedy_need_covered')}")


if __name__ == "__main__":
    main()
