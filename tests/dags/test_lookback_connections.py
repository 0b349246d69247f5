"""The Airflow adapter that resolves a source's connection id to a SQLAlchemy URL: an
Airflow connection given as ``AIRFLOW_CONN_<ID>`` in JSON or URI form, read through the
task SDK's ``BaseHook.get_connection``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from lookback.errors import ConfigError, ConnectionNotFound

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


@pytest.fixture
def resolve(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    monkeypatch.syspath_prepend(str(PLUGINS))
    from lookback_connections import airflow_connection_url

    return airflow_connection_url


def test_a_json_connection_becomes_a_psycopg_url(
    resolve: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_HOUSING_DB_JSON",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "db.zhujian.example",
                "login": "reader",
                "password": "p@ss/w:rd",  # characters a URL must escape
                "schema": "housing",
                "port": 5433,
                "extra": {"sslmode": "require", "unrelated": "x"},
            }
        ),
    )
    url = resolve("housing_db_json")
    assert url == "postgresql+psycopg://reader:p%40ss%2Fw%3Ard@db.zhujian.example:5433/housing?sslmode=require"
    assert make_url(url).password == "p@ss/w:rd"


def test_a_uri_connection_becomes_a_psycopg_url(resolve: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_HOUSING_DB_URI", "postgres://reader:secret@127.0.0.1:5432/test")
    assert resolve("housing_db_uri") == "postgresql+psycopg://reader:secret@127.0.0.1:5432/test"


def test_the_sqlalchemy_scheme_extra_chooses_the_driver(
    resolve: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_CIVIL_DB",
        json.dumps(
            {"conn_type": "generic", "host": "h", "schema": "d", "extra": {"sqlalchemy_scheme": "mysql+pymysql"}}
        ),
    )
    assert resolve("civil_db") == "mysql+pymysql://h/d"


def test_a_connection_type_without_a_driver_is_refused(
    resolve: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FILES", json.dumps({"conn_type": "fs", "extra": {"path": "/x"}}))
    with pytest.raises(ConfigError, match=r"Airflow connection 'files' has type 'fs', which lookback cannot read"):
        resolve("files")


def test_a_connection_that_does_not_exist_is_a_clear_error(resolve: Callable[[str], str]) -> None:
    with pytest.raises(ConnectionNotFound, match=r"Airflow connection 'no_such_db' does not exist: add it"):
        resolve("no_such_db")


@pytest.mark.postgres
def test_the_domain_reads_a_source_through_an_airflow_connection(
    resolve: Callable[[str], str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What the DAG's ingest task does: ``ingest_one``/``ingest_source`` given the adapter."""
    from lookback.ingest.load import ingest_source
    from lookback.run import connect_warehouse
    from lookback.sources import load_source_specs
    from tests.ingest.test_database_source import Department, _postgres_schema, _table_spec, _write_tables
    from tests.postgres import POSTGRES_URL

    url = make_url(POSTGRES_URL)
    spec = load_source_specs()["housing"]
    rows = [["溆浦县", "", "", "王伟", "431224198001011238", "3", "一般农户", "C", "2019-05-01", "", "", "", ""]]
    for schema in _postgres_schema(url.render_as_string(hide_password=False)):
        _write_tables(url.render_as_string(hide_password=False), schema, spec, rows)
        airflow_uri = url.set(drivername="postgres").render_as_string(hide_password=False)
        monkeypatch.setenv("AIRFLOW_CONN_HOUSING_DB", airflow_uri)
        database_spec = _table_spec(tmp_path / "sources", spec, Department("unused", schema, tmp_path))
        warehouse = connect_warehouse(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
        accounting = ingest_source(database_spec, None, "b", warehouse, connections=resolve)
        assert (accounting.delivered, accounting.accepted) == (1, 1)
        assert accounting.file_name == f"db:housing_db/{schema}.housing_export"
