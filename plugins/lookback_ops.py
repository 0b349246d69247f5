"""The look-back's ops view inside Airflow's UI: a FastAPI app mounted by the API server at
``/lookback`` and two ``external_views`` (a nav entry, and one on each DAG run).

What it shows is counted in the warehouse by :mod:`lookback.ops.summary` and drawn by
:mod:`lookback.ops.page`; what waits for approval comes from Airflow's own database (the
open human-in-the-loop tasks). Routes:

- ``/lookback/``: the latest run; ``/lookback/runs/{run_id}``: one run;
- ``/lookback/dag-runs/{dag_id}/{dag_run_id}``: the look-back run an Airflow DAG run made
  (the DAG-run view's entry), redirected to its page;
- ``/lookback/runs/{run_id}/files/{path}``: a delivered file meant for ops and county staff,
  Data Docs among them (never the census extract);
- ``/lookback/api/summary[?run_id=]``: the same figures as JSON.

Airflow applies no authentication to a plugin's app, so the app requires, on every route, a
user Airflow's auth manager lets see plugins (the UI's ``_token`` cookie or a bearer token);
anonymous requests get 401. Read-only: no route writes anything.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Final
from urllib.parse import quote

from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
from airflow.api_fastapi.core_api.security import requires_access_view
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

log = logging.getLogger(__name__)

URL_PREFIX: Final = "/lookback"
# How many of the latest failures the page lists.
FAILURES_SHOWN: Final = 20

app = FastAPI(
    title="lookback ops view",
    description="回头看 运行概况 — the look-back's state for ops, read-only",
    dependencies=[Depends(requires_access_view(AccessView.PLUGINS))],
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)


# How long the warehouse's figures are reused between requests (seconds): many people
# watching the page at once cost the warehouse one reading per period, not one each.
CACHE_SECONDS: Final = float(os.environ.get("LOOKBACK_OPS_CACHE_SECONDS", "5"))
_WAREHOUSES: dict[str, Any] = {}
_CACHE: dict[tuple[str, str | None], tuple[float, dict[str, Any]]] = {}
_LOCK = threading.Lock()


@contextmanager
def _warehouse() -> Iterator[Any]:
    """The warehouse, read as it is: the view never creates or changes a table. One per
    URL for the process, its connections pooled across requests."""
    from lookback.sources import load_source_specs
    from lookback.warehouse import Warehouse

    url = _warehouse_url()
    with _LOCK:
        warehouse = _WAREHOUSES.get(url)
        if warehouse is None:
            warehouse = _WAREHOUSES[url] = Warehouse(url, load_source_specs())
    yield warehouse


def _has_runs(warehouse: Any) -> bool:
    from sqlalchemy import inspect

    return bool(inspect(warehouse.engine).has_table("reconcile_runs"))


def _runs_root() -> Path:
    from lookback.paths import data_dir

    return data_dir() / "runs"


def pending_approvals() -> list[dict[str, Any]]:
    """The human-in-the-loop tasks waiting for an answer (the release approvals), oldest first."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(
                TaskInstance.dag_id,
                TaskInstance.run_id,
                TaskInstance.task_id,
                HITLDetail.subject,
                HITLDetail.created_at,
                HITLDetail.assignees,
            )
            .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
            .where(HITLDetail.responded_at.is_(None))
            .order_by(HITLDetail.created_at)
        ).all()
    return [
        {
            "dag_id": dag_id,
            "dag_run_id": run_id,
            "task_id": task_id,
            "subject": subject,
            "waiting_since": created_at.isoformat(timespec="seconds") if created_at else None,
            "assignees": ", ".join(str(person.get("name") or person.get("id")) for person in assignees or []),
        }
        for dag_id, run_id, task_id, subject, created_at, assignees in rows
    ]


def recent_failures(limit: int = FAILURES_SHOWN) -> list[dict[str, Any]]:
    """The latest task failures and missed deadlines the DAGs recorded (their reasons are
    masked where they are written), newest first."""
    from lookback.paths import data_dir
    from lookback.standardise.identity import mask_identity_numbers_in

    path = data_dir() / "alerts" / "failures.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()[-limit:]
    except OSError:
        return []
    failures = []
    for line in reversed(lines):
        try:
            alert = json.loads(line)
        except ValueError:
            continue
        if isinstance(alert, dict):
            alert["reason"] = mask_identity_numbers_in(str(alert.get("reason") or ""), household_numbers=True)
            failures.append(alert)
    return failures


def summary(run_id: str | None = None) -> dict[str, Any]:
    """Everything the page shows, for ``run_id`` (default: the latest run): the warehouse's
    figures as read at most ``CACHE_SECONDS`` ago, the approvals and failures as they are now."""
    return {**_warehouse_figures(run_id), "approvals": pending_approvals(), "failures": recent_failures()}


def _warehouse_url() -> str:
    from lookback.paths import default_warehouse_url

    return os.environ.get("LOOKBACK_WAREHOUSE_URL") or default_warehouse_url()


def _warehouse_figures(run_id: str | None) -> dict[str, Any]:
    key, now = (_warehouse_url(), run_id), time.monotonic()
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    figures = _read_figures(run_id)
    with _LOCK:
        _CACHE[key] = (now, figures)
        for key in [key for key, (at, _) in _CACHE.items() if now - at >= CACHE_SECONDS]:
            del _CACHE[key]  # runs looked at once do not pile up
    return figures


def _read_figures(run_id: str | None) -> dict[str, Any]:
    from lookback.ops import summary as ops

    with _warehouse() as warehouse:
        if not _has_runs(warehouse):
            runs: list[dict[str, Any]] = []
            trend: list[dict[str, Any]] = []
            rectification: list[dict[str, Any]] = []
            overview = None
        else:
            runs = ops.latest_runs(warehouse)
            trend = ops.finding_trend(warehouse)
            rectification = ops.rectification_by_county(warehouse)
            chosen = run_id or (runs[0]["run_id"] if runs else None)
            overview = ops.run_overview(warehouse, chosen, _runs_root()) if chosen else None
            if run_id and overview is None:
                raise HTTPException(status_code=404, detail=f"no look-back run {run_id!r} in the warehouse")
    return {"runs": runs, "trend": trend, "rectification": rectification, "overview": overview}


def _page(run_id: str | None) -> HTMLResponse:
    from lookback.ops.page import render_page

    return HTMLResponse(render_page(**summary(run_id), base=URL_PREFIX))


@app.get("/", response_class=HTMLResponse)
def latest() -> HTMLResponse:
    return _page(None)


@app.get("/runs/{run_id}", response_class=HTMLResponse)
def one_run(run_id: str) -> HTMLResponse:
    return _page(run_id)


@app.get("/api/summary")
def summary_json(run_id: str | None = None) -> dict[str, Any]:
    return summary(run_id)


@app.get("/dag-runs/{dag_id}/{dag_run_id}")
def dag_run(dag_id: str, dag_run_id: str) -> RedirectResponse:
    """The look-back run an Airflow DAG run worked on: its ``run_id`` param, else its batch
    (the conf's, the partition key of an asset-triggered run, or an ingest's landing folder)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        found = session.execute(
            select(DagRun.conf, DagRun.partition_key).where(DagRun.dag_id == dag_id, DagRun.run_id == dag_run_id)
        ).one_or_none()
    if found is None:
        raise HTTPException(status_code=404, detail=f"no run {dag_run_id!r} of DAG {dag_id!r}")
    conf, partition = found
    conf = conf or {}
    # An ingest DAG run names its batch by its landing folder (landing/<batch>/).
    landed = PurePosixPath(str(conf["landing"]).rstrip("/")).name if conf.get("landing") else None
    run_id = conf.get("run_id") or conf.get("batch") or partition or landed
    if not run_id:
        return RedirectResponse(f"{URL_PREFIX}/", status_code=307)
    return RedirectResponse(f"{URL_PREFIX}/runs/{quote(str(run_id), safe='')}", status_code=307)


@app.get("/runs/{run_id}/files/{path:path}")
def run_file(run_id: str, path: str) -> FileResponse:
    """A delivered file of the run that ops and county staff may read (see
    ``lookback.ops.summary.servable``): 404 for anything else, the census extract included."""
    from lookback.ops.summary import run_folder, servable

    if not servable(path):
        raise HTTPException(status_code=404, detail="not a file the ops view serves")
    folder = run_folder(_runs_root(), run_id)
    if folder is None:
        raise HTTPException(status_code=404, detail=f"run {run_id!r} has published nothing")
    root = folder.path.resolve()
    target = (root / path).resolve()
    # What the path resolves to must itself be served: a link planted in a served folder
    # reaches neither the extract beside it nor anything outside the run's folder.
    if not target.is_relative_to(root) or not servable(target.relative_to(root).as_posix()) or not target.is_file():
        raise HTTPException(status_code=404, detail="no such file in the run's folder")
    return FileResponse(target)


class LookbackOpsPlugin(AirflowPlugin):
    name = "lookback_ops"
    # Airflow reads these lists from the class: they are never changed.
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "回头看 Look-back ops view"}]  # noqa: RUF012
    external_views = [  # noqa: RUF012
        {
            "name": "回头看 Look-back",
            "href": f"{URL_PREFIX}/",
            "url_route": "lookback",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "回头看 Look-back",
            "href": f"{URL_PREFIX}/dag-runs/{{DAG_ID}}/{{RUN_ID}}",
            "url_route": "lookback_run",
            "destination": "dag_run",
        },
    ]
