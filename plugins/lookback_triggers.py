"""The landing flag trigger: starts a source's ingest DAG when a department says its export
has landed.

A department drops its export into the batch's folder of the landing zone, then a flag file
``<source>.ready`` beside it (``landing/<batch>/<source>.ready``): the flag says the export
is complete, so a half-copied file is never read. The stock file triggers watch one fixed
file name and carry nothing in their event; this one globs every batch folder for the
source's flag, takes the oldest flag it finds (renaming it ``<source>.taken``, so that it
fires once) and puts the batch, the source and the batch folder in the event's payload,
which the ingest DAG reads from its triggering asset event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

FLAG = ".ready"
TAKEN = ".taken"


def oldest_flag(landing: Path, source: str) -> Path | None:
    """The oldest ``<batch>/<source>.ready`` under ``landing`` (None: none is there)."""
    flags = []
    for flag in landing.glob(f"*/{source}{FLAG}"):
        try:
            flags.append((flag.stat().st_mtime, flag.parent.name, flag))
        except FileNotFoundError:  # taken by another triggerer between glob and stat
            continue
    return min(flags)[2] if flags else None


def take_flag(flag: Path) -> bool:
    """Rename a flag to ``.taken``; False when another triggerer took it first."""
    try:
        flag.replace(flag.with_suffix(TAKEN))
    except FileNotFoundError:
        return False
    return True


class LandingFlagTrigger(BaseEventTrigger):
    """Fire once for the oldest landed flag of ``source`` under ``landing`` (checked every
    ``poke_interval`` seconds); the event's payload names the batch, the source and the folder."""

    def __init__(self, *, landing: str, source: str, poke_interval: float = 5.0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.landing = landing
        self.source = source
        self.poke_interval = poke_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "lookback_triggers.LandingFlagTrigger",
            {"landing": self.landing, "source": self.source, "poke_interval": self.poke_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        landing = Path(self.landing)
        while True:
            flag = await asyncio.to_thread(oldest_flag, landing, self.source)
            if flag is not None and await asyncio.to_thread(take_flag, flag):
                batch = flag.parent
                self.log.info("%s landed in batch %s (%s)", self.source, batch.name, batch)
                yield TriggerEvent({"batch": batch.name, "source": self.source, "landing": str(batch)})  # type: ignore[no-untyped-call]
                return
            await asyncio.sleep(self.poke_interval)
