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
from lookback.reconcile.stage import reconcile_batch
from lookback.run import connect_warehouse
from tests import steps
from tests.reconcile.rule_tables import AS_OF as RULES_AS_OF
from tests.reconcile.rule_tables import BATCH, RUN, Batch, Person, query

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


@pytest.mark.integration
def test_findings_are_tracked_from_open_to_resolved(
    warehouse_url: str, tmp_path: Path, two_batches: tuple[Path, Path, date]
) -> None:
    first, second, second_as_of = two_batches
    out = tmp_path / "runs"
    steps.run_all(first, out / first.name, AS_OF, warehouse_url)
    after_first = _findings(warehouse_url)
    assert after_first and {row["status"] for row in after_first.values()} == {"open"}
    assert {row["first_seen_run"] for row in after_first.values()} == {first.name}

    steps.run_all(second, out / second.name, second_as_of, warehouse_url)
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
    history = steps.finding_history(sorted(resolved)[0], warehouse_url)
    assert [(line["run_id"], line["event"], line["status_after"]) for line in history] == [
        (first.name, "opened", "open"),
        (second.name, "resolved", "resolved"),
    ]
    assert history[0]["evidence"] and history[1]["evidence"] == ""

    # Running the second batch again: the same files, the same findings, no duplicates.
    published_files = _digests(out / second.name)
    steps.run_all(second, out / second.name, second_as_of, warehouse_url)
    assert _findings(warehouse_url) == after_second
    assert _digests(out / second.name) == published_files

    # Running the first batch again rewrites only its own part of the history.
    steps.run_all(first, out / first.name, AS_OF, warehouse_url)
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
    warehouse = connect_warehouse(warehouse_url)
    try:
        reconcile_batch(warehouse, BATCH, RULES_AS_OF, RUN)
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
    history = steps.finding_history(finding_id, warehouse_url)
    assert [(line["run_id"], line["event"], line["evidence"]) for line in history] == [
        (RUN, "superseded", f"{claim}（最近参保年度 2019）"),
        (RUN, "opened", f"{claim}（最近参保年度 2018）"),
    ]


LIVING_ONLY = ("MED_NOT_INSURED", "MED_CLAIM_MISMATCH", "MED_NOT_SUBSIDISED", "EDU_OUT_OF_SCHOOL")


@pytest.mark.integration
def test_a_source_not_delivered_is_not_read_as_nothing_there(
    warehouse_url: str, tmp_path: Path, two_batches: tuple[Path, Path, date]
) -> None:
    """The second batch comes without the optional hukou export: the rule that reads it
    cannot check its findings (they stay open, last checked by the first run), and the
    deaths the first batch's hukou delivered still count (the dead stay dead)."""
    first, second, second_as_of = two_batches
    (second / "hukou_cancellations.csv").unlink()
    out = tmp_path / "runs"
    steps.run_all(first, out / first.name, AS_OF, warehouse_url)
    deceased = {key for key, row in _findings(warehouse_url).items() if row["rule_code"] == "DECEASED_LISTED"}
    dead = {
        row["person_id"]: row["died_on"]
        for row in query(
            warehouse_url,
            "select person_id, died_on from reconcile_persons where batch_id = :batch and died_on is not null",
            batch=first.name,
        )
    }
    assert deceased and dead

    steps.run_all(second, out / second.name, second_as_of, warehouse_url)

    after = _findings(warehouse_url)
    for key in deceased:
        assert (after[key]["status"], after[key]["last_seen_run"], after[key]["resolved_at"]) == (
            "open",
            first.name,
            None,
        ), key
        assert after[key]["last_checked_run"] == first.name  # the second run could not check it
    assert not {key for key in _observed(warehouse_url, second.name) if key.startswith("DECEASED_LISTED:")}
    # A rule that reads hukou only where it was delivered still checks the rest.
    assert {row["last_checked_run"] for key, row in after.items() if key.startswith("MED_NOT_INSURED:")} == {
        second.name
    }
    (run,) = query(warehouse_url, "select * from reconcile_runs where run_id = :run", run=second.name)
    assert run["sources_delivered"] == "registry,dibao,insurance,housing"
    assert run["rules_not_applied"] == "DECEASED_LISTED"

    # The dead stay dead: the deaths of the first batch's hukou still count in the second.
    still_listed = {
        row["person_id"]: row["died_on"]
        for row in query(
            warehouse_url,
            "select person_id, died_on from reconcile_persons where batch_id = :batch and in_registry = 1",
            batch=second.name,
        )
        if row["person_id"] in dead
    }
    assert still_listed and still_listed == {person: dead[person] for person in still_listed}
    found_about_the_dead = {
        key for key in _observed(warehouse_url, second.name) if key.split(":")[0] in LIVING_ONLY
    } & {f"{rule}:{person}" for rule in LIVING_ONLY for person in still_listed}
    assert not found_about_the_dead

    # The published findings say which run last checked each item.
    with (out / second.name / "lookback_findings.csv").open(encoding="utf-8-sig", newline="") as handle:
        published = {row["finding_id"]: row for row in csv.DictReader(handle)}
    assert {published[key]["last_checked_run"] for key in deceased} == {first.name}


DIED = date(2019, 12, 1)


def _household_with_a_death(batch_id: str, *, hukou: bool) -> tuple[Batch, Person, Person, Person]:
    """A registry household with nothing to find but this: an uninsured spouse who died in
    December 2019 (hukou says so when delivered); a stranger's hukou row carries the head's
    number."""
    b = Batch(batch_id, not_delivered=() if hukou else ("hukou",))
    home = b.household()
    head = b.member(home, "户主", labour_capacity="普通劳动力")
    b.insurance(head)
    b.housing(head, "A", renovation=None)
    dead = b.member(home, "已故未保", relation="配偶")
    stranger = b.person("他人", identity=head.number)
    if hukou:
        b.hukou(dead, on=DIED)
        b.hukou(stranger, "迁出", on=DIED)
    return b, head, dead, stranger


def test_the_dead_stay_dead_and_unchecked_findings_stay_open(warehouse_url: str) -> None:
    """Hand-made batches: b1 delivers hukou (as of June), b2 does not (September), b0 does
    not either and is as of March, looked back last: b2 takes b1's deaths, b0 cannot."""
    b1, head, dead, stranger = _household_with_a_death("b1", hukou=True)
    found = b1.run(warehouse_url, date(2020, 6, 30), "r1")
    conflict = f"ID_CONFLICT:{head.person_id}"
    assert {f"DECEASED_LISTED:{dead.person_id}", conflict} <= {row["finding_id"] for row in found.rows}
    assert f"MED_NOT_INSURED:{dead.person_id}" not in {row["finding_id"] for row in found.rows}

    found = _household_with_a_death("b2", hukou=False)[0].run(warehouse_url, date(2020, 9, 30), "r2")

    # The dead stay dead: no finding about the living for the spouse; nothing of hukou's.
    assert {row["finding_id"] for row in found.rows} == set()
    (person,) = query(
        warehouse_url,
        "select died_on, living from reconcile_persons where batch_id = 'b2' and person_id = :p",
        p=dead.person_id,
    )
    assert (str(person["died_on"]), person["living"]) == ("2019-12-01", 0)
    findings = {row["finding_id"]: row for row in query(warehouse_url, "select * from findings")}
    # DECEASED_LISTED reads hukou: not applied in r2. The ID_CONFLICT findings were made from
    # hukou's row: r2 applies the rule but cannot check them. All stay open, last checked by r1.
    unchecked = [f"DECEASED_LISTED:{dead.person_id}", conflict, f"ID_CONFLICT:{stranger.person_id}"]
    for finding_id in unchecked:
        assert (findings[finding_id]["status"], findings[finding_id]["last_checked_run"]) == ("open", "r1")
    runs = {row["run_id"]: row for row in query(warehouse_url, "select * from reconcile_runs")}
    assert (runs["r2"]["rules_not_applied"], runs["r2"]["deaths_from_batch"]) == ("DECEASED_LISTED", "b1")
    events = query(warehouse_url, "select finding_id, event from finding_events where run_id = 'r2'")
    assert sorted((row["finding_id"], row["event"]) for row in events) == [
        (finding_id, "not_checked") for finding_id in sorted(unchecked)
    ]
    history = steps.finding_history(f"DECEASED_LISTED:{dead.person_id}", warehouse_url)
    assert [(line["run_id"], line["event"], line["status_after"]) for line in history] == [
        ("r1", "opened", "open"),
        ("r2", "not_checked", "open"),
    ]
    # The visit roster still counts the household's open (the spouse's death, the head's number).
    (household,) = query(warehouse_url, "select open_findings from visit_roster where run_id = 'r2'")
    assert household["open_findings"] == 2

    # A batch as of March cannot know of deaths from a hukou delivered as of June.
    found = _household_with_a_death("b0", hukou=False)[0].run(warehouse_url, date(2020, 3, 31), "r0")
    assert f"MED_NOT_INSURED:{dead.person_id}" in {row["finding_id"] for row in found.rows}
    runs = {row["run_id"]: row for row in query(warehouse_url, "select * from reconcile_runs")}
    assert runs["r0"]["deaths_from_batch"] is None
