"""A real distributed run: Airflow with the CeleryExecutor, its tasks taken from Redis by two
Celery workers, each a process of its own as it would be on a machine of its own.

A batch of three counties lands in the stack's landing folder, each source's export followed
by its flag file. The triggerer starts each source's ingest, the staged sources start the
batch's reconciliation, the reconciliation stops at ``approve_release``, the bureau approves it
through the REST API, and the run publishes its files. Then:

- each worker's own log says which tasks it ran (the task instances' hostname cannot tell
  them apart: both workers run on this host). Both ran tasks; the county tasks
  (``link_county`` and ``reconcile_county``, each map index, queue ``cpu_heavy``) all ran on
  the ``cpu_heavy`` worker, and that worker ran nothing else: every other task, the ingests'
  and the reconciliation's province-wide steps, ran on the ``default`` worker;
- the run's files (findings, discrepancy tables, visit roster and visit lists, county
  workbooks, census extract) are those of the same batch run on one machine by
  ``lookback run`` on a PostgreSQL warehouse of its own: the same bytes, JSON files alike but
  for where each run kept its landing folder and warehouse (and the hash and size of the
  summary that names them). The distributed run's warehouse, PostgreSQL too, is written by
  tasks of both workers.

Nothing the test prints or asserts names a person: task names carry county codes and names,
and any log shown on a failure has everything like an identity number masked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lookback.standardise.identity import mask_identity_numbers_in
from scripts import airflow_stack as stack_script
from tests.airflow_stack import PROJECT_DAG_IDS, AirflowStack
from tests.postgres import throwaway_database

pytestmark = [pytest.mark.distributed, pytest.mark.postgres]

BATCH = "distributed"
COUNTIES = ("431230", "431224", "433130")
PERSONS = 120
# The optional source first: staged before the mandatory ones are, the reconciliation does not wait for it.
FILE_PREFIX = {
    "hukou": "hukou_cancellations",
    "registry": "registry_members",
    "dibao": "dibao_roster",
    "housing": "housing_safety",
    "insurance": "insurance_enrolment",
}
COUNTY_TASKS = frozenset({"link_county", "reconcile_county"})
# Answered within a second of the task pausing, Airflow 3.3.2's scheduler can take the
# executor's late report of the paused attempt for the resumed one (see test_airflow_stack.py).
APPROVAL_SETTLE_SECONDS = 10
# Keys of the run's JSON files that say where a run kept its inputs, not what it found.
PLACE_KEYS = frozenset({"landing", "warehouse"})
WORKLOAD = re.compile(r"Executing workload in Celery: (.*)$")


@dataclass(frozen=True)
class TaskRun:
    """One task instance a worker was given (from its log line ``Executing workload in Celery``)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    queue: str

    def __str__(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"


def _field(workload: str, name: str) -> str:
    found = re.search(rf"\b{name}=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|-?\d+)", workload)
    assert found is not None, f"no {name} in a workload line of a worker's log"
    return found.group(1).strip("'\"")


def tasks_run_by(log: Path) -> list[TaskRun]:
    """Every task instance a Celery worker's log says it executed, in order."""
    runs = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if (found := WORKLOAD.search(line)) is None or "task_id=" not in found.group(1):
            continue  # not a workload, or not a task's (a callback's)
        workload = found.group(1)
        runs.append(
            TaskRun(
                dag_id=_field(workload, "dag_id"),
                run_id=_field(workload, "run_id"),
                task_id=_field(workload, "task_id"),
                map_index=int(_field(workload, "map_index")),
                queue=_field(workload, "queue"),
            )
        )
    return runs


@dataclass(frozen=True)
class DistributedRun:
    stack: AirflowStack
    run_id: str  # the reconciliation's DAG run
    out: Path  # its files
    county_tasks: frozenset[tuple[str, int]]  # (task_id, map_index) of its county tasks, from the REST API
    queues: dict[tuple[str, int], str]  # every task instance's queue, from the REST API
    workers: dict[str, list[TaskRun]]  # worker process -> the tasks its log says it ran


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lookback.generate.batch import generate_batch

    folder = tmp_path_factory.mktemp("distributed") / "landing" / BATCH
    generate_batch(folder, persons=PERSONS, seed=17, counties=COUNTIES, noise="typical")
    return folder


@pytest.fixture(scope="module")
def distributed(celery_stack: AirflowStack, landing: Path) -> DistributedRun:
    """The batch landed in the Celery stack, followed to its approval, approved, published."""
    stack = celery_stack
    bureau = stack.client("bureau")
    for dag_id in PROJECT_DAG_IDS:
        bureau.wait_for_dag(dag_id)
        bureau.unpause(dag_id)
    folder = stack.data_dir / "landing" / BATCH
    folder.mkdir(parents=True)
    for source, prefix in FILE_PREFIX.items():
        for export in landing.glob(f"{prefix}*"):
            shutil.copy(export, folder / export.name)
        (folder / f"{source}.ready").touch()

    def reconciliation() -> dict[str, Any] | None:
        return next((run for run in bureau.dag_runs("reconcile") if run["partition_key"] == BATCH), None)

    run_id = str(stack.wait_until(reconciliation, "the batch's reconciliation was not started", 900)["dag_run_id"])
    bureau.wait_for_task("reconcile", run_id, "approve_release", "awaiting_input", timeout=900)
    time.sleep(APPROVAL_SETTLE_SECONDS)
    bureau.answer_approval("reconcile", run_id, "approve_release", ["Approve"]).expect(200)
    bureau.wait_for_run("reconcile", run_id, "success", timeout=600)

    instances = bureau.task_instances("reconcile", run_id)
    queues = {(ti["task_id"], ti["map_index"]): str(ti["queue"]) for ti in instances}
    county = frozenset(key for key in queues if key[0] in COUNTY_TASKS)
    workers = {worker: tasks_run_by(stack.worker_log(worker)) for worker in ("worker-default", "worker-cpu_heavy")}
    return DistributedRun(stack, run_id, stack.data_dir / "runs" / BATCH, county, queues, workers)


@pytest.fixture(scope="module")
def single_machine(
    distributed: DistributedRun, landing: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The same batch run on one machine by ``lookback run``, on the distributed run's date, with
    a PostgreSQL warehouse of its own (as the distributed run's: a SQLite warehouse writes the
    booleans of ``person_links.csv`` as 0 and 1, PostgreSQL as false and true)."""
    as_of = json.loads((distributed.out / "manifest.json").read_text(encoding="utf-8"))["as_of"]
    root = tmp_path_factory.mktemp("single-machine")
    out = root / "run"
    lookback = Path(sys.executable).with_name("lookback")
    database = throwaway_database("lookback_single_machine")
    warehouse = next(database)
    try:
        _run_on_one_machine(lookback, landing, out, as_of, warehouse, root / "data")
        yield out
    finally:
        database.close()


def _run_on_one_machine(lookback: Path, landing: Path, out: Path, as_of: str, warehouse: str, data: Path) -> None:
    arguments = ["--landing", str(landing), "--out", str(out), "--as-of", as_of, "--batch", BATCH]
    done = subprocess.run(
        [str(lookback), "--quiet", "run", *arguments, "--warehouse", warehouse],
        env={**_environment_without_airflow(), "LOOKBACK_DATA_DIR": str(data)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"lookback run failed (exit {done.returncode}):\n" + mask_identity_numbers_in(
        done.stderr[-3000:]
    )


def _environment_without_airflow() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AIRFLOW") and key not in {"LOOKBACK_WAREHOUSE_URL", "LOOKBACK_DATA_DIR"}
    }


def test_both_workers_ran_tasks(distributed: DistributedRun) -> None:
    for worker, ran in distributed.workers.items():
        assert ran, f"{worker} ran no task"
    # The default worker ran the ingests and the reconciliation's steps that are not per county.
    default = {(run.dag_id, run.task_id) for run in distributed.workers["worker-default"]}
    assert {("ingest_registry", "ingest"), ("reconcile", "link_prepare"), ("reconcile", "publish")} <= default


def test_only_the_celery_workers_preload_the_task_code(distributed: DistributedRun) -> None:
    """They fork the tasks (lookback.preload); the scheduler, with the CeleryExecutor, runs none."""
    preloaded = distributed.stack.processes_saying("lookback: task code preloaded in")
    assert preloaded == set(stack_script.CELERY_WORKERS)


def test_every_county_task_ran_on_the_cpu_heavy_worker_and_nothing_else_did(distributed: DistributedRun) -> None:
    county = distributed.county_tasks
    # One task per county for each of link and look-back (rows of no county ride with one of them).
    assert {task for task, _ in county} == COUNTY_TASKS
    assert len(county) == 2 * len(COUNTIES)
    assert {distributed.queues[key] for key in county} == {"cpu_heavy"}
    assert {queue for key, queue in distributed.queues.items() if key not in county} == {"default"}

    def of_this_run(worker: str) -> list[TaskRun]:
        return [run for run in distributed.workers[worker] if run.run_id == distributed.run_id]

    heavy = distributed.workers["worker-cpu_heavy"]
    assert {(run.task_id, run.map_index) for run in of_this_run("worker-cpu_heavy")} == county
    strays = sorted({str(run) for run in heavy if run.task_id not in COUNTY_TASKS or run.queue != "cpu_heavy"})
    assert strays == [], "the cpu_heavy worker ran tasks not queued to cpu_heavy"
    on_default = sorted({str(run) for run in distributed.workers["worker-default"] if run.task_id in COUNTY_TASKS})
    assert on_default == [], "county tasks ran on the default worker"
    assert {run.queue for run in distributed.workers["worker-default"]} == {"default"}


def _files(out: Path) -> dict[str, Path]:
    """The run's files by path in the folder, but the Data Docs (pages stamped with the time of validation)."""
    return {
        path.relative_to(out).as_posix(): path
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.relative_to(out).parts[0] != "data_docs"
    }


def _without_places(value: Any) -> Any:
    """A JSON value without the keys that say where a run kept its inputs, nor the hash and size
    of a listed JSON file (which holds them)."""
    if isinstance(value, dict):
        kept = {key: _without_places(item) for key, item in value.items() if key not in PLACE_KEYS}
        if str(kept.get("path", "")).endswith(".json"):
            kept.pop("sha256", None)
            kept.pop("bytes", None)
        return kept
    if isinstance(value, list):
        return [_without_places(item) for item in value]
    return value


def test_the_files_are_those_of_a_run_on_one_machine(distributed: DistributedRun, single_machine: Path) -> None:
    apart, together = _files(distributed.out), _files(single_machine)
    assert sorted(apart) == sorted(together)
    for name in ("lookback_findings.csv", "visit_roster.csv", "manifest.json", "run_summary.json"):
        assert name in together, name
    assert any(name.startswith("census_extract/") for name in together)
    assert any(name.startswith("counties/") for name in together)
    differ = []
    for name, path in together.items():
        if path.suffix == ".json":
            same = _without_places(json.loads(path.read_text(encoding="utf-8"))) == _without_places(
                json.loads(apart[name].read_text(encoding="utf-8"))
            )
        else:
            same = path.read_bytes() == apart[name].read_bytes()
        if not same:
            differ.append(name)
    assert differ == [], "files of the distributed run differ from the run on one machine"
    manifest = json.loads((distributed.out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["census_extract"]["released"] is True and manifest["census_extract"]["persons"] > 0
