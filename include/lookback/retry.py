"""A stage run again when the warehouse's connection was lost under it.

A PostgreSQL connection can end in the middle of a stage: the server restarted or failed
over, an administrator (or a pooler) terminated the backend, the network dropped. Every
stage writes in transactions that replace what it wrote before for the batch, so a stage
cut off this way left nothing half written and can simply run again: :func:`retry_stage`
does, a few times, for exactly these errors (any other error is raised at once), with a
warning naming the stage, the attempt and the reason (the driver's first line, never the
statement or its parameters).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from lookback.warehouse import Warehouse

log = logging.getLogger(__name__)

ATTEMPTS = 3
PAUSE_SECONDS = 1.0
# SQLSTATE classes of a lost connection: connection exceptions (08) and operator
# intervention (57P: admin_shutdown, crash_shutdown, cannot_connect_now, database_dropped).
_LOST_STATES = ("08", "57P")

_Result = TypeVar("_Result")


def disconnected(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from or during) is a lost connection to
    the database: SQLAlchemy's invalidated connection, or the driver's own error with a
    connection SQLSTATE (raised through a raw cursor, as PostgreSQL's COPY is)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_LOST_STATES):
            return True
        if type(current).__module__.startswith("psycopg") and type(current).__name__ == "OperationalError":
            closed = getattr(getattr(current, "pgconn", None), "status", None)
            if state is None and closed is not None and int(closed) != 0:
                return True
        current = current.__cause__ or current.__context__
    return False


def retry_stage(
    stage: str,
    warehouse: Warehouse,
    call: Callable[[], _Result],
    attempts: int = ATTEMPTS,
    pause: float = PAUSE_SECONDS,
) -> _Result:
    """``call()`` (the stage), run again up to ``attempts`` times in all when it loses the
    warehouse's connection; the connections pooled then are thrown away first."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as error:
            if attempt == attempts or not disconnected(error):
                raise
            log.warning(
                "stage %s lost its connection to the warehouse (%s); running the stage again, attempt %d of %d",
                stage,
                _reason(error),
                attempt + 1,
                attempts,
            )
            warehouse.dispose()
            time.sleep(pause)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _reason(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    return f"{type(original).__name__}: {lines[0] if lines else 'no message'}"
