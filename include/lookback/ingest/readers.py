"""Readers for delivered files: CSV (GB18030 or UTF-8, with or without BOM) and XLSX.

A reader finds the header (in a workbook, on the first sheet that has it), then yields
every record below it as cell texts with its ``source_row`` (the 1-based number of the
record below the header, as the outputs contract defines it) and its physical line or
sheet row for error messages. Readers decide nothing about content: blank lines, total
lines and broken rows are classified by the ingest step, so that every delivered record
is counted.
"""

from __future__ import annotations

import codecs
import csv
import logging
import re
import zipfile
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from itertools import islice
from json.encoder import encode_basestring
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from lookback.errors import DeliveryError
from lookback.sources import SourceSpec, normalise_label
from lookback.standardise.dates import cell_datetime_text
from lookback.xlsx import check_archive

if TYPE_CHECKING:
    # What a workbook's worksheets are, to the type checker: read-only sheets here.
    from openpyxl.workbook.workbook import Workbook, _WorksheetLike

log = logging.getLogger(__name__)

UTF8_BOM = codecs.BOM_UTF8
_DETECT_CHUNK = 1 << 20
# A CSV field may legitimately hold a long free-text note; raise the csv module's limit.
CSV_FIELD_LIMIT = 16 * 1024 * 1024
csv.field_size_limit(CSV_FIELD_LIMIT)


class DeliveredRecord(NamedTuple):
    """One record below the header, as delivered (a named tuple: made for every line, and a
    frozen dataclass costs twice as much to make)."""

    source_row: int
    position: int  # CSV: the line on which the record ends; XLSX: the sheet row
    values: tuple[str, ...]


@dataclass(frozen=True)
class DeliveredFile:
    """An opened delivery: where its header is and what it says."""

    path: Path
    format: str
    encoding: str  # as detected: gb18030, utf-8, utf-8-sig, or xlsx
    header: tuple[str, ...]
    header_position: int  # line (CSV) or sheet row (XLSX) of the header
    records: Iterator[DeliveredRecord]
    sheet_name: str | None = None  # XLSX: the sheet read, the first that has the header
    # CSV: the records' cells again, read afresh from the file, for decisions that need the
    # whole file before its first record is classified. None for XLSX, where a second
    # pass would parse the workbook again.
    reread: Callable[[], Generator[list[str]]] | None = None
    total: int | None = None  # the records below the header, where known without reading them again
    left_out: tuple[str, ...] = ()  # columns delivered that are not part of a record (a database's)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def position_word(self) -> str:
        return "line" if self.format == "csv" else "sheet row"

    def where(self, source_row: int, position: int) -> str:
        """``registry_members.csv, row 17 (line 18)``: how people find a record in the file."""
        return f"{self.path.name}, row {source_row} ({self.position_word} {position})"

    @property
    def header_where(self) -> str:
        return f"{self.position_word} {self.header_position}"


def raw_json(values: Sequence[str]) -> str:
    """``json.dumps(list(values), ensure_ascii=False)``: each cell as the encoder writes a
    string, joined as it joins a list (without building an encoder for every record)."""
    return "[" + ", ".join(map(encode_basestring, values)) + "]"


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` when the file starts with a BOM, ``utf-8`` when it decodes as UTF-8,
    otherwise ``gb18030`` (which must then decode, or the file is refused)."""
    with path.open("rb") as handle:
        if handle.read(len(UTF8_BOM)) == UTF8_BOM:
            return "utf-8-sig"
    for encoding in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        offset = 0
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(_DETECT_CHUNK):
                    decoder.decode(chunk)
                    offset += len(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            failed_at = offset + error.start
            if encoding == "gb18030":
                raise DeliveryError(
                    f"{path.name}: neither UTF-8 nor GB18030 (undecodable bytes at offset {failed_at})"
                ) from None
            continue
        return encoding
    raise AssertionError("unreachable")


def _required_headers_in(candidate: Sequence[str], spec: SourceSpec) -> int:
    """How many of the source's required headers a row holds."""
    present = {normalise_label(cell) for cell in candidate if cell}
    return sum(
        1
        for column in spec.columns
        if column.required and any(normalise_label(header) in present for header in column.headers)
    )


def _is_header(row: Sequence[str], spec: SourceSpec) -> bool:
    return _required_headers_in(row, spec) == sum(1 for column in spec.columns if column.required)


def _locate_header(
    rows: Iterator[tuple[int, tuple[str, ...]]], spec: SourceSpec, path: Path
) -> tuple[int, tuple[str, ...]]:
    """The header row: the first row when ``locate: first_row``; else, within the first
    ``search_rows`` rows, the first that holds every required header."""
    for seen, (position, row) in enumerate(rows, start=1):
        if spec.header.locate == "first_row" or _is_header(row, spec):
            return position, row
        if seen >= spec.header.search_rows:
            break
    raise DeliveryError(
        f"{path.name}: no header row with the required columns found in the first "
        f"{spec.header.search_rows} rows (source {spec.source}, {spec.path.name})"
    )


def _header_rows_allowed(spec: SourceSpec) -> int:
    return 1 if spec.header.locate == "first_row" else spec.header.search_rows


def _sheet_header(rows: Iterator[tuple[int, tuple[str, ...]]], spec: SourceSpec) -> tuple[int, tuple[str, ...]] | None:
    """A sheet's header row: within the rows where the definition lets it be, the first
    that holds every required header; None when the sheet has none (an explanation sheet).
    Unlike a CSV's first row, a sheet's must hold the headers to count as one."""
    for position, row in islice(rows, _header_rows_allowed(spec)):
        if _is_header(row, spec):
            return position, row
    return None


def _csv_error(path: Path, line: int, error: csv.Error) -> DeliveryError:
    """A CSV the csv module cannot read, said with the file and line. A field beyond the
    field limit is most often a quote left open, which runs to the end of the file."""
    if "field limit" in str(error):
        return DeliveryError(
            f"{path.name}, line {line}: a field larger than {CSV_FIELD_LIMIT // (1 << 20)} MiB, the most a CSV "
            "field may hold: a quotation mark left open (the rest of the file read as one field) or not a CSV"
        )
    return DeliveryError(f"{path.name}, line {line}: not readable as CSV ({error})")


def _csv_rows(path: Path, encoding: str, delimiter: str) -> Generator[tuple[int, tuple[str, ...]]]:
    with path.open(encoding=encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            for row in reader:
                yield reader.line_num, tuple(row)
        except csv.Error as error:
            raise _csv_error(path, reader.line_num, error) from None


def _csv_records(path: Path, encoding: str, delimiter: str, header_position: int) -> Iterator[DeliveredRecord]:
    """The records below the header, which ends on line ``header_position``."""
    with path.open(encoding=encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            for _row in reader:
                if reader.line_num >= header_position:
                    break
            # Read straight from the reader, one record made per line: this runs for every line.
            for number, row in enumerate(reader, start=1):
                yield DeliveredRecord(number, reader.line_num, tuple(row))
        except csv.Error as error:
            raise _csv_error(path, reader.line_num, error) from None


def _csv_cells(path: Path, encoding: str, delimiter: str, header_position: int) -> Generator[list[str]]:
    """The cells of the records below the header, and nothing else: a quick pass."""
    with path.open(encoding=encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            for _row in reader:
                if reader.line_num >= header_position:
                    break
            yield from reader
        except csv.Error as error:
            raise _csv_error(path, reader.line_num, error) from None


def open_csv(path: Path, spec: SourceSpec) -> DeliveredFile:
    file = spec.delivered_file
    encoding = detect_encoding(path)
    if encoding.replace("-sig", "") != file.encoding.replace("-sig", "").lower().replace("_", "-"):
        log.warning("%s: declared %s, detected %s; reading as %s", path.name, file.encoding, encoding, encoding)
    with closing(_csv_rows(path, encoding, file.delimiter)) as rows:
        position, header = _locate_header(rows, spec, path)
    if any("\x00" in cell for cell in header):
        raise DeliveryError(f"{path.name}, line {position}: the header holds a NUL character: a damaged export")
    records = _csv_records(path, encoding, file.delimiter, position)
    cells = partial(_csv_cells, path, encoding, file.delimiter, position)
    return DeliveredFile(path, "csv", encoding, header, position, records, reread=cells)


def cell_text(value: Any) -> str:
    """A spreadsheet cell as the text a person sees in it.

    Numbers too large for Excel's 15 significant digits are rendered the way Excel shows
    them (``4.31224198001011E+17``), so that an identity number stored as a number is
    recognised as damaged rather than silently "repaired" by float rounding.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime | date):
        return cell_datetime_text(value)
    if isinstance(value, int):
        if abs(value) < 10**15:
            return str(value)
        try:
            return format(float(value), ".15G")
        except OverflowError:  # past a float's range (no Excel number is): its 15 digits all the same
            return format(Decimal(value), ".15G")
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15G")
    return str(value)


class _NotVouchedFor(Exception):
    """A workbook whose cells the fast reader might give otherwise than openpyxl does."""


# What the fast reader gives otherwise than openpyxl, found in a workbook's XML: an escaped
# character (``_x000D_``, which openpyxl keeps as typed), an error cell (``#N/A``, which it
# gives as empty) and phonetic runs in a shared string.
_ESCAPED_CHARACTER = re.compile(rb"_x[0-9A-Fa-f]{4}_")
_ERROR_CELL = re.compile(rb"""<(?:[A-Za-z_][\w.-]*:)?c\s[^>]*?\bt\s*=\s*["']e["']""")
_PHONETIC = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?rPh\b")
_FIRST_ROW = re.compile(rb"<((?:[A-Za-z_][\w.-]*:)?)row[\s/>]")
_CELL = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c(?=[\s/>])([^>]*)>")
_REFERENCE = re.compile(rb"""(?:^|\s)r\s*=\s*["']([A-Za-z]*)(\d*)(?:\.0*)?["']""")
_RELATIONSHIPS = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_RELATIONSHIP_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_FIRST_DAY_READ_ALIKE = datetime(1900, 3, 1)  # Excel's 1900 leap day and the days before it


def _read_otherwise(xml: bytes) -> bool:
    """Whether an XML part holds what the fast reader gives otherwise than openpyxl."""
    return bool(
        _ESCAPED_CHARACTER.search(xml)
        or (b"rPh" in xml and _PHONETIC.search(xml))
        or ((b'"e"' in xml or b"'e'" in xml) and _ERROR_CELL.search(xml))
    )


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + letter - 64
    return number


def _stored_widths(xml: bytes) -> list[int]:
    """For every row of a sheet up to its last stored row, how many cells openpyxl's
    read-only rows give: up to the column of the row's last stored cell (an empty one
    included), none for a row that is not stored. Rows out of order are not vouched for."""
    widths: list[int] = []
    row = 0
    start = max(xml.find(b"sheetData"), 0)
    first = _FIRST_ROW.search(xml, start)
    if first is None:
        return widths
    prefix = first.group(1)  # the sheet's elements are written with one prefix, or none
    rows = list(re.finditer(re.escape(b"<" + prefix + b"row") + rb"(?=[\s/>])([^>]*)>", xml[start:]))
    ends = [match.start() for match in rows[1:]] + [len(xml) - start]
    xml = xml[start:]
    for match, end in zip(rows, ends, strict=True):
        attributes = match.group(1)
        reference = _REFERENCE.search(attributes)
        row = int(reference.group(2)) if reference and reference.group(2) else row + 1
        if row <= len(widths):
            raise _NotVouchedFor(f"row {row} stored out of order")
        widths.extend([0] * (row - len(widths)))
        if not attributes.endswith(b"/"):
            widths[row - 1] = _last_column(xml, b"<" + prefix + b"c", match.end(), end)
    return widths


def _last_column(xml: bytes, tag: bytes, start: int, end: int) -> int:
    """The column of the last cell stored between ``start`` and ``end`` (one row), 0 if none."""
    at = end
    while (at := xml.rfind(tag, start, at)) >= 0:
        if xml[at + len(tag) : at + len(tag) + 1] in (b" ", b"/", b">", b"\t", b"\r", b"\n"):
            cell = _CELL.match(xml, at)
            reference = _REFERENCE.search(cell.group(1)) if cell else None
            if reference and reference.group(1):
                return _column_number(reference.group(1))
            # A cell without its reference follows the one before it: count them all.
            column = 0
            for cell in _CELL.finditer(xml, start, end):
                reference = _REFERENCE.search(cell.group(1))
                column = _column_number(reference.group(1)) if reference and reference.group(1) else column + 1
            return column
    return 0


def _fast_text(value: Any) -> str:
    """A cell as python-calamine gives it, as the text :func:`cell_text` makes of what
    openpyxl gives for it. A date is a day at midnight to openpyxl; a time of day, a
    duration, a day before March 1900 (two calendars disagree there) or a fraction of a
    second are not vouched for."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is float or kind is int or kind is bool:
        return cell_text(value)
    if kind is date:
        value = datetime(value.year, value.month, value.day)
        kind = datetime
    if kind is datetime and value >= _FIRST_DAY_READ_ALIKE and not value.microsecond:
        return cell_datetime_text(value)
    raise _NotVouchedFor(f"a cell holding {value!r}")


class _FastWorkbook:
    """A workbook read with python-calamine (about ten times openpyxl's speed), each sheet's
    rows given exactly as :func:`_sheet_rows` gives them from openpyxl: the same cell texts,
    and each row as long as openpyxl makes it (to its last stored cell, which calamine does
    not tell, so that is read from the sheet's XML). Raises :class:`_NotVouchedFor`, or
    calamine's own errors, where openpyxl must read the workbook instead."""

    def __init__(self, path: Path) -> None:
        from python_calamine import CalamineWorkbook

        self.path = path
        self._archive = zipfile.ZipFile(path)
        names = set(self._archive.namelist())
        if "xl/sharedStrings.xml" in names:
            shared = self._archive.read("xl/sharedStrings.xml")
            if _read_otherwise(shared):
                raise _NotVouchedFor("escaped characters or phonetic runs in the shared strings")
        self.sheets = self._worksheets()
        self._workbook = CalamineWorkbook.from_path(str(path))

    def _worksheets(self) -> list[tuple[str, str]]:
        """Each worksheet's title and XML part, in workbook order (chart sheets left out)."""
        import xml.etree.ElementTree as ElementTree

        workbook = ElementTree.fromstring(self._archive.read("xl/workbook.xml"))
        relations = ElementTree.fromstring(self._archive.read("xl/_rels/workbook.xml.rels"))
        targets = {
            relation.get("Id"): relation.get("Target", "")
            for relation in relations.iter(_RELATIONSHIPS)
            if relation.get("Type", "").endswith("/worksheet")
        }
        sheets = []
        for sheet in workbook.iter(f"{_MAIN}sheet"):
            target = targets.get(sheet.get(_RELATIONSHIP_ID))
            if target is not None:
                part = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
                sheets.append((sheet.get("name", ""), part))
        return sheets

    def rows(self, title: str, part: str) -> list[tuple[str, ...]]:
        xml = self._archive.read(part)
        if _read_otherwise(xml):
            raise _NotVouchedFor(f"sheet {title}: escaped characters, error cells or phonetic runs")
        widths = _stored_widths(xml)
        values = self._workbook.get_sheet_by_name(title).to_python(skip_empty_area=False)
        rows = []
        for number, width in enumerate(widths):
            cells = values[number] if number < len(values) else []
            if any(cell != "" for cell in cells[width:]):
                raise _NotVouchedFor(f"sheet {title}, row {number + 1}: a value right of the last stored cell")
            texts = tuple(map(_fast_text, cells[:width]))
            rows.append(texts + ("",) * (width - len(texts)))
        if any(cell != "" for cells in values[len(widths) :] for cell in cells):
            raise _NotVouchedFor(f"sheet {title}: values below the last stored row")
        return rows

    def close(self) -> None:
        self._workbook.close()
        self._archive.close()


def _open_workbook(path: Path) -> Workbook:
    from openpyxl import load_workbook

    try:
        return load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many types for a broken file
        raise DeliveryError(f"{path.name}: not a readable xlsx workbook ({type(error).__name__}: {error})") from None


def _sheet_rows(sheet: _WorksheetLike) -> Generator[tuple[int, tuple[str, ...]]]:
    """Every row of a sheet with its sheet row number, empty rows included."""
    # The stored dimension is whatever the writing tool claimed (``A1:C3`` or ``A1`` over
    # a sheet of thousands of rows is common), and read-only mode stops at it: read to
    # the last row stored instead. Rows then end at their last stored cell.
    sheet.reset_dimensions()
    for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
        yield number, tuple(cell_text(value) for value in row)


def _sheet_records(workbook: Workbook, sheet: _WorksheetLike, header_position: int) -> Iterator[DeliveredRecord]:
    """The records below a sheet's header; the workbook is closed when they are read."""
    try:
        rows = _sheet_rows(sheet)
        for sheet_row, _values in rows:
            if sheet_row >= header_position:
                break
        for number, (sheet_row, values) in enumerate(rows, start=1):
            yield DeliveredRecord(source_row=number, position=sheet_row, values=values)
    finally:
        workbook.close()


def _fast_xlsx(path: Path, spec: SourceSpec) -> DeliveredFile | None:
    """:func:`open_xlsx` with python-calamine; None where openpyxl must read the workbook
    (one calamine cannot open, or whose cells it might give otherwise)."""
    try:
        workbook = _FastWorkbook(path)
    except Exception as error:  # calamine, zipfile and XML errors alike: openpyxl says what is wrong
        log.info("%s: read with openpyxl (%s: %s)", path.name, type(error).__name__, error)
        return None
    try:
        with_header: list[tuple[str, list[tuple[str, ...]], int, tuple[str, ...]]] = []
        for title, part in workbook.sheets:
            rows = workbook.rows(title, part)
            found = _sheet_header(iter(enumerate(rows, start=1)), spec)
            if found is not None:
                with_header.append((title, rows, *found))
    except Exception as error:
        log.info("%s: read with openpyxl (%s: %s)", path.name, type(error).__name__, error)
        return None
    finally:
        workbook.close()
    if not with_header:
        return None  # openpyxl says where it looked
    title, rows, position, header = with_header[0]
    others = [other for other, _rows, _position, _header in with_header[1:]]
    delivered = _xlsx_file(path, title, position, header, _listed_records(rows, position), others)
    return replace(delivered, total=len(rows) - position)


def _listed_records(rows: list[tuple[str, ...]], header_position: int) -> Iterator[DeliveredRecord]:
    for number, values in enumerate(rows[header_position:], start=1):
        yield DeliveredRecord(source_row=number, position=header_position + number, values=values)


def _xlsx_file(
    path: Path,
    title: str,
    position: int,
    header: tuple[str, ...],
    records: Iterator[DeliveredRecord],
    others: list[str],
) -> DeliveredFile:
    if others:
        also = "sheet {} also has the header and is" if len(others) == 1 else "sheets {} also have the header and are"
        log.warning("%s: reading sheet %s; %s not read", path.name, title, also.format(", ".join(others)))
    # Cells right of the header's last named column are not part of the table's width.
    while header and not header[-1].strip():
        header = header[:-1]
    return DeliveredFile(path, "xlsx", "xlsx", header, position, records, sheet_name=title)


def open_xlsx(path: Path, spec: SourceSpec) -> DeliveredFile:
    """Open a workbook on the first sheet, in workbook order, that has the header:
    departments often put an explanation sheet (填表说明) before the data. A workbook that
    would unpack beyond the source's limits is refused before it is read."""
    check_archive(path, spec.delivered_file.limits, DeliveryError)
    fast = _fast_xlsx(path, spec)
    if fast is not None:
        return fast
    workbook = _open_workbook(path)
    with_header: list[tuple[_WorksheetLike, int, tuple[str, ...]]] = []
    try:
        for sheet in workbook.worksheets:
            with closing(_sheet_rows(sheet)) as rows:
                found = _sheet_header(rows, spec)
            if found is not None:
                with_header.append((sheet, *found))
    except BaseException:
        workbook.close()
        raise
    if not with_header:
        workbook.close()
        allowed = _header_rows_allowed(spec)
        where = "first row" if allowed == 1 else f"first {allowed} rows"
        searched = ", ".join(sheet.title for sheet in workbook.worksheets)
        raise DeliveryError(
            f"{path.name}: no header row with the required columns found in the {where} of any sheet "
            f"(sheets searched: {searched}) (source {spec.source}, {spec.path.name})"
        )
    sheet, position, header = with_header[0]
    others = [other.title for other, _position, _header in with_header[1:]]
    return _xlsx_file(path, sheet.title, position, header, _sheet_records(workbook, sheet, position), others)


def open_delivery(path: Path, spec: SourceSpec) -> DeliveredFile:
    """Open a delivered file with the reader its source definition names."""
    if spec.delivered_file.format == "csv":
        return open_csv(path, spec)
    return open_xlsx(path, spec)
