"""The rectification DAG: reads what a county answered about its findings (逐项对账销号).

A county office puts its county workbook, with the answer columns filled in (整改措施, 责任人,
完成时限, 整改情况, 情况说明), or the province's inspectors their filled-in spot-check list
(抽样核查清单: 核查结果 per household), into its folder of the returns zone,
``returns/<office>/<any name>.xlsx``. The triggerer takes it (moving it into
``returns/<office>/reading/``) and starts this DAG, whose one task validates every answered
row and stores them all, or none: a row that is wrong (an unknown finding, another county's
finding, a deadline before the finding was opened, a published cell altered, …) fails the
task with every such row named by sheet and row number, and nothing is stored. A read file
goes to ``returns/<office>/read/``; a refused one to ``returns/<office>/refused/`` with
``<name>.errors.txt`` beside it saying why. A file read before is recognised and changes
nothing. The findings' rectification states are updated at once; the next run's files show
them. It can also be started by hand with the file and who returned it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, task

from lookback_dags import returned, task_defaults, warehouse_param

READ_DOC = """\
### rectification_read

Reads a county's returned workbook: every answered finding row is validated, then all are
stored (the county's answers, who returned them and when) and the findings' rectification
states updated — or none is stored.

**When it fails**

- *A row is wrong* (the message names every sheet and row, and why; the file is moved to
  `returns/<office>/refused/` with `<name>.errors.txt`): **not retried**. Send the reasons
  to the county; it corrects the workbook and returns it again.
- *The warehouse or the disk*: retried three times with growing delays; if it still fails,
  fix the warehouse and clear the task (the file waits in `reading/`).
"""


def _params() -> dict[str, Param]:
    return {
        "file": Param(
            None,
            type=["null", "string"],
            description="The returned workbook; default: the one whose return started the run.",
        ),
        "returned_by": Param(
            None, type=["null", "string"], description="Who returned it; default: the office's folder name."
        ),
        "warehouse": warehouse_param(),
    }


def _returned(context: dict[str, Any]) -> dict[str, Any]:
    """The payload of the return event that started this run ({}: started by hand)."""
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            payload = (event.extra or {}).get("payload")
            if isinstance(payload, dict) and payload.get("file"):
                return payload
    return {}


def _file_away(path: Path, folder: str, name: str) -> Path:
    """Move a taken return from ``reading/`` into its office's ``read/`` or ``refused/``."""
    target = path.parent.parent / folder / name
    target.parent.mkdir(exist_ok=True)
    shutil.move(path, target)
    return target


def _read(context: dict[str, Any]) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowFailException

    from lookback.errors import LookbackError
    from lookback.paths import inside_data_dir
    from lookback.reconcile.rectification import read_return
    from lookback.reconcile.sample import is_sample_list, read_sample_results
    from lookback.run import check_no_password, open_warehouse

    params, event = dict(context["params"]), _returned(context)
    name = params.get("file") or event.get("file")
    returned_by = params.get("returned_by") or event.get("returned_by")
    if not name or not returned_by:
        raise AirflowFailException(
            "no returned workbook: put it into returns/<office>/, or trigger rectification with "
            "{'file': '<path>', 'returned_by': '<office>'}"
        )
    try:
        # Whoever may trigger the DAG names the file: only one inside the data folder is read.
        path = inside_data_dir(str(name), "returned workbook (file)")
    except LookbackError as error:
        raise AirflowFailException(str(error)) from error
    taken = bool(event) and not params.get("file")  # moved into reading/ by the trigger: file it away after
    try:
        check_no_password(params.get("warehouse"), "the DAG run's param 'warehouse'")
        with open_warehouse(params.get("warehouse")) as warehouse:
            if is_sample_list(path):  # the province's inspectors' spot-check list
                results = read_sample_results(warehouse, path, str(returned_by))
                read = {"sample_id": results.sample_id, "county": results.county, "households": results.households}
            else:
                answers = read_return(warehouse, path, str(returned_by))
                read = {
                    "run_id": answers.run_id,
                    "county": answers.county,
                    "answers": answers.reports,
                    "already_read": answers.already_read,
                }
    except LookbackError as error:
        if taken:
            refused = _file_away(path, "refused", path.name)
            refused.with_name(refused.name + ".errors.txt").write_text(f"{error}\n", encoding="utf-8")
        raise AirflowFailException(str(error)) from error
    if taken:
        _file_away(path, "read", path.name)
    return {"file": event.get("name") or path.name, "returned_by": str(returned_by), **read}


with DAG(
    dag_id="rectification",
    schedule=[returned()],
    catchup=False,
    max_active_runs=1,  # one return at a time: answers to one finding are numbered in order
    params=_params(),
    tags=["lookback", "rectification"],
    default_args=task_defaults(),
    doc_md=__doc__,
    description="Read a county's returned workbook: what it did about each finding",
) as dag:

    @task(task_id="rectification_read", doc_md=READ_DOC)
    def read_return_task(**context: Any) -> dict[str, Any]:
        return _read(context)

    read_return_task()
