"""One ingest DAG per departmental source, generated from ``include/sources/*.yaml``.

``ingest_<source>`` reads the source's export of one batch exactly as delivered, accounts
for every row (accepted, skipped or quarantined with its reason), standardises the
accepted rows and stages them in the warehouse. It starts when the department's flag file
``<source>.ready`` appears beside the export in ``landing/<batch>/`` (the asset
``landing_<source>``, watched by the triggerer), or by hand with the batch folder. Its
second task, ``ingest_announce``, produces the asset ``staged_<source>`` with the batch id
as partition key and the row accounting in the event's ``extra``: the reconciliation DAG
starts once every mandatory source has been staged for the same batch.

The announcements run one at a time, in the one-slot pool ``staged_announcements``:
Airflow (3.3) files a partitioned event under the consumer's pending run for its
partition while holding a lock on the event's asset only, so two sources of one batch
announced at the same moment can each start a pending run of their own, neither of which
ever has every source, and the batch's reconciliation never starts. One at a time, each
announcement finds the pending run the one before it started.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task

from lookback_dags import ANNOUNCE_POOL, landing, sources, staged, task_defaults, warehouse_param

INGEST_DOC = """\
### ingest

Reads **{source}**'s export of the batch ({kind} source), accounts for every row and stages
the accepted rows, standardised, in the warehouse; then announces the staged batch
(asset `staged_{source}`, partition = batch id, row accounting in the event).

**When it fails**

- *A bad or missing file, an unreadable sheet, a wrong header* (the message names the
  file, the row and the column): the task is **not retried** — retrying cannot fix a file.
  Ask the department for a corrected export, put it in the batch folder and drop the flag
  `{source}.ready` again, or clear this task once the file is fixed.
- *The warehouse or the disk* (connection refused, disk full): retried three times with
  growing delays; if it still fails, fix the warehouse and clear the task.
{optional}"""

ANNOUNCE_DOC = """\
### ingest_announce

Announces **{source}**'s staged batch: the asset `staged_{source}`, partition = batch id,
the row accounting in the event's `extra` (from `ingest`'s result). Runs in the one-slot
pool `staged_announcements`, one announcement at a time, so that two sources of one batch
staged together start one reconciliation, not two pending halves of one.

**When it fails**

- *The metadata database* (it only records the event): retried three times with growing
  delays; if it still fails, clear this task: the rows are staged already.
"""

OPTIONAL_NOTE = (
    "- *Not delivered*: {source} is optional; when its export is not in the batch folder the task is "
    "**skipped**, and the look-back runs without it (the rules that need it are not applied).\n"
)


def _params() -> dict[str, Param]:
    return {
        "landing": Param(
            None,
            type=["null", "string"],
            description="The batch folder (landing/<batch>/); default: the folder whose flag file started the run.",
        ),
        "batch": Param(None, type=["null", "string"], description="Batch id; default: the folder's name."),
        "warehouse": warehouse_param(),
    }


def _ingest(source: str, context: dict[str, Any]) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from lookback.errors import LookbackError
    from lookback.locks import BatchBusyError
    from lookback.pipeline import ingest_one, open_warehouse
    from lookback_connections import airflow_connection_url
    from lookback_dags import current_run, hand_back_flags, holding_batch
    from lookback_triggers import mark_done

    hand_back_flags(context, source)
    landing = None
    try:
        run = current_run(context)
        landing = run.landing
        if run.landing is None:
            raise AirflowFailException(
                f"no batch folder: trigger ingest_{source} with {{'landing': 'landing/<batch>'}}, "
                f"or drop {source}.ready beside the export in landing/<batch>/"
            )
        # Sources of a batch are ingested side by side, but not while a run of it reads them:
        # wait for it, then fail and be retried (BatchBusyError is not the data's fault).
        with (
            open_warehouse(run.warehouse_url) as warehouse,
            holding_batch(context, warehouse, "ingest"),
        ):
            # A source read from a department's database reaches it through an Airflow connection.
            accounting = ingest_one(run, warehouse, source, connections=airflow_connection_url)
    except BatchBusyError:
        raise
    except LookbackError as error:
        # The batch's flag is handled (the next batch's may be taken): retrying cannot fix a file.
        if landing is not None:
            mark_done(landing, source)
        raise AirflowFailException(str(error)) from error
    if landing is not None:
        mark_done(landing, source)
    if accounting.status == "not_delivered":
        raise AirflowSkipException(f"{source} was not delivered in batch {run.batch} (optional source)")
    counts = {key: value for key, value in accounting.as_dict().items() if key != "file_sha256"}
    return {**counts, "batch": run.batch, "landing": str(run.landing)}


def _announce(source: str, staged_batch: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """The staged asset's event for the batch ``ingest`` staged, with its row accounting."""
    event = context["outlet_events"][staged(source)]
    event.extra = dict(staged_batch)
    event.add_partitions(str(staged_batch["batch"]))
    return {"batch": staged_batch["batch"], "source": source}


def ingest_dag(source: str, mandatory: bool) -> DAG:
    kind = "mandatory" if mandatory else "optional"
    with DAG(
        dag_id=f"ingest_{source}",
        schedule=[landing(source)],
        catchup=False,
        max_active_runs=1,  # one batch at a time per source: flags are taken oldest first
        params=_params(),
        tags=["lookback", "ingest", kind],
        default_args=task_defaults(),
        doc_md=__doc__,
        description=f"Read, account for and stage {source}'s export of a batch ({kind})",
    ) as dag:

        @task(
            task_id="ingest",
            doc_md=INGEST_DOC.format(source=source, kind=kind, optional="" if mandatory else OPTIONAL_NOTE),
        )
        def ingest(**context: Any) -> dict[str, Any]:
            return _ingest(source, context)

        @task(
            task_id="ingest_announce",
            outlets=[staged(source)],
            pool=ANNOUNCE_POOL,
            doc_md=ANNOUNCE_DOC.format(source=source),
        )
        def ingest_announce(**context: Any) -> dict[str, Any]:
            return _announce(source, context["ti"].xcom_pull(task_ids="ingest"), context)

        ingest() >> ingest_announce()
    return dag


for _source, _mandatory in sources().items():
    globals()[f"ingest_{_source}"] = ingest_dag(_source, _mandatory)
