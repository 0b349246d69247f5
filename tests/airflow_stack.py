"""A real Airflow for tests: scheduler, DAG processor, triggerer and API server, LocalExecutor.

The stack is started by ``scripts/airflow_stack.py`` (the script behind ``make airflow``),
here with its metadata in a PostgreSQL database of its own (``lookback_airflow_<random>``,
dropped afterwards), free ports chosen at run time, ``AIRFLOW_HOME`` and
``LOOKBACK_DATA_DIR`` in temporary folders, and the checkout's ``dags/`` and ``plugins/``.

Use it from any test module (the fixture is registered in ``tests/conftest.py``)::

    import pytest
    from tests.airflow_stack import AirflowStack

    pytestmark = [pytest.mark.airflow_stack, pytest.mark.postgres]

    def test_a_run(airflow_stack: AirflowStack) -> None:
        bureau = airflow_stack.client("bureau")
        bureau.wait_for_dag("ingest_registry")
        bureau.unpause("ingest_registry")
        run_id = bureau.trigger("ingest_registry", {"landing": str(airflow_stack.data_dir / "landing" / "b")})
        bureau.wait_for_run("ingest_registry", run_id, "success", timeout=300)

One stack per pytest process: ``airflow_stack`` is session-scoped, so every module on one
xdist worker shares it. Under ``--dist loadscope`` modules may land on different workers;
each such worker starts a stack of its own, with its own home, ports and database, so two
stacks never share anything (each costs about 30 s to start and a few hundred MB).
Tests that share the stack must not depend on each other's DAG runs: trigger your own run
and wait for that run id.

``celery_stack`` is the same stack with the CeleryExecutor: the scheduler sends the tasks
through Redis to two Celery workers started beside it (``worker-default``, queue
``default``; ``worker-cpu_heavy``, queue ``cpu_heavy``, the county tasks), each with its own
log (``AirflowStack.worker_log``). It has its own metadata and warehouse databases, and a
Redis database of its own: the first of the server's numbered databases, from the top,
that is empty and that it claims (an atomic ``SET NX`` of a claim key), flushed at the end.
A test marked ``distributed`` uses it (``tests/test_distributed.py``). Failure messages show
the logs' tails with anything like an identity number masked.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from lookback.standardise.identity import mask_identity_numbers_in
from scripts import airflow_stack as stack_script
from tests.postgres import throwaway_database

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
# The DAGs of dags/ that the stack tests expect Airflow to list (change here when they change).
PROJECT_DAG_IDS: tuple[str, ...] = (
    "ingest_dibao",
    "ingest_housing",
    "ingest_hukou",
    "ingest_insurance",
    "ingest_registry",
    "reconcile",
)
# A conf each of them accepts when triggered (their params validate at trigger time); the smoke
# test triggers with it while the DAG stays paused, so nothing runs.
ACCEPTED_CONF: dict[str, dict[str, Any]] = {
    **{dag_id: {"landing": "landing/never-delivered"} for dag_id in PROJECT_DAG_IDS if dag_id.startswith("ingest_")},
    "reconcile": {"batch": "never-delivered"},
}
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
# The Redis server of the Celery stacks' brokers; each stack takes a numbered database of its own.
REDIS_URL = os.environ.get("LOOKBACK_TEST_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_CLAIM_KEY = "lookback:test-stack-claim"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class ApiResponse:
    """One answer of the REST API: its status and its JSON body (or text when not JSON)."""

    method: str
    path: str
    status: int
    body: Any

    def expect(self, *statuses: int) -> Any:
        """The body, when the status is one of ``statuses`` (default: any 2xx); else a failure naming both."""
        ok = self.status in statuses if statuses else 200 <= self.status < 300
        if not ok:
            wanted = ", ".join(map(str, statuses)) or "2xx"
            raise AssertionError(f"{self.method} {self.path}: HTTP {self.status}, expected {wanted}: {self.body}")
        return self.body


@dataclass(frozen=True)
class AirflowStack:
    """A running stack: where it listens, its home and data folder, and its users' passwords."""

    settings: stack_script.StackSettings
    passwords: Mapping[str, str]
    warehouse_url: str | None = None  # the tasks' warehouse (None: the SQLite file in the data folder)

    @property
    def url(self) -> str:
        return self.settings.url

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def data_dir(self) -> Path:
        assert self.settings.data_dir is not None
        return self.settings.data_dir

    def client(self, username: str) -> AirflowClient:
        """A client logged in as ``username`` (``bureau``: role user; ``ops``: role viewer)."""
        client = AirflowClient(self, username)
        client.login()
        return client

    def wait_until(self, condition: Callable[[], T | None], what: str, timeout: float) -> T:
        """``condition()``'s first truthy value, asked every 2 s; after ``timeout`` seconds an
        AssertionError saying ``what`` did not happen, with the processes' log tails."""
        deadline = time.monotonic() + timeout
        while True:
            found = condition()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} within {timeout:.0f} s\n{self.log_tails()}")
            time.sleep(2)

    def log_tails(self, lines: int = 20) -> str:
        """The last lines of each process's log, for failure messages."""
        return "\n".join(
            f"--- {log} ---\n{_tail(log, lines)}"
            for log in (stack_script.log_file(self.settings, process) for process in self.settings.processes)
        )

    def processes_saying(self, text: str) -> set[str]:
        """The stack's processes whose own log (standard output and error) holds ``text``."""
        return {
            process
            for process in self.settings.processes
            if text in stack_script.log_file(self.settings, process).read_text(encoding="utf-8", errors="replace")
        }

    def worker_log(self, worker: str) -> Path:
        """The log (standard output and error) of one Celery worker: ``worker-default`` or ``worker-cpu_heavy``."""
        assert worker in stack_script.CELERY_WORKERS, worker
        return stack_script.log_file(self.settings, worker)

    def task_log_tails(self, dag_id: str, run_id: str, lines: int = 10) -> str:
        """The last lines of each task's latest attempt in one run (Airflow writes them under logs/)."""
        run_folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        if not run_folder.is_dir():
            return f"(no task logs under {run_folder})"
        latest: dict[Path, Path] = {}
        for log in sorted(run_folder.rglob("attempt=*.log"), key=_attempt_number):
            latest[log.parent] = log
        return "\n".join(f"--- {log.relative_to(run_folder)} ---\n{_tail(log, lines)}" for log in latest.values())


def _attempt_number(log: Path) -> int:
    return int(log.stem.removeprefix("attempt="))


def _tail(path: Path, lines: int, width: int = 400) -> str:
    """The last lines of a log, each cut to ``width`` characters (a JSON log line can hold a whole
    traceback), anything like an identity number masked."""
    return "\n".join(
        line if len(line) <= width else line[:width] + " …"
        for line in mask_identity_numbers_in(stack_script.tail(path, lines)).splitlines()
    )


@dataclass
class AirflowClient:
    """The REST API as one user sees it; every call sends that user's token."""

    stack: AirflowStack
    username: str
    token: str | None = field(default=None, repr=False)

    def login(self) -> str:
        """``POST /auth/token`` with the user's password; keeps and returns the access token."""
        body = {"username": self.username, "password": self.stack.passwords[self.username]}
        answer = self.request("POST", "/auth/token", body, authenticated=False).expect(200, 201)
        self.token = str(answer["access_token"])
        return self.token

    def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, authenticated: bool = True
    ) -> ApiResponse:
        """Any call; HTTP errors come back as an ``ApiResponse`` with their status, not as exceptions."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if authenticated:
            assert self.token is not None, "log in first"
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.stack.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        text = raw.decode("utf-8", errors="replace")
        try:
            parsed: Any = json.loads(text) if text else None
        except json.JSONDecodeError:
            parsed = text
        return ApiResponse(method, path, status, parsed)

    def wait_for_health(
        self,
        components: Sequence[str] = ("metadatabase", "scheduler", "dag_processor", "triggerer"),
        *,
        timeout: float = 90.0,
    ) -> dict[str, Any]:
        """Wait until the health endpoint calls every component healthy (each heartbeats on its own clock)."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.request("GET", "/api/v2/monitor/health", authenticated=False).expect(200)
            if all((health.get(name) or {}).get("status") == "healthy" for name in components):
                return dict(health)
            if time.monotonic() > deadline:
                raise AssertionError(f"not healthy within {timeout:.0f} s: {health}\n{self.stack.log_tails()}")
            time.sleep(1)

    def dag_ids(self) -> list[str]:
        """The ids of the DAGs the API lists (``GET /api/v2/dags``)."""
        answer = self.request("GET", "/api/v2/dags?limit=100").expect(200)
        return sorted(dag["dag_id"] for dag in answer["dags"])

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the DAG processor has parsed ``dag_id`` and the API lists it; return the DAG."""
        path = f"/api/v2/dags/{_quote(dag_id)}"
        deadline = time.monotonic() + timeout
        while True:
            answer = self.request("GET", path)
            if answer.status == 200:
                return dict(answer.body)
            if time.monotonic() > deadline:
                errors = self.request("GET", "/api/v2/importErrors").body
                raise AssertionError(
                    f"DAG {dag_id} not parsed within {timeout:.0f} s (last answer HTTP {answer.status}); "
                    f"import errors: {errors}\n{self.stack.log_tails()}"
                )
            time.sleep(1)

    def unpause_request(self, dag_id: str) -> ApiResponse:
        """``PATCH /api/v2/dags/{dag_id}`` with ``{"is_paused": false}``, as it answers."""
        return self.request("PATCH", f"/api/v2/dags/{_quote(dag_id)}", {"is_paused": False})

    def unpause(self, dag_id: str) -> dict[str, Any]:
        """Unpause the DAG, so that the scheduler runs its queued and new runs."""
        return dict(self.unpause_request(dag_id).expect(200))

    def trigger_request(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> ApiResponse:
        """``POST /api/v2/dags/{dag_id}/dagRuns`` as it answers (for checking refusals)."""
        body = {"logical_date": None, "conf": dict(conf or {})}
        return self.request("POST", f"/api/v2/dags/{_quote(dag_id)}/dagRuns", body)

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Trigger a run now with ``conf``; return its run id."""
        return str(self.trigger_request(dag_id, conf).expect(200)["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """``GET`` one DAG run."""
        return dict(self.request("GET", _run_path(dag_id, run_id)).expect(200))

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of a DAG, oldest first (``GET /api/v2/dags/{dag_id}/dagRuns``)."""
        answer = self.request("GET", f"/api/v2/dags/{_quote(dag_id)}/dagRuns?limit=100&order_by=id").expect(200)
        return list(answer["dag_runs"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        """A task's return value (``.../xcomEntries/return_value``), deserialised."""
        path = f"{_run_path(dag_id, run_id)}/taskInstances/{_quote(task_id)}/xcomEntries/return_value"
        if map_index >= 0:
            path += f"?map_index={map_index}"
        return self.request("GET", path).expect(200)["value"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run (mapped ones once per map index)."""
        answer = self.request("GET", f"{_run_path(dag_id, run_id)}/taskInstances?limit=1000").expect(200)
        return list(answer["task_instances"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``task_id`` (``task_id[map_index]`` when mapped) to state."""
        return {
            ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]": ti["state"]
            for ti in self.task_instances(dag_id, run_id)
        }

    def wait_for_run(
        self, dag_id: str, run_id: str, state: str = "success", *, timeout: float = 300.0
    ) -> dict[str, Any]:
        """Wait until the run is in ``state``; fail at once if it ends in another, or at the timeout.

        The failure shows every task's state, the tail of each task log and of the processes' logs.
        """
        deadline = time.monotonic() + timeout
        while True:
            run = self.dag_run(dag_id, run_id)
            if run["state"] == state:
                return run
            ended_otherwise = run["state"] in TERMINAL_RUN_STATES
            if ended_otherwise or time.monotonic() > deadline:
                why = f"ended {run['state']}" if ended_otherwise else f"still {run['state']} after {timeout:.0f} s"
                self._fail_run(dag_id, run_id, f"run {run_id} of {dag_id} {why}, expected {state}")
            time.sleep(1)

    def wait_for_task(
        self, dag_id: str, run_id: str, task_id: str, state: str, *, map_index: int = -1, timeout: float = 300.0
    ) -> dict[str, Any]:
        """Wait until one task instance is in ``state`` (e.g. ``awaiting_input`` at an approval)."""
        path = f"{_run_path(dag_id, run_id)}/taskInstances/{_quote(task_id)}"
        if map_index >= 0:
            path += f"/{map_index}"
        deadline = time.monotonic() + timeout
        while True:
            answer = self.request("GET", path)
            if answer.status == 200 and answer.body["state"] == state:
                return dict(answer.body)
            if time.monotonic() > deadline:
                self._fail_run(dag_id, run_id, f"task {task_id} of run {run_id} not {state} within {timeout:.0f} s")
            time.sleep(1)

    def answer_approval(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        chosen_options: Sequence[str],
        *,
        map_index: int = -1,
        params_input: Mapping[str, Any] | None = None,
    ) -> ApiResponse:
        """Answer a human-in-the-loop task (``PATCH .../hitlDetails``); returned as answered (viewer: 403)."""
        path = f"{_run_path(dag_id, run_id)}/taskInstances/{_quote(task_id)}/{map_index}/hitlDetails"
        body = {"chosen_options": list(chosen_options), "params_input": dict(params_input or {})}
        return self.request("PATCH", path, body)

    def _fail_run(self, dag_id: str, run_id: str, message: str) -> None:
        states = "\n".join(f"  {task}: {state}" for task, state in sorted(self.task_states(dag_id, run_id).items()))
        raise AssertionError(
            f"{message}\ntask states:\n{states}\n"
            f"task logs:\n{self.stack.task_log_tails(dag_id, run_id)}\n"
            f"processes:\n{self.stack.log_tails()}"
        )


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _run_path(dag_id: str, run_id: str) -> str:
    return f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}"


def _test_environment() -> dict[str, str]:
    """This process's environment without Airflow's or the warehouse's settings (conftest sets some)."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AIRFLOW") and key not in {"LOOKBACK_WAREHOUSE_URL", "LOOKBACK_DATA_DIR"}
    }


@contextlib.contextmanager
def running_stack(
    folder: Path,
    database_url: str,
    *,
    warehouse_url: str | None = None,
    attempts: int = 2,
    broker_url: str | None = None,
) -> Iterator[AirflowStack]:
    """Start a stack in ``folder`` on ``database_url`` (its tasks' warehouse: ``warehouse_url``,
    default the SQLite file in its data folder); stop it (process groups and all) afterwards.
    With ``broker_url`` the stack runs the CeleryExecutor and its two workers; else the LocalExecutor.

    Ports are chosen free just before the start; should another process take one in between
    (the API server then fails to bind), the start is tried again on new ports.
    """
    for attempt in range(1, attempts + 1):
        settings = stack_script.StackSettings(
            home=folder / "home",
            port=free_port(),
            worker_log_server_port=free_port(),
            trigger_log_server_port=free_port(),
            data_dir=folder / "data",
            database_url=database_url,
            executor="celery" if broker_url else "local",
            broker_url=broker_url,
            heavy_worker_log_server_port=free_port(),
        )
        try:
            base = _test_environment()
            if warehouse_url is not None:
                base["LOOKBACK_WAREHOUSE_URL"] = warehouse_url
            stack_script.start(settings, timeout=180, environment_base=base)
            break
        except stack_script.StackError as error:
            if attempt == attempts or "address already in use" not in str(error).lower():
                raise
    try:
        yield AirflowStack(settings, stack_script.ensure_passwords(settings.home), warehouse_url)
    finally:
        stack_script.stop(settings)


@pytest.fixture(scope="session")
def airflow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    """The session's Airflow on its own PostgreSQL database, its tasks writing to a PostgreSQL
    warehouse of their own (county tasks run side by side there; see the module's docstring)."""
    database = throwaway_database("lookback_airflow")
    warehouse = throwaway_database("lookback_stack_warehouse")
    database_url, warehouse_url = next(database), next(warehouse)
    try:
        with running_stack(
            tmp_path_factory.mktemp("airflow-stack"), database_url, warehouse_url=warehouse_url
        ) as stack:
            yield stack
    finally:
        database.close()  # drops the databases, once the stack is stopped
        warehouse.close()


@contextlib.contextmanager
def throwaway_redis_database(url: str = REDIS_URL) -> Iterator[str]:
    """A numbered database of the Redis server at ``url`` that nothing else uses, as a URL;
    flushed afterwards. Skips the test when the server does not answer (fails when ``CI=true``).

    Databases are tried from the highest number down (0 is every client's default): the first
    empty one whose claim key this call sets (``SET NX``, atomic) and that holds nothing else
    is taken, so two test processes, or a stack someone runs by hand, never share one.
    """
    import redis

    server = url.rstrip("/")
    probe: redis.Redis = redis.Redis.from_url(f"{server}/0")
    try:
        try:
            probe.ping()
            try:
                count = int(cast(dict[str, str], probe.config_get("databases")).get("databases", 16))
            except redis.exceptions.ResponseError:  # CONFIG refused: Redis's default number
                count = 16
        except redis.exceptions.ConnectionError as error:
            message = f"Redis not reachable at {server}: {error}"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"{message} (required when CI=true)")
            pytest.skip(message)
    finally:
        probe.close()
    token = uuid.uuid4().hex
    for number in range(count - 1, 0, -1):
        database: redis.Redis = redis.Redis.from_url(f"{server}/{number}")
        try:
            if not database.set(REDIS_CLAIM_KEY, token, nx=True):
                continue
            if database.dbsize() != 1:  # someone's keys besides ours: not free after all
                if database.get(REDIS_CLAIM_KEY) == token.encode():
                    database.delete(REDIS_CLAIM_KEY)
                continue
            try:
                yield f"{server}/{number}"
            finally:
                database.flushdb()
            return
        finally:
            database.close()
    raise AssertionError(f"no free numbered database on the Redis server at {server} (all {count} in use)")


@pytest.fixture(scope="session")
def celery_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    """An Airflow with the CeleryExecutor and two workers (queues ``default`` and ``cpu_heavy``),
    on its own metadata database, PostgreSQL warehouse and Redis database (see the module's docstring)."""
    database = throwaway_database("lookback_celery_airflow")
    warehouse = throwaway_database("lookback_celery_warehouse")
    database_url, warehouse_url = next(database), next(warehouse)
    try:
        with (
            throwaway_redis_database() as broker_url,
            running_stack(
                tmp_path_factory.mktemp("celery-stack"),
                database_url,
                warehouse_url=warehouse_url,
                broker_url=broker_url,
            ) as stack,
        ):
            yield stack
    finally:
        database.close()  # drops the databases, once the stack is stopped
        warehouse.close()
