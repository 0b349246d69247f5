"""The returned-workbook trigger: it takes the oldest workbook a county office put into its
folder once it has stopped changing, moves it aside so that it fires once, and leaves
Excel's lock files, other files and half-copied workbooks alone."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from lookback_triggers import READING, ReturnedWorkbookTrigger, oldest_return
from tests.dags.triggers import first_event


def _returned(returns: Path, office: str, name: str, mtime: float) -> Path:
    folder = returns / office
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"PK")
    os.utime(path, (mtime, mtime))
    return path


def test_the_oldest_return_fires_first_and_once(tmp_path: Path) -> None:
    newer = _returned(tmp_path, "龙山县扶贫办", "431224 溆浦县.xlsx", 2_000)
    older = _returned(tmp_path, "溆浦县扶贫办", "431224 溆浦县.xlsx", 1_000)
    lock = _returned(tmp_path, "溆浦县扶贫办", "~$431224 溆浦县.xlsx", 500)
    note = _returned(tmp_path, "溆浦县扶贫办", "说明.docx", 500)
    trigger = ReturnedWorkbookTrigger(returns=str(tmp_path), poke_interval=0.01, settle=0)
    first = asyncio.run(first_event(trigger))
    assert first["returned_by"] == "溆浦县扶贫办" and first["name"] == "431224 溆浦县.xlsx"
    taken = Path(first["file"])
    assert taken.parent == tmp_path / "溆浦县扶贫办" / READING and taken.name.endswith("-431224 溆浦县.xlsx")
    assert taken.exists() and not older.exists()
    second = asyncio.run(first_event(trigger))
    assert second["returned_by"] == "龙山县扶贫办" and not newer.exists()
    assert lock.exists() and note.exists()  # neither is a return
    with pytest.raises(TimeoutError):  # nothing more to take: the taken ones are not taken again
        asyncio.run(first_event(trigger, timeout=0.3))


def test_a_workbook_still_being_copied_waits(tmp_path: Path) -> None:
    now = time.time()
    path = _returned(tmp_path, "office", "returned.xlsx", now)
    assert oldest_return(tmp_path, settle=5, now=now + 1) is None
    assert oldest_return(tmp_path, settle=5, now=now + 6) == path


def test_it_serialises_to_what_the_triggerer_rebuilds_it_from(tmp_path: Path) -> None:
    trigger = ReturnedWorkbookTrigger(returns=str(tmp_path), poke_interval=3, settle=7)
    path, kwargs = trigger.serialize()
    assert path == "lookback_triggers.ReturnedWorkbookTrigger"
    rebuilt = ReturnedWorkbookTrigger(**kwargs)
    assert (rebuilt.returns, rebuilt.poke_interval, rebuilt.settle) == (str(tmp_path), 3, 7)
