"""The reconciliation of one batch: validate → link → reconcile → release → publish.

It starts by itself once every mandatory source has been staged for the same batch (the
assets ``staged_<source>``, partitioned by batch id: two batches arriving interleaved
each get their own run), or by hand with the batch id. The optional source (hukou's
deaths) joins if it has been staged within the grace period; the run says whether it did.

- ``ingest_complete`` checks the batch is complete and waits for the optional sources;
- ``validate_standardise`` is the quality gate of the staged rows (Great Expectations);
- ``link_prepare`` does the province-wide part of the linkage (the identity-number pass, the
  match weights and name frequencies, the candidate pairs, also those that cross counties);
  ``link_county`` scores one county's candidate pairs, mapped over the counties in the
  ``cpu_heavy`` pool; ``link_merge`` decides every pair (the units of rows that depend on
  each other join up across counties), gives person and household keys and writes the links;
- ``validate_link`` is the quality gate of the links;
- ``reconcile_prepare``, ``reconcile_county`` (mapped) and ``reconcile_finish`` apply the
  look-back rules, track every finding across runs, and build the visit roster and the
  census extract;
- ``validate_publish`` is the quality gate of the census extract;
- ``approve_release`` waits for a person of the statistics bureau to approve the release
  of the census extract (Airflow UI → Required Actions); ``release`` records the approval;
- ``publish`` writes the run's files: with the census extract when approved, without it
  (and saying so) when rejected.

Only counts pass between tasks: the rows themselves are in the warehouse.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import (
    DAG,
    AssetAll,
    Param,
    PartitionedAssetTimetable,
    PokeReturnValue,
    TriggerRule,
    get_current_context,
    task,
)
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

from lookback_dags import current_run, give_back_batch, hold_batch, sources, staged, task_defaults, warehouse_param
from lookback_operators import ValidateOperator

log = logging.getLogger(__name__)

# How long a reconciliation may take from being queued before ops are alerted.
DEADLINE = timedelta(hours=int(os.environ.get("LOOKBACK_RECONCILE_DEADLINE_HOURS", "4")))
# Who may approve the release of a census extract (Airflow user names).
APPROVERS = [name for name in os.environ.get("LOOKBACK_RELEASE_APPROVERS", "bureau").split(",") if name]
# Counties per task are chosen so that the mapped tasks stay under [core] max_map_length.
MAX_COUNTY_TASKS = int(os.environ.get("AIRFLOW__CORE__MAX_MAP_LENGTH", "1024"))

PARAMS = {
    "batch": Param(
        None,
        type=["null", "string"],
        description="Batch id (by hand; a run started by the staged sources takes its partition's batch).",
    ),
    "landing": Param(None, type=["null", "string"], description="The batch folder (landing/<batch>/), for the record."),
    "as_of": Param(
        None,
        type=["null", "string"],
        format="date",
        description="Reference date of the look-back (YYYY-MM-DD); default: the day the run started.",
    ),
    "run_id": Param(
        None,
        type=["null", "string"],
        description="Look-back run id; default: the batch id (running a batch again replaces its run).",
    ),
    "out": Param(None, type=["null", "string"], description="Folder for the run's files; default: data/runs/<batch>."),
    "warehouse": warehouse_param(),
    "optional_grace_minutes": Param(
        int(os.environ.get("LOOKBACK_OPTIONAL_GRACE_MINUTES", "30")),
        type="integer",
        minimum=0,
        description="How long to wait for an optional source (hukou) not yet staged, from the run's start.",
    ),
}

FAILS_ON_INPUT = """
**When it fails**: the message says why. A failure of the data (a quality gate, a batch
that cannot be linked) is **not retried**: look at the message and the Data Docs, fix the
delivery upstream, and trigger the batch again. A failure of the warehouse or the disk is
retried three times with growing delays; if it still fails, fix the warehouse and clear
the task.
"""

DOCS = {
    "ingest_complete": """### ingest_complete
Checks that every mandatory source is staged for this batch and waits (rescheduling, not
holding a worker) for the optional sources up to `optional_grace_minutes` after the run
started. Then it holds the batch for this run (`lookback holds` lists the holds): while
another run of the same batch holds it, it waits, poking again; the run's last task, or
its failure, gives it back. Returns which optional sources joined; the look-back applies the rules needing a
missing one to nobody and says so.

**When it fails**: a mandatory source has no staged rows for this batch (a run started by
hand too early, or its ingest failed): run `ingest_<source>` for the batch, then clear this task.""",
    "link_prepare": "### link_prepare\nThe province-wide part of the linkage, computed once: the identity-number "
    "pass, the match weights and name-frequency tables, the candidate pairs (also across counties: a person "
    "who moved still links). Returns the county tasks." + FAILS_ON_INPUT,
    "link_county": "### link_county\nScores one county's candidate pairs (mapped over the "
    "counties, in the `cpu_heavy` pool; the map index shows the county's code and name)." + FAILS_ON_INPUT,
    "link_merge": "### link_merge\nGathers every county's scores, decides every pair, gives person and household keys "
    "(stable across batches) and writes the links and the pairs left for review; then removes the link plan and "
    "the county parts, which hold identity numbers (to score a county again, clear from `link_prepare`)."
    + FAILS_ON_INPUT,
    "reconcile_prepare": "### reconcile_prepare\nPrepares the linked batch for the look-back rules and "
    "registers the look-back run." + FAILS_ON_INPUT,
    "reconcile_county": "### reconcile_county\nApplies every look-back rule to one county's persons "
    "(mapped over the counties, `cpu_heavy` pool)." + FAILS_ON_INPUT,
    "reconcile_finish": "### reconcile_finish\nTracks each finding from open to resolved across runs, "
    "builds the visit roster and the census extract." + FAILS_ON_INPUT,
    "approve_release": """### approve_release
A person of the statistics bureau reads the row accounting, the quality result and the
findings, and approves or rejects the release of the census extract (Airflow UI → Browse →
Required Actions; users with the role *user* or above among the assigned approvers).
**Approve** releases it with the run's files; **Reject** publishes everything else and
withholds the extract. Unanswered for 7 days counts as Reject.""",
    "release": "### release\nRecords that the release was approved (and by whom). Skipped when it was rejected.",
    "publish": """### publish
Writes the run's files all at once (findings, visit roster, county workbooks, accounting,
quality results, Data Docs, manifest) and, when `release` ran, the census extract; when the
release was rejected the summary and manifest say the extract was withheld.

**When it fails**: the row accounting does not add up, or the run folder cannot be written
(disk): the message says which. Nothing half-written is left; clear the task once fixed.""",
}


class ReleaseApprovalOperator(ApprovalOperator):
    """The approval of a census extract's release; its body (Markdown) is the run's row
    accounting, quality result and findings, read from the warehouse when it starts."""

    def execute(self, context: Any) -> Any:
        from lookback.pipeline import open_warehouse, release_summary

        run = current_run(context)
        with open_warehouse(run.warehouse_url) as warehouse:
            hold_batch(context, warehouse)
            self.body = release_summary(run, warehouse)
        self.subject = f"Release the census extract of batch {run.batch} (look-back {run.run_id})?"
        return super().execute(context)


def _guarded(call: Any) -> Any:
    """Run a stage; a failure of the data fails the task without retrying (a batch held by
    another run is retried: it will be given back)."""
    from airflow.sdk.exceptions import AirflowFailException

    from lookback.errors import LookbackError
    from lookback.locks import BatchBusyError

    try:
        return call()
    except BatchBusyError:
        raise
    except (LookbackError, ValueError) as error:
        raise AirflowFailException(str(error)) from error


def _with_warehouse(stage: Any, *args: Any) -> Any:
    """Run a stage on the run's batch, which this DAG run holds (taken again if it was given
    back: a cleared task of a failed run); a batch another run holds is waited for, then the
    task fails and is retried."""
    from lookback.pipeline import open_warehouse

    context = get_current_context()
    run = current_run(context)

    def call() -> Any:
        with open_warehouse(run.warehouse_url) as warehouse:
            hold_batch(context, warehouse)
            return stage(run, warehouse, *args)

    return _guarded(call)


@task.sensor(
    task_id="ingest_complete",
    poke_interval=30,
    mode="reschedule",
    timeout=24 * 3600,
    retries=0,
    doc_md=DOCS["ingest_complete"],
)
def ingest_complete() -> PokeReturnValue:
    from datetime import UTC, datetime

    from airflow.sdk.exceptions import AirflowFailException

    from lookback.pipeline import open_warehouse, stored_accounting

    context = get_current_context()
    run = current_run(context)
    with open_warehouse(run.warehouse_url) as warehouse:
        staged_now = {item.source for item in stored_accounting(warehouse, run.batch) if item.status == "ingested"}
    wanted = sources()
    missing = sorted(name for name, mandatory in wanted.items() if mandatory and name not in staged_now)
    if missing:
        raise AirflowFailException(f"batch {run.batch}: mandatory source(s) not staged: {', '.join(missing)}")
    optional = sorted(name for name, mandatory in wanted.items() if not mandatory)
    waiting = [name for name in optional if name not in staged_now]
    started = getattr(context["dag_run"], "start_date", None) or datetime.now(UTC)
    grace = timedelta(minutes=int(context["params"]["optional_grace_minutes"]))
    if waiting and datetime.now(UTC) - started < grace:
        return PokeReturnValue(is_done=False)
    from lookback.locks import BatchBusyError

    try:
        with open_warehouse(run.warehouse_url) as warehouse:
            hold_batch(context, warehouse, wait=0)
    except BatchBusyError as busy:  # another run of the batch: look again at the next poke
        log.info("%s", busy)
        return PokeReturnValue(is_done=False)
    joined = {name: name in staged_now for name in optional}
    for name, came in joined.items():
        log.info(
            "optional source %s %s batch %s",
            name,
            "joined" if came else f"had not been staged within {grace} for",
            run.batch,
        )
    return PokeReturnValue(is_done=True, xcom_value={"batch": run.batch, "optional_joined": joined})


def _prepare(stage: str) -> Any:
    """``<stage>_prepare``: the stage's province-wide part; returns the county tasks to map."""

    @task(task_id=f"{stage}_prepare", doc_md=DOCS[f"{stage}_prepare"])
    def prepare() -> list[dict[str, Any]]:
        from lookback import pipeline

        _with_warehouse(getattr(pipeline, f"{stage}_prepare"))
        groups: list[dict[str, Any]] = _with_warehouse(pipeline.county_groups, MAX_COUNTY_TASKS)
        return groups

    return prepare


def _county(stage: str) -> Any:
    """``<stage>_county``: the stage's work for one group of counties, mapped over the groups."""

    @task(
        task_id=f"{stage}_county",
        pool="cpu_heavy",
        queue="cpu_heavy",
        map_index_template="{{ county_label }}",
        doc_md=DOCS[f"{stage}_county"],
    )
    def county(group: dict[str, Any]) -> dict[str, Any]:
        from lookback import pipeline

        get_current_context()["county_label"] = group["label"]  # type: ignore[typeddict-unknown-key]
        result: dict[str, Any] = _with_warehouse(getattr(pipeline, f"{stage}_county"), group["counties"])
        return result

    return county


link_prepare, link_county = _prepare("link"), _county("link")
reconcile_prepare, reconcile_county = _prepare("reconcile"), _county("reconcile")


@task(task_id="link_merge", doc_md=DOCS["link_merge"])
def link_merge() -> dict[str, Any]:
    from lookback import pipeline

    summary: dict[str, Any] = _with_warehouse(pipeline.link_merge).as_dict()
    return summary


@task(task_id="reconcile_finish", doc_md=DOCS["reconcile_finish"])
def reconcile_finish() -> dict[str, Any]:
    from lookback import pipeline

    summary = _with_warehouse(pipeline.reconcile_finish)
    return {"run_id": summary.run_id, "findings": sum(summary.per_rule.values()), "lifecycle": summary.lifecycle}


@task(task_id="release", retries=0, doc_md=DOCS["release"])
def release() -> dict[str, Any]:
    context = get_current_context()
    # The approval's answer names who gave it; an approval marked as given (dag.test) has none.
    user = (context["ti"].xcom_pull(task_ids="approve_release") or {}).get("responded_by_user") or {}
    by = str(user.get("name") or user.get("id") or "marked approved")
    log.info("the census extract of batch %s is released (%s)", current_run(context).batch, by)
    return {"released": True, "by": by}


@task(task_id="publish", trigger_rule=TriggerRule.NONE_FAILED, doc_md=DOCS["publish"])
def publish() -> dict[str, Any]:
    from lookback.pipeline import accounting_report, open_warehouse
    from lookback.pipeline import publish as publish_stage
    from lookback.report import format_look_back

    context = get_current_context()
    run = current_run(context)
    released = context["ti"].xcom_pull(task_ids="release")
    withheld = None if released else "the release was not approved (rejected in approve_release)"

    def call() -> Any:
        with open_warehouse(run.warehouse_url) as warehouse:
            hold_batch(context, warehouse)
            return publish_stage(run, warehouse, withheld), accounting_report(warehouse, run.batch)

    outputs, (report, balanced) = _guarded(call)
    give_back_batch(context)
    log.info("row accounting:\n%s\nrun files in %s", report, outputs.out)
    if outputs.summary.get("look_back"):
        log.info("%s", format_look_back(outputs.summary["look_back"]))
    if withheld:
        log.warning("census extract of batch %s NOT released: %s", run.batch, withheld)
    if not balanced:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"row accounting of batch {run.batch} does not add up")
    return {"out": str(outputs.out), "files": len(outputs.files), "census_extract_released": withheld is None}


mandatory = [staged(name) for name, required in sources().items() if required]

with DAG(
    dag_id="reconcile",
    schedule=PartitionedAssetTimetable(assets=AssetAll(*mandatory)),
    catchup=False,
    params=PARAMS,
    tags=["lookback", "validate", "link", "reconcile", "publish"],
    default_args=task_defaults(),
    on_failure_callback=give_back_batch,
    doc_md=__doc__,
    description="Validate, link, look back, release and publish one batch",
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=DEADLINE,
        callback=AsyncCallback("lookback_dags.deadline_missed", kwargs={"within": str(DEADLINE)}),
    ),
) as reconcile:
    complete = ingest_complete()
    standardised = ValidateOperator(
        task_id="validate_standardise",
        stage="standardise",
        doc_md="### validate_standardise\nThe quality gate of the staged rows (suites in `expectations/`)."
        + FAILS_ON_INPUT,
    )
    link_groups = link_prepare()
    linked = link_merge()
    link_gate = ValidateOperator(
        task_id="validate_link",
        stage="link",
        doc_md="### validate_link\nThe quality gate of the links." + FAILS_ON_INPUT,
    )
    reconcile_groups = reconcile_prepare()
    finished = reconcile_finish()
    census_gate = ValidateOperator(
        task_id="validate_publish",
        stage="publish",
        doc_md="### validate_publish\nThe quality gate of the census extract." + FAILS_ON_INPUT,
    )
    approval = ReleaseApprovalOperator(
        task_id="approve_release",
        subject="Release the census extract?",
        body="(filled in when the task starts)",
        defaults="Reject",
        response_timeout=timedelta(days=7),
        assigned_users=[{"id": name, "name": name} for name in APPROVERS],
        fail_on_reject=False,
        retries=0,
        doc_md=DOCS["approve_release"],
    )
    released = release()
    published = publish()
    complete >> standardised >> link_groups
    link_county.expand(group=link_groups) >> linked >> link_gate >> reconcile_groups
    reconcile_county.expand(group=reconcile_groups) >> finished >> census_gate >> approval >> released >> published
