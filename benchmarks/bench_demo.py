"""Benchmark: ``geomisuse demo`` end to end in a fresh process (imports, loading, ward table,
clusters, gaps, map, briefings, exports). Prints wall time and peak memory per run.

    python benchmarks/bench_demo.py [--runs 3]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            subprocess.run([sys.executable, str(ROOT / "cli.py"), "demo", "--out", folder], check=True,
                           capture_output=True, env={"PYTHONPATH": str(ROOT)})
            times.append(time.perf_counter() - start)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"run {run + 1}: {times[-1]:.2f} s, peak RSS {peak:.0f} MB")
    print(f"demo end to end: median {sorted(times)[len(times) // 2]:.2f} s, best {min(times):.2f} s "
          f"over {args.runs} fresh processes (target <= 10 s)")


if __name__ == "__main__":
    main()
