"""The rectification ledger (逐项对账销号): what a county says it did about each finding,
read back from the county workbook it returns, and each finding's rectification state
beside its status.

``status`` says what the data says (``open`` / ``resolved``); ``rectification_state`` says
where the county's answer stands against it:

- ``no_answer`` 未反馈: open, and the county has not answered;
- ``in_progress`` 整改中: open, reported in progress, its 完成时限 not passed;
- ``overdue`` 逾期未整改: open, reported in progress, and the as-of date of the latest run
  that checked it is past its 完成时限;
- ``reported_fixed`` 已报整改待核验: open, reported fixed, and no run after the one whose
  workbook was answered has found it yet (awaiting verification by the next batch);
- ``still_found`` 已报整改仍存在: reported fixed, yet a later run found it again: flagged for
  the province;
- ``cannot_fix`` 无法整改: open, reported as impossible to fix, with the reason;
- ``verified`` 已核验销号: resolved, a later batch no longer finds it.

A county workbook's finding sheets carry the answer columns (:data:`ANSWER_HEADERS`) and,
hidden, a check code per row (:func:`row_check`) over what was published in it; the
workbook's properties name the run and the county. :func:`read_return` reads a returned
workbook (or a CSV of the same columns, its run and county given) and validates every row
before anything is stored: an unknown finding, a finding of another county, a 完成时限
before the finding was opened, an unknown 整改情况, 无法整改 without a reason, or a row
whose published cells were altered is an error naming the sheet and row, and the file
then changes nothing. A file is read once (by its SHA-256); every answer is kept, the
latest per finding counts.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, func, select

from lookback.errors import LookbackError
from lookback.locks import one_writer_at_a_time
from lookback.sql import load_sql
from lookback.standardise.dates import cell_date
from lookback.warehouse import Warehouse, rows_as_dicts
from lookback.xlsx import custom_properties, open_returned

log = logging.getLogger(__name__)

# The county's answer, per finding: the columns it fills in.
MEASURE, RESPONSIBLE, DEADLINE, STATE, NOTE = "整改措施", "责任人", "完成时限", "整改情况", "情况说明"
ANSWER_HEADERS: Final = (MEASURE, RESPONSIBLE, DEADLINE, STATE, NOTE)
ANSWER_FIELDS: Final = ("measure", "responsible", "deadline", "state", "note")
# 整改情况 as written → as stored.
STATE_WORDS: Final[Mapping[str, str]] = {"已整改": "fixed", "整改中": "in_progress", "无法整改": "cannot_fix"}
REPORTED_WORDS: Final[Mapping[str, str]] = {code: word for word, code in STATE_WORDS.items()}
# The rectification states, in the order a summary lists them, with their words.
RECTIFICATION_STATES: Final[Mapping[str, str]] = {
    "no_answer": "未反馈",
    "in_progress": "整改中",
    "overdue": "逾期未整改",
    "reported_fixed": "已报整改待核验",
    "still_found": "已报整改仍存在",
    "cannot_fix": "无法整改",
    "verified": "已核验销号",
}
# The hidden column of a finding sheet with each row's check code.
CHECK_HEADER: Final = "校验码"
FINDING_ID_HEADER: Final = "问题编号"
# The workbook's custom properties that say whose it is.
RUN_PROPERTY: Final = "lookback_run_id"
COUNTY_PROPERTY: Final = "lookback_county"


def row_check(run_id: str, cells: Sequence[Any]) -> str:
    """The check code of a published finding row: a digest of the run and the row's
    published cells as the sheet holds them (text; empty cells as nothing)."""
    text = "\x1f".join([run_id, *("" if cell is None else str(cell) for cell in cells)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Report:
    """A county's answer about one finding, as read from a returned file."""

    finding_id: str
    measure: str | None
    responsible: str | None
    deadline: date | None
    state: str
    note: str | None
    sheet: str
    row: int


@dataclass(frozen=True)
class ReturnRead:
    """What reading a returned file did."""

    path: Path
    run_id: str
    county: str
    reports: int  # answers stored (0 when the file was read before)
    already_read: bool = False
    read_at: datetime | None = None  # when it was first read


@dataclass(frozen=True)
class _Row:
    sheet: str
    row: int
    cells: dict[str, Any]  # header → value


# Reading a returned file


def read_return(
    warehouse: Warehouse,
    path: Path,
    returned_by: str,
    *,
    run_id: str | None = None,
    county: str | None = None,
) -> ReturnRead:
    """Read a county's returned workbook (``.xlsx``) or CSV, validate every answer and store
    them all, or none: a :class:`LookbackError` names every row that is wrong. A CSV says
    neither its run nor its county: give them (``run_id``, ``county``)."""
    if not returned_by.strip():
        raise LookbackError(f"{path}: say who returned it (the county office or person)")
    try:
        content = path.read_bytes()
    except OSError as error:
        raise LookbackError(f"{path}: cannot be read: {error.strerror}") from error
    return_id = hashlib.sha256(content).hexdigest()
    if path.suffix.lower() == ".csv":
        if not run_id or county is None:
            raise LookbackError(f"{path}: a CSV return needs its run id and county (--run-id, --county)")
        rows = list(_csv_rows(path))
    elif path.suffix.lower() == ".xlsx":
        workbook_run, workbook_county, rows = _workbook_rows(path)
        if run_id and run_id != workbook_run:
            raise LookbackError(f"{path}: the workbook is of run {workbook_run}, not {run_id}")
        if county is not None and county != workbook_county:
            raise LookbackError(f"{path}: the workbook is of county {workbook_county}, not {county}")
        run_id, county = workbook_run, workbook_county
    else:
        raise LookbackError(f"{path}: a return is the county workbook (.xlsx) or a CSV of its columns")
    returns = warehouse.table("rectification_returns")
    with warehouse.engine.begin() as connection:
        one_writer_at_a_time(connection, "history")
        earlier = connection.execute(select(returns).where(returns.c.return_id == return_id)).first()
        if earlier is not None:
            log.info("%s was read on %s: nothing more to do", path.name, earlier.read_at)
            return ReturnRead(path, earlier.run_id, earlier.county_code, 0, True, earlier.read_at)
        reports = _validated(connection, warehouse, path, run_id, county, rows)
        read_at = datetime.now(UTC)
        _store(connection, warehouse, reports, run_id, county, return_id)
        connection.execute(
            returns.insert().values(
                return_id=return_id,
                file_name=path.name,
                run_id=run_id,
                county_code=county,
                returned_by=returned_by.strip(),
                read_at=read_at,
                reports=len(reports),
            )
        )
        update_rectification_states(connection, warehouse, [report.finding_id for report in reports])
    log.info("%s: %d answers of county %s stored (run %s)", path.name, len(reports), county or "-", run_id)
    return ReturnRead(path, run_id, county, len(reports), False, read_at)


def _workbook_rows(path: Path) -> tuple[str, str, list[_Row]]:
    """The run and county a workbook was published for, and the rows of its finding sheets."""
    workbook = open_returned(path)
    properties = custom_properties(workbook)
    run_id, county = properties.get(RUN_PROPERTY), properties.get(COUNTY_PROPERTY)
    if not run_id or county is None:
        raise LookbackError(
            f"{path}: not a county workbook published by lookback (its properties name no run and county)"
        )
    rows: list[_Row] = []
    for sheet in workbook.worksheets:
        header = [cell.value for cell in sheet[2]] if sheet.max_row >= 2 else []
        if FINDING_ID_HEADER not in header or CHECK_HEADER not in header:
            continue  # not a finding sheet (the visit roster)
        missing = [caption for caption in ANSWER_HEADERS if caption not in header]
        if missing:
            raise LookbackError(f"{path}: sheet {sheet.title}: the columns {', '.join(missing)} are missing")
        for number, values in enumerate(sheet.iter_rows(min_row=3, values_only=True), start=3):
            cells = {str(caption): value for caption, value in zip(header, values, strict=False) if caption}
            if any(value not in (None, "") for value in cells.values()):
                rows.append(_Row(sheet.title, number, cells))
    return str(run_id), str(county), rows


def _csv_rows(path: Path) -> Iterator[_Row]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [caption for caption in (FINDING_ID_HEADER, *ANSWER_HEADERS) if caption not in header]
            if missing:
                raise LookbackError(f"{path}: the columns {', '.join(missing)} are missing")
            for number, row in enumerate(reader, start=2):
                cells = {key: value for key, value in row.items() if key}
                if any((value or "").strip() for value in cells.values()):
                    yield _Row(path.name, number, cells)
    except UnicodeDecodeError as error:
        raise LookbackError(f"{path}: not UTF-8 text ({error.reason})") from error


def _validated(
    connection: Connection, warehouse: Warehouse, path: Path, run_id: str, county: str, rows: Iterable[_Row]
) -> list[Report]:
    """The answers of ``rows``, every row checked; every problem at once as one error."""
    runs = {row["run_id"]: row for row in rows_as_dicts(connection.execute(load_sql("reconcile/run_order")))}
    if run_id not in runs:
        raise LookbackError(f"{path}: run {run_id} is not a run of this warehouse")
    findings = warehouse.table("findings")
    rows = list(rows)
    wanted = {str(row.cells.get(FINDING_ID_HEADER) or "").strip() for row in rows}
    known = {
        row.finding_id: row
        for chunk in _chunks(sorted(wanted - {""}), 500)
        for row in connection.execute(
            select(findings.c.finding_id, findings.c.county_code, findings.c.first_seen_run).where(
                findings.c.finding_id.in_(chunk)
            )
        )
    }
    problems: list[str] = []
    reports: list[Report] = []
    seen: dict[str, int] = {}
    for row in rows:
        where = f"sheet {row.sheet}, row {row.row}"
        finding_id = str(row.cells.get(FINDING_ID_HEADER) or "").strip()
        if not finding_id:
            problems.append(f"{where}: no {FINDING_ID_HEADER}")
            continue
        if CHECK_HEADER in row.cells:
            published = [
                row.cells.get(caption) for caption in row.cells if caption not in (*ANSWER_HEADERS, CHECK_HEADER)
            ]
            if str(row.cells.get(CHECK_HEADER) or "") != row_check(run_id, published):
                problems.append(
                    f"{where}: {finding_id}: the published cells were altered (or the row was added); "
                    "only the answer columns may be filled in"
                )
                continue
        finding = known.get(finding_id)
        if finding is None:
            problems.append(f"{where}: {finding_id} is not a finding of this warehouse")
            continue
        if str(finding.county_code or "") != county:
            problems.append(f"{where}: {finding_id} is a finding of county {finding.county_code or '-'}, not {county}")
            continue
        if finding_id in seen:
            problems.append(f"{where}: {finding_id} is answered twice (also on row {seen[finding_id]})")
            continue
        seen[finding_id] = row.row
        answer = {caption: _text(row.cells.get(caption)) for caption in ANSWER_HEADERS}
        if not any(answer.values()):
            continue  # not answered
        word = answer[STATE]
        state = STATE_WORDS.get(word or "")
        if state is None:
            problems.append(f"{where}: {STATE} {word or '(empty)'!r} is not one of {' / '.join(STATE_WORDS)}")
            continue
        if state == "cannot_fix" and not answer[NOTE]:
            problems.append(f"{where}: {STATE} 无法整改 needs the reason in {NOTE}")
            continue
        deadline = cell_date(row.cells.get(DEADLINE))
        if isinstance(deadline, str):
            problems.append(f"{where}: {DEADLINE} {deadline!r} is not a date")
            continue
        opened = runs.get(finding.first_seen_run)
        if deadline is not None and opened is not None and deadline < _as_date(opened["as_of"]):
            problems.append(
                f"{where}: {DEADLINE} {deadline.isoformat()} is before the finding was opened "
                f"({_as_date(opened['as_of']).isoformat()}, run {finding.first_seen_run})"
            )
            continue
        reports.append(
            Report(finding_id, answer[MEASURE], answer[RESPONSIBLE], deadline, state, answer[NOTE], row.sheet, row.row)
        )
    if problems:
        shown = problems[:50]
        more = f"\n  … and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise LookbackError(
            f"{path}: {len(problems)} row(s) cannot be read; nothing was stored:\n  " + "\n  ".join(shown) + more
        )
    return reports


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.date()
    text = value.isoformat() if isinstance(value, date) else str(value).strip()
    return text or None


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _store(
    connection: Connection, warehouse: Warehouse, reports: Sequence[Report], run_id: str, county: str, return_id: str
) -> None:
    table = warehouse.table("rectification_reports")
    numbers: dict[str, int] = {}
    for chunk in _chunks(sorted({report.finding_id for report in reports}), 500):
        statement = (
            select(table.c.finding_id, func.max(table.c.report_number))
            .where(table.c.finding_id.in_(chunk))
            .group_by(table.c.finding_id)
        )
        numbers.update({str(finding_id): int(number) for finding_id, number in connection.execute(statement)})
    records = []
    for report in reports:
        number = numbers.get(report.finding_id, 0) + 1
        numbers[report.finding_id] = number
        records.append(
            {
                "finding_id": report.finding_id,
                "report_number": number,
                "run_id": run_id,
                "county_code": county,
                "measure": report.measure,
                "responsible": report.responsible,
                "deadline": report.deadline,
                "state": report.state,
                "note": report.note,
                "return_id": return_id,
                "sheet": report.sheet,
                "row": report.row,
            }
        )
    Warehouse.insert_records(connection, table, records)


# States


def latest_reports(connection: Connection, warehouse: Warehouse) -> dict[str, dict[str, Any]]:
    """Per finding answered: its latest answer."""
    table = warehouse.table("rectification_reports")
    latest: dict[str, dict[str, Any]] = {}
    for row in rows_as_dicts(connection.execute(select(table).order_by(table.c.finding_id, table.c.report_number))):
        latest[row["finding_id"]] = row
    return latest


def rectification_state(
    finding: Mapping[str, Any],
    report: Mapping[str, Any] | None,
    position: Mapping[str, int],
    as_of: Mapping[str, date],
) -> str:
    """A finding's rectification state (see the module's text) from its status, the runs
    that last found and checked it, and the county's latest answer (None: none)."""
    if finding["status"] == "resolved":
        return "verified"
    if report is None:
        return "no_answer"
    if report["state"] == "fixed":
        answered = position.get(str(report["run_id"]), -1)
        return "still_found" if position.get(str(finding["last_seen_run"]), -1) > answered else "reported_fixed"
    if report["state"] == "cannot_fix":
        return "cannot_fix"
    deadline = report["deadline"]
    checked = as_of.get(str(finding["last_checked_run"]))
    if deadline is not None and checked is not None and _as_date(deadline) < checked:
        return "overdue"
    return "in_progress"


def run_positions(connection: Connection) -> tuple[dict[str, int], dict[str, date]]:
    """Every run's place in the run order, and its as-of date."""
    runs = rows_as_dicts(connection.execute(load_sql("reconcile/run_order")))
    runs.sort(key=lambda run: (_as_date(run["as_of"]), int(run["sequence"])))
    return (
        {run["run_id"]: index for index, run in enumerate(runs)},
        {run["run_id"]: _as_date(run["as_of"]) for run in runs},
    )


def update_rectification_states(connection: Connection, warehouse: Warehouse, finding_ids: Iterable[str]) -> None:
    """Derive again the rectification state of the findings named (after new answers)."""
    findings = warehouse.table("findings")
    wanted = sorted(set(finding_ids))
    if not wanted:
        return
    position, as_of = run_positions(connection)
    reports = latest_reports(connection, warehouse)
    for chunk in _chunks(wanted, 500):
        for finding in rows_as_dicts(
            connection.execute(
                select(
                    findings.c.finding_id, findings.c.status, findings.c.last_seen_run, findings.c.last_checked_run
                ).where(findings.c.finding_id.in_(chunk))
            )
        ):
            state = rectification_state(finding, reports.get(finding["finding_id"]), position, as_of)
            connection.execute(
                findings.update()
                .where(findings.c.finding_id == finding["finding_id"])
                .values(rectification_state=state)
            )
