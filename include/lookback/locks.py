"""Holds on a batch in the warehouse: one run of a batch at a time, wherever it runs.

A run of the pipeline on a batch (``lookback run``, the reconcile DAG's run, or one stage
by hand) holds the batch in ``batch_holds`` from its first write to its last; an ingest
of one of its sources holds it too, in ``ingest`` mode, so that several sources of a batch
can be ingested at once but none while the batch is being linked or looked back. A second
run of the same batch waits for the hold (``wait`` seconds) or is refused with a
:class:`BatchBusyError` naming who holds it since when. The hold is a row, not a lock of
one connection or a file on one worker's disk: the tasks of one Airflow run on several
workers share their run's hold (its owner is the DAG run), and a stage retried on a new
connection keeps it.

A hold left by a process that died (``kill -9``, a machine restarted) is taken over when
its owner is a process of this host that no longer exists; a hold of an Airflow run is
given back by the run's last task or, when the run fails, by the DAG's failure callback.
``lookback holds`` lists the holds, ``lookback unlock --batch B`` removes them.

Steps that write what several batches share (the person and household keys, the findings'
history) take a short transaction-level lock of their own, :func:`one_writer_at_a_time`:
two batches of disjoint counties run side by side and give the same results as one after
the other.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Column, Connection, DateTime, Integer, MetaData, String, Table, Text, delete, select, text

from lookback.errors import LookbackError

if TYPE_CHECKING:
    from lookback.warehouse import Warehouse

log = logging.getLogger(__name__)

Mode = Literal["run", "ingest"]
# How often a waiting run looks again whether the batch is free, in seconds.
POLL_SECONDS = 1.0


class BatchBusyError(LookbackError):
    """The batch is held by another run (or, for a run, by an ingest of one of its sources)."""


def define_tables(metadata: MetaData) -> None:
    """The holds on batches: one row per holder of a batch."""
    Table(
        "batch_holds",
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("owner", String(200), primary_key=True),  # process:<host>:<pid>:<nonce> or airflow:<dag>:<run>
        Column("mode", String(8), nullable=False),  # run | ingest
        Column("label", Text, nullable=False),  # what holds it, for people: "lookback run", "reconcile/<run id>"
        Column("host", String(200), nullable=False),
        Column("pid", Integer, nullable=False),
        Column("acquired_at", DateTime, nullable=False),
    )


@dataclass(frozen=True)
class Holder:
    """Who holds a batch: this process, or an Airflow DAG run (whose tasks share it)."""

    owner: str
    mode: Mode
    label: str

    @classmethod
    def this_process(cls, label: str, mode: Mode = "run") -> Holder:
        nonce = uuid.uuid4().hex[:8]
        return cls(f"process:{socket.gethostname()}:{os.getpid()}:{nonce}", mode, label)

    @classmethod
    def airflow_run(cls, dag_id: str, run_id: str, mode: Mode = "run") -> Holder:
        return cls(f"airflow:{dag_id}:{run_id}"[:200], mode, f"{dag_id}/{run_id}")


@dataclass(frozen=True)
class Hold:
    batch_id: str
    owner: str
    mode: str
    label: str
    host: str
    pid: int
    acquired_at: datetime

    def describe(self) -> str:
        return (
            f"{self.label} ({self.mode}, host {self.host}, pid {self.pid}) "
            f"since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC"
        )


def lock_key(name: str) -> int:
    """The PostgreSQL advisory lock key of a named step: 64 bits, "lo" in the high word and
    a checksum of the name in the low one, apart from the schema lock's key."""
    return (0x6C6F << 32) | zlib.crc32(f"lookback:{name}".encode())


def one_writer_at_a_time(connection: Connection, name: str) -> None:
    """Within the connection's transaction, wait until no other transaction holds the step
    ``name``, and hold it until this one ends. PostgreSQL: a transaction-level advisory lock.
    SQLite: a write (which takes the database's one write lock for the transaction)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})
    else:
        connection.execute(text("DELETE FROM batch_holds WHERE 1 = 0"))


def _alive(hold: Hold) -> bool:
    """Whether the holder may still be running: an Airflow run until it gives it back; a
    process of another host as long as it is there (this host cannot tell)."""
    if not hold.owner.startswith("process:") or hold.host != socket.gethostname():
        return True
    try:
        os.kill(hold.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _conflicts(mine: Holder, theirs: Hold) -> bool:
    return theirs.owner != mine.owner and (mine.mode == "run" or theirs.mode == "run")


def holds(warehouse: Warehouse, batch_id: str | None = None) -> list[Hold]:
    """The holds, of one batch or all, oldest first."""
    table = warehouse.table("batch_holds")
    query = select(table).order_by(table.c.acquired_at, table.c.batch_id)
    if batch_id is not None:
        query = query.where(table.c.batch_id == batch_id)
    with warehouse.engine.connect() as connection:
        return [Hold(**row._mapping) for row in connection.execute(query)]


def _try(warehouse: Warehouse, batch_id: str, holder: Holder) -> list[Hold]:
    """Take the hold if nothing conflicts (holds of dead processes are dropped); return the
    conflicting holds (empty: taken)."""
    table = warehouse.table("batch_holds")
    with warehouse.engine.begin() as connection:
        one_writer_at_a_time(connection, f"holds:{batch_id}")
        present = [
            Hold(**row._mapping) for row in connection.execute(select(table).where(table.c.batch_id == batch_id))
        ]
        for hold in present:
            if not _alive(hold):
                log.warning("batch %s: the hold of %s is taken back (its process has ended)", batch_id, hold.describe())
                connection.execute(delete(table).where(table.c.batch_id == batch_id, table.c.owner == hold.owner))
        present = [hold for hold in present if _alive(hold)]
        conflicting = [hold for hold in present if _conflicts(holder, hold)]
        if conflicting:
            return conflicting
        if not any(hold.owner == holder.owner for hold in present):
            connection.execute(
                table.insert().values(
                    batch_id=batch_id,
                    owner=holder.owner,
                    mode=holder.mode,
                    label=holder.label,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    acquired_at=datetime.now(UTC).replace(tzinfo=None, microsecond=0),
                )
            )
    return []


def acquire(warehouse: Warehouse, batch_id: str, holder: Holder, wait: float = 0.0) -> None:
    """Hold the batch for ``holder`` (again: nothing changes), waiting up to ``wait`` seconds
    while another run holds it; then raise :class:`BatchBusyError`."""
    deadline = time.monotonic() + max(wait, 0.0)
    announced = False
    while True:
        conflicting = _try(warehouse, batch_id, holder)
        if not conflicting:
            return
        if time.monotonic() >= deadline:
            held_by = "; ".join(hold.describe() for hold in conflicting)
            waited = f" after waiting {wait:g} s" if wait > 0 else ""
            raise BatchBusyError(
                f"batch {batch_id} is running elsewhere: held by {held_by}; {holder.label} did not start{waited}. "
                f"Wait for it to finish (or give --wait SECONDS), or, if it is certain that nothing runs, "
                f"lookback unlock --batch {batch_id}"
            )
        if not announced:
            log.info("batch %s is held by %s; waiting up to %g s", batch_id, conflicting[0].describe(), wait)
            announced = True
        time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0.01)))


def release(warehouse: Warehouse, batch_id: str, holder: Holder) -> None:
    """Give back the holder's hold on the batch (nothing if it has none)."""
    table = warehouse.table("batch_holds")
    with warehouse.engine.begin() as connection:
        connection.execute(delete(table).where(table.c.batch_id == batch_id, table.c.owner == holder.owner))


def release_owner(warehouse: Warehouse, holder: Holder) -> int:
    """Give back every hold of the holder, whichever batch (a failed Airflow run's callback,
    which may not be told its batch); returns how many there were."""
    table = warehouse.table("batch_holds")
    with warehouse.engine.begin() as connection:
        return connection.execute(delete(table).where(table.c.owner == holder.owner)).rowcount or 0


def release_all(warehouse: Warehouse, batch_id: str) -> int:
    """Remove every hold on the batch (``lookback unlock``); returns how many there were."""
    table = warehouse.table("batch_holds")
    with warehouse.engine.begin() as connection:
        return connection.execute(delete(table).where(table.c.batch_id == batch_id)).rowcount or 0


@contextmanager
def holding(warehouse: Warehouse, batch_id: str, holder: Holder, wait: float = 0.0) -> Iterator[None]:
    """Hold the batch for the block; given back however the block ends."""
    acquire(warehouse, batch_id, holder, wait)
    try:
        yield
    finally:
        release(warehouse, batch_id, holder)
