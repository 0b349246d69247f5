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
from pathlib import Path

from lookback.sources import SourceSpec
from lookback.xlsx import WORKBOOK_TIME, fix_zip_timestamps

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
    """An XLSX with title rows above the header and an optional total line at the bottom."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    workbook.properties.created = WORKBOOK_TIME
    workbook.properties.modified = WORKBOOK_TIME
    workbook.properties.creator = spec.department
    sheet = workbook.create_sheet(spec.title[:31])
    for title in title_rows:
        sheet.append([title])
    sheet.append(headers_of(spec))
    for record in records:
        sheet.append(list(record))
    if total_row is not None:
        sheet.append(list(total_row))
    workbook.save(path)
    fix_zip_timestamps(path)
