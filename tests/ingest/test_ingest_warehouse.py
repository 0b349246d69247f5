"""The same ingestion on SQLite and on PostgreSQL: every row accounted for, re-runs idempotent."""

from __future__ import annotations

import csv
import sqlite3
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from lookback.pipeline import stored_accounting
from lookback.publish.run_files import work_folder
from lookback.run import connect_warehouse
from lookback.warehouse import create_warehouse_engine
from tests import steps


def _count(warehouse_url: str, table: str, batch_id: str, source: str | None = None) -> int:
    warehouse = connect_warehouse(warehouse_url)
    try:
        selected = warehouse.table(table)
        query = select(func.count()).select_from(selected).where(selected.c.batch_id == batch_id)
        if source is not None and "source" in selected.c:
            query = query.where(selected.c.source == source)
        with warehouse.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())
    finally:
        warehouse.dispose()


def test_generated_batch_every_row_accounted_for(generated_batch: Path, warehouse_url: str) -> None:
    accounting = steps.ingest(generated_batch, warehouse=warehouse_url)

    assert [item.source for item in accounting] == ["dibao", "housing", "hukou", "insurance", "registry"]
    for item in accounting:
        assert item.status == "ingested"
        assert item.balanced, item
        # The stored rows, counted in the tables themselves, add up to what was delivered.
        accepted = _count(warehouse_url, f"staging_{item.source}", item.batch_id)
        skipped = _count(warehouse_url, "skipped_rows", item.batch_id, item.source)
        quarantined = _count(warehouse_url, "quarantine", item.batch_id, item.source)
        assert (accepted, skipped, quarantined) == (item.accepted, item.skipped, item.quarantined)
        assert accepted + skipped + quarantined == item.delivered
    # The generated batch carries blank lines, total lines, broken rows and rows naming
    # nobody: each kind ends where its truth says.
    with (generated_batch.with_name(generated_batch.name + ".truth") / "rows.csv").open(encoding="utf-8") as handle:
        kinds = Counter((row["source"], row["row_kind"]) for row in csv.DictReader(handle))
    for item in accounting:
        assert item.skipped == kinds[(item.source, "blank")] + kinds[(item.source, "total")], item.source
        assert item.quarantined == kinds[(item.source, "broken")] + kinds[(item.source, "nobody")], item.source
    assert sum(kinds[(source, "broken")] for source in ("registry", "insurance", "housing", "hukou")) >= 1
    # The workbook's sheet that was read is stored beside its header row; CSV files have none.
    assert {item.source: item.sheet_name for item in accounting} == {
        "dibao": "农村低保及特困供养花名册",
        "housing": None,
        "hukou": None,
        "insurance": None,
        "registry": None,
    }


def test_reingest_replaces_the_batch(generated_batch: Path, warehouse_url: str) -> None:
    first = steps.ingest(generated_batch, batch="one", warehouse=warehouse_url)
    again = steps.ingest(generated_batch, batch="one", warehouse=warehouse_url)
    steps.ingest(generated_batch, batch="two", warehouse=warehouse_url, sources=["registry"])

    assert [a.as_dict() for a in first] == [a.as_dict() for a in again]
    registry = next(a for a in first if a.source == "registry")
    assert _count(warehouse_url, "staging_registry", "one") == registry.accepted
    assert _count(warehouse_url, "staging_registry", "two") == registry.accepted
    warehouse = connect_warehouse(warehouse_url)
    try:
        assert [a.source for a in stored_accounting(warehouse, "two")] == ["registry"]
        assert stored_accounting(warehouse, "one") == first
    finally:
        warehouse.dispose()


def test_typed_values_survive_the_round_trip(generated_batch: Path, warehouse_url: str) -> None:
    steps.ingest(generated_batch, batch="types", warehouse=warehouse_url, sources=["dibao", "registry"])
    warehouse = connect_warehouse(warehouse_url)
    try:
        dibao = warehouse.staging("dibao")
        registry = warehouse.staging("registry")
        with warehouse.engine.connect() as connection:
            payment, started = connection.execute(
                select(dibao.c.monthly_payment, dibao.c.support_start)
                .where(dibao.c.monthly_payment.is_not(None))
                .limit(1)
            ).one()
            born, valid = connection.execute(
                select(registry.c.identity_number_birth_date, registry.c.identity_number)
                .where(registry.c.identity_number_status == "valid")
                .limit(1)
            ).one()
    finally:
        warehouse.dispose()
    assert payment > 0 and payment.as_tuple().exponent == -2
    assert started.day == 1
    assert born.strftime("%Y%m%d") == valid[6:14]


def test_plain_rows_are_the_rows_sqlalchemy_gives(generated_batch: Path, warehouse_url: str) -> None:
    from lookback.warehouse import Warehouse

    steps.ingest(generated_batch, batch="plain", warehouse=warehouse_url, sources=["registry"])
    warehouse = connect_warehouse(warehouse_url)
    registry = warehouse.staging("registry")
    texts = select(registry.c.source_row, registry.c.row_hash, registry.c.name).where(registry.c.batch_id == "plain")
    dated = select(registry.c.source_row, registry.c.identity_number_birth_date).where(registry.c.batch_id == "plain")
    try:
        with warehouse.engine.connect() as connection:
            for query in (texts, dated):  # the driver's tuples, and rows whose dates are converted
                expected = [tuple(row) for row in connection.execute(query).all()]
                assert Warehouse.plain_rows(connection, query) == expected
            assert len(expected) > 100 and any(isinstance(born, date) for _row, born in expected)
    finally:
        warehouse.dispose()


def test_link_stage_on_each_warehouse(generated_batch: Path, warehouse_url: str) -> None:
    """The link stage writes person_links for every accepted row, on SQLite and PostgreSQL,
    and a second run keeps every person_id."""
    from tests import steps

    accounting = steps.ingest(generated_batch, batch="linked", warehouse=warehouse_url)
    first = steps.link("linked", warehouse_url)
    assert first.rows == sum(item.accepted for item in accounting)
    assert _count(warehouse_url, "person_links", "linked") == first.rows
    warehouse = connect_warehouse(warehouse_url)
    links = warehouse.table("person_links")
    query = select(links.c.source, links.c.source_row, links.c.person_id).where(links.c.batch_id == "linked")
    try:
        with warehouse.engine.connect() as connection:
            before = set(connection.execute(query).all())
        steps.link("linked", warehouse_url)
        with warehouse.engine.connect() as connection:
            after = set(connection.execute(query).all())
    finally:
        warehouse.dispose()
    assert before == after


@pytest.mark.integration
def test_quality_gates_on_each_warehouse(generated_batch: Path, warehouse_url: str, tmp_path: Path) -> None:
    """Both stages validate on SQLite and PostgreSQL with the same outcomes stored, and a
    second validation of a stage replaces its outcomes."""
    from datetime import date

    from tests import steps

    steps.ingest(generated_batch, batch="checked", warehouse=warehouse_url)
    out = tmp_path / "run"
    standardised = steps.validate("standardise", "checked", out, date(2020, 6, 30), warehouse_url)
    steps.link("checked", warehouse_url)
    linked = steps.validate("link", "checked", out, date(2020, 6, 30), warehouse_url)
    assert standardised.passed and linked.passed
    assert set(standardised.rows) == {
        f"standardise.{s}" for s in ("dibao", "housing", "hukou", "insurance", "registry")
    }
    assert standardised.rows["standardise.registry"] == _count(warehouse_url, "staging_registry", "checked")
    assert linked.rows == {"link.person_links": _count(warehouse_url, "person_links", "checked")}
    stored = len(standardised.outcomes) + len(linked.outcomes)
    assert _count(warehouse_url, "quality_results", "checked") == stored
    steps.validate("link", "checked", out, date(2020, 6, 30), warehouse_url)
    assert _count(warehouse_url, "quality_results", "checked") == stored
    work = work_folder(out)  # the gates write beside the run's folder; publish copies the report in
    assert (work / "data_docs" / "index.html").is_file() and not out.exists()
    # A new run of the first gate starts the report afresh: one validation page per suite.
    steps.validate("standardise", "checked", out, date(2020, 6, 30), warehouse_url)
    pages = list((work / "data_docs" / "validations" / "standardise" / "registry").rglob("*.html"))
    assert len(pages) == 1


def test_an_unknown_appraisal_level_is_a_value_problem(warehouse_url: str, tmp_path: Path) -> None:
    """房屋鉴定等级 blank or outside A–D: the row is accepted (its house is known to housing)
    with no level, and the value is listed as a problem; a lower-case level is the level."""
    landing = tmp_path / "landing" / "levels"
    landing.mkdir(parents=True)
    header = (
        "县（市、区）,乡镇,村,户主姓名,户主身份证号,家庭人口数,农户类型,"
        "房屋鉴定等级,鉴定日期,改造方式,改造状态,竣工日期,补助资金（元）"
    )
    rows = [
        "溆浦县,红岩乡,红岩村,张大山,431224197001011233,3,建档立卡贫困户,,2019-09-01,无需改造,,,",
        "溆浦县,红岩乡,红岩村,李小河,431224198002021235,2,建档立卡贫困户,危,2019-09-01,修缮加固,未改造,,",
        "溆浦县,红岩乡,红岩村,王石头,43122419650303123X,4,建档立卡贫困户,c,2019-09-01,修缮加固,未改造,,",
    ]
    (landing / "housing_safety.csv").write_text("\r\n".join([header, *rows]) + "\r\n", encoding="gb18030")

    (accounting,) = steps.ingest(landing, warehouse=warehouse_url, sources=["housing"])

    assert (accounting.accepted, accounting.quarantined) == (3, 0)
    warehouse = connect_warehouse(warehouse_url)
    try:
        staging = warehouse.staging("housing")
        problems = warehouse.table("value_problems")
        with warehouse.engine.connect() as connection:
            levels = connection.execute(
                select(staging.c.source_row, staging.c.appraisal_level, staging.c.appraisal_level_label)
                .where(staging.c.batch_id == "levels")
                .order_by(staging.c.source_row)
            ).all()
            listed = connection.execute(
                select(problems.c.source_row, problems.c.problem)
                .where(problems.c.batch_id == "levels", problems.c.column_name == "appraisal_level")
                .order_by(problems.c.source_row)
            ).all()
    finally:
        warehouse.dispose()
    assert [tuple(row) for row in levels] == [(1, None, None), (2, None, "危"), (3, "C", "c")]
    assert [tuple(row) for row in listed] == [(1, "missing_value"), (2, "code:unknown_value")]


def test_a_warehouse_of_the_earlier_table_names_keeps_its_runs(warehouse_url: str) -> None:
    """The reconcile stage's tables were named lookback_*: a warehouse that has them is
    renamed in place, on SQLite and PostgreSQL, and the runs' history stays."""
    from datetime import UTC, date, datetime

    from sqlalchemy import inspect, text

    from lookback.sources import load_source_specs
    from lookback.warehouse import Warehouse

    earlier = Warehouse(warehouse_url, load_source_specs())
    try:
        runs = earlier.table("reconcile_runs")
        runs.create(earlier.engine)
        with earlier.engine.begin() as connection:
            connection.execute(
                runs.insert().values(
                    run_id="2020-06",
                    batch_id="2020-06",
                    as_of=date(2020, 6, 30),
                    sequence=1,
                    execution=1,
                    counties="431224",
                    looked_back_at=datetime.now(UTC),
                    sources_delivered="registry",
                    rules_not_applied="",
                )
            )
            connection.execute(text("alter table reconcile_runs rename to lookback_runs"))
    finally:
        earlier.dispose()
    warehouse = Warehouse(warehouse_url, load_source_specs())
    try:
        warehouse.ensure_schema()
        tables = set(inspect(warehouse.engine).get_table_names())
        assert "reconcile_runs" in tables and "lookback_runs" not in tables
        with warehouse.engine.connect() as connection:
            assert connection.execute(text("select run_id from reconcile_runs")).scalar_one() == "2020-06"
    finally:
        warehouse.dispose()


def test_a_new_sqlite_warehouse_has_large_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    def page_size(path: Path) -> int:
        engine = create_warehouse_engine(f"sqlite:///{path}")
        with engine.connect() as connection:
            size = int(connection.exec_driver_sql("PRAGMA page_size").scalar_one())
            connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
            connection.commit()
        engine.dispose()
        return size

    assert page_size(tmp_path / "new.sqlite") == 16384
    assert page_size(tmp_path / "new.sqlite") == 16384  # opened again
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as connection:  # an existing warehouse of SQLite's default pages
        connection.execute("CREATE TABLE t (x INTEGER)")
    assert page_size(old) == 4096


def _open_new_warehouse(url: str, start: Any, errors: Any) -> None:
    from lookback.sources import load_source_specs
    from lookback.warehouse import Warehouse

    warehouse = Warehouse(url, load_source_specs())
    try:
        start.wait(60)
        warehouse.ensure_schema()
    except Exception as error:
        errors.put(f"{type(error).__name__}: {str(error).splitlines()[0]}")
    finally:
        warehouse.dispose()


@pytest.mark.postgres
def test_tasks_opening_a_new_postgresql_warehouse_at_once_all_get_its_tables() -> None:
    """Tasks on several workers open a new warehouse at the same moment (the first ingests of
    a distributed run): each finds or makes every table, none fails on another's half-made one."""
    import multiprocessing

    from tests.postgres import throwaway_database

    database = throwaway_database("lookback_schema_race")
    url = next(database)
    try:
        context = multiprocessing.get_context("spawn")
        start, errors = context.Barrier(4), context.Queue()
        processes = [context.Process(target=_open_new_warehouse, args=(url, start, errors)) for _ in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(120)
        assert [process.exitcode for process in processes] == [0] * 4
        found = []
        while not errors.empty():
            found.append(errors.get())
        assert found == []
        with create_warehouse_engine(url).connect() as connection:
            assert connection.execute(select(func.count()).select_from(text("ingest_accounting"))).scalar() == 0
    finally:
        database.close()
