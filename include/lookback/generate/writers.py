"""Write exports exactly as departments deliver them: CSV in their encodings, XLSX with
title rows above the header and a total line below the data.

The headers come from the source definitions, so a generated batch is read back by the
same YAML that reads real deliveries.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from math import isinf, isnan
from pathlib import Path
from typing import Any

from lookback.sources import SourceSpec
from lookback.xlsx import WORKBOOK_TIME

# Cell values: text as typed, a number where the export stored one (which is how an
# identity number loses its last digits in Excel), or a spreadsheet's own date cell.
Cell = str | int | float | datetime
# A delivered record: its cells, or a raw line written verbatim (a blank line, a line of
# bare commas, a row with a delimiter missing).
Record = Sequence[Cell]


@dataclass(frozen=True)
class RawLine:
    """A CSV line written exactly as given, bypassing the csv writer's quoting."""

    text: str


def csv_line(cells: Sequence[str], delimiter: str = ",") -> str:
    """One CSV line, quoted as the csv module quotes, without its line end."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(cells)
    return buffer.getvalue()


def headers_of(spec: SourceSpec) -> list[str]:
    """The delivered header row of a source, in definition order."""
    return [column.headers[0] for column in spec.columns]


class Delivery:
    """An export file written record by record as its records are made (a large batch's
    records never all wait in memory); ``len`` is the number of records written so far,
    title rows and header aside. Closed on leaving its ``with`` block."""

    def __init__(self) -> None:
        self._written = 0

    def __len__(self) -> int:
        return self._written

    def __enter__(self) -> Delivery:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def append(self, record: Record | RawLine) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class CsvDelivery(Delivery):
    """A CSV in the source's encoding (GB18030, UTF-8, or UTF-8 with BOM), CRLF lines."""

    def __init__(self, path: Path, spec: SourceSpec) -> None:
        super().__init__()
        self._handle = path.open("w", encoding=spec.delivered_file.encoding, newline="")
        self._writer = csv.writer(self._handle, delimiter=spec.delivered_file.delimiter, lineterminator="\r\n")
        self._writer.writerow(headers_of(spec))

    def append(self, record: Record | RawLine) -> None:
        if isinstance(record, RawLine):
            self._handle.write(record.text + "\r\n")
        else:
            self._writer.writerow(record)
        self._written += 1

    def close(self) -> None:
        self._handle.close()


class XlsxDelivery(Delivery):
    """An XLSX with title rows above the header (and, as the last record, the total line).

    Streamed row by row (constant memory, inline strings): text stays text, numbers and
    date cells are written as such, blank cells are stored, and the fixed creation date
    gives the same bytes for the same records.
    """

    def __init__(self, path: Path, spec: SourceSpec, title_rows: Sequence[str] = ()) -> None:
        import xlsxwriter

        super().__init__()
        options = {
            "constant_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "tmpdir": str(path.parent),
        }
        self._workbook = xlsxwriter.Workbook(str(path), options)
        self._workbook.set_properties({"author": spec.department, "created": WORKBOOK_TIME})
        sheet = self._workbook.add_worksheet(spec.title[:31])
        # openpyxl's format for a date cell, so a reader sees a date.
        date_format = self._workbook.add_format({"num_format": "yyyy-mm-dd h:mm:ss"})
        # A blank cell is stored (as a spreadsheet stores a cleared cell): a row ends at its
        # last stored cell, whether that holds text or not.
        blank_format = self._workbook.add_format()
        self._rows = SheetRows(sheet, date_format, blank_format)
        self._next_row = 0
        for title in title_rows:
            self._write([title])
        self._write(headers_of(spec))

    def _write(self, record: Record) -> None:
        self._rows.write(self._next_row, record)
        self._next_row += 1

    def append(self, record: Record | RawLine) -> None:
        if isinstance(record, RawLine):
            raise TypeError("a sheet has cells, not raw lines")
        self._write(record)
        self._written += 1

    def close(self) -> None:
        self._workbook.close()


def write_csv(path: Path, spec: SourceSpec, records: Iterable[Record | RawLine]) -> None:
    """A CSV of ``records`` (see :class:`CsvDelivery`)."""
    with CsvDelivery(path, spec) as delivery:
        for record in records:
            delivery.append(record)


def write_xlsx(
    path: Path,
    spec: SourceSpec,
    records: Iterable[Record],
    title_rows: Sequence[str] = (),
    total_row: Record | None = None,
) -> None:
    """An XLSX of ``records`` with title rows above the header and an optional total line at
    the bottom (see :class:`XlsxDelivery`)."""
    with XlsxDelivery(path, spec, title_rows) as delivery:
        for record in records:
            delivery.append(record)
        if total_row is not None:
            delivery.append(total_row)


# Text XlsxWriter writes changed: XML's special characters, control characters and its
# own _xHHHH_ escapes; anything else goes into the sheet as it is.
_TEXT_NEEDING_CARE = re.compile('[\x00-\x1f"&<>\ufffe\uffff]|_x')


class SheetRows:
    """Writes whole rows of a constant-memory XlsxWriter worksheet: the XML its
    ``write_string``, ``write_number``, ``write_datetime`` and ``write_blank`` give for each
    cell, rendered row by row into the sheet's row file without the call per cell (the
    allowance sheet has some fourteen cells a row and hundreds of thousands of rows).
    ``tests/generate/test_writers.py`` holds the bytes to those of writing cell by cell.
    """

    def __init__(self, sheet: Any, date_format: Any, blank_format: Any) -> None:
        if not sheet.constant_memory or sheet.row_info or sheet.col_info or sheet.dim_rowmax is not None:
            raise ValueError("SheetRows writes a fresh constant-memory sheet, without row or column formats")
        self.sheet = sheet
        self.date_format = date_format
        self.blank_format = blank_format
        self.columns: list[str] = []  # column letters, A, B, …

    def write(self, index: int, record: Sequence[Cell]) -> None:
        """Row ``index`` (from 0) holding ``record``: text (blank when empty), numbers and
        date cells, as ``write_xlsx`` has always stored them."""
        sheet = self.sheet
        if not record or index >= sheet.xls_rowmax:
            return
        width = min(len(record), sheet.xls_colmax)
        columns = self.columns
        if len(columns) < width:
            from xlsxwriter.utility import xl_col_to_name

            columns.extend(xl_col_to_name(column) for column in range(len(columns), width))
        number = str(index + 1)
        parts = [f'<row r="{number}">']
        append = parts.append
        blank: str | None = None
        for column in range(width):
            cell = record[column]
            reference = columns[column] + number
            if cell.__class__ is str:
                if cell:
                    append(self._text(reference, cell))
                    continue
            elif isinstance(cell, datetime):
                serial = sheet._convert_date_time(cell)
                append(f'<c r="{reference}" s="{self.date_format._get_xf_index()}"><v>{serial:.16G}</v></c>')
                continue
            elif isinstance(cell, int | float):
                if isnan(cell) or isinf(cell):
                    raise TypeError(f"{cell} in a sheet cell: XlsxWriter writes no NaN or infinity")
                append(f'<c r="{reference}"><v>{cell:.16G}</v></c>')
                continue
            elif not (cell is None or cell == ""):
                append(self._text(reference, str(cell)))
                continue
            if blank is None:
                blank = f'" s="{self.blank_format._get_xf_index()}"/>'
            append(f'<c r="{reference}{blank}')
        append("</row>")
        sheet.fh.write("".join(parts))
        # What XlsxWriter's own writes keep: the sheet's extent, and the row written last.
        last = width - 1
        if sheet.dim_rowmin is None:
            sheet.dim_rowmin, sheet.dim_colmin, sheet.dim_colmax = index, 0, last
        elif last > sheet.dim_colmax:
            sheet.dim_colmax = last
        sheet.dim_rowmax = index
        sheet.previous_row = index

    def _text(self, reference: str, text: str) -> str:
        sheet = self.sheet
        if len(text) > sheet.xls_strmax // 2 or _TEXT_NEEDING_CARE.search(text):
            return self._text_with_care(reference, text)
        space = ' xml:space="preserve"' if text[0].isspace() or text[-1].isspace() else ""
        return f'<c r="{reference}" t="inlineStr"><is><t{space}>{text}</t></is></c>'

    def _text_with_care(self, reference: str, text: str) -> str:
        """XlsxWriter's own steps for text that holds something it escapes or truncates."""
        from xlsxwriter.utility import _preserve_whitespace, _utf16_len, _utf16_truncate

        sheet = self.sheet
        if len(text) > sheet.xls_strmax // 2 and _utf16_len(text) > sheet.xls_strmax:
            text = _utf16_truncate(text, sheet.xls_strmax)
        text = sheet._escape_control_characters(text)
        if text.startswith("<r>") and text.endswith("</r>"):
            return f'<c r="{reference}" t="inlineStr"><is>{text}</is></c>'
        space = ' xml:space="preserve"' if _preserve_whitespace(text) else ""
        return f'<c r="{reference}" t="inlineStr"><is><t{space}>{sheet._escape_data(text)}</t></is></c>'
