"""``make airflow`` as a person uses it: it starts Airflow, prints the URL and the users'
passwords, finds it running on a second call; ``make demo`` runs its DAGs into the same
metadata database and leaves a second reconciliation, which the running scheduler carries
to the release approval; ops logs in through the UI's form in headless Chromium and sees
the project's DAGs and the demo's runs, then the look-back's ops view inside Airflow's page
with the warehouse's figures and the approval waiting (anonymous requests to it: 401);
``make airflow-stop`` stops every process.

The stack runs in a temporary home, data folder and free ports (the Makefile's
LOOKBACK_AIRFLOW_HOME, LOOKBACK_DATA_DIR, AIRFLOW_PORT, AIRFLOW_WORKER_LOG_PORT and
AIRFLOW_TRIGGER_LOG_PORT), never in the checkout's ``.airflow/`` or on 8080. The screenshot goes
to the test's folder; with ``LOOKBACK_UI_SCREENSHOT=docs/images/airflow-ui.png`` also there (for
the README, with ``airflow-ui-runs.png`` and ``ops-view.png`` beside it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from scripts import airflow_stack as stack_script
from tests.airflow_stack import PROJECT_DAG_IDS, AirflowStack, free_port
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


def check_demo_runs(page: DevToolsPage, url: str, run_ids: list[str]) -> None:
    """The reconciliation's page lists the demo's runs: the approved one and the one waiting."""
    page.navigate(f"{url}/dags/reconcile/runs")
    for run_id in run_ids:
        page.wait_for(
            f"document.body.innerText.includes({run_id!r})", timeout=120, what=f"run {run_id} in the runs list"
        )


def _latest_look_back(warehouse: Path) -> dict[str, int | str]:
    """What the ops view should show of the latest look-back run, counted in the warehouse."""
    with sqlite3.connect(warehouse) as connection:
        run_id, batch_id = connection.execute(
            "select run_id, batch_id from reconcile_runs order by as_of desc, sequence desc limit 1"
        ).fetchone()
        (found,) = connection.execute(
            "select count(*) from finding_observations where run_id = ? and superseded_at is null", (run_id,)
        ).fetchone()
        (households,) = connection.execute("select count(*) from visit_roster where run_id = ?", (run_id,)).fetchone()
        (pending,) = connection.execute(
            "select count(*) from match_review where batch_id = ? and coalesce(trim(decision), '') = ''", (batch_id,)
        ).fetchone()
        events = dict(
            connection.execute(
                "select event, count(*) from finding_events where run_id = ? group by event", (run_id,)
            ).fetchall()
        )
    return {
        "run_id": run_id,
        "found": found,
        "opened": events.get("opened", 0),
        "resolved": events.get("resolved", 0),
        "households": households,
        "pending": pending,
    }


def check_ops_view(page: DevToolsPage, url: str, data_dir: Path, waiting_run: str) -> None:
    """Ops opens the look-back view from Airflow's nav: inside Airflow's page, the figures it
    shows are the warehouse's, the approval waiting is listed; the DAG run's entry leads to
    its look-back run. Anonymous requests to the view's app get 401."""
    expected = _latest_look_back(data_dir / "warehouse.sqlite")
    page.navigate(f"{url}/plugin/lookback")
    frame = "document.querySelector('iframe')"
    shown = f"({frame}?.contentDocument?.body?.innerText || '')"
    page.wait_for(f"{shown}.includes('Look-back ops view')", timeout=60, what="the ops view inside Airflow's page")
    cards = page.evaluate(
        f"Object.fromEntries(Array.from({frame}.contentDocument.querySelectorAll('.card'))"
        ".map(card => [card.dataset.card, Number(card.querySelector('b').textContent.replace(/,/g, ''))]))"
    )
    assert cards == {
        "在册问题 Open in run": expected["found"],
        "新发现 Opened": expected["opened"],
        "已销号 Resolved": expected["resolved"],
        "走访户 Households to visit": expected["households"],
        "待复核配对 Pairs to review": expected["pending"],
        "待审批 Approvals waiting": 1,
    }, (cards, expected)
    assert int(expected["found"]) > 0 and int(expected["households"]) > 0
    run_shown = page.evaluate(f"{frame}.contentDocument.querySelector('.run-id').textContent")
    assert run_shown == expected["run_id"]
    assert page.evaluate(f"{shown}.includes('approve_release') || {shown}.includes('{waiting_run}')")
    for path in ("/lookback/", "/lookback/api/summary", f"/lookback/runs/{expected['run_id']}"):
        try:
            with urllib.request.urlopen(url + path, timeout=30) as answer:
                status = answer.status
        except urllib.error.HTTPError as error:
            status = error.code
        assert status == 401, path
    page.navigate(f"{url}/lookback/dag-runs/reconcile/{urllib.parse.quote(waiting_run, safe='')}")
    page.wait_for(
        "location.pathname === '/lookback/runs/demo-review'", what="the DAG run's look-back run (demo-review)"
    )


def _demo_runs(stack: AirflowStack) -> list[dict[str, Any]]:
    """The demo's reconciliation runs, once the second one waits at the approval."""
    bureau = stack.client("bureau")
    runs = bureau.dag_runs("reconcile")
    assert [run["state"] for run in runs][:1] == ["success"], runs  # the demo's own, approved
    waiting = [run for run in runs if (run.get("conf") or {}).get("run_id") == "demo-review"]
    assert len(waiting) == 1, runs
    bureau.wait_for_task("reconcile", waiting[0]["dag_run_id"], "approve_release", "awaiting_input", timeout=600)
    return runs


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
        assert set(passwords) == {"bureau", "clerk", "ops"}
        for user, role in (("bureau", "user"), ("clerk", "user"), ("ops", "viewer")):
            assert re.search(rf"{user}\s+role {role}\s+password {re.escape(passwords[user])}", started.stdout)
        assert oct(passwords_file.stat().st_mode & 0o777) == "0o600"

        again = _make("airflow", variables)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "running already; nothing started" in again.stdout
        settings = stack_script.StackSettings(home=home, port=port)
        pids = stack_script.running(settings)
        assert sorted(pids) == sorted(stack_script.PROCESSES)

        demo = _make("demo", variables)
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        assert "DAG reconcile: success" in demo.stdout
        assert "queued; with make airflow" in demo.stdout
        stack = AirflowStack(stack_script.StackSettings(home=home, port=port), passwords)
        runs = _demo_runs(stack)

        with devtools_page() as page:
            log_in(page, url, "ops", passwords["ops"])
            for dag_id in PROJECT_DAG_IDS:
                page.wait_for(
                    f"Array.from(document.querySelectorAll('a')).some(a => a.textContent.trim() === {dag_id!r}"
                    f" && (a.getAttribute('href') || '').endsWith('/dags/{dag_id}'))",
                    timeout=120,
                    what=f"DAG {dag_id} in the DAG list",
                )
            screenshot = page.screenshot(tmp_path / "airflow-ui.png")
            check_demo_runs(page, url, [run["dag_run_id"] for run in runs])
            runs_screenshot = page.screenshot(tmp_path / "airflow-ui-runs.png")
            waiting = next(run for run in runs if (run.get("conf") or {}).get("run_id") == "demo-review")
            check_ops_view(page, url, tmp_path / "data", waiting["dag_run_id"])
            page.navigate(f"{url}/plugin/lookback")
            page.wait_for(
                "(document.querySelector('iframe')?.contentDocument?.querySelectorAll('.card') || []).length === 6",
                what="the ops view drawn",
            )
            ops_screenshot = page.screenshot(tmp_path / "ops-view.png")
        assert runs_screenshot.read_bytes().startswith(b"\x89PNG")
        assert screenshot.read_bytes().startswith(b"\x89PNG")
        assert ops_screenshot.read_bytes().startswith(b"\x89PNG")
        if target := os.environ.get("LOOKBACK_UI_SCREENSHOT"):
            shutil.copyfile(screenshot, ROOT / target)
            shutil.copyfile(runs_screenshot, (ROOT / target).with_name("airflow-ui-runs.png"))
            shutil.copyfile(ops_screenshot, (ROOT / target).with_name("ops-view.png"))
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
