"""The task code is imported once by the processes that fork Airflow's task processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lookback.preload import TASK_MODULES, forks_tasks, preload, wanted

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"


@pytest.mark.parametrize(
    ("argv", "forks"),
    [
        (["airflow", "scheduler"], True),
        (["/x/.venv/bin/airflow", "scheduler", "--skip-serve-logs"], True),
        (["airflow", "celery", "worker", "-q", "cpu_heavy", "--concurrency", "1"], True),
        (["airflow", "api-server", "--port", "8080"], False),
        (["airflow", "dag-processor"], False),
        (["airflow", "triggerer"], False),
        (["airflow", "celery", "flower"], False),
        (["airflow", "db", "migrate"], False),
        (["airflow"], False),
        (["python", "-c"], False),
    ],
)
def test_only_the_scheduler_and_celery_workers_fork_tasks(argv: list[str], forks: bool) -> None:
    assert forks_tasks(argv) is forks


@pytest.mark.parametrize(("value", "on"), [(None, True), ("1", True), ("0", False), ("off", False), ("false", False)])
def test_lookback_preload_turns_it_off(value: str | None, on: bool) -> None:
    environ = {} if value is None else {"LOOKBACK_PRELOAD": value}
    assert wanted(["airflow", "scheduler"], environ) is on
    assert wanted(["airflow", "triggerer"], environ) is False


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as if it had preloaded nothing yet."""
    monkeypatch.setattr("lookback.preload._preloaded", [])


@pytest.mark.usefixtures("fresh")
def test_a_module_that_fails_is_left_to_its_task(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="lookback.preload")
    assert preload(["airflow", "api-server"], ["json"]) == []
    assert preload(["airflow", "scheduler"], ["json", "lookback.no_such_module"]) == ["json"]
    assert "lookback.no_such_module not preloaded" in caplog.text
    assert "task code preloaded in" in caplog.text


@pytest.mark.usefixtures("fresh")
def test_a_process_preloads_once(caplog: pytest.LogCaptureFixture) -> None:
    """The plugins manager imports the local settings again, in the scheduler and in each task."""
    caplog.set_level("INFO", logger="lookback.preload")
    assert preload(["airflow", "scheduler"], ["json"]) == ["json"]
    caplog.clear()
    assert preload(["airflow", "scheduler"], ["lookback.no_such_module"]) == ["json"]
    assert caplog.text == ""


def _modules_after_local_settings(*argv: str) -> set[str]:
    """The lookback and Great Expectations modules a fresh process holds once it has imported
    airflow_local_settings as Airflow does (the plugins folder on its path) with ``argv``."""
    code = (
        "import sys\n"
        f"sys.path.append({str(PLUGINS)!r})\n"
        f"sys.argv = {list(argv)!r}\n"
        "import airflow_local_settings\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in {'lookback', 'great_expectations'})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    # Before Airflow configures logging, the one line goes to standard error.
    assert ("task code preloaded in" in done.stderr) is ("lookback.pipeline" in done.stdout.split())
    return set(done.stdout.split())


@pytest.mark.integration
def test_the_scheduler_holds_every_stage_and_the_api_server_none() -> None:
    held = _modules_after_local_settings("airflow", "scheduler")
    assert set(TASK_MODULES) - {"openpyxl", "pypinyin"} <= held
    assert not {"lookback.pipeline", "great_expectations"} & _modules_after_local_settings("airflow", "api-server")
