"""Benchmark of disclosure control (primary, secondary and the LP audit) at London scale.

    python benchmarks/bench_disclosure.py                    # 704 wards x 24 months, ASB protected
    python benchmarks/bench_disclosure.py --all              # also MPS possession/trafficking/total protected
    python benchmarks/bench_disclosure.py --wards 100 --months 12

Synthetic counts (seeded): per ward a Poisson rate drawn so that ward-months are mostly small
(the hard case: many primary cells), monthly counts Poisson around it. The protection problem
is the one a study publishes: ward period counts, previous-period counts, monthly counts and
the borough totals, with MPS possession + trafficking = all drug offences under ``--all``.
Prints the figures: cells, hidden, rounds, linear programs and seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synthetic_run(n_wards: int, n_months: int, protect_mps: bool, seed: int = 20261122) -> SimpleNamespace:
    """A run-shaped object with the attributes :func:`protect_study` reads."""
    rng = np.random.default_rng(seed)
    codes = [f"E05{k:06d}" for k in range(n_wards)]
    months = [str(p) for p in pd.period_range("2024-01", periods=n_months, freq="M")]
    level = {"possession": rng.gamma(2.0, 2.0, n_wards), "trafficking": rng.gamma(1.0, 0.8, n_wards),
             "asb": rng.gamma(1.5, 1.5, n_wards)}
    rows = {m: rng.poisson(np.repeat(level[m], n_months)).reshape(n_wards, n_months) for m in level}
    rows["drug_offences"] = rows["possession"] + rows["trafficking"]
    monthly = pd.DataFrame({"ward_code": np.repeat(codes, n_months), "month": np.tile(months, n_wards),
                            **{f"{m}_count": rows[m].ravel() for m in rows}})
    wards = pd.DataFrame({"ward_code": codes, "population": rng.integers(6000, 16000, n_wards)})
    for m in rows:
        wards[f"{m}_count"] = rows[m].sum(axis=1)
    for m in level:
        wards[f"{m}_previous_count"] = rng.poisson(level[m] * n_months)
    wards["drug_offences_previous_count"] = wards["possession_previous_count"] + wards["trafficking_previous_count"]
    sources = {"possession": "mps_ward", "trafficking": "mps_ward", "drug_offences": "mps_ward",
               "asb": "asb_warnings"}
    return SimpleNamespace(wards=wards, monthly=monthly, months=months,
                           measures=["possession", "trafficking", "drug_offences", "asb"],
                           sources=sources, manifest={},
                           study=SimpleNamespace(layers={}, seed=seed)), protect_mps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wards", type=int, default=704)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--all", action="store_true", help='suppress = "all" (MPS counts protected too)')
    parser.add_argument("--rule", default="threshold", choices=("threshold", "round5"))
    args = parser.parse_args()
    from geomisuse.publish.disclosure import protect_study

    run, protect_mps = synthetic_run(args.wards, args.months, args.all)
    start = time.perf_counter()
    protection = protect_study(run, 5, rule=args.rule, suppress="all" if protect_mps else "sources", seed=1)
    seconds = time.perf_counter() - start
    audit = protection.audit
    print(f"{args.wards} wards x {args.months} months, suppress={'all' if protect_mps else 'sources'}, "
          f"rule={args.rule}")
    print(f"cells {audit['cells']:,}, relations {audit['relations']:,}, hidden {audit['hidden']:,} "
          f"(shown <t: {audit['shown_as_small']:,}), audit rounds {audit['rounds']}, "
          f"linear programs {audit['linear_programs']:,}")
    print(f"narrowest attacker interval {audit['narrowest_interval']} (required {audit['required_interval']})")
    print(f"protect_study: {seconds:.2f} s")


if __name__ == "__main__":
    main()
