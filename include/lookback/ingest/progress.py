"""Progress lines for the task log while a large delivery is read.

At most one line every :data:`PROGRESS_SECONDS` (checked once per chunk of records, never
per record), e.g. ``insurance: 120,000 of 299,898 rows (40%), 11,500 rows/s, about 16 s
left``; the total is given where it is known without reading the delivery again (a CSV's
records, counted by the pass that counts fields; a workbook's rows; a database's
``COUNT(*)``). A delivery read within the interval logs no progress line at all, only the
accounting at its end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 10.0


def duration_words(seconds: float) -> str:
    """``45 s``, ``3 min 20 s``, ``1 h 05 min``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, seconds_left = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {seconds_left} s"
    hours, minutes_left = divmod(minutes, 60)
    return f"{hours} h {minutes_left:02d} min"


class Progress:
    """Logs how far a source's read has come, at most once every ``every_seconds``."""

    def __init__(
        self,
        source: str,
        total: int | None,
        every_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.total = total
        self.every_seconds = PROGRESS_SECONDS if every_seconds is None else every_seconds
        self.clock = clock
        self.started = clock()
        self.last_line = self.started

    def update(self, done: int) -> None:
        """``done`` rows are read: a line if the interval has passed since the last one."""
        now = self.clock()
        if now - self.last_line < self.every_seconds:
            return
        self.last_line = now
        log.info("%s", self.line(done, now - self.started))

    def line(self, done: int, elapsed: float) -> str:
        rate = done / elapsed if elapsed > 0 else 0.0
        words = f"{self.source}: {done:,} rows"
        if self.total:
            words = f"{self.source}: {done:,} of {self.total:,} rows ({100 * done // self.total}%)"
        words += f", {rate:,.0f} rows/s"
        if self.total and rate > 0 and done <= self.total:
            words += f", about {duration_words((self.total - done) / rate)} left"
        return words
