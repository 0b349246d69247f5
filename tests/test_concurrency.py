"""Runs at once, in real processes, on PostgreSQL: a second run of a batch waits or is
refused by name; two batches of disjoint counties reconciled at once give what one after
the other gives."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from lookback.generate.batch import generate_batch
from tests.postgres import throwaway_database

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

AS_OF = "2020-06-30"
LOGGED_AT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}")
KEY = re.compile(r"\b[PH]\d{9}\b")
# What a run writes of itself rather than of the batch: when, and the run's place in the order.
OF_THE_RUN = re.compile(r"(_at|_seconds|^seconds|^sequence|^published|^generated)$")


@dataclass
class Started:
    """A ``lookback`` command started in the background, its output in a file."""

    process: subprocess.Popen[bytes]
    log: Path

    def finish(self, timeout: float = 600) -> tuple[int, str]:
        code = self.process.wait(timeout=timeout)
        return code, self.log.read_text(encoding="utf-8")


def _start(args: list[str], log: Path, data: Path) -> Started:
    env = {**os.environ, "LOOKBACK_DATA_DIR": str(data), "LOOKBACK_INGEST_WORKERS": "1"}
    env.pop("LOOKBACK_WAREHOUSE_URL", None)
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "lookback.cli", *args], stdout=out, stderr=out, env=env)
    return Started(process, log)


def _run_args(landing: Path, out: Path, warehouse: str, *extra: str) -> list[str]:
    return ["run", "--landing", str(landing), "--out", str(out), "--as-of", AS_OF, "--warehouse", warehouse, *extra]


def _holds(warehouse: str) -> list[tuple[str, str]]:
    engine = create_engine(warehouse)
    try:
        with engine.connect() as connection:
            if not connection.execute(text("select to_regclass('batch_holds') is not null")).scalar_one():
                return []
            return [(row[0], row[1]) for row in connection.execute(text("select batch_id, label from batch_holds"))]
    finally:
        engine.dispose()


def _wait_for(condition: object, what: str, started: list[Started], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        for item in started:
            if item.process.poll() is not None:
                raise AssertionError(f"{what}: a run ended first:\n{item.log.read_text(encoding='utf-8')[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


@pytest.fixture
def warehouse() -> Iterator[str]:
    yield from throwaway_database("lookback_concurrency")


def test_a_second_run_of_a_batch_is_refused_by_name_or_waits(
    tmp_path: Path, generated_batch: Path, warehouse: str
) -> None:
    batch = generated_batch.name
    first = _start(_run_args(generated_batch, tmp_path / "first", warehouse), tmp_path / "first.log", tmp_path)
    _wait_for(lambda: _holds(warehouse), "the first run holds its batch", [first])
    second = _start(_run_args(generated_batch, tmp_path / "second", warehouse), tmp_path / "second.log", tmp_path)
    code, said = second.finish()
    assert code == 1
    assert f"lookback: error: batch {batch} is running elsewhere: held by lookback run (run, host" in said
    assert "Traceback" not in said and not (tmp_path / "second").exists()
    waiting = _start(
        _run_args(generated_batch, tmp_path / "third", warehouse, "--wait", "600"), tmp_path / "third.log", tmp_path
    )
    code, said_first = first.finish()
    assert code == 0, said_first[-3000:]
    code, said = waiting.finish()
    assert code == 0, said[-3000:]
    waited = f"batch {batch} is held by lookback run"
    assert waited in said and "waiting up to 600 s" in said
    # It began its work only once the first had logged its last.
    after_waiting = said[said.index(waited) :].splitlines()[1:]
    assert _logged_at(after_waiting)[0] >= _logged_at(said_first.splitlines())[-1]
    assert _holds(warehouse) == []


def _logged_at(lines: list[str]) -> list[str]:
    """The times of the log lines (``2020-06-30 12:00:00,123 INFO ...``), in order."""
    return [match.group(0) for line in lines if (match := LOGGED_AT.match(line))]


def _anchors(warehouse: str) -> dict[str, str]:
    """Each person and household key → the anchor it was given for (the smallest, when several)."""
    engine = create_engine(warehouse)
    keys: dict[str, str] = {}
    with engine.connect() as connection:
        for table in ("person_crosswalk", "household_crosswalk"):
            for key, anchor in connection.execute(text(f"select key, min(anchor) from {table} group by key")):
                keys[key] = f"<{anchor}>"
    engine.dispose()
    return keys


def _published(out: Path, anchors: dict[str, str]) -> dict[str, list[tuple[str, ...]]]:
    """The run's CSV files, keys written as their anchors, columns of the run itself left out, sorted."""
    files: dict[str, list[tuple[str, ...]]] = {}
    for path in sorted(out.rglob("*.csv")):
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
        if not rows:
            continue
        kept = [index for index, name in enumerate(rows[0]) if not OF_THE_RUN.search(name)]
        body = [
            tuple(KEY.sub(lambda match: anchors.get(match.group(0), match.group(0)), row[index]) for index in kept)
            for row in rows[1:]
        ]
        files[str(path.relative_to(out))] = [tuple(rows[0][index] for index in kept), *sorted(body)]
    return files


def test_two_batches_of_disjoint_counties_at_once_give_what_one_after_the_other_gives(
    tmp_path: Path, warehouse: str
) -> None:
    landing = tmp_path / "landing"
    batches = {"tongdao": ("431230", 11), "xupu": ("431224", 12)}
    for name, (county, seed) in batches.items():
        generate_batch(landing / name, persons=120, seed=seed, counties=(county,))
    with contextmanager(throwaway_database)("lookback_concurrency") as serial:
        _compare(tmp_path, landing, batches, serial, warehouse)


def _compare(tmp_path: Path, landing: Path, batches: dict[str, tuple[str, int]], serial: str, together: str) -> None:
    for name in batches:
        code, said = _start(
            _run_args(landing / name, tmp_path / "serial" / name, serial), tmp_path / f"serial-{name}.log", tmp_path
        ).finish()
        assert code == 0, said[-3000:]
    started = [
        _start(
            _run_args(landing / name, tmp_path / "together" / name, together),
            tmp_path / f"together-{name}.log",
            tmp_path,
        )
        for name in batches
    ]
    # Both hold their batch at the same moment: they really ran side by side.
    _wait_for(lambda: len(_holds(together)) == 2, "both runs hold their batches at once", started)
    for item in started:
        code, said = item.finish()
        assert code == 0, said[-3000:]
    serial_anchors, together_anchors = _anchors(serial), _anchors(together)
    assert sorted(serial_anchors.values()) == sorted(together_anchors.values())
    for name in batches:
        one_after_the_other = _published(tmp_path / "serial" / name, serial_anchors)
        at_once = _published(tmp_path / "together" / name, together_anchors)
        assert {"person_links.csv", "lookback_findings.csv", "visit_roster.csv"} <= set(at_once)
        assert sum(len(rows) for rows in at_once.values()) > 100
        for file, rows in one_after_the_other.items():
            assert at_once.get(file) == rows, f"{name}/{file} differs"
        assert set(at_once) == set(one_after_the_other)
    # The findings of each county have the same history either way.
    for url in (serial, together):
        engine = create_engine(url)
        with engine.connect() as connection:
            assert connection.execute(text("select count(*) from reconcile_runs")).scalar_one() == 2
            assert connection.execute(text("select count(distinct sequence) from reconcile_runs")).scalar_one() == 2
        engine.dispose()
