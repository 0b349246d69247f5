"""The validate stage's table: one row per expectation validated on a batch."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table, Text


def define_tables(metadata: MetaData) -> None:
    """The validate stage's table."""
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
