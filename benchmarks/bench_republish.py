"""Benchmark: republishing from a finished run's saved state (``geomisuse map RUN_DIR``,
``geomisuse brief RUN_DIR``, ``brief RUN_DIR --ward``) against re-running the analysis
(``geomisuse map STUDY_FILE``), each in a fresh process; and what the saved state costs a run
(its size, and the time to write it, measured in-process on the state read back).

The London study is :mod:`bench_london`'s (704 wards, real MPS, Census and ODS files); the
demo is ``geomisuse demo``. The machine is shared: the load average (``uptime``) is printed
before and after, and the figures to read are the medians and the ratios.

    python benchmarks/bench_republish.py [--study london|demo] [--repeats 3] [--study-repeats N]

``--study-repeats`` (default: ``--repeats``) runs ``map STUDY_FILE`` fewer times than the
republishing commands, for when the analysis takes minutes on a loaded machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_london import REAL, STUDY as LONDON_STUDY  # noqa: E402

#: Fixed production date, so that pages made on either side of midnight still compare equal.
ENV = {"PYTHONPATH": str(ROOT), "SOURCE_DATE_EPOCH": "1767225600", "PATH": os.environ.get("PATH", "")}

#: Measured in a fresh process: read the state back, then time writing it again.
STATE_WRITE = """
import shutil, sys, tempfile, time
from pathlib import Path
from geomisuse.pipeline import load_run
from geomisuse.publish.state import write_state
run, saved = load_run(sys.argv[1])
times = []
for _ in range(int(sys.argv[2])):
    folder = Path(tempfile.mkdtemp())
    start = time.perf_counter()
    write_state(run, folder, saved.settings)
    times.append(time.perf_counter() - start)
    shutil.rmtree(folder)
print(sorted(times)[len(times) // 2])
"""


def cli(*args: str) -> float:
    """Run ``python cli.py ARGS`` in a fresh process; returns its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], check=True, capture_output=True, env=ENV)
    return time.perf_counter() - start


def load() -> str:
    """The load averages, from ``uptime``."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average:")[-1].strip()


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=("london", "demo"), default="london")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--study-repeats", type=int, default=None)
    args = parser.parse_args()
    study_repeats = args.repeats if args.study_repeats is None else args.study_repeats
    print(f"load average before: {load()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        out = tmp / "out"
        if args.study == "london":
            if not REAL.is_dir():
                sys.exit(f"{REAL} is not present")
            study = tmp / "london.toml"
            study.write_text(LONDON_STUDY.format(real=REAL))
            first = cli("run", str(study), "--out", str(out), "--tiles", "none")
        else:
            study = ROOT / "data" / "demo" / "study.toml"
            first = cli("demo", "--out", str(out), "--tiles", "none")
        state = out / ".geomisuse"
        ward = sorted(p.stem for p in (out / "briefings").glob("E05*.html"))[0]
        print(f"{args.study}: run {first:.2f} s; saved state {folder_size(state) / 1e6:.2f} MB in "
              f"{len(list(state.iterdir()))} files (outputs without it {(folder_size(out) - folder_size(state)) / 1e6:.2f} MB)", flush=True)
        done = subprocess.run([sys.executable, "-c", STATE_WRITE, str(out), "5"], check=True, capture_output=True,
                              text=True, env=ENV)
        print(f"state write (median of 5, in-process): {float(done.stdout) * 1000:.0f} ms", flush=True)
        reference = {p: p.read_bytes() for p in [out / "map.html", *sorted((out / "briefings").glob("*.html"))]}
        commands = {
            "map RUN_DIR": ("map", str(out)),
            "brief RUN_DIR": ("brief", str(out)),
            f"brief RUN_DIR --ward {ward}": ("brief", str(out), "--ward", ward),
            "map STUDY_FILE": ("map", str(study), "--out", str(tmp / "from-study"), "--tiles", "none"),
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for repeat in range(args.repeats):   # interleaved, so that a change of load falls on every command
            for name, command in commands.items():
                if name != "map STUDY_FILE" or repeat < study_repeats:
                    times[name].append(cli(*command))
                    print(f"  {name}: {times[name][-1]:.2f} s (load {load()})", flush=True)
        same = all(path.read_bytes() == data for path, data in reference.items())
        print(f"republished map.html and {len(reference) - 1} briefing pages byte-identical to the run's: {same}")
        base = statistics.median(times["map STUDY_FILE"])
        for name, values in times.items():
            median = statistics.median(values)
            print(f"{name:<32} median {median:6.2f} s over {len(values)} fresh processes "
                  f"({', '.join(f'{v:.2f}' for v in values)}); {base / median:5.1f}x faster than map STUDY_FILE")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
