"""Runs at once in a real Airflow: two reconciliations of one batch never interleave, and
ten batches landed at once are all queued, reconciled and published, none lost."""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.airflow_stack import PROJECT_DAG_IDS, AirflowClient, AirflowStack
from tests.test_airflow_stack import APPROVAL_SETTLE_SECONDS, FILE_PREFIX, SOURCES

pytestmark = [pytest.mark.airflow_stack, pytest.mark.postgres, pytest.mark.slow]


def _land(stack: AirflowStack, exports: Path, batch: str) -> None:
    """Every source's export of a batch into landing/<batch>/, each followed by its flag."""
    folder = stack.data_dir / "landing" / batch
    folder.mkdir(parents=True, exist_ok=True)
    for source in SOURCES:
        for export in exports.glob(f"{FILE_PREFIX[source]}*"):
            shutil.copy(export, folder / export.name)
        (folder / f"{source}.ready").touch()


def _ready(client: AirflowClient) -> None:
    for dag_id in PROJECT_DAG_IDS:
        client.wait_for_dag(dag_id)
        client.unpause(dag_id)


def _reconciliations(client: AirflowClient, batches: set[str]) -> dict[str, str] | None:
    """The asset-triggered reconciliation's run id of each batch, once every batch has one."""
    runs = {run["partition_key"]: run["dag_run_id"] for run in client.dag_runs("reconcile") if run["partition_key"]}
    return runs if batches <= set(runs) else None


def _holds(stack: AirflowStack) -> list[tuple[str, str]]:
    assert stack.warehouse_url is not None
    engine = create_engine(stack.warehouse_url)
    try:
        with engine.connect() as connection:
            return [(row[0], row[1]) for row in connection.execute(text("select batch_id, label from batch_holds"))]
    finally:
        engine.dispose()


def _when(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _approve(client: AirflowClient, run_id: str) -> None:
    client.wait_for_task("reconcile", run_id, "approve_release", "awaiting_input", timeout=900)
    # Answered within seconds of the task pausing, Airflow 3.3.2's scheduler can take the
    # executor's late report of the paused attempt for the resumed one (see test_airflow_stack).
    time.sleep(APPROVAL_SETTLE_SECONDS)
    client.answer_approval("reconcile", run_id, "approve_release", ["Approve"]).expect(200)


def test_two_reconciliations_of_one_batch_do_not_interleave(airflow_stack: AirflowStack, tmp_path: Path) -> None:
    """A batch lands and its reconciliation starts; a second one of the same batch, started by
    hand, waits at ingest_complete while the first holds the batch (up to its approval and
    publication), then runs: none of its writing tasks overlaps the first's."""
    from lookback.generate.batch import generate_batch

    batch = "b-twice"
    generate_batch(tmp_path / batch, persons=60, seed=21)
    bureau = airflow_stack.client("bureau")
    _ready(bureau)
    _land(airflow_stack, tmp_path / batch, batch)
    first = airflow_stack.wait_until(
        lambda: (_reconciliations(bureau, {batch}) or {}).get(batch), "the batch's reconciliation did not start", 600
    )
    second = bureau.trigger("reconcile", {"batch": batch, "optional_grace_minutes": 0})
    bureau.wait_for_task("reconcile", first, "approve_release", "awaiting_input", timeout=900)
    # The first holds the batch while it waits for the bureau; the second is still at its gate.
    assert _holds(airflow_stack) == [(batch, f"reconcile/{first}")]
    airflow_stack.wait_until(
        lambda: bureau.task_states("reconcile", second).get("ingest_complete") == "up_for_reschedule" or None,
        "the second run did not wait at ingest_complete",
        300,
    )
    assert {task for task, state in bureau.task_states("reconcile", second).items() if state} == {"ingest_complete"}
    _approve(bureau, first)
    bureau.wait_for_run("reconcile", first, "success", timeout=600)
    _approve(bureau, second)
    bureau.wait_for_run("reconcile", second, "success", timeout=600)
    first_done = max(_when(ti["end_date"]) for ti in bureau.task_instances("reconcile", first))
    second_writes = [ti for ti in bureau.task_instances("reconcile", second) if ti["task_id"] != "ingest_complete"]
    assert second_writes and min(_when(ti["start_date"]) for ti in second_writes) >= first_done
    assert _holds(airflow_stack) == []


def test_ten_batches_landed_at_once_are_all_reconciled(airflow_stack: AirflowStack, tmp_path: Path) -> None:
    from lookback.generate.batch import generate_batch

    batches = [f"b-ten-{number:02d}" for number in range(10)]
    for seed, batch in enumerate(batches, start=100):
        generate_batch(tmp_path / batch, persons=60, seed=seed)
    bureau = airflow_stack.client("bureau")
    _ready(bureau)
    for batch in batches:
        _land(airflow_stack, tmp_path / batch, batch)
    runs = airflow_stack.wait_until(
        lambda: _reconciliations(bureau, set(batches)), "a reconciliation per batch was not started", 1200
    )
    for batch in batches:
        bureau.wait_for_task("reconcile", runs[batch], "approve_release", "awaiting_input", timeout=1200)
    time.sleep(APPROVAL_SETTLE_SECONDS)  # see _approve
    for batch in batches:
        bureau.answer_approval("reconcile", runs[batch], "approve_release", ["Approve"]).expect(200)
    for batch in batches:
        bureau.wait_for_run("reconcile", runs[batch], "success", timeout=1200)
    for batch in batches:
        assert bureau.xcom("reconcile", runs[batch], "ingest_complete")["batch"] == batch
        manifest: dict[str, Any] = json.loads(
            (airflow_stack.data_dir / "runs" / batch / "manifest.json").read_text(encoding="utf-8")
        )
        assert manifest["census_extract"]["released"] is True, batch
        summary = json.loads((airflow_stack.data_dir / "runs" / batch / "run_summary.json").read_text("utf-8"))
        assert summary["batch_id"] == batch and summary["balanced"] is True
    # Every source of every batch staged once, every flag taken once; nothing held.
    assert airflow_stack.warehouse_url is not None
    engine = create_engine(airflow_stack.warehouse_url)
    with engine.connect() as connection:
        staged = connection.execute(
            text(
                "select batch_id, count(distinct source), count(*) from ingest_accounting "
                "where batch_id like 'b-ten-%' and status = 'ingested' group by batch_id"
            )
        ).all()
    engine.dispose()
    assert sorted(staged) == [(batch, len(SOURCES), len(SOURCES)) for batch in batches]
    taken = {path.parent.name for path in (airflow_stack.data_dir / "landing").glob("b-ten-*/*.done")}
    assert taken == set(batches)
    assert len(list((airflow_stack.data_dir / "landing").glob("b-ten-*/*.done"))) == len(SOURCES) * len(batches)
    assert not list((airflow_stack.data_dir / "landing").glob("b-ten-*/*.ready"))
    assert [hold for hold in _holds(airflow_stack) if hold[0].startswith("b-ten")] == []
