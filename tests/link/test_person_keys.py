"""A person keeps their person_id from batch to batch, also without a usable number and when
what their rows say changes, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from lookback.run import connect_warehouse
from tests import steps
from tests.registry_files import write_registry

HOUSEHOLD = "431224101201000123"
HEAD = "431224197001011233"
FIXED = "431224200501011242"  # 王小红's number, mistyped in the first batch
MISTYPED = "431224200501011243"  # wrong check character


def _batch(root: Path, name: str, rows: list[dict[str, str]], warehouse: str) -> dict[str, str]:
    landing = root / "landing" / name
    write_registry(landing, [{"户编号": HOUSEHOLD, **row} for row in rows])
    steps.ingest(landing, warehouse=warehouse, sources=["registry"])
    steps.link(name, warehouse)
    store = connect_warehouse(warehouse)
    staging, links = store.table("staging_registry"), store.table("person_links")
    try:
        with store.engine.connect() as connection:
            return dict(
                connection.execute(
                    select(staging.c.name, links.c.person_id)
                    .join(
                        links, (links.c.batch_id == staging.c.batch_id) & (links.c.source_row == staging.c.source_row)
                    )
                    .where(staging.c.batch_id == name, links.c.source == "registry")
                ).all()
            )
    finally:
        store.dispose()


def test_a_person_is_found_again_when_their_rows_change(tmp_path: Path, warehouse_url: str) -> None:
    first = _batch(
        tmp_path,
        "b1",
        [
            {"姓名": "王建国", "证件号码": HEAD, "与户主关系": "户主"},
            {"姓名": "王小军", "证件号码": "", "与户主关系": "之子", "在校生状况": "小学"},  # no number at all
            {"姓名": "王小红", "证件号码": MISTYPED, "与户主关系": "之女"},
        ],
        warehouse_url,
    )
    second = _batch(
        tmp_path,
        "b2",
        [
            {"姓名": "王建国", "证件号码": HEAD, "与户主关系": "户主", "脱贫标志": "已脱贫（享受政策）"},
            # Still without a number; went on to junior secondary school: the row changed.
            {"姓名": "王小军", "证件号码": "", "与户主关系": "之子", "在校生状况": "初中"},
            {"姓名": "王小红", "证件号码": FIXED, "与户主关系": "之女"},  # the number corrected
            {"姓名": "王小华", "证件号码": "", "与户主关系": "之子"},  # someone new
        ],
        warehouse_url,
    )
    assert len(set(first.values())) == 3
    for name in ("王建国", "王小军", "王小红"):
        assert second[name] == first[name], name
    assert second["王小华"] not in first.values()
