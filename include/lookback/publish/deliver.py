"""The look-back's deliverables as files: findings, visit roster, census extract, one
workbook per county, and the manifest.

- ``lookback_findings.csv``: every finding (open and resolved) in the counties the run
  covers, with Chinese rule titles; identity numbers masked.
- ``visit_roster.csv``: the households to visit, in route order; masked.
- ``census_extract/<county>.csv``: the statistics bureau's extract, identity numbers in full.
- ``counties/<county code> <county name>.xlsx``: for county staff, a sheet per rule (its
  findings in the county) and the visit roster, in words, made to print; masked.
- ``visit_lists/<county code> <county name>/<township>.xlsx``: for village cadres, a sheet
  per village listing the households to visit, their members and what to check, with
  empty columns for the visit, made to print (:class:`VisitLists`); masked.
- ``manifest.json``: row counts and SHA-256 of every file of the run, the data-quality
  result, the run id and the as-of date; written last.

Every value comes from the warehouse tables of the run, so files and tables carry the same
content; the same run gives the same bytes. Each table is read a chunk at a time and
written as it comes: publishing holds no table in memory.

The per-county files (workbooks and census extract) are most of the work, and each reads
only its county's rows: with more than one worker (:func:`publish_workers`) they are
written by worker processes (:class:`CountyFiles`) while this process writes the others.
A worker opens its own connection to the warehouse; one forked from this process first
forgets the connections it inherited.
"""

from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing
import os
import platform
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, Executable, Result, Select, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from lookback.errors import ConfigError, LookbackError
from lookback.processes import die_with_parent
from lookback.publish.files import (
    CsvWriter,
    PrintLayout,
    SheetWriter,
    WorkbookWriter,
    printed_value,
    private_folder,
)
from lookback.reconcile.catalogue import load_rules
from lookback.reconcile.rectification import (
    ANSWER_HEADERS,
    CHECK_HEADER,
    COUNTY_PROPERTY,
    DEADLINE,
    MEASURE,
    NOTE,
    RECTIFICATION_STATES,
    REPORTED_WORDS,
    RESPONSIBLE,
    RUN_PROPERTY,
    STATE,
    latest_reports,
    row_check,
)
from lookback.reconcile.tables import CENSUS_COLUMNS, FINDING_ATTRIBUTES
from lookback.scratch import hold, release, remove_abandoned
from lookback.sql import load_sql
from lookback.standardise.places import county_resolver
from lookback.warehouse import Warehouse

# Rows fetched from the warehouse at a time while a file is written.
STREAM_CHUNK: Final = 5_000

FINDING_FIELDS: Final = (
    "finding_id",
    "rule_code",
    "rule_title",
    "severity",
    "status",
    "rectification_state",
    "first_seen_run",
    "last_seen_run",
    "last_checked_run",
    "resolved_at",
    *(name for name in FINDING_ATTRIBUTES if name not in {"rule_code", "subject_kind", "subject_key"}),
)
# Chinese headers for county staff, per column.
FINDING_HEADERS: Final[Mapping[str, str]] = {
    "finding_id": "问题编号",
    "rule_code": "规则代码",
    "rule_title": "问题类型",
    "severity": "严重程度",
    "status": "状态",
    "rectification_state": "整改状态",
    "first_seen_run": "首次发现批次",
    "last_seen_run": "最近发现批次",
    "last_checked_run": "最近核查批次",
    "resolved_at": "销号日期",
    "county_code": "县市区代码",
    "township": "乡镇",
    "village": "行政村",
    "person_id": "人员编号",
    "household_key": "户编号（系统）",
    "subject_name": "姓名（户主）",
    "subject_id_masked": "证件号码（脱敏）",
    "evidence": "问题依据",
    "source_rows": "来源行",
    "responsible": "责任单位",
}
ROSTER_FIELDS: Final = (
    "route_order",
    "household_key",
    "visit_category",
    "visit_category_label",
    "county_code",
    "township",
    "village",
    "head_name",
    "head_id_masked",
    "members",
    "open_findings",
    "finding_codes",
    "member_list",
    "check_items",
)
ROSTER_HEADERS: Final[Mapping[str, str]] = {
    "route_order": "走访顺序",
    "household_key": "户编号（系统）",
    "visit_category": "类别代码",
    "visit_category_label": "走访类别",
    "county_code": "县市区代码",
    "township": "乡镇",
    "village": "行政村",
    "head_name": "户主姓名",
    "head_id_masked": "户主证件号码（脱敏）",
    "members": "家庭人口数",
    "open_findings": "未销号问题数",
    "finding_codes": "问题类型代码",
    "member_list": "家庭成员",
    "check_items": "需核实事项",
}
# The columns a cadre fills in by hand at the visit, after the roster's.
VISIT_COLUMNS: Final = ("走访日期", "走访核实情况", "户主（家属）签字", "走访人签字")
# The roster's columns on the county workbook's printed sheet: words, no codes.
_ROSTER_SHEET_FIELDS: Final = (
    "route_order",
    "household_key",
    "visit_category_label",
    "township",
    "village",
    "head_name",
    "head_id_masked",
    "member_list",
    "check_items",
)
# A village's visit list: its households numbered from 1.
_VISIT_LIST_FIELDS: Final = (
    "head_name",
    "head_id_masked",
    "visit_category_label",
    "member_list",
    "check_items",
)
VISIT_LIST_HEADERS: Final = (
    "序号",
    *(ROSTER_HEADERS[name] for name in _VISIT_LIST_FIELDS),
    *VISIT_COLUMNS,
    ROSTER_HEADERS["household_key"],
)
# Printed widths (characters) of the columns whose text wraps, by header caption.
PRINT_WIDTHS: Final[Mapping[str, int]] = {
    ROSTER_HEADERS["member_list"]: 26,
    ROSTER_HEADERS["check_items"]: 52,
    "走访核实情况": 26,
    "户主（家属）签字": 14,
    "走访人签字": 10,
    "走访日期": 10,
    FINDING_HEADERS["finding_id"]: 31,  # a rule code, a colon and a person or household
    FINDING_HEADERS["rectification_state"]: 10,
    FINDING_HEADERS["evidence"]: 44,
    FINDING_HEADERS["responsible"]: 12,
    MEASURE: 22,
    RESPONSIBLE: 8,
    DEADLINE: 11,
    STATE: 9,
    NOTE: 16,
}
STATUS_WORDS: Final = {"open": "未销号", "resolved": "已销号"}
SEVERITY_WORDS: Final = {"high": "高", "medium": "中", "low": "低"}
# The columns of a rule's sheet in a county workbook, as published: then the county's
# answer (ANSWER_HEADERS) and, hidden, each row's check code.
_SHEET_FIELDS: Final = (
    "finding_id",
    "status",
    "rectification_state",
    "resolved_at",
    "township",
    "village",
    "subject_name",
    "subject_id_masked",
    "evidence",
    "responsible",
    "first_seen_run",
)
ROSTER_SHEET_TITLE: Final = "上门排查清单"
STATES_SHEET_TITLE: Final = "整改情况汇总"
# How many processes write the per-county files (default: one per CPU; 1: this process alone).
PUBLISH_WORKERS_ENV: Final = "LOOKBACK_PUBLISH_WORKERS"


@dataclass(frozen=True)
class Delivered:
    """A file written into the run's folder and how many data rows it holds (None: not a table)."""

    path: Path
    rows: int | None


def run_counties(warehouse: Warehouse, run_id: str) -> list[str]:
    runs = warehouse.table("reconcile_runs")
    with warehouse.engine.connect() as connection:
        counties = connection.execute(select(runs.c.counties).where(runs.c.run_id == run_id)).scalar_one_or_none()
    if counties is None:
        raise ValueError(f"run {run_id} has not been looked back: run the look-back stage first")
    return [code for code in str(counties).split(",") if code]


def stream(connection: Connection, statement: Executable, parameters: Mapping[str, Any] | None = None) -> Result[Any]:
    """The rows of ``statement`` fetched a chunk at a time (a server-side cursor where the
    database has one), so that a table of millions of rows never sits in memory."""
    return connection.execution_options(yield_per=STREAM_CHUNK).execute(statement, dict(parameters or {}))


def in_code_point_order(connection: Connection, expression: ColumnElement[Any]) -> ColumnElement[Any]:
    """``expression`` ordered as Python orders strings (by code point, that is by UTF-8
    bytes): SQLite's and DuckDB's default; PostgreSQL's is the database's locale."""
    return expression.collate("C") if connection.dialect.name == "postgresql" else expression


def _findings_statement(
    connection: Connection, warehouse: Warehouse, run_id: str, county: str | None = None
) -> Select[Any]:
    """Every finding, open or resolved, in the counties the run covers (or in none), in
    county, rule (the catalogue's order), open before resolved and finding id order; with
    ``county``, those of that county only ("": of none)."""
    findings = warehouse.table("findings")
    codes = [rule.code for rule in load_rules()]
    statement = select(findings).where(_findings_of_counties(warehouse, run_id))
    if county is not None:
        statement = statement.where(func.coalesce(findings.c.county_code, "") == county)
    return statement.order_by(
        in_code_point_order(connection, func.coalesce(findings.c.county_code, "")),
        case({code: index for index, code in enumerate(codes)}, value=findings.c.rule_code, else_=len(codes)),
        case((findings.c.status == "open", 0), else_=1),
        in_code_point_order(connection, findings.c.finding_id),
    )


def _findings_of_counties(warehouse: Warehouse, run_id: str) -> ColumnElement[bool]:
    """The findings published with the run: those in the counties it covers or in none."""
    findings = warehouse.table("findings")
    county = func.coalesce(findings.c.county_code, "")
    return or_(county == "", findings.c.county_code.in_(run_counties(warehouse, run_id)))


def _findings_of_run(
    connection: Connection, warehouse: Warehouse, run_id: str, county: str | None = None
) -> Iterator[dict[str, Any]]:
    rules = {rule.code: rule for rule in load_rules()}
    for row in stream(connection, _findings_statement(connection, warehouse, run_id, county)):
        finding = dict(row._mapping)
        rule = rules.get(finding["rule_code"])
        finding["rule_title"] = rule.title_zh if rule else finding["rule_code"]
        finding["severity"] = rule.severity if rule else ""
        yield finding


def _roster_of_run(
    connection: Connection, warehouse: Warehouse, run_id: str, county: str | None = None
) -> Iterator[dict[str, Any]]:
    """The visit roster in route order: county by county (as findings are), then township,
    village and head of household; with ``county``, that county's households only."""
    roster = warehouse.table("visit_roster")
    statement = select(roster).where(roster.c.run_id == run_id)
    if county is not None:
        statement = statement.where(func.coalesce(roster.c.county_code, "") == county)
    for row in stream(connection, statement.order_by(roster.c.route_order)):
        yield dict(row._mapping)


def _county_label(code: str) -> str:
    name = county_resolver().name_of(code) if code.isdigit() else None
    return f"{code} {name}" if name else code


def _county_of(row: Mapping[str, Any] | None) -> str | None:
    """The county a finding or a roster row is grouped under ("" for none), None after the last row."""
    return None if row is None else str(row["county_code"] or "")


# The census extract's folder in a run's folder, and the columns of its files that identify
# a person (what its manifest declares).
CENSUS_FOLDER: Final = "census_extract"
CENSUS_PERSONAL_DATA: Final = (
    "identity_number",
    "name",
    "birth_date",
    "sex",
    "ethnicity",
    "health",
    "household_number",
)


def write_census_extract(folder: Path, warehouse: Warehouse, run_id: str) -> list[Delivered]:
    """One CSV per county (identity numbers in full) under ``census_extract/``, written as
    the rows come in county order."""
    target = private_folder(folder / "census_extract")
    county_at = CENSUS_COLUMNS.index("county_code")
    writers: dict[str, CsvWriter] = {}  # open while their county's rows come (a county without a code may come twice)
    try:
        with warehouse.engine.connect() as connection:
            for row in stream(connection, _census_statement(warehouse, run_id)):
                county = str(row[county_at] or "unknown")
                writer = writers.get(county)
                if writer is None:
                    writer = writers[county] = CsvWriter(_census_path(target, county), CENSUS_COLUMNS, private=True)
                writer.append(row)
    finally:
        for writer in writers.values():
            writer.close()
    return [Delivered(writers[county].path, writers[county].rows) for county in sorted(writers)]


def _census_statement(warehouse: Warehouse, run_id: str, county: str | None = None) -> Select[Any]:
    """The run's census extract in county, township, village and person order; with
    ``county`` (a file's county: "unknown" for none), that file's rows only."""
    extract = warehouse.table("census_extract")
    statement = select(*(extract.c[name] for name in CENSUS_COLUMNS)).where(extract.c.run_id == run_id)
    if county is not None:
        statement = statement.where(_census_county(warehouse) == county)
    return statement.order_by(extract.c.county_code, extract.c.township, extract.c.village, extract.c.person_id)


def _census_county(warehouse: Warehouse) -> ColumnElement[str]:
    """The county whose file a census extract row goes in ("unknown": no county code)."""
    county_code = warehouse.table("census_extract").c.county_code
    return func.coalesce(func.nullif(county_code, ""), "unknown")


def _census_path(target: Path, county: str) -> Path:
    return target / f"census_extract_{county}.csv"


def write_county_census(path: Path, warehouse: Warehouse, run_id: str, county: str) -> Delivered:
    """One county's census extract file (``county`` "unknown": the rows of no county)."""
    with warehouse.engine.connect() as connection, CsvWriter(path, CENSUS_COLUMNS, private=True) as writer:
        for row in stream(connection, _census_statement(warehouse, run_id, county)):
            writer.append(row)
    return Delivered(path, writer.rows)


def _sheet_cells(row: Mapping[str, Any], fields: Sequence[str]) -> list[Any]:
    cells = []
    for name in fields:
        value = row.get(name)
        if name == "status":
            value = STATUS_WORDS.get(str(value), value)
        elif name == "severity":
            value = SEVERITY_WORDS.get(str(value), value)
        elif name == "rectification_state":
            value = RECTIFICATION_STATES.get(str(value), value)
        cells.append(value)
    return cells


def write_findings_roster_and_workbooks(folder: Path, warehouse: Warehouse, run_id: str) -> list[Delivered]:
    """``lookback_findings.csv``, ``visit_roster.csv``, one workbook per county under
    ``counties/`` (a sheet per rule with its findings there, then the county's visit
    roster) and the county's visit lists under ``visit_lists/``, in one pass over the
    findings and the roster: both come county by county, each county's files are written
    while its rows come."""
    target = folder / "counties"
    target.mkdir()
    as_of = run_as_of(warehouse, run_id)
    answers = county_answers(warehouse)
    files: list[Delivered] = []
    done: set[str] = set()
    with (
        warehouse.engine.connect() as connection,
        CsvWriter(folder / "lookback_findings.csv", FINDING_FIELDS) as findings_csv,
        CsvWriter(folder / "visit_roster.csv", ROSTER_FIELDS) as roster_csv,
    ):
        findings = _findings_of_run(connection, warehouse, run_id)
        roster = _roster_of_run(connection, warehouse, run_id)
        finding, visit = next(findings, None), next(roster, None)
        while finding is not None or visit is not None:
            county = min(key for key in (_county_of(finding), _county_of(visit)) if key is not None)
            if county in done:
                raise LookbackError(f"run {run_id}: findings or roster rows of county {county!r} not together")
            done.add(county)
            workbook = CountyWorkbook(
                _workbook_path(target, county), run_id, county, as_of, _visit_lists_path(folder, county), answers
            )
            try:
                while finding is not None and _county_of(finding) == county:
                    findings_csv.append([finding.get(name) for name in FINDING_FIELDS])
                    workbook.add_finding(finding)
                    finding = next(findings, None)
                while visit is not None and _county_of(visit) == county:
                    roster_csv.append([visit.get(name) for name in ROSTER_FIELDS])
                    workbook.add_visit(visit)
                    visit = next(roster, None)
            except BaseException:
                workbook.discard()
                raise
            files.extend(workbook.close())
    return [Delivered(findings_csv.path, findings_csv.rows), Delivered(roster_csv.path, roster_csv.rows), *files]


def county_answers(warehouse: Warehouse) -> dict[str, list[Any]]:
    """Per finding answered, the county's latest answer as the answer columns show it."""
    with warehouse.engine.connect() as connection:
        reports = latest_reports(connection, warehouse)
    return {
        finding_id: [
            report["measure"],
            report["responsible"],
            report["deadline"],
            REPORTED_WORDS.get(str(report["state"]), report["state"]),
            report["note"],
        ]
        for finding_id, report in reports.items()
    }


def run_as_of(warehouse: Warehouse, run_id: str) -> date:
    runs = warehouse.table("reconcile_runs")
    with warehouse.engine.connect() as connection:
        as_of = connection.execute(select(runs.c.as_of).where(runs.c.run_id == run_id)).scalar_one_or_none()
    if as_of is None:
        raise ValueError(f"run {run_id} has not been looked back: run the look-back stage first")
    return as_of if isinstance(as_of, date) else date.fromisoformat(str(as_of))


def _workbook_path(target: Path, county: str) -> Path:
    return target / f"{_county_label(county or 'unknown')}.xlsx"


def _visit_lists_path(folder: Path, county: str) -> Path:
    return folder / "visit_lists" / safe_file_name(_county_label(county or "unknown"))


def _county_name(county: str) -> str:
    """A county's name as a title shows it (its code where the division table has no name)."""
    name = county_resolver().name_of(county) if county.isdigit() else None
    return name or county or "县市区不详"


# What a file name may not hold: path separators, characters Windows refuses, control characters.
_UNSAFE_IN_FILE_NAME: Final = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def safe_file_name(name: str) -> str:
    """``name`` as a file or folder name on any system: no separator or character Windows
    refuses, no leading dot, at most 80 characters, not empty."""
    text = _UNSAFE_IN_FILE_NAME.sub("_", name).strip().lstrip(".").strip()
    return text[:80] or "_"


class CountyWorkbook:
    """A county's workbook written as its rows come: first its findings (county, rule,
    status and finding id order), then its visit roster (route order), every sheet made to
    print; with the roster, the county's visit lists (:class:`VisitLists`). Closing it saves
    them; a failure before leaves no file.

    Each finding row ends with the county's answer columns, filled with its latest answer
    (``answers``), and a hidden check code over what was published in it; the workbook's
    properties name the run and the county, so that a returned workbook can be read back
    (``lookback.reconcile.rectification``)."""

    def __init__(
        self,
        path: Path,
        run_id: str,
        county: str,
        as_of: date,
        visit_lists: Path,
        answers: Mapping[str, Sequence[Any]],
    ) -> None:
        self.path = path
        self._run_id = run_id
        self._county = county
        self._as_of = as_of
        self._answers = answers
        self._workbook = WorkbookWriter(path, "lookback", {RUN_PROPERTY: run_id, COUNTY_PROPERTY: county})
        self._visit_lists = VisitLists(visit_lists, county, as_of)
        try:
            finding_headers = [FINDING_HEADERS[name] for name in _SHEET_FIELDS] + [*ANSWER_HEADERS, CHECK_HEADER]
            self._sheets = {
                rule.code: self._workbook.add_sheet(
                    rule.title_zh, finding_headers, self._layout(rule.title_zh, frozenset({CHECK_HEADER}))
                )
                for rule in load_rules()
            }
            self._roster: SheetWriter | None = None
            self._states: Counter[str] = Counter()
        except BaseException:
            self._workbook.discard()
            raise

    def _layout(self, title: str, hidden: frozenset[str] = frozenset()) -> PrintLayout:
        return PrintLayout(
            f"{title}　{_county_name(self._county)}　截至 {self._as_of.isoformat()}", PRINT_WIDTHS, 20, hidden
        )

    def add_finding(self, finding: Mapping[str, Any]) -> None:
        self._states[str(finding.get("rectification_state") or "no_answer")] += 1
        sheet = self._sheets.get(finding["rule_code"])
        if sheet is not None:
            published = [printed_value(cell) for cell in _sheet_cells(finding, _SHEET_FIELDS)]
            answer = self._answers.get(finding["finding_id"]) or [None] * len(ANSWER_HEADERS)
            sheet.append([*published, *answer, row_check(self._run_id, published)])

    def add_visit(self, visit: Mapping[str, Any]) -> None:
        if self._roster is None:
            self._roster = self._roster_sheet()
        self._roster.append(_sheet_cells(visit, _ROSTER_SHEET_FIELDS))
        self._visit_lists.add(visit)

    def close(self) -> list[Delivered]:
        """Save the workbook and the visit lists; what was written."""
        try:
            if self._roster is None:
                self._roster = self._roster_sheet()
            self._states_sheet()
            lists = self._visit_lists.close()
        except BaseException:
            self.discard()
            raise
        self._workbook.close()
        return [Delivered(self.path, None), *lists]

    def discard(self) -> None:
        self._workbook.discard()
        self._visit_lists.discard()

    def _states_sheet(self) -> None:
        """The county's findings per rectification state, every state listed, and the total."""
        sheet = self._workbook.add_sheet(STATES_SHEET_TITLE, ["整改状态", "问题数"], self._layout(STATES_SHEET_TITLE))
        for state, words in RECTIFICATION_STATES.items():
            sheet.append([words, self._states.get(state, 0)])
        sheet.append(["合计", sum(self._states.values())])

    def _roster_sheet(self) -> SheetWriter:
        headers = [ROSTER_HEADERS[name] for name in _ROSTER_SHEET_FIELDS] + list(VISIT_COLUMNS)
        return self._workbook.add_sheet(ROSTER_SHEET_TITLE, headers, self._layout(ROSTER_SHEET_TITLE))


class VisitLists:
    """A county's visit lists for village cadres, written as the roster's rows come (in
    route order): one workbook per township, ``<folder>/<township>.xlsx``, a sheet per
    village with its households numbered from 1, their members and what to check in words,
    and empty columns for the visit; every sheet made to print, titled with county,
    township, village and the as-of date. Households without a township or village are
    listed under 乡镇不详 or 村不详."""

    def __init__(self, folder: Path, county: str, as_of: date) -> None:
        self._folder = folder
        self._county = _county_name(county)
        self._as_of = as_of
        self._written: list[Delivered] = []
        self._names: set[str] = set()
        self._township: str | None = None
        self._workbook: WorkbookWriter | None = None
        self._village: str | None = None
        self._sheet: SheetWriter | None = None

    def add(self, visit: Mapping[str, Any]) -> None:
        township = str(visit.get("township") or "乡镇不详")
        village = str(visit.get("village") or "村不详")
        if self._workbook is None or township != self._township:
            self._close_township()
            self._open_township(township)
        if self._sheet is None or village != self._village:
            assert self._workbook is not None
            title = f"{self._county}{township}{village}　上门排查清单　截至 {self._as_of.isoformat()}"
            self._sheet = self._workbook.add_sheet(
                village, VISIT_LIST_HEADERS, PrintLayout(title, PRINT_WIDTHS, row_height=48)
            )
            self._village = village
        self._sheet.append(
            [
                self._sheet.rows + 1,
                *(visit.get(name) for name in _VISIT_LIST_FIELDS),
                *(None for _ in VISIT_COLUMNS),
                visit.get("household_key"),
            ]
        )

    def _open_township(self, township: str) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        name, number = safe_file_name(township), 2
        candidate = name
        while candidate.casefold() in self._names:  # two spellings the file system takes for one
            candidate, number = f"{name} ({number})", number + 1
        self._names.add(candidate.casefold())
        self._workbook = WorkbookWriter(self._folder / f"{candidate}.xlsx", creator="lookback")
        self._township, self._village, self._sheet = township, None, None

    def _close_township(self) -> None:
        if self._workbook is not None:
            self._workbook.close()
            self._written.append(Delivered(self._workbook.path, None))
            self._workbook = None

    def close(self) -> list[Delivered]:
        """Save the last township's workbook; every visit list written."""
        self._close_township()
        return list(self._written)

    def discard(self) -> None:
        if self._workbook is not None:
            self._workbook.discard()
            self._workbook = None
        for item in self._written:
            item.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class CountyPart:
    """What a worker wrote for a county: its workbook and visit lists, and its rows of the
    findings and the roster CSV files (parts to join), with how many and the route order
    they span."""

    files: tuple[Delivered, ...]
    findings: int
    roster: int
    route: tuple[int, int] | None  # the first and last route_order of its roster rows


def write_county_workbook(
    path: Path,
    warehouse: Warehouse,
    run_id: str,
    county: str,
    findings_part: Path,
    roster_part: Path,
    visit_lists: Path,
) -> CountyPart:
    """One county's workbook and visit lists from its own rows (``county`` "": the rows of
    no county), and the same rows as parts of ``lookback_findings.csv`` and ``visit_roster.csv``."""
    workbook = CountyWorkbook(
        path, run_id, county, run_as_of(warehouse, run_id), visit_lists, county_answers(warehouse)
    )
    first: int | None = None  # route_order of the first roster row
    last: int | None = None
    try:
        with (
            warehouse.engine.connect() as connection,
            CsvWriter(findings_part, None) as findings_csv,
            CsvWriter(roster_part, None) as roster_csv,
        ):
            for finding in _findings_of_run(connection, warehouse, run_id, county):
                findings_csv.append([finding.get(name) for name in FINDING_FIELDS])
                workbook.add_finding(finding)
            for visit in _roster_of_run(connection, warehouse, run_id, county):
                roster_csv.append([visit.get(name) for name in ROSTER_FIELDS])
                workbook.add_visit(visit)
                last = int(visit["route_order"])
                first = last if first is None else first
    except BaseException:
        workbook.discard()
        raise
    route = None if first is None or last is None else (first, last)
    return CountyPart(tuple(workbook.close()), findings_csv.rows, roster_csv.rows, route)


def publish_workers(environ: Mapping[str, str] | None = None) -> int:
    """How many processes write the per-county files: ``LOOKBACK_PUBLISH_WORKERS`` if set,
    else one per CPU; 1 writes every file in this process. A daemonic process (a task run by
    a Celery worker) may have no children: it writes every file itself, whatever is set."""
    configured = (os.environ if environ is None else environ).get(PUBLISH_WORKERS_ENV, "").strip()
    if configured and (not configured.isdigit() or int(configured) < 1):
        raise ConfigError(f"{PUBLISH_WORKERS_ENV}={configured!r}: expected a whole number of processes, at least 1")
    if multiprocessing.current_process().daemon:
        return 1
    return int(configured) if configured else os.cpu_count() or 1


# The scratch folders of the county parts, in the system's temporary folder.
SCRATCH_PREFIX = "lookback-publish-"


class CountyFiles:
    """The county workbooks (and, with ``census``, the census extract files) of a run,
    written by up to ``workers`` processes while the caller writes the other files; the
    worker writing a county's workbook also writes its rows of ``lookback_findings.csv``
    and ``visit_roster.csv``, joined by :meth:`findings_and_roster`. :meth:`delivered`
    waits for the files; :meth:`close` stops the processes (used as a context manager, at
    the end of the ``with`` block, giving up files not started on a failure).

    The workbooks go first: each is larger than a county's census file. Each worker reads
    its county's rows itself, in the order the single pass reads them, so a file has the
    same bytes either way.
    """

    def __init__(self, folder: Path, warehouse: Warehouse, run_id: str, *, census: bool, workers: int) -> None:
        self._run_id = run_id
        remove_abandoned(Path(tempfile.gettempdir()), SCRATCH_PREFIX)
        self._scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
        hold(self._scratch)
        self._counties = _workbook_counties(warehouse, run_id)
        census_counties = _census_counties(warehouse, run_id) if census else []
        (folder / "counties").mkdir()
        if census:
            private_folder(folder / "census_extract")
        self._pool = _worker_pool(warehouse, max(1, min(workers, len(self._counties) + len(census_counties))))
        # A forked worker's collector then leaves alone the objects it inherited: visiting
        # them would copy the parent's memory page by page into the worker.
        gc.freeze()
        try:
            self._workbooks: list[Future[CountyPart]] = [
                self._pool.submit(
                    _write_county_workbook,
                    warehouse.url,
                    run_id,
                    county,
                    _workbook_path(folder / "counties", county),
                    *self._parts(index),
                    _visit_lists_path(folder, county),
                )
                for index, county in enumerate(self._counties)
            ]
            self._census: list[Future[Delivered]] = [
                self._pool.submit(
                    _write_county_census, warehouse.url, run_id, county, _census_path(folder / "census_extract", county)
                )
                for county in census_counties
            ]
        finally:
            gc.unfreeze()

    def findings_and_roster(self, folder: Path) -> list[Delivered]:
        """``lookback_findings.csv`` and ``visit_roster.csv`` joined from the counties' parts,
        county by county as the single pass writes them; the roster's route order must go
        county by county too."""
        parts = [future.result() for future in self._workbooks]
        routes = [(county, part.route) for county, part in zip(self._counties, parts, strict=True) if part.route]
        for (_, before), (county, route) in pairwise(routes):
            if route[0] < before[1]:
                raise LookbackError(f"run {self._run_id}: findings or roster rows of county {county!r} not together")
        with (
            CsvWriter(folder / "lookback_findings.csv", FINDING_FIELDS) as findings_csv,
            CsvWriter(folder / "visit_roster.csv", ROSTER_FIELDS) as roster_csv,
        ):
            for index, part in enumerate(parts):
                findings_part, roster_part = self._parts(index)
                findings_csv.join(findings_part, part.findings)
                roster_csv.join(roster_part, part.roster)
        return [Delivered(findings_csv.path, findings_csv.rows), Delivered(roster_csv.path, roster_csv.rows)]

    def delivered(self) -> list[Delivered]:
        """The workbooks and census extract files, once written."""
        return [item for future in self._workbooks for item in future.result().files] + [
            future.result() for future in self._census
        ]

    def close(self, cancel: bool = False) -> None:
        try:
            self._pool.shutdown(wait=True, cancel_futures=cancel)
        finally:
            shutil.rmtree(self._scratch, ignore_errors=True)
            release(self._scratch)

    def _parts(self, index: int) -> tuple[Path, Path]:
        return self._scratch / f"{index}-findings.csv", self._scratch / f"{index}-roster.csv"

    def __enter__(self) -> CountyFiles:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.close(cancel=kind is not None)


def county_files_apart(warehouse: Warehouse, run_id: str, workers: int) -> bool:
    """Whether the per-county files are worth worker processes: more than one worker, and
    more than one county whose workbook has a name of its own."""
    if workers < 2:
        return False
    counties = _workbook_counties(warehouse, run_id)
    return len(counties) > 1 and len({_county_label(county or "unknown") for county in counties}) == len(counties)


def _workbook_counties(warehouse: Warehouse, run_id: str) -> list[str]:
    """The counties that get a workbook ("": none): those of the findings published and of the roster."""
    findings, roster = warehouse.table("findings"), warehouse.table("visit_roster")
    statement = (
        select(func.coalesce(findings.c.county_code, "").label("county"))
        .where(_findings_of_counties(warehouse, run_id))
        .union(select(func.coalesce(roster.c.county_code, "")).where(roster.c.run_id == run_id))
    )
    with warehouse.engine.connect() as connection:
        return sorted(str(county) for county in connection.execute(statement).scalars())


def _census_counties(warehouse: Warehouse, run_id: str) -> list[str]:
    extract = warehouse.table("census_extract")
    statement = select(_census_county(warehouse)).where(extract.c.run_id == run_id).distinct()
    with warehouse.engine.connect() as connection:
        return sorted(str(county) for county in connection.execute(statement).scalars())


def _worker_pool(warehouse: Warehouse, workers: int) -> ProcessPoolExecutor:
    """Worker processes forked where the platform allows it (no interpreter to start), each
    first forgetting the warehouse connections it inherited; spawned elsewhere."""
    if platform.system() == "Linux":
        return ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_forget_connections,
            initargs=(warehouse.engine, os.getpid()),
        )
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def _forget_connections(engine: Engine, parent: int) -> None:
    """In a forked worker: end with ``parent`` (the process publishing), and drop the pool
    of connections the parent opened, without closing them (they are the parent's)."""
    die_with_parent(parent)
    engine.dispose(close=False)


def _write_county_workbook(
    url: str, run_id: str, county: str, path: Path, findings_part: Path, roster_part: Path, visit_lists: Path
) -> CountyPart:
    """In a worker: one county's workbook, visit lists and CSV parts, read through a
    connection of its own."""
    warehouse = Warehouse(url, {})
    try:
        return write_county_workbook(path, warehouse, run_id, county, findings_part, roster_part, visit_lists)
    finally:
        warehouse.dispose()


def _write_county_census(url: str, run_id: str, county: str, path: Path) -> Delivered:
    """In a worker: one county's census extract file, read through a connection of its own."""
    warehouse = Warehouse(url, {})
    try:
        return write_county_census(path, warehouse, run_id, county)
    finally:
        warehouse.dispose()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(
    folder: Path,
    delivered: Sequence[Delivered],
    *,
    run_id: str,
    batch_id: str,
    as_of: date,
    quality: Mapping[str, Any],
    census_persons: int,
    withheld: str | None = None,
) -> Path:
    """``manifest.json``: what the run delivered, checkable file by file (``withheld``: why
    the census extract is not among it)."""
    files = [
        {
            "path": item.path.relative_to(folder).as_posix(),
            "rows": item.rows,
            "bytes": item.path.stat().st_size,
            "sha256": sha256_of(item.path),
        }
        | ({"personal_data": True} if item.path.relative_to(folder).parts[0] == CENSUS_FOLDER else {})
        for item in sorted(delivered, key=lambda item: item.path.relative_to(folder).as_posix())
    ]
    census_files = [entry for entry in files if entry.get("personal_data")]
    manifest = {
        "run_id": run_id,
        "batch_id": batch_id,
        "as_of": as_of.isoformat(),
        "census_extract": {
            "released": withheld is None,
            "withheld": withheld,
            "persons": census_persons,
            "files": census_files,
            # What the extract's files hold that identifies a person: they are its owner's
            # alone (folder 0700, files 0600) and go to the statistics bureau only.
            "personal_data": bool(census_files),
            "personal_data_kinds": list(CENSUS_PERSONAL_DATA) if census_files else [],
        },
        "data_quality": {
            "passed": quality.get("critical_failed", 0) == 0,
            "critical_failed": quality.get("critical_failed", 0),
            "warnings": quality.get("warnings", 0),
            "stages": quality.get("stages", {}),
        },
        "files": files,
    }
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def census_persons(warehouse: Warehouse, run_id: str) -> int:
    with warehouse.engine.connect() as connection:
        return int(connection.execute(load_sql("reconcile/census_persons"), {"run_id": run_id}).scalar_one())
