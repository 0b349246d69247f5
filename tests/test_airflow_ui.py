"""``make airflow`` as a person uses it: it starts Airflow, prints the URL and the users'
passwords, finds it running on a second call; ops logs in through the UI's form in headless
Chromium and sees the project's DAGs in the DAG list; ``make airflow-stop`` stops every process.

The stack runs in a temporary home, data folder and free ports (the Makefile's
LOOKBACK_AIRFLOW_HOME, LOOKBACK_DATA_DIR, AIRFLOW_PORT, AIRFLOW_WORKER_LOG_PORT and
AIRFLOW_TRIGGER_LOG_PORT), never in the checkout's ``.airflow/`` or on 8080. The screenshot goes
to the test's folder; with ``LOOKBACK_UI_SCREENSHOT=docs/images/airflow-ui.png`` also there (for
the README).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts import airflow_stack as stack_script
from tests.airflow_stack import PROJECT_DAG_IDS, free_port
from tests.browser import DevToolsPage, chromium, devtools_page

pytestmark = pytest.mark.airflow_stack

ROOT = Path(__file__).resolve().parents[1]


def _make(target: str, variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AIRFLOW") and key not in {"MAKEFLAGS", "MAKELEVEL", "LOOKBACK_WAREHOUSE_URL"}
    }
    return subprocess.run(
        ["make", "--no-print-directory", target, *(f"{name}={value}" for name, value in variables.items())],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def log_in(page: DevToolsPage, url: str, username: str, password: str) -> None:
    """Sign in through SimpleAuthManager's form, as a person types it, and land on the DAG list."""
    page.navigate(f"{url}/dags")
    page.wait_for("location.pathname.startsWith('/auth/login')", what="the redirect to the login form")
    page.type_into("input[name=username]", username)
    page.type_into("input[name=password]", password)
    page.wait_for("!document.querySelector('button[type=submit]').disabled", what="the Sign in button")
    page.evaluate("document.querySelector('button[type=submit]').click()")
    page.wait_for("location.pathname === '/dags'", what="the DAG list after signing in")


def check_demo_run(page: DevToolsPage, url: str) -> None:
    """Hook for the demo's run: once ``make demo`` runs the DAG in this Airflow, check here that its
    run shows in the UI (e.g. open ``{url}/dags/lookback/runs`` and wait for the run's id and state).

    Empty for now: the demo target is being changed to trigger the run in the running stack.
    """


def test_make_airflow_ui_shows_the_dags_to_ops(tmp_path: Path) -> None:
    chromium()  # fails in CI, skips elsewhere, when headless Chromium is missing: before starting anything
    home = tmp_path / "airflow-home"
    port = free_port()
    variables = {
        "LOOKBACK_AIRFLOW_HOME": str(home),
        "LOOKBACK_DATA_DIR": str(tmp_path / "data"),
        "AIRFLOW_PORT": str(port),
        "AIRFLOW_WORKER_LOG_PORT": str(free_port()),
        "AIRFLOW_TRIGGER_LOG_PORT": str(free_port()),
    }
    url = f"http://127.0.0.1:{port}"
    started = _make("airflow", variables)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"Airflow UI and API: {url}" in started.stdout
        passwords_file = home / "passwords.json"
        assert f"passwords in {passwords_file}" in started.stdout
        passwords = json.loads(passwords_file.read_text(encoding="utf-8"))
        assert set(passwords) == {"bureau", "ops"}
        for user, role in (("bureau", "user"), ("ops", "viewer")):
            assert re.search(rf"{user}\s+role {role}\s+password {re.escape(passwords[user])}", started.stdout)
        assert oct(passwords_file.stat().st_mode & 0o777) == "0o600"

        again = _make("airflow", variables)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "running already; nothing started" in again.stdout
        settings = stack_script.StackSettings(home=home, port=port)
        pids = stack_script.running(settings)
        assert sorted(pids) == sorted(stack_script.PROCESSES)

        with devtools_page() as page:
            log_in(page, url, "ops", passwords["ops"])
            for dag_id in PROJECT_DAG_IDS:
                page.wait_for(
                    f"Array.from(document.querySelectorAll('a')).some(a => a.textContent.trim() === {dag_id!r}"
                    f" && (a.getAttribute('href') || '').endsWith('/dags/{dag_id}'))",
                    timeout=120,
                    what=f"DAG {dag_id} in the DAG list",
                )
            check_demo_run(page, url)
            screenshot = page.screenshot(tmp_path / "airflow-ui.png")
        assert screenshot.read_bytes().startswith(b"\x89PNG")
        if target := os.environ.get("LOOKBACK_UI_SCREENSHOT"):
            shutil.copyfile(screenshot, ROOT / target)
    finally:
        stopped = _make("airflow-stop", variables)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    for process in stack_script.PROCESSES:
        assert f"stopped airflow {process}" in stopped.stdout
    assert stack_script.running(settings) == {}
    for pid in pids.values():  # the whole process group is gone: executor workers, log servers
        assert not Path(f"/proc/{pid}").exists() or _group_members(pid) == []


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members
