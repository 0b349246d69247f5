"""The file-writing primitives of a run's deliverables: neutralised cells, CSV and xlsx
as Excel reads them, the same bytes for the same input, and a folder published in one step.

Workbooks are read back with openpyxl, as a person's spreadsheet program would read them.
"""

from __future__ import annotations

import csv
import ctypes
import errno
import io
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from lookback.errors import LookbackError
from lookback.publish import files
from lookback.publish.files import (
    Sheet,
    WorkbookWriter,
    discard,
    legal_sheet_titles,
    neutralise,
    staging_folder,
    swap_into_place,
    write_csv,
    write_workbook,
)

# neutralise


@pytest.mark.parametrize("text", ["=1+1", "+8613800000000", "-2+3", "@SUM(A1:A9)", "\tcmd", "\rcmd", "=", "-"])
def test_text_a_spreadsheet_would_calculate_gets_an_apostrophe(text: str) -> None:
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize(
    "value", ["张三", "", "a=b", "1-2", "'=already", " =spaced", 5, -5, -1.5, None, date(2020, 1, 2)]
)
def test_other_values_are_unchanged(value: Any) -> None:
    result = neutralise(value)
    assert result == value
    assert type(result) is type(value)


# write_csv


def _read_csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))


def test_csv_is_utf8_with_bom_and_crlf_lines(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_csv(path, ["name", "county"], [{"name": "张三", "county": "凤凰县"}])
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data == "\ufeffname,county\r\n张三,凤凰县\r\n".encode()


def test_csv_cells_by_column_name_with_missing_none_bool_date_and_numbers(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    columns = ["a", "b", "c", "d", "e", "f", "g", "h"]
    row = {
        "h": Decimal("1.10"),
        "a": None,
        "c": True,
        "d": False,
        "e": date(2020, 6, 30),
        "f": -5,
        "g": 2.5,
        "x": "ignored",
    }
    written = write_csv(path, columns, [row])
    assert written == 1
    assert _read_csv(path) == [columns, ["", "", "true", "false", "2020-06-30", "-5", "2.5", "1.10"]]


def test_csv_headers_replace_the_column_names_in_the_header_line(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_csv(path, ["name", "age"], [{"name": "李四", "age": 40}], headers=["姓名", "年龄"])
    assert _read_csv(path) == [["姓名", "年龄"], ["李四", "40"]]


def test_csv_headers_must_match_the_columns(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1 headers for 2 columns"):
        write_csv(tmp_path / "out.csv", ["name", "age"], [], headers=["姓名"])


def test_csv_text_cells_are_neutralised_and_numbers_are_not(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_csv(
        path, ["text", "number"], [{"text": '=HYPERLINK("http://x")', "number": -7}, {"text": "@x", "number": -0.5}]
    )
    assert _read_csv(path)[1:] == [['\'=HYPERLINK("http://x")', "-7"], ["'@x", "-0.5"]]


def test_csv_nan_is_an_empty_cell(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_csv(path, ["a", "b"], [{"a": float("nan"), "b": 1.0}])
    assert _read_csv(path)[1] == ["", "1.0"]


def test_csv_quotes_delimiters_and_line_breaks_inside_cells(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_csv(path, ["remark"], [{"remark": '一,二\n三 "四"'}])
    assert _read_csv(path)[1] == ['一,二\n三 "四"']


def test_csv_streams_a_generator_and_counts_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"

    def rows() -> Iterator[dict[str, Any]]:
        for number in range(2500):
            yield {"n": number}

    assert write_csv(path, ["n"], rows()) == 2500
    lines = _read_csv(path)
    assert len(lines) == 2501 and lines[-1] == ["2499"]


def test_csv_without_rows_has_its_header(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    assert write_csv(path, ["a", "b"], iter([])) == 0
    assert path.read_bytes() == b"\xef\xbb\xbfa,b\r\n"


# write_workbook


def _sheet_xml(path: Path, number: int = 1) -> bytes:
    with zipfile.ZipFile(path) as workbook:
        return workbook.read(f"xl/worksheets/sheet{number}.xml")


def test_workbook_has_one_worksheet_per_sheet_in_order(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write_workbook(path, [Sheet("疑点清单", ["姓名"], [["张三"]]), Sheet("统计", ["数量"], [[3]])])
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["疑点清单", "统计"]
    assert [[cell.value for cell in row] for row in workbook["统计"].iter_rows()] == [["数量"], [3]]


def test_header_row_is_bold_frozen_and_filtered(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write_workbook(
        path, [Sheet("s", ["姓名", "身份证号", "县"], [["张三", "4312", "凤凰县"], ["李四", "4313", "泸溪县"]])]
    )
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    assert [cell.font.b for cell in sheet[1]] == [True, True, True]
    assert [bool(cell.font.b) for cell in sheet[2]] == [False, False, False]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:C3"


def test_column_widths_fit_the_content_with_wide_characters_counted_twice(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    rows = [["张三丰", "a", "x" * 200, "abcdefghijklmnopqrst", 123456789012]]
    write_workbook(path, [Sheet("s", ["姓名", "b", "c", "d", "e"], rows)])
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    widths = {letter: sheet.column_dimensions[letter].width for letter in "ABCDE"}
    assert widths == {"A": 8, "B": 6, "C": 60, "D": 22, "E": 14}


def test_formula_text_is_stored_as_plain_text_with_an_apostrophe(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    texts = ["=1+1", "+86 138", "-x", "@SUM(A1)", "\tx", '=HYPERLINK("http://x","y")']
    write_workbook(path, [Sheet("s", ["=header", *(f"c{index}" for index in range(len(texts) - 1))], [texts])])
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    assert sheet["A1"].value == "'=header" and sheet["A1"].data_type == "s"
    assert [cell.value for cell in sheet[2]] == ["'" + text for text in texts]
    assert {cell.data_type for cell in sheet[2]} == {"s"}
    assert b"<f>" not in _sheet_xml(path)


def test_text_that_looks_like_an_error_value_stays_text(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write_workbook(path, [Sheet("s", ["a", "b"], [["#N/A", "#DIV/0!"]])])
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    assert [(cell.value, cell.data_type) for cell in sheet[2]] == [("#N/A", "s"), ("#DIV/0!", "s")]
    assert b't="e"' not in _sheet_xml(path)


def test_numbers_dates_and_booleans_keep_their_types(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    row = [-5, 2.5, date(2020, 6, 30), True, Decimal("1.25"), None, "文本"]
    write_workbook(path, [Sheet("s", list("abcdefg"), [row])])
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    values = [cell.value for cell in sheet[2]]
    assert values == [-5, 2.5, datetime(2020, 6, 30), True, 1.25, None, "文本"]
    assert [cell.data_type for cell in sheet[2]][:5] == ["n", "n", "d", "b", "n"]


def test_nan_is_an_empty_cell_and_infinity_is_text(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write_workbook(path, [Sheet("s", ["a", "b", "c"], [[float("nan"), float("-inf"), 1]])])
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    assert [(cell.value, cell.data_type) for cell in sheet[2]] == [(None, "n"), ("'-inf", "s"), (1, "n")]
    assert b'r="A2"' not in _sheet_xml(path)


def test_control_characters_a_worksheet_cannot_hold_are_dropped_before_neutralising(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write_workbook(path, [Sheet("s", ["a", "b"], [["\x01=cmd", "张\x0b三"]])])
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    assert [cell.value for cell in sheet[2]] == ["'=cmd", "张三"]


def test_a_sheet_without_rows_still_has_its_header(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write_workbook(path, [Sheet("空", ["姓名", "县"], []), Sheet("also", ["a"], iter([]))])
    workbook = openpyxl.load_workbook(path)
    for sheet, header in zip(workbook.worksheets, [["姓名", "县"], ["a"]], strict=True):
        assert sheet.max_row == 1
        assert [cell.value for cell in sheet[1]] == header
        assert sheet.freeze_panes == "A2"
    assert workbook.worksheets[0].auto_filter.ref == "A1:B1"


def test_sheet_titles_are_made_legal_and_unique(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    long_title = "很长的标题" * 8
    titles = ["a/b:c*d?e[f]g\\h", long_title, long_title, "Data", "DATA", "'quoted'", "", "History"]
    write_workbook(path, [Sheet(title, ["x"], []) for title in titles])
    names = openpyxl.load_workbook(path).sheetnames
    assert names == [
        "a_b_c_d_e_f_g_h",
        long_title[:31],
        long_title[:27] + " (2)",
        "Data",
        "DATA (2)",
        "quoted",
        "Sheet",
        "History_",
    ]
    assert all(len(name) <= 31 for name in names)


def test_legal_sheet_titles_count_repeats_upwards() -> None:
    assert legal_sheet_titles(["表", "表", "表", "表 (2)"]) == ["表", "表 (2)", "表 (3)", "表 (2) (2)"]


def test_the_same_sheets_give_the_same_bytes(tmp_path: Path) -> None:
    rows = [["张三", 1, date(2020, 1, 1), "=x"], ["李四", 2.5, None, True]]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_workbook(tmp_path / "a" / "out.xlsx", [Sheet("名单", ["姓名", "n", "d", "t"], rows)])
    write_workbook(tmp_path / "b" / "out.xlsx", [Sheet("名单", ["姓名", "n", "d", "t"], iter(rows))])
    assert (tmp_path / "a" / "out.xlsx").read_bytes() == (tmp_path / "b" / "out.xlsx").read_bytes()


def test_workbook_times_are_fixed(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write_workbook(path, [Sheet("s", ["a"], [[1]])], creator="回头看")
    with zipfile.ZipFile(path) as workbook:
        # XlsxWriter gives every member one fixed time, not the time of writing.
        assert {info.date_time for info in workbook.infolist()} == {(1980, 1, 31, 0, 0, 0)}
        core = workbook.read("docProps/core.xml").decode()
    assert re.search(r"<dcterms:created[^>]*>2020-06-01T08:00:00Z<", core)
    assert re.search(r"<dcterms:modified[^>]*>2020-06-01T08:00:00Z<", core)
    properties = openpyxl.load_workbook(path).properties
    assert properties.creator == "回头看"


def test_generated_rows_are_written_and_measured(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"

    def rows() -> Iterator[list[Any]]:
        for number in range(3000):
            yield [number, "长" * (number % 20)]

    write_workbook(path, [Sheet("s", ["n", "text"], rows())])
    sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    values = [tuple(row) for row in sheet.iter_rows(values_only=True)]
    assert len(values) == 3001
    assert values[-1] == (2999, "长" * 19)
    widths = openpyxl.load_workbook(path).worksheets[0].column_dimensions
    assert widths["B"].width == 40


def test_a_failing_row_source_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"

    def rows() -> Iterator[list[Any]]:
        yield ["one"]
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        write_workbook(path, [Sheet("s", ["a"], rows())])
    assert list(tmp_path.iterdir()) == []


def test_a_failure_while_saving_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import xlsxwriter

    path = tmp_path / "out.xlsx"

    def disk_full(workbook: xlsxwriter.Workbook) -> None:
        path.write_bytes(b"PK")  # a part of the file written, then the disk full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(xlsxwriter.Workbook, "close", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_workbook(path, [Sheet("s", ["a"], [["one"]])])
    assert list(tmp_path.iterdir()) == []


def test_a_workbook_needs_a_sheet(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one sheet"):
        write_workbook(tmp_path / "out.xlsx", [])


def test_text_that_looks_like_a_number_a_date_or_a_link_stays_text(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    texts = ["431224199001011234", "0731", "1e5", "2020-06-30", "http://example.org", "TRUE"]
    write_workbook(path, [Sheet("s", [f"c{index}" for index in range(len(texts))], [texts])])
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    assert [(cell.value, cell.data_type) for cell in sheet[2]] == [(text, "s") for text in texts]


def test_empty_text_is_an_empty_cell(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write_workbook(path, [Sheet("s", ["a", "b"], [["", "x"]])])
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    assert [cell.value for cell in sheet[2]] == [None, "x"]


def test_worksheets_are_filled_in_any_order(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    with WorkbookWriter(path) as workbook:
        first, second = workbook.add_sheet("一", ["a"]), workbook.add_sheet("二", ["b"])
        for number in range(3):
            first.append([number])
            second.append(["长" * number])
    loaded = openpyxl.load_workbook(path)
    assert [[cell.value for cell in row] for row in loaded["一"].iter_rows()] == [["a"], [0], [1], [2]]
    assert [[cell.value for cell in row] for row in loaded["二"].iter_rows()] == [["b"], [None], ["长"], ["长长"]]
    assert loaded["一"].auto_filter.ref == "A1:A4"
    assert loaded["二"].column_dimensions["A"].width == 6


def test_a_failing_block_leaves_neither_file_nor_temporary_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    path = tmp_path / "out.xlsx"
    with pytest.raises(RuntimeError, match="source broke"), WorkbookWriter(path) as workbook:
        workbook.add_sheet("s", ["a"]).append(["one"])
        raise RuntimeError("source broke")
    assert not path.exists()
    assert list(scratch.iterdir()) == []
    write_workbook(path, [Sheet("s", ["a"], [["one"]])])
    assert path.exists() and list(scratch.iterdir()) == []


# Publishing a folder


def _folder(path: Path, **contents: str) -> Path:
    path.mkdir(parents=True)
    for name, text in contents.items():
        (path / name).write_text(text)
    return path


def _contents(path: Path) -> dict[str, str]:
    return {child.name: child.read_text() for child in path.iterdir()}


def _exchange_works(tmp_path: Path) -> bool:
    first, second = _folder(tmp_path / "probe-1"), _folder(tmp_path / "probe-2")
    try:
        files._exchange(first, second)
    except OSError:
        return False
    finally:
        first.rmdir()
        second.rmdir()
    return True


def test_staging_folder_is_a_new_empty_hidden_sibling(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "2020-06"
    first, second = staging_folder(target), staging_folder(target)
    assert first != second
    for staging in (first, second):
        assert staging.parent == target.parent
        assert staging.is_dir() and list(staging.iterdir()) == []
        assert re.fullmatch(r"\.2020-06\.publishing-[0-9a-f]+", staging.name)
    assert not target.exists()


def test_staging_folder_has_the_permissions_of_an_ordinary_folder(tmp_path: Path) -> None:
    ordinary = tmp_path / "ordinary"
    ordinary.mkdir()
    staging = staging_folder(tmp_path / "out")
    assert staging.stat().st_mode == ordinary.stat().st_mode


def test_first_publication_renames_the_staging_folder(tmp_path: Path) -> None:
    target = tmp_path / "out"
    staging = staging_folder(target)
    (staging / "result.csv").write_text("new")
    inode = staging.stat().st_ino
    swap_into_place(staging, target, marker="old.csv")
    assert _contents(target) == {"result.csv": "new"}
    assert target.stat().st_ino == inode
    assert [path.name for path in tmp_path.iterdir()] == ["out"]


def test_an_existing_folder_is_exchanged_atomically_and_its_content_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not _exchange_works(tmp_path):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    target = _folder(tmp_path / "out", **{"old.csv": "old", "shared.csv": "old"})
    staging = staging_folder(target)
    (staging / "shared.csv").write_text("new")
    inode = staging.stat().st_ino

    def no_fallback(staging: Path, target: Path) -> None:
        pytest.fail("the exchange was available; the fallback must not run")

    monkeypatch.setattr(files, "_replace_by_renames", no_fallback)
    swap_into_place(staging, target, marker="old.csv")
    assert _contents(target) == {"shared.csv": "new"}
    assert target.stat().st_ino == inode
    assert [path.name for path in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("unsupported", ["missing", "errno"])
def test_without_the_exchange_the_old_folder_is_moved_aside_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unsupported: str
) -> None:
    if unsupported == "missing":
        monkeypatch.setattr(files, "_renameat2", lambda: None)
    else:

        def renameat2_without_support(*arguments: Any) -> int:
            ctypes.set_errno(errno.ENOSYS)
            return -1

        monkeypatch.setattr(files, "_renameat2", lambda: renameat2_without_support)
    target = _folder(tmp_path / "out", **{"old.csv": "old"})
    staging = staging_folder(target)
    (staging / "new.csv").write_text("new")
    inode = staging.stat().st_ino
    swap_into_place(staging, target, marker="old.csv")
    assert _contents(target) == {"new.csv": "new"}
    assert target.stat().st_ino == inode
    assert [path.name for path in tmp_path.iterdir()] == ["out"]


def _failing_rename(monkeypatch: pytest.MonkeyPatch, failing: set[tuple[str, str]]) -> None:
    """Path.rename fails with EACCES for the (source name, destination name) pairs given."""
    rename = Path.rename

    def fake(self: Path, destination: Any) -> Path:
        if (self.name, Path(destination).name) in failing:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return rename(self, destination)

    monkeypatch.setattr(Path, "rename", fake)


def test_a_failed_fallback_puts_the_old_folder_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "_renameat2", lambda: None)
    target = _folder(tmp_path / "out", **{"old.csv": "old"})
    staging = staging_folder(target)
    (staging / "new.csv").write_text("new")
    _failing_rename(monkeypatch, {(staging.name, "out")})
    with pytest.raises(LookbackError, match="out is unchanged"):
        swap_into_place(staging, target, marker="old.csv")
    assert _contents(target) == {"old.csv": "old"}
    assert _contents(staging) == {"new.csv": "new"}
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["out", staging.name])


def test_when_the_old_folder_cannot_be_put_back_the_error_says_where_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "_renameat2", lambda: None)
    target = _folder(tmp_path / "out", **{"old.csv": "old"})
    staging = staging_folder(target)
    aside = [path.name for path in tmp_path.iterdir()]
    _failing_rename(monkeypatch, {(staging.name, "out")})
    rename = Path.rename

    def fail_back(self: Path, destination: Any) -> Path:
        if self.name.startswith(".out.old-"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return rename(self, destination)

    monkeypatch.setattr(Path, "rename", fail_back)
    with pytest.raises(LookbackError, match=r"cannot put the earlier content back.*\.out\.old-") as raised:
        swap_into_place(staging, target, marker="old.csv")
    earlier = [path for path in tmp_path.iterdir() if path.name not in aside]
    assert len(earlier) == 1 and str(earlier[0]) in str(raised.value)
    assert _contents(earlier[0]) == {"old.csv": "old"}


def test_a_failed_move_aside_leaves_the_target_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "_renameat2", lambda: None)
    target = _folder(tmp_path / "out", **{"old.csv": "old"})
    staging = staging_folder(target)
    rename = Path.rename

    def fail_aside(self: Path, destination: Any) -> Path:
        if self.name == "out":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return rename(self, destination)

    monkeypatch.setattr(Path, "rename", fail_aside)
    with pytest.raises(LookbackError, match=r"cannot move .*out aside"):
        swap_into_place(staging, target, marker="old.csv")
    assert _contents(target) == {"old.csv": "old"}


def test_an_exchange_that_fails_for_another_reason_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cross_device(first: Path, second: Path) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(first), None, str(second))

    monkeypatch.setattr(files, "_exchange", cross_device)
    target = _folder(tmp_path / "out", **{"old.csv": "old"})
    staging = staging_folder(target)
    (staging / "new.csv").write_text("new")
    with pytest.raises(LookbackError, match="cannot publish"):
        swap_into_place(staging, target, marker="old.csv")
    assert _contents(target) == {"old.csv": "old"}
    assert _contents(staging) == {"new.csv": "new"}


def test_a_failed_first_publication_raises_a_lookback_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out"
    staging = staging_folder(target)
    _failing_rename(monkeypatch, {(staging.name, "out")})
    with pytest.raises(LookbackError, match="cannot publish"):
        swap_into_place(staging, target, marker="old.csv")
    assert not target.exists() and staging.is_dir()


def test_a_target_that_appears_meanwhile_is_exchanged_not_merged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _folder(tmp_path / "out", **{"old.csv": "old"})
    staging = staging_folder(target)
    (staging / "new.csv").write_text("new")
    monkeypatch.setattr(os.path, "lexists", lambda path: False)
    swap_into_place(staging, target, marker="old.csv")
    assert _contents(target) == {"new.csv": "new"}


def test_only_a_folder_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text("a file")
    staging = staging_folder(target)
    with pytest.raises(LookbackError, match="not a folder"):
        swap_into_place(staging, target, marker="old.csv")
    assert target.read_text() == "a file"


def test_a_missing_staging_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LookbackError, match="no staging folder"):
        swap_into_place(tmp_path / ".out.publishing-00", tmp_path / "out", marker="old.csv")


def test_discard_removes_a_staging_folder_and_nothing_else(tmp_path: Path) -> None:
    target = _folder(tmp_path / "out", **{"keep.csv": "keep"})
    staging = staging_folder(target)
    (staging / "half.csv").write_text("half")
    discard(staging)
    assert not staging.exists()
    discard(staging)  # already gone: nothing to do
    with pytest.raises(ValueError, match="not a staging folder"):
        discard(target)
    assert _contents(target) == {"keep.csv": "keep"}


def test_old_content_that_cannot_be_removed_is_only_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    target = _folder(tmp_path / "out", **{"old.csv": "old"})
    staging = staging_folder(target)
    (staging / "new.csv").write_text("new")

    def busy(path: Path) -> None:
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(path))

    monkeypatch.setattr(shutil, "rmtree", busy)
    swap_into_place(staging, target, marker="old.csv")
    assert _contents(target) == {"new.csv": "new"}
    assert "cannot remove its earlier content" in caplog.text


def test_rows_of_text_and_numbers_have_the_bytes_of_xlsxwriter_cell_by_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows of text and numbers go into the sheet's XML at once; the file is the one
    XlsxWriter writes from one call per cell (escapes, spaces kept, rich-text look-alikes,
    over-long text, numbers, gaps, rows with dates written cell by cell in between)."""
    rows: list[list[Any]] = [
        [" leading", "trailing ", 'a&b<c>"d"', "<r>not rich</r>", "_x0041_", "tab\there", "cr\rlf\nend"],
        [1, -2, 3.5, 1e20, 12345678901234567890, 0.1 + 0.2, None, "", "after gaps"],
        ["with a date", date(2020, 6, 30), 7, Decimal("1.5"), True],
        ["x" * 40_000, "中文" * 20_000, "=1+1", "-3"],
        ["\u3000全角空格", "nbsp\u00a0", "line\n", "\x1cfile separator", "non\ufffechar", "_x00", "_X0041_"],
        [None, None],
        ["last", 1],
    ]
    contents = {}
    for direct in (True, False):
        if not direct:
            monkeypatch.setattr(files, "_write_row_xml", None)
        path = tmp_path / f"direct-{direct}.xlsx"
        with files.WorkbookWriter(path) as workbook:
            for title in ("one", "two"):
                sheet = workbook.add_sheet(title, ["a", "b", "c"])
                sheet._direct = direct
                for row in rows:
                    sheet.append(row)
        contents[direct] = path.read_bytes()
    assert contents[True] == contents[False]


# Printed sheets


def _printed(path: Path, rows: list[list[Any]], layout: files.PrintLayout, direct: bool = True) -> None:
    with files.WorkbookWriter(path) as workbook:
        sheet = workbook.add_sheet("石牌村", ["序号", "姓名", "需核实事项", "签字", "日期"], layout)
        sheet._direct = direct
        for row in rows:
            sheet.append(row)


_PRINTED_ROWS: list[list[Any]] = [
    [1, "张三", "1. 未参加基本医疗保险（张三）\n2. 住房不安全（张三）", None, date(2020, 6, 30)],
    [2, None, "中" * 45, "", True],
    [3.5, " 前导空格", "=1+1"],
]


def test_a_printed_sheet_has_its_title_above_a_ruled_header_and_prints_on_a4_landscape_one_page_across(
    tmp_path: Path,
) -> None:
    path = tmp_path / "printed.xlsx"
    _printed(
        path, _PRINTED_ROWS, files.PrintLayout("溆浦县三江镇石牌村　上门排查清单", {"需核实事项": 20}, row_height=30)
    )
    sheet = openpyxl.load_workbook(path)["石牌村"]
    assert sheet["A1"].value == "溆浦县三江镇石牌村　上门排查清单" and sheet["A1"].font.b
    assert [cell.value for cell in sheet[2]] == ["序号", "姓名", "需核实事项", "签字", "日期"]
    assert all(cell.font.b and cell.border.left.style == "thin" for cell in sheet[2])
    assert sheet.freeze_panes == "A3"
    assert sheet.auto_filter.ref == "A2:E5"
    assert sheet.print_title_rows == "$1:$2"
    assert sheet.page_setup.orientation == "landscape" and sheet.page_setup.paperSize == 9
    # One page across (an absent fitToWidth is 1), as many down as it takes.
    assert (sheet.page_setup.fitToWidth or 1, sheet.page_setup.fitToHeight) == (1, 0)
    assert sheet.sheet_properties.pageSetUpPr is not None and sheet.sheet_properties.pageSetUpPr.fitToPage
    assert sheet.oddFooter is not None and sheet.oddFooter.center.text == "第 &P 页，共 &N 页"
    assert sheet.column_dimensions["C"].width == 20  # fixed: its text wraps within it
    body = [list(row) for row in sheet.iter_rows(min_row=3)]
    # Every cell is ruled and wraps, the empty ones too (to be written in by hand).
    assert all(cell.border.bottom.style == "thin" and cell.alignment.wrap_text for row in body for cell in row)
    assert [[cell.value for cell in row] for row in body] == [
        [1, "张三", "1. 未参加基本医疗保险（张三）\n2. 住房不安全（张三）", None, "2020-06-30"],
        [2, None, "中" * 45, None, "是"],
        [3.5, " 前导空格", "'=1+1", None, None],
    ]
    heights = [sheet.row_dimensions[number].height for number in (3, 4, 5)]
    # At least the layout's height; taller as the wrapped text needs, 16 points a line and
    # 4 to spare, in whole pixels: two lines each 2 across 18 characters (29 and 21 wide),
    # then 90 wide across 18 = 5 lines.
    assert heights == [68.25, 84, 30]


def test_printed_rows_have_the_bytes_of_xlsxwriter_cell_by_cell(tmp_path: Path) -> None:
    layout = files.PrintLayout("标题", {"需核实事项": 20}, row_height=15)
    contents = []
    for direct in (True, False):
        path = tmp_path / f"direct-{direct}.xlsx"
        _printed(path, [*_PRINTED_ROWS, ["x" * 200], [None]], layout, direct)
        contents.append(path.read_bytes())
    assert contents[0] == contents[1]


def test_a_printed_column_grows_with_its_content_only_so_far(tmp_path: Path) -> None:
    path = tmp_path / "printed.xlsx"
    _printed(path, [[1, "名" * 40, "x"]], files.PrintLayout("标题"))
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    assert sheet.column_dimensions["B"].width == files.PRINT_COLUMN_WIDTH + 2
    assert sheet.column_dimensions["A"].width == files.MIN_COLUMN_WIDTH
