"""Shared fixtures: source definitions, a generated batch, and warehouses on SQLite and PostgreSQL.

PostgreSQL tests use a throw-away database on the server named by
``LOOKBACK_TEST_POSTGRES_URL`` (default: the local server, user postgres). Without a
reachable server they are skipped with a message, except when ``CI=true``, where the
absence is a failure.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# Airflow reads its home once, at import: tests that import it in this process get a
# throw-away one, never the user's ~/airflow. End-to-end runs use their own, per test.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="lookback-test-airflow-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# As in a deployment: the project's plugins/ folder (operators the DAGs import) is Airflow's.
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "plugins")
# Airflow puts that folder on sys.path when it loads plugins; tests of the adapters import them directly.
sys.path.insert(0, os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"])

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from lookback.generate.batch import generate_batch
from lookback.sources import SourceSpec, load_source_specs

POSTGRES_URL = os.environ.get("LOOKBACK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def specs() -> dict[str, SourceSpec]:
    return load_source_specs()


@pytest.fixture(scope="session")
def generated_batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated landing batch (about 150 registry persons), shared read-only by tests."""
    folder = tmp_path_factory.mktemp("landing") / "batch-2020-06"
    generate_batch(folder, persons=150, seed=7)
    return folder


def _postgres_database() -> Iterator[str]:
    admin_url = make_url(POSTGRES_URL)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("select 1"))
    except OperationalError as error:
        admin.dispose()
        message = f"PostgreSQL not reachable at {admin_url.render_as_string(hide_password=True)}: {error.orig}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (required when CI=true)")
        pytest.skip(message)
    name = f"lookback_test_{uuid.uuid4().hex[:12]}"
    # Identifiers cannot be bound parameters: quote the generated name with the dialect's preparer.
    quoted = admin.dialect.identifier_preparer.quote(name)
    with admin.connect() as connection:
        connection.execute(text(f"create database {quoted}"))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"drop database if exists {quoted} with (force)"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty warehouse, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    else:
        yield from _postgres_database()
