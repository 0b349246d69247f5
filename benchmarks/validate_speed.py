"""Quality-gate speed: validate a staging table of a million rows, and a whole batch.

    .venv/bin/python benchmarks/validate_speed.py --persons 200000 --folder /tmp/link-bench
    .venv/bin/python benchmarks/validate_speed.py --warehouse sqlite:///wh.db --batch h100 --repeat 2

With ``--warehouse`` and ``--batch`` (the warehouse of a whole ``lookback run`` of that
batch, kept), it times the three gates of that run instead, each ``--repeat`` times as the
pipeline calls them (``lookback.pipeline.validate``: read, derive, validate, Data Docs,
results stored): wall and CPU seconds per gate, and the peak memory. The warehouse's
``quality_results`` of the batch are rewritten (with the same rows).

Uses the batch kept in --folder (generated and ingested once, as the linkage benchmarks
do). Prints, for the whole ``standardise`` stage of that batch and for a staging table of
``--rows`` insurance rows (the batch's own rows repeated under a new batch id), the time to
read the rows from the warehouse, derive the checked columns and validate them with the
suite, and the peak memory of the process. Great Expectations' import (about 6 s) is timed
apart.
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd
from prepared import BATCH, add_batch_arguments, prepared_batch
from sqlalchemy import delete, select

from lookback.run import connect_warehouse
from lookback.validate.datasets import source_table
from lookback.validate.stage import _Project, stage_suites, suite_columns, validate_stage

AS_OF = date(2020, 6, 30)
BIG = "bench-1m"


def _stage_copies(warehouse_url: str, rows: int) -> int:
    """Stage ``rows`` insurance rows under batch ``BIG``: the batch's rows, repeated."""
    warehouse = connect_warehouse(warehouse_url)
    table = warehouse.staging("insurance")
    with warehouse.engine.connect() as connection:
        frame = pd.read_sql(select(table).where(table.c.batch_id == BATCH), connection)
    copies = pd.concat([frame] * (rows // len(frame) + 1), ignore_index=True).iloc[:rows].copy()
    copies["batch_id"] = BIG
    copies["source_row"] = range(1, rows + 1)
    with warehouse.engine.begin() as connection:
        connection.execute(delete(table).where(table.c.batch_id == BIG))
    copies.to_sql(table.name, warehouse.engine, if_exists="append", index=False, chunksize=50_000)
    warehouse.dispose()
    return rows


def time_gates(url: str, batch: str, repeat: int) -> None:
    """The three gates of a run kept in the warehouse at ``url``, each ``repeat`` times."""
    from lookback.errors import QualityGateError
    from lookback.pipeline import Run, open_warehouse, validate

    started = time.perf_counter()
    import great_expectations  # noqa: F401

    print(f"import great_expectations: {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as folder, open_warehouse(url) as warehouse:
        run = Run.create(batch=batch, out=Path(folder) / batch, as_of=AS_OF, warehouse=url)
        for stage in ("standardise", "link", "publish"):
            for attempt in range(repeat):
                wall, cpu = time.perf_counter(), time.process_time()
                try:
                    report = validate(run, warehouse, stage)
                    verdict = f"{len(report.outcomes)} expectations, {sum(report.rows.values()):,} rows"
                except QualityGateError:
                    verdict = "critical expectation failed"
                print(
                    f"{stage:<12} run {attempt + 1}: {time.perf_counter() - wall:5.1f} s wall, "
                    f"{time.process_time() - cpu:5.1f} s CPU ({verdict})"
                )
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


def main() -> None:
    gates = argparse.ArgumentParser(add_help=False)
    gates.add_argument("--warehouse", help="the warehouse of a whole run kept: time its three gates")
    gates.add_argument("--batch", help="the batch of that run")
    gates.add_argument("--repeat", type=int, default=2)
    kept, _ = gates.parse_known_args()
    logging.basicConfig(level=logging.WARNING)
    if kept.warehouse:
        if not kept.batch:
            gates.error("--warehouse needs --batch")
        time_gates(kept.warehouse, kept.batch, kept.repeat)
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, parents=[gates]
    )
    add_batch_arguments(parser, persons=200_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    _landing, url = prepared_batch(args)
    started = time.perf_counter()
    import great_expectations  # noqa: F401

    print(f"import great_expectations: {time.perf_counter() - started:.1f} s")

    with tempfile.TemporaryDirectory() as folder:
        warehouse = connect_warehouse(url)
        warehouse.ensure_schema()
        started = time.perf_counter()
        report = validate_stage(warehouse, BATCH, "standardise", AS_OF, Path(folder))
        rows = sum(report.rows.values())
        seconds = time.perf_counter() - started
        print(f"standardise stage of batch {BATCH}: {rows:,} rows in {len(report.rows)} tables in {seconds:.1f} s")
        print(f"  ({rows / seconds:,.0f} rows/s, {len(report.outcomes)} expectations, with the Data Docs)")

        print(f"staging {args.rows:,} insurance rows as batch {BIG} ...")
        _stage_copies(url, args.rows)
        (suite,) = [suite for suite in stage_suites("standardise") if suite.dataset == "insurance"]
        project = _Project(Path(folder) / "gx", Path(folder) / "data_docs")
        started = time.perf_counter()
        table = source_table(warehouse, "insurance", BIG, AS_OF, suite_columns(suite.document))
        assert table is not None
        read = time.perf_counter() - started
        started = time.perf_counter()
        outcomes = project.validate(suite, table, run_name=BIG)
        checked = time.perf_counter() - started
        print(f"insurance table of {len(table.frame):,} rows: read and derive {read:.1f} s, validate {checked:.1f} s")
        print(f"  ({len(outcomes)} expectations; {len(table.frame) / checked:,.0f} rows/s validated)")
        staging = warehouse.staging("insurance")
        with warehouse.engine.begin() as connection:
            connection.execute(delete(staging).where(staging.c.batch_id == BIG))
        warehouse.dispose()
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
