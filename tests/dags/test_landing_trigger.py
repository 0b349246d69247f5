"""The landing flag trigger: it fires once per flag, oldest first, with the batch and the
source in its payload, and leaves other sources' flags alone."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from lookback_triggers import LandingFlagTrigger, mark_done
from tests.dags.triggers import first_event


def _flag(landing: Path, batch: str, source: str, mtime: float) -> Path:
    folder = landing / batch
    folder.mkdir(parents=True, exist_ok=True)
    flag = folder / f"{source}.ready"
    flag.touch()
    os.utime(flag, (mtime, mtime))
    return flag


def test_the_oldest_flag_fires_first_and_once(tmp_path: Path) -> None:
    newer = _flag(tmp_path, "2020-07", "registry", 2_000)
    older = _flag(tmp_path, "2020-06", "registry", 1_000)
    other = _flag(tmp_path, "2020-06", "dibao", 500)
    trigger = LandingFlagTrigger(landing=str(tmp_path), source="registry", poke_interval=0.01)
    first = asyncio.run(first_event(trigger))
    assert first == {"batch": "2020-06", "source": "registry", "landing": str(tmp_path / "2020-06")}
    assert not older.exists() and older.with_suffix(".taken").exists()
    # One flag of a source in flight at a time: the next waits until the ingest handled it.
    with pytest.raises(TimeoutError):
        asyncio.run(first_event(trigger, timeout=0.3))
    assert newer.exists()
    assert mark_done(older.parent, "registry") and older.with_suffix(".done").exists()
    second = asyncio.run(first_event(trigger))
    assert second["batch"] == "2020-07"
    assert not newer.exists()
    assert other.exists()  # another source's flag is its own trigger's


def test_a_flag_in_flight_too_long_fires_again(tmp_path: Path) -> None:
    flag = _flag(tmp_path, "2020-06", "registry", 1_000)
    trigger = LandingFlagTrigger(landing=str(tmp_path), source="registry", poke_interval=0.01, stale_after=60)
    assert asyncio.run(first_event(trigger))["batch"] == "2020-06"
    taken = flag.with_suffix(".taken")
    with pytest.raises(TimeoutError):  # taken just now: in flight, not stale
        asyncio.run(first_event(trigger, timeout=0.3))
    os.utime(taken, (taken.stat().st_mtime - 120,) * 2)  # its run never came
    assert asyncio.run(first_event(trigger))["batch"] == "2020-06"
    with pytest.raises(TimeoutError):  # fired again just now: in flight again
        asyncio.run(first_event(trigger, timeout=0.3))


def test_without_a_flag_it_keeps_waiting(tmp_path: Path) -> None:
    (tmp_path / "2020-06").mkdir()
    (tmp_path / "2020-06" / "registry_members.csv").write_text("an export without its flag", encoding="utf-8")
    trigger = LandingFlagTrigger(landing=str(tmp_path), source="registry", poke_interval=0.01)
    with pytest.raises(TimeoutError):
        asyncio.run(first_event(trigger, timeout=0.3))


def test_it_serialises_to_what_the_triggerer_rebuilds_it_from(tmp_path: Path) -> None:
    trigger = LandingFlagTrigger(landing=str(tmp_path), source="hukou", poke_interval=3)
    path, kwargs = trigger.serialize()
    assert path == "lookback_triggers.LandingFlagTrigger"
    rebuilt = LandingFlagTrigger(**kwargs)
    assert (rebuilt.landing, rebuilt.source, rebuilt.poke_interval) == (str(tmp_path), "hukou", 3)


def test_a_run_gathering_several_batches_hands_back_the_flags_of_all_but_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow gathers the events that arrived since a source's last run into one run: the
    run ingests the first batch, and every other batch's flag is put back to fire again."""
    from types import SimpleNamespace

    from lookback_dags import hand_back_flags

    monkeypatch.setenv("LOOKBACK_DATA_DIR", str(tmp_path))
    landing = tmp_path / "landing"
    events = []
    for batch in ("b1", "b2", "b3"):
        (landing / batch).mkdir(parents=True)
        (landing / batch / "registry.taken").touch()
        payload = {"batch": batch, "source": "registry", "landing": str(landing / batch)}
        events.append(SimpleNamespace(extra={"payload": payload}))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "registry.taken").touch()
    events.append(SimpleNamespace(extra={"payload": {"batch": "x", "landing": str(outside)}}))
    context = {"triggering_asset_events": {"landing_registry": events}}
    assert hand_back_flags(context, "registry") == ["b2", "b3"]
    assert sorted(path.relative_to(landing).as_posix() for path in landing.glob("*/registry.*")) == [
        "b1/registry.taken",
        "b2/registry.ready",
        "b3/registry.ready",
    ]
    assert (outside / "registry.taken").exists()  # never a folder outside the landing zone
    assert hand_back_flags({}, "registry") == []  # started by hand
