"""A run's findings: the run registered, every rule whose sources the batch delivered applied
to the prepared batch, and what each found stored as the run's observations (identity
numbers masked, references ordered; a household finding names the registry rows of its
village that could not be placed in a household)."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, TextClause, bindparam, delete, select

from lookback.counties import Counties
from lookback.ingest.progress import duration_words
from lookback.locks import one_writer_at_a_time
from lookback.paths import sources_dir
from lookback.reconcile.catalogue import FINDING_COLUMNS, Rule, load_rules
from lookback.reconcile.prepare import Delivery, analyze
from lookback.sources import load_source_specs
from lookback.sql import bind, load_sql
from lookback.standardise.identity import mask_identity_number, mask_identity_numbers_in
from lookback.standardise.places import place_key
from lookback.warehouse import Warehouse, rows_as_dicts

log = logging.getLogger(__name__)


@lru_cache(maxsize=8)
def _ranks(folder: Path) -> dict[str, int]:
    """Each source's place among the sources, as their YAML gives it (``order:``)."""
    specs = sorted(load_source_specs(folder).values(), key=lambda spec: spec.order_key)
    return {spec.source: rank for rank, spec in enumerate(specs)}


def source_ranks() -> dict[str, int]:
    """Each source's place among the sources (looked up once for many references: finding
    the sources' folder resolves a path)."""
    return _ranks(sources_dir())


def source_rank(source: str, ranks: Mapping[str, int] | None = None) -> tuple[int, str]:
    """Where a source's rows and name are listed: in the sources' order, then by name."""
    if ranks is None:
        ranks = source_ranks()
    return ranks.get(source, len(ranks)), source


def _ordered_sources(sources: Iterable[str], ranks: Mapping[str, int] | None = None) -> str:
    order = source_ranks() if ranks is None else ranks
    return ",".join(sorted(set(sources), key=lambda source: source_rank(source, order)))


def register_run(
    connection: Connection,
    warehouse: Warehouse,
    run_id: str,
    batch_id: str,
    as_of: date,
    delivery: Delivery,
    rules: Sequence[Rule],
) -> int:
    """Record the run (a run looked back again keeps its place in the order); its execution number."""
    runs = warehouse.table("reconcile_runs")
    # The runs' order is shared by every batch: one look-back at a time takes its place.
    one_writer_at_a_time(connection, "history")
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


def _ordered_references(text_value: str | None, ranks: Mapping[str, int] | None = None) -> str:
    """``source:row`` references, each once, registry first, rows in number order."""
    if not text_value:
        return ""
    references = set(filter(None, text_value.split(";")))
    order = source_ranks() if ranks is None else ranks

    def key(reference: str) -> tuple[int, str, int]:
        source, _, row = reference.rpartition(":")
        return (*source_rank(source, order), int(row) if row.isdigit() else 0)

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
    ranks = source_ranks()
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
            "source_rows": _ordered_references(row["source_rows"], ranks),
            "responsible": rule.responsible_text,
            "made_from": _ordered_sources(_made_from(rule, row), ranks),
        }
        earlier = found.get(finding_id)
        if earlier is not None:  # one subject twice (e.g. two allowance households, one key): one finding
            record["source_rows"] = _ordered_references(f"{earlier['source_rows']};{record['source_rows']}", ranks)
            record["evidence"] = min(earlier["evidence"], record["evidence"])
            record["made_from"] = _ordered_sources(
                {*earlier["made_from"].split(","), *record["made_from"].split(",")}, ranks
            )
        found[finding_id] = record
    return [found[key] for key in sorted(found)]


def supersede_observations(connection: Connection, warehouse: Warehouse, run_id: str) -> None:
    """Mark what earlier executions of the run observed superseded (never deleted): once per
    execution, before its rules are applied."""
    observations = warehouse.table("finding_observations")
    connection.execute(
        observations.update()
        .where(observations.c.run_id == run_id, observations.c.superseded_at.is_(None))
        .values(superseded_at=datetime.now(UTC))
    )


def for_counties(sql: str, counties: Counties) -> tuple[TextClause, dict[str, Any]]:
    """A rule's statement keeping the findings of a county task only, and the counties bound."""
    test = "not in" if counties.others else "in"
    wrapped = (
        f"select * from (\n{sql.strip().removesuffix(';')}\n) found "
        f"where coalesce(found.county_code, '') {test} :counties"
    )
    clause = bind(wrapped).bindparams(bindparam("counties", expanding=True))
    return clause, {"counties": sorted(counties.counties)}


def apply_rules(
    connection: Connection,
    warehouse: Warehouse,
    run_id: str,
    batch_id: str,
    as_of: date,
    delivery: Delivery,
    execution: int = 1,
    rules: Iterable[Rule] | None = None,
    counties: Counties | None = None,
) -> dict[str, int]:
    """Apply every rule whose sources the batch delivered to the prepared batch and store what
    this execution of the run observed (of ``counties`` only, when given: a county task of
    the fan-out; :func:`supersede_observations` first, once). A rule not applied finds
    nothing and resolves nothing."""
    observations = warehouse.table("finding_observations")
    counts: dict[str, int] = {}
    params: dict[str, Any] = {"batch_id": batch_id, "as_of": as_of, "run_id": run_id}
    unplaced = unplaced_members(connection, batch_id)
    applied = list(rules if rules is not None else load_rules())
    if counties is not None:  # a county task: the rules on findings run after every county's
        applied = [rule for rule in applied if not rule.reads_findings]
    begun = time.perf_counter()
    for done, rule in enumerate(applied, start=1):
        not_delivered = rule.missing_sources(delivery.sources)
        if not_delivered:
            log.info("rule %s not applied: %s not delivered in batch %s", rule.code, ", ".join(not_delivered), batch_id)
            continue
        started = time.perf_counter()
        if counties is None:
            result = connection.execute(bind(rule.sql), params)
        else:
            statement, bound = for_counties(rule.sql, counties)
            result = connection.execute(statement, params | bound)
        missing = [name for name in FINDING_COLUMNS if name not in set(result.keys())]
        if missing:
            raise ValueError(f"{rule.path}: the query does not return {', '.join(missing)}")
        records = _observations(rule, rows_as_dicts(result), run_id, execution)
        if rule.subject == "household":
            _name_the_doubt(records, unplaced)
        Warehouse.insert_records(connection, observations, records)
        analyze(connection, ["finding_observations"])  # a later rule may read this one's findings
        counts[rule.code] = len(records)
        elapsed = time.perf_counter() - begun
        left = elapsed / done * (len(applied) - done)
        log.info(
            "rule %s: %d findings (%.2f s); %d of %d rules, about %s left",
            rule.code,
            len(records),
            time.perf_counter() - started,
            done,
            len(applied),
            duration_words(left),
        )
    return counts


def apply_rules_on_findings(
    connection: Connection,
    warehouse: Warehouse,
    run_id: str,
    batch_id: str,
    as_of: date,
    delivery: Delivery,
    execution: int,
    rules: Iterable[Rule],
) -> dict[str, int]:
    """After the county tasks: the rules that read other rules' findings of the run, applied
    once to the whole batch (what an earlier attempt of this step stored is replaced)."""
    reading = [rule for rule in rules if rule.reads_findings]
    observations = warehouse.table("finding_observations")
    connection.execute(
        delete(observations).where(
            (observations.c.run_id == run_id)
            & (observations.c.execution == execution)
            & observations.c.superseded_at.is_(None)
            & observations.c.rule_code.in_([rule.code for rule in reading])
        )
    )
    return apply_rules(connection, warehouse, run_id, batch_id, as_of, delivery, execution, reading)


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
