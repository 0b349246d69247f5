"""What the fault tests (tests/test_faults.py) need: ``lookback run`` in a process of its own,
stopped at a stage's fault point (see ``lookback.faults``), and snapshots of a warehouse and
a run's folder to compare with a clean run's.

Every process the run starts (its workers too) carries ``LOOKBACK_FAULT_TEST=<tag>`` in its
environment, so that :func:`processes_tagged` finds any of them still alive after the run
was killed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, create_engine, text
from sqlalchemy.engine import make_url

from tests.postgres import reachable_engine, throwaway_database

INCLUDE = Path(__file__).resolve().parents[1] / "include"
TAG_ENV = "LOOKBACK_FAULT_TEST"
# The stages as the fault points name them, in the pipeline's order.
STAGES = ("ingest", "validate", "link", "reconcile", "publish")
RUN_TIMEOUT = 300.0  # a loaded CI machine runs a small batch in about 40 s


@dataclass(frozen=True)
class Batch:
    landing: Path
    as_of: str = "2020-06-30"


@dataclass
class Finished:
    returncode: int
    log: str
    tag: str
    pid: int


def start_run(
    batch: Batch, warehouse: str, out: Path, log: Path, environ: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m lookback.cli run`` on the batch, in a session of its own, its standard
    output and error into ``log``; returns the process and its tag."""
    tag = uuid.uuid4().hex
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(INCLUDE), os.environ.get("PYTHONPATH", "")]),
        "LOOKBACK_INGEST_WORKERS": "2",  # the sources read by forked workers, as on a real machine
        TAG_ENV: tag,
        **(environ or {}),
    }
    command = [sys.executable, "-m", "lookback.cli", "run", "--landing", str(batch.landing)]
    command += ["--out", str(out), "--as-of", batch.as_of, "--warehouse", warehouse]
    with log.open("wb") as handle:
        process = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    return process, tag


def run(batch: Batch, warehouse: str, out: Path, log: Path, environ: Mapping[str, str] | None = None) -> Finished:
    """The run to its end (killed or not)."""
    process, tag = start_run(batch, warehouse, out, log, environ)
    try:
        code = process.wait(RUN_TIMEOUT)
    finally:
        end_session(process)
    return Finished(code, log.read_text(encoding="utf-8", errors="replace"), tag, process.pid)


def end_session(process: subprocess.Popen[bytes]) -> None:
    """Kill whatever is left of a run the test started (its own session), e.g. after a timeout."""
    if process.poll() is None:
        process.kill()
        process.wait()


def processes_tagged(tag: str) -> list[int]:
    """The live processes (not zombies) whose environment holds ``LOOKBACK_FAULT_TEST=<tag>``."""
    wanted = f"{TAG_ENV}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if wanted not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone, or not ours to read
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def survivors(tag: str, grace: float = 5.0) -> list[int]:
    """The run's processes still alive ``grace`` seconds after it ended (a worker killed with
    its parent is gone within milliseconds)."""
    deadline = time.monotonic() + grace
    while (alive := processes_tagged(tag)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in alive:  # not to leave them running after the test
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return alive


# Snapshots


Rows = dict[str, list[tuple[Any, ...]]]


def differences(expected: Mapping[str, Any], found: Mapping[str, Any]) -> list[str]:
    """The tables (or files) whose content differs, named with their row counts (or sizes):
    a failure that shows no row, so no identity number, and stays readable."""
    names = sorted(set(expected) | set(found))
    return [
        f"{name}: expected {_size(expected.get(name))}, found {_size(found.get(name))}"
        for name in names
        if expected.get(name) != found.get(name)
    ]


def _size(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return f"{len(value)} rows"
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    return "other content"


def warehouse_rows(url: str) -> Rows:
    """Every table's rows, sorted, duplicates kept; a timestamp only as whether it is set
    (when a row was written differs from run to run, and nothing else may)."""
    engine = create_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        tables: dict[str, list[tuple[Any, ...]]] = {}
        with engine.connect() as connection:
            for table in metadata.sorted_tables:
                stamps = [isinstance(column.type, DateTime) for column in table.columns]
                rows = [
                    tuple(
                        (value is not None) if stamp or isinstance(value, datetime) else value
                        for stamp, value in zip(stamps, row, strict=True)
                    )
                    for row in connection.execute(table.select())
                ]
                tables[table.name] = sorted(rows, key=repr)
        return tables
    finally:
        engine.dispose()


def folder_bytes(folder: Path, *, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under ``folder`` (but the top-level folders in ``skip``) by its relative path."""
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and relative.parts[0] not in skip:
            files[relative.as_posix()] = path.read_bytes()
    return files


def published(folder: Path) -> dict[str, Any]:
    """A run's files as they compare from run to run: all but the Data Docs, whose pages
    name the time they were validated; ``run_summary.json`` without the warehouse's URL
    (each test has a warehouse of its own), and so the manifest without its checksum."""
    files: dict[str, Any] = dict(folder_bytes(folder, skip=("data_docs",)))
    if "run_summary.json" in files:
        summary = json.loads(files["run_summary.json"])
        summary.pop("warehouse")
        files["run_summary.json"] = summary
    if "manifest.json" in files:
        files["manifest.json"] = _without_summary_checksum(json.loads(files["manifest.json"]))
    return files


def _without_summary_checksum(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("path") == "run_summary.json":
            return {key: item for key, item in value.items() if key not in ("sha256", "bytes")}
        return {key: _without_summary_checksum(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_summary_checksum(item) for item in value]
    return value


# Warehouses


@contextmanager
def copy_warehouse(url: str, folder: Path) -> Iterator[str]:
    """A copy of the warehouse at ``url``, for one test: a SQLite file copied into ``folder``,
    a PostgreSQL database created from it as a template (dropped afterwards)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None
        source = Path(parsed.database)
        assert not Path(f"{source}-wal").exists(), "the warehouse was closed cleanly: no write-ahead log left"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / source.name
        shutil.copyfile(source, target)
        yield f"sqlite:///{target}"
        return
    copies = throwaway_database("lookback_fault_copy", template=str(parsed.database))
    try:
        yield next(copies)
    finally:
        copies.close()


def terminate_backends(url: str) -> int:
    """``pg_terminate_backend`` on every connection to the warehouse's database but this
    one; returns how many were terminated."""
    database = make_url(url).database
    engine = reachable_engine()
    try:
        with engine.connect() as connection:
            return len(
                connection.execute(
                    text(
                        "select pg_terminate_backend(pid) from pg_stat_activity "
                        "where datname = :database and pid <> pg_backend_pid()"
                    ),
                    {"database": database},
                ).all()
            )
    finally:
        engine.dispose()


def wait_for_file(path: Path, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until ``path`` exists; fails if the run ends first or it takes longer than ``timeout``."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the run ended (status {process.returncode}) before it reached {path.name}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the run did not reach {path.name} in {timeout:.0f} s")
        time.sleep(0.02)
