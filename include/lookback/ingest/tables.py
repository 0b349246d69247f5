"""The ingest stage's tables: what each delivery was (``ingest_accounting``), the rows set
aside (``quarantine``, ``skipped_rows``), the values that could not be standardised
(``value_problems``), and each source's staged rows (``staging_<source>``, from its YAML)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Boolean, Column, Date, DateTime, Integer, MetaData, Numeric, String, Table, Text
from sqlalchemy.types import TypeEngine

from lookback.sources import BOOLEAN, DATE, INTEGER, MONEY, SourceSpec

_KINDS: Mapping[str, type[TypeEngine[Any]] | TypeEngine[Any]] = {
    "text": Text,
    DATE: Date,
    INTEGER: Integer,
    MONEY: Numeric(14, 2),
    BOOLEAN: Boolean,
}


def define_tables(metadata: MetaData) -> None:
    """The ingest stage's bookkeeping tables, common to all sources."""
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


def staging_table(metadata: MetaData, spec: SourceSpec) -> Table:
    """A source's staged rows: one row per accepted record, its columns from the source's YAML."""
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
