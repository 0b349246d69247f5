"""The findings across runs: ``findings`` and ``finding_events`` rebuilt from every run's
observations, walking the runs in as-of order (then by when they were first run), and one
finding's history. A finding is resolved by the first later run that checks it and no
longer finds it, and reopened if a later run finds it again."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from sqlalchemy import Connection, delete, select

from lookback.reconcile.rectification import latest_reports, rectification_state
from lookback.reconcile.tables import FINDING_ATTRIBUTES
from lookback.sql import load_sql
from lookback.warehouse import Warehouse, rows_as_dicts

OPEN: Final = "open"
RESOLVED: Final = "resolved"


@dataclass
class _State:
    status: str = OPEN
    first_seen_run: str = ""
    last_seen_run: str = ""
    resolved_at: date | None = None
    resolved_in_run: str | None = None
    times_reopened: int = 0
    last_checked_run: str = ""


def _walk(
    runs: Sequence[Mapping[str, Any]],
    observed: Mapping[str, Mapping[str, frozenset[str]]],
    county: Mapping[str, str | None],
) -> tuple[dict[str, _State], list[dict[str, Any]]]:
    """Each finding's state after the last run, and its events, walking runs in order.

    ``observed``: finding → the runs that found it → the sources it was made from there. A
    run that covers the finding's county and does not find it resolves it only when it
    delivered every source the finding was last made from (a run's ``sources``; absent:
    every source); otherwise it could not check it, and an open finding stays open
    (a ``not_checked`` event).
    """
    states: dict[str, _State] = {}
    events: list[dict[str, Any]] = []
    covering: dict[str, list[Mapping[str, Any]]] = {}
    for finding_id, seen_in in observed.items():
        place = county.get(finding_id) or ""
        if place not in covering:
            covering[place] = [run for run in runs if not place or place in run["counties"]]
        state: _State | None = None
        made_from: frozenset[str] = frozenset()
        for run in covering[place]:
            run_id = run["run_id"]
            if run_id in seen_in:
                made_from = seen_in[run_id]
                if state is None:
                    state = _State(first_seen_run=run_id)
                    events.append(_event(finding_id, run, "opened"))
                elif state.status == RESOLVED:
                    state.status, state.resolved_at, state.resolved_in_run = OPEN, None, None
                    state.times_reopened += 1
                    events.append(_event(finding_id, run, "reopened"))
                state.last_seen_run = state.last_checked_run = run_id
            elif state is None:
                continue
            elif run.get("sources") is not None and not made_from <= run["sources"]:
                if state.status == OPEN:
                    events.append(_event(finding_id, run, "not_checked"))
            else:
                state.last_checked_run = run_id
                if state.status == OPEN:
                    state.status, state.resolved_at, state.resolved_in_run = RESOLVED, run["as_of"], run_id
                    events.append(_event(finding_id, run, "resolved"))
        if state is not None:
            states[finding_id] = state
    return states, events


def _event(finding_id: str, run: Mapping[str, Any], event: str) -> dict[str, Any]:
    return {"finding_id": finding_id, "run_id": run["run_id"], "event": event, "as_of": run["as_of"]}


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def track_findings(connection: Connection, warehouse: Warehouse) -> list[dict[str, Any]]:
    """Rebuild ``findings`` and ``finding_events`` from every run's observations; the runs in order."""
    runs_table = warehouse.table("reconcile_runs")
    runs = [
        {
            **row,
            "as_of": as_date(row["as_of"]),
            "counties": set(str(row["counties"]).split(",")),
            "sources": frozenset(filter(None, str(row["sources_delivered"]).split(","))),
        }
        for row in rows_as_dicts(connection.execute(select(runs_table)))
    ]
    runs.sort(key=lambda run: (run["as_of"], run["sequence"]))
    position = {run["run_id"]: index for index, run in enumerate(runs)}
    observed: dict[str, dict[str, frozenset[str]]] = defaultdict(dict)
    county: dict[str, str | None] = {}
    latest: dict[str, str] = {}
    for finding_id, run_id, county_code, made_from in connection.execute(load_sql("reconcile/current_observations")):
        observed[finding_id][run_id] = frozenset(filter(None, str(made_from).split(",")))
        if finding_id not in latest or position.get(run_id, -1) >= position.get(latest[finding_id], -1):
            latest[finding_id] = run_id
            county[finding_id] = county_code
    states, events = _walk(runs, observed, county)
    findings = warehouse.table("findings")
    event_table = warehouse.table("finding_events")
    connection.execute(delete(findings))
    connection.execute(delete(event_table))
    rows: list[dict[str, Any]] = []
    by_run: dict[str, list[str]] = defaultdict(list)
    for finding_id, state in states.items():
        by_run[state.last_seen_run].append(finding_id)
    observations = warehouse.table("finding_observations")
    for run_id, finding_ids in by_run.items():
        wanted = set(finding_ids)
        for observation in rows_as_dicts(
            connection.execute(
                select(observations.c.finding_id, *(observations.c[name] for name in FINDING_ATTRIBUTES)).where(
                    observations.c.run_id == run_id, observations.c.superseded_at.is_(None)
                )
            )
        ):
            if observation["finding_id"] not in wanted:
                continue
            state = states[observation["finding_id"]]
            rows.append(
                {
                    **observation,
                    "status": state.status,
                    "first_seen_run": state.first_seen_run,
                    "last_seen_run": state.last_seen_run,
                    "resolved_at": state.resolved_at,
                    "resolved_in_run": state.resolved_in_run,
                    "times_reopened": state.times_reopened,
                    "last_checked_run": state.last_checked_run,
                }
            )
    # Beside what the data says, where the county's answer stands (none for most).
    reports = latest_reports(connection, warehouse)
    as_of = {run["run_id"]: run["as_of"] for run in runs}
    for row in rows:
        row["rectification_state"] = rectification_state(row, reports.get(row["finding_id"]), position, as_of)
    rows.sort(key=lambda row: row["finding_id"])
    Warehouse.insert_records(connection, findings, rows)
    Warehouse.insert_records(connection, event_table, events)
    return rows


def finding_history(warehouse: Warehouse, finding_id: str) -> list[dict[str, Any]]:
    """One line per run that found the finding or changed its state, in run order; a run
    looked back more than once shows first what its superseded executions said."""
    with warehouse.engine.connect() as connection:
        runs = {row["run_id"]: row for row in rows_as_dicts(connection.execute(load_sql("reconcile/run_order")))}
        said = rows_as_dicts(connection.execute(load_sql("reconcile/finding_observations"), {"finding_id": finding_id}))
        events = {
            row["run_id"]: row["event"]
            for row in rows_as_dicts(
                connection.execute(load_sql("reconcile/finding_events"), {"finding_id": finding_id})
            )
        }
    found = {row["run_id"]: row for row in said if row["superseded_at"] is None}
    superseded: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(said, key=lambda row: int(row["execution"])):
        if row["superseded_at"] is not None:
            superseded[row["run_id"]].append(row)
    lines = []
    status = ""
    for run_id in sorted(
        set(found) | set(events) | set(superseded),
        key=lambda run: (as_date(runs[run]["as_of"]), runs[run]["sequence"]),
    ):
        as_of = as_date(runs[run_id]["as_of"]).isoformat()
        for row in superseded.get(run_id, []):
            lines.append(
                {
                    "run_id": run_id,
                    "as_of": as_of,
                    "execution": int(row["execution"]),
                    "event": "superseded",
                    "status_after": "",
                    "evidence": row["evidence"],
                }
            )
        if run_id not in found and run_id not in events:
            continue  # the run's current execution no longer says anything of it
        event = events.get(run_id, "found again")
        status = RESOLVED if event == "resolved" else OPEN
        current = found.get(run_id)
        lines.append(
            {
                "run_id": run_id,
                "as_of": as_of,
                "execution": int(current["execution"]) if current else None,
                "event": event,
                "status_after": status,
                "evidence": current["evidence"] if current else "",
            }
        )
    return lines
