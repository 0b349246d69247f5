"""Ingest and link one landing batch: every departmental export read as delivered, every
row accounted for (accepted, skipped or quarantined) and staged in the warehouse, then
every accepted row linked to a person and a household.

One ingest task per source, generated from ``include/sources/*.yaml``; an optional source
that was not delivered shows as skipped. ``link`` runs the record linkage; the last task
writes the run's files and logs the row accounting. Only counts pass between tasks: the
rows themselves are in the warehouse.

Trigger with the batch folder, e.g. ``{"landing": "data/landing/2020-06"}``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task

from lookback.sources import source_names

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
    "as_of": Param(
        None,
        type=["null", "string"],
        format="date",
        description="Reference date of the look-back (YYYY-MM-DD); default: the run's logical date.",
    ),
}


@task(retries=2, retry_delay=timedelta(seconds=30))
def ingest(source: str) -> dict[str, Any]:
    """Read one source's export into its staging table; counts only come back.

    A delivery or configuration error fails at once (retrying cannot fix a file); other
    errors, such as a warehouse that is briefly unreachable, are retried.
    """
    from pathlib import Path

    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from lookback.errors import LookbackError
    from lookback.pipeline import ingest_one

    params = get_current_context()["params"]
    try:
        accounting = ingest_one(source, Path(params["landing"]), params["batch"], params["warehouse"])
    except LookbackError as error:
        raise AirflowFailException(str(error)) from error
    if accounting.status == "not_delivered":
        raise AirflowSkipException(f"{source} was not delivered in this batch (optional source)")
    return {key: value for key, value in accounting.as_dict().items() if key != "file_sha256"}


@task(trigger_rule=TriggerRule.NONE_FAILED)
def link() -> dict[str, Any]:
    """Link every accepted row to a person and a household; counts only come back."""
    from pathlib import Path

    from lookback.pipeline import batch_id_for, link_one

    params = get_current_context()["params"]
    summary = link_one(batch_id_for(Path(params["landing"]), params["batch"]), params["warehouse"])
    return summary.as_dict()


@task(trigger_rule=TriggerRule.NONE_FAILED)
def publish() -> dict[str, Any]:
    """Write the run's files and log the row accounting of every source."""
    import logging
    from datetime import date
    from pathlib import Path

    from lookback.paths import data_dir
    from lookback.pipeline import accounting_report, batch_id_for, publish_run

    context = get_current_context()
    params = context["params"]
    landing = Path(params["landing"])
    batch = batch_id_for(landing, params["batch"])
    as_of = date.fromisoformat(params["as_of"]) if params["as_of"] else context["logical_date"].date()
    out = Path(params["out"]) if params["out"] else data_dir() / "runs" / batch
    outputs = publish_run(landing, out, as_of, context["run_id"], batch, params["warehouse"])
    report, balanced = accounting_report(batch, params["warehouse"])
    logging.getLogger(__name__).info("row accounting:\n%s\nrun files in %s", report, outputs.out)
    if not balanced:
        raise RuntimeError(f"row accounting of batch {batch} does not add up")
    return {"out": str(outputs.out), "files": [path.name for path in outputs.files]}


@dag(
    dag_id="lookback_ingest",
    schedule=None,
    catchup=False,
    params=PARAMS,
    tags=["lookback", "ingest"],
    doc_md=__doc__,
    default_args={"owner": "lookback"},
)
def lookback_ingest() -> None:
    ingested = [ingest.override(task_id=f"ingest_{name}")(source=name) for name in source_names()]
    ingested >> link() >> publish()


lookback_ingest()
