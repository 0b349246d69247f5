"""The landing flag trigger: starts a source's ingest DAG when a department says its export
has landed.

A department drops its export into the batch's folder of the landing zone, then a flag file
``<source>.ready`` beside it (``landing/<batch>/<source>.ready``): the flag says the export
is complete, so a half-copied file is never read. The stock file triggers watch one fixed
file name and carry nothing in their event; this one globs every batch folder for the
source's flag, takes the oldest flag it finds (renaming it ``<source>.taken``, so that it
fires once) and puts the batch, the source and the batch folder in the event's payload,
which the ingest DAG reads from its triggering asset event.

One flag of a source is in flight at a time: the ingest run that reads the batch marks its
flag handled (``<source>.done``), and only then is the next batch's flag taken. Airflow
gathers the events of an asset that arrive while a run of its DAG is queued or running into
one run, and ten flags taken at once were ten events for two runs: eight batches never
ingested. A flag taken longer ago than ``stale_after`` seconds and not handled (its run
failed for good, or never started) is fired again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

log = logging.getLogger(__name__)

FLAG = ".ready"
TAKEN = ".taken"
DONE = ".done"
# A flag taken this long ago and not handled fires again (seconds).
STALE_AFTER_SECONDS = 15 * 60.0
# What a return's or an office's name must not hold: a control character (a line break,
# NUL) would forge log lines and names downstream; a backslash is a separator elsewhere.
_UNSAFE_NAME = re.compile(r"[\\\x00-\x1f\x7f]")
# Symbolic links already reported (a trigger looks every few seconds: each is said once).
_REPORTED: set[Path] = set()


def _linked(path: Path, folder: Path) -> bool:
    """Whether ``path`` or the folder it is in is a symbolic link: what such a link names
    may lie anywhere on the machine, and is never taken (said once, in the log)."""
    linked = path.is_symlink() or folder.is_symlink()
    if linked and path not in _REPORTED:
        _REPORTED.add(path)
        log.warning("%r: a symbolic link (or in a linked folder), not a delivered file: not taken", str(path))
    return linked


def _flags(landing: Path, source: str, suffix: str) -> list[Path]:
    """The source's flags ending in ``suffix`` under ``landing``, oldest first; a flag that is
    a symbolic link, or in a batch folder that is one, is left out."""
    flags = []
    for flag in landing.glob(f"*/{source}{suffix}"):
        if _linked(flag, flag.parent):
            continue
        try:
            flags.append((flag.stat().st_mtime, flag.parent.name, flag))
        except FileNotFoundError:  # taken or handled by another triggerer between glob and stat
            continue
    return [flag for _, _, flag in sorted(flags)]


def oldest_flag(landing: Path, source: str) -> Path | None:
    """The oldest ``<batch>/<source>.ready`` under ``landing`` (None: none is there)."""
    landed = _flags(landing, source, FLAG)
    return landed[0] if landed else None


def in_flight(landing: Path, source: str) -> list[Path]:
    """The source's flags taken and not yet handled, oldest first."""
    return _flags(landing, source, TAKEN)


def mark_done(folder: Path, source: str) -> bool:
    """The ingest of ``folder``'s batch handled its flag: the next one may be taken."""
    try:
        (folder / f"{source}{TAKEN}").replace(folder / f"{source}{DONE}")
    except FileNotFoundError:  # started by hand, or handled already
        return False
    return True


def next_flag(landing: Path, source: str, stale_after: float, now: float) -> tuple[Path, bool] | None:
    """The flag to fire for now, and whether it is one fired before that went stale; None
    while one is in flight (or none has landed)."""
    taken = in_flight(landing, source)
    if taken:
        oldest = taken[0]
        try:
            stale = now - oldest.stat().st_mtime > stale_after
        except FileNotFoundError:
            return None
        return (oldest, True) if stale else None
    flag = oldest_flag(landing, source)
    return (flag, False) if flag is not None else None


def take_flag(flag: Path) -> bool:
    """Rename a flag to ``.taken``, dated now (when it went in flight); False when another
    triggerer took it first."""
    taken = flag.with_suffix(TAKEN)
    try:
        flag.replace(taken)
        os.utime(taken)
    except FileNotFoundError:
        return False
    return True


class LandingFlagTrigger(BaseEventTrigger):
    """Fire once for the oldest landed flag of ``source`` under ``landing`` (checked every
    ``poke_interval`` seconds); the event's payload names the batch, the source and the folder."""

    def __init__(
        self,
        *,
        landing: str,
        source: str,
        poke_interval: float = 5.0,
        stale_after: float = STALE_AFTER_SECONDS,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.landing = landing
        self.source = source
        self.poke_interval = poke_interval
        self.stale_after = stale_after

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "lookback_triggers.LandingFlagTrigger",
            {
                "landing": self.landing,
                "source": self.source,
                "poke_interval": self.poke_interval,
                "stale_after": self.stale_after,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        landing = Path(self.landing)
        while True:
            found = await asyncio.to_thread(next_flag, landing, self.source, self.stale_after, time.time())
            if found is not None:
                flag, stale = found
                if stale:
                    # Fired before and never handled: fire again, and wait as long before the next time.
                    await asyncio.to_thread(os.utime, flag)
                    self.log.warning("%s of batch %s was not ingested: fired again", self.source, flag.parent.name)
                elif not await asyncio.to_thread(take_flag, flag):
                    await asyncio.sleep(self.poke_interval)
                    continue
                batch = flag.parent
                self.log.info("%s landed in batch %s (%s)", self.source, batch.name, batch)
                yield TriggerEvent({"batch": batch.name, "source": self.source, "landing": str(batch)})  # type: ignore[no-untyped-call]
                return
            await asyncio.sleep(self.poke_interval)


# Returned county workbooks (the rectification ledger)

RETURN_SUFFIXES = (".xlsx",)
READING = "reading"  # where a taken return waits to be read, in its office's folder


def oldest_return(returns: Path, settle: float, now: float) -> Path | None:
    """The oldest workbook under ``returns/<office>/`` left untouched for ``settle`` seconds
    (one still being copied is not taken); Excel's lock files (``~$…``) and hidden files
    are not returns. A symbolic link, a file in an office folder that is one, or a name (of
    the file or the office) holding a control character or a backslash is never taken (see
    :func:`refuse_return`). None: none is there."""
    found = []
    for path in returns.glob("*/*"):
        if path.name.startswith(("~$", ".")) or path.suffix.lower() not in RETURN_SUFFIXES:
            continue
        if _linked(path, path.parent):
            refuse_return(path, "a symbolic link, not a workbook")
            continue
        if _UNSAFE_NAME.search(path.name) or _UNSAFE_NAME.search(path.parent.name):
            refuse_return(path, "its name (or its office folder's) holds a control character or a backslash")
            continue
        try:
            modified = path.stat().st_mtime
        except FileNotFoundError:  # taken by another triggerer between glob and stat
            continue
        if path.is_file() and now - modified >= settle:
            found.append((modified, str(path), path))
    return min(found)[2] if found else None


def refuse_return(path: Path, why: str) -> None:
    """Move a return that is not taken (a symbolic link: the link, never what it names) into
    its office's ``refused/`` folder, under its name with control characters replaced, with
    a note saying why; one in an office folder that is itself a link is left where it is
    (moving it would write where the link leads)."""
    if path.parent.is_symlink():
        return
    target = path.parent / "refused" / _UNSAFE_NAME.sub("_", path.name)
    try:
        target.parent.mkdir(exist_ok=True)
        path.replace(target)
        target.with_name(target.name + ".errors.txt").write_text(
            f"{target.name}: {why}: refused; put the workbook itself into the folder, named plainly\n",
            encoding="utf-8",
        )
    except OSError as error:
        log.warning("%r: cannot move the refused return aside: %s", str(path), error)


def take_return(path: Path, stamp: str) -> Path | None:
    """Move a return into its office's ``reading/`` folder (named ``<stamp>-<name>``), so
    that it is taken once; None when another triggerer took it first."""
    target = path.parent / READING / f"{stamp}-{path.name}"
    target.parent.mkdir(exist_ok=True)
    try:
        path.replace(target)
    except FileNotFoundError:
        return None
    return target


class ReturnedWorkbookTrigger(BaseEventTrigger):
    """Fire once for the oldest county workbook returned into ``returns/<office>/`` (checked
    every ``poke_interval`` seconds, once it has not changed for ``settle`` seconds); the
    event's payload names the file taken and the office that returned it (its folder)."""

    def __init__(self, *, returns: str, poke_interval: float = 5.0, settle: float = 5.0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.returns = returns
        self.poke_interval = poke_interval
        self.settle = settle

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "lookback_triggers.ReturnedWorkbookTrigger",
            {"returns": self.returns, "poke_interval": self.poke_interval, "settle": self.settle},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import time
        from datetime import UTC, datetime

        returns = Path(self.returns)
        while True:
            found = await asyncio.to_thread(oldest_return, returns, self.settle, time.time())
            if found is not None:
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
                taken = await asyncio.to_thread(take_return, found, stamp)
                if taken is not None:
                    office = found.parent.name
                    self.log.info("%s returned %s", office, found.name)
                    yield TriggerEvent({"file": str(taken), "returned_by": office, "name": found.name})  # type: ignore[no-untyped-call]
                    return
            await asyncio.sleep(self.poke_interval)
