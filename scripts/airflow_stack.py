"""Start, stop and describe a local Airflow: API server, scheduler, DAG processor, triggerer,
and with ``--executor celery`` two Celery workers.

One Airflow home holds the whole stack's state: the generated secrets (``stack.json``:
the JWT and API secrets every process must share), the SimpleAuthManager passwords
(``passwords.json``: users ``bureau``, role user, the release's approver; ``clerk``, role
user, who may trigger runs but is no approver; and ``ops``, role viewer, with random
passwords made once), and ``stack/`` with one log and one pid file per process. Each process
runs in a process group of its own, so that stopping the group stops the children it forked
too (the LocalExecutor's workers, the log servers).

The executor is the LocalExecutor unless ``--executor celery`` is given: then the scheduler
hands the tasks to Redis (``--broker``), a result backend on the metadata database (which must
be PostgreSQL: ``--database-url``) keeps their states, and two Celery workers take them, each
its own process group and log: ``worker-default`` (queue ``default``, two task slots) and
``worker-cpu_heavy`` (queue ``cpu_heavy``, the county tasks, one slot, Celery hostname
``heavy@<host>`` and a log-server port of its own, as a second machine would have).

    airflow_stack.py start --home .airflow --port 8080 --data-dir data
    airflow_stack.py start --home .airflow-celery --port 8090 --executor celery \
        --broker redis://127.0.0.1:6379/5 --database-url postgresql+psycopg://postgres@127.0.0.1/airflow
    airflow_stack.py stop --home .airflow
    airflow_stack.py status --home .airflow

``make airflow`` and ``make airflow-stop`` call it; so does the tests' fixture
(``tests/airflow_stack.py``), with its own home, ports and PostgreSQL database. Standard
library only, and no Airflow import: it runs the ``airflow`` command of the environment it
is given (default: the one beside this Python).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = Path(sys.executable).with_name("airflow")  # the command of the environment running this script
PROCESSES = ("scheduler", "dag-processor", "triggerer", "api-server")
# The Celery workers of a stack started with --executor celery: queue, task slots, Celery hostname.
CELERY_WORKERS = {
    "worker-default": ("default", 2, "default@%h"),
    "worker-cpu_heavy": ("cpu_heavy", 1, "heavy@%h"),
}
# Every process a stack of either executor may run (stop and status look for all of them).
ALL_PROCESSES = (*PROCESSES, *CELERY_WORKERS)
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
# SimpleAuthManager's users and roles: the bureau triggers runs and answers approvals (the DAG
# names it the only approver), the poverty office's clerk triggers runs too but approves
# nothing, ops staff only watch.
USERS = {"bureau": "user", "clerk": "user", "ops": "viewer"}
# Keys whose values Airflow's secrets masker hides (in the audit log, task logs, the UI)
# besides its own (password, secret, token, ...): a run's warehouse URL.
SENSITIVE_NAMES = "warehouse"
SECRETS_FILE = "stack.json"
PASSWORDS_FILE = "passwords.json"
STATE_DIR = "stack"


@dataclass(frozen=True)
class StackSettings:
    """Everything that tells one stack from another: where it lives and where it listens."""

    home: Path
    port: int = 8080
    host: str = "127.0.0.1"
    dags_folder: Path = ROOT / "dags"
    plugins_folder: Path = ROOT / "plugins"
    data_dir: Path | None = None
    database_url: str | None = None  # None: the SQLite database in the home (Airflow's default)
    worker_log_server_port: int = 8793
    trigger_log_server_port: int = 8794
    parallelism: int = 4  # task slots of the executor (Airflow's default, 32, is for bigger machines)
    airflow: Path = AIRFLOW
    executor: str = "local"  # "local" (LocalExecutor) or "celery" (CeleryExecutor and its two workers)
    broker_url: str | None = None  # the Celery broker (Redis), with --executor celery
    heavy_worker_log_server_port: int = 8795  # the cpu_heavy worker's log server, beside the default worker's

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor {self.executor!r}: expected one of {', '.join(EXECUTORS)}")
        if self.executor == "celery":
            if not self.broker_url:
                raise ValueError("the Celery executor needs a broker URL (--broker redis://HOST:PORT/DB)")
            if not (self.database_url or "").startswith("postgresql"):
                raise ValueError("the Celery executor needs a PostgreSQL metadata database (--database-url)")

    @property
    def processes(self) -> tuple[str, ...]:
        """The processes this stack runs: the four of Airflow, and the Celery workers with that executor."""
        return (*PROCESSES, *CELERY_WORKERS) if self.executor == "celery" else PROCESSES

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state_dir(self) -> Path:
        return self.home / STATE_DIR

    @property
    def passwords_file(self) -> Path:
        return self.home / PASSWORDS_FILE


def _write_private(path: Path, content: str) -> None:
    """Write a file only its owner can read, created that way (never readable in between)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(content)


def ensure_secrets(home: Path) -> dict[str, str]:
    """The JWT and API secrets of this home, generated once: every process must share them."""
    path = home / SECRETS_FILE
    if not path.exists():
        values = {"jwt_secret": secrets.token_urlsafe(32), "api_secret_key": secrets.token_urlsafe(32)}
        _write_private(path, json.dumps(values, indent=2) + "\n")
    return dict(json.loads(path.read_text(encoding="utf-8")))


def ensure_passwords(home: Path) -> dict[str, str]:
    """The users' passwords, generated once with random values; a user missing from the file is added."""
    path = home / PASSWORDS_FILE
    passwords: dict[str, str] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    missing = [user for user in USERS if user not in passwords]
    if missing:
        passwords.update({user: secrets.token_urlsafe(12) for user in missing})
        path.unlink(missing_ok=True)
        _write_private(path, json.dumps(passwords, indent=2) + "\n")
    return passwords


def stack_environment(settings: StackSettings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The one environment of every process of the stack (and of any ``airflow`` command run beside it)."""
    shared = ensure_secrets(settings.home)
    environment = dict(os.environ if base is None else base)
    environment.update(
        {
            "AIRFLOW_HOME": str(settings.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.plugins_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": EXECUTORS[settings.executor],
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{user}:{role}" for user, role in USERS.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(settings.passwords_file),
            "AIRFLOW__API_AUTH__JWT_SECRET": shared["jwt_secret"],
            "AIRFLOW__API__SECRET_KEY": shared["api_secret_key"],
            "AIRFLOW__API__BASE_URL": settings.url,
            "AIRFLOW__API__HOST": settings.host,
            "AIRFLOW__API__PORT": str(settings.port),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(settings.worker_log_server_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(settings.trigger_log_server_port),
            "AIRFLOW__CORE__PARALLELISM": str(settings.parallelism),
            # New DAGs wait until someone unpauses them, as in a deployment.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            # The audit log keeps a triggered run's conf: a warehouse URL in it is masked there
            # (the DAGs refuse one with a password, but the refused request is logged too).
            "AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES": SENSITIVE_NAMES,
        }
    )
    if settings.data_dir is not None:
        environment["LOOKBACK_DATA_DIR"] = str(settings.data_dir)
    if settings.database_url is not None:
        environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = settings.database_url
        if settings.database_url.startswith("postgresql+psycopg:"):
            # psycopg 3 speaks asyncio too; without this Airflow would look for asyncpg.
            environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = settings.database_url
    if settings.executor == "celery":
        assert settings.broker_url is not None and settings.database_url is not None  # checked by the settings
        environment["AIRFLOW__CELERY__BROKER_URL"] = settings.broker_url
        # Task states kept by Celery in the metadata database (tables celery_taskmeta, celery_tasksetmeta).
        environment["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + settings.database_url
    return environment


def _process_environment(settings: StackSettings, environment: Mapping[str, str], process: str) -> dict[str, str]:
    """The stack's environment as one process gets it: the cpu_heavy worker serves its task
    logs on a port of its own (the default worker has the stack's worker log-server port)."""
    own = dict(environment)
    if process == "worker-cpu_heavy":
        own["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(settings.heavy_worker_log_server_port)
    return own


def _command(settings: StackSettings, process: str) -> list[str]:
    airflow = str(settings.airflow)
    if process == "api-server":
        return [airflow, "api-server", "--host", settings.host, "--port", str(settings.port), "--workers", "1"]
    if process in CELERY_WORKERS:
        queue, concurrency, hostname = CELERY_WORKERS[process]
        return [airflow, "celery", "worker", "-q", queue, "--concurrency", str(concurrency), "-H", hostname]
    return [airflow, process]


def _pid_file(settings: StackSettings, process: str) -> Path:
    return settings.state_dir / f"{process}.pid"


def log_file(settings: StackSettings, process: str) -> Path:
    """Where a process of the stack writes its standard output and error."""
    return settings.state_dir / f"{process}.log"


def _is_ours(pid: int) -> bool:
    """True while ``pid`` is alive, leads its own process group and runs an ``airflow`` command
    (or is the Celery worker one became).

    A pid file can outlive its process (a reboot, a kill -9); the checks keep a reused pid of
    some other program from being signalled.
    """
    try:
        if os.getpgid(pid) != pid:
            return False
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (ProcessLookupError, PermissionError, FileNotFoundError):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        state = ""
    # A Celery worker's main process renames itself "[celeryd: <hostname>:MainProcess] ...".
    return state != "Z" and (b"airflow" in command_line or command_line.startswith(b"[celeryd: "))


def running(settings: StackSettings) -> dict[str, int]:
    """The processes of this stack's home that are running, by name (of either executor)."""
    found = {}
    for process in ALL_PROCESSES:
        path = _pid_file(settings, process)
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int(path.read_text().strip())
            if _is_ours(pid):
                found[process] = pid
    return found


def healthy(settings: StackSettings, timeout: float = 2.0) -> bool:
    """True when the API server answers its health endpoint."""
    try:
        with urllib.request.urlopen(f"{settings.url}/api/v2/monitor/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


class StackError(RuntimeError):
    """The stack could not be started; the message names the process and shows its log's tail."""


def airflow_command(settings: StackSettings, environment: Mapping[str, str], log_name: str, *args: str) -> None:
    """Run one ``airflow`` command of the stack to its end, its output in the state folder's
    ``<log_name>.log``; ``StackError`` with the log's tail when it fails."""
    log = log_file(settings, log_name)
    with log.open("w", encoding="utf-8") as output:
        result = subprocess.run(
            [str(settings.airflow), *args], env=dict(environment), stdout=output, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        raise StackError(f"airflow {' '.join(args[:2])} failed (exit {result.returncode}); {log}:\n{tail(log)}")


def migrate(settings: StackSettings, environment: Mapping[str, str]) -> None:
    """Create or upgrade the metadata database (``airflow db migrate``)."""
    airflow_command(settings, environment, "db-migrate", "db", "migrate")


def cpu_heavy_slots(environment: Mapping[str, str]) -> int:
    """Slots of the pool the county tasks run in: one on the embedded SQLite warehouse (one
    writer at a time), one per core on PostgreSQL."""
    warehouse = environment.get("LOOKBACK_WAREHOUSE_URL", "")
    return max(1, os.cpu_count() or 1) if warehouse.startswith("postgresql") else 1


def ensure_pools(settings: StackSettings, environment: Mapping[str, str]) -> None:
    """The pools the DAGs' tasks ask for (a task of a missing pool never runs): ``cpu_heavy``
    for the county tasks, and ``staged_announcements`` (one slot) for the staged assets'
    announcements, one at a time."""
    slots = str(cpu_heavy_slots(environment))
    airflow_command(settings, environment, "pools", "pools", "set", "cpu_heavy", slots, "lookback's county tasks")
    airflow_command(
        settings,
        environment,
        "pools-announcements",
        "pools",
        "set",
        "staged_announcements",
        "1",
        "lookback's staged assets announced one at a time",
    )


def start(
    settings: StackSettings, *, timeout: float = 180.0, environment_base: Mapping[str, str] | None = None
) -> dict[str, int]:
    """Start the stack unless it runs already; return once the API server answers its health check.

    ``environment_base`` is the environment the stack's settings are laid over (default: this
    process's). A stack that runs in part (a process died) is stopped and started afresh. On
    failure every process started is stopped again and ``StackError`` tells which one failed,
    with its log.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    alive = running(settings)
    if set(alive) == set(settings.processes):
        # Running, or still starting (another call started it moments ago): wait, start nothing.
        _wait_until_healthy(settings, lambda: _first_gone(alive), timeout)
        return alive
    if alive:
        stop(settings)
    ensure_passwords(settings.home)
    environment = stack_environment(settings, environment_base)
    if settings.data_dir is not None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings, environment)
    ensure_pools(settings, environment)
    started: dict[str, subprocess.Popen[bytes]] = {}
    # Where each log ends before this start (logs are appended to): a worker is ready once it says so after it.
    offsets = {process: _size(log_file(settings, process)) for process in CELERY_WORKERS}
    try:
        for process in settings.processes:
            with log_file(settings, process).open("ab") as output:
                child = subprocess.Popen(
                    _command(settings, process),
                    env=_process_environment(settings, environment, process),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a process group of its own: stop() signals the whole group
                    cwd=settings.home,
                )
            started[process] = child
            _pid_file(settings, process).write_text(f"{child.pid}\n")
        _wait_until_healthy(settings, lambda: _first_exited(started), timeout)
        if settings.executor == "celery":
            _wait_until_workers_ready(settings, started, offsets, timeout)
    except BaseException:
        stop(settings)
        raise
    return {process: child.pid for process, child in started.items()}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _wait_until_workers_ready(
    settings: StackSettings, started: Mapping[str, subprocess.Popen[bytes]], offsets: Mapping[str, int], timeout: float
) -> None:
    """Wait until each Celery worker has logged that it is ready (connected to the broker, its queue consumed)."""
    deadline = time.monotonic() + timeout
    waiting = set(CELERY_WORKERS)
    while waiting:
        if (what := _first_exited(started)) is not None:
            log = log_file(settings, what.split()[1])
            raise StackError(f"{what} while starting; {log}:\n{tail(log)}")
        for process in sorted(waiting):
            with log_file(settings, process).open("rb") as output:
                output.seek(offsets[process])
                if b" ready." in output.read():
                    waiting.discard(process)
        if waiting and time.monotonic() > deadline:
            log = log_file(settings, min(waiting))
            raise StackError(f"Celery worker {min(waiting)} not ready within {timeout:.0f} s; {log}:\n{tail(log)}")
        time.sleep(0.5)


def _first_exited(started: Mapping[str, subprocess.Popen[bytes]]) -> str | None:
    """How the first of our children that has exited ended, if one has."""
    for process, child in started.items():
        if child.poll() is not None:
            return f"airflow {process} (pid {child.pid}) exited with status {child.returncode}"
    return None


def _first_gone(alive: Mapping[str, int]) -> str | None:
    """Which process found running is gone, if one is (it is not our child: no exit status)."""
    for process, pid in alive.items():
        if not _is_ours(pid):
            return f"airflow {process} (pid {pid}) exited"
    return None


def _wait_until_healthy(settings: StackSettings, gone: Callable[[], str | None], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (what := gone()) is not None:
            process = what.split()[1]
            log = log_file(settings, process)
            raise StackError(f"{what} while starting; {log}:\n{tail(log)}")
        if healthy(settings):
            return
        time.sleep(0.5)
    log = log_file(settings, "api-server")
    raise StackError(f"the API server did not answer {settings.url} within {timeout:.0f} s; {log}:\n{tail(log)}")


def stop(settings: StackSettings, *, grace: float = 20.0) -> dict[str, int]:
    """Stop every process of the stack with its process group: SIGTERM, then SIGKILL after ``grace`` s."""
    alive = running(settings)
    for pid in alive.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_group_alive(pid) for pid in alive.values()):
        time.sleep(0.2)
    for pid in alive.values():
        if _group_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    for process in ALL_PROCESSES:
        _pid_file(settings, process).unlink(missing_ok=True)
    return alive


def _group_alive(pgid: int) -> bool:
    """True while any process of the group is alive (a zombie child of ours counts as gone)."""
    with contextlib.suppress(ProcessLookupError, ChildProcessError):
        # Reap a leader that is our own child (the tests start the stack in their process).
        os.waitpid(pgid, os.WNOHANG)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return any(_in_group_and_alive(entry, pgid) for entry in Path("/proc").iterdir() if entry.name.isdigit())


def _in_group_and_alive(entry: Path, pgid: int) -> bool:
    try:
        fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z" and int(fields[2]) == pgid


def describe(settings: StackSettings, processes: Mapping[str, int]) -> Iterator[str]:
    """Lines telling a person what runs, where, and how to log in."""
    yield f"Airflow UI and API: {settings.url}  (home {settings.home}, {EXECUTORS[settings.executor]})"
    if settings.broker_url:
        yield f"Celery broker: {settings.broker_url}"
    for process, pid in processes.items():
        yield f"  {process:<14} pid {pid:<8} log {log_file(settings, process)}"
    passwords = ensure_passwords(settings.home)
    yield f"users (passwords in {settings.passwords_file}):"
    for user, role in USERS.items():
        yield f"  {user:<7} role {role:<7} password {passwords[user]}"
    yield "stop it with: make airflow-stop" + (f" LOOKBACK_AIRFLOW_HOME={settings.home}" if settings.broker_url else "")


def _settings(arguments: argparse.Namespace) -> StackSettings:
    return StackSettings(
        home=Path(arguments.home).resolve(),
        port=arguments.port,
        host=arguments.host,
        dags_folder=Path(arguments.dags_folder).resolve(),
        plugins_folder=Path(arguments.plugins_folder).resolve(),
        data_dir=Path(arguments.data_dir).resolve() if arguments.data_dir else None,
        database_url=arguments.database_url,
        worker_log_server_port=arguments.worker_log_server_port,
        trigger_log_server_port=arguments.trigger_log_server_port,
        parallelism=arguments.parallelism,
        airflow=Path(arguments.airflow),
        executor=arguments.executor,
        broker_url=arguments.broker,
        heavy_worker_log_server_port=arguments.heavy_worker_log_server_port,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--home", required=True, help="AIRFLOW_HOME of the stack")
    parser.add_argument("--port", type=int, default=8080, help="API server port (default 8080)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--dags-folder", default=str(ROOT / "dags"))
    parser.add_argument("--plugins-folder", default=str(ROOT / "plugins"))
    parser.add_argument("--data-dir", help="LOOKBACK_DATA_DIR of the tasks")
    parser.add_argument("--database-url", help="metadata database (default: SQLite in the home)")
    parser.add_argument("--worker-log-server-port", type=int, default=8793)
    parser.add_argument("--trigger-log-server-port", type=int, default=8794)
    parser.add_argument("--parallelism", type=int, default=4, help="task slots of the executor (default 4)")
    parser.add_argument(
        "--executor", choices=sorted(EXECUTORS), default="local", help="local (default) or celery (two workers)"
    )
    parser.add_argument("--broker", help="Celery broker URL, e.g. redis://127.0.0.1:6379/5 (--executor celery)")
    parser.add_argument(
        "--heavy-worker-log-server-port", type=int, default=8795, help="log server of the cpu_heavy Celery worker"
    )
    parser.add_argument("--airflow", default=str(AIRFLOW))
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the API server")
    arguments = parser.parse_args(argv)
    try:
        settings = _settings(arguments)
    except ValueError as error:
        parser.error(str(error))

    if arguments.action == "start":
        already = running(settings)
        begun = time.monotonic()
        try:
            processes = start(settings, timeout=arguments.timeout)
        except StackError as error:
            print(f"Airflow did not start: {error}", file=sys.stderr)
            return 1
        if set(already) == set(settings.processes):
            print("Airflow is running already; nothing started.")
        else:
            took = time.monotonic() - begun
            print(f"started Airflow ({', '.join(settings.processes)}) in {took:.0f} s")
        print("\n".join(describe(settings, processes)))
        return 0
    if arguments.action == "stop":
        stopped = stop(settings)
        if not stopped:
            print(f"no Airflow process of {settings.home} was running")
        for process, pid in stopped.items():
            print(f"stopped airflow {process} (process group {pid})")
        return 0
    alive = running(settings)
    if not alive:
        print(f"no Airflow process of {settings.home} is running")
        return 3
    print("\n".join(describe(settings, alive)))
    print("API server answers" if healthy(settings) else "API server does not answer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
