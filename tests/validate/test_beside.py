"""The standardise gate of ``lookback run`` in a worker process beside the link
(``lookback.validate.beside``): the link writes nothing of a batch whose staged rows fail
the gate, a failed gate is what the run reports, and the worker's report and log lines are
those of the gate validated here."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lookback import pipeline
from lookback.errors import QualityGateError
from lookback.run import Run, open_warehouse
from lookback.validate import beside
from lookback.validate.beside import GateBeside
from lookback.warehouse import Warehouse

AS_OF = date(2020, 6, 30)


def _defective(landing: Path) -> None:
    """Half the registry's households lose their head: a critical defect of the staged rows."""
    path = landing / "registry_members.csv"
    lines = path.read_text(encoding="gb18030").splitlines(keepends=True)
    heads = [at for at, line in enumerate(lines) if ",户主," in line]
    for at in heads[::2]:
        lines[at] = lines[at].replace(",户主,", ",其他,")
    path.write_text("".join(lines), encoding="gb18030")


@pytest.fixture(params=[True, False], ids=["in-a-worker", "here"])
def worker(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def _staged(generated_batch: Path, tmp_path: Path, defective: bool) -> Iterator[tuple[Run, Warehouse]]:
    landing = tmp_path / "landing" / "b1"
    shutil.copytree(generated_batch, landing)
    if defective:
        _defective(landing)
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    run = Run.create(landing=landing, out=tmp_path / "runs" / "b1", as_of=AS_OF, warehouse=url)
    with open_warehouse(url) as warehouse:
        pipeline.ingest_all(run, warehouse)
        yield run, warehouse


@pytest.fixture
def defective(generated_batch: Path, tmp_path: Path) -> Iterator[tuple[Run, Warehouse]]:
    yield from _staged(generated_batch, tmp_path, defective=True)


@pytest.fixture
def clean(generated_batch: Path, tmp_path: Path) -> Iterator[tuple[Run, Warehouse]]:
    yield from _staged(generated_batch, tmp_path, defective=False)


def _count(warehouse: Warehouse, table: str, **where: str) -> int:
    stored = warehouse.table(table)
    statement = select(func.count()).select_from(stored)
    for column, value in where.items():
        statement = statement.where(stored.c[column] == value)
    with warehouse.engine.connect() as connection:
        return int(connection.execute(statement).scalar_one())


def test_the_link_writes_nothing_of_a_batch_whose_staged_rows_fail_the_gate_beside_it(
    defective: tuple[Run, Warehouse], worker: bool
) -> None:
    run, warehouse = defective
    with (
        pytest.raises(QualityGateError, match="failed at stage standardise of batch b1"),
        GateBeside(run, warehouse, "standardise", worker=worker) as gate,
    ):
        pipeline.link(run, warehouse, before_writing=gate.verdict)
    for table in ("person_links", "match_review", "link_weights"):
        assert _count(warehouse, table, batch_id="b1") == 0, table
    # The gate's outcomes are stored all the same: the quality report says what failed.
    assert _count(warehouse, "quality_results", batch_id="b1", stage="standardise") > 0


def test_a_stage_that_fails_while_the_gate_is_out_reports_the_failed_gate(
    defective: tuple[Run, Warehouse], worker: bool
) -> None:
    run, warehouse = defective
    with (
        pytest.raises(QualityGateError, match="heads_in_household") as raised,
        GateBeside(run, warehouse, "standardise", worker=worker),
    ):
        raise ValueError("the link failed on its own")
    assert isinstance(raised.value.__cause__, ValueError)


def test_a_stage_that_fails_beside_a_gate_that_passes_keeps_its_own_error(
    clean: tuple[Run, Warehouse], worker: bool
) -> None:
    run, warehouse = clean
    with pytest.raises(ValueError, match="on its own"), GateBeside(run, warehouse, "standardise", worker=worker):
        raise ValueError("the link failed on its own")
    assert _count(warehouse, "quality_results", batch_id="b1", stage="standardise") > 0


def test_a_gate_in_the_worker_reports_and_logs_as_a_gate_validated_here(
    clean: tuple[Run, Warehouse], caplog: pytest.LogCaptureFixture
) -> None:
    run, warehouse = clean
    caplog.set_level(logging.INFO, logger="lookback")
    with GateBeside(run, warehouse, "standardise", worker=True) as gate:
        apart = gate.verdict()
        assert gate.verdict() is apart  # asked again, the same answer
    # The worker's lines were logged by this process's loggers, under their own names.
    suites = [record for record in caplog.records if record.name == "lookback.validate.stage"]
    assert {record.getMessage().split(":")[0] for record in suites} == {
        f"standardise.{source}" for source in ("dibao", "housing", "hukou", "insurance", "registry")
    }
    assert all(record.process != os.getpid() for record in suites)
    with GateBeside(run, warehouse, "standardise", worker=False) as gate:
        here = gate.verdict()
    assert [outcome.line() for outcome in apart.outcomes] == [outcome.line() for outcome in here.outcomes]
    assert apart.rows == here.rows and apart.data_docs == here.data_docs


def test_a_worker_only_where_it_can_reach_the_warehouse_and_gain(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not beside.worker_possible("sqlite://")  # in memory: this process's alone
    assert not beside.worker_possible("sqlite:///:memory:")
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert not beside.worker_possible("sqlite:////tmp/warehouse.sqlite")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert beside.worker_possible("sqlite:////tmp/warehouse.sqlite")
    assert beside.worker_possible("postgresql+psycopg://postgres@127.0.0.1/test")
