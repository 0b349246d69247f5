"""The shared test stack: it comes up, parses the project's DAGs and lists them through the
REST API, and applies the users' roles (ops, viewer: reads only; clerk, user: triggers but
approves nothing; bureau, user and the release's approver).

One module-scoped run of two batches through the ingest DAGs and the reconciliation up to
publish (:func:`published`) serves every test below that needs a pipeline's traces: the
batches' flow, who may do what to those runs, and where identity numbers may and may not be
(only in the census extract, written for its owner alone).
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scripts import airflow_stack as stack_script
from tests.airflow_stack import ACCEPTED_CONF, PROJECT_DAG_IDS, AirflowClient, AirflowStack
from tests.personal_data import Hit, files_under, report, scan_bytes, scan_file, scan_value

pytestmark = [pytest.mark.airflow_stack, pytest.mark.postgres]

APPROVAL_SETTLE_SECONDS = 10
SOURCES = ("registry", "dibao", "housing", "insurance", "hukou")
FILE_PREFIX = {
    "registry": "registry_members",
    "dibao": "dibao_roster",
    "housing": "housing_safety",
    "insurance": "insurance_enrolment",
    "hukou": "hukou_cancellations",
}
BATCHES = ("b-one", "b-two")  # b-one's release is approved, b-two's rejected
# Interleaved: b-one's registry, b-two's registry and dibao, b-one's dibao, and so on.
LANDING_ORDER = (
    ("b-one", "registry"),
    ("b-two", "registry"),
    ("b-two", "dibao"),
    ("b-one", "dibao"),
    ("b-one", "housing"),
    ("b-two", "housing"),
    ("b-two", "insurance"),  # b-two has every mandatory source before b-one does
    ("b-one", "insurance"),
    ("b-one", "hukou"),
    ("b-two", "hukou"),
)
OPS_VIEW = "/lookback"
CRAWL_LIMIT = 600  # pages of the ops view fetched at most (a loop in its links must not hang the test)


def test_stack_lists_the_project_dags(airflow_stack: AirflowStack) -> None:
    ops = airflow_stack.client("ops")
    for dag_id in PROJECT_DAG_IDS:
        ops.wait_for_dag(dag_id)
    assert set(PROJECT_DAG_IDS) <= set(ops.dag_ids())
    health = ops.wait_for_health(("metadatabase", "scheduler", "dag_processor", "triggerer"))
    assert health["scheduler"]["latest_scheduler_heartbeat"] is not None


def test_only_the_scheduler_preloads_the_task_code(airflow_stack: AirflowStack) -> None:
    """Its LocalExecutor's workers fork the tasks (lookback.preload); the others run none."""
    assert airflow_stack.processes_saying("lookback: task code preloaded in") == {"scheduler"}


def test_viewer_reads_but_cannot_trigger_and_user_can(airflow_stack: AirflowStack) -> None:
    dag_id = PROJECT_DAG_IDS[0]
    ops = airflow_stack.client("ops")
    ops.wait_for_dag(dag_id)
    assert ops.request("GET", f"/api/v2/dags/{dag_id}").expect(200)["dag_id"] == dag_id
    assert ops.request("GET", "/api/v2/dags", authenticated=False).status == 401

    refused = ops.trigger_request(dag_id, ACCEPTED_CONF[dag_id])
    assert refused.status == 403, refused
    assert ops.unpause_request(dag_id).status == 403

    # The DAG stays paused, so the run stays queued: this checks the role, not the pipeline.
    bureau = airflow_stack.client("bureau")
    run_id = bureau.trigger(dag_id, ACCEPTED_CONF[dag_id])
    run = bureau.dag_run(dag_id, run_id)
    assert run["dag_id"] == dag_id
    assert run["state"] == "queued"
    listed = ops.request("GET", f"/api/v2/dags/{dag_id}/dagRuns").expect(200)["dag_runs"]
    assert run_id in {listed_run["dag_run_id"] for listed_run in listed}
    discard_run(bureau, dag_id, run_id)


def discard_run(client: AirflowClient, dag_id: str, run_id: str) -> None:
    """Delete a run a test queued on a paused DAG, so that it never runs once the DAG is
    unpaused: a queued ingest run would hold its DAG (one active run at a time) while the
    batches' flags land, and their events would be taken together by one run."""
    path = f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}"
    client.request("DELETE", path).expect(204)
    assert client.request("GET", path).status == 404


def test_a_warehouse_url_with_a_password_is_refused_at_trigger(airflow_stack: AirflowStack) -> None:
    """A password in a DAG run's conf would be stored and shown with the run: the DAGs'
    ``warehouse`` param refuses one (the password comes from the environment or a
    connection). Airflow's refusal quotes the conf back to the one who sent it; the run is
    not made, and neither the audit log nor the API server's log keeps the password."""
    bureau = airflow_stack.client("bureau")
    secret = uuid.uuid4().hex
    for dag_id in ("reconcile", "ingest_registry"):
        bureau.wait_for_dag(dag_id)
        before = len(bureau.dag_runs(dag_id))
        conf = {**ACCEPTED_CONF[dag_id], "warehouse": f"postgresql+psycopg://lookback:{secret}@db.example/warehouse"}
        refused = bureau.trigger_request(dag_id, conf)
        assert refused.status == 400 and "warehouse" in json.dumps(refused.body), refused
        runs = bureau.dag_runs(dag_id)
        assert len(runs) == before and all(secret not in json.dumps(run.get("conf")) for run in runs)
        # The same conf with the warehouse's URL as the stack has it (no password) is accepted.
        accepted = {**ACCEPTED_CONF[dag_id], "warehouse": airflow_stack.warehouse_url}
        discard_run(bureau, dag_id, bureau.trigger(dag_id, accepted))  # paused: queued, then deleted
    audit = [entry for page in _pages(bureau, "/api/v2/eventLogs", "event_logs") for entry in page["event_logs"]]
    triggers = [entry for entry in audit if entry["event"] == "trigger_dag_run"]
    assert len(triggers) >= 4 and secret not in json.dumps(audit)  # the refused triggers are logged, masked
    logs = [stack_script.log_file(airflow_stack.settings, process) for process in airflow_stack.settings.processes]
    assert all(secret not in log.read_text(encoding="utf-8", errors="replace") for log in logs)


@dataclass
class Published:
    """Two batches run through the stack: their reconciliation runs, and what the users who
    may not approve were answered while b-one's release waited."""

    stack: AirflowStack
    runs: dict[str, dict[str, Any]]
    refused_approvals: dict[str, int] = field(default_factory=dict)
    state_after_refusals: str | None = None

    def run_id(self, batch: str) -> str:
        return str(self.runs[batch]["dag_run_id"])


@pytest.fixture(scope="module")
def published(airflow_stack: AirflowStack, tmp_path_factory: pytest.TempPathFactory) -> Published:
    """Two batches land interleaved, source by source, each export followed by its flag: the
    triggerer starts each source's ingest DAG, the staged assets' partitions start one
    reconciliation per batch. At b-one's approval ops (viewer) and clerk (user, no approver)
    try to approve; then the bureau approves b-one and rejects b-two, and both publish."""
    from lookback.generate.batch import generate_batch

    exports = tmp_path_factory.mktemp("exports")
    landing = airflow_stack.data_dir / "landing"
    for seed, batch in enumerate(BATCHES, start=1):
        generate_batch(exports / batch, persons=120, seed=seed, noise="typical")
    bureau, ops, clerk = (airflow_stack.client(user) for user in ("bureau", "ops", "clerk"))
    for dag_id in PROJECT_DAG_IDS:
        bureau.wait_for_dag(dag_id)
        bureau.unpause(dag_id)

    # Landed without waiting for anything: each source's flags are taken one at a time, in
    # the order they landed, each once the ingest of the one before has handled it.
    for batch, source in LANDING_ORDER:
        folder = landing / batch
        folder.mkdir(parents=True, exist_ok=True)
        for export in (exports / batch).glob(f"{FILE_PREFIX[source]}*"):
            shutil.copy(export, folder / export.name)
        (folder / f"{source}.ready").touch()
        time.sleep(0.5)

    def reconciliations() -> dict[str, dict[str, Any]] | None:
        runs = {run["partition_key"]: run for run in bureau.dag_runs("reconcile") if run["partition_key"] in BATCHES}
        return runs if set(runs) >= set(BATCHES) else None

    found = Published(airflow_stack, airflow_stack.wait_until(reconciliations, "no reconciliation per batch", 600))
    one, two = found.run_id("b-one"), found.run_id("b-two")
    for batch in BATCHES:
        bureau.wait_for_task("reconcile", found.run_id(batch), "approve_release", "awaiting_input", timeout=900)
    # Answered within a second of the task pausing, Airflow 3.3.2's scheduler can take the
    # executor's late report of the paused attempt for the resumed one and fail it; a person
    # never answers that fast, and the test waits as long.
    time.sleep(APPROVAL_SETTLE_SECONDS)
    for user, client in (("ops", ops), ("clerk", clerk)):
        found.refused_approvals[user] = client.answer_approval("reconcile", one, "approve_release", ["Approve"]).status
    time.sleep(2)
    task = bureau.request("GET", f"/api/v2/dags/reconcile/dagRuns/{_quote(one)}/taskInstances/approve_release")
    found.state_after_refusals = task.expect(200)["state"]
    bureau.answer_approval("reconcile", one, "approve_release", ["Approve"]).expect(200)
    bureau.answer_approval("reconcile", two, "approve_release", ["Reject"]).expect(200)
    bureau.wait_for_run("reconcile", one, "success", timeout=600)
    bureau.wait_for_run("reconcile", two, "success", timeout=600)
    return found


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


@pytest.mark.slow
def test_landed_flags_start_the_ingests_and_each_batch_gets_its_own_reconciliation(published: Published) -> None:
    """One reconciliation per batch, never of mixed events; every flag taken once; the
    approved batch publishes its census extract, the rejected one everything else."""
    stack, runs = published.stack, published.runs
    bureau = stack.client("bureau")
    landing = stack.data_dir / "landing"
    assert set(runs) == set(BATCHES)  # one run per batch, none of mixed events
    for batch in BATCHES:
        assert runs[batch]["run_type"] == "asset_triggered"
        complete = bureau.xcom("reconcile", published.run_id(batch), "ingest_complete")
        assert complete["batch"] == batch  # the partition's batch, not the other's
    assert sorted(path.name for path in landing.glob("*/*.ready")) == []
    assert len([path for batch in BATCHES for path in (landing / batch).glob("*.done")]) == len(SOURCES) * 2
    for source in SOURCES:
        # Each source's ingest ran once per batch (other modules sharing the stack may add runs of their own).
        states = [run["state"] for run in bureau.dag_runs(f"ingest_{source}") if run["run_type"] == "asset_triggered"]
        assert len(states) >= len(BATCHES) and set(states) == {"success"}, (source, states)
    one, two = published.run_id("b-one"), published.run_id("b-two")
    assert bureau.task_states("reconcile", one)["release"] == "success"
    assert bureau.task_states("reconcile", two)["release"] == "skipped"
    out = stack.data_dir / "runs"
    released = json.loads((out / "b-one" / "manifest.json").read_text(encoding="utf-8"))["census_extract"]
    withheld = json.loads((out / "b-two" / "manifest.json").read_text(encoding="utf-8"))["census_extract"]
    assert released["released"] is True and released["persons"] > 0
    assert withheld["released"] is False and withheld["files"] == [] and "rejected" in withheld["withheld"]
    assert not (out / "b-two" / "census_extract").exists()
    assert list((out / "b-two" / "counties").glob("*.xlsx"))  # the county files went out all the same


# Access ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_only_the_bureau_approves_a_release(published: Published) -> None:
    """ops (viewer) and clerk (user, not an assigned approver) are refused; the release waits
    for the bureau, whose answer releases it."""
    assert published.refused_approvals == {"ops": 403, "clerk": 403}
    assert published.state_after_refusals == "awaiting_input"
    bureau = published.stack.client("bureau")
    answer = bureau.xcom("reconcile", published.run_id("b-one"), "approve_release")
    assert answer["chosen_options"] == ["Approve"]
    assert (answer.get("responded_by_user") or {}).get("id") == "bureau"


@pytest.mark.slow
def test_anonymous_requests_are_refused(published: Published) -> None:
    client = published.stack.client("ops")
    run_id = _quote(published.run_id("b-one"))
    paths = [
        "/api/v2/dags",
        "/api/v2/dags/reconcile/dagRuns",
        f"/api/v2/dags/reconcile/dagRuns/{run_id}/taskInstances",
        f"/api/v2/dags/reconcile/dagRuns/{run_id}/taskInstances/reconcile_finish/xcomEntries/return_value",
        "/api/v2/assets/events",
        "/api/v2/eventLogs",
        f"{OPS_VIEW}/",
        f"{OPS_VIEW}/api/summary",
        f"{OPS_VIEW}/runs/b-one",
        f"{OPS_VIEW}/runs/b-one/files/quality.html",
        f"{OPS_VIEW}/dag-runs/reconcile/{run_id}",
    ]
    for path in paths:
        assert client.request("GET", path, authenticated=False).status == 401, path
        assert client.request("GET", path).status == 200, path  # the same path for a user who may read it
    refused = client.request("POST", "/api/v2/dags/reconcile/dagRuns", {"logical_date": None}, authenticated=False)
    assert refused.status == 401


@pytest.mark.slow
def test_ops_reads_but_changes_nothing(published: Published) -> None:
    stack = published.stack
    ops, bureau = stack.client("ops"), stack.client("bureau")
    run_id = published.run_id("b-one")
    run_path = f"/api/v2/dags/reconcile/dagRuns/{_quote(run_id)}"
    clear = {"dry_run": False, "dag_run_id": run_id, "task_ids": ["publish"], "only_failed": False}
    attempts: dict[str, tuple[str, str, dict[str, Any] | None]] = {
        "trigger": ("POST", "/api/v2/dags/reconcile/dagRuns", {"logical_date": None, "conf": {"batch": "b-one"}}),
        "clear a task": ("POST", "/api/v2/dags/reconcile/clearTaskInstances", clear),
        "mark the run failed": ("PATCH", run_path, {"state": "failed"}),
        "mark a task failed": ("PATCH", f"{run_path}/taskInstances/publish", {"new_state": "failed"}),
        "delete the run": ("DELETE", run_path, None),
        "delete the DAG": ("DELETE", "/api/v2/dags/reconcile", None),
        "pause the DAG": ("PATCH", "/api/v2/dags/reconcile", {"is_paused": True}),
        "approve a release": ("PATCH", f"{run_path}/taskInstances/approve_release/-1/hitlDetails", {
            "chosen_options": ["Approve"], "params_input": {}}),
    }  # fmt: skip
    for what, (method, path, body) in attempts.items():
        answer = ops.request(method, path, body)
        assert answer.status == 403, (what, answer)
    # What ops may do: read the run, its tasks and the ops view.
    assert ops.request("GET", run_path).expect(200)["state"] == "success"
    assert ops.request("GET", f"{run_path}/taskInstances").expect(200)["total_entries"] > 0
    assert ops.request("GET", f"{OPS_VIEW}/api/summary").status == 200
    # Nothing changed; the refused clear is a valid request (the bureau's dry run of it answers).
    assert bureau.dag_run("reconcile", run_id)["state"] == "success"
    assert bureau.task_states("reconcile", run_id)["publish"] == "success"
    assert bureau.request("GET", "/api/v2/dags/reconcile").expect(200)["is_paused"] is False
    assert bureau.request("POST", "/api/v2/dags/reconcile/clearTaskInstances", {**clear, "dry_run": True}).status == 200


# Personal data -----------------------------------------------------------------------------


def _hits_message(hits: list[Hit], where: str) -> str:
    return f"identity numbers in {where} (masked here):\n{report(hits)}"


@pytest.mark.slow
def test_no_identity_number_in_task_logs(published: Published) -> None:
    """Every task log the stack wrote (its logs folder), and every process's log."""
    home = published.stack.home
    logs = list(files_under(home / "logs"))
    assert any("dag_id=reconcile" in str(log) for log in logs)
    hits = [hit for log in [*logs, *files_under(home / "stack")] for hit in scan_file(log, str(log.relative_to(home)))]
    assert not hits, _hits_message(hits, "the logs")


def _pages(client: AirflowClient, path: str, key: str) -> Iterator[Any]:
    """Every item of a paged list of the REST API."""
    offset = 0
    while True:
        separator = "&" if "?" in path else "?"
        answer = client.request("GET", f"{path}{separator}limit=100&offset={offset}").expect(200)
        yield answer
        offset += len(answer[key])
        if not answer[key] or offset >= answer["total_entries"]:
            return


@pytest.mark.slow
def test_no_identity_number_in_the_rest_api(published: Published) -> None:
    """Every XCom value, asset event (its extra), audit log entry, DAG run (conf), task
    instance (rendered fields, map index names) and approval the REST API shows."""
    bureau = published.stack.client("bureau")
    hits: list[Hit] = []
    xcoms = 0
    for dag_id in PROJECT_DAG_IDS:
        for page in _pages(bureau, f"/api/v2/dags/{dag_id}/dagRuns/~/taskInstances/~/xcomEntries", "xcom_entries"):
            for entry in page["xcom_entries"]:
                path = (
                    f"/api/v2/dags/{dag_id}/dagRuns/{_quote(entry['run_id'])}/taskInstances/"
                    f"{_quote(entry['task_id'])}/xcomEntries/{_quote(entry['key'])}?map_index={entry['map_index']}"
                )
                value = bureau.request("GET", path).expect(200)
                hits += scan_value(value, f"xcom {dag_id}/{entry['task_id']}[{entry['map_index']}]/{entry['key']}")
                xcoms += 1
    assert xcoms > 20  # the runs' tasks returned values, and each was read
    listings = {
        "/api/v2/assets/events": "asset_events",
        "/api/v2/eventLogs": "event_logs",
        "/api/v2/dags/~/dagRuns": "dag_runs",
        "/api/v2/dags/~/dagRuns/~/taskInstances": "task_instances",
        "/api/v2/dags/~/dagRuns/~/hitlDetails": "hitl_details",
    }
    for path, key in listings.items():
        items = [item for page in _pages(bureau, path, key) for item in page[key]]
        assert items, path
        hits += [hit for index, item in enumerate(items) for hit in scan_value(item, f"{path}[{index}]")]
    events = [
        event for page in _pages(bureau, "/api/v2/assets/events", "asset_events") for event in page["asset_events"]
    ]
    assert any(event.get("extra") for event in events)  # the staged events' accounting was among what was read
    assert not hits, _hits_message(hits, "the REST API's answers")


def _fetch(client: AirflowClient, path: str) -> tuple[int, str, bytes, str]:
    """One page of the ops view as the user sees it: status, content type, bytes, final path."""
    assert client.token is not None
    request = urllib.request.Request(client.stack.url + path, headers={"Authorization": f"Bearer {client.token}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            final = urllib.parse.urlsplit(response.geturl())
            where = final.path + (f"?{final.query}" if final.query else "")
            return response.status, response.headers.get("Content-Type", ""), response.read(), where
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read(), path


_LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"'#]+)""", re.IGNORECASE)


def crawl_ops_view(client: AirflowClient, starts: list[str]) -> dict[str, tuple[int, str, bytes]]:
    """Every page and file of the ops view reachable from ``starts`` through its links."""
    seen: dict[str, tuple[int, str, bytes]] = {}
    queue = list(starts)
    while queue and len(seen) < CRAWL_LIMIT:
        path = queue.pop(0)
        if path in seen:
            continue
        status, kind, body, where = _fetch(client, path)
        seen[path] = (status, kind, body)
        if "html" not in kind:
            continue
        for link in _LINK.findall(body.decode("utf-8", errors="replace")):
            target = urllib.parse.urlsplit(urllib.parse.urljoin(where, link.replace("&amp;", "&")))
            if target.scheme in {"", "http"} and target.path.startswith(f"{OPS_VIEW}/"):
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
    return seen


@pytest.mark.slow
def test_no_identity_number_in_the_ops_view_or_data_docs(published: Published) -> None:
    """Every page, JSON answer and file of the ops view reachable from its pages (the Data
    Docs among them), as ops sees them."""
    ops = published.stack.client("ops")
    starts = [f"{OPS_VIEW}/", f"{OPS_VIEW}/api/summary"]
    for batch in BATCHES:
        run_id = _quote(published.run_id(batch))
        starts += [
            f"{OPS_VIEW}/runs/{batch}",
            f"{OPS_VIEW}/api/summary?run_id={batch}",
            f"{OPS_VIEW}/dag-runs/reconcile/{run_id}",
            f"{OPS_VIEW}/runs/{batch}/files/data_docs/index.html",
        ]
    pages = crawl_ops_view(ops, starts)
    assert len(pages) < CRAWL_LIMIT, "the crawl stopped at its limit"
    broken = sorted(path for path, (status, _kind, _body) in pages.items() if status != 200)
    assert broken == [], broken
    docs = [path for path in pages if "/files/data_docs/" in path and path.endswith(".html")]
    assert len(docs) > 2, sorted(pages)  # the Data Docs' index and its validation pages were read
    assert any(path.endswith(".xlsx") for path in pages)
    hits = [hit for path, (_status, _kind, body) in pages.items() for hit in scan_bytes(body, path)]
    assert not hits, _hits_message(hits, "the ops view")


def _census_extract(path: Path, data_dir: Path) -> bool:
    """A file of a published run's census extract (``runs/<batch>/census_extract/<file>``);
    not, e.g., the Data Docs' page of the extract's validation."""
    parts = path.relative_to(data_dir).parts
    return len(parts) == 4 and parts[0] == "runs" and parts[2] == "census_extract"


@pytest.mark.slow
def test_identity_numbers_only_in_the_census_extract_readable_by_its_owner(published: Published) -> None:
    """Everything the runs wrote into the data folder (run files, county workbooks, visit
    lists, Data Docs, work folders, alerts), the landing zone of the departments' own exports
    aside, is free of identity numbers; the census extract holds them, says so in the
    manifest, and only its owner may read it."""
    data_dir = published.stack.data_dir
    written = [path for path in files_under(data_dir) if path.relative_to(data_dir).parts[0] != "landing"]
    extract = [path for path in written if _census_extract(path, data_dir)]
    others = [path for path in written if not _census_extract(path, data_dir)]
    assert any(path.suffix == ".xlsx" and "visit_lists" in path.parts for path in others)
    assert any(path.suffix == ".xlsx" and "counties" in path.parts for path in others)
    hits = scan_files_relative(others, data_dir)
    assert not hits, _hits_message(hits, "the published files")

    assert extract and all(path.parent.name == "census_extract" for path in extract)
    assert scan_files_relative(extract, data_dir)  # the scan sees numbers where there are some
    folder = data_dir / "runs" / "b-one" / "census_extract"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in extract:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    manifest = json.loads((data_dir / "runs" / "b-one" / "manifest.json").read_text(encoding="utf-8"))
    census = manifest["census_extract"]
    assert census["personal_data"] is True
    assert "identity_number" in census["personal_data_kinds"]
    flagged = {entry["path"] for entry in manifest["files"] if entry.get("personal_data")}
    assert flagged == {entry["path"] for entry in census["files"]}
    rejected = json.loads((data_dir / "runs" / "b-two" / "manifest.json").read_text(encoding="utf-8"))
    assert not any(entry.get("personal_data") for entry in rejected["files"])


def scan_files_relative(paths: list[Path], root: Path) -> list[Hit]:
    return [hit for path in paths for hit in scan_file(path, str(path.relative_to(root)))]
