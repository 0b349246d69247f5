"""Generator speed: one landing batch of N registry persons, all five exports and the truth.

    .venv/bin/python benchmarks/generate_speed.py --persons 200000 --noise hard

Prints the wall time, rows per source and the process's peak memory. Not part of the
test suite: figures depend on the machine and go into the README, never into assertions.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from lookback.generate.batch import generate_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--noise", default="hard")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lookback-bench-") as folder:
        started = time.perf_counter()
        summary = generate_batch(
            Path(folder) / "landing" / "bench", persons=args.persons, seed=args.seed, noise=args.noise
        )
        elapsed = time.perf_counter() - started
    rows = sum(summary.rows.values())
    print(f"{summary.registry_persons:,} registry persons, {rows:,} rows, noise {args.noise}: {elapsed:.1f} s")
    for source, count in summary.rows.items():
        print(f"  {source:<10} {count:>10,} rows")
    print(f"  findings   {sum(summary.findings.values()):>10,}")
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
