"""Ingest throughput: generate a batch, ingest it into a fresh SQLite warehouse, report.

    .venv/bin/python benchmarks/ingest_throughput.py --persons 20000

Prints rows per second per source and the process's peak memory. Not part of the test
suite: figures depend on the machine and go into the README, never into assertions.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from lookback.generate.batch import generate_batch
from lookback.pipeline import Run, ingest_all, open_warehouse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warehouse", help="warehouse URL (default: a new SQLite file in a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lookback-bench-") as folder:
        batch = Path(folder) / "bench"
        started = time.perf_counter()
        summary = generate_batch(batch, persons=args.persons, seed=args.seed)
        generated = time.perf_counter() - started
        rows = sum(summary.rows.values())
        print(f"generated {rows:,} rows ({summary.registry_persons:,} registry persons) in {generated:.1f} s")

        warehouse = args.warehouse or f"sqlite:///{Path(folder) / 'warehouse.sqlite'}"
        started = time.perf_counter()
        with open_warehouse(warehouse) as store:
            accounting = ingest_all(Run.create(landing=batch, warehouse=warehouse), store)
        elapsed = time.perf_counter() - started
        delivered = sum(item.delivered for item in accounting)
        print(f"ingested {delivered:,} rows in {elapsed:.1f} s: {delivered / elapsed:,.0f} rows/s")
        for item in accounting:
            print(f"  {item.source:<10} {item.delivered:>9,} delivered  balanced={item.balanced}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
