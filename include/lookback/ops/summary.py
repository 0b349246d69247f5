"""What the ops view shows, counted in the warehouse: the latest look-back runs and, for one
of them, its row accounting, quality result, findings by county and rule (with what the run
opened, resolved and reopened), the rectification states per county, the visit roster's
counts and the pairs still waiting for review; the findings of every run for the trend.

Read-only, and figures only: no name and no identity number, masked or not, leaves here.
Every function takes a warehouse and returns plain rows (JSON-ready), so that the page, the
JSON route and the tests read the same numbers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, case, func, or_, select

from lookback.publish.run_files import quality_summary
from lookback.reconcile.catalogue import load_rules
from lookback.reconcile.rectification import RECTIFICATION_STATES
from lookback.standardise.places import county_resolver
from lookback.warehouse import Warehouse, rows_as_dicts

# How many runs the view lists, and how many the trend draws.
LATEST_RUNS: Final = 10
TREND_RUNS: Final = 24
# What a run's events may be (lookback.reconcile.lifecycle writes them).
EVENTS: Final = ("opened", "resolved", "reopened", "not_checked")
# The files of a run's folder the view links to: what county staff and ops may read. The
# census extract (identity numbers in full) and the rows as delivered (quarantine, links) are
# never among them.
SERVED_FILES: Final = (
    "run_summary.json",
    "manifest.json",
    "quality.html",
    "quality_results.csv",
    "ingest_accounting.csv",
    "lookback_findings.csv",
    "visit_roster.csv",
    "match_review.csv",
    "match_review.xlsx",
)
SERVED_FOLDERS: Final = ("data_docs/", "counties/", "visit_lists/")


def servable(relative: str) -> bool:
    """Whether the view may serve a run's file at ``relative`` (a POSIX path inside the run's
    folder): one of the files above, or inside one of the folders, never outside the folder."""
    parts = relative.split("/")
    if not relative or relative.startswith("/") or any(part in {"", ".", ".."} for part in parts):
        return False
    return relative in SERVED_FILES or relative.startswith(SERVED_FOLDERS)


def county_label(code: str | None) -> str:
    """``431224 溆浦县`` (or the code alone, or 县市区不详 for none)."""
    if not code:
        return "县市区不详 unknown county"
    name = county_resolver().name_of(code) if code.isdigit() else None
    return f"{code} {name}" if name else code


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _rows(connection: Connection, statement: Any) -> list[dict[str, Any]]:
    return [{key: _plain(value) for key, value in row.items()} for row in rows_as_dicts(connection.execute(statement))]


def latest_runs(warehouse: Warehouse, limit: int = LATEST_RUNS) -> list[dict[str, Any]]:
    """The latest look-back runs, newest first (as-of date, then sequence)."""
    runs = warehouse.table("reconcile_runs")
    with warehouse.engine.connect() as connection:
        return _rows(
            connection,
            select(
                runs.c.run_id,
                runs.c.batch_id,
                runs.c.as_of,
                runs.c.looked_back_at,
                runs.c.execution,
                runs.c.sources_delivered,
                runs.c.rules_not_applied,
            )
            .order_by(runs.c.as_of.desc(), runs.c.sequence.desc())
            .limit(limit),
        )


def row_accounting(warehouse: Warehouse, batch_id: str) -> list[dict[str, Any]]:
    """Each source's rows: delivered, accepted, skipped, quarantined, and whether they add up."""
    accounting = warehouse.table("ingest_accounting")
    counted = ("delivered", "accepted", "skipped", "quarantined", "value_problems")
    with warehouse.engine.connect() as connection:
        rows = _rows(
            connection,
            select(*(accounting.c[name] for name in ("source", "status", "file_name", *counted)))
            .where(accounting.c.batch_id == batch_id)
            .order_by(accounting.c.source),
        )
    for row in rows:
        row["adds_up"] = row["delivered"] == row["accepted"] + row["skipped"] + row["quarantined"]
    return rows


def quality(warehouse: Warehouse, batch_id: str, folder: Path | None) -> dict[str, Any]:
    """The batch's quality result per stage (expectations, critical failures, warnings) and
    whether the run's folder holds its Data Docs."""
    summary = quality_summary(warehouse, batch_id, folder)
    return {key: value for key, value in summary.items() if key != "rows"}


def findings_by_county_and_rule(warehouse: Warehouse, run_id: str) -> list[dict[str, Any]]:
    """For each county and rule: the findings the run holds open (its current execution's
    observations), and what the run opened, resolved and reopened."""
    observations = warehouse.table("finding_observations")
    events = warehouse.table("finding_events")
    findings = warehouse.table("findings")
    with warehouse.engine.connect() as connection:
        found = rows_as_dicts(
            connection.execute(
                select(observations.c.county_code, observations.c.rule_code, func.count().label("found"))
                .where(observations.c.run_id == run_id, observations.c.superseded_at.is_(None))
                .group_by(observations.c.county_code, observations.c.rule_code)
            )
        )
        happened = rows_as_dicts(
            connection.execute(
                select(findings.c.county_code, findings.c.rule_code, events.c.event, func.count().label("findings"))
                .select_from(events.join(findings, findings.c.finding_id == events.c.finding_id))
                .where(events.c.run_id == run_id)
                .group_by(findings.c.county_code, findings.c.rule_code, events.c.event)
            )
        )
    titles = {rule.code: (rule.title_zh, rule.title_en) for rule in load_rules()}
    table: dict[tuple[str, str], dict[str, Any]] = {}

    def entry(county: str | None, rule: str) -> dict[str, Any]:
        key = (county or "", rule)
        if key not in table:
            title_zh, title_en = titles.get(rule, (rule, rule))
            table[key] = {
                "county_code": county or "",
                "county": county_label(county),
                "rule_code": rule,
                "rule_zh": title_zh,
                "rule_en": title_en,
                "found": 0,
                **dict.fromkeys(EVENTS, 0),
            }
        return table[key]

    for row in found:
        entry(row["county_code"], row["rule_code"])["found"] = int(row["found"])
    for row in happened:
        entry(row["county_code"], row["rule_code"])[row["event"]] = int(row["findings"])
    return [table[key] for key in sorted(table)]


def finding_trend(warehouse: Warehouse, limit: int = TREND_RUNS) -> list[dict[str, Any]]:
    """Every run in order (the last ``limit``): the findings it holds open, and what it opened,
    resolved and reopened."""
    runs = warehouse.table("reconcile_runs")
    observations = warehouse.table("finding_observations")
    events = warehouse.table("finding_events")
    with warehouse.engine.connect() as connection:
        ordered = rows_as_dicts(
            connection.execute(
                select(runs.c.run_id, runs.c.as_of).order_by(runs.c.as_of.desc(), runs.c.sequence.desc()).limit(limit)
            )
        )[::-1]
        # Counted run by run, each through its index: a province's history holds millions of
        # observations, and only the runs drawn are wanted.
        found: dict[str, int] = {}
        happened: dict[str, dict[str, int]] = {}
        for run in ordered:
            run_id = run["run_id"]
            found[run_id] = int(
                connection.execute(
                    select(func.count()).where(observations.c.run_id == run_id, observations.c.superseded_at.is_(None))
                ).scalar_one()
            )
            for event, count in connection.execute(
                select(events.c.event, func.count()).where(events.c.run_id == run_id).group_by(events.c.event)
            ):
                happened.setdefault(run_id, {})[event] = int(count)
    return [
        {
            "run_id": run["run_id"],
            "as_of": _plain(run["as_of"]),
            "found": int(found.get(run["run_id"], 0)),
            **{event: happened.get(run["run_id"], {}).get(event, 0) for event in EVENTS},
        }
        for run in ordered
    ]


def rectification_by_county(warehouse: Warehouse) -> list[dict[str, Any]]:
    """For each county, the findings in each rectification state (what the county answered,
    beside what the data says): open findings with no answer count as ``no_answer``."""
    findings = warehouse.table("findings")
    state = case(
        (findings.c.rectification_state.is_not(None), findings.c.rectification_state),
        (findings.c.status == "open", "no_answer"),
        else_="",
    )
    with warehouse.engine.connect() as connection:
        counted = connection.execute(
            select(findings.c.county_code, state.label("state"), func.count())
            .group_by(findings.c.county_code, state)
            .order_by(findings.c.county_code)
        )
        table: dict[str, dict[str, Any]] = {}
        for county, name, count in counted:
            if not name:
                continue  # resolved and never answered: nothing for the county to do
            row = table.setdefault(
                county or "",
                {"county_code": county or "", "county": county_label(county), **dict.fromkeys(RECTIFICATION_STATES, 0)},
            )
            row[name] = row.get(name, 0) + int(count)
    return [table[key] for key in sorted(table)]


def roster_counts(warehouse: Warehouse, run_id: str) -> list[dict[str, Any]]:
    """The run's visit roster: households per visit category, and those with open findings."""
    roster = warehouse.table("visit_roster")
    with warehouse.engine.connect() as connection:
        return _rows(
            connection,
            select(
                roster.c.visit_category,
                func.min(roster.c.visit_category_label).label("label"),
                func.count().label("households"),
                func.sum(case((roster.c.open_findings > 0, 1), else_=0)).label("with_findings"),
            )
            .where(roster.c.run_id == run_id)
            .group_by(roster.c.visit_category)
            .order_by(roster.c.visit_category),
        )


def pending_review(warehouse: Warehouse, batch_id: str) -> dict[str, int]:
    """The batch's candidate pairs: how many, and how many still wait for a person's decision."""
    review = warehouse.table("match_review")
    undecided = or_(review.c.decision.is_(None), func.trim(review.c.decision) == "")
    with warehouse.engine.connect() as connection:
        total, waiting = connection.execute(
            select(func.count(), func.coalesce(func.sum(case((undecided, 1), else_=0)), 0)).where(
                review.c.batch_id == batch_id
            )
        ).one()
    return {"pairs": int(total), "pending": int(waiting)}


@dataclass(frozen=True)
class RunFolder:
    """A run's published folder, as its ``manifest.json`` describes it."""

    path: Path
    manifest: Mapping[str, Any]

    def files(self) -> list[dict[str, Any]]:
        """The delivered files the view may serve (path, rows, bytes), in the manifest's order."""
        return [
            {key: entry.get(key) for key in ("path", "rows", "bytes")}
            for entry in self.manifest.get("files", [])
            if servable(str(entry.get("path", "")))
        ]


def run_folder(runs_root: Path, run_id: str) -> RunFolder | None:
    """The folder under ``runs_root`` (``$LOOKBACK_DATA_DIR/runs``) a run published into: the
    one whose manifest names the run (the newest if several do), or None."""
    if not runs_root.is_dir():
        return None
    found: list[tuple[float, Path, dict[str, Any]]] = []
    for manifest in runs_root.glob("*/manifest.json"):
        try:
            described = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a folder being published, or not a run's
        if isinstance(described, dict) and described.get("run_id") == run_id:
            found.append((manifest.stat().st_mtime, manifest.parent, described))
    if not found:
        return None
    _, path, described = max(found, key=lambda item: item[0])
    return RunFolder(path, described)


def run_overview(warehouse: Warehouse, run_id: str, runs_root: Path) -> dict[str, Any] | None:
    """Everything the view shows of one run, or None when the warehouse has no such run."""
    runs = warehouse.table("reconcile_runs")
    with warehouse.engine.connect() as connection:
        described = _rows(connection, select(runs).where(runs.c.run_id == run_id))
    if not described:
        return None
    run = described[0]
    folder = run_folder(runs_root, run_id)
    return {
        "run": run,
        "accounting": row_accounting(warehouse, run["batch_id"]),
        "quality": quality(warehouse, run["batch_id"], folder.path if folder else None),
        "findings": findings_by_county_and_rule(warehouse, run_id),
        "roster": roster_counts(warehouse, run_id),
        "review": pending_review(warehouse, run["batch_id"]),
        "files": folder.files() if folder else [],
        "published": folder is not None,
    }
