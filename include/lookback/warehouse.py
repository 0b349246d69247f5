"""The warehouse: SQLAlchemy tables on SQLite (default) or PostgreSQL.

Each stage defines its own tables (``ingest/tables.py``: the bookkeeping of deliveries
and a staging table per source YAML, ``staging_<source>``; ``link/tables.py``;
``quality/tables.py``; ``reconcile/tables.py``); this module gathers them, opens the
engine and writes rows. Every table is keyed by batch or run, and loading a batch again
replaces what that batch loaded before, in one transaction: retries and re-runs are safe.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    Boolean,
    Connection,
    Date,
    Engine,
    Integer,
    MetaData,
    Numeric,
    Select,
    Table,
    Text,
    create_engine,
    delete,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Result, make_url
from sqlalchemy.types import TypeEngine

from lookback import locks
from lookback.errors import ConfigError
from lookback.ingest import tables as ingest_tables
from lookback.link import tables as link_tables
from lookback.reconcile import tables as reconcile_tables
from lookback.sources import BOOLEAN, DATE, INTEGER, MONEY, SourceSpec
from lookback.validate import tables as validate_tables

log = logging.getLogger(__name__)

INSERT_CHUNK = 5_000
# Tables of an earlier name → their name now (the reconcile stage's tables were lookback_*).
RENAMED: Mapping[str, str] = {
    f"lookback_{name}": f"reconcile_{name}"
    for name in ("runs", "rows", "persons", "household_members", "households", "dibao_households")
}

_KINDS: Mapping[str, type[TypeEngine[Any]] | TypeEngine[Any]] = {
    "text": Text,
    DATE: Date,
    INTEGER: Integer,
    MONEY: Numeric(14, 2),
    BOOLEAN: Boolean,
}


class _StringAgg:
    """``string_agg(value, separator)`` as PostgreSQL has it, for SQLite before 3.44: the
    look-back's SQL runs unchanged on both (order is the caller's business)."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self.separator = ","

    def step(self, value: Any, separator: str) -> None:
        if value is not None:
            self.values.append(str(value))
            self.separator = separator

    def finalize(self) -> str | None:
        return self.separator.join(self.values) if self.values else None


# Python's sqlite3 binds ints, floats and text directly but looks for an adapter for every
# other value, None included, and a search that finds none costs more than binding the NULL
# (an attribute looked up and missed); one registered that gives None back is found at once.
# Staged rows hold millions of NULLs (no problem, no duplicate, a blank optional cell).
_NULL: Mapping[None, None] = {}  # its get gives None back for None
sqlite3.register_adapter(type(None), _NULL.get)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.create_aggregate("string_agg", 2, _StringAgg)
    cursor = dbapi_connection.cursor()
    # 16 KiB pages for a new warehouse (an existing one keeps its own): the stages read
    # tables of millions of rows whole or by key, and at a million persons the look-back
    # took about a tenth less with them than with SQLite's 4 KiB (fewer reads, shallower
    # trees). Set before anything is written; WAL then fixes it.
    cursor.execute("PRAGMA page_size=16384")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (the UI, reports) do not block a load
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL needs no sync per commit to stay consistent (a power cut loses at most the last
    # commits); a 128 MiB page cache and temporary tables in memory, for a warehouse of
    # millions of rows, not SQLite's default 2 MB.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA cache_size=-131072")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def create_warehouse_engine(url: str) -> Engine:
    """An engine for the warehouse URL; a SQLite file's folder is created if missing. Its
    errors never show a statement's parameters: they can hold identity numbers."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


# The PostgreSQL advisory lock (one per database) taken while a process checks and creates the schema.
SCHEMA_LOCK_KEY = 0x6C6F6F6B  # "look"


class Warehouse:
    """The warehouse for a set of source definitions."""

    def __init__(self, url: str, specs: Mapping[str, SourceSpec]) -> None:
        self.url = url
        self.specs = dict(specs)
        self.metadata = MetaData()
        for define_tables in (ingest_tables.define_tables, link_tables.define_tables, validate_tables.define_tables):
            define_tables(self.metadata)
        reconcile_tables.define_tables(self.metadata)
        locks.define_tables(self.metadata)
        for spec in self.specs.values():
            ingest_tables.staging_table(self.metadata, spec)

    @cached_property
    def engine(self) -> Engine:
        return create_warehouse_engine(self.url)

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for logs and summaries."""
        return make_url(self.url).render_as_string(hide_password=True)

    def table(self, name: str) -> Table:
        return self.metadata.tables[name]

    def staging(self, source: str) -> Table:
        return self.table(self.specs[source].staging_table)

    def ensure_schema(self) -> None:
        """Create missing tables; refuse to write into a table whose columns differ. A table
        of an earlier name (``RENAMED``) is renamed first, its rows kept: the runs' order and
        history live in one of them. On PostgreSQL one process at a time does it (tasks on
        several workers open a new warehouse at once; see :meth:`_schema_lock`)."""
        with self._schema_lock():
            self._ensure_schema()

    @contextmanager
    def _schema_lock(self) -> Iterator[None]:
        """On PostgreSQL, a session advisory lock held while the schema is checked: two
        processes creating the same table at once would make one fail on the other's (a
        unique violation of ``pg_type``), where the second should find it made. SQLite
        serialises its writers itself."""
        if self.engine.dialect.name != "postgresql":
            yield
            return
        with self.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
                connection.commit()

    def _ensure_schema(self) -> None:
        self._rename_tables()
        self.metadata.create_all(self.engine, checkfirst=True)
        for table in self.metadata.sorted_tables:  # an index added to an existing table
            for index in table.indexes:
                index.create(self.engine, checkfirst=True)
        inspector = inspect(self.engine)
        for table in self.metadata.sorted_tables:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            expected = {column.name for column in table.columns}
            if present < expected and all(table.c[name].nullable for name in expected - present):
                self._add_columns(table, sorted(expected - present))
            elif present != expected:
                missing = sorted(expected - present)
                extra = sorted(present - expected)
                raise ConfigError(
                    f"warehouse table {table.name} does not match the source definitions "
                    f"(missing columns: {missing or 'none'}; unknown columns: {extra or 'none'}); "
                    "point --warehouse at a new database or migrate this one"
                )

    def _add_columns(self, table: Table, names: Sequence[str]) -> None:
        """Add columns a later version defines to a table written by an earlier one: each
        may be empty, so the rows already there stay as they are, with none in it."""
        preparer = self.engine.dialect.identifier_preparer
        with self.engine.begin() as connection:
            for name in names:
                column = table.c[name]
                kind = column.type.compile(dialect=self.engine.dialect)
                connection.exec_driver_sql(
                    f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {preparer.quote(name)} {kind}"
                )
                log.info("warehouse table %s: column %s added", table.name, name)

    def _rename_tables(self) -> None:
        existing = set(inspect(self.engine).get_table_names())
        renames = [(old, new) for old, new in RENAMED.items() if old in existing and new not in existing]
        if not renames:
            return
        preparer = self.engine.dialect.identifier_preparer
        with self.engine.begin() as connection:
            for old, new in renames:
                connection.exec_driver_sql(f"ALTER TABLE {preparer.quote(old)} RENAME TO {preparer.quote(new)}")
                log.info("warehouse table %s renamed %s", old, new)

    def clear_source_batch(self, connection: Connection, source: str, batch_id: str) -> None:
        """Remove what an earlier load of this batch and source wrote."""
        for name in ("quarantine", "skipped_rows", "value_problems", "ingest_accounting"):
            table = self.table(name)
            connection.execute(delete(table).where(table.c.batch_id == batch_id, table.c.source == source))
        staging = self.staging(source)
        connection.execute(delete(staging).where(staging.c.batch_id == batch_id))

    @staticmethod
    def insert(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        for start in range(0, len(rows), INSERT_CHUNK):
            connection.execute(table.insert(), list(rows[start : start + INSERT_CHUNK]))

    @staticmethod
    def insert_records(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rows as dictionaries with the same keys, in one bulk insert (:meth:`bulk_insert`),
        each value bound as its column's type binds it: what :meth:`insert` stores, without
        SQLAlchemy's work for every row (tens of thousands of findings). No column default is
        applied: each row names every column it sets."""
        if not rows:
            return
        dialect = connection.dialect
        columns: dict[str, Sequence[Any]] = {}
        for name in rows[0]:
            values = [row[name] for row in rows]
            processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            columns[name] = values if processor is None else [processor(value) for value in values]
        Warehouse.bulk_insert(connection, table, columns)

    @staticmethod
    def bulk_insert(connection: Connection, table: Table, columns: Mapping[str, Sequence[Any]]) -> None:
        """Many rows at once, given column by column: COPY on PostgreSQL, one executemany of
        tuples elsewhere (building a dict per row costs more than the database's work). On
        SQLite the driver is handed the rows as they are zipped from the columns, not a list
        of them: each row's tuple is bound and let go before the next is made, so one tuple
        serves them all."""
        names = list(columns)
        if not names or not len(columns[names[0]]):
            return
        rows = zip(*(columns[name] for name in names), strict=True)
        preparer = connection.dialect.identifier_preparer
        target = preparer.format_table(table)
        column_list = ", ".join(preparer.quote(name) for name in names)
        if connection.dialect.name == "postgresql":
            raw = connection.connection.driver_connection
            assert raw is not None, "a connection in a transaction has its driver connection"
            with raw.cursor() as cursor, cursor.copy(f"COPY {target} ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        placeholders = ", ".join("?" for _ in names)
        statement = f"INSERT INTO {target} ({column_list}) VALUES ({placeholders})"
        if connection.dialect.name == "sqlite":
            driver = connection.connection.driver_connection
            assert driver is not None, "a connection in a transaction has its driver connection"
            cursor = driver.cursor()
            try:
                cursor.executemany(statement, rows)
            finally:
                cursor.close()
            return
        connection.exec_driver_sql(statement, list(rows))

    @staticmethod
    def plain_rows(connection: Connection, query: Select[Any]) -> list[tuple[Any, ...]]:
        """The query's rows as the driver's tuples, where no selected column's type converts
        what the driver returns (strings and integers): SQLAlchemy's row objects cost more
        than reading hundreds of thousands of rows. Otherwise its rows, converted, as tuples."""
        dialect = connection.dialect
        result = connection.execute(query)
        if all(
            column.type.dialect_impl(dialect).result_processor(dialect, None) is None
            for column in query.selected_columns
        ):
            cursor = result.cursor
            assert cursor is not None, "a query's result has its cursor"
            rows = list(cursor.fetchall())
            result.close()
            return rows
        return [tuple(row) for row in result]

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


def shared_strings(
    values: np.ndarray, codes: np.ndarray, uniques: Any, pool: dict[str, str] | None = None
) -> np.ndarray:
    """``values`` (objects, factorized into ``codes`` and ``uniques``) with equal strings one
    object: read from the warehouse, each row holds its own copy of its county, village or
    date (at a million persons, gigabytes). ``pool``: the strings to share across calls (the
    chunks of one column). Missing values are kept as they were."""
    distinct = np.asarray(uniques, dtype=object)
    if pool is not None:
        distinct = np.array(
            [pool.setdefault(value, value) if type(value) is str else value for value in distinct.tolist()],
            dtype=object,
        )
    shared = distinct[np.clip(codes, 0, None)] if len(distinct) else values.copy()
    missing = codes < 0
    shared[missing] = values[missing]
    return shared


def rows_as_dicts(result: Result[Any]) -> list[dict[str, Any]]:
    """A statement's rows as dicts of its column names (zipped with the names once read: a
    third faster than each row's mapping)."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result]
