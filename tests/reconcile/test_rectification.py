"""The rectification ledger read back (逐项对账销号): a county answers findings in its
returned workbook, the answers are validated and stored, and the next batch verifies them:
reported fixed and gone is verified, reported fixed and still there is flagged, in progress
past its 完成时限 is overdue; a malformed return changes nothing and names sheet and row."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.utils import get_column_letter
from sqlalchemy import create_engine, text

from lookback.errors import LookbackError
from lookback.generate.batch import generate_batch
from lookback.reconcile.rectification import (
    ANSWER_HEADERS,
    CHECK_HEADER,
    COUNTY_PROPERTY,
    RECTIFICATION_STATES,
    RUN_PROPERTY,
    read_return,
    rectification_state,
)
from lookback.run import open_warehouse
from tests import steps
from tests.postgres import throwaway_database

FirstRun = tuple[Path, str, Path, date]

pytestmark = pytest.mark.integration

AS_OF = date(2020, 6, 30)


def _query(url: str, sql: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(text(sql))]
    engine.dispose()
    return rows


def _findings(url: str) -> dict[str, dict[str, Any]]:
    return {row["finding_id"]: row for row in _query(url, "select * from findings")}


def _answer(workbook: Path, target: Path, answers: dict[str, tuple[str, str, str, str]]) -> None:
    """Fill in the answer columns of the findings named, as a county clerk does in Excel."""
    book = openpyxl.load_workbook(workbook)
    for sheet in book.worksheets:
        header = [cell.value for cell in sheet[2]]
        if "问题编号" not in header:
            continue
        column = {caption: index + 1 for index, caption in enumerate(header)}
        for row in range(3, sheet.max_row + 1):
            answer = answers.get(str(sheet.cell(row, column["问题编号"]).value))
            if answer is None:
                continue
            measure, deadline, state, note = answer
            sheet.cell(row, column["整改措施"]).value = measure
            sheet.cell(row, column["责任人"]).value = "李股长"
            sheet.cell(row, column["完成时限"]).value = deadline
            sheet.cell(row, column["整改情况"]).value = state
            sheet.cell(row, column["情况说明"]).value = note or None
    book.save(target)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def first_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstRun]:
    """The first batch run, its evolved successor landed but not run (the tests of the
    module run in order: the first answers and runs the second), on SQLite and PostgreSQL."""
    root = tmp_path_factory.mktemp("rectification")
    first = root / "landing" / "q2"
    generate_batch(first, persons=400, seed=41, as_of=AS_OF, noise="typical")
    second = root / "landing" / "q3"
    summary = generate_batch(second, seed=42, noise="typical", evolve_from=first, fix_fraction=0.5)
    second_as_of = date.fromisoformat(json.loads((summary.truth / "manifest.json").read_text("utf-8"))["as_of"])
    urls = (
        iter([f"sqlite:///{root / 'warehouse.sqlite'}"])
        if request.param == "sqlite"
        else throwaway_database("lookback_rectification")
    )
    for url in urls:
        steps.run_all(first, root / "runs" / "q2", AS_OF, url)
        yield root, url, second, second_as_of


def _county_workbook(out: Path, county: str) -> Path:
    return next((out / "counties").glob(f"{county} *.xlsx"))


def _busiest_county(url: str) -> str:
    counts = _query(url, "select county_code, count(*) as n from findings group by county_code order by n desc")
    return str(counts[0]["county_code"])


def test_a_returned_ledger_is_verified_by_the_next_batch(first_run: FirstRun) -> None:
    root, url, second, second_as_of = first_run
    county = _busiest_county(url)
    published = _county_workbook(root / "runs" / "q2", county)
    book = openpyxl.load_workbook(published)
    properties = {prop.name: prop.value for prop in book.custom_doc_props.props}  # type: ignore[attr-defined]
    assert properties == {RUN_PROPERTY: "q2", COUNTY_PROPERTY: county}
    sheet = book.worksheets[0]
    header = [cell.value for cell in sheet[2]]
    assert header[-6:] == [*ANSWER_HEADERS, CHECK_HEADER]
    check = get_column_letter(len(header))
    assert sheet.column_dimensions[check].hidden  # the check code is there, not printed

    open_here = sorted(key for key, row in _findings(url).items() if row["county_code"] == county)
    assert len(open_here) >= 30
    fixed, in_progress, cannot = open_here[:20], open_here[20:25], open_here[25:27]
    due = (AS_OF.replace(month=8, day=15)).isoformat()  # before the second batch's as-of date
    answers = dict.fromkeys(fixed, ("入户核实，已更正", "2020-07-31", "已整改", ""))
    answers |= dict.fromkeys(in_progress, ("正在办理参保", due, "整改中", ""))
    answers |= dict.fromkeys(cannot, ("", "", "无法整改", "本人长期在外务工，无法联系"))
    returned = root / "returned.xlsx"
    _answer(published, returned, answers)

    with open_warehouse(url) as warehouse:
        read = read_return(warehouse, returned, "县扶贫办")
        again = read_return(warehouse, returned, "县扶贫办")  # the same file again changes nothing
    assert (read.run_id, read.county, read.reports) == ("q2", county, len(answers))
    assert again.already_read and again.reports == 0
    states = {key: row["rectification_state"] for key, row in _findings(url).items()}
    assert {states[key] for key in fixed} == {"reported_fixed"}
    assert {states[key] for key in in_progress} == {"in_progress"}
    assert {states[key] for key in cannot} == {"cannot_fix"}
    unanswered = set(open_here) - set(answers)
    assert {states[key] for key in unanswered} == {"no_answer"}
    stored = _query(url, "select * from rectification_reports where finding_id = '" + cannot[0] + "'")
    assert [(row["state"], row["note"], row["run_id"]) for row in stored] == [
        ("cannot_fix", "本人长期在外务工，无法联系", "q2")
    ]

    outputs = steps.run_all(second, root / "runs" / "q3", second_as_of, url)
    after = _findings(url)
    verified = [key for key in fixed if after[key]["status"] == "resolved"]
    still = [key for key in fixed if after[key]["status"] == "open"]
    assert verified and still  # the batch fixed some of what the county said it fixed, not all
    assert {after[key]["rectification_state"] for key in verified} == {"verified"}
    assert {after[key]["rectification_state"] for key in still} == {"still_found"}
    overdue = [key for key in in_progress if after[key]["status"] == "open"]
    assert overdue and {after[key]["rectification_state"] for key in overdue} == {"overdue"}

    # The next run's files show the states, with counts per county, and the county's answers.
    summary = outputs.summary["look_back"]["rectification"]
    expected: dict[str, dict[str, int]] = {}
    for row in after.values():
        place = str(row["county_code"] or "")
        expected.setdefault(place, {}).setdefault(row["rectification_state"], 0)
        expected[place][row["rectification_state"]] += 1
    assert summary == expected
    assert all(
        list(counts) == [state for state in RECTIFICATION_STATES if state in counts] for counts in summary.values()
    )
    with (root / "runs" / "q3" / "lookback_findings.csv").open(encoding="utf-8-sig", newline="") as handle:
        published_states = {row["finding_id"]: row["rectification_state"] for row in csv.DictReader(handle)}
    assert all(published_states[key] == "still_found" for key in still)
    book = openpyxl.load_workbook(_county_workbook(root / "runs" / "q3", county))
    shown: dict[str, dict[str, Any]] = {}
    for sheet in book.worksheets:
        captions = [str(cell.value) for cell in sheet[2]]
        if "问题编号" in captions:
            for values in sheet.iter_rows(min_row=3, values_only=True):
                cells = dict(zip(captions, values, strict=True))
                shown[str(cells["问题编号"])] = cells
    assert shown[still[0]]["整改状态"] == "已报整改仍存在" and shown[still[0]]["整改情况"] == "已整改"
    assert shown[cannot[0]]["情况说明"] == "本人长期在外务工，无法联系"


def _nothing_changes(url: str, action: Any) -> str:
    before = (_query(url, "select * from rectification_reports"), _findings(url))
    with pytest.raises(LookbackError) as raised:
        action()
    assert (_query(url, "select * from rectification_reports"), _findings(url)) == before
    return str(raised.value)


@pytest.fixture
def published_sheet(first_run: FirstRun) -> tuple[str, str, Path, str, list[str]]:
    """A county workbook of the first run: its first sheet with findings and those findings."""
    root, url, _second, _ = first_run
    county = _busiest_county(url)
    workbook = _county_workbook(root / "runs" / "q2", county)
    book = openpyxl.load_workbook(workbook)
    for sheet in book.worksheets:
        ids = [str(row[0]) for row in sheet.iter_rows(min_row=3, values_only=True) if row[0]]
        if len(ids) >= 3:
            return url, county, workbook, sheet.title, ids
    raise AssertionError("no sheet with three findings")


def test_a_malformed_return_changes_nothing_and_names_sheet_and_row(
    published_sheet: tuple[str, str, Path, str, list[str]], tmp_path: Path
) -> None:
    url, _county, workbook, title, ids = published_sheet
    returned = tmp_path / "returned.xlsx"
    _answer(
        workbook,
        returned,
        {
            ids[0]: ("已补办", "2020-07-31", "已整改", ""),  # fine on its own
            ids[1]: ("", "2019-01-01", "整改中", ""),  # before the finding was opened
            ids[2]: ("", "", "弄好了", ""),  # not a 整改情况
        },
    )
    book = openpyxl.load_workbook(returned)
    sheet = book[title]
    header = [cell.value for cell in sheet[2]]
    sheet.cell(3, header.index("问题依据") + 1).value = "改过的依据"  # a published cell altered
    if len(ids) > 3:
        sheet.cell(6, header.index("整改情况") + 1).value = "无法整改"  # no reason given
    book.save(returned)
    with open_warehouse(url) as warehouse:
        message = _nothing_changes(url, lambda: read_return(warehouse, returned, "县扶贫办"))
    assert f"sheet {title}, row 3: {ids[0]}: the published cells were altered" in message
    assert f"sheet {title}, row 4: 完成时限 2019-01-01 is before the finding was opened" in message
    assert f"sheet {title}, row 5: 整改情况 '弄好了' is not one of 已整改 / 整改中 / 无法整改" in message
    if len(ids) > 3:
        assert f"sheet {title}, row 6: 整改情况 无法整改 needs the reason in 情况说明" in message
    assert "nothing was stored" in message


def test_a_csv_return_of_another_countys_or_unknown_findings_is_refused(first_run: FirstRun, tmp_path: Path) -> None:
    _root, url, _second, _ = first_run
    findings = _findings(url)
    county = _busiest_county(url)
    other = next(key for key, row in findings.items() if row["county_code"] not in (county, None))
    mine = next(key for key, row in findings.items() if row["county_code"] == county)
    returned = tmp_path / "returned.csv"
    with returned.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["问题编号", *ANSWER_HEADERS])
        writer.writerow([mine, "已补办", "王五", "2020/7/31", "已整改", ""])
        writer.writerow([other, "已补办", "王五", "2020-07-31", "已整改", ""])
        writer.writerow(["MED_NOT_INSURED:P999999999", "已补办", "王五", "2020-07-31", "已整改", ""])
        writer.writerow([mine, "", "", "", "整改中", ""])
    with open_warehouse(url) as warehouse:
        message = _nothing_changes(
            url, lambda: read_return(warehouse, returned, "县扶贫办", run_id="q2", county=county)
        )
        assert "needs its run id and county" in _nothing_changes(
            url, lambda: read_return(warehouse, returned, "县扶贫办")
        )
    assert (
        f"sheet returned.csv, row 3: {other} is a finding of county {findings[other]['county_code']}, not {county}"
        in message
    )
    assert "sheet returned.csv, row 4: MED_NOT_INSURED:P999999999 is not a finding of this warehouse" in message
    assert f"sheet returned.csv, row 5: {mine} is answered twice (also on row 2)" in message


def test_a_file_that_is_not_a_published_workbook_is_refused(first_run: FirstRun, tmp_path: Path) -> None:
    _root, url, _second, _ = first_run
    plain = tmp_path / "plain.xlsx"
    openpyxl.Workbook().save(plain)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip")
    with open_warehouse(url) as warehouse:
        assert "not a county workbook published by lookback" in _nothing_changes(
            url, lambda: read_return(warehouse, plain, "县扶贫办")
        )
        assert "not a readable workbook" in _nothing_changes(url, lambda: read_return(warehouse, broken, "县扶贫办"))


@pytest.mark.parametrize(
    ("status", "report", "last_seen", "checked", "expected"),
    [
        ("resolved", None, "r1", "r2", "verified"),
        ("resolved", {"state": "fixed", "run_id": "r1", "deadline": None}, "r1", "r2", "verified"),
        ("open", None, "r2", "r2", "no_answer"),
        ("open", {"state": "fixed", "run_id": "r1", "deadline": None}, "r1", "r1", "reported_fixed"),
        ("open", {"state": "fixed", "run_id": "r1", "deadline": None}, "r2", "r2", "still_found"),
        ("open", {"state": "in_progress", "run_id": "r1", "deadline": date(2020, 8, 1)}, "r1", "r1", "in_progress"),
        ("open", {"state": "in_progress", "run_id": "r1", "deadline": date(2020, 8, 1)}, "r2", "r2", "overdue"),
        ("open", {"state": "in_progress", "run_id": "r1", "deadline": None}, "r2", "r2", "in_progress"),
        ("open", {"state": "cannot_fix", "run_id": "r1", "deadline": None}, "r2", "r2", "cannot_fix"),
    ],
)
def test_the_rectification_state_of_a_finding(
    status: str, report: dict[str, Any] | None, last_seen: str, checked: str, expected: str
) -> None:
    position = {"r1": 0, "r2": 1}
    as_of = {"r1": date(2020, 6, 30), "r2": date(2020, 9, 30)}
    finding = {"status": status, "last_seen_run": last_seen, "last_checked_run": checked}
    assert rectification_state(finding, report, position, as_of) == expected
