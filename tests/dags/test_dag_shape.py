"""lookback's DAG files: they parse cheaply, every task says who owns it, what it does and
what to do when it fails, retries only what a retry can fix, and the DAGs are chained by
assets as designed (the expected graph is written out here by hand)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
SOURCES = {"dibao": True, "housing": True, "hukou": False, "insurance": True, "registry": True}
RECONCILE_EDGES = {  # task: its upstream tasks
    "ingest_complete": set(),
    "validate_standardise": {"ingest_complete"},
    "link_prepare": {"validate_standardise"},
    "link_county": {"link_prepare"},
    "link_merge": {"link_county"},
    "validate_link": {"link_merge"},
    "reconcile_prepare": {"validate_link"},
    "reconcile_county": {"reconcile_prepare"},
    "reconcile_finish": {"reconcile_county"},
    "validate_publish": {"reconcile_finish"},
    "approve_release": {"validate_publish"},
    "release": {"approve_release"},
    "publish": {"release"},
}
# Tasks whose failure a retry cannot fix: a person's answer, a check of what is staged.
NOT_RETRIED = {"approve_release", "release", "ingest_complete"}
# A person's answer and recording it: nothing in them fails on data or I/O.
CANNOT_FAIL = {"approve_release", "release"}
STAGE_WORDS = (
    "ingest",
    "standardise",
    "validate",
    "link",
    "reconcile",
    "publish",
    "approve",
    "release",
    "rectification",
    "sample",
)


@pytest.fixture(scope="module")
def bag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    dagbag = DagBag(dag_folder=str(DAGS))
    assert dagbag.import_errors == {}
    return dagbag


def test_dag_files_parse_without_heavy_imports(tmp_path: Path) -> None:
    """Parsing (the DAG processor does it every few seconds) loads neither readers, pandas,
    Great Expectations nor the stages."""
    probe = (
        "import importlib.util, sys\n"
        f"sys.path[:0] = [{str(ROOT / 'plugins')!r}]\n"
        f"for path in sorted(__import__('pathlib').Path({str(DAGS)!r}).glob('*.py')):\n"
        "    spec = importlib.util.spec_from_file_location(path.stem, path)\n"
        "    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "heavy = sorted(m for m in ('pandas', 'openpyxl', 'opencc', 'pypinyin', 'great_expectations',"
        " 'lookback.ingest.readers', 'lookback.link', 'lookback.reconcile', 'lookback.pipeline') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW__CORE__DAGS")}
    env |= {"AIRFLOW_HOME": str(tmp_path / "airflow"), "LOOKBACK_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr


def test_one_ingest_dag_per_source_started_by_its_landing_flag(bag: Any) -> None:
    from lookback_triggers import LandingFlagTrigger

    ingest_dags = {dag_id for dag_id in bag.dag_ids if dag_id.startswith("ingest_")}
    assert ingest_dags == {f"ingest_{source}" for source in SOURCES}
    for source, mandatory in SOURCES.items():
        dag = bag.dags.get(f"ingest_{source}")
        (asset,) = dag.timetable.asset_condition.objects
        assert asset.name == f"landing_{source}"
        (watcher,) = asset.watchers
        assert isinstance(watcher.trigger, LandingFlagTrigger)
        assert watcher.trigger.source == source
        assert dag.task_ids == ["ingest", "ingest_announce"]
        assert dag.get_task("ingest_announce").upstream_task_ids == {"ingest"}
        assert dag.get_task("ingest").outlets == []
        announce = dag.get_task("ingest_announce")
        assert [outlet.name for outlet in announce.outlets] == [f"staged_{source}"]
        assert announce.pool == "staged_announcements"  # one announcement at a time
        assert ("mandatory" if mandatory else "optional") in dag.tags


def test_the_reconciliation_waits_for_every_mandatory_source_of_one_batch(bag: Any) -> None:
    from airflow.sdk import PartitionedAssetTimetable

    dag = bag.dags.get("reconcile")
    assert isinstance(dag.timetable, PartitionedAssetTimetable)
    condition: Any = dag.timetable.asset_condition
    assert type(condition).__name__ == "AssetAll"
    assert sorted(asset.name for asset in condition.objects) == sorted(
        f"staged_{source}" for source, mandatory in SOURCES.items() if mandatory
    )
    assert {task_id: dag.get_task(task_id).upstream_task_ids for task_id in dag.task_ids} == RECONCILE_EDGES
    assert set(dag.params.keys()) >= {"batch", "landing", "as_of", "run_id", "out", "warehouse"}
    assert dag.deadline is not None
    for task_id in ("link_county", "reconcile_county"):
        task = dag.get_task(task_id)
        assert task.pool == "cpu_heavy" and task.queue == "cpu_heavy"
        assert task.map_index_template == "{{ county_label }}"
    assert dag.get_task("publish").trigger_rule == "none_failed"  # runs, withholding the extract, on a reject


def test_a_returned_county_workbook_starts_the_rectification(bag: Any) -> None:
    from lookback_triggers import ReturnedWorkbookTrigger

    dag = bag.dags.get("rectification")
    (asset,) = dag.timetable.asset_condition.objects
    assert asset.name == "returned_workbooks"
    (watcher,) = asset.watchers
    assert isinstance(watcher.trigger, ReturnedWorkbookTrigger)
    assert dag.task_ids == ["rectification_read"]
    assert set(dag.params.keys()) == {"file", "returned_by", "warehouse"}
    assert dag.max_active_runs == 1


def test_every_dag_and_task_says_who_owns_it_what_it_does_and_how_it_retries(bag: Any) -> None:
    for dag_id in bag.dag_ids:
        dag = bag.dags.get(dag_id)
        assert dag.doc_md and len(dag.doc_md) > 200, dag_id
        assert "lookback" in dag.tags, dag_id
        assert dag.owner == "lookback", dag_id
        assert dag_id.split("_")[0] in STAGE_WORDS, dag_id
        for task in dag.tasks:
            where = f"{dag_id}.{task.task_id}"
            assert task.task_id.split("_")[0] in STAGE_WORDS, where
            assert task.owner == "lookback", where
            assert task.doc_md and task.doc_md.startswith(f"### {task.task_id}"), where
            if task.task_id not in CANNOT_FAIL:
                assert "**When it fails**" in task.doc_md, where
            assert task.on_failure_callback, where
            if task.task_id in NOT_RETRIED:
                assert task.retries == 0, where
            else:
                assert task.retries == 3, where
                assert task.retry_exponential_backoff == 2.0, where
                assert task.retry_delay == timedelta(seconds=30), where
