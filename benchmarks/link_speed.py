"""Linkage speed and quality: generate a batch, ingest it, link it, score it.

    .venv/bin/python benchmarks/link_speed.py --persons 200000 --noise hard --folder /tmp/link-bench

The generated and ingested batch is kept in --folder and reused by later runs, so that
only the linkage is timed again. Prints rows and candidate pairs per second, the peak
memory of the process, and the evaluation against the truth.
"""

from __future__ import annotations

import argparse
import logging
import resource
import time
from datetime import date

from prepared import add_batch_arguments, prepared_batch

from lookback.evaluate import evaluate_run
from lookback.pipeline import Run, link, open_warehouse, publish
from lookback.report import format_evaluation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_batch_arguments(parser, persons=200_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    landing, url = prepared_batch(args)
    run = Run.create(landing=landing, batch="bench", out=args.folder / "run", as_of=date(2020, 6, 30), warehouse=url)
    started = time.perf_counter()
    with open_warehouse(url) as warehouse:
        summary = link(run, warehouse)
    elapsed = time.perf_counter() - started
    pairs = sum(summary.candidate_pairs.values())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"linked {summary.rows:,} rows in {elapsed:.1f} s: {summary.rows / elapsed:,.0f} rows/s")
    print(f"candidate pairs from blocking: {pairs:,} ({pairs / elapsed:,.0f} per second)")
    print(f"  by rule: {dict(summary.candidate_pairs)}")
    print(f"peak memory (max RSS): {peak:,.0f} MiB")
    with open_warehouse(url) as warehouse:
        publish(run, warehouse)
    print(format_evaluation(evaluate_run(args.folder / "truth" / "bench", run.out)).split("\nfindings")[0])


if __name__ == "__main__":
    main()
