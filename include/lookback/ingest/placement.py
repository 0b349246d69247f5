"""Rows whose household number arrived damaged or blank, placed in the household the other
evidence names (``lookback.standardise.households``) once a source is staged, each
placement (or its failure) said in the row's value problem."""

from __future__ import annotations

import logging

import pandas as pd
from sqlalchemy import Connection, bindparam, literal, select, update

from lookback.sources import SourceSpec
from lookback.standardise.households import Placement, place_of, place_rows
from lookback.warehouse import Warehouse

log = logging.getLogger(__name__)


def place_households(connection: Connection, warehouse: Warehouse, spec: SourceSpec, batch_id: str) -> int:
    """Place the rows whose household number is damaged or missing in the household the other
    evidence names (``lookback.standardise.households``); returns the value problems added."""
    assert spec.household is not None
    household = spec.household
    table = warehouse.staging(spec.source)
    number = table.c[household.number]
    relation = table.c[household.relation] if household.relation else literal(None)
    # A place column is compared by its key (青石村 = 青石).
    places = [table.c[f"{name}_key" if spec.column(name).type == "place" else name] for name in household.place]
    query = select(
        table.c.source_row, table.c.duplicate_of_row, number, table.c[f"{household.number}_raw"], relation, *places
    ).where(table.c.batch_id == batch_id)
    fetched = Warehouse.plain_rows(connection, query)  # hundreds of thousands of rows: the driver's tuples
    if not any(row[2] is None for row in fetched):
        return 0
    # A village's rows share their place columns: each distinct set is keyed once.
    place_keys = {values: place_of(values) for values in {tuple(row[5:]) for row in fetched}}
    rows = pd.DataFrame(
        {
            "source_row": [row[0] for row in fetched],
            "original": [row[1] or row[0] for row in fetched],
            "number": pd.Series([row[2] for row in fetched], dtype=object),
            "raw": [row[3] or "" for row in fetched],
            "relation": [row[4] for row in fetched],
            "place": [place_keys[tuple(row[5:])] for row in fetched],
        }
    )
    placements = place_rows(rows, spec.column(household.number).length)
    placed = [p for p in placements if p.household_number is not None]
    if placed:
        connection.execute(
            update(table)
            .where(table.c.batch_id == batch_id, table.c.source_row == bindparam("row"))
            .values({household.number: bindparam("number")}),
            [{"row": p.source_row, "number": p.household_number} for p in placed],
        )
    header = spec.column(household.number).headers[0]
    return _note_placements(connection, warehouse, spec.source, batch_id, household.number, header, rows, placements)


def _note_placements(
    connection: Connection,
    warehouse: Warehouse,
    source: str,
    batch_id: str,
    column: str,
    header: str,
    rows: pd.DataFrame,
    placements: list[Placement],
) -> int:
    """Say where each row went in the value problem of its household number (the damage or
    the blank is one already), or in a new one; returns how many problems were added."""
    problems = warehouse.table("value_problems")
    noted = {
        int(row)
        for (row,) in connection.execute(
            select(problems.c.source_row).where(
                problems.c.batch_id == batch_id, problems.c.source == source, problems.c.column_name == column
            )
        )
    }
    words = {
        p.source_row: (f"归入户 {p.household_number}: " if p.household_number else "未能归户: ") + p.evidence
        for p in placements
    }
    appended = [{"row": row, "words": "；" + text} for row, text in words.items() if row in noted]
    if appended:
        connection.execute(
            update(problems)
            .where(
                problems.c.batch_id == batch_id,
                problems.c.source == source,
                problems.c.column_name == column,
                problems.c.source_row == bindparam("row"),
            )
            .values(message=problems.c.message + bindparam("words")),
            appended,
        )
    delivered = dict(zip(rows["source_row"], rows["raw"], strict=True))
    added = [
        {
            "batch_id": batch_id,
            "source": source,
            "source_row": p.source_row,
            "column_name": column,
            "header": header,
            "problem": "household:placed" if p.household_number is not None else "household:not_placed",
            "message": words[p.source_row],
            "raw_value": delivered[p.source_row],
        }
        for p in placements
        if p.source_row not in noted
    ]
    warehouse.insert(connection, problems, added)
    placed = sum(1 for p in placements if p.household_number is not None)
    log.info(
        "%s: %d rows without a usable %s: %d placed in their household, %d not placed",
        source,
        len(placements),
        header,
        placed,
        len(placements) - placed,
    )
    return len(added)
