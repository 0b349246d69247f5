"""The files a run leaves in its output folder, and the summary it prints.

For now a run ingests; it delivers the row accounting (``ingest_accounting.csv``), the
quarantined rows (``quarantine.csv``, with anything that looks like an identity number
masked) and ``run_summary.json``. CSV files are UTF-8 with a byte-order mark so that Excel
shows the Chinese correctly.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lookback.errors import QualityGateError
from lookback.ingest.load import SourceAccounting
from lookback.sql import load_sql
from lookback.standardise.identity import mask_identity_number
from lookback.warehouse import Warehouse, rows_as_dicts

ACCOUNTING_FIELDS = (
    "source",
    "status",
    "file_name",
    "encoding",
    "delivered",
    "accepted",
    "skipped",
    "quarantined",
    "value_problems",
)
QUARANTINE_FIELDS = ("source", "source_row", "file_name", "position", "reason_code", "reason", "raw_record")
LINK_FIELDS = (
    "person_id",
    "source",
    "source_row",
    "household_key",
    "match_method",
    "match_score",
    "conflicting_identity",
)
REVIEW_FIELDS = (
    "source_1",
    "source_row_1",
    "name_1",
    "identity_1_masked",
    "source_2",
    "source_row_2",
    "name_2",
    "identity_2_masked",
    "score",
    "explanation",
    "decision",
)
_IDENTITY_LIKE = re.compile(r"[0-9０-９]{6}[0-9０-９ ]{8,}[0-9０-９XxＸ]")


@dataclass(frozen=True)
class RunOutputs:
    out: Path
    files: tuple[Path, ...]


def mask_identity_numbers_in(text: str) -> str:
    """Mask every run of characters that could be an identity number."""
    return _IDENTITY_LIKE.sub(lambda match: mask_identity_number(match.group(0)), text)


def _write_csv(path: Path, fields: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields), extrasaction="ignore", lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)


def accounting_rows(warehouse: Warehouse, batch_id: str) -> list[dict[str, Any]]:
    with warehouse.engine.connect() as connection:
        return rows_as_dicts(connection.execute(load_sql("ingest_accounting"), {"batch_id": batch_id}))


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


def quality_summary(warehouse: Warehouse, batch_id: str, out: Path) -> dict[str, Any]:
    """What the quality gates found for the batch: counts per stage, the Data Docs path,
    and the outcome rows (examples masked) for ``quality_results.csv``."""
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
    docs = out / "data_docs" / "index.html"
    return {
        "validated": bool(rows),
        "stages": stages,
        "critical_failed": sum(counts["critical_failed"] for counts in stages.values()),
        "warnings": sum(counts["warnings"] for counts in stages.values()),
        "data_docs": str(docs.relative_to(out)) if docs.exists() else None,
        "rows": rows,
    }


def write_run_outputs(
    warehouse: Warehouse,
    batch_id: str,
    out: Path,
    *,
    run_id: str,
    as_of: date,
    landing: Path,
    accounting: Sequence[SourceAccounting],
) -> RunOutputs:
    """Write the run's files into ``out`` (created if missing) and return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    with warehouse.engine.connect() as connection:
        quarantined = rows_as_dicts(connection.execute(load_sql("quarantine_rows"), {"batch_id": batch_id}))
    for row in quarantined:
        row["raw_record"] = mask_identity_numbers_in(row["raw_record"])
    accounting_path = out / "ingest_accounting.csv"
    quarantine_path = out / "quarantine.csv"
    summary_path = out / "run_summary.json"
    _write_csv(accounting_path, ACCOUNTING_FIELDS, accounting_rows(warehouse, batch_id))
    _write_csv(quarantine_path, QUARANTINE_FIELDS, quarantined)
    files = [accounting_path, quarantine_path]
    with warehouse.engine.connect() as connection:
        links = rows_as_dicts(connection.execute(load_sql("person_links"), {"batch_id": batch_id}))
        review = rows_as_dicts(connection.execute(load_sql("match_review_rows"), {"batch_id": batch_id}))
    if links:
        files.append(out / "person_links.csv")
        _write_csv(files[-1], LINK_FIELDS, links)
        files.append(out / "match_review.csv")
        _write_csv(files[-1], REVIEW_FIELDS, review)
    quality = quality_summary(warehouse, batch_id, out)
    if quality["critical_failed"]:
        raise QualityGateError(
            f"batch {batch_id} failed {quality['critical_failed']} critical expectation(s); it is not published "
            f"(see {quality['data_docs'] or 'quality_results'})"
        )
    outcomes = quality.pop("rows")
    if quality["validated"]:
        files.append(out / "quality_results.csv")
        _write_csv(files[-1], QUALITY_FIELDS, outcomes)
    summary = {
        "run_id": run_id,
        "batch_id": batch_id,
        "as_of": as_of.isoformat(),
        "landing": str(landing),
        "warehouse": warehouse.display_url,
        "sources": [item.as_dict() for item in accounting],
        "balanced": all(item.balanced for item in accounting),
        "files": [path.name for path in files],
        "linked_rows": len(links),
        "persons": len({row["person_id"] for row in links}),
        "review_pairs": len(review),
        "quality": quality,
    }
    summary_path.write_text(json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return RunOutputs(out=out, files=(*files, summary_path))
