"""户编号 as spreadsheets deliver it: protected, full-width, damaged by Excel or blank, on
SQLite and PostgreSQL. A member is never a household of its own because of how its
number was written: harmless quirks are cleaned, damage is placed by the members around it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from lookback.run import connect_warehouse
from tests import steps
from tests.registry_files import write_registry

A = "431224101201000123"
B = "431224101201000145"


def test_household_numbers_as_delivered(tmp_path: Path, warehouse_url: str) -> None:
    landing = tmp_path / "landing" / "b1"
    written = [
        (A, "王建国", "户主"),
        (f"'{A}", "李秀英", "配偶"),  # apostrophe typed to keep Excel off it
        ("\\t" + A, "王小军", "之子"),  # a typed backslash-t
        ("４３１２２４１０１２０１０００１２３", "王小红", "之女"),  # full-width digits
        ("4.31224E+17", "王大军", "之子"),  # Excel's scientific form, between two rows of A
        (A, "王芳", "之女"),
        ("431224101201000000", "刘德明", "户主"),  # B's head, last digits lost: A has its head
        (B, "张桂兰", "配偶"),
        ("", "刘小明", "之子"),  # blank, the last of B's rows
    ]
    write_registry(
        landing, [{"户编号": number, "姓名": name, "与户主关系": relation} for number, name, relation in written]
    )
    accounting = steps.ingest(landing, warehouse=warehouse_url, sources=["registry"])
    assert accounting[0].accepted == 9

    warehouse = connect_warehouse(warehouse_url)
    try:
        staging = warehouse.table("staging_registry")
        problems = warehouse.table("value_problems")
        with warehouse.engine.connect() as connection:
            placed = dict(
                connection.execute(
                    select(staging.c.source_row, staging.c.household_number).where(staging.c.batch_id == "b1")
                ).all()
            )
            noted = dict(
                connection.execute(
                    select(problems.c.source_row, problems.c.message).where(
                        problems.c.batch_id == "b1", problems.c.column_name == "household_number"
                    )
                ).all()
            )
    finally:
        warehouse.dispose()
    assert placed == {1: A, 2: A, 3: A, 4: A, 5: A, 6: A, 7: B, 8: B, 9: B}
    # The damage and the blank stay value problems, and say where the row was placed.
    assert sorted(noted) == [5, 7, 9]
    assert all(f"归入户 {B if row > 6 else A}" in message for row, message in noted.items())
