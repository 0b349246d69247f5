"""What lookback's DAG files share: the assets that chain them, the run a task works on,
the task defaults (owner, retry policy, failure callback) and the alerts.

The assets, one pair per source:

- ``landing_<source>``: watched by :class:`lookback_triggers.LandingFlagTrigger`; an event
  means the department dropped ``<source>.ready`` beside its export in
  ``landing/<batch>/``; it starts ``ingest_<source>``.
- ``staged_<source>``: the source's rows of one batch staged in the warehouse; its events
  are partitioned by batch id and carry the row accounting in ``extra``. The
  reconciliation DAG runs once per batch when every mandatory source's staged asset has
  an event for that batch, so two batches arriving interleaved never mix.

And ``returned_workbooks``, watched by :class:`lookback_triggers.ReturnedWorkbookTrigger`:
an event means a county office put its answered workbook into ``returns/<office>/``; it
starts the ``rectification`` DAG.

Nothing here imports pandas, Great Expectations or the readers: DAG files are parsed often.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetWatcher, Param

from lookback.paths import data_dir
from lookback.sources import load_source_specs

if TYPE_CHECKING:
    from lookback.run import Run

log = logging.getLogger(__name__)

OWNER = "lookback"
# The one-slot pool the staged assets are announced in, one at a time (see dags/lookback_ingest.py).
ANNOUNCE_POOL = "staged_announcements"
# How often the landing flag trigger looks for flags, in seconds.
FLAG_POKE_SECONDS = 5.0
# A task that fails on I/O (a warehouse briefly unreachable, a full disk) is retried after
# 30 s, 60 s, 120 s; one that fails on its input or a quality gate raises
# AirflowFailException and is never retried: retrying cannot fix a file.
RETRIES = 3
RETRY_DELAY = timedelta(seconds=30)
RETRY_BACKOFF = 2.0
MAX_RETRY_DELAY = timedelta(minutes=10)
# How long a task waits for a batch another run holds before it fails (and is retried);
# one run of a batch at a time, see lookback.locks.
HOLD_WAIT_SECONDS = float(os.environ.get("LOOKBACK_HOLD_WAIT_SECONDS", "600"))


# The ``warehouse`` param of a DAG run: a URL without a password (a run's params are stored
# with it and shown to everyone who may read it; the password comes from the environment,
# $LOOKBACK_WAREHOUSE_URL, or an Airflow connection). The schema refuses one at trigger time.
WAREHOUSE_WITHOUT_PASSWORD = r"^(?![A-Za-z][A-Za-z0-9+.-]*://[^/?#@]*:[^/?#@]*@)"


def warehouse_param() -> Param:
    """The ``warehouse`` param the DAGs share: a SQLAlchemy URL with no password in it."""
    return Param(
        None,
        type=["null", "string"],
        pattern=WAREHOUSE_WITHOUT_PASSWORD,
        description="SQLAlchemy URL of the warehouse, without a password (that comes from $LOOKBACK_WAREHOUSE_URL "
        "or a connection); default: $LOOKBACK_WAREHOUSE_URL or the SQLite file.",
    )


def landing_root() -> Path:
    """The landing zone: one folder per batch (``$LOOKBACK_DATA_DIR/landing``)."""
    return data_dir() / "landing"


def sources() -> dict[str, bool]:
    """Every configured source and whether it is mandatory, in name order."""
    return {name: spec.required for name, spec in sorted(load_source_specs().items())}


def staged(source: str) -> Asset:
    """The asset of a source's rows staged in the warehouse (events partitioned by batch)."""
    return Asset(name=f"staged_{source}", uri=f"lookback://staging/{source}", group="staging")


def landing(source: str) -> Asset:
    """The asset whose events say a source's export has landed (with its flag file)."""
    from lookback_triggers import LandingFlagTrigger

    trigger = LandingFlagTrigger(landing=str(landing_root()), source=source, poke_interval=FLAG_POKE_SECONDS)
    return Asset(
        name=f"landing_{source}",
        uri=f"lookback://landing/{source}",
        group="landing",
        watchers=[AssetWatcher(name=f"landing_{source}_flag", trigger=trigger)],
    )


def returns_root() -> Path:
    """Where counties return their workbooks, a folder per office
    (``$LOOKBACK_DATA_DIR/returns/<office>/``)."""
    return data_dir() / "returns"


def returned() -> Asset:
    """The asset whose events say a county returned its workbook with its answers."""
    from lookback_triggers import ReturnedWorkbookTrigger

    trigger = ReturnedWorkbookTrigger(returns=str(returns_root()), poke_interval=FLAG_POKE_SECONDS)
    return Asset(
        name="returned_workbooks",
        uri="lookback://returns",
        group="rectification",
        watchers=[AssetWatcher(name="returned_workbook", trigger=trigger)],
    )


def task_defaults() -> dict[str, Any]:
    return {
        "owner": OWNER,
        "retries": RETRIES,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": RETRY_BACKOFF,
        "max_retry_delay": MAX_RETRY_DELAY,
        "on_failure_callback": on_failure,
    }


def _run_date(context: Any) -> date:
    """The run's date: its logical date, or (asset-triggered runs have none) when it ran."""
    logical = context.get("logical_date")
    if logical is not None:
        return logical.date()  # type: ignore[no-any-return]
    run_after = getattr(context.get("dag_run"), "run_after", None)
    return (run_after or datetime.now(UTC)).date()


def _landed(context: Any) -> dict[str, Any]:
    """The payload of the landing flag event that started this run ({}: started by hand)."""
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            payload = (event.extra or {}).get("payload")
            if isinstance(payload, dict) and payload.get("batch"):
                return payload
    return {}


def hand_back_flags(context: Any, source: str) -> list[str]:
    """Put back the landing flags of the batches this run does not ingest: Airflow gathers
    every event of an asset that arrived since the source's last run into one run, which
    ingests the first batch only; each other batch's flag, ``.taken`` again ``.ready``, fires
    a run of its own. Returns the batches handed back."""
    from lookback_triggers import FLAG, TAKEN

    payloads = [
        payload
        for events in (context.get("triggering_asset_events") or {}).values()
        for event in events
        if isinstance(payload := (event.extra or {}).get("payload"), dict) and payload.get("batch")
    ]
    if not payloads:
        return []
    root = landing_root().resolve()
    handed: list[str] = []
    for payload in payloads[1:]:
        folder = Path(str(payload.get("landing") or ""))
        if payload["batch"] == payloads[0]["batch"] or folder.resolve().parent != root:
            continue
        taken = folder / f"{source}{TAKEN}"
        try:
            taken.replace(folder / f"{source}{FLAG}")
        except FileNotFoundError:  # dropped again meanwhile, or already handed back
            continue
        handed.append(str(payload["batch"]))
    if handed:
        log.info(
            "%s: batch %s ingested now; flag(s) of %s handed back, each for a run of its own",
            source,
            payloads[0]["batch"],
            ", ".join(handed),
        )
    return handed


def current_run(context: Any) -> Run:
    """The run a task works on: the DAG run's params, completed by what started it (the
    landing flag's batch folder, or the partition key naming the batch)."""
    from lookback.run import Run

    params = dict(context["params"])
    landed = _landed(context)
    if not params.get("landing") and landed:
        params["landing"] = landed["landing"]
    partition = getattr(context.get("dag_run"), "partition_key", None)
    if partition:
        if params.get("batch") and params["batch"] != partition:
            raise ValueError(f"the run's batch {params['batch']!r} is not its partition {partition!r}")
        params["batch"] = partition
    return Run.from_params(params, _run_date(context))


def batch_of(context: Any) -> str:
    """The batch a DAG run is about, as far as it can be told without failing ('?')."""
    try:
        return current_run(context).batch
    except Exception:  # the callback must never fail on a run whose params are broken
        return "?"


def run_holder(context: Any, mode: str = "run") -> Any:
    """The holder of the batch for this DAG run: every task of the run shares it."""
    from lookback.locks import Holder

    ti = context.get("task_instance") or context.get("ti")
    dag_id = getattr(ti, "dag_id", None) or context["dag"].dag_id
    run_id = getattr(ti, "run_id", None) or context["dag_run"].run_id
    return Holder.airflow_run(dag_id, run_id, "ingest" if mode == "ingest" else "run")


def hold_batch(context: Any, warehouse: Any, mode: str = "run", wait: float | None = None) -> None:
    """Hold the run's batch for this DAG run (again: nothing changes); while another run
    holds it, wait up to ``wait`` seconds (default ``HOLD_WAIT_SECONDS``), then raise
    ``BatchBusyError``, which the task's retries try again."""
    from lookback.locks import acquire

    waiting = HOLD_WAIT_SECONDS if wait is None else wait
    acquire(warehouse, current_run(context).batch, run_holder(context, mode), waiting)


def holding_batch(context: Any, warehouse: Any, mode: str = "run") -> AbstractContextManager[None]:
    """Hold the batch for the block (waiting as :func:`hold_batch` does); given back however it ends."""
    from lookback.locks import holding

    return holding(warehouse, current_run(context).batch, run_holder(context, mode), HOLD_WAIT_SECONDS)


def give_back_batch(context: Any) -> None:
    """Give back the DAG run's hold on its batch (its last task, or its failure callback,
    whose context may lack the run's params: then the default warehouse's holds of the run)."""
    from lookback.locks import Holder, release_owner
    from lookback.run import open_warehouse

    try:
        url = current_run(context).warehouse_url if "params" in context else None
        dag_run = context.get("dag_run")
        run_id = getattr(dag_run, "run_id", None) or context["run_id"]
        holder = Holder.airflow_run(context["dag"].dag_id, run_id)
        with open_warehouse(url) as warehouse:
            released = release_owner(warehouse, holder)
        log.info("%s gave back %d hold(s)", holder.label, released)
    except Exception as error:  # a callback must not fail; lookback unlock clears what stays
        log.warning("could not give back the batch's hold: %s", error)


def on_failure(context: Any) -> None:
    """A task failed: say which batch, which stage and why in the task log, and append it to
    ``$LOOKBACK_DATA_DIR/alerts/failures.jsonl`` (what the ops view lists)."""
    from lookback.standardise.identity import mask_identity_numbers_in

    ti = context.get("task_instance") or context.get("ti")
    task_id = getattr(ti, "task_id", "?")
    reason = mask_identity_numbers_in(str(context.get("exception") or "unknown"))
    alert = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dag_id": getattr(ti, "dag_id", "?"),
        "run_id": getattr(ti, "run_id", "?"),
        "task_id": task_id,
        "map_index": getattr(ti, "map_index", -1),
        "batch": batch_of(context),
        "stage": task_id.split("_", 1)[0],
        "reason": reason,
    }
    log.error("lookback: batch %s, stage %s (%s) failed: %s", alert["batch"], alert["stage"], task_id, reason)
    folder = data_dir() / "alerts"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "failures.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps(alert, ensure_ascii=False) + "\n")
    except OSError as error:  # the alert is in the log whatever happens to the file
        log.warning("could not record the failure in %s: %s", folder, error)


async def deadline_missed(context: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """The reconciliation of a batch has not finished within its deadline (run by the
    triggerer): log it and append it to the alerts, like a failure."""
    run = (context or {}).get("dag_run") or {}
    conf = run.get("conf") or {}
    alert = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dag_id": run.get("dag_id", "?"),
        "run_id": run.get("dag_run_id") or run.get("run_id", "?"),
        "task_id": None,
        "map_index": -1,
        "batch": run.get("partition_key") or conf.get("batch") or "?",
        "stage": "deadline",
        "reason": f"not finished within {kwargs.get('within', 'its deadline')} of being queued",
    }
    log.error("lookback: batch %s, reconciliation %s missed its deadline", alert["batch"], alert["run_id"])
    folder = data_dir() / "alerts"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "failures.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps(alert, ensure_ascii=False) + "\n")
