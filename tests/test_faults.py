"""Faults in real processes: ``lookback run`` killed with SIGKILL in the middle of each stage,
its warehouse connection terminated under it, its disk full while publishing.

Each case starts from a warehouse and a run's folder as one clean run of a small batch left
them (copied from the module's reference), so that "nothing half done" has an exact meaning:
after a kill the warehouse holds what it held (or, killed while publishing, what the killed
run's committed stages wrote, which is what a second clean run writes), the run's folder is
byte for byte the previous one, and the next run ends with the same warehouse and the same
files as a second clean run. The stages are stopped at their fault points
(``lookback.faults``): inside each stage's open transaction, or with part of the files in
publish's staging folder.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from lookback import scratch
from lookback.cli import main
from lookback.generate.batch import generate_batch
from lookback.publish import files
from lookback.retry import retry_stage
from lookback.warehouse import Warehouse, create_warehouse_engine
from tests.kill_points import (
    RUN_TIMEOUT,
    Batch,
    Rows,
    copy_warehouse,
    differences,
    end_session,
    folder_bytes,
    published,
    run,
    start_run,
    survivors,
    terminate_backends,
    wait_for_file,
    warehouse_rows,
)
from tests.postgres import throwaway_database


@dataclass(frozen=True)
class Reference:
    """A warehouse and run folder as one clean run left them, and what a second clean run
    of the same batch makes of them."""

    warehouse: str
    out: Path
    first_rows: Rows
    second_rows: Rows
    second_files: dict[str, Any]
    second_warehouse: str | None  # kept on SQLite: what a third run starts from


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    """The smallest generated batch that every stage has work in (five sources, three
    counties, findings, a visit roster and a census extract)."""
    landing = tmp_path_factory.mktemp("faults") / "landing" / "b1"
    generate_batch(landing, persons=20, seed=4)
    return Batch(landing)


def _reference(batch: Batch, warehouse: str, folder: Path) -> Reference:
    out = folder / "runs" / "b1"
    first = run(batch, warehouse, out, folder / "first.log")
    assert first.returncode == 0, first.log
    with copy_warehouse(warehouse, folder / "second") as second_warehouse:
        second_out = folder / "second" / "runs" / "b1"
        shutil.copytree(out, second_out)
        second = run(batch, second_warehouse, second_out, folder / "second.log")
        assert second.returncode == 0, second.log
        second_rows = warehouse_rows(second_warehouse)
    kept = second_warehouse if second_warehouse.startswith("sqlite") else None
    return Reference(warehouse, out, warehouse_rows(warehouse), second_rows, published(second_out), kept)


@pytest.fixture(scope="module")
def sqlite_reference(batch: Batch, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    folder = tmp_path_factory.mktemp("sqlite-reference")
    return _reference(batch, f"sqlite:///{folder / 'warehouse.sqlite'}", folder)


@pytest.fixture(scope="module")
def sqlite_third_rows(batch: Batch, sqlite_reference: Reference, tmp_path_factory: pytest.TempPathFactory) -> Rows:
    """The warehouse after a third clean run: a run killed while publishing has looked back
    already (the look-back counts its executions), so the run after it is the third."""
    folder = tmp_path_factory.mktemp("sqlite-third")
    assert sqlite_reference.second_warehouse is not None
    with copy_warehouse(sqlite_reference.second_warehouse, folder) as warehouse:
        third = run(batch, warehouse, folder / "runs" / "b1", folder / "third.log")
        assert third.returncode == 0, third.log
        return warehouse_rows(warehouse)


@pytest.fixture(scope="module")
def postgresql_reference(batch: Batch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    folder = tmp_path_factory.mktemp("postgresql-reference")
    for warehouse in throwaway_database("lookback_faults"):
        yield _reference(batch, warehouse, folder)


STAGES = ("ingest", "validate", "link", "reconcile", "publish")
KILLED = [pytest.param("sqlite", stage, id=f"sqlite-{stage}") for stage in STAGES] + [
    pytest.param("postgresql", stage, id=f"postgresql-{stage}", marks=pytest.mark.postgres)
    for stage in ("ingest", "link", "reconcile")
]


@pytest.mark.integration
@pytest.mark.parametrize(("backend", "stage"), KILLED)
def test_a_run_killed_mid_stage_leaves_nothing_half_done_and_the_next_run_completes(
    backend: str, stage: str, batch: Batch, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    reference: Reference = request.getfixturevalue(f"{backend}_reference")
    before = folder_bytes(reference.out)
    out = tmp_path / "runs" / "b1"
    shutil.copytree(reference.out, out)
    with copy_warehouse(reference.warehouse, tmp_path) as warehouse:
        killed = run(batch, warehouse, out, tmp_path / "killed.log", {"LOOKBACK_KILL_AT": stage})
        assert killed.returncode == -9, f"the run was not killed at its {stage} point:\n{killed.log}"
        # Its workers (ingest reads the sources in two forked processes) died with it: the
        # worker that killed it waits at the point until then.
        assert survivors(killed.tag) == []
        assert differences(before, folder_bytes(out)) == [], "the published folder changed"
        # Every stage's transaction is whole or absent: what the warehouse holds is what it
        # held, or (killed while publishing) what a second clean run's stages write.
        expected = reference.second_rows if stage == "publish" else reference.first_rows
        found = warehouse_rows(warehouse)
        # The killed run's hold on the batch stays, naming its process, which is gone: the
        # next run takes it over.
        (hold,) = found.pop("batch_holds")
        assert hold[0] == "b1" and hold[1].startswith(f"process:{socket.gethostname()}:{killed.pid}:")
        assert differences({**expected, "batch_holds": []}, {**found, "batch_holds": []}) == []

        # What the killed run was writing into is left beside the run's folder and the
        # warehouse: publish's staging folder, the ingest workers' side databases.
        left = _scratch(out.parent, tmp_path)
        if stage == "publish":
            assert [path.name.startswith(".b1.publishing-") for path in left] == [True]
        if stage == "ingest" and backend == "sqlite":
            assert [path.name.startswith("lookback-ingest-") for path in left] == [True]

        following = run(batch, warehouse, out, tmp_path / "next.log")
        assert following.returncode == 0, following.log
        expected = request.getfixturevalue("sqlite_third_rows") if stage == "publish" else reference.second_rows
        assert differences(expected, warehouse_rows(warehouse)) == []
        assert differences(reference.second_files, published(out)) == []
        # The next run removed them, once it found that no live process held them.
        assert _scratch(out.parent, tmp_path) == []


def _scratch(*folders: Path) -> list[Path]:
    return [
        path
        for folder in folders
        for path in folder.iterdir()
        if path.name.startswith((".b1.publishing-", "lookback-ingest-", "lookback-publish-"))
    ]


@pytest.mark.integration
@pytest.mark.postgres
def test_stages_whose_connection_is_terminated_run_again_and_end_as_a_clean_run(
    batch: Batch, postgresql_reference: Reference, tmp_path: Path
) -> None:
    """The run pauses inside the transaction of ingest (in a worker), link and reconcile in
    turn; each time the test terminates every backend of the warehouse's database, lets
    the run go on, and the stage runs again."""
    reference = postgresql_reference
    out = tmp_path / "runs" / "b1"
    shutil.copytree(reference.out, out)
    points = ("ingest", "link", "reconcile")
    pauses = tmp_path / "pauses"
    pauses.mkdir()
    with copy_warehouse(reference.warehouse, tmp_path) as warehouse:
        environ = {"LOOKBACK_PAUSE_AT": ",".join(points), "LOOKBACK_PAUSE_DIR": str(pauses)}
        process, tag = start_run(batch, warehouse, out, tmp_path / "run.log", environ)
        try:
            for point in points:
                wait_for_file(pauses / point, process)
                assert terminate_backends(warehouse) >= 1
                (pauses / point).write_text("go")
            code = process.wait(RUN_TIMEOUT)
        finally:
            end_session(process)
        log = (tmp_path / "run.log").read_text(encoding="utf-8")
        assert code == 0, log
        for point in points:
            assert f"stage {point} lost its connection to the warehouse" in log, log
            assert "attempt 2 of 3" in log
        assert survivors(tag) == []
        assert differences(reference.second_rows, warehouse_rows(warehouse)) == []
        assert differences(reference.second_files, published(out)) == []


@pytest.mark.integration
def test_a_full_disk_while_publishing_leaves_the_published_folder_as_it_was(
    batch: Batch,
    sqlite_reference: Reference,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reference = sqlite_reference
    before = folder_bytes(reference.out)
    out = tmp_path / "runs" / "b1"
    shutil.copytree(reference.out, out)
    written = files.CsvWriter.append

    def append(writer: files.CsvWriter, values: Any) -> None:
        if writer.path.name == "person_links.csv" and writer.rows >= 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(writer.path))
        written(writer, values)

    monkeypatch.setattr(files.CsvWriter, "append", append)
    with copy_warehouse(reference.warehouse, tmp_path) as warehouse:
        arguments = ["-q", "run", "--landing", str(batch.landing), "--out", str(out), "--as-of", batch.as_of]
        code = main([*arguments, "--warehouse", warehouse])
    error = capsys.readouterr().err
    assert code == 1
    assert error.splitlines() == [
        f"lookback: error: run b1 not published: cannot write person_links.csv: No space left on device; "
        f"{out} still holds the files published before"
    ]
    assert differences(before, folder_bytes(out)) == []
    assert sorted(path.name for path in out.parent.iterdir()) == [".b1.work", "b1"], "the staging folder is left"


def _lost_connection() -> DBAPIError:
    return OperationalError("select 1", {}, Exception("terminating connection"), connection_invalidated=True)


def test_a_stage_is_run_again_only_for_a_lost_connection(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'w.sqlite'}", {})
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _lost_connection()
        return "done"

    with caplog.at_level(logging.WARNING, logger="lookback.retry"):
        assert retry_stage("link", warehouse, flaky, pause=0) == "done"
    assert len(calls) == 3
    assert [record.getMessage() for record in caplog.records] == [
        "stage link lost its connection to the warehouse (Exception: terminating connection); "
        f"running the stage again, attempt {attempt} of 3"
        for attempt in (2, 3)
    ]

    def always_lost() -> str:
        calls.append(1)
        raise _lost_connection()

    calls.clear()
    with pytest.raises(OperationalError):
        retry_stage("link", warehouse, always_lost, pause=0)
    assert len(calls) == 3

    def broken() -> str:
        calls.append(1)
        raise OperationalError("select 1", {}, Exception("no such table"))

    calls.clear()
    with pytest.raises(OperationalError):
        retry_stage("link", warehouse, broken, pause=0)
    assert len(calls) == 1


def test_database_errors_never_show_the_statements_parameters(tmp_path: Path) -> None:
    engine = create_warehouse_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    try:
        with engine.connect() as connection, pytest.raises(DBAPIError) as raised:
            connection.execute(text("insert into no_such_table values (:number)"), {"number": "431224198001011238"})
    finally:
        engine.dispose()
    assert "431224198001011238" not in str(raised.value)


def test_only_scratch_folders_that_no_live_process_holds_are_removed(tmp_path: Path) -> None:
    held, abandoned, other = (tmp_path / name for name in ("lookback-ingest-a", "lookback-ingest-b", "keep-c"))
    for folder in (held, abandoned, other):
        folder.mkdir()
        (folder / "side.sqlite").write_bytes(b"rows")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(held)], stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        scratch.remove_abandoned(tmp_path, "lookback-ingest-")
        assert sorted(path.name for path in tmp_path.iterdir()) == ["keep-c", "lookback-ingest-a"]
    finally:
        holder.kill()
        holder.wait()
    scratch.remove_abandoned(tmp_path, "lookback-ingest-")  # its holder has ended
    assert sorted(path.name for path in tmp_path.iterdir()) == ["keep-c"]


# A live run holding its scratch folder, as lookback.scratch.hold does.
HOLDER = """
import fcntl, os, sys
descriptor = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("held", flush=True)
sys.stdin.read()
"""
