"""Readers: encodings detected and said, headers found below title rows, cells as text."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from lookback.errors import DeliveryError
from lookback.generate.writers import headers_of, write_xlsx
from lookback.ingest import readers
from lookback.ingest.readers import cell_text, detect_encoding, open_delivery
from lookback.sources import SourceSpec
from tests.ingest.workbooks import set_stored_dimension, write_workbook

HEADER = "姓名,公民身份号码\r\n"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xef\xbb\xbf" + "姓名\r\n王伟\r\n".encode(), "utf-8-sig"),
        ("姓名\r\n王伟\r\n".encode(), "utf-8"),
        ("姓名\r\n王伟\r\n".encode("gb18030"), "gb18030"),
        (b"name\r\nwang\r\n", "utf-8"),  # ASCII reads the same either way
    ],
    ids=["utf-8 with BOM", "utf-8", "gb18030", "ascii"],
)
def test_detect_encoding(tmp_path: Path, data: bytes, expected: str) -> None:
    path = tmp_path / "file.csv"
    path.write_bytes(data)
    assert detect_encoding(path) == expected


def test_undecodable_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes("姓名\r\n".encode("gb18030") + b"\xff\xff\xff\r\n")
    with pytest.raises(DeliveryError, match=r"broken.csv: neither UTF-8 nor GB18030 \(undecodable bytes at offset 6\)"):
        detect_encoding(path)


def test_csv_declared_gb18030_but_delivered_utf8_is_read_as_utf8(tmp_path: Path, specs: dict[str, SourceSpec]) -> None:
    path = tmp_path / "registry_members.csv"
    header = ",".join(column.headers[0] for column in specs["registry"].columns)
    path.write_text(header + "\r\n" + "湖南" + "," * 21 + "\r\n", encoding="utf-8")
    delivered = open_delivery(path, specs["registry"])
    assert delivered.encoding == "utf-8"
    assert delivered.header[0] == "市州"
    assert [record.values[0] for record in delivered.records] == ["湖南"]


def test_xlsx_header_found_below_title_rows(tmp_path: Path, specs: dict[str, SourceSpec]) -> None:
    path = tmp_path / "dibao_roster.xlsx"
    width = len(specs["dibao"].columns)
    write_xlsx(
        path,
        specs["dibao"],
        [["溆浦县", *[""] * (width - 1)]],
        title_rows=("溆浦县农村低保花名册（2020年5月）", "填报单位：溆浦县民政局"),
        total_row=["合计", *[""] * (width - 1)],
    )
    delivered = open_delivery(path, specs["dibao"])
    records = list(delivered.records)
    assert delivered.header_position == 3  # two title rows above
    assert [(r.source_row, r.position, r.values[0]) for r in records] == [(1, 4, "溆浦县"), (2, 5, "合计")]


def test_xlsx_without_the_header_says_where_it_looked(tmp_path: Path, specs: dict[str, SourceSpec]) -> None:
    path = tmp_path / "dibao_roster.xlsx"
    write_workbook(path, {"填表说明": [["只有标题"]], "Sheet2": [["姓名", "身份证号"]]})
    with pytest.raises(DeliveryError) as raised:
        open_delivery(path, specs["dibao"])
    assert str(raised.value).startswith(
        "dibao_roster.xlsx: no header row with the required columns found in the first 10 rows "
        "of any sheet (sheets searched: 填表说明, Sheet2)"
    )


@pytest.mark.parametrize(
    "stored",
    ["A1:C3", "A1:{last}3", "A1"],
    ids=["three rows and columns", "three rows, every column", "one cell"],
)
def test_xlsx_with_a_wrong_stored_dimension_reads_every_row(
    tmp_path: Path, specs: dict[str, SourceSpec], stored: str
) -> None:
    from openpyxl.utils import get_column_letter

    spec = specs["dibao"]
    width = len(spec.columns)
    path = tmp_path / "dibao_roster.xlsx"
    rows = [[f"{number}号", *[None] * (width - 2), "正常"] for number in range(1, 501)]
    write_workbook(path, {"花名册": [headers_of(spec), *rows]})
    set_stored_dimension(path, stored.format(last=get_column_letter(width)))

    records = list(open_delivery(path, spec).records)

    assert len(records) == 500
    assert (records[-1].source_row, records[-1].position) == (500, 501)
    assert records[-1].values[0] == "500号" and records[-1].values[width - 1] == "正常"


def test_xlsx_data_on_a_later_sheet_is_found(tmp_path: Path, specs: dict[str, SourceSpec]) -> None:
    spec = specs["dibao"]
    path = tmp_path / "dibao_roster.xlsx"
    instructions = [["填表说明"], ["1. 每人一行"], ["2. 身份证号请以文本格式填写"]]
    write_workbook(path, {"填表说明": instructions, "花名册": [["溆浦县农村低保花名册"], headers_of(spec), ["溆浦县"]]})

    delivered = open_delivery(path, spec)

    assert (delivered.sheet_name, delivered.header_position) == ("花名册", 2)
    assert [(r.source_row, r.position, r.values[0]) for r in delivered.records] == [(1, 3, "溆浦县")]


def test_xlsx_header_on_two_sheets_reads_the_first_and_warns(
    tmp_path: Path, specs: dict[str, SourceSpec], caplog: pytest.LogCaptureFixture
) -> None:
    spec = specs["dibao"]
    path = tmp_path / "dibao_roster.xlsx"
    write_workbook(
        path,
        {
            "说明": [["填表说明"]],
            "5月": [headers_of(spec), ["溆浦县"]],
            "4月": [headers_of(spec), ["通道县"]],
        },
    )
    with caplog.at_level(logging.WARNING, logger="lookback.ingest.readers"):
        delivered = open_delivery(path, spec)

    assert delivered.sheet_name == "5月"
    assert [r.values[0] for r in delivered.records] == ["溆浦县"]
    assert "dibao_roster.xlsx: reading sheet 5月; sheet 4月 also has the header and is not read" in caplog.text


def test_not_an_xlsx_is_refused(tmp_path: Path, specs: dict[str, SourceSpec]) -> None:
    path = tmp_path / "dibao_roster.xlsx"
    path.write_text("not a workbook", encoding="utf-8")
    with pytest.raises(DeliveryError, match=r"dibao_roster.xlsx: not a readable xlsx workbook"):
        open_delivery(path, specs["dibao"])


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("王伟", "王伟"),
        (350, "350"),
        (350.0, "350"),
        (1050.5, "1050.5"),
        (431224198001011238, "4.31224198001011E+17"),  # an identity number Excel stored as a number
        (4.31224198001011e17, "4.31224198001011E+17"),
        (datetime(2020, 6, 1, 0, 0), "2020-06-01 00:00:00"),
    ],
)
def test_cell_text(value: object, text: str) -> None:
    assert cell_text(value) == text


Opened = tuple[tuple[str, ...], int, str | None, list[tuple[int, int, tuple[str, ...]]]]


def _read_both(
    path: Path, spec: SourceSpec, monkeypatch: pytest.MonkeyPatch, *, fast_reads: bool = True
) -> tuple[Opened, Opened]:
    """A workbook as the fast reader gives it, and as openpyxl alone gives it."""
    assert (readers._fast_xlsx(path, spec) is not None) == fast_reads

    def opened() -> Opened:
        delivered = open_delivery(path, spec)
        records = [(r.source_row, r.position, r.values) for r in delivered.records]
        return delivered.header, delivered.header_position, delivered.sheet_name, records

    fast = opened()
    with monkeypatch.context() as patched:
        patched.setattr(readers, "_fast_xlsx", lambda _path, _spec: None)
        slow = opened()
    return fast, slow


def test_fast_and_openpyxl_readers_give_the_same_records(
    tmp_path: Path, specs: dict[str, SourceSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = specs["dibao"]
    width = len(spec.columns)
    path = tmp_path / "dibao_roster.xlsx"
    rows: list[list[object]] = [
        ["溆浦县", "油洋乡", 350, 350.5, 4.31224198001011e17, 431224198001011238, True, False, None, ""],
        [datetime(2020, 6, 1), datetime(2020, 6, 1, 12, 30, 15), date(2019, 3, 1), 43983, "2018-07", None],
        [],  # a blank row
        [None, None, "从第三列起"],
        ["合计", *[""] * (width - 1)],  # stored empty cells to the header's width
        [" 空格 ", "-", 0, -1.25, 1e15, 999999999999999],
    ]
    write_workbook(
        path,
        {
            "填表说明": [["填表说明"], ["身份证号请以文本格式填写"]],
            "花名册": [["溆浦县农村低保花名册"], [], headers_of(spec), *rows],
            "4月": [headers_of(spec), ["通道县"]],
        },
    )
    fast, slow = _read_both(path, spec, monkeypatch)
    assert fast == slow
    assert fast[1:3] == (3, "花名册")


@pytest.mark.parametrize("stored", ["A1:C3", "A1"], ids=["three rows and columns", "one cell"])
def test_fast_reader_reads_every_row_past_a_wrong_stored_dimension(
    tmp_path: Path, specs: dict[str, SourceSpec], monkeypatch: pytest.MonkeyPatch, stored: str
) -> None:
    spec = specs["dibao"]
    path = tmp_path / "dibao_roster.xlsx"
    write_workbook(path, {"花名册": [headers_of(spec), *([f"{n}号", None, "正常"] for n in range(1, 201))]})
    set_stored_dimension(path, stored)
    fast, slow = _read_both(path, spec, monkeypatch)
    assert fast == slow


def test_fast_reader_gives_a_generated_roster_as_openpyxl_does(
    generated_batch: Path, specs: dict[str, SourceSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow = _read_both(generated_batch / "dibao_roster.xlsx", specs["dibao"], monkeypatch)
    assert fast == slow


@pytest.mark.parametrize(
    "cell",
    ["第一行_x000D_第二行", "#N/A", time(6, 0), timedelta(hours=30), datetime(1900, 1, 15)],
    ids=["escaped character", "error cell", "time of day", "duration", "before March 1900"],
)
def test_cells_the_fast_reader_cannot_vouch_for_are_read_by_openpyxl(
    tmp_path: Path, specs: dict[str, SourceSpec], monkeypatch: pytest.MonkeyPatch, cell: object
) -> None:
    from openpyxl import load_workbook

    spec = specs["dibao"]
    path = tmp_path / "dibao_roster.xlsx"
    write_workbook(path, {"花名册": [headers_of(spec), ["溆浦县", cell]]})
    if cell == "#N/A":  # an error cell, as Excel stores one
        workbook = load_workbook(path)
        workbook.worksheets[0]["B2"].data_type = "e"
        workbook.save(path)
    fast, slow = _read_both(path, spec, monkeypatch, fast_reads=False)
    assert fast == slow


def test_a_broken_workbook_is_refused_by_name_whichever_reader_tries(
    tmp_path: Path, specs: dict[str, SourceSpec]
) -> None:
    path = tmp_path / "dibao_roster.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DeliveryError, match=r"^dibao_roster.xlsx: not a readable xlsx workbook"):
        open_delivery(path, specs["dibao"])
