"""Worker processes that end with the process that started them, and log through it.

A stage's worker processes (ingest's sources, the link's scoring, publish's county files,
the quality gate beside the link)
must not outlive their run: a run killed with SIGKILL, or by the out-of-memory killer, runs
no clean-up, and a worker left behind would go on writing into the warehouse or a scratch
folder while the next run starts. On Linux each worker, as it starts, asks the kernel to
send it SIGKILL when its parent ends (``PR_SET_PDEATHSIG``), and ends at once if its parent
is already gone. Elsewhere nothing is asked: such a worker ends when it next reads from its
pool, which its parent's end has closed.

The kernel sends the signal when the *thread* that forked the worker ends: the pools here
are started by the thread that runs the stage and live no longer than that call.

A worker's log lines belong in its run's log (the task log, the terminal): started with
:func:`forward_logging`, it sends every record through a queue, and a :class:`LogRelay`
logs them through this process's loggers.
"""

from __future__ import annotations

import ctypes
import logging
import logging.handlers
import os
import queue
import signal
import sys
import threading
from functools import cache
from typing import Any

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """In a worker forked by the process ``parent``, first thing: end when it ends."""
    prctl = _prctl()
    if prctl is None:
        return
    if prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not granted: the worker ends with its pool's pipe, as elsewhere
    if os.getppid() != parent:  # the parent ended before the request was made
        os._exit(1)


@cache
def _prctl() -> Any:
    """The C library's ``prctl``, or None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def forward_logging(records: Any, level: int, parent: int) -> None:
    """In a worker, at start: it ends with ``parent`` (this process), and every log record
    goes to this process, which logs it."""
    die_with_parent(parent)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(logging.handlers.QueueHandler(records))
    root.setLevel(level)


class LogRelay:
    """The workers' log records logged in this process while they run, by a thread of its
    own. It stops without writing to the queue: a worker killed while it wrote (the kernel's
    out-of-memory killer) leaves the queue's write lock held for good, and a stop that had
    to send something through the queue, as ``QueueListener``'s does, would wait forever."""

    def __init__(self, records: Any, name: str) -> None:
        self.records = records
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._relay, name=name, daemon=True)

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
