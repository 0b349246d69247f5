"""The shared test stack: it comes up, parses the project's DAGs and lists them through the
REST API, and applies the users' roles (ops, viewer: reads but may not trigger; bureau,
user: triggers)."""

from __future__ import annotations

import pytest

from tests.airflow_stack import ACCEPTED_CONF, PROJECT_DAG_IDS, AirflowStack

pytestmark = [pytest.mark.airflow_stack, pytest.mark.postgres]


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
