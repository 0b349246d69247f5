"""Run lookback's DAGs with ``dag.test()``, one after another, in the Airflow home of the
environment (``make demo`` and the DAG tests call it).

Runs in its own process because Airflow reads AIRFLOW_HOME once, at import. Takes a JSON
file listing runs, ``[{"dag_id": ..., "conf": {...}, "mark_success_pattern": ...}, ...]``,
made one after another; prints one JSON line per run: its state, every task's state (a
mapped task's as a list in map order) and the XCom return values asked for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def main(dags_folder: str, runs: list[dict[str, Any]]) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=dags_folder)
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    for spec in runs:
        dag = bag.get_dag(spec["dag_id"])
        assert dag is not None, spec["dag_id"]
        # dag.test() of Airflow 3.3.2 looks a DAG's deadline alerts up by id but holds the
        # alert objects, and fails once the run ends; deadlines are for scheduled runs.
        dag.deadline = None
        options = {"mark_success_pattern": spec["mark_success_pattern"]} if spec.get("mark_success_pattern") else {}
        run = dag.test(run_conf=spec.get("conf") or {}, **options)
        tasks: dict[str, Any] = {}
        for ti in sorted(run.get_task_instances(), key=lambda ti: (ti.task_id, ti.map_index)):
            if ti.map_index >= 0:
                tasks.setdefault(ti.task_id, []).append(str(ti.state))
            else:
                tasks[ti.task_id] = str(ti.state)
        print("RESULT " + json.dumps({"dag_id": spec["dag_id"], "state": str(run.state), "tasks": tasks}), flush=True)


def batch_plan(landing: str, as_of: str | None, out: str | None, warehouse: str | None) -> list[dict[str, Any]]:
    from lookback.sources import source_names

    common = {key: value for key, value in {"warehouse": warehouse}.items() if value}
    plan: list[dict[str, Any]] = [
        {"dag_id": f"ingest_{source}", "conf": {"landing": landing, **common}} for source in source_names()
    ]
    conf = {"batch": Path(landing).resolve().name, "landing": landing, "optional_grace_minutes": 0, **common}
    conf |= {key: value for key, value in {"as_of": as_of, "out": out}.items() if value}
    plan.append({"dag_id": "reconcile", "conf": conf, "mark_success_pattern": "approve_release"})
    return plan


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dags_folder")
    parser.add_argument("plan", nargs="?", help="JSON file listing the runs")
    parser.add_argument("--batch", help="the batch folder (landing/<batch>): its whole plan")
    parser.add_argument("--as-of")
    parser.add_argument("--out")
    parser.add_argument("--warehouse")
    args = parser.parse_args()
    if args.batch:
        runs = batch_plan(args.batch, args.as_of, args.out, args.warehouse)
    elif args.plan:
        runs = json.loads(Path(args.plan).read_text(encoding="utf-8"))
    else:
        parser.error("give a plan file or --batch")
    main(args.dags_folder, runs)
