"""Generate the police.uk-format archives the scale benchmarks read (once; reused after).

    python benchmarks/make_police_archive.py [--rows 1100000 6000000] [--years 1] [--out /tmp/geomisuse-bench]

Writes ``OUT/<rows>/YYYY-MM/YYYY-MM-generated-street.csv`` (12 monthly files a year, the
real bulk schema, snap-point duplicates, ~1.5 % rows without coordinates; see
``geomisuse.demo.archive``) over the 657 GLA 2018 London wards, and ``OUT/<rows>/study.toml``.
An existing archive of the same size is left as it is.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from geomisuse.config import months_between
from geomisuse.demo.archive import write_archive

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
WARDS = REAL / "boundaries" / "gla_london_wards_2018.gpkg"
PHARMACIES = REAL / "services" / "nhs_ods_edispensary_london_geocoded.csv"


def make(out: Path, rows: int, years: int = 1) -> Path:
    """The archive folder for ``rows`` rows a year over ``years`` years (generated if missing)."""
    folder = out / (f"{rows}" if years == 1 else f"{rows}x{years}")
    study = folder / "study.toml"
    if study.exists():
        return folder
    wards = gpd.read_file(WARDS).to_crs("EPSG:27700")
    months = months_between(f"{2025 - years}-01", "2024-12")
    start = time.perf_counter()
    archive = write_archive(folder / "police_uk", wards.geometry.to_numpy(), months, rows // 12, seed=rows)
    write_study(folder, wards, rows)
    print(f"wrote {archive.rows:,} rows in {len(archive.files)} files to {folder} "
          f"in {time.perf_counter() - start:.1f} s")
    return folder


def write_study(folder: Path, wards: gpd.GeoDataFrame, rows: int) -> None:
    """``study.toml`` with the archive, the real pharmacies, and generated populations,
    treatment services and needle exchanges (a London-wide study as an analyst would set it up)."""
    write_population(folder / "population.csv", wards["GSS_CODE"])
    write_services(folder, wards)
    (folder / "study.toml").write_text(
        f'[study]\nname = "Generated police.uk archive, {rows:,} rows a year"\n\n'
        f'[boundaries]\npath = "{WARDS}"\n\n[layers.police_uk]\npath = "police_uk"\n\n'
        '[layers.population]\npath = "population.csv"\n\n'
        '[layers.treatment_services]\npath = "treatment_services.csv"\n\n'
        '[layers.needle_exchanges]\npath = "needle_exchanges.csv"\n\n'
        f'[layers.pharmacies]\npath = "{PHARMACIES}"\nwhere = {{Status_Code = "A"}}\n\n'
        '[gaps]\n# The satellite search (MCLP over ~6,000 London candidates) is measured by bench_gaps.py, '
        'not here.\nsatellites = 0\n')


def write_services(folder: Path, wards: gpd.GeoDataFrame) -> None:
    """Two generated treatment services per borough and a needle exchange at every fourth
    active pharmacy (names invented; seeded)."""
    rng = np.random.default_rng(33)
    rows = []
    for borough, group in wards.groupby("DISTRICT", sort=True):
        for k in range(2):
            point = group.geometry.iloc[rng.integers(len(group))].representative_point()
            rows.append({"name": f"{borough} recovery service {k + 1}", "easting": round(point.x),
                         "northing": round(point.y)})
    pd.DataFrame(rows).to_csv(folder / "treatment_services.csv", index=False)
    pharmacies = pd.read_csv(PHARMACIES, dtype=str)
    active = pharmacies[pharmacies["Status_Code"] == "A"].iloc[::4]
    pd.DataFrame({"name": "Needle exchange at " + active["Name"], "easting": active["cp_Eastings"],
                  "northing": active["cp_Northings"]}).to_csv(folder / "needle_exchanges.csv", index=False)


def write_population(path: Path, codes: pd.Series) -> None:
    """A generated resident count per ward (8,000-16,000, seeded), so that rates and clusters run."""
    rng = np.random.default_rng(657)
    pd.DataFrame({"ward_code": codes, "population": rng.integers(8_000, 16_000, len(codes))}).to_csv(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_100_000, 6_000_000])
    parser.add_argument("--years", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/geomisuse-bench"))
    args = parser.parse_args()
    for rows in args.rows:
        print(make(args.out, rows, args.years))


if __name__ == "__main__":
    main()
