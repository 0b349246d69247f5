"""The look-back's preparation and rule SQL on SQLite and on DuckDB, statement by statement:
a measurement of what another engine would give, not a second engine of the project.

    make bench-env   # DuckDB comes with splink's benchmark group
    .venv-bench/bin/python benchmarks/reconcile_engines.py \\
        --warehouse /work/scale/work/p100000/warehouse.sqlite --batch p100000 --as-of 2020-06-30

``--warehouse`` is a SQLite warehouse after a complete run of the batch (linked, looked
back once: RELAPSE_RISK reads the findings of two other rules). It is copied into
``--folder`` (default: a temporary folder) and left as it was.

SQLite: on the copy, in one transaction rolled back at the end, the batch's prepared
tables are emptied, the statements of ``include/sql/reconcile/prepare/`` run in order
(each table analysed after, as the stage does) and every rule's SELECT runs with its rows
fetched, through the stage's own engine settings and bindings.

DuckDB: an in-memory database (``--threads``, default DuckDB's: one per core) gets every
warehouse table with the warehouse's own definitions (the PostgreSQL DDL, primary keys
included, no secondary indexes) and the tables the statements read filled from the copy
(the batch's staging rows, links, match review and household crosswalk, and the run's
findings) through pandas; the same statement texts then run with ``:name`` parameters
written ``$name``, nothing else changed. Loading is timed apart.

Each statement's CPU seconds (``time.process_time``: every DuckDB thread counts) and wall
seconds on both engines are printed and written to
``benchmarks/results/reconcile_engines.csv``; each prepared table and each rule's rows are
compared between the engines (values as text, a finding's references as a set).
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from lookback.reconcile.catalogue import load_rules
from lookback.reconcile.prepare import PREPARED_TABLES, analyze
from lookback.run import open_warehouse
from lookback.sql import bind, load_sql, sql_folder, statement_names
from lookback.warehouse import Warehouse

RESULTS = Path(__file__).resolve().parent / "results" / "reconcile_engines.csv"
FIELDS = ("batch", "statement", "engine", "cpu_seconds", "seconds", "rows", "same_rows")
AGGREGATED = ("source_rows", "made_from")  # string_agg's order is the engine's business
_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def timed(work: Callable[[], Any], label: str = "") -> tuple[Any, float, float]:
    started, started_cpu = time.perf_counter(), time.process_time()
    result = work()
    cpu, seconds = time.process_time() - started_cpu, time.perf_counter() - started
    if label:
        print(f"  {label}: {cpu:.2f} CPU s, {seconds:.2f} s", flush=True)
    return result, cpu, seconds


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def comparable(names: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Rows as sorted tuples of text, a string_agg column as its sorted set of parts."""
    out = []
    for row in rows:
        values: list[Any] = []
        for name, value in zip(names, row, strict=True):
            text = as_text(value)
            values.append(tuple(sorted(set(text.split(";")))) if name in AGGREGATED and text else text)
        out.append(tuple(values))
    return sorted(out, key=repr)


def duckdb_text(sql: str) -> str:
    """A statement's text for DuckDB: ``:name`` parameters as ``$name``; nothing else changes."""
    return _PARAMETER.sub(r"$\1", sql)


class Timings:
    def __init__(self, batch: str) -> None:
        self.batch = batch
        self.rows: list[dict[str, Any]] = []

    def add(self, statement: str, engine: str, cpu: float, seconds: float, rows: int, same: bool | None) -> None:
        self.rows.append(
            {
                "batch": self.batch,
                "statement": statement,
                "engine": engine,
                "cpu_seconds": round(cpu, 3),
                "seconds": round(seconds, 3),
                "rows": rows,
                "same_rows": "" if same is None else str(same).lower(),
            }
        )


def run_sqlite(
    warehouse: Warehouse, batch: str, params: dict[str, Any]
) -> tuple[dict[str, tuple[float, float, int]], dict[str, tuple[list[str], list[Any]]]]:
    """Each statement's (CPU, wall, rows) on SQLite, and the rows it made or found."""
    timings: dict[str, tuple[float, float, int]] = {}
    results: dict[str, tuple[list[str], list[Any]]] = {}
    with warehouse.engine.connect() as connection, connection.begin() as transaction:
        for name in reversed(PREPARED_TABLES):
            connection.exec_driver_sql(f"DELETE FROM {name} WHERE batch_id = ?", (batch,))
        staged = ["person_links", "household_crosswalk", *(spec.staging_table for spec in warehouse.specs.values())]
        _, cpu, seconds = timed(lambda: analyze(connection, staged))
        timings["analyze (inputs)"] = (cpu, seconds, 0)
        for table, statement in zip(PREPARED_TABLES, statement_names("reconcile/prepare"), strict=True):
            result, cpu, seconds = timed(
                lambda statement=statement: connection.execute(load_sql(statement), params), f"SQLite {statement}"
            )
            timings[statement] = (cpu, seconds, result.rowcount)
            _, cpu, seconds = timed(lambda table=table: analyze(connection, [table]))
            timings[f"analyze {table}"] = (cpu, seconds, 0)
            rows = connection.exec_driver_sql(f"SELECT * FROM {table} WHERE batch_id = ?", (batch,))
            results[statement] = (list(rows.keys()), rows.fetchall())
        for rule in load_rules():

            def fetch(rule_sql: str = rule.sql) -> tuple[list[str], list[Any]]:
                found = connection.execute(bind(rule_sql), params)
                return list(found.keys()), found.fetchall()

            (names, rows), cpu, seconds = timed(fetch, f"SQLite rule {rule.code}")
            timings[f"rule {rule.code}"] = (cpu, seconds, len(rows))
            results[f"rule {rule.code}"] = (names, rows)
        transaction.rollback()
    return timings, results


def load_duckdb(duck: Any, warehouse: Warehouse, copy: Path, batch: str, run_id: str) -> dict[str, int]:
    """Every warehouse table made in DuckDB from its PostgreSQL definition; the ones the
    statements read filled from the SQLite copy. Rows loaded per table."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    for table in warehouse.metadata.sorted_tables:
        duck.execute(str(CreateTable(table).compile(dialect=dialect)))
    wanted = {
        "person_links": ("batch_id", batch),
        "match_review": ("batch_id", batch),
        "household_crosswalk": (None, None),
        "finding_observations": ("run_id", run_id),
        **{spec.staging_table: ("batch_id", batch) for spec in warehouse.specs.values()},
    }
    loaded: dict[str, int] = {}
    with sqlite3.connect(copy) as source:
        for name, (key, value) in wanted.items():
            where, args = (f" WHERE {key} = ?", (value,)) if key else ("", ())
            frame = pd.read_sql_query(f'SELECT * FROM "{name}"{where}', source, params=args)
            columns = ", ".join(f'"{column}"' for column in frame.columns)
            duck.register("frame", frame)
            duck.execute(f'INSERT INTO "{name}" ({columns}) SELECT {columns} FROM frame')
            duck.unregister("frame")
            loaded[name] = len(frame)
            print(f"  loaded {name}: {len(frame):,} rows", flush=True)
    return loaded


def run_duckdb(
    duck: Any, params: dict[str, Any], batch: str
) -> tuple[dict[str, tuple[float, float, int]], dict[str, tuple[list[str], list[Any]]], dict[str, str]]:
    """Each statement's (CPU, wall, rows) on DuckDB, the rows, and the error of any statement
    DuckDB refused."""
    timings: dict[str, tuple[float, float, int]] = {}
    results: dict[str, tuple[list[str], list[Any]]] = {}
    errors: dict[str, str] = {}
    folder = sql_folder("reconcile/prepare")
    for table, statement in zip(PREPARED_TABLES, statement_names("reconcile/prepare"), strict=True):
        text = duckdb_text((folder / f"{statement.rsplit('/', 1)[1]}.sql").read_text(encoding="utf-8"))
        used = {name: value for name, value in params.items() if f"${name}" in text}
        try:
            _, cpu, seconds = timed(lambda text=text, used=used: duck.execute(text, used), f"DuckDB {statement}")
        except Exception as error:  # reported: whether the SQL runs unchanged
            errors[statement] = str(error).splitlines()[0]
            continue
        found = duck.execute(f"SELECT * FROM {table} WHERE batch_id = $batch_id", {"batch_id": batch})
        rows = found.fetchall()
        timings[statement] = (cpu, seconds, len(rows))
        results[statement] = ([column[0] for column in found.description], rows)
    for rule in load_rules():
        text = duckdb_text(rule.sql)
        used = {name: value for name, value in params.items() if f"${name}" in text}

        def fetch(text: str = text, used: dict[str, Any] = used) -> tuple[list[str], list[Any]]:
            found = duck.execute(text, used)
            return [column[0] for column in found.description], found.fetchall()

        try:
            (names, rows), cpu, seconds = timed(fetch, f"DuckDB rule {rule.code}")
        except Exception as error:
            errors[f"rule {rule.code}"] = str(error).splitlines()[0]
            continue
        timings[f"rule {rule.code}"] = (cpu, seconds, len(rows))
        results[f"rule {rule.code}"] = (names, rows)
    return timings, results, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", type=Path, required=True, help="a SQLite warehouse after a complete run")
    parser.add_argument("--batch", required=True)
    parser.add_argument("--run-id", help="the run whose findings RELAPSE_RISK reads (default: the batch id)")
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--folder", type=Path, help="where the copy is made (default: a temporary folder)")
    parser.add_argument("--threads", type=int, help="DuckDB's threads (default: DuckDB's own)")
    args = parser.parse_args()
    import duckdb  # the bench group

    run_id = args.run_id or args.batch
    folder = args.folder or Path(tempfile.mkdtemp(prefix="reconcile-engines-"))
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "warehouse.sqlite"
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{args.warehouse}{suffix}").exists():
            shutil.copyfile(f"{args.warehouse}{suffix}", f"{copy}{suffix}")
    params = {"batch_id": args.batch, "as_of": args.as_of, "run_id": run_id, "deaths_from_batch": args.batch}

    with open_warehouse(f"sqlite:///{copy}") as warehouse:
        sqlite_timings, sqlite_rows = run_sqlite(warehouse, args.batch, params)
        duck = duckdb.connect(":memory:")
        if args.threads:
            duck.execute(f"SET threads = {int(args.threads)}")
        threads = duck.execute("SELECT current_setting('threads')").fetchone()[0]
        loaded, load_cpu, load_seconds = timed(lambda: load_duckdb(duck, warehouse, copy, args.batch, run_id))
    duck_timings, duck_rows, errors = run_duckdb(duck, params, args.batch)

    table = Timings(args.batch)
    table.add("load into DuckDB (pandas)", "duckdb", load_cpu, load_seconds, sum(loaded.values()), None)
    print(f"DuckDB {duckdb.__version__}, {threads} threads; SQLite {sqlite3.sqlite_version}")
    print(f"loaded into DuckDB: {sum(loaded.values()):,} rows in {load_seconds:.1f} s ({load_cpu:.1f} CPU s)")
    print(f"{'statement':38} {'SQLite CPU':>10} {'wall':>7} {'DuckDB CPU':>10} {'wall':>7} {'rows':>8}  same")
    totals = {"sqlite": [0.0, 0.0], "duckdb": [0.0, 0.0]}
    for statement, (cpu, seconds, rows) in sqlite_timings.items():
        table.add(statement, "sqlite", cpu, seconds, rows, None)
        totals["sqlite"][0] += cpu
        totals["sqlite"][1] += seconds
        if statement not in duck_timings:
            note = errors.get(statement, "")
            print(f"{statement:38} {cpu:10.2f} {seconds:7.2f} {'':>10} {'':>7} {rows:8}  {note}")
            continue
        duck_cpu, duck_seconds, duck_count = duck_timings[statement]
        names, lite = sqlite_rows[statement]
        duck_names, theirs = duck_rows[statement]
        same = [name.lower() for name in names] == [name.lower() for name in duck_names] and comparable(
            names, lite
        ) == comparable(duck_names, theirs)
        table.add(statement, "duckdb", duck_cpu, duck_seconds, duck_count, same)
        totals["duckdb"][0] += duck_cpu
        totals["duckdb"][1] += duck_seconds
        print(
            f"{statement:38} {cpu:10.2f} {seconds:7.2f} {duck_cpu:10.2f} {duck_seconds:7.2f} "
            f"{len(lite):8}  {'yes' if same else 'NO'}"
        )
    print(
        f"{'total':38} {totals['sqlite'][0]:10.2f} {totals['sqlite'][1]:7.2f} "
        f"{totals['duckdb'][0]:10.2f} {totals['duckdb'][1]:7.2f}"
    )
    for statement, error in errors.items():
        print(f"DuckDB refused {statement}: {error}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(table.rows)
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
