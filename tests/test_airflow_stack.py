"""The shared test stack: it comes up, parses the project's DAGs and lists them through the
REST API, and applies the users' roles (ops, viewer: reads but may not trigger; bureau,
user: triggers)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_stack import ACCEPTED_CONF, PROJECT_DAG_IDS, AirflowStack

pytestmark = [pytest.mark.airflow_stack, pytest.mark.postgres]

APPROVAL_SETTLE_SECONDS = 10
SOURCES = ("registry", "dibao", "housing", "insurance", "hukou")
FILE_PREFIX = {
    "registry": "registry_members",
    "dibao": "dibao_roster",
    "housing": "housing_safety",
    "insurance": "insurance_enrolment",
    "hukou": "hukou_cancellations",
}


def test_stack_lists_the_project_dags(airflow_stack: AirflowStack) -> None:
    ops = airflow_stack.client("ops")
    for dag_id in PROJECT_DAG_IDS:
        ops.wait_for_dag(dag_id)
    assert set(PROJECT_DAG_IDS) <= set(ops.dag_ids())
    health = ops.wait_for_health(("metadatabase", "scheduler", "dag_processor", "triggerer"))
    assert health["scheduler"]["latest_scheduler_heartbeat"] is not None


def test_viewer_reads_but_cannot_trigger_and_user_can(airflow_stack: AirflowStack) -> None:
    dag_id = PROJECT_DAG_IDS[0]
    ops = airflow_stack.client("ops")
    ops.wait_for_dag(dag_id)
    assert ops.request("GET", f"/api/v2/dags/{dag_id}").expect(200)["dag_id"] == dag_id
    assert ops.request("GET", "/api/v2/dags", authenticated=False).status == 401

    refused = ops.trigger_request(dag_id, ACCEPTED_CONF[dag_id])
    assert refused.status == 403, refused
    assert ops.unpause_request(dag_id).status == 403

    # The DAG stays paused, so the run stays queued: this checks the role, not the pipeline.
    bureau = airflow_stack.client("bureau")
    run_id = bureau.trigger(dag_id, ACCEPTED_CONF[dag_id])
    run = bureau.dag_run(dag_id, run_id)
    assert run["dag_id"] == dag_id
    assert run["state"] == "queued"
    listed = ops.request("GET", f"/api/v2/dags/{dag_id}/dagRuns").expect(200)["dag_runs"]
    assert run_id in {listed_run["dag_run_id"] for listed_run in listed}


@pytest.mark.slow
def test_landed_flags_start_the_ingests_and_each_batch_gets_its_own_reconciliation(
    airflow_stack: AirflowStack, tmp_path: Path
) -> None:
    """Two batches land interleaved, source by source, each export followed by its flag: the
    triggerer starts each source's ingest DAG, the staged assets' partitions start one
    reconciliation per batch, never mixing them; the bureau approves one release (ops may
    not answer) and rejects the other, whose files go out without the census extract."""
    from lookback.generate.batch import generate_batch

    landing = airflow_stack.data_dir / "landing"
    batches = ("b-one", "b-two")
    for seed, batch in enumerate(batches, start=1):
        generate_batch(tmp_path / batch, persons=120, seed=seed, noise="typical")
    bureau, ops = airflow_stack.client("bureau"), airflow_stack.client("ops")
    for dag_id in PROJECT_DAG_IDS:
        bureau.wait_for_dag(dag_id)
        bureau.unpause(dag_id)
    # Interleaved: b-one's registry, b-two's registry and dibao, b-one's dibao, and so on.
    order = [
        ("b-one", "registry"),
        ("b-two", "registry"),
        ("b-two", "dibao"),
        ("b-one", "dibao"),
        ("b-one", "housing"),
        ("b-two", "housing"),
        ("b-two", "insurance"),  # b-two has every mandatory source before b-one does
        ("b-one", "insurance"),
        ("b-one", "hukou"),
        ("b-two", "hukou"),
    ]
    for batch, source in order:
        folder = landing / batch
        folder.mkdir(parents=True, exist_ok=True)
        for export in (tmp_path / batch).glob(f"{FILE_PREFIX[source]}*"):
            shutil.copy(export, folder / export.name)
        (folder / f"{source}.ready").touch()
        time.sleep(0.5)

    def reconciliations() -> dict[str, dict[str, Any]] | None:
        runs = {run["partition_key"]: run for run in bureau.dag_runs("reconcile") if run["partition_key"]}
        return runs if set(runs) >= set(batches) else None

    runs = airflow_stack.wait_until(reconciliations, "a reconciliation per batch was not started", 600)
    assert set(runs) == set(batches)  # one run per batch, none of mixed events
    for batch in batches:
        run_id = runs[batch]["dag_run_id"]
        assert runs[batch]["run_type"] == "asset_triggered"
        bureau.wait_for_task("reconcile", run_id, "approve_release", "awaiting_input", timeout=900)
        complete = bureau.xcom("reconcile", run_id, "ingest_complete")
        assert complete["batch"] == batch  # the partition's batch, not the other's
    # Every flag was taken, once, and each source's ingest ran once per batch.
    assert sorted(path.name for path in landing.glob("*/*.ready")) == []
    assert len(list(landing.glob("*/*.done"))) == len(SOURCES) * len(batches)
    for source in SOURCES:
        ingests = [run for run in bureau.dag_runs(f"ingest_{source}") if run["run_type"] == "asset_triggered"]
        assert len(ingests) == len(batches) and {run["state"] for run in ingests} == {"success"}, source

    one, two = runs["b-one"]["dag_run_id"], runs["b-two"]["dag_run_id"]
    # Answered within a second of the task pausing, Airflow 3.3.2's scheduler can take the
    # executor's late report of the paused attempt for the resumed one and fail it; a person
    # never answers that fast, and the test waits as long.
    time.sleep(APPROVAL_SETTLE_SECONDS)
    assert ops.answer_approval("reconcile", one, "approve_release", ["Approve"]).status == 403
    bureau.answer_approval("reconcile", one, "approve_release", ["Approve"]).expect(200)
    bureau.answer_approval("reconcile", two, "approve_release", ["Reject"]).expect(200)
    bureau.wait_for_run("reconcile", one, "success", timeout=600)
    bureau.wait_for_run("reconcile", two, "success", timeout=600)
    assert bureau.task_states("reconcile", one)["release"] == "success"
    assert bureau.task_states("reconcile", two)["release"] == "skipped"
    out = airflow_stack.data_dir / "runs"
    released = json.loads((out / "b-one" / "manifest.json").read_text(encoding="utf-8"))["census_extract"]
    withheld = json.loads((out / "b-two" / "manifest.json").read_text(encoding="utf-8"))["census_extract"]
    assert released["released"] is True and released["persons"] > 0
    assert withheld["released"] is False and withheld["files"] == [] and "rejected" in withheld["withheld"]
    assert not (out / "b-two" / "census_extract").exists()
    assert list((out / "b-two" / "counties").glob("*.xlsx"))  # the county files went out all the same
