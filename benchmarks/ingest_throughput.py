"""Ingest throughput: ingest a batch into a fresh SQLite warehouse, source by source, report.

    .venv/bin/python benchmarks/ingest_throughput.py --persons 20000
    .venv/bin/python benchmarks/ingest_throughput.py --landing /data/landing/h100
    .venv/bin/python benchmarks/ingest_throughput.py --landing /data/landing/h100 --profile insurance

Generates a batch (or takes the one in --landing), then ingests each source in turn and
prints its rows, wall and CPU seconds and rows per second, and the process's peak memory.
``--profile SOURCE`` prints the hottest functions of that source's ingest (cProfile). Not
part of the test suite: figures depend on the machine and go into the README, never into
assertions.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import tempfile
import time
from pathlib import Path

from lookback.pipeline import Run, ingest_one, open_warehouse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--landing", type=Path, help="a delivered batch to ingest (default: generate one)")
    parser.add_argument("--warehouse", help="warehouse URL (default: a new SQLite file in a temporary folder)")
    parser.add_argument("--sources", help="sources to ingest, comma-separated (default: all)")
    parser.add_argument("--profile", metavar="SOURCE", help="profile this source's ingest and print the top")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lookback-bench-") as folder:
        batch = args.landing
        if batch is None:
            from lookback.generate.batch import generate_batch

            batch = Path(folder) / "bench"
            started = time.perf_counter()
            summary = generate_batch(batch, persons=args.persons, seed=args.seed)
            generated = time.perf_counter() - started
            rows = sum(summary.rows.values())
            print(f"generated {rows:,} rows ({summary.registry_persons:,} registry persons) in {generated:.1f} s")

        warehouse = args.warehouse or f"sqlite:///{Path(folder) / 'warehouse.sqlite'}"
        run = Run.create(landing=batch, warehouse=warehouse)
        total_wall = total_cpu = 0.0
        delivered = 0
        with open_warehouse(warehouse) as store:
            sources = args.sources.split(",") if args.sources else sorted(store.specs)
            for source in sources:
                profiler = cProfile.Profile() if source == args.profile else None
                wall, cpu = time.perf_counter(), time.process_time()
                if profiler is not None:
                    profiler.enable()
                item = ingest_one(run, store, source)
                if profiler is not None:
                    profiler.disable()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                total_wall += wall
                total_cpu += cpu
                delivered += item.delivered
                rate = f"{item.delivered / wall:>9,.0f} rows/s" if wall else ""
                print(
                    f"  {source:<10} {item.delivered:>9,} delivered  {wall:6.1f} s wall  {cpu:6.1f} s CPU"
                    f"  {rate}  balanced={item.balanced}",
                    flush=True,
                )
                if profiler is not None:
                    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
                    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        print(
            f"ingested {delivered:,} rows in {total_wall:.1f} s wall, {total_cpu:.1f} s CPU: "
            f"{delivered / total_wall:,.0f} rows/s"
        )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
