"""Fault points: where the fault tests (``tests/test_faults.py``) stop a run in the middle of
a stage, to show that a run killed or cut off from its warehouse anywhere leaves the
warehouse and the published folder as they were, and that the next run completes.

Each stage calls :func:`fault_point` once it has written part of its work, inside its open
transaction (``ingest``, ``validate``, ``link``, ``reconcile``) or its staging folder
(``publish``). Two environment variables act on the points; neither is ever set outside
those tests, where a point costs two look-ups in ``os.environ``:

``LOOKBACK_KILL_AT=<point>``
    The process that reaches the point kills the run with SIGKILL: itself, or, in a worker
    process of a stage (``multiprocessing``'s child), the process that started the run,
    and then waits (at most a minute) to be killed with it (see :mod:`lookback.processes`).

``LOOKBACK_PAUSE_AT=<point>[,<point>...]`` with ``LOOKBACK_PAUSE_DIR=<folder>``
    The first process to reach a named point creates the empty file ``<folder>/<point>``
    and waits (at most a minute) until something is written into it: the test acts
    meanwhile (it terminates the warehouse's connections) and then lets the run go on. A
    point pauses once only, whichever process reaches it and however often (a retry of the
    stage runs on).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

KILL_ENV = "LOOKBACK_KILL_AT"
PAUSE_ENV = "LOOKBACK_PAUSE_AT"
PAUSE_DIR_ENV = "LOOKBACK_PAUSE_DIR"
WAIT_SECONDS = 60.0


def fault_point(name: str) -> None:
    """The stage ``name`` has reached its fault point: see the module's description."""
    environ = os.environ
    if environ.get(KILL_ENV) == name:
        _kill_run()
    paused = environ.get(PAUSE_ENV)
    if paused and name in paused.split(","):
        _pause(Path(environ[PAUSE_DIR_ENV]) / name)


def _kill_run() -> None:
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None:
        os.kill(os.getpid(), signal.SIGKILL)
        return
    os.kill(parent.pid, signal.SIGKILL)
    _wait(lambda: False)  # a worker that outlives its parent stays here for the test to see
    os._exit(1)


def _pause(marker: Path) -> None:
    try:
        descriptor = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return  # paused already
    os.close(descriptor)
    _wait(lambda: marker.stat().st_size > 0)


def _wait(done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline and not done():
        time.sleep(0.02)
