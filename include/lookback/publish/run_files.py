"""The files a run leaves in its output folder, and the summary it prints.

A run delivers the row accounting (``ingest_accounting.csv``), the quarantined rows
(``quarantine.csv``, anything that looks like an identity number masked), the links and the
pairs left for review, the quality outcomes and Data Docs, the look-back's deliverables
(``lookback.publish.deliver``), ``run_summary.json`` and ``manifest.json``. The stages before
publishing write into a work folder beside the run's folder; publishing writes every file
into a staging folder and swaps it into place, so the run's folder changes all at once.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, distinct, func, select

from lookback.errors import PublishError, QualityGateError
from lookback.faults import fault_point
from lookback.ingest.load import ACCOUNTING_COLUMNS, SourceAccounting
from lookback.publish.deliver import CountyFiles, Delivered, stream
from lookback.publish.files import (
    CsvWriter,
    PrintLayout,
    WorkbookWriter,
    discard,
    staging_folder,
    swap_into_place,
    write_csv,
)
from lookback.publish.replace import RUN_MARKER, check_replaceable
from lookback.run import Run
from lookback.sql import load_sql
from lookback.standardise.identity import mask_identity_numbers_in
from lookback.warehouse import Warehouse, rows_as_dicts


@dataclass(frozen=True)
class RunOutputs:
    out: Path
    files: tuple[Path, ...]
    summary: Mapping[str, Any]  # run_summary.json as written


def _csv(path: Path, fields: Sequence[str], rows: Sequence[dict[str, Any]]) -> Delivered:
    return Delivered(path, write_csv(path, fields, rows))


def _stream_csv(connection: Connection, path: Path, statement: str, parameters: Mapping[str, Any]) -> Delivered:
    """A statement's rows written to ``path`` as they come, its columns as the header."""
    result = stream(connection, load_sql(statement), parameters)
    with CsvWriter(path, list(result.keys())) as writer:
        for row in result:
            writer.append(row)
    return Delivered(path, writer.rows)


def _review_files(
    connection: Connection, folder: Path, parameters: Mapping[str, Any], as_of: date
) -> tuple[Delivered, Delivered]:
    """``match_review.csv`` (the contract's column names) and ``match_review.xlsx`` (for
    county staff: Chinese captions over the names, made to print), the same rows in the
    words of the people who decide pairs (see ``lookback.link.review``); either, filled in,
    is read back by ``lookback decide``."""
    from lookback.link.review import REVIEW_CAPTIONS, REVIEW_FIELDS, review_file_rows

    result = stream(connection, load_sql("publish/match_review_rows"), parameters)
    layout = PrintLayout(
        f"人工复核：是否同一人（批次 {parameters['batch_id']}，截至 {as_of.isoformat()}）", REVIEW_WIDTHS, 36
    )
    with (
        CsvWriter(folder / "match_review.csv", REVIEW_FIELDS) as writer,
        WorkbookWriter(folder / "match_review.xlsx") as workbook,
    ):
        sheet = workbook.add_sheet("人工复核", REVIEW_CAPTIONS, layout)
        for row in review_file_rows((dict(row._mapping) for row in result), as_of):
            writer.append(row)
            sheet.append(row)
    return Delivered(writer.path, writer.rows), Delivered(workbook.path, None)


# Printed widths of the review workbook's wrapped columns, by caption.
REVIEW_WIDTHS: Mapping[str, int] = {
    "比对说明\nexplanation_zh": 40,
    "比对说明（英文）\nexplanation": 40,
    "户1\nhousehold_1": 16,
    "户2\nhousehold_2": 16,
}


def accounting_rows(warehouse: Warehouse, batch_id: str) -> list[dict[str, Any]]:
    with warehouse.engine.connect() as connection:
        return rows_as_dicts(connection.execute(load_sql("publish/ingest_accounting"), {"batch_id": batch_id}))


QUALITY_FIELDS = (
    "stage",
    "suite",
    "expectation",
    "column_name",
    "severity",
    "success",
    "element_count",
    "unexpected_count",
    "observed",
    "description",
    "examples",
)


def quality_summary(warehouse: Warehouse, batch_id: str, out: Path | None) -> dict[str, Any]:
    """What the quality gates found for the batch: counts per stage, the Data Docs path
    (None without a run folder ``out``, or when it holds none), and the outcome rows
    (examples masked) for ``quality_results.csv``."""
    results = warehouse.table("quality_results")
    with warehouse.engine.connect() as connection:
        rows = rows_as_dicts(
            connection.execute(
                select(*(results.c[name] for name in QUALITY_FIELDS))
                .where(results.c.batch_id == batch_id)
                .order_by(results.c.stage, results.c.suite, results.c.position)
            )
        )
    stages: dict[str, dict[str, int]] = {}
    for row in rows:
        counts = stages.setdefault(row["stage"], {"expectations": 0, "critical_failed": 0, "warnings": 0})
        counts["expectations"] += 1
        if not row["success"]:
            counts["critical_failed" if row["severity"] == "critical" else "warnings"] += 1
    docs = out / "data_docs" / "index.html" if out is not None else None
    return {
        "validated": bool(rows),
        "stages": stages,
        "critical_failed": sum(counts["critical_failed"] for counts in stages.values()),
        "warnings": sum(counts["warnings"] for counts in stages.values()),
        "data_docs": "data_docs/index.html" if docs is not None and docs.exists() else None,
        "rows": rows,
    }


def write_quality_page(
    folder: Path, quality: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], batch_id: str, as_of: date | None
) -> Delivered:
    """``quality.html`` in ``folder``: the gates' outcome on one page (see
    ``lookback.publish.quality_page``), linking the Data Docs beside it when they are there."""
    from lookback.publish.quality_page import quality_page

    docs = "data_docs/index.html" if (folder / "data_docs" / "index.html").exists() else None
    path = folder / "quality.html"
    path.write_text(quality_page(quality, rows, batch_id=batch_id, as_of=as_of, data_docs=docs), encoding="utf-8")
    return Delivered(path, None)


def work_folder(out: Path) -> Path:
    """Where a run's stages write before publishing (the GX project, the Data Docs): beside
    the run's folder, so that the published folder changes only when the run publishes."""
    return out.parent / f".{out.name}.work"


def write_run_outputs(
    warehouse: Warehouse, run: Run, accounting: Sequence[SourceAccounting], withheld: str | None = None
) -> RunOutputs:
    """Write the run's files and publish them as ``out`` all at once (see
    ``lookback.publish.files.swap_into_place``); return their paths. ``withheld``: the census
    extract is not released (the reason, e.g. a rejected approval); everything else is
    published, and the summary and manifest say the extract was withheld and why."""
    batch_id, out = run.batch, run.out
    check_replaceable(out, RUN_MARKER)
    quality = quality_summary(warehouse, batch_id, work_folder(out))
    if quality["critical_failed"]:
        work_folder(out).mkdir(parents=True, exist_ok=True)
        page = write_quality_page(work_folder(out), quality, quality["rows"], batch_id, run.as_of)
        raise QualityGateError(
            f"batch {batch_id} failed {quality['critical_failed']} critical expectation(s); it is not published "
            f"(see {page.path}, {work_folder(out) / 'data_docs' / 'index.html'} or the quality_results table)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_folder(out)
    try:
        files, summary = _write_files(warehouse, run, staging, quality, accounting, withheld)
        swap_into_place(staging, out, marker=RUN_MARKER)
    except OSError as error:  # a full disk, a quota, a file system gone read-only
        discard(staging)
        failure = PublishError(_not_published(run, staging, error))
        failure.errno = error.errno
        raise failure from error
    except BaseException:
        discard(staging)
        raise
    return RunOutputs(out=out, files=tuple(out / path.relative_to(staging) for path in files), summary=summary)


def _not_published(run: Run, staging: Path, error: OSError) -> str:
    """Why a run's files could not be written, in one line: the file, the system's reason,
    and what the run's folder holds now (the staging folder is gone)."""
    where = Path(error.filename) if error.filename else None
    if where is None or where == staging:
        shown = "its files"
    else:
        shown = where.relative_to(staging).as_posix() if where.is_relative_to(staging) else str(where)
    kept = f"{run.out} still holds the files published before" if run.out.exists() else "nothing was published"
    return f"run {run.run_id} not published: cannot write {shown}: {error.strerror or error}; {kept}"


def _write_files(
    warehouse: Warehouse,
    run: Run,
    folder: Path,
    quality: dict[str, Any],
    accounting: Sequence[SourceAccounting],
    withheld: str | None,
) -> tuple[list[Path], dict[str, Any]]:
    """The run's files written into ``folder``, and the run summary they include. The
    per-county files are started first, in worker processes where that pays (see
    ``lookback.publish.deliver.CountyFiles``), and written while the others are."""
    from lookback.publish.deliver import county_files_apart, publish_workers

    look_back = _look_back_summary(warehouse, run.run_id)
    workers = publish_workers()
    if look_back is None or not county_files_apart(warehouse, run.run_id, workers):
        return _write_files_here(warehouse, run, folder, quality, accounting, withheld, look_back, None)
    with CountyFiles(folder, warehouse, run.run_id, census=withheld is None, workers=workers) as county_files:
        return _write_files_here(warehouse, run, folder, quality, accounting, withheld, look_back, county_files)


def _write_files_here(
    warehouse: Warehouse,
    run: Run,
    folder: Path,
    quality: dict[str, Any],
    accounting: Sequence[SourceAccounting],
    withheld: str | None,
    look_back: dict[str, Any] | None,
    county_files: CountyFiles | None,
) -> tuple[list[Path], dict[str, Any]]:
    """The run's files written by this process (all of them without ``county_files``)."""
    from lookback.publish.deliver import (
        census_persons,
        write_census_extract,
        write_findings_roster_and_workbooks,
        write_manifest,
    )

    batch_id, run_id, as_of, work = run.batch, run.run_id, run.needs_as_of(), work_folder(run.out)
    parameters = {"batch_id": batch_id}
    delivered = [_csv(folder / "ingest_accounting.csv", ACCOUNTING_COLUMNS, accounting_rows(warehouse, batch_id))]
    # The columns of these files are those their statements select: defined once, there.
    with warehouse.engine.connect() as connection:
        quarantined = stream(connection, load_sql("publish/quarantine_rows"), parameters)
        raw_record = list(quarantined.keys()).index("raw_record")
        with CsvWriter(folder / "quarantine.csv", list(quarantined.keys())) as writer:
            for row in quarantined:
                cells = list(row)
                cells[raw_record] = mask_identity_numbers_in(cells[raw_record])
                writer.append(cells)
        delivered.append(Delivered(writer.path, writer.rows))
        links = _stream_csv(connection, folder / "person_links.csv", "publish/person_links", parameters)
        review, review_workbook = _review_files(connection, folder, parameters, as_of)
        person_links = warehouse.table("person_links")
        persons = connection.execute(
            select(func.count(distinct(person_links.c.person_id))).where(person_links.c.batch_id == batch_id)
        ).scalar_one()
    fault_point("publish")
    if links.rows:
        delivered += [links, review, review_workbook]
    else:  # a batch not linked yet delivers none of these files
        for item in (links, review, review_workbook):
            item.path.unlink()
    outcomes = quality.pop("rows")
    if quality["validated"]:
        delivered.append(_csv(folder / "quality_results.csv", QUALITY_FIELDS, outcomes))
    if (work / "data_docs").is_dir():
        shutil.copytree(work / "data_docs", folder / "data_docs")
    if quality["validated"]:
        delivered.append(write_quality_page(folder, quality, outcomes, batch_id, as_of))
    census = 0
    if look_back is not None:
        if county_files is not None:
            delivered += county_files.findings_and_roster(folder)
            delivered += county_files.delivered()
        else:
            delivered += write_findings_roster_and_workbooks(folder, warehouse, run_id)
            if withheld is None:
                delivered += write_census_extract(folder, warehouse, run_id)
        if withheld is None:
            census = census_persons(warehouse, run_id)
    summary = {
        "run_id": run_id,
        "batch_id": batch_id,
        "as_of": as_of.isoformat(),
        "landing": str(run.landing),
        "warehouse": warehouse.display_url,
        "sources": [item.as_dict() for item in accounting],
        "balanced": all(item.balanced for item in accounting),
        "files": sorted(item.path.relative_to(folder).as_posix() for item in delivered),
        "linked_rows": links.rows,
        "persons": persons,
        "review_pairs": review.rows,
        "quality": quality,
        "look_back": look_back,
        "census_extract": _extract_state(look_back, withheld),
    }
    summary_path = folder / "run_summary.json"
    summary_path.write_text(json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    delivered.append(Delivered(summary_path, None))
    manifest = write_manifest(
        folder,
        delivered,
        run_id=run_id,
        batch_id=batch_id,
        as_of=as_of,
        quality=quality,
        census_persons=census,
        withheld=withheld,
    )
    return [item.path for item in delivered] + [manifest], summary


def _extract_state(look_back: Mapping[str, Any] | None, withheld: str | None) -> dict[str, Any]:
    """Whether the census extract went out with the run's files, and if not, why."""
    if look_back is None:
        return {"released": False, "reason": "the batch has not been looked back"}
    if withheld is not None:
        return {"released": False, "reason": withheld}
    return {"released": True, "reason": None}


def _look_back_summary(warehouse: Warehouse, run_id: str) -> dict[str, Any] | None:
    from lookback.reconcile.stage import stored_summary

    summary = stored_summary(warehouse, run_id)
    return None if summary is None else summary.as_dict()
