"""The warehouse: SQLAlchemy tables on SQLite (default) or PostgreSQL.

Staging tables are built from the source definitions (``staging_<source>``, one row per
accepted record); the bookkeeping tables are common to all sources. Every table is keyed
by batch, and loading a batch again replaces what that batch loaded before, in one
transaction: retries and re-runs are safe.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    inspect,
)
from sqlalchemy.engine import make_url
from sqlalchemy.types import TypeEngine

from lookback.errors import ConfigError
from lookback.sources import BOOLEAN, DATE, INTEGER, MONEY, SourceSpec

log = logging.getLogger(__name__)

INSERT_CHUNK = 5_000

_KINDS: Mapping[str, type[TypeEngine[Any]] | TypeEngine[Any]] = {
    "text": Text,
    DATE: Date,
    INTEGER: Integer,
    MONEY: Numeric(14, 2),
    BOOLEAN: Boolean,
}


def _bookkeeping(metadata: MetaData) -> None:
    Table(
        "ingest_accounting",
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("source", String(32), primary_key=True),
        Column("status", String(16), nullable=False),  # ingested / not_delivered
        Column("file_name", Text),
        Column("file_sha256", String(64)),
        Column("file_format", String(8)),
        Column("encoding", String(16)),
        Column("sheet_name", Text),  # xlsx: the sheet read, the first that has the header
        Column("header_position", Integer),
        Column("delivered", Integer, nullable=False),
        Column("accepted", Integer, nullable=False),
        Column("skipped", Integer, nullable=False),
        Column("quarantined", Integer, nullable=False),
        Column("value_problems", Integer, nullable=False),
        Column("ignored_headers", Text),
        Column("ingested_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "quarantine",
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("source", String(32), primary_key=True),
        Column("source_row", Integer, primary_key=True),
        Column("file_name", Text, nullable=False),
        Column("position", Integer, nullable=False),
        Column("reason_code", String(32), nullable=False),
        Column("reason", Text, nullable=False),
        Column("raw_record", Text, nullable=False),  # JSON list of the delivered cells
    )
    Table(
        "skipped_rows",
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("source", String(32), primary_key=True),
        Column("source_row", Integer, primary_key=True),
        Column("position", Integer, nullable=False),
        Column("reason_code", String(32), nullable=False),  # blank / total_line / repeated_header
        Column("raw_record", Text, nullable=False),
    )
    Table(
        "value_problems",
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("source", String(32), primary_key=True),
        Column("source_row", Integer, primary_key=True),
        Column("column_name", String(64), primary_key=True),
        Column("header", Text, nullable=False),
        Column("problem", String(64), nullable=False),
        Column("message", Text, nullable=False),
        Column("raw_value", Text),
    )


def _link_tables(metadata: MetaData) -> None:
    """The link stage's tables: links, review, decisions, weights and the key crosswalks."""
    Table(
        "person_links",
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("source", String(32), primary_key=True),
        Column("source_row", Integer, primary_key=True),
        Column("person_id", String(16), nullable=False),
        Column("household_key", String(16), nullable=False),
        Column("match_method", String(16), nullable=False),  # id_exact / probabilistic / manual / unmatched
        Column("match_score", Float),
        # The person's rows carry more than one valid identity number: flagged, never hidden.
        Column("conflicting_identity", Boolean, nullable=False),
        # The valid identity number the row carries as the linkage established it (a number
        # ending in 000 that another department corroborated included), its birth date, and
        # whether it is someone else's (a child entered with a parent's number).
        Column("identity_number", String(18)),
        Column("identity_birth_date", Date),
        Column("identity_borrowed", Boolean, nullable=False, default=False),
        Index("ix_person_links_person", "batch_id", "person_id"),
    )
    Table(
        "match_review",
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("source_1", String(32), primary_key=True),
        Column("source_row_1", Integer, primary_key=True),
        Column("source_2", String(32), primary_key=True),
        Column("source_row_2", Integer, primary_key=True),
        Column("row_hash_1", String(64), nullable=False),
        Column("row_hash_2", String(64), nullable=False),
        Column("name_1", Text),
        Column("identity_1_masked", String(32)),
        Column("name_2", Text),
        Column("identity_2_masked", String(32)),
        Column("score", Float, nullable=False),
        Column("explanation", Text, nullable=False),
        Column("decision", String(16)),  # filled by people: same / different
    )
    Table(
        "match_decisions",
        metadata,
        Column("row_hash_1", String(64), primary_key=True),
        Column("row_hash_2", String(64), primary_key=True),
        Column("decision", String(16), nullable=False),
        Column("decided_in_batch", String(64), nullable=False),
    )
    Table(
        "link_weights",
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("field", String(32), primary_key=True),
        Column("level", String(64), primary_key=True),
        Column("weight", Float, nullable=False),
    )
    Table(
        "quality_results",  # one row per expectation validated on a batch
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("stage", String(32), primary_key=True),
        Column("suite", String(64), primary_key=True),
        Column("position", Integer, primary_key=True),  # the expectation's place in its suite's results
        Column("expectation", String(128), nullable=False),
        Column("column_name", String(128)),
        Column("severity", String(16), nullable=False),
        Column("success", Boolean, nullable=False),
        Column("element_count", Integer),
        Column("unexpected_count", Integer),
        Column("observed", Text),
        Column("examples", Text),  # masked: row, name, masked identity number
        Column("description", Text, nullable=False),
        Column("validated_at", DateTime(timezone=True), nullable=False),
    )
    for name in ("person_crosswalk", "household_crosswalk"):
        Table(
            name,
            metadata,
            Column("anchor", String(128), primary_key=True),
            # Several anchors may name one key: a person found again by what their rows say
            # keeps their key under the anchor of this batch too.
            Column("key", String(16), nullable=False, index=True),
            Column("first_batch", String(64), nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False),
        )
    # What a person's rows say about them (name, place, household, relation, stated birth
    # date and sex, not their number): how a person with no usable number is found again in
    # a later batch whose rows have changed, and a person whose number is new.
    Table(
        "person_row_anchors",
        metadata,
        Column("anchor", String(64), primary_key=True),
        Column("key", String(16), nullable=False),
        Column("last_batch", String(64), nullable=False),
    )


# What a finding says, as each run observed it and as the findings table keeps it.
FINDING_ATTRIBUTES = (
    "rule_code",
    "subject_kind",
    "subject_key",
    "person_id",
    "household_key",
    "county_code",
    "township",
    "village",
    "subject_name",
    "subject_id_masked",
    "evidence",
    "source_rows",
    "responsible",
)
# The census extract's columns, in file order (person_id first); labels as delivered.
CENSUS_COLUMNS = (
    "person_id",
    "household_key",
    "household_number",
    "county_code",
    "township",
    "village",
    "village_code",
    "name",
    "identity_number",
    "identity_number_source",  # registry / linked (from another source) / empty: no valid number
    # 是: a registry row of the person carries a number that is someone else's (a parent's);
    # identity_number is then the person's own from another source, or empty
    "identity_borrowed",
    "sex",
    "birth_date",
    "age",
    "ethnicity",
    "relation_to_head",
    "poverty_category",
    "poverty_status",
    "exit_year",
    "poverty_cause",
    "health",
    "labour_capacity",
    "schooling",
    "claims_insured",
    "claims_unsafe_house",
    "claims_safe_water",
    "insured",
    "insurance_schemes",
    "subsidy_categories",
    "dibao_support",
    "appraisal_level",
    "appraisal_date",
    "renovation_status",
    "deceased",
    "died_on",
    "open_findings",
)
_CENSUS_INTEGERS = frozenset({"age", "exit_year", "open_findings"})
_CENSUS_DATES = frozenset({"birth_date", "appraisal_date", "died_on"})


def _lookback_tables(metadata: MetaData) -> None:
    """The look-back's tables: what the rules read (per batch, rebuilt by each look-back of
    it), the findings observed per run and their lifecycle across runs, and the run's
    deliverables (visit roster, census extract)."""
    place = ("county_code", "township", "village")
    Table(
        "lookback_rows",  # every accepted row with its person, valid number and place
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("source", String(32), primary_key=True),
        Column("source_row", Integer, primary_key=True),
        Column("source_rank", Integer, nullable=False),  # registry first: whose words count first
        Column("source_label", Text, nullable=False),
        Column("person_id", String(16), nullable=False, index=True),
        Column("household_key", String(16), nullable=False),
        Column("identity_number", String(18)),  # valid after normalisation, else null
        Column("identity_borrowed", Integer, nullable=False),  # 1: the number is someone else's
        Column("birth_date", Date),  # of the number: null when it is someone else's
        Column("name", Text),
        *(Column(name, Text) for name in place),
        Column("dibao_household", Text),  # dibao rows: the allowance household
    )
    Table(
        "lookback_persons",  # one row per linked person: the facts several rules share
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("person_id", String(16), primary_key=True),
        Column("in_registry", Integer, nullable=False),
        Column("registry_rows", Integer, nullable=False),
        Column("household_number", Text),  # the first registry household listing the person
        Column("household_key", String(16), nullable=False),
        Column("name", Text),
        Column("identity_number", String(18)),
        Column("identity_borrowed", Integer, nullable=False),  # 1: a registry row carries someone else's number
        Column("birth_date", Date),
        Column("age", Integer),  # full years at the as-of date
        *(Column(name, Text) for name in place),
        # hukou: registration cancelled for death before the as-of date, in this batch's hukou
        # delivery, else the latest earlier run's batch that delivered hukou (the dead stay dead)
        Column("died_on", Date),
        Column("living", Integer, nullable=False),
        Column("insured", Integer, nullable=False),  # a 参保缴费 row of the as-of year, either scheme
        Column("insured_schemes", Text),  # labels of the schemes paid in the as-of year
        Column("residents_unsubsidised", Integer, nullable=False),
        Column("insurance_status_label", Text),  # the as-of year's status when not paid
        Column("insurance_latest_year", Integer),
        Column("insurance_pending", Integer, nullable=False),  # a candidate enrolment awaits review
        Column("identified", Integer, nullable=False),  # not every row unmatched: the person can be looked up
        # the registry rows' 是否参加城乡居民基本医疗保险: how many say 是 and how many say
        # otherwise (blank included), and a label of each
        Column("claims_insured_rows", Integer, nullable=False),
        Column("claims_otherwise_rows", Integer, nullable=False),
        Column("claims_insured_label", Text),
        Column("claims_otherwise_label", Text),
    )
    Table(
        "lookback_household_members",  # registry household ↔ person (a person may be in two)
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("household_number", Text, primary_key=True),
        Column("person_id", String(16), primary_key=True),
        Index("ix_lookback_household_members_person", "batch_id", "person_id"),
    )
    Table(
        "lookback_households",  # one row per registry household
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("household_number", Text, primary_key=True),
        Column("household_key", String(16), nullable=False),
        *(Column(name, Text) for name in place),
        Column("head_person_id", String(16)),
        Column("head_name", Text),
        Column("head_identity_number", String(18)),
        Column("poverty_category", Text),
        Column("poverty_category_label", Text),
        Column("poverty_status", Text),
        Column("poverty_status_label", Text),
        Column("claims_unsafe_house", Text),
        Column("claims_unsafe_house_label", Text),
        Column("members", Integer, nullable=False),
        Column("living_members", Integer, nullable=False),
        Column("ill_or_disabled", Integer, nullable=False),  # a member 患有大病 or 残疾
        Column("housing_rows", Integer, nullable=False),
        Column("appraisal_level", Text),  # of the latest appraisal
        Column("appraisal_date", Date),
        Column("renovation_status_label", Text),
        Column("housing_unsafe", Integer),  # null: no housing record, or the latest level is unknown
        Index("ix_lookback_households_key", "batch_id", "household_key"),
    )
    Table(
        "lookback_dibao_households",  # one row per allowance household of the roster
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("dibao_household", Text, primary_key=True),  # the head's number, else place and head's name
        Column("household_key", String(16), nullable=False),
        *(Column(name, Text) for name in place),
        Column("support_category", Text),
        Column("support_category_label", Text),
        Column("active", Integer, nullable=False),
        Column("head_name", Text),
        Column("head_identity_number", String(18)),
        Column("members", Integer, nullable=False),
        Column("members_in_registry", Integer, nullable=False),
    )
    Table(
        "lookback_runs",  # one row per look-back run; runs are ordered by as-of date, then sequence
        metadata,
        Column("run_id", String(96), primary_key=True),
        Column("batch_id", String(64), nullable=False),
        Column("as_of", Date, nullable=False),
        Column("sequence", Integer, nullable=False),
        Column("counties", Text, nullable=False),  # the counties the batch's registry covers
        Column("looked_back_at", DateTime(timezone=True), nullable=False),  # of the current execution
        Column("execution", Integer, nullable=False),  # how many times the run was looked back: the current one
        Column("sources_delivered", Text, nullable=False),  # ingest_accounting says ingested, comma-separated
        Column("rules_not_applied", Text, nullable=False),  # a source they read was not delivered
        Column("deaths_from_batch", String(64)),  # whose hukou delivery says who is dead (null: none yet)
    )
    Table(
        "finding_observations",  # what each run found: the history of every item, never deleted
        metadata,
        Column("run_id", String(96), primary_key=True),
        Column("finding_id", String(64), primary_key=True),
        # Running a run again is its next execution: what an earlier one said stays, superseded.
        Column("execution", Integer, primary_key=True),
        Column("superseded_at", DateTime(timezone=True)),  # null: the run's current execution
        *(Column(name, Text) for name in FINDING_ATTRIBUTES),
        # The sources the finding was made from: a later run that did not deliver one of
        # them cannot check it (comma-separated).
        Column("made_from", Text, nullable=False),
        Index("ix_finding_observations_rule", "run_id", "rule_code"),
        Index("ix_finding_observations_finding", "finding_id"),
    )
    Table(
        "findings",  # one row per item ever found, with its state after the latest run
        metadata,
        Column("finding_id", String(64), primary_key=True),
        Column("status", String(16), nullable=False),  # open / resolved
        Column("first_seen_run", String(96), nullable=False),
        Column("last_seen_run", String(96), nullable=False),
        # The latest run that checked the item: found it, or could have (it covered the item's
        # county and delivered every source the item is made from). A later run covering the
        # county that is not this one could not check it: the item stays as that run found it.
        Column("last_checked_run", String(96), nullable=False),
        Column("resolved_at", Date),  # the as-of date of the run that no longer found it
        Column("resolved_in_run", String(96)),
        Column("times_reopened", Integer, nullable=False),
        *(Column(name, Text) for name in FINDING_ATTRIBUTES),
    )
    Table(
        "finding_events",  # opened / resolved / reopened, per run
        metadata,
        Column("finding_id", String(64), primary_key=True),
        Column("run_id", String(96), primary_key=True),
        Column("event", String(16), nullable=False),
        Column("as_of", Date, nullable=False),
    )
    Table(
        "visit_roster",
        metadata,
        Column("run_id", String(96), primary_key=True),
        Column("household_key", String(16), primary_key=True),
        Column("visit_category", String(32), nullable=False),
        Column("visit_category_label", Text, nullable=False),
        *(Column(name, Text) for name in place),
        Column("head_name", Text),
        Column("head_id_masked", String(32)),
        Column("members", Integer, nullable=False),
        Column("open_findings", Integer, nullable=False),
        Column("finding_codes", Text),
        Column("route_order", Integer, nullable=False),
    )
    Table(
        "census_extract",  # the statistics bureau's extract: identity numbers in full
        metadata,
        Column("run_id", String(96), primary_key=True),
        Column("person_id", String(16), primary_key=True),
        *(
            Column(name, Integer if name in _CENSUS_INTEGERS else Date if name in _CENSUS_DATES else Text)
            for name in CENSUS_COLUMNS[1:]
        ),
    )


def _staging(metadata: MetaData, spec: SourceSpec) -> Table:
    columns: list[Column[Any]] = [
        Column("batch_id", String(64), primary_key=True),
        Column("source_row", Integer, primary_key=True),
        Column("source", String(32), nullable=False),
        Column("row_hash", String(64), nullable=False),  # of the delivered cells: finds repeated rows
        Column("duplicate_of_row", Integer),  # the first identical row in this delivery
    ]
    for column in spec.columns:
        for name, kind in column.staging_columns():
            columns.append(Column(name, _KINDS[kind]))
    return Table(spec.staging_table, metadata, *columns)


class _StringAgg:
    """``string_agg(value, separator)`` as PostgreSQL has it, for SQLite before 3.44: the
    look-back's SQL runs unchanged on both (order is the caller's business)."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self.separator = ","

    def step(self, value: Any, separator: str) -> None:
        if value is not None:
            self.values.append(str(value))
            self.separator = separator

    def finalize(self) -> str | None:
        return self.separator.join(self.values) if self.values else None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.create_aggregate("string_agg", 2, _StringAgg)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (the UI, reports) do not block a load
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_warehouse_engine(url: str) -> Engine:
    """An engine for the warehouse URL; a SQLite file's folder is created if missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


class Warehouse:
    """The warehouse for a set of source definitions."""

    def __init__(self, url: str, specs: Mapping[str, SourceSpec]) -> None:
        self.url = url
        self.specs = dict(specs)
        self.metadata = MetaData()
        _bookkeeping(self.metadata)
        _link_tables(self.metadata)
        _lookback_tables(self.metadata)
        for spec in self.specs.values():
            _staging(self.metadata, spec)

    @cached_property
    def engine(self) -> Engine:
        return create_warehouse_engine(self.url)

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for logs and summaries."""
        return make_url(self.url).render_as_string(hide_password=True)

    def table(self, name: str) -> Table:
        return self.metadata.tables[name]

    def staging(self, source: str) -> Table:
        return self.table(self.specs[source].staging_table)

    def ensure_schema(self) -> None:
        """Create missing tables; refuse to write into a table whose columns differ."""
        self.metadata.create_all(self.engine, checkfirst=True)
        for table in self.metadata.sorted_tables:  # an index added to an existing table
            for index in table.indexes:
                index.create(self.engine, checkfirst=True)
        inspector = inspect(self.engine)
        for table in self.metadata.sorted_tables:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            expected = {column.name for column in table.columns}
            if present != expected:
                missing = sorted(expected - present)
                extra = sorted(present - expected)
                raise ConfigError(
                    f"warehouse table {table.name} does not match the source definitions "
                    f"(missing columns: {missing or 'none'}; unknown columns: {extra or 'none'}); "
                    "point --warehouse at a new database or migrate this one"
                )

    def clear_source_batch(self, connection: Connection, source: str, batch_id: str) -> None:
        """Remove what an earlier load of this batch and source wrote."""
        for name in ("quarantine", "skipped_rows", "value_problems", "ingest_accounting"):
            table = self.table(name)
            connection.execute(delete(table).where(table.c.batch_id == batch_id, table.c.source == source))
        staging = self.staging(source)
        connection.execute(delete(staging).where(staging.c.batch_id == batch_id))

    @staticmethod
    def insert(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        for start in range(0, len(rows), INSERT_CHUNK):
            connection.execute(table.insert(), list(rows[start : start + INSERT_CHUNK]))

    @staticmethod
    def bulk_insert(connection: Connection, table: Table, columns: Mapping[str, Sequence[Any]]) -> None:
        """Many rows at once, given column by column: COPY on PostgreSQL, one executemany of
        tuples elsewhere (building a dict per row costs more than the database's work)."""
        names = list(columns)
        rows = list(zip(*(columns[name] for name in names), strict=True))
        if not rows:
            return
        preparer = connection.dialect.identifier_preparer
        target = preparer.format_table(table)
        column_list = ", ".join(preparer.quote(name) for name in names)
        if connection.dialect.name == "postgresql":
            raw = connection.connection.driver_connection
            assert raw is not None, "a connection in a transaction has its driver connection"
            with raw.cursor() as cursor, cursor.copy(f"COPY {target} ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        placeholders = ", ".join("?" for _ in names)
        connection.exec_driver_sql(f"INSERT INTO {target} ({column_list}) VALUES ({placeholders})", rows)

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


def rows_as_dicts(result: Iterable[Any]) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in result]
