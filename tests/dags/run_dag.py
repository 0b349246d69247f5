"""Run the ingest DAG with ``dag.test()`` in a fresh Airflow home (called by test_ingest_dag.py).

Runs in its own process because Airflow reads AIRFLOW_HOME once, at import. Prints one
JSON line per run: the run's state and every task's state.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(dags_folder: str, confs: list[dict[str, str]]) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=dags_folder)
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag("lookback")
    assert dag is not None
    for conf in confs:
        run = dag.test(run_conf=conf)
        tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        print("RESULT " + json.dumps({"state": str(run.state), "tasks": tasks}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], [json.loads(Path(path).read_text(encoding="utf-8")) for path in sys.argv[2:]])
