"""A generated workbook holds exactly the cells given: text stays text, numbers and dates are
cells of their kind, blank cells are stored, and the same records give the same bytes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from openpyxl import load_workbook

from lookback.generate.writers import Cell, headers_of, write_xlsx
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
