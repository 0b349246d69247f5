"""The look-back's deliverables as files: findings, visit roster, census extract, one
workbook per county, and the manifest.

- ``lookback_findings.csv``: every finding (open and resolved) in the counties the run
  covers, with Chinese rule titles; identity numbers masked.
- ``visit_roster.csv``: the households to visit, in route order; masked.
- ``census_extract/<county>.csv``: the statistics bureau's extract, identity numbers in full.
- ``counties/<county code> <county name>.xlsx``: for county staff, a sheet per rule (its
  findings in the county) and the visit roster, Chinese headers; masked.
- ``manifest.json``: row counts and SHA-256 of every file of the run, the data-quality
  result, the run id and the as-of date; written last.

Every value comes from the warehouse tables of the run, so files and tables carry the same
content; the same run gives the same bytes. Each table is read once, a chunk at a time,
and written as it comes: publishing holds no table in memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Executable, Result, Select, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from lookback.errors import LookbackError
from lookback.publish.files import CsvWriter, WorkbookWriter
from lookback.reconcile.catalogue import Rule, load_rules
from lookback.reconcile.tables import CENSUS_COLUMNS, FINDING_ATTRIBUTES
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
}
STATUS_WORDS: Final = {"open": "未销号", "resolved": "已销号"}
SEVERITY_WORDS: Final = {"high": "高", "medium": "中", "low": "低"}
# The columns of a rule's sheet in a county workbook.
_SHEET_FIELDS: Final = (
    "finding_id",
    "status",
    "resolved_at",
    "township",
    "village",
    "subject_name",
    "subject_id_masked",
    "evidence",
    "source_rows",
    "responsible",
    "first_seen_run",
    "last_seen_run",
    "last_checked_run",
)
ROSTER_SHEET_TITLE: Final = "上门排查清单"


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


def _findings_statement(connection: Connection, warehouse: Warehouse, run_id: str) -> Select[Any]:
    """Every finding, open or resolved, in the counties the run covers (or in none), in
    county, rule (the catalogue's order), open before resolved and finding id order."""
    counties = run_counties(warehouse, run_id)
    codes = [rule.code for rule in load_rules()]
    findings = warehouse.table("findings")
    county = func.coalesce(findings.c.county_code, "")
    return (
        select(findings)
        .where(or_(county == "", findings.c.county_code.in_(counties)))
        .order_by(
            in_code_point_order(connection, county),
            case({code: index for index, code in enumerate(codes)}, value=findings.c.rule_code, else_=len(codes)),
            case((findings.c.status == "open", 0), else_=1),
            in_code_point_order(connection, findings.c.finding_id),
        )
    )


def _findings_of_run(connection: Connection, warehouse: Warehouse, run_id: str) -> Iterator[dict[str, Any]]:
    rules = {rule.code: rule for rule in load_rules()}
    for row in stream(connection, _findings_statement(connection, warehouse, run_id)):
        finding = dict(row._mapping)
        rule = rules.get(finding["rule_code"])
        finding["rule_title"] = rule.title_zh if rule else finding["rule_code"]
        finding["severity"] = rule.severity if rule else ""
        yield finding


def _roster_of_run(connection: Connection, warehouse: Warehouse, run_id: str) -> Iterator[dict[str, Any]]:
    """The visit roster in route order: county by county (as findings are), then township,
    village and head of household."""
    roster = warehouse.table("visit_roster")
    statement = select(roster).where(roster.c.run_id == run_id).order_by(roster.c.route_order)
    for row in stream(connection, statement):
        yield dict(row._mapping)


def _county_label(code: str) -> str:
    name = county_resolver().name_of(code) if code.isdigit() else None
    return f"{code} {name}" if name else code


def _county_of(row: Mapping[str, Any] | None) -> str | None:
    """The county a finding or a roster row is grouped under ("" for none), None after the last row."""
    return None if row is None else str(row["county_code"] or "")


def write_census_extract(folder: Path, warehouse: Warehouse, run_id: str) -> list[Delivered]:
    """One CSV per county (identity numbers in full) under ``census_extract/``, written as
    the rows come in county order."""
    target = folder / "census_extract"
    target.mkdir()
    extract = warehouse.table("census_extract")
    statement = (
        select(*(extract.c[name] for name in CENSUS_COLUMNS))
        .where(extract.c.run_id == run_id)
        .order_by(extract.c.county_code, extract.c.township, extract.c.village, extract.c.person_id)
    )
    county_at = CENSUS_COLUMNS.index("county_code")
    writers: dict[str, CsvWriter] = {}  # open while their county's rows come (a county without a code may come twice)
    try:
        with warehouse.engine.connect() as connection:
            for row in stream(connection, statement):
                county = str(row[county_at] or "unknown")
                writer = writers.get(county)
                if writer is None:
                    writer = writers[county] = CsvWriter(target / f"census_extract_{county}.csv", CENSUS_COLUMNS)
                writer.append(row)
    finally:
        for writer in writers.values():
            writer.close()
    return [Delivered(writers[county].path, writers[county].rows) for county in sorted(writers)]


def _sheet_cells(row: Mapping[str, Any], fields: Sequence[str]) -> list[Any]:
    cells = []
    for name in fields:
        value = row.get(name)
        if name == "status":
            value = STATUS_WORDS.get(str(value), value)
        elif name == "severity":
            value = SEVERITY_WORDS.get(str(value), value)
        cells.append(value)
    return cells


def write_findings_roster_and_workbooks(folder: Path, warehouse: Warehouse, run_id: str) -> list[Delivered]:
    """``lookback_findings.csv``, ``visit_roster.csv`` and one workbook per county under
    ``counties/`` (a sheet per rule with its findings there, then the county's visit
    roster), in one pass over the findings and the roster: both come county by county,
    each county's workbook is written while its rows come."""
    rules: Sequence[Rule] = load_rules()
    target = folder / "counties"
    target.mkdir()
    finding_headers = [FINDING_HEADERS[name] for name in _SHEET_FIELDS]
    roster_headers = [ROSTER_HEADERS[name] for name in ROSTER_FIELDS]
    workbooks: list[Delivered] = []
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
            path = target / f"{_county_label(county or 'unknown')}.xlsx"
            with WorkbookWriter(path, creator="lookback") as workbook:
                sheets = {rule.code: workbook.add_sheet(rule.title_zh, finding_headers) for rule in rules}
                while finding is not None and _county_of(finding) == county:
                    findings_csv.append([finding.get(name) for name in FINDING_FIELDS])
                    sheet = sheets.get(finding["rule_code"])
                    if sheet is not None:
                        sheet.append(_sheet_cells(finding, _SHEET_FIELDS))
                    finding = next(findings, None)
                roster_sheet = workbook.add_sheet(ROSTER_SHEET_TITLE, roster_headers)
                while visit is not None and _county_of(visit) == county:
                    roster_csv.append([visit.get(name) for name in ROSTER_FIELDS])
                    roster_sheet.append(_sheet_cells(visit, ROSTER_FIELDS))
                    visit = next(roster, None)
            workbooks.append(Delivered(path, None))
    return [
        Delivered(findings_csv.path, findings_csv.rows),
        Delivered(roster_csv.path, roster_csv.rows),
        *workbooks,
    ]


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
        for item in sorted(delivered, key=lambda item: item.path.relative_to(folder).as_posix())
    ]
    manifest = {
        "run_id": run_id,
        "batch_id": batch_id,
        "as_of": as_of.isoformat(),
        "census_extract": {
            "released": withheld is None,
            "withheld": withheld,
            "persons": census_persons,
            "files": [entry for entry in files if str(entry["path"]).startswith("census_extract/")],
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
