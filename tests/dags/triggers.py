"""Running a trigger as the triggerer does, up to its first event."""

from __future__ import annotations

import asyncio
from typing import Any

from airflow.triggers.base import BaseEventTrigger


async def first_event(trigger: BaseEventTrigger, timeout: float = 5.0) -> Any:
    """The payload of the first event ``trigger`` fires within ``timeout`` seconds
    (``TimeoutError`` when it fires none)."""
    events = trigger.run()
    try:
        event = await asyncio.wait_for(anext(events), timeout)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    return event.payload
