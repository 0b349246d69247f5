"""Generator speed: one landing batch of N registry persons, all five exports and the truth.

    .venv/bin/python benchmarks/generate_speed.py --persons 200000 --noise hard

Prints the wall and CPU time, rows per source and the process's peak memory; ``--out``
keeps the batch (its truth goes beside it, ``landing/<batch>`` → ``truth/<batch>``). Not
part of the test suite: figures depend on the machine and go into the README, never into
assertions.

Measured on the project's 2-core machine, seed 2020, noise hard, CPU seconds (user+sys),
shared with other work (wall times vary with the load):

    persons     before (openpyxl, gc on)     after
    20,000      12-13 s, 283 MiB             ~6 s, 283 MiB
    100,000     64 s, 943 MiB                ~37 s, 865 MiB
    1,000,000   not measured (~11 min)       342 s, 7.2 GiB (18 min wall at a third of the CPU)

Then with the sheet's rows rendered whole, the exports written as they are made and
cheaper draws, texts and truth (the two versions run side by side, at the same time, on
the machine loaded by other work; same bytes):

    persons     before                       after
    20,000      7.3-7.8 s, 279 MiB           5.7-6.1 s, 233 MiB
    100,000     28-34 s, 860 MiB             18-23 s, 599 MiB
    200,000     67-69 s, 1,584 MiB           45-46 s, 1,052 MiB
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
    parser.add_argument("--out", type=Path, help="keep the batch in this folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lookback-bench-") as folder:
        out = args.out or Path(folder) / "landing" / "bench"
        started, cpu = time.perf_counter(), time.process_time()
        summary = generate_batch(out, persons=args.persons, seed=args.seed, noise=args.noise)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    rows = sum(summary.rows.values())
    print(
        f"{summary.registry_persons:,} registry persons, {rows:,} rows, noise {args.noise}: "
        f"{elapsed:.1f} s wall, {cpu:.1f} s CPU"
    )
    for source, count in summary.rows.items():
        print(f"  {source:<10} {count:>10,} rows")
    print(f"  findings   {sum(summary.findings.values()):>10,}")
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
