"""Python's cycle collector kept out of the way of work that makes millions of objects.

Reading a delivery and generating a batch make millions of objects that hold no reference
cycle (records, their cells, a workbook's rows read at once, the conversion remembered for
each distinct text) and keep them until the work ends; each full pass of the collector
walked all of them again and freed nothing (a third of the generator's time at 100,000
persons). The few cycles they make are collected once the collector runs again.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """The collector stopped for the block (left as it was when already stopped)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
