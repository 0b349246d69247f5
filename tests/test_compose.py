"""The production stack (``docker-compose.yaml``, ``Dockerfile``, ``.env.example``), checked
without Docker.

The file is validated against the Compose Specification's JSON schema (``tests/data/``,
vendored: no network) after Compose's own variable interpolation with the placeholder values
of ``.env.example``. Then what the schema cannot know: the services of Airflow's Celery stack
are all there, with health checks and the start order of Airflow's official file; every
Airflow service has the one shared environment (CeleryExecutor, Redis, the JWT secret, the
metadata database); every password and secret is a required ``${VAR:?message}`` reference
and every variable is listed in ``.env.example``; each queue a DAG names has a worker
listening and each pool a task asks for is created; the warehouse is a database of its own;
the data folders are mounted where ``LOOKBACK_DATA_DIR`` points; the image installs from
``uv.lock``. Each check is also run on a broken copy, which it must reject.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = Path(__file__).resolve().parent / "data" / "compose-spec.json"

REQUIRED_SERVICES = frozenset(
    {
        "postgres",
        "redis",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "airflow-worker-cpu-heavy",
        "airflow-init",
    }
)
# The one environment every Airflow service must have, with these values at least.
SHARED_SETTINGS = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "bureau:user,ops:viewer",
    "AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES": "warehouse",
}
SHARED_REQUIRED_KEYS = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "LOOKBACK_WAREHOUSE_URL",
    "LOOKBACK_DATA_DIR",
)
DATA_DIR = "/opt/airflow/data"
# Where the stack's files must be mounted in every Airflow container (LOOKBACK_DATA_DIR and
# the folders under it that lookback reads and writes: include/lookback/paths.py,
# plugins/lookback_dags.py, lookback.run).
DATA_MOUNTS = {
    DATA_DIR: "the data folder (alerts, samples, work files)",
    f"{DATA_DIR}/landing": "the landing zone (departments' exports and flags)",
    f"{DATA_DIR}/returns": "the county offices' returned workbooks",
    f"{DATA_DIR}/runs": "the runs' output",
    "/opt/airflow/dags": "dags/",
    "/opt/airflow/plugins": "plugins/",
    "/opt/airflow/include": "include/",
}

# Compose's interpolation: $$ (a literal $), ${VAR}, ${VAR:-default}, ${VAR-default},
# ${VAR:?message}, ${VAR?message}, ${VAR:+other}, ${VAR+other} and $VAR.
_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?+])(?P<argument>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)
_REQUIRED = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):\?(?P<message>[^}]+)\}")
# A URL's password: scheme://user:PASSWORD@ (the password may be a ${...} reference with spaces).
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:(?P<password>\$\{[^}]*\}|[^@\s/]*)@")
_PASSWORD_FLAG = re.compile(r"--(?:requirepass|password)[= ]+\"?(?P<password>[^\s\"]+)")
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|(?:^|_)KEY$")
_RUNTIME_REFERENCE = re.compile(r"\$\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")


class InterpolationError(ValueError):
    """A required variable is unset or empty, as ``docker compose`` would report it."""


@dataclass(frozen=True)
class Stack:
    """The files that make up the stack, read once; the checks never touch the disk."""

    compose: dict[str, Any]
    env_example: dict[str, str]
    dockerfile: str
    dockerignore: str
    gitignore: str
    init_sql: str
    dag_sources: str


def load_compose(text: str) -> dict[str, Any]:
    """The compose file as plain data: merge keys applied, and every alias a copy of its own
    (yaml shares the anchored objects; a check or a mutation of one service must not see or
    change another's)."""
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return dict(json.loads(json.dumps(document)))


def parse_env_file(text: str) -> dict[str, str]:
    """``NAME=value`` lines of an env file; comments and blank lines skipped."""
    values = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, separator, value = stripped.partition("=")
        assert separator, f".env.example: not NAME=value: {line!r}"
        values[name.strip()] = value.strip()
    return values


def read_stack(root: Path = ROOT) -> Stack:
    return Stack(
        compose=load_compose((root / "docker-compose.yaml").read_text(encoding="utf-8")),
        env_example=parse_env_file((root / ".env.example").read_text(encoding="utf-8")),
        dockerfile=(root / "Dockerfile").read_text(encoding="utf-8"),
        dockerignore=(root / ".dockerignore").read_text(encoding="utf-8"),
        gitignore=(root / ".gitignore").read_text(encoding="utf-8"),
        init_sql=(root / "docker" / "postgres-init.sql").read_text(encoding="utf-8"),
        dag_sources="\n".join(
            path.read_text(encoding="utf-8")
            for folder in ("dags", "plugins")
            for path in sorted((root / folder).glob("*.py"))
        ),
    )


def interpolate(value: Any, environment: Mapping[str, str]) -> Any:
    """``value`` with every string interpolated as Compose does it."""
    if isinstance(value, dict):
        return {key: interpolate(item, environment) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environment) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        operator, argument = match["operator"], match["argument"] or ""
        current = environment.get(name)
        is_set = current is not None
        is_filled = bool(current)
        if operator in (":?", "?") and not (is_filled if operator == ":?" else is_set):
            raise InterpolationError(f"required variable {name} is missing a value: {argument}")
        if operator == ":-":
            return current if is_filled and current is not None else argument
        if operator == "-":
            return current if current is not None else argument
        if operator == ":+":
            return argument if is_filled else ""
        if operator == "+":
            return argument if is_set else ""
        return current or ""

    return _REFERENCE.sub(substitute, value)


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string of the document (keys' values), with its path."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


def referenced_variables(document: Any) -> set[str]:
    """The names of the variables Compose fills in (``$$`` is no reference)."""
    return {
        match["braced"] or match["named"]
        for _, text in strings(document)
        for match in _REFERENCE.finditer(text)
        if not match["escaped"]
    }


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment, given as a mapping or as a list of ``NAME=value``."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(item.partition("=")[::2] for item in environment)
    return {str(key): "" if value is None else str(value) for key, value in environment.items()}


def command_text(service: Mapping[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def airflow_services(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in compose.get("services", {}).items() if name.startswith("airflow-")}


def mount_targets(service: Mapping[str, Any]) -> set[str]:
    """The container paths a service mounts (short ``source:target[:mode]`` or long syntax)."""
    targets = set()
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            targets.add(str(volume.get("target", "")))
        else:
            parts = str(volume).split(":")
            targets.add(parts[1] if len(parts) > 1 else parts[0])
    return targets


def resolved(stack: Stack) -> dict[str, Any]:
    """The compose file interpolated, for reading URLs and mounts: with .env.example's values,
    and a stand-in for a variable it lacks (which env_example_problems reports)."""
    environment = {name: stack.env_example.get(name) or "unset" for name in referenced_variables(stack.compose)}
    return dict(interpolate(stack.compose, environment))


# The checks: each returns what is wrong, in words; nothing wrong is an empty list.


def schema_problems(stack: Stack) -> list[str]:
    try:
        resolved = interpolate(stack.compose, stack.env_example)
    except InterpolationError as error:
        return [f"interpolation with .env.example's values: {error}"]
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"schema: {'/'.join(str(part) for part in error.absolute_path) or '(top)'}: {error.message}"
        for error in validator.iter_errors(resolved)
    ]


def service_problems(stack: Stack) -> list[str]:
    services = stack.compose.get("services", {})
    problems = [f"service {name} is missing" for name in sorted(REQUIRED_SERVICES - services.keys())]
    for name, service in services.items():
        if "profiles" in service or name == "airflow-init":
            continue  # run on demand, or once
        if "test" not in service.get("healthcheck", {}):
            problems.append(f"service {name} has no health check")
    for name, service in airflow_services(stack.compose).items():
        depends_on = service.get("depends_on", {})
        for needed in ("postgres", "redis"):
            if depends_on.get(needed, {}).get("condition") != "service_healthy":
                problems.append(f"service {name} does not wait for {needed} to be healthy")
        if name == "airflow-init" or "profiles" in service:
            continue
        if depends_on.get("airflow-init", {}).get("condition") != "service_completed_successfully":
            problems.append(f"service {name} does not wait for airflow-init to complete")
        if name.startswith("airflow-worker") and depends_on.get("airflow-apiserver", {}).get("condition") != (
            "service_healthy"
        ):
            problems.append(f"worker {name} does not wait for the API server (its execution API) to be healthy")
    return problems


def shared_environment_problems(stack: Stack) -> list[str]:
    common = stack.compose.get("x-airflow-common", {}).get("environment")
    if not isinstance(common, dict):
        return ["x-airflow-common has no environment mapping (the anchor every Airflow service shares)"]
    problems = [f"the shared environment lacks {key}" for key in SHARED_REQUIRED_KEYS if key not in common]
    problems += [
        f"the shared environment sets {key}={common.get(key)!r}, not {value!r}"
        for key, value in SHARED_SETTINGS.items()
        if common.get(key) != value
    ]
    resolved_common = environment_of(resolved(stack).get("x-airflow-common", {}))
    broker = resolved_common.get("AIRFLOW__CELERY__BROKER_URL", "")
    if urlsplit(broker).scheme != "redis" or urlsplit(broker).hostname != "redis":
        problems.append(f"the Celery broker is not the redis service: {broker!r}")
    metadata = resolved_common.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if not metadata.startswith("postgresql") or urlsplit(metadata).hostname != "postgres":
        problems.append(f"the metadata database is not PostgreSQL on the postgres service: {metadata!r}")
    for name, service in airflow_services(stack.compose).items():
        environment = environment_of(service)
        for key, value in common.items():
            if environment.get(key) != str(value):
                problems.append(f"service {name}: {key} is {environment.get(key)!r}, not the shared value")
    return problems


def secret_problems(stack: Stack) -> list[str]:
    """Every password and secret must be a required reference, ``${VAR:?message}``."""
    problems = []
    blocks = {"x-airflow-common": stack.compose.get("x-airflow-common", {})}
    blocks |= {f"services.{name}": service for name, service in stack.compose.get("services", {}).items()}
    for where, block in blocks.items():
        for key, value in environment_of(block).items():
            if _SECRET_NAME.search(key) and not key.endswith("_FILE") and not _REQUIRED.fullmatch(value):
                problems.append(f"{where}: {key} is not a ${{VAR:?message}} reference: {value!r}")
    for path, text in strings(stack.compose):
        for pattern in (_URL_PASSWORD, _PASSWORD_FLAG):
            for match in pattern.finditer(text):
                password = match["password"]
                if not (_REQUIRED.fullmatch(password) or _RUNTIME_REFERENCE.fullmatch(password)):
                    problems.append(f"{path}: a password that is not a ${{VAR:?message}} reference: {password!r}")
    if re.search(r"password\s+'", stack.init_sql, re.IGNORECASE):
        problems.append("docker/postgres-init.sql sets a literal password")
    return problems


def env_example_problems(stack: Stack) -> list[str]:
    listed = stack.env_example.keys()
    problems = [
        f"variable {name} is used by docker-compose.yaml but not listed in .env.example"
        for name in sorted(referenced_variables(stack.compose) - listed)
    ]
    required = {match["name"] for _, text in strings(stack.compose) for match in _REQUIRED.finditer(text)}
    problems += [
        f".env.example gives {name} no placeholder value"
        for name in sorted(required & listed)
        if not stack.env_example[name]
    ]
    if ".env" not in {line.strip().lstrip("/") for line in stack.gitignore.splitlines()}:
        problems.append(".gitignore does not ignore .env")
    if ".env" not in {line.strip() for line in stack.dockerignore.splitlines()}:
        problems.append(".dockerignore does not keep .env out of the image")
    return problems


def queue_and_pool_problems(stack: Stack) -> list[str]:
    """Each queue a DAG names has a worker listening on it; each pool a task asks for is created."""
    problems = []
    queues = set(re.findall(r"\bqueue=\"(\w+)\"", stack.dag_sources)) | {"default"}
    pools = set(re.findall(r"\bpool=\"(\w+)\"", stack.dag_sources))
    pools |= set(re.findall(r"^\w*POOL\s*=\s*\"(\w+)\"", stack.dag_sources, re.MULTILINE))
    listening: dict[str, set[str]] = {}
    for name, service in airflow_services(stack.compose).items():
        words = command_text(service).split()
        if words[:2] == ["celery", "worker"]:
            flags = [words[index + 1] for index, word in enumerate(words[:-1]) if word in ("-q", "--queues")]
            for queue in ",".join(flags).split(",") if flags else ["default"]:
                listening.setdefault(queue, set()).add(name)
    problems += [f"no Celery worker listens on queue {queue}" for queue in sorted(queues - listening.keys())]
    heavy = listening.get("cpu_heavy", set())
    if heavy != {"airflow-worker-cpu-heavy"}:
        problems.append(f"the cpu_heavy queue is served by {sorted(heavy)}, not airflow-worker-cpu-heavy alone")
    init = command_text(stack.compose.get("services", {}).get("airflow-init", {}))
    if "airflow db migrate" not in init:
        problems.append("airflow-init does not migrate the metadata database")
    problems += [
        f"airflow-init does not create pool {pool}" for pool in sorted(pools) if f"pools set {pool} " not in init
    ]
    return problems


def database_problems(stack: Stack) -> list[str]:
    common = environment_of(resolved(stack).get("x-airflow-common", {}))
    metadata = urlsplit(common.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", ""))
    warehouse = urlsplit(common.get("LOOKBACK_WAREHOUSE_URL", ""))
    problems = []
    if warehouse.scheme != "postgresql+psycopg":
        problems.append(f"the warehouse URL is not postgresql+psycopg: {warehouse.scheme!r}")
    if (warehouse.hostname, warehouse.port, warehouse.path) == (metadata.hostname, metadata.port, metadata.path):
        problems.append("the warehouse is Airflow's metadata database")
    database = warehouse.path.lstrip("/")
    if not re.search(rf"create database {re.escape(database)}\b", stack.init_sql, re.IGNORECASE):
        problems.append(f"docker/postgres-init.sql does not create the warehouse database {database!r}")
    postgres = stack.compose.get("services", {}).get("postgres", {})
    if not any(
        "postgres-init.sql" in str(volume) and "docker-entrypoint-initdb.d" in str(volume)
        for volume in postgres.get("volumes", [])
    ):
        problems.append("the postgres service does not run docker/postgres-init.sql")
    return problems


def volume_problems(stack: Stack) -> list[str]:
    problems = []
    compose = resolved(stack)
    for name, service in airflow_services(compose).items():
        targets = mount_targets(service)
        problems += [
            f"service {name} does not mount {what} at {target}"
            for target, what in DATA_MOUNTS.items()
            if target not in targets
        ]
        if environment_of(service).get("LOOKBACK_DATA_DIR") != DATA_DIR:
            problems.append(f"service {name}: LOOKBACK_DATA_DIR is not {DATA_DIR}")
    declared = set(compose.get("volumes", {}) or {})
    for name, service in compose.get("services", {}).items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if not source.startswith(("/", ".", "$", "~")) and source not in declared:
                problems.append(f"service {name} mounts the undeclared named volume {source}")
    return problems


def dockerfile_problems(stack: Stack) -> list[str]:
    text = stack.dockerfile
    problems = []
    bases = re.findall(r"^ARG PYTHON_IMAGE=(\S+)|^FROM (\S+)", text, re.MULTILINE)
    images = {image for pair in bases for image in pair if image and not image.startswith("$")}
    if not images or not all(
        re.fullmatch(r"python:3\.11-slim\S*|apache/airflow:3\.3\.2-python3\.11", image) for image in images
    ):
        problems.append(
            f"the image is not built from python:3.11-slim or apache/airflow:3.3.2-python3.11: {sorted(images)}"
        )
    if not re.search(r"^COPY .*\buv\.lock\b", text, re.MULTILINE):
        problems.append("the Dockerfile does not copy uv.lock into the build")
    installs = re.findall(r"^RUN .*\buv (?:sync|export)\b.*$", text, re.MULTILINE)
    if not installs or not all(re.search(r"--(?:locked|frozen)\b", line) for line in installs):
        problems.append(
            "the Dockerfile does not install with `uv sync/export --locked` (uv.lock the only source of versions)"
        )
    if any("--no-dev" not in line for line in installs):
        problems.append("the Dockerfile installs the dev dependency group")
    unpinned = [line for line in re.findall(r"^RUN .*\bpip install\b.*$", text, re.MULTILINE) if "uv==" not in line]
    problems += [f"the Dockerfile installs packages outside the lock: {line}" for line in unpinned]
    services = stack.compose.get("services", {})
    built = stack.compose.get("x-airflow-common", {}).get("build")
    if built not in (".", {"context": "."}, {"context": ".", "dockerfile": "Dockerfile"}):
        problems.append(f"the Airflow services are not built from this folder's Dockerfile: build={built!r}")
    problems += [
        f"service {name} does not run the project's image"
        for name, service in airflow_services(stack.compose).items()
        if service.get("build") != built or service.get("image") != services.get("airflow-apiserver", {}).get("image")
    ]
    return problems


CHECKS: dict[str, Callable[[Stack], list[str]]] = {
    "schema": schema_problems,
    "services": service_problems,
    "shared environment": shared_environment_problems,
    "secrets": secret_problems,
    ".env.example": env_example_problems,
    "queues and pools": queue_and_pool_problems,
    "databases": database_problems,
    "volumes": volume_problems,
    "Dockerfile": dockerfile_problems,
}


def all_problems(stack: Stack) -> list[str]:
    return [problem for check in CHECKS.values() for problem in check(stack)]


@pytest.fixture(scope="module")
def stack() -> Stack:
    return read_stack()


@pytest.mark.parametrize("check", list(CHECKS))
def test_the_stack_passes(stack: Stack, check: str) -> None:
    assert CHECKS[check](stack) == []


def test_the_file_interpolates_only_with_every_required_variable(stack: Stack) -> None:
    # Compose stops when a required variable is empty; so does the interpolation here.
    without_redis = {**stack.env_example, "REDIS_PASSWORD": ""}
    with pytest.raises(InterpolationError, match="REDIS_PASSWORD"):
        interpolate(stack.compose, without_redis)
    assert interpolate("$${HOSTNAME} ${A:-x} ${B-y} ${C:+z}", {"B": "", "C": "1"}) == "${HOSTNAME} x  z"


def test_the_workers_listen_where_the_county_tasks_go(stack: Stack) -> None:
    services = stack.compose["services"]
    assert command_text(services["airflow-worker-cpu-heavy"]).split()[:4] == ["celery", "worker", "-q", "cpu_heavy"]
    assert command_text(services["airflow-worker"]).split()[:4] == ["celery", "worker", "-q", "default"]


def _edit(path: str, value: Any) -> Callable[[Stack], Stack]:
    """A mutation setting ``value`` at a dotted path of the compose file (None: delete it)."""

    def mutate(original: Stack) -> Stack:
        compose = copy.deepcopy(original.compose)
        *parents, last = path.split("/")
        node = compose
        for part in parents:
            node = node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
        return replace(original, compose=compose)

    return mutate


def _text(field: str, old: str, new: str) -> Callable[[Stack], Stack]:
    def mutate(original: Stack) -> Stack:
        text = getattr(original, field)
        assert old in text, f"{field} no longer holds {old!r}: update the mutation"
        return replace(original, **{field: text.replace(old, new)})

    return mutate


def _drop_env_example(name: str) -> Callable[[Stack], Stack]:
    def mutate(original: Stack) -> Stack:
        return replace(original, env_example={k: v for k, v in original.env_example.items() if k != name})

    return mutate


LITERAL_URL = "postgresql+psycopg://airflow:airflow@postgres/airflow"
# (what is broken, how, a phrase the checks must then report)
MUTATIONS = [
    (
        "a literal password",
        _edit("services/postgres/environment/POSTGRES_PASSWORD", "airflow"),
        "POSTGRES_PASSWORD is not",
    ),
    (
        "a password with a default",
        _edit("services/redis/environment/REDIS_PASSWORD", "${REDIS_PASSWORD:-redis}"),
        "REDIS_PASSWORD is not",
    ),
    (
        "a literal password in a URL",
        _edit("services/airflow-scheduler/environment/AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", LITERAL_URL),
        "a password that is not a ${VAR:?message} reference: 'airflow'",
    ),
    ("a literal Redis password", _edit("services/redis/command", "redis-server --requirepass hunter2"), "'hunter2'"),
    ("a missing service", _edit("services/airflow-triggerer", None), "service airflow-triggerer is missing"),
    (
        "a missing health check",
        _edit("services/airflow-scheduler/healthcheck", None),
        "airflow-scheduler has no health check",
    ),
    (
        "a worker started before the init",
        _edit("services/airflow-worker/depends_on/airflow-init", None),
        "airflow-worker does not wait for airflow-init",
    ),
    (
        "a schema violation",
        _edit("services/redis/depends_on", {"postgres": {"condition": "service_healty"}}),
        "schema: services/redis",
    ),
    (
        "another executor",
        _edit("services/airflow-worker/environment/AIRFLOW__CORE__EXECUTOR", "LocalExecutor"),
        "airflow-worker: AIRFLOW__CORE__EXECUTOR",
    ),
    (
        "a JWT secret of its own",
        _edit("services/airflow-triggerer/environment/AIRFLOW__API_AUTH__JWT_SECRET", "${OTHER_SECRET:?x}"),
        "airflow-triggerer: AIRFLOW__API_AUTH__JWT_SECRET",
    ),
    (
        "a broker that is not Redis",
        _edit("x-airflow-common/environment/AIRFLOW__CELERY__BROKER_URL", "amqp://rabbit/"),
        "the Celery broker is not the redis service",
    ),
    (
        "no worker for cpu_heavy",
        _edit("services/airflow-worker-cpu-heavy/command", "celery worker -q default"),
        "no Celery worker listens on queue cpu_heavy",
    ),
    (
        "cpu_heavy on the default worker too",
        _edit("services/airflow-worker/command", "celery worker -q default,cpu_heavy"),
        "the cpu_heavy queue is served by",
    ),
    (
        "a pool never created",
        _text("dag_sources", 'pool="cpu_heavy"', 'pool="county_slots"'),
        "does not create pool county_slots",
    ),
    (
        "the warehouse in the metadata database",
        _edit(
            "x-airflow-common/environment/LOOKBACK_WAREHOUSE_URL",
            "postgresql+psycopg://airflow:${POSTGRES_PASSWORD:?x}@postgres/airflow",
        ),
        "the warehouse is Airflow's metadata database",
    ),
    (
        "a warehouse never created",
        _text("init_sql", "create database warehouse", "create database lookback"),
        "does not create the warehouse database",
    ),
    (
        "a literal warehouse password",
        _text("init_sql", "password :'warehouse_password'", "password 'lookback'"),
        "literal password",
    ),
    (
        "no landing folder",
        _edit("services/airflow-triggerer/volumes", ["lookback-data:/opt/airflow/data"]),
        "airflow-triggerer does not mount the landing zone",
    ),
    (
        "a variable not in .env.example",
        _drop_env_example("LOOKBACK_OPS_PASSWORD"),
        "LOOKBACK_OPS_PASSWORD is used by docker-compose.yaml but not listed",
    ),
    (".env committed", _text("gitignore", "\n.env\n", "\n"), ".gitignore does not ignore .env"),
    (
        "a build that ignores the lock",
        _text("dockerfile", "uv sync --locked --no-dev --no-editable", "uv sync --no-dev --no-editable"),
        "--locked",
    ),
    (
        "packages beside the lock",
        _text("dockerfile", "FROM ${PYTHON_IMAGE}\n", "FROM ${PYTHON_IMAGE}\nRUN pip install apache-airflow\n"),
        "outside the lock",
    ),
    (
        "another base image",
        _text("dockerfile", "python:3.11-slim-trixie", "python:3.12-slim"),
        "the image is not built from",
    ),
]


@pytest.mark.parametrize(("broken", "mutate", "reported"), MUTATIONS, ids=[case[0] for case in MUTATIONS])
def test_a_broken_stack_is_rejected(stack: Stack, broken: str, mutate: Callable[[Stack], Stack], reported: str) -> None:
    problems = all_problems(mutate(stack))
    assert any(reported in problem for problem in problems), f"{broken}: not reported; got {problems}"
