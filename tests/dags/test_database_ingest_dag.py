"""A source read from a department's PostgreSQL database, end to end in Airflow: the housing
source configured with a ``database:`` block, its Airflow connection given as Airflow's
``AIRFLOW_CONN_<ID>``, ``ingest_housing`` run with ``dag.test()``; the rows are accounted
and staged as the same rows delivered as a file are."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from lookback.generate.batch import generate_batch
from lookback.ingest.readers import open_delivery
from lookback.settings import read_yaml
from lookback.sources import SourceSpec
from tests import steps
from tests.dags.test_lookback_dag import ROOT, _run_dags
from tests.ingest.test_database_source import _postgres_schema, _write_tables
from tests.postgres import POSTGRES_URL

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.integration]

BATCH = "dbsource"


def test_ingest_dag_reads_a_source_from_the_department_database(tmp_path: Path, specs: dict[str, SourceSpec]) -> None:
    spec = specs["housing"]
    exported = tmp_path / "export" / BATCH
    generate_batch(exported, persons=150, seed=5, noise="typical")
    delivered = open_delivery(exported / "housing_safety.csv", spec)
    rows = [list(record.values) for record in delivered.records if len(record.values) == len(delivered.header)]
    # The same rows as a file, for the accounting to compare with.
    landing_file = tmp_path / "landing-file" / BATCH
    landing_file.mkdir(parents=True)
    shutil.copy(exported / "housing_safety.csv", landing_file)
    (file_accounting,) = steps.ingest(
        landing_file, warehouse=f"sqlite:///{tmp_path / 'file.sqlite'}", sources=["housing"]
    )
    # The include folder of a deployment whose housing source is the department's table.
    include = tmp_path / "include"
    shutil.copytree(ROOT / "include", include, ignore=shutil.ignore_patterns("__pycache__", "lookback"))
    for schema in _postgres_schema(POSTGRES_URL):
        _write_tables(POSTGRES_URL, schema, spec, rows)
        document = read_yaml(spec.path)
        document.pop("file")
        document.pop("header", None)
        document["database"] = {"connection": "housing_db", "schema": schema, "table": "housing_export"}
        document["database"]["order_by"] = ["row_no"]
        document["database"]["chunk_rows"] = 40
        (include / "sources" / "housing.yaml").write_text(
            yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        landing = tmp_path / "data" / "landing" / BATCH
        landing.mkdir(parents=True)  # holds no housing file: the rows are in the database
        warehouse = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
        url = make_url(POSTGRES_URL)
        airflow_connection = {"conn_type": "postgres", "host": url.host, "port": url.port, "login": url.username}
        extra_env = {
            "AIRFLOW_CONN_HOUSING_DB": json.dumps(airflow_connection | {"schema": url.database}),
            "LOOKBACK_INCLUDE_DIR": str(include),
        }
        conf = {"landing": str(landing), "warehouse": warehouse}
        (result,) = _run_dags(tmp_path, [{"dag_id": "ingest_housing", "conf": conf}], extra_env)
        assert result["state"] == "success", (tmp_path / "airflow.log").read_text(encoding="utf-8")[-5000:]
        engine = create_engine(warehouse)
        with engine.connect() as connection:
            stored = connection.execute(
                text(
                    "select file_name, delivered, accepted, skipped, quarantined from ingest_accounting "
                    "where batch_id = :b and source = 'housing'"
                ),
                {"b": BATCH},
            ).one()
        engine.dispose()
        assert stored[0] == f"db:housing_db/{schema}.housing_export"
        assert tuple(stored[1:]) == (
            file_accounting.delivered,
            file_accounting.accepted,
            file_accounting.skipped,
            file_accounting.quarantined,
        )
        assert stored[1] == len(rows) > 50  # two chunks of 40
