"""A batch's sources ingested side by side in worker processes (``lookback run``).

Each source is read, classified and standardised by itself (:func:`ingest_source`), so the
sources of a batch split cleanly over the machine's cores. How many workers:
``LOOKBACK_INGEST_WORKERS`` (1: every source in this process, one after another), else one
per core, at most one per source.

Where the workers' rows go depends on the warehouse:

* **SQLite** allows one writer at a time, and a load holds its write transaction for the
  whole read of its delivery: workers writing to the warehouse would wait for each other.
  Each worker stages its source into a database file of its own (the warehouse's schema, in
  a temporary folder beside the warehouse), and this process copies each source's rows into
  the warehouse in one transaction (what an earlier load of the batch and source wrote is
  replaced, as :func:`ingest_source` does), in the sources' order: the warehouse's rows are
  stored as the sources one after another store them.
* **PostgreSQL** takes writers at once: each worker loads its source into the warehouse, in
  its own transaction, as :func:`ingest_source` does.

A source that fails raises its error here, as it would in this process, once the sources
before it are loaded; on SQLite the sources after it are not loaded (as when sources are
ingested one after another, which stops at the first failure). On PostgreSQL a source after
it that a worker had already loaded stays loaded, whole, as if it had been retried by itself.

The workers are forked from this process once its database connections are closed
(:meth:`Warehouse.dispose`), so that they share none and open their own; forked, they
need not import the package again, nor can they run a calling script's top level again
(``spawn`` and ``forkserver`` do, in a script without a ``__main__`` guard). Their log
lines are handed to this process's loggers, so progress lines and accountings reach the
task log or the terminal as they do from this process.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url

from lookback.connections import Connections
from lookback.errors import ConfigError, LookbackError
from lookback.ingest.database import resolve_url
from lookback.ingest.load import SourceAccounting, ingest_source
from lookback.processes import die_with_parent
from lookback.scratch import scratch_folder
from lookback.sources import SourceSpec
from lookback.warehouse import Warehouse

log = logging.getLogger(__name__)

WORKERS_ENV = "LOOKBACK_INGEST_WORKERS"
# The scratch folder of the side databases, beside the warehouse (see lookback.scratch).
SCRATCH_PREFIX = "lookback-ingest-"
SIDE_SCHEMA = "ingest_side"
# The ingest stage's tables that every source writes its own rows into, besides its staging table.
BOOKKEEPING_TABLES = ("quarantine", "skipped_rows", "value_problems", "ingest_accounting")


def ingest_workers(sources: int, warehouse_url: str, environ: Mapping[str, str] | None = None) -> int:
    """How many worker processes ingest ``sources`` sources: ``LOOKBACK_INGEST_WORKERS``,
    else one per core, never more than there are sources; 1 means in this process, as for
    a SQLite warehouse in memory, which no other process can reach."""
    value = (os.environ if environ is None else environ).get(WORKERS_ENV, "").strip()
    workers = os.cpu_count() or 1
    if value:
        try:
            workers = int(value)
        except ValueError:
            workers = 0
        if workers < 1:
            raise ConfigError(f"{WORKERS_ENV}={value!r}: give the number of worker processes (1: no workers)")
    if make_url(warehouse_url).get_backend_name() == "sqlite" and _sqlite_file(warehouse_url) is None:
        return 1
    return max(1, min(workers, sources))


@dataclass(frozen=True)
class SourceJob:
    """What a worker needs to ingest one source (picklable: it is sent to the worker)."""

    spec: SourceSpec
    landing: Path | None
    batch_id: str
    warehouse_url: str  # where the worker writes: the warehouse, or its own side database
    side: bool  # whether ``warehouse_url`` is a side database the worker creates
    connections: Mapping[str, str] | None  # the source's connection id → URL, resolved here


def _ingest_job(job: SourceJob) -> SourceAccounting:
    """In a worker: ingest one source into the warehouse or into a side database of its own."""
    warehouse = Warehouse(job.warehouse_url, {job.spec.source: job.spec})
    try:
        if job.side:
            event.listen(warehouse.engine, "connect", _side_pragmas)
            warehouse.ensure_schema()
        return ingest_source(job.spec, job.landing, job.batch_id, warehouse, connections=job.connections)
    finally:
        warehouse.dispose()


def _side_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """A side database is thrown away once copied (or once its load failed): nothing needs
    to survive a crash, so no journal and no sync."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=OFF")
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()


def _worker_logging(records: Any, level: int, parent: int) -> None:
    """In a worker, at start: it ends with ``parent`` (this process), and every log record
    goes to this process, which logs it."""
    die_with_parent(parent)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(logging.handlers.QueueHandler(records))
    root.setLevel(level)


class _Relaying:
    """The workers' log records logged in this process while they run, by a thread of its
    own. It stops without writing to the queue: a worker killed while it wrote (the kernel's
    out-of-memory killer) leaves the queue's write lock held for good, and a stop that had
    to send something through the queue, as ``QueueListener``'s does, would wait forever."""

    def __init__(self, records: Any) -> None:
        self.records = records
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._relay, name="lookback-ingest-log", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Once the workers have ended: their last records logged, then the thread ended."""
        self.stopping.set()
        self.thread.join(timeout)

    def _relay(self) -> None:
        relay = _Relay()
        while True:
            try:
                record = self.records.get(timeout=0.1)
            except queue.Empty:
                if self.stopping.is_set():
                    return
                continue
            except (EOFError, OSError):  # the queue closed under it
                return
            relay.handle(record)


class _Relay(logging.Handler):
    """Logs a worker's record through this process's logger of the same name (its level,
    filters and handlers: the task log, the terminal)."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


def _sqlite_file(url: str) -> Path | None:
    """The warehouse's file when it is a SQLite file, else None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _resolved_connections(spec: SourceSpec, connections: Connections | None) -> Mapping[str, str] | None:
    """The source's connection resolved here (a resolver may be a function the workers
    cannot be given, or read what only this process has): its id → URL."""
    if spec.database is None:
        return None
    url = resolve_url(spec, connections)
    return {spec.database.connection: url.render_as_string(hide_password=False)}


def _size(spec: SourceSpec, landing: Path | None) -> int:
    """About how much work a source is: its delivered file's bytes, a workbook's counted
    four times (it is compressed, and its cells cost more to read); a database's rows are
    not counted here: such a source counts as the largest."""
    if spec.file is None:
        return 1 << 62
    if landing is None or not landing.is_dir():
        return 0
    size = sum(path.stat().st_size for path in landing.glob(spec.file.pattern) if path.is_file())
    return 4 * size if spec.file.format == "xlsx" else size


def copy_side_database(warehouse: Warehouse, source: str, batch_id: str, side: Path) -> None:
    """A source's rows staged in a side database copied into the warehouse, in one
    transaction that first removes what an earlier load of the batch and source wrote."""
    tables = [warehouse.table(name) for name in BOOKKEEPING_TABLES] + [warehouse.staging(source)]
    with warehouse.engine.connect() as connection:
        connection.exec_driver_sql(f"ATTACH DATABASE ? AS {SIDE_SCHEMA}", (str(side),))
        connection.commit()
        try:
            with connection.begin():
                warehouse.clear_source_batch(connection, source, batch_id)
                for table in tables:
                    _copy_table(connection, table.name, [column.name for column in table.columns])
        finally:
            connection.exec_driver_sql(f"DETACH DATABASE {SIDE_SCHEMA}")
            connection.commit()


def _copy_table(connection: Connection, name: str, columns: Sequence[str]) -> None:
    preparer = connection.dialect.identifier_preparer
    table = preparer.quote(name)
    column_list = ", ".join(preparer.quote(column) for column in columns)
    connection.exec_driver_sql(
        f"INSERT INTO main.{table} ({column_list}) SELECT {column_list} FROM {SIDE_SCHEMA}.{table} ORDER BY rowid"
    )


def ingest_in_workers(
    warehouse: Warehouse,
    sources: Sequence[str],
    landing_of: Callable[[SourceSpec], Path | None],
    batch_id: str,
    workers: int,
    connections: Connections | None = None,
) -> list[SourceAccounting]:
    """Ingest ``sources`` (in this order) in ``workers`` processes; returns their accountings
    in that order. ``landing_of`` gives a source's landing folder (or raises, as for that
    source alone)."""
    side_folder = _sqlite_file(warehouse.url)
    parent = Path(tempfile.gettempdir()) if side_folder is None else side_folder.parent
    with scratch_folder(parent, SCRATCH_PREFIX) as folder:
        jobs, failure = _jobs(
            warehouse, sources, landing_of, batch_id, connections, side_folder is not None, str(folder)
        )
        accountings = _run(warehouse, jobs, workers) if jobs else []
    if failure is not None:
        raise failure
    return accountings


def _run(warehouse: Warehouse, jobs: Sequence[SourceJob], workers: int) -> list[SourceAccounting]:
    """The jobs run in forked workers, each loaded into the warehouse in the jobs' order.

    The workers are forked before this process starts the thread that logs their records
    (no thread of it is copied into them), and that thread stops once they have ended, so
    that their last records are logged."""
    warehouse.dispose()
    context = multiprocessing.get_context("fork")
    records = context.Queue()
    relay = _Relaying(records)
    level = logging.getLogger("lookback").getEffectiveLevel()
    relaying = False
    try:
        with ProcessPoolExecutor(
            max_workers=min(workers, len(jobs)),
            mp_context=context,
            initializer=_worker_logging,
            initargs=(records, level, os.getpid()),
        ) as pool:
            futures = _submit(pool, jobs)
            relay.start()
            relaying = True
            try:
                return [
                    _loaded(warehouse, job, _result(job, future)) for job, future in zip(jobs, futures, strict=True)
                ]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    finally:
        if relaying:
            relay.stop()
        records.close()
        records.cancel_join_thread()  # this process never writes to it


def _jobs(
    warehouse: Warehouse,
    sources: Sequence[str],
    landing_of: Callable[[SourceSpec], Path | None],
    batch_id: str,
    connections: Connections | None,
    side: bool,
    folder: str,
) -> tuple[list[SourceJob], BaseException | None]:
    """The sources' jobs up to the first that cannot start (its landing folder or its
    connection missing), and that source's error, raised once the sources before it are loaded."""
    jobs: list[SourceJob] = []
    for source in sources:
        spec = warehouse.specs[source]
        try:
            landing = landing_of(spec)
            resolved = _resolved_connections(spec, connections)
        except Exception as error:  # raised once the sources before it are loaded, as in one process
            return jobs, error
        url = f"sqlite:///{Path(folder) / f'{source}.sqlite'}" if side else warehouse.url
        jobs.append(SourceJob(spec, landing, batch_id, url, side, resolved))
    return jobs, None


def _submit(pool: ProcessPoolExecutor, jobs: Sequence[SourceJob]) -> list[Future[SourceAccounting]]:
    """The jobs started the largest first (the batch takes at least as long as it), then in
    their order, so that the sources copied first are ready first; their futures in the
    jobs' order."""
    largest = max(range(len(jobs)), key=lambda at: _size(jobs[at].spec, jobs[at].landing), default=0)
    order = [largest, *(at for at in range(len(jobs)) if at != largest)] if jobs else []
    futures: dict[int, Future[SourceAccounting]] = {at: pool.submit(_ingest_job, jobs[at]) for at in order}
    return [futures[at] for at in range(len(jobs))]


def _result(job: SourceJob, future: Future[SourceAccounting]) -> SourceAccounting:
    """A worker's accounting, or its error. When a worker ends without either (killed, out
    of memory), every source not yet loaded fails with it: the first of them is named."""
    try:
        return future.result()
    except BrokenProcessPool as error:
        raise LookbackError(
            f"batch {job.batch_id}: a worker process ingesting its sources ended abruptly ({error}) before "
            f"{job.spec.source} was loaded (the sources before it are); {WORKERS_ENV}=1 reads the sources "
            "one after another in one process"
        ) from error


def _loaded(warehouse: Warehouse, job: SourceJob, accounting: SourceAccounting) -> SourceAccounting:
    """A worker's source, copied into the warehouse when it was staged in a side database
    (removed once copied: the batch's side databases are not on disk all at once)."""
    if job.side:
        side = make_url(job.warehouse_url).database
        assert side is not None, "a side database is a file"
        copy_side_database(warehouse, job.spec.source, job.batch_id, Path(side))
        Path(side).unlink()
    return accounting
