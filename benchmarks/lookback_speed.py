"""Look-back speed: the rules, the findings' lifecycle, roster and extract, and publishing.

    .venv/bin/python benchmarks/lookback_speed.py --persons 200000 --folder /tmp/lookback-bench

Uses the batch kept in --folder (generated and ingested once, as the linkage benchmarks
do; linked once here when not linked yet). Times the look-back stage (preparing the tables
the rules read, the 15 rules, the findings' lifecycle, visit roster and census extract)
and publishing the run's files (CSV, census extract, one workbook per county, manifest),
with the findings per rule, their precision and recall against the batch's truth and
the linkage's pairwise scores, and the peak memory of the process. The quality gates
are left out (see validate_speed.py).
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

from prepared import BATCH, add_batch_arguments, prepared_batch
from sqlalchemy import text

from lookback.evaluate import evaluate_run
from lookback.pipeline import Run, link, open_warehouse, publish, reconcile
from lookback.report import format_evaluation

AS_OF = date(2020, 6, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_batch_arguments(parser, persons=200_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    landing, url = prepared_batch(args)
    with open_warehouse(url) as warehouse:
        with warehouse.engine.connect() as connection:
            linked = connection.execute(
                text("select count(*) from person_links where batch_id = :batch"), {"batch": BATCH}
            ).scalar_one()
        if not linked:
            started = time.perf_counter()
            link(Run.create(batch=BATCH, warehouse=url), warehouse)
            print(f"linked in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        summary = reconcile(Run.create(batch=BATCH, as_of=AS_OF, warehouse=url), warehouse)
    seconds = time.perf_counter() - started
    found = sum(summary.per_rule.values())
    print(
        f"look-back of batch {BATCH}: {found:,} findings, {summary.census_persons:,} census persons, "
        f"{sum(summary.roster.values()):,} roster households in {seconds:.1f} s"
    )
    for code, count in summary.per_rule.items():
        print(f"  {code:<24} {count:>8,}")

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        run = Run.create(landing=landing, batch=BATCH, out=Path(folder) / "run", as_of=AS_OF, warehouse=url)
        with open_warehouse(url) as warehouse:
            outputs = publish(run, warehouse)
        seconds = time.perf_counter() - started
        size = sum(path.stat().st_size for path in outputs.files if path.is_file())
        print(f"published {len(outputs.files)} files ({size / 2**20:,.0f} MiB) in {seconds:.1f} s")
        truth = args.folder / "truth" / BATCH
        if truth.is_dir():
            print(format_evaluation(evaluate_run(truth, outputs.out)))
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
