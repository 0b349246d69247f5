"""The look-back of one landing batch: every departmental export read as delivered, every
row accounted for (accepted, skipped or quarantined) and staged in the warehouse, checked
against its Great Expectations suite; every accepted row linked to a person and a
household, and the links checked; the look-back rules applied and each finding tracked
across runs; the census extract checked; the run's files published all at once.

One ingest task per source, generated from ``include/sources/*.yaml``; an optional source
that was not delivered shows as skipped. ``validate_standardise`` and ``validate_link``
are the quality gates (suites in ``expectations/``): a failed critical expectation fails
the task, names the expectation with a few masked example rows, and nothing is published;
warnings are published with the data. The Data Docs report goes to the run's folder,
``data_docs/``. ``link`` runs the record linkage, ``reconcile`` the rules (findings, visit
roster, census extract in the warehouse), ``validate_publish`` checks the census extract;
the last task writes the run's files and logs the row accounting and the findings per rule
and county. Only counts pass between tasks: the rows themselves are in the warehouse.

Trigger with the batch folder, e.g. ``{"landing": "data/landing/2020-06"}``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task

from lookback.sources import source_names
from lookback_operators import ValidateOperator

if TYPE_CHECKING:
    from lookback.run import Run

PARAMS = {
    "landing": Param(
        type="string",
        minLength=1,
        description="The batch folder in the landing zone (landing/<batch>/).",
    ),
    "batch": Param(None, type=["null", "string"], description="Batch id; default: the folder's name."),
    "warehouse": Param(
        None,
        type=["null", "string"],
        description="SQLAlchemy URL of the warehouse; default: $LOOKBACK_WAREHOUSE_URL or the SQLite file.",
    ),
    "out": Param(None, type=["null", "string"], description="Folder for the run's files; default: data/runs/<batch>."),
    "run_id": Param(
        None,
        type=["null", "string"],
        description="Look-back run id; default: the batch id (running a batch again replaces its run).",
    ),
    "as_of": Param(
        None,
        type=["null", "string"],
        format="date",
        description="Reference date of the look-back (YYYY-MM-DD); default: the run's logical date.",
    ),
}


def _run() -> Run:
    """The run this DAG run's params describe, checked once per task."""
    from lookback.run import Run

    context = get_current_context()
    return Run.from_params(context["params"], context["logical_date"].date())


@task(retries=2, retry_delay=timedelta(seconds=30))
def ingest(source: str) -> dict[str, Any]:
    """Read one source's export into its staging table; counts only come back.

    A delivery or configuration error fails at once (retrying cannot fix a file); other
    errors, such as a warehouse that is briefly unreachable, are retried.
    """
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from lookback.errors import LookbackError
    from lookback.pipeline import ingest_one, open_warehouse

    try:
        run = _run()
        with open_warehouse(run.warehouse_url) as warehouse:
            accounting = ingest_one(run, warehouse, source)
    except LookbackError as error:
        raise AirflowFailException(str(error)) from error
    if accounting.status == "not_delivered":
        raise AirflowSkipException(f"{source} was not delivered in this batch (optional source)")
    return {key: value for key, value in accounting.as_dict().items() if key != "file_sha256"}


@task
def link() -> dict[str, Any]:
    """Link every accepted row to a person and a household; counts only come back."""
    from lookback.pipeline import link as link_stage
    from lookback.pipeline import open_warehouse

    run = _run()
    with open_warehouse(run.warehouse_url) as warehouse:
        summary: dict[str, Any] = link_stage(run, warehouse).as_dict()
    return summary


@task
def reconcile() -> dict[str, Any]:
    """Apply the look-back rules, track the findings across runs, build the visit roster
    and the census extract in the warehouse; counts only come back."""
    from lookback.pipeline import open_warehouse
    from lookback.pipeline import reconcile as reconcile_stage

    run = _run()
    with open_warehouse(run.warehouse_url) as warehouse:
        summary = reconcile_stage(run, warehouse)
    return {"run_id": summary.run_id, "findings": sum(summary.per_rule.values()), "lifecycle": summary.lifecycle}


@task(trigger_rule=TriggerRule.NONE_FAILED)
def publish() -> dict[str, Any]:
    """Write the run's files and log the row accounting of every source and the findings."""
    import logging

    from lookback.pipeline import accounting_report, open_warehouse
    from lookback.pipeline import publish as publish_stage
    from lookback.report import format_look_back

    run = _run()
    with open_warehouse(run.warehouse_url) as warehouse:
        outputs = publish_stage(run, warehouse)
        report, balanced = accounting_report(warehouse, run.batch)
    log = logging.getLogger(__name__)
    log.info("row accounting:\n%s\nrun files in %s", report, outputs.out)
    if outputs.summary.get("look_back"):
        log.info("%s", format_look_back(outputs.summary["look_back"]))
    if not balanced:
        raise RuntimeError(f"row accounting of batch {run.batch} does not add up")
    return {"out": str(outputs.out), "files": [path.name for path in outputs.files]}


@dag(
    dag_id="lookback",
    schedule=None,
    catchup=False,
    params=PARAMS,
    tags=["lookback", "ingest"],
    doc_md=__doc__,
    default_args={"owner": "lookback"},
)
def lookback() -> None:
    ingested = [ingest.override(task_id=f"ingest_{name}")(source=name) for name in source_names()]
    standardised = ValidateOperator(
        task_id="validate_standardise", stage="standardise", trigger_rule=TriggerRule.NONE_FAILED
    )
    linked = ValidateOperator(task_id="validate_link", stage="link")
    census = ValidateOperator(task_id="validate_publish", stage="publish")
    ingested >> standardised >> link() >> linked >> reconcile() >> census >> publish()


lookback()
