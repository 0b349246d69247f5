"""A spot-check sample's print-ready lists for the province's inspectors (抽样核查清单).

Published into the sample's folder all at once (a staging folder exchanged with it):

- ``<county code> <county name>.xlsx``: a sheet per township, the county's sampled
  households numbered, with what the visit roster says of each (members and items to check
  in words) and empty columns for the inspector, printed like the visit lists; its
  properties name the sample and the county, so that the filled-in list can be read back
  (``lookback sample-results``, or the ``rectification`` DAG when returned);
- ``sample.csv``: every household drawn, with its county, stratum and the stratum's size.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from sqlalchemy import select

from lookback.publish.deliver import PRINT_WIDTHS, ROSTER_HEADERS, _county_label, _county_name, safe_file_name
from lookback.publish.files import (
    CsvWriter,
    PrintLayout,
    SheetWriter,
    WorkbookWriter,
    discard,
    staging_folder,
    swap_into_place,
)
from lookback.publish.replace import SAMPLE_MARKER, check_replaceable
from lookback.reconcile.roster import VISIT_CATEGORIES
from lookback.reconcile.sample import COUNTY_PROPERTY, INSPECTOR_HEADERS, KEY_HEADER, SAMPLE_PROPERTY, sample_of
from lookback.warehouse import Warehouse

SAMPLE_FIELDS: Final = (
    "sample_id",
    "county_code",
    "position",
    "household_key",
    "stratum",
    "stratum_households",
    "township",
    "village",
    "head_name",
    "head_id_masked",
    "visit_category",
    "open_findings",
)
LIST_HEADERS: Final = (
    "序号",
    ROSTER_HEADERS["township"],
    ROSTER_HEADERS["village"],
    ROSTER_HEADERS["head_name"],
    ROSTER_HEADERS["head_id_masked"],
    ROSTER_HEADERS["visit_category_label"],
    "抽样层",
    ROSTER_HEADERS["member_list"],
    ROSTER_HEADERS["check_items"],
    *INSPECTOR_HEADERS,
    KEY_HEADER,
)
WIDTHS: Final[Mapping[str, int]] = {
    **PRINT_WIDTHS,
    "核查结果（相符/不相符）": 12,
    "不相符事项": 24,
    "核查人签字": 10,
    "核查日期": 10,
}


def stratum_words(stratum: str) -> str:
    category, _, findings = stratum.partition("|")
    return f"{VISIT_CATEGORIES.get(category, category)}，{'有未销号问题' if findings == 'open' else '无未销号问题'}"


def _drawn(warehouse: Warehouse, sample_id: str, run_id: str) -> Iterator[dict[str, Any]]:
    drawn, roster = warehouse.table("sample_households"), warehouse.table("visit_roster")
    statement = (
        select(
            drawn,
            *(column for column in roster.c if column.name not in {"run_id", "household_key", "county_code"}),
        )
        .join(roster, (roster.c.household_key == drawn.c.household_key) & (roster.c.run_id == run_id))
        .where(drawn.c.sample_id == sample_id)
        .order_by(drawn.c.county_code, roster.c.route_order)
    )
    with warehouse.engine.connect() as connection:
        for row in connection.execute(statement).mappings():
            yield dict(row)


def publish_sample(warehouse: Warehouse, sample_id: str, out: Path) -> list[Path]:
    """Write the sample's lists and ``sample.csv`` and publish them as ``out`` all at once."""
    with warehouse.engine.connect() as connection:
        sample = sample_of(connection, warehouse, sample_id)
    check_replaceable(out, SAMPLE_MARKER)
    staging = staging_folder(out)
    written: list[Path] = []
    workbook: WorkbookWriter | None = None  # the county's, open while its rows come
    try:
        county: str | None = None
        sheets: dict[str, SheetWriter] = {}
        with CsvWriter(staging / "sample.csv", SAMPLE_FIELDS) as table:
            for row in _drawn(warehouse, sample_id, str(sample["run_id"])):
                table.append([row.get(name) for name in SAMPLE_FIELDS])
                if row["county_code"] != county:
                    if workbook is not None:
                        workbook.close()
                        workbook = None
                    county = str(row["county_code"])
                    path = staging / f"{safe_file_name(_county_label(county or 'unknown'))}.xlsx"
                    workbook = WorkbookWriter(path, "lookback", {SAMPLE_PROPERTY: sample_id, COUNTY_PROPERTY: county})
                    sheets = {}
                    written.append(path)
                assert workbook is not None
                township = str(row["township"] or "乡镇不详")
                sheet = sheets.get(township)
                if sheet is None:
                    title = f"抽样核查清单　{_county_name(county or '')}{township}　样本 {sample_id}"
                    sheet = sheets[township] = workbook.add_sheet(
                        township, LIST_HEADERS, PrintLayout(title, WIDTHS, 48)
                    )
                sheet.append(
                    [
                        row["position"],
                        row["township"],
                        row["village"],
                        row["head_name"],
                        row["head_id_masked"],
                        row["visit_category_label"],
                        stratum_words(str(row["stratum"])),
                        row["member_list"],
                        row["check_items"],
                        *(None for _ in INSPECTOR_HEADERS),
                        row["household_key"],
                    ]
                )
            if workbook is not None:
                workbook.close()
                workbook = None
        written.append(table.path)
        swap_into_place(staging, out, marker=SAMPLE_MARKER)
    except BaseException:
        if workbook is not None:
            workbook.discard()
        discard(staging)
        raise
    return [out / path.relative_to(staging) for path in written]
