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
# Tests run on pytest-xdist workers, one per core already: each ingests its small batches in
# its own process, as before, unless a test sets another number (tests/ingest/test_parallel_ingest.py).
os.environ.setdefault("LOOKBACK_INGEST_WORKERS", "1")

import pytest
from hypothesis import HealthCheck, settings

from lookback.generate.batch import generate_batch
from lookback.sources import SourceSpec, load_source_specs
from tests.postgres import throwaway_database

# The session-wide Airflow (scheduler, DAG processor, triggerer, API server) for the tests
# marked airflow_stack: the fixture ``airflow_stack`` and its client, see tests/airflow_stack.py.
pytest_plugins = ("tests.airflow_stack",)

# Property-based tests (tests/*/test_properties_*.py): ``ci`` (the default) draws the same
# examples on every run, so a failure is seen again and the suite's time does not wander;
# ``thorough`` (HYPOTHESIS_PROFILE=thorough) searches far more widely, with fresh examples.
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=60,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=5_000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def specs() -> dict[str, SourceSpec]:
    return load_source_specs()


@pytest.fixture(scope="session")
def generated_batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated landing batch (about 150 registry persons), shared read-only by tests."""
    folder = tmp_path_factory.mktemp("landing") / "batch-2020-06"
    generate_batch(folder, persons=150, seed=7)
    return folder


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty warehouse, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    else:
        yield from throwaway_database("lookback_test")
