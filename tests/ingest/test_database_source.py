"""A source read from a table or a query in the department's database is read as its file
export would be: the same rows give the same accounting and the same staged values.

The department's database is SQLite (fast tests) and PostgreSQL (marker ``postgres``, in a
schema of its own in the test database, dropped afterwards). The rows are a generated
housing export (hard noise) with hand-made rows added so that every outcome occurs: a
blank row, a total line, the header repeated, a row that identifies nobody.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine, select, text
from sqlalchemy.engine import make_url

from lookback.errors import ConfigError, DeliveryError
from lookback.generate.batch import generate_batch
from lookback.generate.writers import headers_of, write_csv
from lookback.ingest.database import DatabaseUnreachable, database_text
from lookback.ingest.load import SourceAccounting, ingest_source
from lookback.ingest.progress import Progress, duration_words
from lookback.ingest.readers import open_delivery
from lookback.run import connect_warehouse
from lookback.settings import read_yaml
from lookback.sources import SourceSpec, load_source_spec, parse_source_spec
from lookback.warehouse import Warehouse
from tests.postgres import POSTGRES_URL, reachable_engine

BATCH = "b"
TABLE = "housing_export"  # the export's rows, numbered by row_no
BATCHES_TABLE = "housing_batches"  # the same rows for batch b, and rows of an earlier batch
PASSWORD = "Pw-never-shown-4711"  # PostgreSQL's test server trusts the user: any password connects
# Columns that say where a row came from and so differ between a file and a table.
WHERE_COLUMNS = {"file_name", "position", "reason"}


@dataclass(frozen=True)
class Department:
    """The department's database: its URL, the schema the tables are in (None: SQLite's
    only one), and the file export holding the same rows."""

    url: str
    schema: str | None
    landing: Path


@pytest.fixture(scope="module")
def housing_rows(tmp_path_factory: pytest.TempPathFactory, specs: dict[str, SourceSpec]) -> list[list[str]]:
    """A generated housing export's records (those a table can hold: a CSV line that lost a
    delimiter has no columns to put its cells in), and rows that take every other way."""
    folder = tmp_path_factory.mktemp("generated") / BATCH
    generate_batch(folder, persons=300, seed=11, noise="hard")
    spec = specs["housing"]
    delivered = open_delivery(folder / "housing_safety.csv", spec)
    width = len(delivered.header)
    rows = [list(record.values) for record in delivered.records if len(record.values) == width]
    nobody = [""] * width
    nobody[0] = "溆浦县"  # a county and nothing else: identifies nobody (quarantined)
    total = [""] * width
    total[0] = "合计"  # a total line (skipped)
    rows[3:3] = [[""] * width, total, list(delivered.header), nobody]  # blank, total, header again, nobody
    rows.append(list(rows[10]))  # the same row twice (accepted, duplicate_of_row)
    return rows


def _write_tables(url: str, schema: str | None, spec: SourceSpec, rows: list[list[str]]) -> None:
    """The rows in ``housing_export`` (row_no and the export's headers; an empty cell is
    NULL) and, with a batch column and rows of another batch, in ``housing_batches``."""
    headers = headers_of(spec)
    metadata = MetaData(schema=schema)
    export = Table(TABLE, metadata, Column("row_no", Integer, primary_key=True), *(Column(h, Text) for h in headers))
    batches = Table(
        BATCHES_TABLE,
        metadata,
        Column("row_no", Integer, primary_key=True),
        Column("batch_id", Text, nullable=False),
        *(Column(h, Text) for h in headers),
    )
    records: list[dict[str, Any]] = [
        {"row_no": number, **{header: cell or None for header, cell in zip(headers, row, strict=True)}}
        for number, row in enumerate(rows, start=1)
    ]
    earlier = [record | {"row_no": -number, "batch_id": "earlier"} for number, record in enumerate(records[:5], 1)]
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            metadata.create_all(connection)
            connection.execute(export.insert(), records)
            connection.execute(batches.insert(), [record | {"batch_id": BATCH} for record in records] + earlier)
    finally:
        engine.dispose()


def _postgres_schema(url: str) -> Iterator[str]:
    """A schema of its own in the test database, dropped afterwards."""
    engine = reachable_engine(url)
    schema = f"lookback_dbsource_{uuid.uuid4().hex[:12]}"
    quoted = engine.dialect.identifier_preparer.quote(schema)
    with engine.connect() as connection:
        connection.execute(text(f"create schema {quoted}"))
    try:
        yield schema
    finally:
        with engine.connect() as connection:
            connection.execute(text(f"drop schema if exists {quoted} cascade"))
        engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def department(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    specs: dict[str, SourceSpec],
    housing_rows: list[list[str]],
) -> Iterator[Department]:
    """The department's database holding the rows, and a landing folder with them as a CSV."""
    spec = specs["housing"]
    folder = tmp_path_factory.mktemp("department")
    landing = folder / "landing" / BATCH
    landing.mkdir(parents=True)
    write_csv(landing / "housing_safety.csv", spec, housing_rows)
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'housing.sqlite'}"
        _write_tables(url, None, spec, housing_rows)
        yield Department(url, None, landing)
        return
    url = make_url(POSTGRES_URL).set(password=PASSWORD).render_as_string(hide_password=False)
    for schema in _postgres_schema(url):
        _write_tables(url, schema, spec, housing_rows)
        yield Department(url, schema, landing)


def _database_spec(folder: Path, spec: SourceSpec, required: bool = True, **database: Any) -> SourceSpec:
    """``spec`` read from the database instead: its YAML with a ``database:`` block for its
    ``file:`` and ``header:``, everything else (columns, codes, quirks) unchanged."""
    document = read_yaml(spec.path)
    document.pop("file")
    document.pop("header", None)
    document["database"] = {"connection": "housing_db", **database}
    document["required"] = required
    folder.mkdir(parents=True, exist_ok=True)
    return parse_source_spec(document, folder / f"{spec.source}.yaml")


def _table_spec(folder: Path, spec: SourceSpec, department: Department, **database: Any) -> SourceSpec:
    block: dict[str, Any] = {"table": TABLE, "order_by": ["row_no"]}
    if department.schema:
        block["schema"] = department.schema
    return _database_spec(folder, spec, **(block | database))


def _stored(warehouse: Warehouse, name: str, drop: set[str] = WHERE_COLUMNS) -> list[dict[str, Any]]:
    table = warehouse.table(name)
    order = [table.c.source_row] + ([table.c.column_name] if "column_name" in table.c else [])
    with warehouse.engine.connect() as connection:
        rows = connection.execute(select(table).order_by(*order))
        return [{key: value for key, value in row._mapping.items() if key not in drop} for row in rows]


def _ingest_file(department: Department, spec: SourceSpec, tmp_path: Path) -> tuple[SourceAccounting, Warehouse]:
    warehouse = connect_warehouse(f"sqlite:///{tmp_path / 'from_file.sqlite'}")
    return ingest_source(spec, department.landing, BATCH, warehouse), warehouse


def _ingest_database(department: Department, spec: SourceSpec, tmp_path: Path) -> tuple[SourceAccounting, Warehouse]:
    warehouse = connect_warehouse(f"sqlite:///{tmp_path / 'from_database.sqlite'}")
    accounting = ingest_source(spec, None, BATCH, warehouse, connections={"housing_db": department.url})
    return accounting, warehouse


def _assert_read_alike(from_file: Warehouse, from_database: Warehouse) -> None:
    """The same rows staged with the same values, the same rows skipped and quarantined for
    the same reasons, the same value problems: all but where each row was found."""
    for table in ("staging_housing", "skipped_rows", "quarantine", "value_problems"):
        assert _stored(from_database, table) == _stored(from_file, table), table


def _counts(accounting: SourceAccounting) -> tuple[int, ...]:
    return (
        accounting.delivered,
        accounting.accepted,
        accounting.skipped,
        accounting.quarantined,
        accounting.value_problems,
    )


@pytest.mark.parametrize("chunk_rows", [50_000, 7])
def test_a_table_reads_as_its_file_export(
    tmp_path: Path,
    specs: dict[str, SourceSpec],
    department: Department,
    housing_rows: list[list[str]],
    chunk_rows: int,
) -> None:
    spec = specs["housing"]
    file_accounting, from_file = _ingest_file(department, spec, tmp_path)
    database_spec = _table_spec(tmp_path / "sources", spec, department, chunk_rows=chunk_rows)
    accounting, from_database = _ingest_database(department, database_spec, tmp_path)

    # Every way a row can go occurs, so that reading them alike says something.
    assert file_accounting.skipped >= 3 and file_accounting.quarantined >= 1 and file_accounting.value_problems > 0
    assert _counts(accounting) == _counts(file_accounting)
    assert accounting.delivered == len(housing_rows)  # every row read is delivered
    assert accounting.balanced
    origin = f"db:housing_db/{department.schema + '.' if department.schema else ''}{TABLE}"
    assert (accounting.status, accounting.file_name, accounting.file_format) == ("ingested", origin, "database")
    assert accounting.ignored_headers == ("row_no",)  # the key is not part of a row
    _assert_read_alike(from_file, from_database)

    quarantined = _stored(from_database, "quarantine", drop=set())
    assert quarantined[0]["file_name"] == origin
    assert quarantined[0]["reason"] == (
        f"{origin}, row 7: neither a usable name (户主姓名) nor a valid identity number (户主身份证号): "
        "identifies nobody"
    )
    skipped = _stored(from_database, "skipped_rows", drop=set())
    assert [(row["source_row"], row["position"], row["reason_code"]) for row in skipped[:3]] == [
        (4, 4, "blank"),
        (5, 5, "total_line"),
        (6, 6, "repeated_header"),
    ]
    staged = _stored(from_database, "staging_housing")
    assert staged[-1]["duplicate_of_row"] == 11  # the row given twice, found as in the file


def test_a_query_reads_the_batch_it_binds(tmp_path: Path, specs: dict[str, SourceSpec], department: Department) -> None:
    spec = specs["housing"]
    _file_accounting, from_file = _ingest_file(department, spec, tmp_path)
    table = f"{department.schema}.{BATCHES_TABLE}" if department.schema else BATCHES_TABLE
    database_spec = _database_spec(
        tmp_path / "sources",
        spec,
        # An identifier in a query is the author's to write; the test's schema name is safe.
        query=f"select * from {table} where batch_id = :batch_id and row_no > :after;",
        parameters={"after": -1000},
        order_by="row_no",
        chunk_rows=10,
    )
    accounting, from_database = _ingest_database(department, database_spec, tmp_path)

    assert accounting.file_name == "db:housing_db/query"
    assert accounting.ignored_headers == ("row_no", "batch_id")
    _assert_read_alike(from_file, from_database)  # the earlier batch's rows are not read


def test_an_empty_result_is_an_optional_source_not_delivered(
    tmp_path: Path, specs: dict[str, SourceSpec], department: Department
) -> None:
    spec = specs["housing"]
    table = f"{department.schema}.{TABLE}" if department.schema else TABLE
    empty: dict[str, Any] = {"query": f"select * from {table} where row_no < 0", "order_by": ["row_no"]}
    warehouse = connect_warehouse(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    connections = {"housing_db": department.url}

    mandatory = _database_spec(tmp_path / "mandatory", spec, **empty)
    with pytest.raises(DeliveryError, match=r"^db:housing_db/query: mandatory source housing .* the query has no rows"):
        ingest_source(mandatory, None, BATCH, warehouse, connections=connections)

    optional = _database_spec(tmp_path / "optional", spec, required=False, **empty)
    accounting = ingest_source(optional, None, BATCH, warehouse, connections=connections)
    assert accounting == SourceAccounting(batch_id=BATCH, source="housing", status="not_delivered")


def test_rows_that_sort_alike_but_differ_are_refused(
    tmp_path: Path, specs: dict[str, SourceSpec], department: Department
) -> None:
    """Ordered by county alone, two different rows of one county could come in either order."""
    spec = specs["housing"]
    database_spec = _table_spec(tmp_path / "sources", spec, department, order_by=["县（市、区）"])
    warehouse = connect_warehouse(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    with pytest.raises(DeliveryError, match=r"rows \d+ and \d+ sort alike by order_by \(县（市、区）\) but differ"):
        ingest_source(database_spec, None, BATCH, warehouse, connections={"housing_db": department.url})
    assert _stored(warehouse, "staging_housing") == []  # nothing of the read is kept


def test_an_order_by_column_missing_from_the_table_names_it(
    tmp_path: Path, specs: dict[str, SourceSpec], department: Department
) -> None:
    spec = specs["housing"]
    database_spec = _table_spec(tmp_path / "sources", spec, department, order_by=["appraisal_id"])
    warehouse = connect_warehouse(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    with pytest.raises(
        DeliveryError, match=r"^db:housing_db/\S*housing_export: cannot read source housing .*appraisal_id"
    ):
        ingest_source(database_spec, None, BATCH, warehouse, connections={"housing_db": department.url})


def test_a_missing_connection_is_a_clear_error(
    tmp_path: Path, specs: dict[str, SourceSpec], department: Department, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _table_spec(tmp_path / "sources", specs["housing"], department)
    warehouse = connect_warehouse(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    with pytest.raises(ConfigError) as given:
        ingest_source(spec, None, BATCH, warehouse, connections={"other_db": department.url})
    assert str(given.value) == (
        f"{spec.path}: database.connection: connection 'housing_db' is not defined (given: other_db)"
    )
    monkeypatch.delenv("LOOKBACK_CONNECTION_HOUSING_DB", raising=False)
    with pytest.raises(ConfigError, match=r"database.connection: .* set LOOKBACK_CONNECTION_HOUSING_DB"):
        ingest_source(spec, None, BATCH, warehouse)  # outside Airflow: the environment
    monkeypatch.setenv("LOOKBACK_CONNECTION_HOUSING_DB", department.url)
    assert ingest_source(spec, None, BATCH, warehouse).status == "ingested"


@pytest.mark.postgres
def test_no_password_in_the_accounting_or_the_logs(
    tmp_path: Path, specs: dict[str, SourceSpec], caplog: pytest.LogCaptureFixture
) -> None:
    """Read with a URL holding a password, the accounting, the stored rows, the log and the
    errors of a failed read name the connection only."""
    url = make_url(POSTGRES_URL).set(password=PASSWORD).render_as_string(hide_password=False)
    spec = specs["housing"]
    rows = [["溆浦县", "", "", "王伟", "431224198001011238", "3", "一般农户", "C", "2019-05-01", "", "", "", ""]]
    for schema in _postgres_schema(url):
        _write_tables(url, schema, spec, rows)
        department = Department(url, schema, tmp_path)
        database_spec = _table_spec(tmp_path / "sources", spec, department)
        warehouse = connect_warehouse(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
        caplog.set_level(logging.DEBUG)
        accounting = ingest_source(database_spec, None, BATCH, warehouse, connections={"housing_db": url})
        assert accounting.accepted == 1
        errors = []
        for broken in (
            _table_spec(tmp_path / "missing", spec, department, table="no_such_table"),
            _database_spec(tmp_path / "bad", spec, query="select nonsense from nowhere", order_by="x"),
        ):
            with pytest.raises(DeliveryError) as failed:
                ingest_source(broken, None, BATCH, warehouse, connections={"housing_db": url})
            errors.append(str(failed.value))
        refused = make_url(url).set(port=1).render_as_string(hide_password=False)  # nothing listens there
        with pytest.raises(DatabaseUnreachable) as unreachable:  # not a LookbackError: Airflow retries it
            ingest_source(database_spec, None, BATCH, warehouse, connections={"housing_db": refused})
        errors.append(str(unreachable.value))

        assert "no_such_table" in errors[0] and "nowhere" in errors[1] and "port 1" in errors[2]
        with warehouse.engine.connect() as connection:
            stored = json.dumps(
                [accounting.as_dict()]
                + [
                    [list(row) for row in connection.execute(select(warehouse.table(name)))]
                    for name in ("ingest_accounting", "staging_housing", "quarantine", "skipped_rows", "value_problems")
                ],
                default=str,
                ensure_ascii=False,
            )
        assert "db:housing_db/" in stored
        for text_made in (stored, caplog.text, *errors):
            assert PASSWORD not in text_made
        assert "db:housing_db/" in caplog.text


def test_database_values_become_the_texts_a_csv_holds() -> None:
    from datetime import date, datetime
    from decimal import Decimal

    assert [
        database_text(value)
        for value in (
            None,
            "王伟",
            431224198001011238,  # an integer keeps every digit (a sheet's number would not)
            Decimal("1200.50"),
            Decimal("1E+3"),
            date(2019, 5, 1),
            datetime(2019, 5, 1, 8, 30),
            3.0,
            b"\xe7\x8e\x8b",
        )
    ] == ["", "王伟", "431224198001011238", "1200.50", "1000", "2019-05-01", "2019-05-01 08:30:00", "3", "王"]


def test_the_example_definition_loads() -> None:
    """``include/sources/examples/housing.yaml``, which the pipeline does not read, stays valid."""
    example = load_source_spec(
        Path(__file__).resolve().parents[2] / "include" / "sources" / "examples" / "housing.yaml"
    )
    assert example.file is None and example.database is not None
    assert example.database.origin == "db:housing_db/zhujian.housing_safety_appraisal"


@pytest.mark.parametrize(
    ("database", "keep_file", "problem"),
    [
        ({"connection": "housing_db", "table": "t"}, False, "housing.yaml: database.order_by: is missing"),
        ({"connection": "housing_db", "table": "t", "order_by": []}, False, "database.order_by: must not be empty"),
        ({"table": "t", "order_by": "id"}, False, "housing.yaml: database.connection: is missing"),
        (
            {"connection": "housing_db", "order_by": "id"},
            False,
            "housing.yaml: database: needs a table (optionally with schema) or a query",
        ),
        (
            {"connection": "housing_db", "table": "t", "query": "select 1", "order_by": "id"},
            False,
            "housing.yaml: database.query: a database source reads a table or a query, not both",
        ),
        (
            {"connection": "housing_db", "query": "select * from t where c = :county", "order_by": "id"},
            False,
            "housing.yaml: database.query: binds :county, which is neither :batch_id nor one of parameters",
        ),
        (
            {"connection": "housing_db", "table": "t", "order_by": "id", "chunk_rows": 0},
            False,
            "housing.yaml: database.chunk_rows: must be at least 1, not 0",
        ),
        (
            {"connection": "housing_db", "table": "t", "order_by": "id"},
            True,
            "housing.yaml: database: a source is delivered as a file or read from a database, not both",
        ),
    ],
)
def test_a_database_block_is_validated(
    tmp_path: Path, specs: dict[str, SourceSpec], database: dict[str, Any], keep_file: bool, problem: str
) -> None:
    document = read_yaml(specs["housing"].path)
    document.pop("header")
    if not keep_file:
        document.pop("file")
    document["database"] = database
    with pytest.raises(ConfigError) as refused:
        parse_source_spec(document, tmp_path / "housing.yaml")
    assert problem in str(refused.value)


def test_a_source_needs_a_file_or_a_database(tmp_path: Path, specs: dict[str, SourceSpec]) -> None:
    document = read_yaml(specs["housing"].path)
    document.pop("file")
    document.pop("header")
    with pytest.raises(ConfigError, match=r"housing.yaml: file: is missing: a source is delivered as a file"):
        parse_source_spec(document, tmp_path / "housing.yaml")


def test_progress_lines_at_most_once_an_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    progress = Progress("insurance", 300_000, every_seconds=10, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="lookback.ingest.progress")
    for done, seconds in ((10_000, 1), (20_000, 2), (120_000, 10), (130_000, 11), (240_000, 20)):
        now[0] = seconds
        progress.update(done)
    assert [record.getMessage() for record in caplog.records] == [
        "insurance: 120,000 of 300,000 rows (40%), 12,000 rows/s, about 15 s left",
        "insurance: 240,000 of 300,000 rows (80%), 12,000 rows/s, about 5 s left",
    ]
    unknown = Progress("dibao", None, every_seconds=0, clock=lambda: 4.0)
    assert unknown.line(10_000, 4.0) == "dibao: 10,000 rows, 2,500 rows/s"
    assert [duration_words(s) for s in (44.6, 200, 3 * 3600 + 5 * 60)] == ["45 s", "3 min 20 s", "3 h 05 min"]
