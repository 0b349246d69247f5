"""Passwords and connection strings come from Airflow connections or the environment, never
from the repository: no tracked file (``git ls-files``) holds a password, in a connection
URL or a setting, other than a documented placeholder (``change-me-…`` as in
``.env.example``, a ``${VARIABLE}`` reference, ``user:password@``-style examples) or one of
the few fake values tests use on purpose (listed below, with why); and a DAG run's
``warehouse`` param that carries a password is refused, by the DAGs' param schema at
trigger time and by the run itself."""

from __future__ import annotations

import ast
import re
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from lookback.errors import ConfigError
from lookback.run import Run, check_no_password

ROOT = Path(__file__).resolve().parents[1]

# scheme://user:PASSWORD@ (a ${...} reference may hold spaces).
URL_PASSWORD = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s'\"`]*:(?P<password>\$\{[^}]*\}|[^@\s/'\"`]+)@")
# NAME=value / NAME: value / NAME = "value" of a setting whose name says it is secret.
SECRET_SETTING = re.compile(
    r"""(?<![{$])(?P<name>\b[A-Za-z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|FERNET|API_KEY|SECRET_KEY)[A-Za-z0-9_]*)"""
    r"""["']?\s*[:=]\s*(?P<quote>["']?)(?P<value>\$\{[^}]*\}|[^"'\s,;)}{\[#]*)""",
    re.IGNORECASE,
)
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
# Values that stand for a password without being one.
PLACEHOLDER = re.compile(
    r"""^(?:\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\{[^}]*\}|<[^>]*>|change-me[A-Za-z0-9_-]*|\*+|x+|"""
    r"""password|passwd|secret|pass|pw|token|user|[a-z_]*(?:password|secret|token)[a-z_]*)$""",
    re.IGNORECASE,
)
# Fake values some tests hold on purpose, by file: they are no one's password.
KNOWN_FAKES = {
    # The resolver's test: a password with characters a URL must escape.
    ("tests/dags/test_lookback_connections.py", "p%40ss%2Fw%3Ard"),
    # The compose checks' mutation: Airflow's well-known default, which they must refuse.
    ("tests/test_compose.py", "airflow"),
    # The test server trusts its user: the test proves this value never shows.
    ("tests/ingest/test_database_source.py", "Pw-never-shown-4711"),
    # The same resolver's test: the connection's password as Airflow stores it.
    ("tests/dags/test_lookback_connections.py", "p@ss/w:rd"),
    # The compose checks' mutation: a literal in the init script, which they must refuse.
    ("tests/test_compose.py", "lookback"),
}
# Third-party files shipped as they are (the Data Docs' scripts and styles, minified).
VENDORED = ("include/data_docs_assets/",)
# Files that hold secrets wherever they are: never tracked.
SECRET_FILES = re.compile(r"(?:^|/)(?:\.env|passwords\.json|stack\.json|id_rsa|id_ed25519|[^/]*\.pem|[^/]*\.key)$")
# Settings whose value names a file, a variable or a word list, not a secret.
NOT_A_SECRET_NAME = re.compile(r"(?:_FILE|_NAME|_PREFIX|_DIR|_PATH|_ENV|_WORDS|S_FILE)$", re.IGNORECASE)


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [name for name in listed.decode("utf-8").split("\0") if name]


def _text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def secrets_in(text: str, name: str) -> list[str]:
    """Where ``text`` (the file ``name``) holds something that looks like a real password:
    ``name:line: what``, the value itself never shown."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in URL_PASSWORD.finditer(line):
            if not _allowed(match["password"], name):
                found.append(f"{name}:{number}: a connection URL with a password")
        for match in SECRET_SETTING.finditer(line):
            value = match["value"]
            if NOT_A_SECRET_NAME.search(match["name"]) or not value or _allowed(value, name):
                continue
            if name.endswith(".py") and not match["quote"]:
                continue  # Python code: a name, a call, an expression; a literal is quoted
            found.append(f"{name}:{number}: {match['name']} set to a literal value")
        if PRIVATE_KEY.search(line):
            found.append(f"{name}:{number}: a private key")
    return found


def _allowed(value: str, name: str) -> bool:
    return bool(PLACEHOLDER.match(value)) or (name, value) in KNOWN_FAKES


def test_no_tracked_file_holds_a_password() -> None:
    files = tracked_files()
    assert "docker-compose.yaml" in files and ".env.example" in files  # the listing is the repository's
    assert [name for name in files if SECRET_FILES.search(name)] == []
    found = []
    for name in files:
        if name == "uv.lock" or name.startswith(VENDORED) or not (ROOT / name).is_file():
            continue
        text = _text(ROOT / name)
        if text is not None:
            found += secrets_in(text, name)
    assert found == [], "\n".join(found)


# The samples below are made when the tests run: this file is tracked and scanned too.
FAKE = "hunter" + "2"
KEY_SAMPLE = "Zm9vYmFyYmF6cXV4" * 2 + "Zm9vYmFyYmE="


@pytest.mark.parametrize(
    "line",
    [
        f"url = 'postgresql+psycopg://lookback:{FAKE}@db.example/warehouse'",
        f"AIRFLOW__CELERY__BROKER_URL: redis://:{FAKE}@redis:6379/0",
        f"POSTGRES_PASSWORD={FAKE}",
        f"  AIRFLOW__CORE__FERNET_KEY: '{KEY_SAMPLE}'",
        f'WAREHOUSE_PASSWORD = "{FAKE}"',
        "-----BEGIN OPENSSH " + "PRIVATE KEY-----",
    ],
)
def test_the_scan_finds_a_password(line: str) -> None:
    found = secrets_in(f"first line\n{line}\n", "somewhere.yaml")
    assert found and all(item.startswith("somewhere.yaml:2: ") for item in found)
    assert FAKE not in " ".join(found) and KEY_SAMPLE[:8] not in " ".join(found)


@pytest.mark.parametrize(
    "line",
    [
        "POSTGRES_PASSWORD=change-me-postgres",
        "url: postgresql+psycopg://airflow:${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}@postgres/airflow",
        "e.g. ``postgresql+psycopg://reader:secret@db.example/civil``",
        "(driver://user:password@host/database)",
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        'f"postgresql+psycopg://lookback:{secret}@db.example/warehouse"',
        "password=password or None,",  # Python (as the file's name says): code, not a literal
        'PASSWORDS_FILE = "passwords.json"',
        "jwt_secret = shared['jwt_secret']",
    ],
)
def test_placeholders_and_references_are_not_passwords(line: str) -> None:
    assert (
        secrets_in(
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE: /opt/airflow/auth/passwords.json", "compose.yaml"
        )
        == []
    )
    assert secrets_in(line, "somewhere.py") == []


LEAKY_URL = f"postgresql+psycopg://lookback:{FAKE}@db.example/warehouse"
CLEAN_URL = "postgresql+psycopg://lookback@db.example/warehouse"


def test_a_run_refuses_a_warehouse_param_with_a_password() -> None:
    params: dict[str, Any] = {"batch": "b1", "warehouse": LEAKY_URL}
    with pytest.raises(ConfigError, match="carries a password") as refused:
        Run.from_params(params, date(2020, 6, 30))
    assert FAKE not in str(refused.value)
    assert Run.from_params({**params, "warehouse": CLEAN_URL}, date(2020, 6, 30)).warehouse_url == (CLEAN_URL)
    check_no_password(None, "nothing")
    check_no_password("sqlite:////data/warehouse.sqlite", "a file")


def _warehouse_params(path: Path) -> list[ast.expr]:
    """What each ``"warehouse": ...`` entry of a DAG file's params is (its value's expression)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Dict):
            found += [
                value
                for key, value in zip(node.keys, node.values, strict=True)
                if isinstance(key, ast.Constant) and key.value == "warehouse"
            ]
    return found


def test_every_dag_warehouse_param_refuses_a_password() -> None:
    """Airflow validates a triggered run's conf against the params' schema: a URL with a
    password never becomes a stored run (``tests/test_airflow_stack.py`` triggers one).
    Every DAG file's ``warehouse`` param is the shared one, which refuses it."""
    from lookback_dags import warehouse_param

    uses = {path.name: _warehouse_params(path) for path in sorted((ROOT / "dags").glob("*.py"))}
    assert {"lookback_reconcile.py", "lookback_ingest.py", "lookback_rectification.py"} <= {
        name for name, params in uses.items() if params
    }
    for name, expressions in uses.items():
        for expression in expressions:
            assert ast.unparse(expression) == "warehouse_param()", name
    param = warehouse_param()
    for refused in (LEAKY_URL, f"redis://:{FAKE}@redis:6379/0", f"mysql://u:{FAKE}@h/db"):
        with pytest.raises(ValueError, match=r"warehouse|does not match") as error:
            param.resolve(refused)
        assert type(error.value).__name__ == "ParamValidationError"
    assert param.resolve(CLEAN_URL) == CLEAN_URL
    assert param.resolve("sqlite:////data/warehouse.sqlite") == "sqlite:////data/warehouse.sqlite"
    assert param.resolve(None) is None
