"""The pipeline's stages as plain functions: the DAG tasks and the CLI call these.

Every stage is ``stage(run, warehouse)``: the :class:`~lookback.run.Run` says which batch,
run, date and folders, the warehouse (opened with :func:`~lookback.run.open_warehouse`)
holds the data, so that a stage can run on any worker and nothing but counts passes
between stages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select

from lookback.connections import Connections
from lookback.counties import MAX_TASKS
from lookback.errors import ConfigError
from lookback.ingest.load import SourceAccounting, ingest_source
from lookback.ingest.parallel import ingest_in_workers, ingest_workers
from lookback.locks import Holder, holding
from lookback.publish.run_files import RunOutputs, write_run_outputs
from lookback.retry import retry_stage
from lookback.run import Run, open_warehouse
from lookback.sources import SourceSpec
from lookback.warehouse import Warehouse

if TYPE_CHECKING:
    from lookback.link.stage import LinkSummary
    from lookback.reconcile.stage import ReconcileSummary
    from lookback.validate.stage import QualityReport

log = logging.getLogger(__name__)

_Result = TypeVar("_Result")

__all__ = [
    "Run",
    "accounting_report",
    "county_groups",
    "finding_history",
    "ingest_all",
    "ingest_one",
    "link",
    "link_county",
    "link_merge",
    "link_prepare",
    "open_warehouse",
    "publish",
    "reconcile",
    "reconcile_county",
    "reconcile_finish",
    "reconcile_prepare",
    "run_pipeline",
    "stored_accounting",
    "validate",
]


def ingest_one(run: Run, warehouse: Warehouse, source: str, connections: Connections | None = None) -> SourceAccounting:
    """Ingest one source of the run's batch (one DAG task): its file in the landing folder,
    or its rows in a department's database through ``connections``, which resolves a
    connection id to a SQLAlchemy URL (a function or a mapping; default:
    ``LOOKBACK_CONNECTION_<ID>`` in the environment; in Airflow,
    ``lookback_connections.airflow_connection_url``)."""
    spec = warehouse.specs.get(source)
    if spec is None:
        raise ConfigError(f"unknown source {source!r} (defined: {', '.join(sorted(warehouse.specs))})")
    return ingest_source(spec, _landing(run, spec), run.batch, warehouse, connections=connections)


def ingest_all(
    run: Run, warehouse: Warehouse, sources: Sequence[str] | None = None, connections: Connections | None = None
) -> list[SourceAccounting]:
    """Ingest every source (or those named) of the run's batch, side by side in worker
    processes (``LOOKBACK_INGEST_WORKERS``, one per core by default; 1: one after another
    in this process, see :mod:`lookback.ingest.parallel`). The accountings are in the
    sources' order, and the warehouse holds what ingesting them in that order stores."""
    names = list(sources) if sources else sorted(warehouse.specs)
    unknown = sorted(set(names) - set(warehouse.specs))
    if unknown:
        raise ConfigError(f"unknown source(s) {', '.join(unknown)} (defined: {', '.join(sorted(warehouse.specs))})")
    workers = ingest_workers(len(names), warehouse.url)
    if workers == 1:
        return [ingest_one(run, warehouse, name, connections) for name in names]
    return ingest_in_workers(warehouse, names, lambda spec: _landing(run, spec), run.batch, workers, connections)


def _landing(run: Run, spec: SourceSpec) -> Path | None:
    """The landing folder a source is read from: needed for a file, optional for a database."""
    return run.needs_landing() if spec.database is None else run.landing


def validate(run: Run, warehouse: Warehouse, stage: str) -> QualityReport:
    """Validate a stage of the batch with its suites (one DAG task): the outcomes go to the
    warehouse and the Data Docs into the run's work folder (published with the run); a
    failed critical expectation raises ``QualityGateError`` naming it, after the report is built."""
    from lookback.publish.run_files import work_folder
    from lookback.validate.stage import enforce, validate_stage

    report = validate_stage(warehouse, run.batch, stage, run.needs_as_of(), work_folder(run.out), run_id=run.run_id)
    log.info("%s", report.summary())
    enforce(report)
    return report


def link(run: Run, warehouse: Warehouse, counties: Sequence[Collection[str]] | None = None) -> LinkSummary:
    """Link the batch's accepted rows into persons and households (one DAG task); with
    ``counties``, the second pass in county tasks (see :mod:`lookback.counties`)."""
    from lookback.link.stage import link_batch

    return link_batch(warehouse, run.batch, counties=counties)


def reconcile(run: Run, warehouse: Warehouse, counties: Sequence[Collection[str]] | None = None) -> ReconcileSummary:
    """Apply the look-back rules to the linked batch, track the findings across runs, and
    build the visit roster and census extract (one DAG task); with ``counties``, the rules
    in county tasks (see :mod:`lookback.counties`)."""
    from lookback.reconcile.stage import reconcile_batch

    return reconcile_batch(warehouse, run.batch, run.needs_as_of(), run.run_id, counties)


def county_groups(run: Run, warehouse: Warehouse, max_tasks: int = MAX_TASKS) -> list[dict[str, Any]]:
    """The county tasks of the run's batch, for the orchestration to map: at most
    ``max_tasks`` groups of about equal rows (one county each when there are few enough),
    each ``{"counties": ["431224"], "label": "431224 溆浦县", "rows": 6123}``. Rows of no
    county (``""``) are a group of their own; ``""`` rides with the lightest group when every
    row states a county. Give each group's ``counties`` to the county steps below."""
    from lookback.counties import county_groups as groups

    return groups(warehouse, run.batch, max_tasks)


def link_prepare(run: Run, warehouse: Warehouse) -> dict[str, Any]:
    """The link split into tasks, first step: what the whole batch shares planned once and
    saved in the run's work folder. Returns counts (rows, candidate pairs, the plan's bytes)."""
    from lookback.link.fanout import prepare_links
    from lookback.publish.run_files import work_folder

    return prepare_links(warehouse, run.batch, run.run_id, work_folder(run.out))


def link_county(run: Run, warehouse: Warehouse, counties: Collection[str]) -> dict[str, Any]:
    """The link split into tasks, one county task (mapped): the candidate pairs of these
    counties' rows compared and weighed with the saved plan, saved beside it (the same file
    when retried). Returns the counties and the pairs scored."""
    from lookback.link.fanout import link_counties
    from lookback.publish.run_files import work_folder

    return link_counties(warehouse, run.batch, run.run_id, work_folder(run.out), counties)


def link_merge(run: Run, warehouse: Warehouse) -> LinkSummary:
    """The link split into tasks, last step: every county task's part gathered, the
    decisions taken, keys given, person_links and match_review written, as :func:`link`
    writes them; refused, naming them, while counties have no part."""
    from lookback.link.fanout import merge_links
    from lookback.publish.run_files import work_folder

    return merge_links(warehouse, run.batch, run.run_id, work_folder(run.out))


def reconcile_prepare(run: Run, warehouse: Warehouse) -> dict[str, Any]:
    """The look-back split into tasks, first step: the batch prepared, the run registered.
    Returns the run id, its execution and its counties."""
    from lookback.reconcile.stage import begin_reconcile

    return begin_reconcile(warehouse, run.batch, run.needs_as_of(), run.run_id)


def reconcile_county(run: Run, warehouse: Warehouse, counties: Collection[str]) -> dict[str, Any]:
    """The look-back split into tasks, one county task (mapped): the rules' findings in
    these counties stored (a retry replaces them). Returns the counties and findings per rule."""
    from lookback.reconcile.stage import reconcile_counties

    return reconcile_counties(warehouse, run.batch, run.needs_as_of(), run.run_id, counties)


def reconcile_finish(run: Run, warehouse: Warehouse) -> ReconcileSummary:
    """The look-back split into tasks, last step: the findings across runs, the visit roster
    and the census extract, once every county's task has finished."""
    from lookback.reconcile.stage import finish_reconcile

    return finish_reconcile(warehouse, run.batch, run.needs_as_of(), run.run_id)


def publish(run: Run, warehouse: Warehouse, withheld: str | None = None) -> RunOutputs:
    """Write the run's files for a batch already ingested (the DAG's last task); with
    ``withheld`` (the reason) everything but the census extract, which is not released."""
    run.check_warehouse_outside()
    accounting = stored_accounting(warehouse, run.batch)
    if not accounting:
        raise ConfigError(f"batch {run.batch} has not been ingested into {warehouse.display_url}")
    return write_run_outputs(warehouse, run, accounting, withheld)


def release_summary(run: Run, warehouse: Warehouse) -> str:
    """What the person who releases the census extract reads before approving (Markdown):
    the row accounting, the quality result, the findings and the extract's size."""
    from lookback.publish.run_files import accounting_rows, quality_summary, work_folder
    from lookback.reconcile.stage import stored_summary
    from lookback.report import format_release

    quality = quality_summary(warehouse, run.batch, work_folder(run.out))
    if quality["data_docs"]:  # read now in the work folder, published with the run's files
        quality["data_docs"] = str(work_folder(run.out) / quality["data_docs"])
    summary = stored_summary(warehouse, run.run_id)
    return format_release(
        accounting_rows(warehouse, run.batch), quality, summary.as_dict() if summary is not None else None
    )


def run_pipeline(
    run: Run, connections: Connections | None = None, wait: float = 0.0
) -> tuple[list[SourceAccounting], RunOutputs]:
    """The whole pipeline: ingest every source, validate the staged rows, link, validate the
    links, look back, validate the census extract, publish. A failed critical expectation
    stops it before anything is published. The batch is held for the whole run (see
    :mod:`lookback.locks`): while another run holds it, this one waits up to ``wait`` seconds,
    then raises ``BatchBusyError``. A stage that loses the warehouse's connection runs again
    (see :mod:`lookback.retry`); the hold, a row, stays the run's."""
    run.check_warehouse_outside()
    with (
        open_warehouse(run.warehouse_url) as warehouse,
        holding(warehouse, run.batch, Holder.this_process("lookback run"), wait),
    ):

        def stage(name: str, call: Callable[[], _Result]) -> _Result:
            return retry_stage(name, warehouse, call)

        accounting = stage("ingest", lambda: ingest_all(run, warehouse, connections=connections))
        stage("validate standardise", lambda: validate(run, warehouse, "standardise"))
        stage("link", lambda: link(run, warehouse))
        stage("validate link", lambda: validate(run, warehouse, "link"))
        stage("reconcile", lambda: reconcile(run, warehouse))
        stage("validate publish", lambda: validate(run, warehouse, "publish"))
        outputs = stage("publish", lambda: publish(run, warehouse))
    return accounting, outputs


def stored_accounting(warehouse: Warehouse, batch_id: str) -> list[SourceAccounting]:
    """The accounting stored for a batch, one entry per source."""
    table = warehouse.table("ingest_accounting")
    with warehouse.engine.connect() as connection:
        rows = connection.execute(select(table).where(table.c.batch_id == batch_id).order_by(table.c.source))
        return [SourceAccounting.from_row(dict(row._mapping)) for row in rows]


def accounting_report(warehouse: Warehouse, batch_id: str) -> tuple[str, bool]:
    """The stored row accounting of a batch as a table, and whether every source balances."""
    from lookback.publish.run_files import accounting_rows
    from lookback.report import format_accounting

    rows = accounting_rows(warehouse, batch_id)
    if not rows:
        raise ConfigError(f"batch {batch_id} has not been ingested into {warehouse.display_url}")
    text = f"batch {batch_id} in {warehouse.display_url}\n{format_accounting(rows)}"
    return text, all(row["balanced"] for row in rows)


def finding_history(warehouse: Warehouse, finding_id: str) -> list[dict[str, Any]]:
    """What every run covering its county said of a finding: found (with the evidence then),
    opened, resolved or reopened, in run order."""
    from lookback.reconcile.lifecycle import finding_history as history

    rows = history(warehouse, finding_id)
    if not rows:
        raise ConfigError(f"no finding {finding_id} in {warehouse.display_url}")
    return rows
