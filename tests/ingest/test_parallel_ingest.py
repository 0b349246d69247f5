"""A batch's sources ingested in worker processes store what ingesting them one after
another in one process stores, and fail as it fails."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lookback.errors import ConfigError, DeliveryError, LookbackError
from lookback.ingest import load
from lookback.ingest.load import SourceAccounting
from lookback.ingest.parallel import BOOKKEEPING_TABLES, WORKERS_ENV, ingest_workers
from lookback.run import connect_warehouse
from lookback.sources import SourceSpec
from tests import steps


def _stored(warehouse_url: str, batch_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every ingest table's rows of the batch in key order, without the batch and the time."""
    warehouse = connect_warehouse(warehouse_url)
    names = [*BOOKKEEPING_TABLES, *(warehouse.specs[source].staging_table for source in sorted(warehouse.specs))]
    stored: dict[str, list[tuple[Any, ...]]] = {}
    try:
        with warehouse.engine.connect() as connection:
            for name in names:
                table = warehouse.table(name)
                columns = [column for column in table.columns if column.name not in ("batch_id", "ingested_at")]
                query = select(*columns).where(table.c.batch_id == batch_id).order_by(*table.primary_key.columns)
                stored[name] = [tuple(row) for row in connection.execute(query)]
    finally:
        warehouse.dispose()
    return stored


def _without_batch(accountings: list[SourceAccounting]) -> list[SourceAccounting]:
    return [replace(accounting, batch_id="") for accounting in accountings]


def test_workers_store_what_one_process_stores(
    generated_batch: Path, warehouse_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(WORKERS_ENV, "1")
    alone = steps.ingest(generated_batch, warehouse=warehouse_url, batch="alone")
    monkeypatch.setenv(WORKERS_ENV, "2")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lookback"):
        steps.ingest(generated_batch, warehouse=warehouse_url, batch="workers")
        # Loaded again: what the first load wrote is replaced, not added to.
        workers = steps.ingest(generated_batch, warehouse=warehouse_url, batch="workers")

    assert [item.source for item in workers] == ["dibao", "housing", "hukou", "insurance", "registry"]
    assert _without_batch(workers) == _without_batch(alone)
    stored = _stored(warehouse_url, "workers")
    assert stored == _stored(warehouse_url, "alone")
    assert all(stored[name] for name in ("ingest_accounting", "quarantine", "skipped_rows", "value_problems"))
    # The workers' log lines reach this process's loggers.
    accounted = [record for record in caplog.records if ": delivered " in record.getMessage()]
    sources = sorted(record.getMessage().split(":")[0] for record in accounted)
    assert sources == sorted(2 * ["dibao", "housing", "hukou", "insurance", "registry"])
    assert {record.processName for record in accounted} - {"MainProcess"}


def test_a_source_failing_in_a_worker_fails_as_in_one_process(
    generated_batch: Path, warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / generated_batch.name
    shutil.copytree(generated_batch, landing)
    (landing / "insurance_enrolment.csv").write_text("姓名,性别\r\n王伟,男\r\n", encoding="utf-8-sig")
    messages: dict[str, str] = {}
    for workers, batch in (("1", "alone"), ("2", "workers")):
        monkeypatch.setenv(WORKERS_ENV, workers)
        with pytest.raises(DeliveryError) as raised:
            steps.ingest(landing, warehouse=warehouse_url, batch=batch)
        messages[batch] = str(raised.value)

    assert messages["workers"] == messages["alone"]
    assert messages["workers"].startswith("insurance_enrolment.csv: required column(s) 公民身份号码")
    # The sources before it are loaded, whole; nothing of the failing source is.
    stored = _stored(warehouse_url, "workers")
    alone = _stored(warehouse_url, "alone")
    loaded = [row[0] for row in stored["ingest_accounting"]]
    assert loaded[:3] == ["dibao", "housing", "hukou"]
    assert "insurance" not in loaded
    assert not stored["staging_insurance"]
    for name in ("staging_dibao", "staging_housing", "staging_hukou"):
        assert stored[name] == alone[name]
    if warehouse_url.startswith("sqlite"):
        # As in one process, the sources after it are not loaded.
        assert stored == alone


def test_workers_per_core_at_most_one_per_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    url = "sqlite:////tmp/warehouse.sqlite"
    assert ingest_workers(5, url, {}) == 2
    assert ingest_workers(1, url, {}) == 1
    assert ingest_workers(5, url, {WORKERS_ENV: "1"}) == 1
    assert ingest_workers(5, url, {WORKERS_ENV: " 3 "}) == 3
    assert ingest_workers(2, url, {WORKERS_ENV: "8"}) == 2
    assert ingest_workers(5, "postgresql+psycopg://reader@db/warehouse", {}) == 2
    # A warehouse in this process's memory is only this process's.
    assert ingest_workers(5, "sqlite://", {WORKERS_ENV: "2"}) == 1
    for wrong in ("0", "two", "-1"):
        with pytest.raises(ConfigError, match=WORKERS_ENV):
            ingest_workers(5, url, {WORKERS_ENV: wrong})


def test_a_worker_that_ends_abruptly_fails_the_batch(
    generated_batch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest = load.ingest_source

    def killed_on_insurance(spec: SourceSpec, *args: Any, **kwargs: Any) -> SourceAccounting:
        if spec.source == "insurance":
            os._exit(9)  # as the kernel's out-of-memory killer ends it
        return ingest(spec, *args, **kwargs)

    monkeypatch.setattr(
        "lookback.ingest.parallel.ingest_source", killed_on_insurance
    )  # the workers are forked: theirs too
    monkeypatch.setenv(WORKERS_ENV, "2")
    with pytest.raises(LookbackError, match=r"^batch b1: a worker process ingesting its sources ended abruptly"):
        steps.ingest(generated_batch, warehouse=f"sqlite:///{tmp_path / 'warehouse.sqlite'}", batch="b1")
