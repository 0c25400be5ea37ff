"""Benchmark: a 704-ward London study end to end in a fresh process, on the real files in
../shared/data/real — MPS ward-level crime (2024-03 to 2026-03 release), Census 2021 population
by LSOA through the ONS best-fit lookup, active NHS ODS pharmacies — with the map, the 704 ward
briefings, 33 borough overviews and the London overview. Prints wall time, CPU time and peak
memory per run (target: under 60 s).

    python benchmarks/bench_london.py [--runs 3]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"

STUDY = """
[study]
name = "London drug harm, 2024-25"
period = ["2024-04", "2025-03"]
sources = ["MPS ward-level crime (London Datastore, OGL)", "Census 2021 (ONS, OGL)", "NHS ODS (OGL)"]
[boundaries]
path = "{real}/boundaries/ons_wards2022_london_bsc_simplified.gpkg"
[layers.mps_ward]
path = "{real}/mps_ward/mps_ward_level_crime_2024-03_2026-03_wards2022.csv"
[layers.population]
path = "{real}/population/census2021_lsoa2021_london_age5.csv"
lookup = "{real}/boundaries/lookup_lsoa21_ward25_lad25_bestfit_london.csv"
[layers.pharmacies]
path = "{real}/services/nhs_ods_edispensary_london_geocoded.csv"
where = {{Status_Code = "A"}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not REAL.is_dir():
        sys.exit(f"{REAL} is not present")
    times = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            study = Path(folder) / "london.toml"
            study.write_text(STUDY.format(real=REAL))
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run([sys.executable, str(ROOT / "cli.py"), "run", str(study), "--out",
                            str(Path(folder) / "out"), "--tiles", "none"],
                           check=True, capture_output=True, env={"PYTHONPATH": str(ROOT)})
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            pages = len(list((Path(folder) / "out" / "briefings").glob("*.html")))
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        print(f"run {run + 1}: {times[-1]:.2f} s wall, {cpu:.2f} s CPU, peak RSS {after.ru_maxrss / 1024:.0f} MB, "
              f"{pages} briefing pages")
    print(f"London, 704 wards, end to end: median {sorted(times)[len(times) // 2]:.2f} s, best {min(times):.2f} s "
          f"over {args.runs} fresh processes (target < 60 s)")


if __name__ == "__main__":
    main()
