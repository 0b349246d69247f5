"""Reading a source from a table or a query in the department's database (``database:``).

The rows are read in the order ``order_by`` makes, in chunks of ``chunk_rows`` through a
server-side cursor where the driver has one (PostgreSQL with psycopg), and each row
becomes a :class:`~lookback.ingest.readers.DeliveredRecord` whose cells are the texts a
CSV would hold: the classification, standardisation and accounting that follow are those
of a delivered file. ``source_row`` is the 1-based ordinal of the row in the ordered
result, so ``order_by`` must tell every two rows apart; two rows that sort alike and
differ are refused (identical rows may sort alike: either is the other).

The result's column names are matched against the definition's headers as a file's header
is. A record holds the columns the definition reads, in the result's order; the others
(a key, a batch column, a load timestamp) are not part of it, so that a row whose read
columns are all empty is blank and a total line is told by its first read cell, as in a
file. They are listed in the accounting's ``ignored_headers``.

The rows are counted first (``COUNT(*)``, for the progress lines and to tell an empty
result), and counted and read in one read-only transaction, at ``REPEATABLE READ`` where
the database has it, so that the count and the rows are of one moment. No text made here
holds the connection's URL: the rows' origin is named ``db:<connection>/<schema.table>``
or ``db:<connection>/query``, and a driver's error is reported with its first line only,
any password in it blotted out.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, column, create_engine, func, select, table, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import FromClause, Select
from sqlalchemy.sql.expression import ColumnClause

from lookback.connections import Connections, as_resolver
from lookback.errors import ConfigError, DeliveryError
from lookback.ingest.readers import DeliveredRecord, cell_text, raw_json
from lookback.sources import DatabaseSpec, SourceSpec, normalise_label
from lookback.standardise.dates import cell_datetime_text

log = logging.getLogger(__name__)


class DatabaseUnreachable(ConnectionError):
    """The department's database cannot be reached, or the connection was lost while reading:
    not a :class:`~lookback.errors.LookbackError`, so that the Airflow task retries it, as it
    retries a warehouse briefly unreachable. Its words hold no password."""


# Databases whose transactions can see one snapshot for both the count and the rows.
_REPEATABLE_READ = frozenset({"postgresql", "mysql", "mariadb"})


def database_text(value: Any) -> str:
    """A database value as the text a CSV export of it would hold: NULL is an empty cell,
    an integer its digits (all of them: a database's integer is exact, unlike a sheet's
    number), a decimal without exponent, a date ``YYYY-MM-DD``, a timestamp with its time."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return cell_text(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return cell_datetime_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return cell_text(value)


def _scrubbed(message: str, url: URL | None) -> str:
    """The first line of an error's words, the URL's password blotted out."""
    line = message.strip().splitlines()[0] if message.strip() else ""
    if url is not None and url.password:
        line = line.replace(str(url.password), "***")
    return line


def _error_words(error: BaseException, url: URL | None) -> str:
    original = getattr(error, "orig", None)
    cause = original if isinstance(original, BaseException) else error
    return f"{type(cause).__name__}: {_scrubbed(str(cause), url)}"


@dataclass
class DeliveredTable:
    """A source's rows in a database, opened: its header (the result's columns) and its
    records, read on demand. Has the attributes of a
    :class:`~lookback.ingest.readers.DeliveredFile` that ingest reads; close it when done
    (it is a context manager)."""

    spec: SourceSpec
    database: DatabaseSpec
    header: tuple[str, ...]  # the result's columns the definition reads
    total: int
    records: Iterator[DeliveredRecord]
    left_out: tuple[str, ...] = ()  # the result's other columns, not read
    connection: Connection | None = None
    engine: Engine | None = None
    format: str = "database"
    encoding: str | None = None
    sheet_name: str | None = None
    header_position: int | None = None
    reread: None = None
    position_word: str = "row"
    digest: Any = field(default_factory=hashlib.sha256)

    @property
    def name(self) -> str:
        return self.database.origin

    def where(self, source_row: int, position: int) -> str:
        """``db:civil/public.roster, row 17``: the 17th row in ``order_by`` order."""
        return f"{self.database.origin}, row {source_row}"

    @property
    def header_where(self) -> str:
        return "the result's columns"

    @property
    def content_sha256(self) -> str:
        """The SHA-256 of the rows read, in order (each row's read cells as JSON text, one per line)."""
        return str(self.digest.hexdigest())

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None

    def __enter__(self) -> DeliveredTable:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def resolve_url(spec: SourceSpec, connections: Connections | None) -> URL:
    """The SQLAlchemy URL of the source's connection, or a :class:`ConfigError` naming the
    definition, the key and the connection (never the URL)."""
    database = _database(spec)
    where = f"{spec.path}: database.connection"
    try:
        url_text = as_resolver(connections)(database.connection)
    except LookupError as error:
        raise ConfigError(f"{where}: {error}") from None
    try:
        return make_url(url_text)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"{where}: connection {database.connection!r} does not resolve to a SQLAlchemy URL "
            "(driver://user:password@host/database)"
        ) from None


def _database(spec: SourceSpec) -> DatabaseSpec:
    if spec.database is None:
        raise ConfigError(f"{spec.path}: source {spec.source} is delivered as a file, not read from a database")
    return spec.database


def _rows_of(database: DatabaseSpec) -> FromClause:
    """The table, or the query as a subquery, named ``delivered``."""
    if database.table is not None:
        return table(database.table, schema=database.schema).alias("delivered")
    return text(database.query or "").columns().subquery("delivered")


def _ordered_rows(database: DatabaseSpec) -> Select[Any]:
    """``select * from <table or (query)> order by <order_by>``, every name quoted as needed."""
    ordered: list[ColumnClause[Any]] = [column(name) for name in database.order_by]
    return select(text("*")).select_from(_rows_of(database)).order_by(*ordered)


def _row_count(database: DatabaseSpec) -> Select[Any]:
    return select(func.count()).select_from(_rows_of(database))


def _parameters(database: DatabaseSpec, batch_id: str) -> dict[str, Any]:
    if database.query is None:
        return {}
    from lookback.sources import query_parameters

    given: dict[str, Any] = {"batch_id": batch_id, **dict(database.parameters)}
    return {name: given[name] for name in query_parameters(database.query)}


def open_table(spec: SourceSpec, batch_id: str, connections: Connections | None = None) -> DeliveredTable:
    """Count the source's rows and open its ordered result (see the module's words).
    Raises :class:`ConfigError` for a connection nothing resolves and
    :class:`DeliveryError` for what the database refuses (no such table or column, a
    query that fails), naming the source, its definition and the origin."""
    database = _database(spec)
    url = resolve_url(spec, connections)
    origin = database.origin
    try:
        engine = create_engine(url, poolclass=NullPool, hide_parameters=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as error:
        raise ConfigError(
            f"{spec.path}: database.connection: {database.connection!r}: {_error_words(error, url)}"
        ) from None
    try:
        connection = engine.connect()
    except SQLAlchemyError as error:
        engine.dispose()
        raise DatabaseUnreachable(
            f"{origin}: cannot connect to read source {spec.source} ({spec.path.name}): {_error_words(error, url)}"
        ) from None
    try:
        options: dict[str, Any] = {}
        if engine.dialect.name in _REPEATABLE_READ:
            options["isolation_level"] = "REPEATABLE READ"
        if engine.dialect.name == "postgresql":
            options["postgresql_readonly"] = True
        if options:
            connection = connection.execution_options(**options)
        connection.begin()
        parameters = _parameters(database, batch_id)
        total = int(connection.execute(_row_count(database), parameters).scalar_one())
        # A server-side cursor where the driver has one, fetching chunk_rows at a time.
        ordered = _ordered_rows(database).execution_options(yield_per=database.chunk_rows)
        result = connection.execute(ordered, parameters)
        columns = tuple(str(key) for key in result.keys())  # noqa: SIM118 (a Result, not a dict)
        missing = [name for name in database.order_by if name not in columns]
        if missing:  # sorted by, but not in the result (a query that leaves it out)
            raise DeliveryError(
                f"{origin}: order_by column(s) {', '.join(missing)} not in the result "
                f"(columns: {', '.join(columns)}) ({spec.path.name}: database.order_by)"
            )
    except SQLAlchemyError as error:
        connection.close()
        engine.dispose()
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            raise DatabaseUnreachable(f"{origin}: connection lost: {_error_words(error, url)}") from None
        raise DeliveryError(
            f"{origin}: cannot read source {spec.source} ({spec.path.name}, "
            f"order_by {', '.join(database.order_by)}): {_error_words(error, url)}"
        ) from None
    except BaseException:
        connection.close()
        engine.dispose()
        raise
    read = {normalise_label(header) for column_spec in spec.columns for header in column_spec.headers}
    kept = [position for position, name in enumerate(columns) if normalise_label(name) in read]
    delivered = DeliveredTable(
        spec=spec,
        database=database,
        header=tuple(columns[position] for position in kept),
        total=total,
        records=iter(()),
        left_out=tuple(name for name in columns if normalise_label(name) not in read),
        connection=connection,
        engine=engine,
    )
    key_positions = [columns.index(name) for name in database.order_by]
    delivered.records = _records(delivered, result, url, kept, key_positions)
    return delivered


def _records(
    delivered: DeliveredTable, result: Any, url: URL, kept: list[int], key_positions: list[int]
) -> Iterator[DeliveredRecord]:
    """The result's rows as records numbered from 1 (the read columns' texts), checked to
    sort apart."""
    database = delivered.database
    every_column = len(kept) == len(delivered.header) + len(delivered.left_out)
    previous_key: tuple[Any, ...] | None = None
    previous: tuple[Any, ...] | None = None
    number = 0
    digest = delivered.digest
    try:
        for partition in result.partitions():
            for row in partition:
                number += 1
                values = tuple(row)
                key = tuple(values[position] for position in key_positions)
                if key == previous_key and values != previous:
                    raise DeliveryError(
                        f"{delivered.name}: rows {number - 1} and {number} sort alike by order_by "
                        f"({', '.join(database.order_by)}) but differ, so a row's number would not mean the "
                        f"same row on every read: add columns that tell them apart to database.order_by in "
                        f"{delivered.spec.path.name}"
                    )
                previous_key, previous = key, values
                texts = tuple(map(database_text, values if every_column else [values[at] for at in kept]))
                digest.update(raw_json(texts).encode("utf-8"))
                digest.update(b"\n")
                yield DeliveredRecord(number, number, texts)
    except SQLAlchemyError as error:
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            raise DatabaseUnreachable(
                f"{delivered.name}: connection lost after row {number}: {_error_words(error, url)}"
            ) from None
        raise DeliveryError(
            f"{delivered.name}: reading failed after row {number}: {_error_words(error, url)}"
        ) from None
    if number != delivered.total:
        log.warning(
            "%s: %s rows read where the count said %s", delivered.spec.source, f"{number:,}", f"{delivered.total:,}"
        )
