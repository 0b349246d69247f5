"""The look-back stage: prepare the batch's people and households, apply every rule, track
each finding across runs, and build the visit roster and the census extract.

Everything happens in one transaction, so the warehouse shows a run's findings, roster and
extract all at once or not at all. Running the same run id again is its next *execution*:
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final

from sqlalchemy import Connection, delete, select

from lookback.reconcile.catalogue import FINDING_COLUMNS, Rule, load_rules
from lookback.sql import bind, load_sql, statement_names
from lookback.standardise.identity import mask_identity_number, mask_identity_numbers_in
from lookback.standardise.places import place_key
from lookback.warehouse import FINDING_ATTRIBUTES, Warehouse, rows_as_dicts

log = logging.getLogger(__name__)

PREPARED_TABLES: Final = (
    "lookback_rows",
    "lookback_persons",
    "lookback_household_members",
    "lookback_households",
    "lookback_dibao_households",
)
SOURCE_ORDER: Final = {"registry": 0, "dibao": 1, "insurance": 2, "housing": 3, "hukou": 4}
OPEN: Final = "open"
RESOLVED: Final = "resolved"


@dataclass(frozen=True)
class Delivery:
    """What the batch delivered (``ingest_accounting``: ingested) and whose hukou says who is dead."""

    sources: frozenset[str]
    deaths_from_batch: str | None  # this batch when it delivered hukou, else the latest earlier one

    def not_applied(self, rules: Iterable[Rule]) -> dict[str, tuple[str, ...]]:
        """Rule code → the sources it reads that the batch did not deliver."""
        return {rule.code: missing for rule in rules if (missing := rule.missing_sources(self.sources))}


def batch_delivery(connection: Connection, batch_id: str, as_of: date) -> Delivery:
    """The sources the batch delivered, and the batch whose hukou delivery says who is dead:
    this one, else the latest earlier run's (as-of date not after this one's) that delivered it."""
    rows = connection.execute(load_sql("reconcile/delivered_sources"), {"batch_id": batch_id}).all()
    if not rows:
        raise ValueError(f"batch {batch_id} has no ingest accounting: ingest it first")
    sources = frozenset(str(source) for source, status in rows if status == "ingested")
    deaths_from: str | None = batch_id
    if "hukou" not in sources:
        deaths_from = connection.execute(
            load_sql("reconcile/latest_hukou_batch"), {"batch_id": batch_id, "as_of": as_of}
        ).scalar_one_or_none()
    return Delivery(sources, deaths_from)


def _ordered_sources(sources: Iterable[str]) -> str:
    return ",".join(sorted(set(sources), key=lambda source: (SOURCE_ORDER.get(source, len(SOURCE_ORDER)), source)))


def _prepare_statements() -> tuple[str, ...]:
    """The preparation statements, one per table of PREPARED_TABLES, in that order."""
    return statement_names("reconcile/prepare")


@dataclass
class LookbackSummary:
    """What a look-back run found, for the task log, the CLI and ``run_summary.json``."""

    run_id: str
    batch_id: str
    as_of: date
    per_rule: dict[str, int] = field(default_factory=dict)
    per_county: dict[str, dict[str, int]] = field(default_factory=dict)
    lifecycle: dict[str, int] = field(default_factory=dict)
    roster: dict[str, int] = field(default_factory=dict)
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


def analyze(connection: Connection, tables: Iterable[str]) -> None:
    """Refresh the planner's statistics of these tables. Without them SQLite joins the
    grouped subqueries of the look-back row by row (minutes instead of seconds)."""
    preparer = connection.dialect.identifier_preparer
    for name in tables:
        connection.exec_driver_sql(f"ANALYZE {preparer.quote(name)}")


def prepare_batch(
    connection: Connection, warehouse: Warehouse, batch_id: str, as_of: date, deaths_from_batch: str | None
) -> None:
    """Rebuild the tables the rules read for this batch (as of the given date; who is dead
    from the hukou delivery of ``deaths_from_batch``, none when None)."""
    for name in reversed(PREPARED_TABLES):
        table = warehouse.table(name)
        connection.execute(delete(table).where(table.c.batch_id == batch_id))
    analyze(
        connection, ["person_links", "household_crosswalk", *(spec.staging_table for spec in warehouse.specs.values())]
    )
    for name, statement in zip(PREPARED_TABLES, _prepare_statements(), strict=True):
        started = time.perf_counter()
        connection.execute(
            load_sql(statement), {"batch_id": batch_id, "as_of": as_of, "deaths_from_batch": deaths_from_batch}
        )
        analyze(connection, [name])
        log.info("prepared %s (%.1f s)", name, time.perf_counter() - started)


def _register_run(
    connection: Connection,
    warehouse: Warehouse,
    run_id: str,
    batch_id: str,
    as_of: date,
    delivery: Delivery,
    rules: Sequence[Rule],
) -> int:
    """Record the run (a run looked back again keeps its place in the order); its execution number."""
    runs = warehouse.table("lookback_runs")
    counties = sorted(
        str(code) for (code,) in connection.execute(load_sql("reconcile/run_counties"), {"batch_id": batch_id})
    )
    values = {
        "batch_id": batch_id,
        "as_of": as_of,
        "counties": ",".join(counties),
        "looked_back_at": datetime.now(UTC),
        "sources_delivered": _ordered_sources(delivery.sources),
        "rules_not_applied": ",".join(delivery.not_applied(rules)),
        "deaths_from_batch": delivery.deaths_from_batch,
    }
    earlier = connection.execute(select(runs.c.execution).where(runs.c.run_id == run_id)).scalar_one_or_none()
    if earlier is not None:
        connection.execute(runs.update().where(runs.c.run_id == run_id).values(**values, execution=earlier + 1))
        return int(earlier) + 1
    sequence = (connection.execute(select(runs.c.sequence).order_by(runs.c.sequence.desc())).scalar() or 0) + 1
    connection.execute(runs.insert().values(run_id=run_id, sequence=sequence, execution=1, **values))
    return 1


def _ordered_references(text_value: str | None) -> str:
    """``source:row`` references, each once, registry first, rows in number order."""
    if not text_value:
        return ""
    references = set(filter(None, text_value.split(";")))

    def key(reference: str) -> tuple[int, str, int]:
        source, _, row = reference.rpartition(":")
        return SOURCE_ORDER.get(source, len(SOURCE_ORDER)), source, int(row) if row.isdigit() else 0

    return ";".join(sorted(references, key=key))


def _made_from(rule: Rule, row: Mapping[str, Any]) -> set[str]:
    """The sources a finding was made from: every source the rule needs, and each of its
    optional ones that the finding cites or names in ``made_from``."""
    cited = {reference.rpartition(":")[0] for reference in str(row.get("source_rows") or "").split(";")}
    named = set(str(row.get("made_from") or "").split(";"))
    return set(rule.sources) | (set(rule.optional_sources) & (cited | named))


def _observations(
    rule: Rule, rows: Sequence[Mapping[str, Any]], run_id: str, execution: int = 1
) -> list[dict[str, Any]]:
    """The rule's rows as stored observations: identity numbers masked, references ordered."""
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        finding_id = f"{rule.code}:{row['subject_key']}"
        record = {
            "run_id": run_id,
            "finding_id": finding_id,
            "execution": execution,
            "superseded_at": None,
            "rule_code": rule.code,
            "subject_kind": rule.subject,
            "subject_key": row["subject_key"],
            "person_id": row["person_id"],
            "household_key": row["household_key"],
            "county_code": row["county_code"],
            "township": row["township"],
            "village": row["village"],
            "subject_name": row["subject_name"],
            "subject_id_masked": mask_identity_number(row["identity_number"]),
            "evidence": mask_identity_numbers_in(str(row["evidence"] or ""), household_numbers=True),
            "source_rows": _ordered_references(row["source_rows"]),
            "responsible": rule.responsible_text,
            "made_from": _ordered_sources(_made_from(rule, row)),
        }
        earlier = found.get(finding_id)
        if earlier is not None:  # one subject twice (e.g. two allowance households, one key): one finding
            record["source_rows"] = _ordered_references(f"{earlier['source_rows']};{record['source_rows']}")
            record["evidence"] = min(earlier["evidence"], record["evidence"])
            record["made_from"] = _ordered_sources({*earlier["made_from"].split(","), *record["made_from"].split(",")})
        found[finding_id] = record
    return [found[key] for key in sorted(found)]


def apply_rules(
    connection: Connection,
    warehouse: Warehouse,
    run_id: str,
    batch_id: str,
    as_of: date,
    delivery: Delivery,
    execution: int = 1,
    rules: Iterable[Rule] | None = None,
) -> dict[str, int]:
    """Apply every rule whose sources the batch delivered to the prepared batch and store what
    this execution of the run observed; what an earlier execution of the run observed is
    marked superseded, never deleted. A rule not applied finds nothing and resolves nothing."""
    observations = warehouse.table("finding_observations")
    connection.execute(
        observations.update()
        .where(observations.c.run_id == run_id, observations.c.superseded_at.is_(None))
        .values(superseded_at=datetime.now(UTC))
    )
    counts: dict[str, int] = {}
    params = {"batch_id": batch_id, "as_of": as_of, "run_id": run_id}
    unplaced = unplaced_members(connection, batch_id)
    for rule in rules if rules is not None else load_rules():
        not_delivered = rule.missing_sources(delivery.sources)
        if not_delivered:
            log.info("rule %s not applied: %s not delivered in batch %s", rule.code, ", ".join(not_delivered), batch_id)
            continue
        started = time.perf_counter()
        result = connection.execute(bind(rule.sql), params)
        missing = [name for name in FINDING_COLUMNS if name not in set(result.keys())]
        if missing:
            raise ValueError(f"{rule.path}: the query does not return {', '.join(missing)}")
        records = _observations(rule, rows_as_dicts(result), run_id, execution)
        if rule.subject == "household":
            _name_the_doubt(records, unplaced)
        Warehouse.insert(connection, observations, records)
        analyze(connection, ["finding_observations"])  # a later rule may read this one's findings
        counts[rule.code] = len(records)
        log.info("rule %s: %d findings (%.2f s)", rule.code, len(records), time.perf_counter() - started)
    return counts


def unplaced_members(connection: Connection, batch_id: str) -> dict[tuple[str, str], int]:
    """Per county and village (as compared: 青石村 = 青石), the registry rows whose 户编号 was
    damaged or blank and that no evidence placed in a household."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for county, village, rows in connection.execute(load_sql("reconcile/unplaced_members"), {"batch_id": batch_id}):
        counts[(str(county or ""), place_key(village) or "")] += int(rows)
    return dict(counts)


def _name_the_doubt(records: list[dict[str, Any]], unplaced: Mapping[tuple[str, str], int]) -> None:
    """A household finding in a village with registry rows that could not be placed in a
    household says so: one of them may be a member the finding does not count."""
    for record in records:
        rows = unplaced.get((str(record["county_code"] or ""), place_key(record["village"]) or ""), 0)
        if rows:
            record["evidence"] += f"（注意: 本村另有 {rows} 名成员户编号无法识别、未能归户，或属本户）"


# --- lifecycle ---------------------------------------------------------------------------


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


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def track_findings(connection: Connection, warehouse: Warehouse) -> list[dict[str, Any]]:
    """Rebuild ``findings`` and ``finding_events`` from every run's observations; the runs in order."""
    runs_table = warehouse.table("lookback_runs")
    runs = [
        {
            **row,
            "as_of": _as_date(row["as_of"]),
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
    rows.sort(key=lambda row: row["finding_id"])
    Warehouse.insert(connection, findings, rows)
    Warehouse.insert(connection, event_table, events)
    return rows


def look_back(warehouse: Warehouse, batch_id: str, as_of: date, run_id: str) -> LookbackSummary:
    """Run the look-back for a linked batch: findings, their lifecycle, roster and extract."""
    from lookback.reconcile.deliverables import build_census_extract, build_visit_roster

    started = time.perf_counter()
    with warehouse.engine.begin() as connection:
        linked = connection.execute(load_sql("reconcile/linked_rows"), {"batch_id": batch_id}).scalar_one()
        if not linked:
            raise ValueError(f"batch {batch_id} has not been linked: run the link stage first")
        delivery = batch_delivery(connection, batch_id, as_of)
        rules = load_rules()
        prepare_batch(connection, warehouse, batch_id, as_of, delivery.deaths_from_batch)
        execution = _register_run(connection, warehouse, run_id, batch_id, as_of, delivery, rules)
        apply_rules(connection, warehouse, run_id, batch_id, as_of, delivery, execution, rules)
        track_findings(connection, warehouse)
        build_visit_roster(connection, warehouse, run_id, batch_id)
        build_census_extract(connection, warehouse, run_id, batch_id, as_of)
    summary = stored_summary(warehouse, run_id)
    assert summary is not None, "the run was just stored"
    summary.seconds = time.perf_counter() - started
    log.info("%s", summary.summary())
    return summary


def stored_summary(warehouse: Warehouse, run_id: str) -> LookbackSummary | None:
    """What the warehouse holds of a look-back run (None: the run was never looked back)."""
    runs = warehouse.table("lookback_runs")
    with warehouse.engine.connect() as connection:
        run = connection.execute(select(runs).where(runs.c.run_id == run_id)).mappings().one_or_none()
        if run is None:
            return None
        params = {"run_id": run_id}
        summary = LookbackSummary(
            run_id=run_id,
            batch_id=run["batch_id"],
            as_of=_as_date(run["as_of"]),
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
        for status, first_seen, last_seen, resolved_in, county in connection.execute(
            load_sql("reconcile/finding_states")
        ):
            if county and county not in counties:
                continue
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
        key=lambda run: (_as_date(runs[run]["as_of"]), runs[run]["sequence"]),
    ):
        as_of = _as_date(runs[run_id]["as_of"]).isoformat()
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
