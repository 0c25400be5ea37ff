"""Scale benchmark (issue 14): geomisuse run vs the plain analyst script vs the read floor,
side by side on the same generated police.uk archives over the 657 GLA 2018 wards.

    python benchmarks/make_police_archive.py            # once: /tmp/geomisuse-bench/{1100000,6000000}
    python benchmarks/bench_scale.py [--rows 1100000 6000000] [--repeats 3]
    python benchmarks/bench_scale.py --rows 6000000 --years 5 --only run --engine dask

Each method runs in a fresh process, interleaved (floor, plain, run, floor, plain, run, ...) so
that a busy shared machine slows them alike; the figures are medians of wall time and of each
process's peak resident memory (``ru_maxrss`` of that child alone), with the ratio to the plain
script.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from make_police_archive import make  # noqa: E402


def timed(command: list[str]) -> tuple[float, float]:
    """Run ``command``; return (wall seconds, peak RSS in MB of that process and its children)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{process.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_100_000, 6_000_000])
    parser.add_argument("--years", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="+", default=["floor", "plain", "run"])
    parser.add_argument("--engine", default="local", choices=["local", "dask"])
    parser.add_argument("--out", type=Path, default=Path("/tmp/geomisuse-bench"))
    parser.add_argument("--results", type=Path, default=None,
                        help="where the runs write their outputs (default: under --out; give your own on a shared "
                             "machine, as each run replaces its output folder)")
    args = parser.parse_args()
    python = sys.executable
    results_folder = args.results or args.out
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start (shared machine)")
    for rows in args.rows:
        folder = make(args.out, rows, args.years)
        study = folder / "study.toml"
        if args.engine == "dask":
            text = study.read_text()
            study = folder / "study-dask.toml"
            study.write_text(text.replace("[study]\n", '[study]\nengine = "dask"\n', 1))
        commands = {
            "floor": [python, "benchmarks/read_floor.py", str(folder)],
            "plain": [python, "benchmarks/plain_script.py", str(folder), str(results_folder / "plain-out")],
            "run": [python, "cli.py", "run", str(study), "--out", str(results_folder / "run-out"), "--tiles", "none"],
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in args.only}
        for _ in range(args.repeats):
            for name in args.only:
                results[name].append(timed(commands[name]))
        total = rows * args.years
        print(f"\n{total:,} rows ({args.years} year(s) of {rows:,}), {args.repeats} runs each, engine {args.engine}:")
        medians = {name: (statistics.median(w for w, _ in r), statistics.median(m for _, m in r))
                   for name, r in results.items()}
        for name, (wall, memory) in medians.items():
            ratio = f", {wall / medians['plain'][0]:.2f}x the plain script" if "plain" in medians else ""
            print(f"  {name:<6} median {wall:6.1f} s (runs: {', '.join(f'{w:.1f}' for w, _ in results[name])}), "
                  f"peak RSS {memory:,.0f} MB{ratio}")


if __name__ == "__main__":
    main()
