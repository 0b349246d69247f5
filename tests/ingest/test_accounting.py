"""Every delivered row is accepted, skipped or quarantined, and the counts add up.

Small hand-made deliveries, each row there for a reason given beside it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lookback.errors import DeliveryError
from lookback.generate.writers import RawLine, csv_line, headers_of, write_csv, write_xlsx
from lookback.ingest.load import SourceAccounting, ingest_source
from lookback.run import connect_warehouse
from lookback.sources import SourceSpec
from lookback.warehouse import Warehouse
from tests.ingest.workbooks import set_stored_dimension, write_workbook

VALID = "431224198001011238"
OTHER = "433030196503150026"


def _row(spec: SourceSpec, **values: Any) -> list[Any]:
    return [values.get(column.name, "") for column in spec.columns]


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return connect_warehouse(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")


def _rows(warehouse: Warehouse, table: str, source: str | None = None) -> list[dict[str, Any]]:
    selected = warehouse.table(table)
    query = select(selected)
    if source is not None and "source" in selected.c:
        query = query.where(selected.c.source == source)
    with warehouse.engine.connect() as connection:
        order = selected.c.source_row if "source_row" in selected.c else selected.c.source
        return [dict(row._mapping) for row in connection.execute(query.order_by(order))]


def _registry_batch(folder: Path, spec: SourceSpec) -> None:
    person = {"county_code": "溆浦县", "household_number": "43122410120100001", "relation_to_head": "户主"}
    width = len(spec.columns)
    clean = _row(spec, name="王伟", identity_number=VALID, **person)
    broken = [str(cell) for cell in clean]
    broken[1:3] = [broken[1] + broken[2]]
    write_csv(
        folder / "registry_members.csv",
        spec,
        [
            clean,  # 1 accepted
            RawLine(""),  # 2 skipped: an empty line
            RawLine("," * (width - 1)),  # 3 skipped: a line of bare commas
            RawLine(csv_line(broken)),  # 4 quarantined: a delimiter is missing
            _row(spec, name="李娜", identity_number="431224198001011239", **person),  # 5 accepted: bad check only
            _row(spec, name="", identity_number="", **person),  # 6 quarantined: identifies nobody
            _row(spec, name="?", identity_number="4.31224E+17", **person),  # 7 quarantined: placeholder, damaged id
            _row(spec, name="", identity_number=OTHER, **person),  # 8 accepted: no name but a valid number
            clean,  # 9 accepted: the same row exported twice
            _row(spec, prefecture="合计", household_number="5"),  # 10 skipped: total line
        ],
    )


def test_gb18030_csv_every_row_accounted_for(
    tmp_path: Path, specs: dict[str, SourceSpec], warehouse: Warehouse
) -> None:
    spec = specs["registry"]
    _registry_batch(tmp_path, spec)
    accounting = ingest_source(spec, tmp_path, "b1", warehouse)

    assert accounting.encoding == "gb18030"
    assert (accounting.delivered, accounting.accepted, accounting.skipped, accounting.quarantined) == (10, 4, 3, 3)
    assert accounting.balanced

    staged = _rows(warehouse, "staging_registry")
    assert [row["source_row"] for row in staged] == [1, 5, 8, 9]
    assert {row["source"] for row in staged} == {"registry"}
    assert staged[0]["identity_number"] == VALID
    assert staged[0]["county_code"] == "431224"
    assert staged[1]["identity_number"] is None  # invalid, but the row stays
    assert staged[1]["identity_number_problem"] == "bad_check_character"
    assert staged[3]["duplicate_of_row"] == 1

    skipped = _rows(warehouse, "skipped_rows")
    assert [(row["source_row"], row["reason_code"]) for row in skipped] == [
        (2, "blank"),
        (3, "blank"),
        (10, "total_line"),
    ]

    quarantined = _rows(warehouse, "quarantine")
    assert [(row["source_row"], row["reason_code"]) for row in quarantined] == [
        (4, "field_count"),
        (6, "no_identifier"),
        (7, "no_identifier"),
    ]
    assert quarantined[0]["reason"] == (
        "registry_members.csv, row 4 (line 5): 21 fields where the header has 22: a delimiter is missing"
    )
    assert json.loads(quarantined[0]["raw_record"])[0] == ""  # the delivered cells are kept whole

    problems = {(row["source_row"], row["column_name"], row["problem"]) for row in _rows(warehouse, "value_problems")}
    assert (5, "identity_number", "identity_number:bad_check_character") in problems
    assert (8, "name", "missing_value") in problems
    messages = " ".join(row["message"] for row in _rows(warehouse, "value_problems"))
    assert "431224198001011239" not in messages  # identity numbers are masked in messages
    assert "431224********1239" in messages


def test_xlsx_with_title_rows_and_total_line(
    tmp_path: Path, specs: dict[str, SourceSpec], warehouse: Warehouse
) -> None:
    spec = specs["dibao"]
    member = {"county_code": "通道县", "support_category": "农村低保", "status": "正常", "monthly_payment": "1,050.5"}
    width = len(spec.columns)
    write_xlsx(
        tmp_path / "dibao_roster.xlsx",
        spec,
        [
            _row(spec, name="杨光", identity_number=VALID, support_start="2018年7月", **member),  # 1 accepted
            [""] * width,  # 2 skipped: an empty sheet row
            _row(spec, name="杨明", identity_number=431230199001010190, **member),  # 3 accepted, number damaged
            _row(spec, name="杨亮", identity_number=OTHER, stop_date=datetime(2020, 5, 31), **member),  # 4 accepted
        ],
        title_rows=("通道侗族自治县农村低保花名册（2020年5月）", "填报单位：通道县民政局"),
        total_row=_row(spec, county_code="合计", supported_members=3),  # 5 skipped
    )
    accounting = ingest_source(spec, tmp_path, "b1", warehouse)

    assert (accounting.delivered, accounting.accepted, accounting.skipped, accounting.quarantined) == (5, 3, 2, 0)
    assert accounting.header_position == 3
    staged = _rows(warehouse, "staging_dibao")
    assert [row["source_row"] for row in staged] == [1, 3, 4]
    assert staged[0]["county_code"] == "431230"
    assert str(staged[0]["monthly_payment"]) == "1050.50"
    assert staged[0]["support_start"].isoformat() == "2018-07-01"
    assert staged[1]["identity_number_problem"] == "excel_damaged"
    assert staged[2]["stop_date"].isoformat() == "2020-05-31"


def test_loading_a_batch_again_replaces_it(tmp_path: Path, specs: dict[str, SourceSpec], warehouse: Warehouse) -> None:
    spec = specs["registry"]
    _registry_batch(tmp_path, spec)
    first = ingest_source(spec, tmp_path, "b1", warehouse)
    second = ingest_source(spec, tmp_path, "b1", warehouse)
    ingest_source(spec, tmp_path, "b2", warehouse)
    assert first.as_dict() == second.as_dict()
    staged = _rows(warehouse, "staging_registry")
    assert sorted({row["batch_id"] for row in staged}) == ["b1", "b2"]
    assert len(staged) == 2 * first.accepted
    assert len(_rows(warehouse, "ingest_accounting")) == 2


def test_required_column_missing_fails_the_file(
    tmp_path: Path, specs: dict[str, SourceSpec], warehouse: Warehouse
) -> None:
    (tmp_path / "insurance_enrolment.csv").write_text("姓名,性别\r\n王伟,男\r\n", encoding="utf-8-sig")
    with pytest.raises(DeliveryError) as raised:
        ingest_source(specs["insurance"], tmp_path, "b1", warehouse)
    message = str(raised.value)
    assert message.startswith("insurance_enrolment.csv: required column(s) 公民身份号码、参保地行政区划")
    assert "line 1; found: 姓名、性别" in message


def test_mandatory_source_missing_fails_optional_is_recorded(
    tmp_path: Path, specs: dict[str, SourceSpec], warehouse: Warehouse
) -> None:
    with pytest.raises(
        DeliveryError, match=r"mandatory source registry .* not delivered: no file matching registry_members"
    ):
        ingest_source(specs["registry"], tmp_path, "b1", warehouse)
    accounting = ingest_source(specs["hukou"], tmp_path, "b1", warehouse)
    assert accounting == SourceAccounting(batch_id="b1", source="hukou", status="not_delivered")
    assert [row["status"] for row in _rows(warehouse, "ingest_accounting")] == ["not_delivered"]


def test_two_files_for_one_source_is_an_error(
    tmp_path: Path, specs: dict[str, SourceSpec], warehouse: Warehouse
) -> None:
    for name in ("hukou_cancellations.csv", "hukou_cancellations_v2.csv"):
        (tmp_path / name).write_text("姓名\r\n", encoding="utf-8")
    with pytest.raises(DeliveryError, match=r"more than one file for source hukou"):
        ingest_source(specs["hukou"], tmp_path, "b1", warehouse)


def test_bad_batch_id_is_refused(tmp_path: Path, specs: dict[str, SourceSpec], warehouse: Warehouse) -> None:
    with pytest.raises(DeliveryError, match=r"batch id '../x'"):
        ingest_source(specs["hukou"], tmp_path, "../x", warehouse)


# Deliveries as they arrive: each writes one source's file into a batch folder and returns
# the source. The numbered comments say what becomes of each record.
Delivery = Callable[[Path, dict[str, SourceSpec]], str]
PERSON = {"county_code": "溆浦县", "household_number": "43122410120100001", "relation_to_head": "户主"}


def _person(spec: SourceSpec, name: str, identity_number: str, **values: Any) -> list[str]:
    """A registry row as the csv writer writes it; 联系电话, the last column, blank unless given."""
    cells = _row(
        spec, name=name, identity_number=identity_number, township="龙潭镇", village="龙潭村", **PERSON | values
    )
    return [str(cell) for cell in cells]


def _with_extra_field(cells: list[str], at: int) -> list[str]:
    """A comma typed inside a row: every field from ``at`` on moves one to the right."""
    return [*cells[:at], "", *cells[at:]]


def _member(spec: SourceSpec, name: str, identity_number: str = VALID) -> list[Any]:
    return _row(
        spec,
        county_code="溆浦县",
        support_category="农村低保",
        name=name,
        identity_number=identity_number,
        status="正常",
    )


def extra_delimiter(folder: Path, specs: dict[str, SourceSpec]) -> str:
    spec = specs["registry"]
    write_csv(
        folder / "registry_members.csv",
        spec,
        [
            _person(spec, "王伟", VALID),  # 1 accepted
            _with_extra_field(_person(spec, "李娜", OTHER), 9),  # 2 quarantined: a comma after 性别, 联系电话 beyond
            _person(spec, "张强", OTHER, phone="13800000000"),  # 3 accepted
        ],
    )
    return spec.source


def every_line_ends_with_a_comma(folder: Path, specs: dict[str, SourceSpec]) -> str:
    """Some exporters end every line but the header with a comma: nothing is shifted."""
    spec = specs["registry"]
    width = len(spec.columns)
    write_csv(
        folder / "registry_members.csv",
        spec,
        [
            RawLine(csv_line(_person(spec, "王伟", VALID, phone="13800000000")) + ","),  # 1 accepted
            RawLine(""),  # 2 skipped: a blank line has no comma, and does not count
            RawLine(csv_line(_person(spec, "李娜", OTHER)) + ","),  # 3 accepted
            RawLine(csv_line(headers_of(spec))),  # 4 skipped: a header line pasted in, without the comma
            RawLine("合计" + "," * (width - 1)),  # 5 skipped: a total line typed by hand, one comma short
        ],
    )
    return spec.source


def most_lines_end_with_a_comma(folder: Path, specs: dict[str, SourceSpec]) -> str:
    """An exporter that ends every line with a comma, and the usual broken rows: the comma
    is the file's layout, and the rows that differ from it are the broken ones."""
    spec = specs["registry"]
    lost = _person(spec, "赵敏", OTHER)
    lost[9:11] = [lost[9] + lost[10]]  # 民族 and 与户主关系 run together
    written_in = _person(spec, "孙丽", OTHER)
    write_csv(
        folder / "registry_members.csv",
        spec,
        [
            RawLine(csv_line(_person(spec, "王伟", VALID)) + ","),  # 1 accepted: 23 fields, the last empty
            RawLine(csv_line(_with_extra_field(_person(spec, "李娜", OTHER), 9)) + ","),  # 2 quarantined: 24
            RawLine(csv_line(lost) + ","),  # 3 quarantined: a delimiter lost, 22 fields where lines have 23
            RawLine(csv_line(written_in) + ",13800000000"),  # 4 quarantined: something in the trailing field
            RawLine(csv_line(_person(spec, "张强", OTHER)) + ","),  # 5 accepted
            RawLine(csv_line(_person(spec, "周杰", OTHER)) + ","),  # 6 accepted
            RawLine(csv_line(_person(spec, "吴刚", OTHER)) + ","),  # 7 accepted
        ],
    )
    return spec.source


def no_line_length_prevails(folder: Path, specs: dict[str, SourceSpec]) -> str:
    """Half the lines end with a comma and half do not: no layout prevails, so only the
    header's width is trusted and the longer lines are quarantined."""
    spec = specs["registry"]
    write_csv(
        folder / "registry_members.csv",
        spec,
        [
            _person(spec, "王伟", VALID),  # 1 accepted
            RawLine(csv_line(_person(spec, "李娜", OTHER)) + ","),  # 2 quarantined: 23 fields
            _person(spec, "张强", OTHER),  # 3 accepted
            RawLine(csv_line(_person(spec, "周杰", OTHER)) + ","),  # 4 quarantined: 23 fields
        ],
    )
    return spec.source


def csv_header_repeated(folder: Path, specs: dict[str, SourceSpec]) -> str:
    """Two exports pasted into one file: the second one's header is not a person named 姓名."""
    spec = specs["registry"]
    write_csv(
        folder / "registry_members.csv",
        spec,
        [
            _person(spec, "王伟", VALID),  # 1 accepted
            headers_of(spec),  # 2 skipped: the second export's header
            _person(spec, "李娜", OTHER),  # 3 accepted
        ],
    )
    return spec.source


def xlsx_header_repeated(folder: Path, specs: dict[str, SourceSpec]) -> str:
    spec = specs["dibao"]
    write_xlsx(
        folder / "dibao_roster.xlsx",
        spec,
        [
            _member(spec, "杨光"),  # 1 accepted
            # 2 skipped: the header again, typed with half-width brackets
            [header.replace("（", "(").replace("）", ")") for header in headers_of(spec)],
            _member(spec, "杨明", OTHER),  # 3 accepted
        ],
        title_rows=("溆浦县农村低保花名册（2020年5月）",),
    )
    return spec.source


def wrong_stored_dimension(folder: Path, specs: dict[str, SourceSpec]) -> str:
    """Another tool wrote the workbook and left its stored dimension at A1:C3."""
    spec = specs["dibao"]
    members = [_member(spec, f"杨{number}") for number in range(1, 499)]  # 1-498 accepted
    blank: list[Any] = []  # 499 skipped: an empty sheet row
    total = _row(spec, county_code="合计", supported_members=498)  # 500 skipped: total line
    path = folder / "dibao_roster.xlsx"
    rows: list[Sequence[Any]] = [headers_of(spec), *members, blank, total]
    write_workbook(path, {"花名册": rows})
    set_stored_dimension(path, "A1:C3")
    return spec.source


def data_on_the_second_sheet(folder: Path, specs: dict[str, SourceSpec]) -> str:
    spec = specs["dibao"]
    write_workbook(
        folder / "dibao_roster.xlsx",
        {
            "填表说明": [["填表说明"], ["1. 每人一行"], ["2. 身份证号请以文本格式填写"]],
            "花名册": [
                ["溆浦县农村低保花名册（2020年5月）"],
                headers_of(spec),
                _member(spec, "杨光"),  # 1 accepted
                [],  # 2 skipped: an empty sheet row (not stored in the file at all)
                _member(spec, "杨明", OTHER),  # 3 accepted
            ],
        },
    )
    return spec.source


def ragged_xlsx_rows(folder: Path, specs: dict[str, SourceSpec]) -> str:
    """In a read-only sheet a row holds only the cells stored: short rows and empty cells
    right of the header are how spreadsheets look, not a broken row."""
    from openpyxl import load_workbook
    from openpyxl.styles import PatternFill

    spec = specs["dibao"]
    place = ["溆浦县", "龙潭镇", "龙潭村", "农村低保", None, None]
    path = folder / "dibao_roster.xlsx"
    rows: list[Sequence[Any]] = [
        headers_of(spec),
        [*place, "杨光", VALID],  # 1 accepted: stops after 成员身份证号
        [*place, "杨明", OTHER, *[None] * 4, "正常", None, None, " "],  # 2 accepted: a space right of the header
        [*place, "杨亮", OTHER],  # 3 accepted: its cell AD is styled but empty
    ]
    write_workbook(path, {"花名册": rows})
    workbook = load_workbook(path)
    workbook.worksheets[0]["AD4"].fill = PatternFill("solid", fgColor="FFFF00")
    workbook.save(path)
    return spec.source


ACCOUNTING_CASES: dict[str, tuple[Delivery, tuple[int, int, int, int]]] = {
    # case: (delivery, (delivered, accepted, skipped, quarantined))
    "extra delimiter, blank last field": (extra_delimiter, (3, 2, 0, 1)),
    "every line ends with a comma": (every_line_ends_with_a_comma, (5, 2, 3, 0)),
    "most lines end with a comma": (most_lines_end_with_a_comma, (7, 4, 0, 3)),
    "no line length prevails": (no_line_length_prevails, (4, 2, 0, 2)),
    "csv header repeated": (csv_header_repeated, (3, 2, 1, 0)),
    "xlsx header repeated": (xlsx_header_repeated, (3, 2, 1, 0)),
    "wrong stored dimension": (wrong_stored_dimension, (500, 498, 2, 0)),
    "data on the second sheet": (data_on_the_second_sheet, (3, 2, 1, 0)),
    "ragged xlsx rows": (ragged_xlsx_rows, (3, 3, 0, 0)),
}


@pytest.mark.parametrize(("delivery", "counts"), ACCOUNTING_CASES.values(), ids=ACCOUNTING_CASES.keys())
def test_every_case_keeps_the_accounting_whole(
    tmp_path: Path,
    specs: dict[str, SourceSpec],
    warehouse: Warehouse,
    delivery: Delivery,
    counts: tuple[int, int, int, int],
) -> None:
    source = delivery(tmp_path, specs)
    accounting = ingest_source(specs[source], tmp_path, "b1", warehouse)

    assert (accounting.delivered, accounting.accepted, accounting.skipped, accounting.quarantined) == counts
    assert accounting.balanced
    stored = (
        len(_rows(warehouse, f"staging_{source}")),
        len(_rows(warehouse, "skipped_rows", source)),
        len(_rows(warehouse, "quarantine", source)),
    )
    assert stored == counts[1:]  # the tables hold what the counts say


def test_extra_delimiter_is_quarantined_with_file_row_and_line(
    tmp_path: Path, specs: dict[str, SourceSpec], warehouse: Warehouse
) -> None:
    ingest_source(specs[extra_delimiter(tmp_path, specs)], tmp_path, "b1", warehouse)
    [quarantined] = _rows(warehouse, "quarantine")
    assert (quarantined["source_row"], quarantined["reason_code"]) == (2, "field_count")
    assert quarantined["reason"] == (
        "registry_members.csv, row 2 (line 3): 23 fields where the header has 22: an extra delimiter or shifted columns"
    )


def test_lines_that_all_end_with_a_comma_are_read_unshifted(
    tmp_path: Path, specs: dict[str, SourceSpec], warehouse: Warehouse
) -> None:
    ingest_source(specs[every_line_ends_with_a_comma(tmp_path, specs)], tmp_path, "b1", warehouse)
    staged = _rows(warehouse, "staging_registry")
    assert [(row["source_row"], row["name"], row["phone"]) for row in staged] == [
        (1, "王伟", "13800000000"),
        (3, "李娜", None),
    ]
    skipped = [(row["source_row"], row["reason_code"]) for row in _rows(warehouse, "skipped_rows")]
    assert skipped == [(2, "blank"), (4, "repeated_header"), (5, "total_line")]


def test_lines_that_differ_from_the_files_layout_are_quarantined(
    tmp_path: Path, specs: dict[str, SourceSpec], warehouse: Warehouse
) -> None:
    ingest_source(specs[most_lines_end_with_a_comma(tmp_path, specs)], tmp_path, "b1", warehouse)
    assert [row["name"] for row in _rows(warehouse, "staging_registry")] == ["王伟", "张强", "周杰", "吴刚"]
    reasons = [row["reason"].split(": ", 1)[1] for row in _rows(warehouse, "quarantine")]
    layout = "where the header has 22 and the file's lines end with 1 empty field more"
    assert reasons == [
        f"24 fields {layout}: an extra delimiter or shifted columns",
        f"22 fields {layout}: a delimiter is missing",
        f"23 fields {layout}: an extra delimiter or shifted columns",
    ]


def test_repeated_header_is_skipped_with_its_own_reason(
    tmp_path: Path, specs: dict[str, SourceSpec], warehouse: Warehouse
) -> None:
    ingest_source(specs[csv_header_repeated(tmp_path, specs)], tmp_path, "b1", warehouse)
    assert [(row["source_row"], row["reason_code"]) for row in _rows(warehouse, "skipped_rows")] == [
        (2, "repeated_header")
    ]
    assert [row["name"] for row in _rows(warehouse, "staging_registry")] == ["王伟", "李娜"]


def test_xlsx_accounting_names_the_sheet_read(
    tmp_path: Path, specs: dict[str, SourceSpec], warehouse: Warehouse
) -> None:
    accounting = ingest_source(specs[data_on_the_second_sheet(tmp_path, specs)], tmp_path, "b1", warehouse)
    assert (accounting.sheet_name, accounting.header_position, accounting.accepted) == ("花名册", 2, 2)
    [stored] = _rows(warehouse, "ingest_accounting")
    assert stored["sheet_name"] == "花名册"
    assert SourceAccounting.from_row(stored) == accounting
