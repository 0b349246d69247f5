"""The pipeline's stages as plain functions: the DAG tasks and the CLI call these.

Each stage takes what it needs by value (paths, a warehouse URL, a batch id) and keeps
its data in the warehouse, so that a stage can run on any worker and nothing but counts
passes between stages.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import make_url, select

from lookback.errors import ConfigError
from lookback.ingest.load import SourceAccounting, check_batch_id, ingest_source
from lookback.paths import data_dir, default_warehouse_url
from lookback.publish.run_files import RunOutputs, write_run_outputs

if TYPE_CHECKING:
    from lookback.link.stage import LinkSummary
    from lookback.quality.validate import QualityReport
    from lookback.reconcile.stage import LookbackSummary
from lookback.sources import load_source_specs
from lookback.warehouse import Warehouse

log = logging.getLogger(__name__)


def open_warehouse(url: str | None = None) -> Warehouse:
    """The warehouse at ``url`` (default: ``LOOKBACK_WAREHOUSE_URL`` or the SQLite file), schema ensured."""
    warehouse = Warehouse(url or default_warehouse_url(), load_source_specs())
    warehouse.ensure_schema()
    return warehouse


def run_place(
    landing: Path, batch_id: str | None, out: str | None, as_of: str | None, default_as_of: date
) -> tuple[str, Path, date]:
    """The batch id, the run's folder and the as-of date from a run's settings, with the
    defaults the DAG and the command line share (data/runs/<batch>, the given date)."""
    batch = batch_id_for(landing, batch_id)
    folder = Path(out) if out else data_dir() / "runs" / batch
    return batch, folder, date.fromisoformat(as_of) if as_of else default_as_of


def run_id_for(batch_id: str, run_id: str | None = None) -> str:
    """The look-back run's id: given, or the batch id. A run of the same batch is the same
    run: running it again replaces what it found, so re-runs give the same outputs."""
    return check_batch_id(run_id or batch_id)


def batch_id_for(batch_dir: Path, batch_id: str | None = None) -> str:
    """The batch id: given, or the landing folder's name (``landing/<batch>/``)."""
    return check_batch_id(batch_id or batch_dir.resolve().name)


def ingest_one(
    source: str, batch_dir: Path, batch_id: str | None = None, warehouse_url: str | None = None
) -> SourceAccounting:
    """Ingest one source of a batch (one DAG task)."""
    warehouse = open_warehouse(warehouse_url)
    try:
        spec = warehouse.specs.get(source)
        if spec is None:
            raise ConfigError(f"unknown source {source!r} (defined: {', '.join(sorted(warehouse.specs))})")
        return ingest_source(spec, batch_dir, batch_id_for(batch_dir, batch_id), warehouse)
    finally:
        warehouse.dispose()


def ingest_batch(
    batch_dir: Path,
    batch_id: str | None = None,
    warehouse_url: str | None = None,
    sources: Sequence[str] | None = None,
) -> list[SourceAccounting]:
    """Ingest every source (or those named) of a batch."""
    warehouse = open_warehouse(warehouse_url)
    batch = batch_id_for(batch_dir, batch_id)
    try:
        names = list(sources) if sources else sorted(warehouse.specs)
        unknown = sorted(set(names) - set(warehouse.specs))
        if unknown:
            raise ConfigError(f"unknown source(s) {', '.join(unknown)} (defined: {', '.join(sorted(warehouse.specs))})")
        return [ingest_source(warehouse.specs[name], batch_dir, batch, warehouse) for name in names]
    finally:
        warehouse.dispose()


def link_one(batch_id: str, warehouse_url: str | None = None) -> LinkSummary:
    """Link the batch's accepted rows into persons and households (one DAG task)."""
    from lookback.link.stage import link_batch

    warehouse = open_warehouse(warehouse_url)
    try:
        return link_batch(warehouse, check_batch_id(batch_id))
    finally:
        warehouse.dispose()


def look_back_one(
    batch_id: str, as_of: date, run_id: str | None = None, warehouse_url: str | None = None
) -> LookbackSummary:
    """Apply the look-back rules to the linked batch, track the findings across runs, and
    build the visit roster and census extract (one DAG task)."""
    from lookback.reconcile.stage import look_back

    warehouse = open_warehouse(warehouse_url)
    batch = check_batch_id(batch_id)
    try:
        return look_back(warehouse, batch, as_of, run_id_for(batch, run_id))
    finally:
        warehouse.dispose()


def validate_one(
    stage: str, batch_id: str, out: Path, as_of: date, warehouse_url: str | None = None, run_id: str | None = None
) -> QualityReport:
    """Validate a stage of the batch with its suites (one DAG task): the outcomes go to the
    warehouse and the Data Docs into the run's work folder (published with the run); a
    failed critical expectation raises ``QualityGateError`` naming it, after the report is built."""
    from lookback.publish.run_files import work_folder
    from lookback.quality.validate import enforce, validate_stage

    warehouse = open_warehouse(warehouse_url)
    batch = check_batch_id(batch_id)
    try:
        report = validate_stage(warehouse, batch, stage, as_of, work_folder(out), run_id=run_id_for(batch, run_id))
    finally:
        warehouse.dispose()
    log.info("%s", report.summary())
    enforce(report)
    return report


def publish_run(
    batch_dir: Path,
    out: Path,
    as_of: date,
    run_id: str,
    batch_id: str | None = None,
    warehouse_url: str | None = None,
) -> RunOutputs:
    """Write the run's files for a batch already ingested (the DAG's last task)."""
    warehouse = open_warehouse(warehouse_url)
    batch = batch_id_for(batch_dir, batch_id)
    try:
        accounting = stored_accounting(warehouse, batch)
        if not accounting:
            raise ConfigError(f"batch {batch} has not been ingested into {warehouse.display_url}")
        return write_run_outputs(
            warehouse, batch, out, run_id=run_id, as_of=as_of, landing=batch_dir, accounting=accounting
        )
    finally:
        warehouse.dispose()


def stored_accounting(warehouse: Warehouse, batch_id: str) -> list[SourceAccounting]:
    """The accounting stored for a batch, one entry per source."""
    table = warehouse.table("ingest_accounting")
    with warehouse.engine.connect() as connection:
        rows = connection.execute(select(table).where(table.c.batch_id == batch_id).order_by(table.c.source))
        return [SourceAccounting.from_row(dict(row._mapping)) for row in rows]


def check_warehouse_outside(out: Path, warehouse_url: str | None = None) -> None:
    """Refuse a SQLite warehouse inside the run's folder: publishing replaces that folder as a
    whole, and the warehouse would go with it (found only after a full run, when the row
    accounting is read back)."""
    url = make_url(warehouse_url or default_warehouse_url())
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    database = Path(url.database).resolve()
    if database.is_relative_to(out.resolve()):
        raise ConfigError(
            f"the warehouse {database} lies inside the run's folder {out}, which publishing replaces "
            "as a whole: put the warehouse elsewhere"
        )


def run_pipeline(
    batch_dir: Path,
    out: Path,
    as_of: date,
    batch_id: str | None = None,
    warehouse_url: str | None = None,
    run_id: str | None = None,
) -> tuple[list[SourceAccounting], RunOutputs]:
    """The whole pipeline: ingest every source, validate the staged rows, link, validate the
    links, look back, validate the census extract, publish. A failed critical expectation
    stops it before anything is published."""
    batch = batch_id_for(batch_dir, batch_id)
    run = run_id_for(batch, run_id)
    check_warehouse_outside(out, warehouse_url)
    accounting = ingest_batch(batch_dir, batch, warehouse_url)
    validate_one("standardise", batch, out, as_of, warehouse_url, run)
    link_one(batch, warehouse_url)
    validate_one("link", batch, out, as_of, warehouse_url, run)
    look_back_one(batch, as_of, run, warehouse_url)
    validate_one("publish", batch, out, as_of, warehouse_url, run)
    outputs = publish_run(batch_dir, out, as_of, run, batch, warehouse_url)
    return accounting, outputs


def accounting_report(batch_id: str, warehouse_url: str | None = None) -> tuple[str, bool]:
    """The stored row accounting of a batch as a table, and whether every source balances."""
    from lookback.publish.run_files import accounting_rows
    from lookback.report import format_accounting

    warehouse = open_warehouse(warehouse_url)
    try:
        rows = accounting_rows(warehouse, batch_id)
        if not rows:
            raise ConfigError(f"batch {batch_id} has not been ingested into {warehouse.display_url}")
        text = f"batch {batch_id} in {warehouse.display_url}\n{format_accounting(rows)}"
        return text, all(row["balanced"] for row in rows)
    finally:
        warehouse.dispose()


def finding_history(finding_id: str, warehouse_url: str | None = None) -> list[dict[str, Any]]:
    """What every run covering its county said of a finding: found (with the evidence then),
    opened, resolved or reopened, in run order."""
    from lookback.reconcile.stage import finding_history as history

    warehouse = open_warehouse(warehouse_url)
    try:
        rows = history(warehouse, finding_id)
    finally:
        warehouse.dispose()
    if not rows:
        raise ConfigError(f"no finding {finding_id} in {warehouse.display_url}")
    return rows
