"""The look-back stage: prepare the batch's people and households, apply every rule, track
each finding across runs, and build the visit roster and the census extract.

Everything happens in one transaction, so the warehouse shows a run's findings, roster and
extract all at once or not at all; split into county tasks (:func:`begin_reconcile`,
:func:`reconcile_counties`, :func:`finish_reconcile`), each step is one transaction and the
roster and extract are built at the last. Running the same run id again is its next *execution*:
what the earlier execution observed stays in ``finding_observations``, marked superseded,
and everything derived from the observations reads the current execution only (same
findings, no duplicates, the same files).

A finding's identity is its rule code and subject (``MED_NOT_INSURED:P000000123``), so the
same item keeps its ``finding_id`` from run to run. Each run stores what it found in
``finding_observations`` (kept for good: the history); ``findings`` and ``finding_events``
are derived from the observations of every run in as-of order. A finding is resolved by the
first later run that checks it and no longer finds it (``resolved_at`` = that run's as-of
date), and reopened if a later run finds it again. A run checks a finding when it covers
the finding's county and its batch delivered every source the finding is made from: a
source not delivered is not "nothing there". A rule whose sources were not all delivered
is not applied at all, and its findings stay as they were (``not_checked`` events,
``findings.last_checked_run``). Runs are ordered by as-of date (then by when they were
first run), so re-running an earlier batch rewrites only its own part of the history.

Who is dead is carried from batch to batch: a batch without the optional hukou export
takes the deaths of the latest earlier run's batch that delivered it (persons keep their
ids across runs), so the dead stay dead in every rule about the living.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select

from lookback.counties import NO_COUNTY, Counties, county_label, county_tasks
from lookback.errors import FanOutError
from lookback.faults import fault_point
from lookback.locks import one_writer_at_a_time
from lookback.reconcile.catalogue import Rule, load_rules
from lookback.reconcile.findings import apply_rules, apply_rules_on_findings, register_run, supersede_observations
from lookback.reconcile.lifecycle import OPEN, RESOLVED, as_date, track_findings
from lookback.reconcile.prepare import Delivery, batch_delivery, prepare_batch
from lookback.reconcile.rectification import RECTIFICATION_STATES
from lookback.reconcile.roster import build_census_extract, build_visit_roster
from lookback.sql import load_sql
from lookback.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass
class ReconcileSummary:
    """What a look-back run found, for the task log, the CLI and ``run_summary.json``."""

    run_id: str
    batch_id: str
    as_of: date
    per_rule: dict[str, int] = field(default_factory=dict)
    per_county: dict[str, dict[str, int]] = field(default_factory=dict)
    lifecycle: dict[str, int] = field(default_factory=dict)
    roster: dict[str, int] = field(default_factory=dict)
    # Per county, findings by rectification state (what the county answered against what the data says).
    rectification: dict[str, dict[str, int]] = field(default_factory=dict)
    census_persons: int = 0
    sources_delivered: list[str] = field(default_factory=list)
    rules_not_applied: list[str] = field(default_factory=list)  # a source they read was not delivered
    deaths_from_batch: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "batch_id": self.batch_id,
            "as_of": self.as_of.isoformat(),
            "sources_delivered": self.sources_delivered,
            "rules_not_applied": self.rules_not_applied,
            "deaths_from_batch": self.deaths_from_batch,
            "findings_per_rule": self.per_rule,
            "findings_per_county": self.per_county,
            "lifecycle": self.lifecycle,
            "rectification": self.rectification,
            "visit_roster": self.roster,
            "census_persons": self.census_persons,
        }

    def summary(self) -> str:
        found = sum(self.per_rule.values())
        life = self.lifecycle
        not_applied = (
            f" (not applied, a source not delivered: {', '.join(self.rules_not_applied)})"
            if self.rules_not_applied
            else ""
        )
        return (
            f"look-back {self.run_id} (batch {self.batch_id}, as of {self.as_of}): {found:,} findings of "
            f"{sum(1 for n in self.per_rule.values() if n)} rules; new {life.get('opened', 0):,}, "
            f"still open {life.get('still_open', 0):,}, reopened {life.get('reopened', 0):,}, "
            f"resolved {life.get('resolved', 0):,}, left open unchecked {life.get('not_checked', 0):,}{not_applied}; "
            f"visit roster {sum(self.roster.values()):,} households; "
            f"census extract {self.census_persons:,} persons ({self.seconds:.1f} s)"
        )


def reconcile_batch(
    warehouse: Warehouse,
    batch_id: str,
    as_of: date,
    run_id: str,
    counties: Sequence[Collection[str]] | None = None,
) -> ReconcileSummary:
    """Run the look-back for a linked batch: findings, their lifecycle, roster and extract.

    ``counties`` applies the rules one group of counties at a time, as the county tasks of
    the fan-out do, then the counties not named; the preparation before and the lifecycle,
    roster and extract after are the whole batch's. The findings are the same either way.
    """
    started = time.perf_counter()
    with warehouse.engine.begin() as connection:
        delivery, rules, execution = _open_run(connection, warehouse, batch_id, as_of, run_id)
        for group in county_tasks(counties):
            apply_rules(connection, warehouse, run_id, batch_id, as_of, delivery, execution, rules, group)
        fault_point("reconcile")
        if counties is not None:
            apply_rules_on_findings(connection, warehouse, run_id, batch_id, as_of, delivery, execution, rules)
        _close_run(connection, warehouse, run_id, batch_id, as_of)
    return _finished(warehouse, run_id, started)


def begin_reconcile(warehouse: Warehouse, batch_id: str, as_of: date, run_id: str) -> dict[str, Any]:
    """The look-back split into county tasks, first step (one transaction): the batch's
    people and households prepared, the run registered as its next execution, what earlier
    executions observed superseded. Returns the run, its execution and its counties."""
    with warehouse.engine.begin() as connection:
        _, _, execution = _open_run(connection, warehouse, batch_id, as_of, run_id)
        counties = _registered(connection, warehouse, run_id, batch_id, as_of)["counties"]
    return {"run_id": run_id, "batch_id": batch_id, "execution": execution, "counties": counties}


def reconcile_counties(
    warehouse: Warehouse, batch_id: str, as_of: date, run_id: str, counties: Collection[str]
) -> dict[str, Any]:
    """A county task of the look-back (one transaction): every rule applied, the findings of
    these counties (``""``: of no county) stored for the run's current execution. Run again,
    it first removes what it stored before, so that a retry finds the same. Returns the
    counties and the findings per rule."""
    codes = sorted({str(code) for code in counties})
    if not codes:
        raise ValueError("a county task needs at least one county")
    observations = warehouse.table("finding_observations")
    done = warehouse.table("reconcile_county_tasks")
    with warehouse.engine.begin() as connection:
        execution = _registered(connection, warehouse, run_id, batch_id, as_of)["execution"]
        delivery = _delivery(connection, batch_id, as_of)
        county = func.coalesce(observations.c.county_code, "")
        current = (
            (observations.c.run_id == run_id)
            & (observations.c.execution == execution)
            & observations.c.superseded_at.is_(None)
            & county.in_(codes)
        )
        connection.execute(delete(observations).where(current))
        connection.execute(
            delete(done).where(done.c.run_id == run_id, done.c.execution == execution, done.c.county_code.in_(codes))
        )
        per_rule = apply_rules(
            connection,
            warehouse,
            run_id,
            batch_id,
            as_of,
            delivery,
            execution,
            load_rules(),
            Counties(frozenset(codes)),
        )
        found: dict[str, int] = dict(
            connection.execute(select(county, func.count()).where(current).group_by(county)).tuples().all()
        )
        now = datetime.now(UTC)
        Warehouse.insert(
            connection,
            done,
            [
                {
                    "run_id": run_id,
                    "execution": execution,
                    "county_code": code,
                    "findings": int(found.get(code, 0)),
                    "finished_at": now,
                }
                for code in codes
            ],
        )
    log.info(
        "look-back %s, %s: %s findings",
        run_id,
        ", ".join(county_label(code) for code in codes),
        f"{sum(per_rule.values()):,}",
    )
    return {"counties": codes, "findings": sum(per_rule.values()), "per_rule": per_rule}


def finish_reconcile(warehouse: Warehouse, batch_id: str, as_of: date, run_id: str) -> ReconcileSummary:
    """The look-back split into county tasks, last step (one transaction): refused, naming
    them, while counties of the run have no finished task; then every finding's state across
    runs, the visit roster and the census extract, as :func:`reconcile_batch` builds them."""
    started = time.perf_counter()
    done = warehouse.table("reconcile_county_tasks")
    with warehouse.engine.begin() as connection:
        run = _registered(connection, warehouse, run_id, batch_id, as_of)
        finished = set(
            connection.execute(
                select(done.c.county_code).where(done.c.run_id == run_id, done.c.execution == run["execution"])
            ).scalars()
        )
        missing = [code for code in [*run["counties"], NO_COUNTY] if code not in finished]
        if missing:
            raise FanOutError(
                f"look-back {run_id} (execution {run['execution']}): no finished county task for "
                f"{', '.join(county_label(code) for code in missing)}: run those county tasks"
            )
        delivery = _delivery(connection, batch_id, as_of)
        apply_rules_on_findings(
            connection, warehouse, run_id, batch_id, as_of, delivery, run["execution"], load_rules()
        )
        _close_run(connection, warehouse, run_id, batch_id, as_of)
    return _finished(warehouse, run_id, started)


def _open_run(
    connection: Connection, warehouse: Warehouse, batch_id: str, as_of: date, run_id: str
) -> tuple[Delivery, tuple[Rule, ...], int]:
    """Before any rule: the batch prepared, the run registered as its next execution, what
    earlier executions observed superseded. Returns the delivery, the rules, the execution."""
    delivery = _delivery(connection, batch_id, as_of)
    rules = load_rules()
    prepare_batch(connection, warehouse, batch_id, as_of, delivery.deaths_from_batch)
    execution = register_run(connection, warehouse, run_id, batch_id, as_of, delivery, rules)
    supersede_observations(connection, warehouse, run_id)
    return delivery, rules, execution


def _close_run(connection: Connection, warehouse: Warehouse, run_id: str, batch_id: str, as_of: date) -> None:
    """After every rule: each finding tracked across runs, the visit roster and the census extract."""
    one_writer_at_a_time(connection, "history")
    track_findings(connection, warehouse)
    build_visit_roster(connection, warehouse, run_id, batch_id)
    build_census_extract(connection, warehouse, run_id, batch_id, as_of)


def _finished(warehouse: Warehouse, run_id: str, started: float) -> ReconcileSummary:
    summary = stored_summary(warehouse, run_id)
    assert summary is not None, "the run was just stored"
    summary.seconds = time.perf_counter() - started
    log.info("%s", summary.summary())
    return summary


def _delivery(connection: Connection, batch_id: str, as_of: date) -> Delivery:
    """What the batch delivered; refused before the batch is linked."""
    linked = connection.execute(load_sql("reconcile/linked_rows"), {"batch_id": batch_id}).scalar_one()
    if not linked:
        raise ValueError(f"batch {batch_id} has not been linked: run the link stage first")
    return batch_delivery(connection, batch_id, as_of)


def _registered(
    connection: Connection, warehouse: Warehouse, run_id: str, batch_id: str, as_of: date
) -> dict[str, Any]:
    """The run as its first step registered it: its execution and counties; refused when it
    was not, or for another batch or as-of date."""
    runs = warehouse.table("reconcile_runs")
    row = connection.execute(select(runs).where(runs.c.run_id == run_id)).mappings().one_or_none()
    if row is None:
        raise FanOutError(f"look-back {run_id} has not been prepared: run its first step first")
    if row["batch_id"] != batch_id or as_date(row["as_of"]) != as_of:
        raise FanOutError(
            f"look-back {run_id} was prepared for batch {row['batch_id']} as of {as_date(row['as_of'])}, "
            f"not batch {batch_id} as of {as_of}: run its first step again"
        )
    return {
        "execution": int(row["execution"]),
        "counties": [code for code in str(row["counties"]).split(",") if code],
    }


def stored_summary(warehouse: Warehouse, run_id: str) -> ReconcileSummary | None:
    """What the warehouse holds of a look-back run (None: the run was never looked back)."""
    runs = warehouse.table("reconcile_runs")
    with warehouse.engine.connect() as connection:
        run = connection.execute(select(runs).where(runs.c.run_id == run_id)).mappings().one_or_none()
        if run is None:
            return None
        params = {"run_id": run_id}
        summary = ReconcileSummary(
            run_id=run_id,
            batch_id=run["batch_id"],
            as_of=as_date(run["as_of"]),
            sources_delivered=[source for source in str(run["sources_delivered"]).split(",") if source],
            rules_not_applied=[code for code in str(run["rules_not_applied"]).split(",") if code],
            deaths_from_batch=run["deaths_from_batch"],
        )
        order = {rule.code: index for index, rule in enumerate(load_rules())}
        per_rule: dict[str, int] = dict(connection.execute(load_sql("reconcile/findings_per_rule"), params).all())
        summary.per_rule = {code: int(per_rule.get(code, 0)) for code in sorted(order, key=order.__getitem__)}
        summary.per_county = _per_county(connection, run_id)
        counties = {code for code in str(run["counties"]).split(",") if code}
        counts: Counter[str] = Counter()
        rectification: dict[str, Counter[str]] = defaultdict(Counter)
        for status, first_seen, last_seen, resolved_in, county, state in connection.execute(
            load_sql("reconcile/finding_states")
        ):
            if county and county not in counties:
                continue
            rectification[str(county or "")][str(state or "no_answer")] += 1
            if status == OPEN and last_seen == run_id:
                counts["open"] += 1
                counts["opened" if first_seen == run_id else "still_open"] += 1
            elif status == RESOLVED and resolved_in == run_id:
                counts["resolved"] += 1
        for event, number in connection.execute(load_sql("reconcile/run_events"), params):
            if event in ("reopened", "not_checked"):
                counts[event] = int(number)
        counts["still_open"] -= counts["reopened"]
        summary.lifecycle = {
            key: counts[key] for key in ("open", "opened", "still_open", "reopened", "resolved", "not_checked")
        }
        summary.rectification = {
            county: {state: states[state] for state in RECTIFICATION_STATES if states[state]}
            for county, states in sorted(rectification.items())
        }
        summary.roster = {
            str(category): int(number)
            for category, number in connection.execute(load_sql("reconcile/roster_per_category"), params)
        }
        summary.census_persons = int(connection.execute(load_sql("reconcile/census_persons"), params).scalar_one())
    return summary


def _per_county(connection: Connection, run_id: str) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for county, rule, found in connection.execute(load_sql("reconcile/findings_per_county"), {"run_id": run_id}):
        counts[str(county)][str(rule)] = int(found)
    return {county: dict(sorted(rules.items())) for county, rules in sorted(counts.items())}
