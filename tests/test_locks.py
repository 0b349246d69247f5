"""Holds on batches and the steps one batch at a time, on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import text

from lookback.cli import main
from lookback.locks import (
    BatchBusyError,
    Holder,
    acquire,
    holding,
    holds,
    one_writer_at_a_time,
    release,
    release_owner,
)
from lookback.run import open_warehouse
from lookback.warehouse import Warehouse
from tests.postgres import throwaway_database


@pytest.fixture
def warehouse(warehouse_url: str) -> Iterator[Warehouse]:
    with open_warehouse(warehouse_url) as opened:
        yield opened


def test_a_second_run_of_a_batch_is_refused_naming_who_holds_it(warehouse: Warehouse) -> None:
    first = Holder.this_process("lookback run")
    second = Holder.this_process("lookback run")
    acquire(warehouse, "b1", first)
    acquire(warehouse, "b1", first)  # again: the same holder keeps it
    with pytest.raises(BatchBusyError) as refused:
        acquire(warehouse, "b1", second)
    message = str(refused.value)
    assert "batch b1 is running elsewhere" in message
    assert "lookback run (run, host" in message and "UTC" in message
    assert "lookback unlock --batch b1" in message
    acquire(warehouse, "b2", second)  # another batch is free
    assert [(hold.batch_id, hold.owner) for hold in holds(warehouse)] == [("b1", first.owner), ("b2", second.owner)]
    release(warehouse, "b1", first)
    acquire(warehouse, "b1", second)
    assert {hold.owner for hold in holds(warehouse, "b1")} == {second.owner}


def test_ingests_of_a_batch_share_it_but_not_with_a_run(warehouse: Warehouse) -> None:
    registry = Holder.this_process("ingest registry", "ingest")
    dibao = Holder.this_process("ingest dibao", "ingest")
    run = Holder.this_process("lookback run")
    acquire(warehouse, "b", registry)
    acquire(warehouse, "b", dibao)
    with pytest.raises(BatchBusyError, match="ingest registry"):
        acquire(warehouse, "b", run)
    release(warehouse, "b", registry)
    release(warehouse, "b", dibao)
    acquire(warehouse, "b", run)
    with pytest.raises(BatchBusyError, match="lookback run"):
        acquire(warehouse, "b", registry)


def test_the_tasks_of_one_airflow_run_share_its_hold(warehouse: Warehouse) -> None:
    acquire(warehouse, "b", Holder.airflow_run("reconcile", "manual__1"))
    acquire(warehouse, "b", Holder.airflow_run("reconcile", "manual__1"))  # a county task of the same run
    with pytest.raises(BatchBusyError, match="reconcile/manual__1"):
        acquire(warehouse, "b", Holder.airflow_run("reconcile", "manual__2"))


def _plant_hold(warehouse: Warehouse, host: str, pid: int, label: str) -> None:
    """A run-mode hold on batch ``b`` of process ``pid`` on ``host``, as its run would have written it."""
    with warehouse.engine.begin() as connection:
        connection.execute(
            warehouse.table("batch_holds")
            .insert()
            .values(
                batch_id="b",
                owner=f"process:{host}:{pid}:x",
                mode="run",
                label=label,
                host=host,
                pid=pid,
                acquired_at=datetime(2020, 6, 30),
            )
        )


def test_the_hold_of_a_process_that_died_is_taken_over(warehouse: Warehouse) -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    _plant_hold(warehouse, socket.gethostname(), ended.pid, "a killed run")
    mine = Holder.this_process("lookback run")
    acquire(warehouse, "b", mine)
    assert [hold.owner for hold in holds(warehouse, "b")] == [mine.owner]


def test_a_hold_of_a_live_process_elsewhere_is_kept(warehouse: Warehouse) -> None:
    _plant_hold(warehouse, "another-host", 1, "lookback run on another host")
    with pytest.raises(BatchBusyError, match="another-host"):
        acquire(warehouse, "b", Holder.this_process("lookback run"))


def test_a_waiting_run_starts_once_the_batch_is_given_back(warehouse: Warehouse) -> None:
    first = Holder.this_process("first")
    acquire(warehouse, "b", first)
    threading.Timer(1.5, release, (warehouse, "b", first)).start()
    second = Holder.this_process("second")
    with pytest.raises(BatchBusyError, match=r"after waiting 0\.2 s"):
        acquire(warehouse, "b", second, wait=0.2)
    acquire(warehouse, "b", second, wait=60)
    assert [hold.label for hold in holds(warehouse, "b")] == ["second"]


def test_holding_gives_the_batch_back_however_the_block_ends(warehouse: Warehouse) -> None:
    with pytest.raises(RuntimeError), holding(warehouse, "b", Holder.this_process("run")):
        assert len(holds(warehouse, "b")) == 1
        raise RuntimeError("stage failed")
    assert holds(warehouse, "b") == []


def test_one_writer_at_a_time_makes_the_second_wait(warehouse: Warehouse) -> None:
    """A second transaction taking the same step waits until the first commits."""
    order: list[str] = []
    first_has_it = threading.Event()

    def second() -> None:
        first_has_it.wait()
        with warehouse.engine.begin() as connection:
            one_writer_at_a_time(connection, "keys")
            order.append("second")

    thread = threading.Thread(target=second)
    thread.start()
    with warehouse.engine.begin() as connection:
        one_writer_at_a_time(connection, "keys")
        first_has_it.set()
        time.sleep(1.0)
        order.append("first")
    thread.join(timeout=60)
    assert order == ["first", "second"]


@pytest.mark.postgres
def test_steps_of_other_names_do_not_wait_on_postgresql() -> None:
    """On PostgreSQL each step has a lock of its own (SQLite has one write lock for all)."""
    url = next(urls := throwaway_database("lookback_test"))
    with open_warehouse(url) as warehouse:
        done = threading.Event()
        with warehouse.engine.begin() as connection:
            one_writer_at_a_time(connection, "keys")

            def other() -> None:
                with warehouse.engine.begin() as second:
                    one_writer_at_a_time(second, "history")
                    done.set()

            thread = threading.Thread(target=other)
            thread.start()
            assert done.wait(timeout=30)
            held = connection.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
            ).scalar_one()
            assert held >= 1
        thread.join()
    urls.close()


def test_holds_and_unlock_commands(warehouse_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with open_warehouse(warehouse_url) as warehouse:
        acquire(warehouse, "b", Holder.airflow_run("reconcile", "manual__1"))
    assert main(["holds", "--warehouse", warehouse_url]) == 0
    assert "batch b: reconcile/manual__1 (run, host" in capsys.readouterr().out
    assert main(["unlock", "--batch", "b", "--warehouse", warehouse_url]) == 0
    assert "batch b: 1 hold(s) removed" in capsys.readouterr().out
    assert main(["holds", "--batch", "b", "--warehouse", warehouse_url]) == 0
    assert "batch b is not held" in capsys.readouterr().out


def test_an_airflow_run_gives_back_every_batch_it_holds(warehouse: Warehouse) -> None:
    run = Holder.airflow_run("reconcile", "manual__1")
    other = Holder.airflow_run("reconcile", "manual__2")
    acquire(warehouse, "b1", run)
    acquire(warehouse, "b2", run)
    acquire(warehouse, "b3", other)
    assert release_owner(warehouse, run) == 2
    assert [hold.batch_id for hold in holds(warehouse)] == ["b3"]
