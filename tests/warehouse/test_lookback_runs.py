"""The look-back across runs, on SQLite and PostgreSQL: a generated batch and its evolved
successor, findings tracked from open to resolved, their history, and re-runs that change
nothing."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from lookback.generate.batch import generate_batch
from lookback.pipeline import finding_history, open_warehouse, run_pipeline
from lookback.reconcile.stage import look_back
from tests.warehouse.rule_tables import AS_OF as RULES_AS_OF
from tests.warehouse.rule_tables import BATCH, RUN, Batch, Person, query

AS_OF = date(2020, 6, 30)


def _findings(url: str) -> dict[str, dict[str, Any]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(text("select * from findings"))]
    engine.dispose()
    return {row["finding_id"]: row for row in rows}


def _observed(url: str, run_id: str) -> set[str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        found = {
            row[0]
            for row in connection.execute(
                text("select finding_id from finding_observations where run_id = :run"), {"run": run_id}
            )
        }
    engine.dispose()
    return found


def _digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every published file except the Data Docs pages (they carry the validation time)."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "data_docs" not in path.relative_to(folder).parts
    }


@pytest.fixture
def two_batches(tmp_path: Path) -> tuple[Path, Path, date]:
    first = tmp_path / "landing" / "b2020q2"
    generate_batch(first, persons=300, seed=31, as_of=AS_OF, noise="typical")
    second = tmp_path / "landing" / "b2020q3"
    summary = generate_batch(second, seed=32, noise="typical", evolve_from=first, fix_fraction=0.6)
    manifest = json.loads((summary.truth / "manifest.json").read_text(encoding="utf-8"))
    return first, second, date.fromisoformat(manifest["as_of"])


def test_findings_are_tracked_from_open_to_resolved(
    warehouse_url: str, tmp_path: Path, two_batches: tuple[Path, Path, date]
) -> None:
    first, second, second_as_of = two_batches
    out = tmp_path / "runs"
    run_pipeline(first, out / first.name, AS_OF, warehouse_url=warehouse_url)
    after_first = _findings(warehouse_url)
    assert after_first and {row["status"] for row in after_first.values()} == {"open"}
    assert {row["first_seen_run"] for row in after_first.values()} == {first.name}

    run_pipeline(second, out / second.name, second_as_of, warehouse_url=warehouse_url)
    after_second = _findings(warehouse_url)
    seen_second = _observed(warehouse_url, second.name)

    resolved = {key for key, row in after_second.items() if row["status"] == "resolved"}
    kept = set(after_first) & seen_second
    new = seen_second - set(after_first)
    # Fixed findings are resolved, dated with the second run's as-of date; the rest keep
    # their finding_id and stay open; new ones appear as open.
    assert resolved == set(after_first) - seen_second
    assert len(resolved) >= 10 and len(kept) >= 10 and len(new) >= 3
    for key in resolved:
        row = after_second[key]
        assert row["resolved_in_run"] == second.name and str(row["resolved_at"]) == second_as_of.isoformat()
        assert row["first_seen_run"] == row["last_seen_run"] == first.name
    for key in kept:
        row = after_second[key]
        assert (row["status"], row["first_seen_run"], row["last_seen_run"]) == ("open", first.name, second.name)
        assert row["resolved_at"] is None
    for key in new:
        assert (after_second[key]["status"], after_second[key]["first_seen_run"]) == ("open", second.name)

    # The published file says the same as the table, masked.
    with (out / second.name / "lookback_findings.csv").open(encoding="utf-8-sig", newline="") as handle:
        published = {row["finding_id"]: row for row in csv.DictReader(handle)}
    assert {key for key, row in published.items() if row["status"] == "resolved"} == resolved
    assert all(row["status"] == "open" for key, row in published.items() if key in kept | new)
    summary = json.loads((out / second.name / "run_summary.json").read_text(encoding="utf-8"))
    life = summary["look_back"]["lifecycle"]
    assert (life["resolved"], life["opened"], life["still_open"]) == (len(resolved), len(new), len(kept))

    # The history of an item stays queryable: found by the first run, closed by the second.
    history = finding_history(sorted(resolved)[0], warehouse_url)
    assert [(line["run_id"], line["event"], line["status_after"]) for line in history] == [
        (first.name, "opened", "open"),
        (second.name, "resolved", "resolved"),
    ]
    assert history[0]["evidence"] and history[1]["evidence"] == ""

    # Running the second batch again: the same files, the same findings, no duplicates.
    published_files = _digests(out / second.name)
    run_pipeline(second, out / second.name, second_as_of, warehouse_url=warehouse_url)
    assert _findings(warehouse_url) == after_second
    assert _digests(out / second.name) == published_files

    # Running the first batch again rewrites only its own part of the history.
    run_pipeline(first, out / first.name, AS_OF, warehouse_url=warehouse_url)
    assert _findings(warehouse_url) == after_second


def _enrolled_last_year(year: int) -> tuple[Batch, Person]:
    """A registry household of two: one insured in 2020, one whose latest enrolment is ``year``."""
    b = Batch()
    home = b.household()
    insured = b.member(home, "已参保")
    b.insurance(insured)
    uninsured = b.member(home, "去年参保", relation="配偶")
    b.insurance(uninsured, year)
    return b, uninsured


def test_a_rerun_supersedes_what_the_run_said_and_deletes_nothing(warehouse_url: str, tmp_path: Path) -> None:
    b, person = _enrolled_last_year(2019)
    b.run(warehouse_url)
    # The insurance bureau corrects the enrolment's year; the same run is run again.
    engine = create_engine(warehouse_url)
    with engine.begin() as connection:
        connection.execute(
            text("update staging_insurance set year = 2018 where batch_id = :batch and source_row = 2"),
            {"batch": BATCH},
        )
    engine.dispose()
    warehouse = open_warehouse(warehouse_url)
    try:
        look_back(warehouse, BATCH, RULES_AS_OF, RUN)
    finally:
        warehouse.dispose()

    finding_id = f"MED_NOT_INSURED:{person.person_id}"
    said = query(
        warehouse_url,
        "select * from finding_observations where finding_id = :finding_id order by execution",
        finding_id=finding_id,
    )
    claim = "建档立卡: 在册（是否参加城乡居民基本医疗保险 = 是）；医保: 2020年无参保缴费记录"
    assert [row["evidence"] for row in said] == [f"{claim}（最近参保年度 2019）", f"{claim}（最近参保年度 2018）"]
    assert [(row["run_id"], row["execution"]) for row in said] == [(RUN, 1), (RUN, 2)]
    assert said[0]["superseded_at"] is not None and said[1]["superseded_at"] is None

    # What derives from the observations reads the current execution only: the findings are
    # those a single run of the corrected batch gives, no item twice.
    reference = f"sqlite:///{tmp_path / 'single-run.sqlite'}"
    _enrolled_last_year(2018)[0].run(reference)
    assert _findings(warehouse_url) == _findings(reference)
    history = finding_history(finding_id, warehouse_url)
    assert [(line["run_id"], line["event"], line["evidence"]) for line in history] == [
        (RUN, "superseded", f"{claim}（最近参保年度 2019）"),
        (RUN, "opened", f"{claim}（最近参保年度 2018）"),
    ]
