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
content; the same run gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

from sqlalchemy import select

from lookback.publish.files import Sheet, write_csv, write_workbook
from lookback.reconcile.catalogue import Rule, load_rules
from lookback.reconcile.tables import CENSUS_COLUMNS, FINDING_ATTRIBUTES
from lookback.sql import load_sql
from lookback.standardise.places import county_resolver
from lookback.warehouse import Warehouse, rows_as_dicts

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


def findings_of_run(warehouse: Warehouse, run_id: str) -> list[dict[str, Any]]:
    """Every finding, open or resolved, in the counties the run covers, in rule order."""
    counties = set(run_counties(warehouse, run_id))
    rules = {rule.code: rule for rule in load_rules()}
    order = {code: index for index, code in enumerate(rules)}
    findings = warehouse.table("findings")
    with warehouse.engine.connect() as connection:
        rows = rows_as_dicts(connection.execute(select(findings)))
    chosen = []
    for row in rows:
        if row["county_code"] and row["county_code"] not in counties:
            continue
        rule = rules.get(row["rule_code"])
        row["rule_title"] = rule.title_zh if rule else row["rule_code"]
        row["severity"] = rule.severity if rule else ""
        chosen.append(row)
    chosen.sort(
        key=lambda row: (
            str(row["county_code"] or ""),
            order.get(row["rule_code"], len(order)),
            row["status"] != "open",
            row["finding_id"],
        )
    )
    return chosen


def roster_of_run(warehouse: Warehouse, run_id: str) -> list[dict[str, Any]]:
    roster = warehouse.table("visit_roster")
    with warehouse.engine.connect() as connection:
        return rows_as_dicts(
            connection.execute(select(roster).where(roster.c.run_id == run_id).order_by(roster.c.route_order))
        )


def _census_rows(warehouse: Warehouse, run_id: str) -> dict[str, list[dict[str, Any]]]:
    extract = warehouse.table("census_extract")
    per_county: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with warehouse.engine.connect() as connection:
        for row in rows_as_dicts(
            connection.execute(
                select(extract)
                .where(extract.c.run_id == run_id)
                .order_by(extract.c.county_code, extract.c.township, extract.c.village, extract.c.person_id)
            )
        ):
            per_county[str(row["county_code"] or "unknown")].append(row)
    return per_county


def _county_label(code: str) -> str:
    name = county_resolver().name_of(code) if code.isdigit() else None
    return f"{code} {name}" if name else code


def write_findings(folder: Path, findings: Sequence[Mapping[str, Any]]) -> Delivered:
    path = folder / "lookback_findings.csv"
    return Delivered(path, write_csv(path, FINDING_FIELDS, findings))


def write_roster(folder: Path, roster: Sequence[Mapping[str, Any]]) -> Delivered:
    path = folder / "visit_roster.csv"
    return Delivered(path, write_csv(path, ROSTER_FIELDS, roster))


def write_census_extract(folder: Path, warehouse: Warehouse, run_id: str) -> list[Delivered]:
    """One CSV per county (identity numbers in full) under ``census_extract/``."""
    target = folder / "census_extract"
    target.mkdir()
    delivered = []
    for county, rows in sorted(_census_rows(warehouse, run_id).items()):
        path = target / f"census_extract_{county}.csv"
        delivered.append(Delivered(path, write_csv(path, CENSUS_COLUMNS, rows)))
    return delivered


def _sheet_rows(rows: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> list[list[Any]]:
    out = []
    for row in rows:
        cells = []
        for name in fields:
            value = row.get(name)
            if name == "status":
                value = STATUS_WORDS.get(str(value), value)
            elif name == "severity":
                value = SEVERITY_WORDS.get(str(value), value)
            cells.append(value)
        out.append(cells)
    return out


def write_county_workbooks(
    folder: Path, findings: Sequence[Mapping[str, Any]], roster: Sequence[Mapping[str, Any]]
) -> list[Delivered]:
    """One workbook per county: a sheet per rule (its findings there) and the visit roster."""
    rules: Sequence[Rule] = load_rules()
    by_county: dict[str, dict[str, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    roster_by_county: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in findings:
        by_county[str(row["county_code"] or "unknown")][row["rule_code"]].append(row)
    for row in roster:
        roster_by_county[str(row["county_code"] or "unknown")].append(row)
    target = folder / "counties"
    target.mkdir()
    delivered = []
    for county in sorted(set(by_county) | set(roster_by_county)):
        sheets = [
            Sheet(
                title=f"{rule.title_zh}",
                headers=[FINDING_HEADERS[name] for name in _SHEET_FIELDS],
                rows=_sheet_rows(by_county[county].get(rule.code, []), _SHEET_FIELDS),
            )
            for rule in rules
        ]
        sheets.append(
            Sheet(
                title=ROSTER_SHEET_TITLE,
                headers=[ROSTER_HEADERS[name] for name in ROSTER_FIELDS],
                rows=_sheet_rows(roster_by_county.get(county, []), ROSTER_FIELDS),
            )
        )
        path = target / f"{_county_label(county)}.xlsx"
        write_workbook(path, sheets, creator="lookback")
        delivered.append(Delivered(path, None))
    return delivered


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
) -> Path:
    """``manifest.json``: what the run delivered, checkable file by file."""
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
