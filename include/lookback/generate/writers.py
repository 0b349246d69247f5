"""Write exports exactly as departments deliver them: CSV in their encodings, XLSX with
title rows above the header and a total line below the data.

The headers come from the source definitions, so a generated batch is read back by the
same YAML that reads real deliveries.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from pathlib import Path

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


def write_csv(path: Path, spec: SourceSpec, records: Sequence[Record | RawLine]) -> None:
    """A CSV in the source's encoding (GB18030, UTF-8, or UTF-8 with BOM), CRLF lines."""
    with path.open("w", encoding=spec.file.encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=spec.file.delimiter, lineterminator="\r\n")
        writer.writerow(headers_of(spec))
        for record in records:
            if isinstance(record, RawLine):
                handle.write(record.text + "\r\n")
            else:
                writer.writerow(record)


def write_xlsx(
    path: Path,
    spec: SourceSpec,
    records: Sequence[Record],
    title_rows: Sequence[str] = (),
    total_row: Record | None = None,
) -> None:
    """An XLSX with title rows above the header and an optional total line at the bottom.

    Streamed row by row (constant memory, inline strings): text stays text, numbers and
    date cells are written as such, blank cells are left out, and the fixed creation date
    gives the same bytes for the same records.
    """
    import xlsxwriter

    options = {
        "constant_memory": True,
        "strings_to_numbers": False,
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "tmpdir": str(path.parent),
    }
    with xlsxwriter.Workbook(str(path), options) as workbook:
        workbook.set_properties({"author": spec.department, "created": WORKBOOK_TIME})
        sheet = workbook.add_worksheet(spec.title[:31])
        # openpyxl's format for a date cell, so a reader sees a date.
        date_format = workbook.add_format({"num_format": "yyyy-mm-dd h:mm:ss"})
        # A blank cell is stored (as a spreadsheet stores a cleared cell): a row ends at its
        # last stored cell, whether that holds text or not.
        blank_format = workbook.add_format()
        write_string, write_number, write_datetime = sheet.write_string, sheet.write_number, sheet.write_datetime
        write_blank = sheet.write_blank
        above: list[Sequence[Cell]] = [[title] for title in title_rows]
        above.append(headers_of(spec))
        below = [total_row] if total_row is not None else []
        for index, record in enumerate(chain(above, records, below)):
            for column, cell in enumerate(record):
                if cell.__class__ is str:
                    if cell:
                        write_string(index, column, cell)
                    else:
                        write_blank(index, column, None, blank_format)
                elif isinstance(cell, datetime):
                    write_datetime(index, column, cell, date_format)
                elif isinstance(cell, int | float):
                    write_number(index, column, cell)
                elif cell is None or cell == "":
                    write_blank(index, column, None, blank_format)
                else:
                    write_string(index, column, str(cell))
