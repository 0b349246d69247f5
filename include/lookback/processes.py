"""Worker processes that end with the process that started them.

A stage's worker processes (ingest's sources, the link's scoring, publish's county files)
must not outlive their run: a run killed with SIGKILL, or by the out-of-memory killer, runs
no clean-up, and a worker left behind would go on writing into the warehouse or a scratch
folder while the next run starts. On Linux each worker, as it starts, asks the kernel to
send it SIGKILL when its parent ends (``PR_SET_PDEATHSIG``), and ends at once if its parent
is already gone. Elsewhere nothing is asked: such a worker ends when it next reads from its
pool, which its parent's end has closed.

The kernel sends the signal when the *thread* that forked the worker ends: the pools here
are started by the thread that runs the stage and live no longer than that call.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
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
