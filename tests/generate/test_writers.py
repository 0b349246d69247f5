"""A generated workbook holds exactly the cells given: text stays text, numbers and dates are
cells of their kind, blank cells are stored, and the same records give the same bytes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from openpyxl import load_workbook

from lookback.generate.writers import Cell, SheetRows, headers_of, write_xlsx
from lookback.sources import load_source_specs


def test_workbook_cells_are_the_records(tmp_path: Path) -> None:
    spec = load_source_specs()["dibao"]
    width = len(spec.columns)
    texts = ["'431230", "=SUM(A1:A2)", "1.0", "0431", "http://example.org", "\t431224", " 431 ", "合计"]
    record: list[Cell] = [*texts, 431224199001, 4.3122419900123e17, datetime(2020, 5, 31), 2.5, "", ""]
    assert len(record) == width
    records: list[list[Cell]] = [record, [""] * width, ["溆浦县", *[""] * (width - 1)]]
    paths = [tmp_path / "a.xlsx", tmp_path / "b.xlsx"]
    for path in paths:
        write_xlsx(path, spec, records, title_rows=("花名册",), total_row=["合计", 3])
    assert paths[0].read_bytes() == paths[1].read_bytes()

    workbook = load_workbook(paths[0], read_only=True)
    sheet = workbook.worksheets[0]
    assert sheet.title == spec.title[:31]
    sheet.reset_dimensions()
    rows = list(sheet.iter_rows(values_only=True))
    workbook.close()
    blank = (None,) * width
    assert rows == [
        ("花名册",),
        tuple(headers_of(spec)),
        (*texts, 431224199001, 4.3122419900123e17, datetime(2020, 5, 31), 2.5, None, None),
        blank,
        ("溆浦县", *blank[1:]),
        ("合计", 3),
    ]


def _write_cell_by_cell(path: Path, records: list[list[Cell]]) -> None:
    """The workbook as XlsxWriter's own write_* calls give it, one cell at a time."""
    import xlsxwriter

    options = {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False}
    with xlsxwriter.Workbook(str(path), {**options, "strings_to_urls": False, "tmpdir": str(path.parent)}) as book:
        book.set_properties({"created": datetime(2020, 6, 1)})
        sheet = book.add_worksheet("花名册")
        date_format = book.add_format({"num_format": "yyyy-mm-dd h:mm:ss"})
        blank_format = book.add_format()
        for index, record in enumerate(records):
            for column, cell in enumerate(record):
                if isinstance(cell, str) and cell:
                    sheet.write_string(index, column, cell)
                elif isinstance(cell, datetime):
                    sheet.write_datetime(index, column, cell, date_format)
                elif isinstance(cell, int | float):
                    sheet.write_number(index, column, cell)
                else:
                    sheet.write_blank(index, column, None, blank_format)


def test_rows_are_the_bytes_of_cell_by_cell_writing(tmp_path: Path) -> None:
    """SheetRows renders a row's XML itself; XlsxWriter's cell-by-cell writing is the reference,
    text it escapes, keeps the spaces of or truncates included."""
    import xlsxwriter

    texts: list[Cell] = ["溆浦县", " 431 ", "\t431224", "\\t431", "名\u3000", "\u3000名", "a & b <c>", '"引号"']
    texts += ["_x0041_", "ctl\x01", "two\nlines", "<r>x</r>", "\ufffe", "x" * 20_000, "字" * 40_000, "'0431"]
    numbers: list[Cell] = [0, 431224199001, 4.3122419900123e17, 2.5, -1.0, 1e-7, 310.0]
    dates: list[Cell] = [datetime(2020, 5, 31), "", 3, datetime(1999, 1, 2)]
    records: list[list[Cell]] = [
        ["title"],
        [""] * 3,
        texts,
        numbers,
        dates,
        [],
        [*[""] * 15, "shifted"],
        ["合计", "", 7],
    ]
    expected, written = tmp_path / "expected.xlsx", tmp_path / "written.xlsx"
    _write_cell_by_cell(expected, records)
    options = {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False}
    with xlsxwriter.Workbook(str(written), {**options, "strings_to_urls": False, "tmpdir": str(tmp_path)}) as book:
        book.set_properties({"created": datetime(2020, 6, 1)})
        sheet = book.add_worksheet("花名册")
        rows = SheetRows(sheet, book.add_format({"num_format": "yyyy-mm-dd h:mm:ss"}), book.add_format())
        for index, record in enumerate(records):
            rows.write(index, record)
    assert written.read_bytes() == expected.read_bytes()
