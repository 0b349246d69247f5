"""The task code is imported once by the processes that fork Airflow's task processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lookback.preload import TASK_MODULES, forks_tasks, preload, wanted

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"


LOCAL, CELERY = "LocalExecutor", "CeleryExecutor"


@pytest.mark.parametrize(
    ("argv", "executor", "forks"),
    [
        (["airflow", "scheduler"], LOCAL, True),
        (["/x/.venv/bin/airflow", "scheduler", "--skip-serve-logs"], LOCAL, True),
        (["airflow", "scheduler"], f"{CELERY},{LOCAL}", True),
        (["airflow", "scheduler"], CELERY, False),
        (["airflow", "celery", "worker", "-q", "cpu_heavy", "--concurrency", "1"], CELERY, True),
        (["airflow", "api-server", "--port", "8080"], LOCAL, False),
        (["airflow", "dag-processor"], LOCAL, False),
        (["airflow", "triggerer"], LOCAL, False),
        (["airflow", "celery", "flower"], CELERY, False),
        (["airflow", "db", "migrate"], LOCAL, False),
        (["airflow"], LOCAL, False),
        (["pytest", "-n", "auto"], LOCAL, False),
    ],
)
def test_only_the_processes_that_fork_tasks_preload(argv: list[str], executor: str, forks: bool) -> None:
    assert forks_tasks(argv, executor) is forks


@pytest.mark.parametrize(
    ("value", "on"), [(None, True), ("1", True), ("0", False), ("off", False), ("False", False), ("no", False)]
)
def test_lookback_preload_turns_it_off(value: str | None, on: bool) -> None:
    environ = {} if value is None else {"LOOKBACK_PRELOAD": value}
    assert wanted(["airflow", "scheduler"], LOCAL, environ) is on
    assert wanted(["airflow", "triggerer"], LOCAL, environ) is False


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as if it had preloaded nothing yet."""
    monkeypatch.setattr("lookback.preload._preloaded", [])


@pytest.mark.usefixtures("fresh")
def test_a_module_that_fails_is_left_to_its_task(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="lookback.preload")
    assert preload(["airflow", "api-server"], LOCAL, ["json"]) == []
    assert preload(["airflow", "scheduler"], LOCAL, ["json", "lookback.no_such_module"]) == ["json"]
    assert "lookback.no_such_module not preloaded" in caplog.text
    assert "task code preloaded in" in caplog.text


@pytest.mark.usefixtures("fresh")
def test_a_process_preloads_once(caplog: pytest.LogCaptureFixture) -> None:
    """The plugins manager imports the local settings again, in the scheduler and in each task."""
    caplog.set_level("INFO", logger="lookback.preload")
    assert preload(["airflow", "scheduler"], LOCAL, ["json"]) == ["json"]
    caplog.clear()
    assert preload(["airflow", "scheduler"], LOCAL, ["lookback.no_such_module"]) == ["json"]
    assert caplog.text == ""


def _modules_held(executor: str, *argv: str) -> set[str]:
    """The lookback and Great Expectations modules a fresh process holds once it has imported
    Airflow (which imports its local settings from the plugins folder) as ``argv``."""
    code = (
        "import sys\n"
        f"sys.argv = {list(argv)!r}\n"
        "import airflow.settings\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in {'lookback', 'great_expectations'})))\n"
    )
    environ = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS), "AIRFLOW__CORE__EXECUTOR": executor}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120, env=environ
    )
    held = set(done.stdout.split())
    # Before Airflow configures logging, the one line goes to standard error.
    assert ("task code preloaded in" in done.stderr) is ("lookback.pipeline" in held), done.stderr[-2000:]
    return held


@pytest.mark.integration
def test_airflow_s_scheduler_and_celery_workers_hold_every_stage_and_the_api_server_none() -> None:
    stages = set(TASK_MODULES) - {"openpyxl", "pypinyin"}
    assert stages <= _modules_held(LOCAL, "airflow", "scheduler")
    assert stages <= _modules_held(CELERY, "airflow", "celery", "worker", "-q", "default")
    for argv in (("airflow", "api-server"), ("airflow", "scheduler")):
        assert not {"lookback.pipeline", "great_expectations"} & _modules_held(CELERY, *argv)
