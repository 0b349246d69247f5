"""Writing a run's deliverables: CSV files, Excel workbooks, and the folder they go in.

Everything here is written for people who open the files in Excel or WPS, from data that
came from outside (names, addresses and remarks typed by clerks). So:

* every text cell is *neutralised*: text that begins with ``=``, ``+``, ``-``, ``@``, a tab
  or a carriage return gets a leading apostrophe, so that no formula can run from source
  data (OWASP "CSV injection"); numbers stay numbers;
* CSV files are UTF-8 with a byte-order mark and CRLF line ends, which is what Excel needs
  to show Chinese text;
* workbooks have a bold, frozen header row with an autofilter, columns as wide as their
  content (a Chinese character counts twice), every text cell stored as plain text, and
  the same bytes for the same input;
* both stream their rows, so a deliverable of millions of rows never sits in memory.

A run's output folder is published all at once: the files are written into a staging
folder beside it (:func:`staging_folder`) that then takes the folder's place in one step
(:func:`swap_into_place`), so a reader sees either the previous run's files or this run's,
never a folder half written. On Linux the two folders are exchanged atomically with
``renameat2(RENAME_EXCHANGE)``; elsewhere the old folder is moved aside first, which leaves
a moment without it, and is put back if the new one cannot take its place.
"""

from __future__ import annotations

import csv
import ctypes
import errno
import logging
import math
import numbers
import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Final

from lookback.errors import LookbackError
from lookback.publish.replace import check_replaceable
from lookback.report import display_width
from lookback.scratch import hold, release, remove_abandoned
from lookback.xlsx import WORKBOOK_TIME

log = logging.getLogger(__name__)

# The first characters that make a spreadsheet read a cell as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

# Excel's limits on worksheet titles.
SHEET_TITLE_LENGTH = 31
_ILLEGAL_TITLE_CHARACTERS = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
# Control characters a worksheet cannot hold (tab, line feed and carriage return it can).
_ILLEGAL_CELL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

# Column widths in characters of the default font: never narrower or wider than this.
MIN_COLUMN_WIDTH = 6
MAX_COLUMN_WIDTH = 60
_COLUMN_PADDING = 2
# Content wider than this makes a column no wider.
_WIDEST_CONTENT = MAX_COLUMN_WIDTH - _COLUMN_PADDING
# The width in pixels of a digit of the default font (Calibri 11), Excel's unit of column width.
_DIGIT_PIXELS = 7

# renameat2(2): the current directory as the base of a relative path, and the flag that
# exchanges two paths in one step.
AT_FDCWD = -100
RENAME_EXCHANGE = 2
# What renameat2 answers where it cannot exchange: no such call (old kernel), or a file
# system that does not support the flag.
_EXCHANGE_UNSUPPORTED = frozenset({errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP})
_STAGING_NAME = re.compile(r"\..+\.publishing-[0-9a-f]+")


def neutralise(value: Any) -> Any:
    """``value`` with a leading apostrophe if it is text that a spreadsheet would take for a
    formula; any other value (numbers, dates, None, other text) as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


# CSV


def write_csv(
    path: Path,
    columns: Sequence[str],
    rows: Iterable[Mapping[str, Any]],
    headers: Sequence[str] | None = None,
) -> int:
    """Write ``rows`` to ``path`` as a CSV file and return how many rows it holds.

    The header line is ``headers`` if given (one per column, e.g. Chinese captions), else
    ``columns``; each row's cells are its values under ``columns``, in that order, with a
    missing key or None as an empty cell (see :class:`CsvWriter`). ``rows`` is read once,
    one row at a time.
    """
    header = list(columns if headers is None else headers)
    if len(header) != len(columns):
        raise ValueError(f"{path.name}: {len(header)} headers for {len(columns)} columns")
    with CsvWriter(path, header) as writer:
        for row in rows:
            writer.append([row.get(column) for column in columns])
    return writer.rows


# Files and folders of personal data (the census extract): their owner's alone.
PRIVATE_FILE_MODE: Final = 0o600
PRIVATE_FOLDER_MODE: Final = 0o700


def private_folder(path: Path) -> Path:
    """Create a folder only its owner may enter, list or write (0700), whatever the umask."""
    path.mkdir(mode=PRIVATE_FOLDER_MODE)
    path.chmod(PRIVATE_FOLDER_MODE)
    return path


class CsvWriter:
    """A CSV file written a row at a time: UTF-8 with a byte-order mark, CRLF line ends,
    the header line first. Cells are None as empty, booleans as ``true``/``false``, dates
    in ISO form, text neutralised. Used as a context manager, the file is closed at the
    end of the ``with`` block."""

    def __init__(self, path: Path, header: Sequence[str] | None, *, private: bool = False) -> None:
        """Without ``header``, a part of a file: its rows only, no byte-order mark, to be
        joined to a file after its header and the parts before (:meth:`join`). ``private``:
        a new file only its owner may read or write (0600), created so (never readable by
        others in between); for files of personal data."""
        self.path = path
        self.rows = 0
        encoding = "utf-8" if header is None else "utf-8-sig"
        if private:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
            os.fchmod(descriptor, PRIVATE_FILE_MODE)  # whatever the umask
            self._handle = os.fdopen(descriptor, "w", encoding=encoding, newline="")
        else:
            self._handle = path.open("w", encoding=encoding, newline="")
        self._writer = csv.writer(self._handle, lineterminator="\r\n")
        if header is not None:
            self._writer.writerow([_csv_cell(caption) for caption in header])

    def join(self, part: Path, rows: int) -> None:
        """Copy a part written by another writer (without header), of ``rows`` rows."""
        self._handle.flush()
        with part.open("rb") as source:
            shutil.copyfileobj(source, self._handle.buffer, 1 << 20)
        self.rows += rows

    def append(self, values: Iterable[Any]) -> None:
        """Write one row of cells, in column order."""
        # None, whole numbers and text that needs no apostrophe go to the csv module as
        # they are (it writes them as _csv_cell would); anything else through _csv_cell.
        self._writer.writerow(
            [
                value
                if value is None
                or (kind := type(value)) is int
                or (kind is str and not value.startswith(FORMULA_TRIGGERS))
                else _csv_cell(value)
                for value in values
            ]
        )
        self.rows += 1

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> CsvWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    kind = type(value)  # the common types first, without the slower checks below
    if kind is float:
        return "" if math.isnan(value) else repr(value)
    if kind is bool:
        return "true" if value else "false"
    if isinstance(value, str):
        return str(neutralise(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        return "" if math.isnan(number) else repr(number)
    if isinstance(value, Decimal):
        return str(value)
    return str(neutralise(str(value)))


# Workbooks


@dataclass(frozen=True)
class Sheet:
    """One worksheet: its title, its header row, and its rows of cells.

    ``rows`` may be a list or a generator; a generator is read once, so such a sheet can be
    written only once.
    """

    title: str
    headers: Sequence[str]
    rows: Iterable[Sequence[Any]] = ()


@dataclass(frozen=True)
class PrintLayout:
    """A worksheet made to be printed and filled in by hand: a title row above the header
    row, every cell ruled (empty ones too, to write in), text wrapped and top-aligned,
    rows at least ``row_height`` points tall and taller as their wrapped text needs;
    printed on A4 landscape, fitted to one page across, the title and header rows repeated
    on every page and the page number at the foot.

    ``widths`` fixes the width (in characters) of the columns it names by header caption:
    their text wraps within it. Other columns are as wide as their content, up to
    :data:`PRINT_COLUMN_WIDTH`. The columns ``hidden`` names are hidden, on screen and on
    paper."""

    title: str
    widths: Mapping[str, int] = field(default_factory=dict)
    row_height: float = 30.0
    hidden: frozenset[str] = frozenset()


# The widest a printed column grows to fit its content (wider text wraps), in characters.
PRINT_COLUMN_WIDTH = 24
# The height of a line of wrapped text, in points (CJK fonts at 11 points need about 16).
_LINE_POINTS = 16.0
_PRINT_MARGINS = {"left": 0.4, "right": 0.4, "top": 0.5, "bottom": 0.6}  # inches
_A4 = 9  # Excel's paper size code
FOOTER = "&C第 &P 页，共 &N 页"


def write_workbook(path: Path, sheets: Sequence[Sheet], creator: str = "lookback") -> None:
    """Write ``sheets`` to ``path`` as an xlsx workbook, one worksheet per sheet in order
    (see :class:`WorkbookWriter`)."""
    if not sheets:
        raise ValueError(f"{path.name}: a workbook needs at least one sheet")
    with WorkbookWriter(path, creator) as workbook:
        for sheet in sheets:
            worksheet = workbook.add_sheet(sheet.title, sheet.headers)
            for row in sheet.rows:
                worksheet.append(row)


class WorkbookWriter:
    """An xlsx workbook written as its rows come, in one pass: used as a context manager,
    it is saved at the end of the ``with`` block, or leaves no file if the block fails.

    Each worksheet has its header row in bold, frozen and with an autofilter, and columns
    as wide as their content. Text cells are neutralised and stored as text (never a
    formula, a number or an error value); control characters a worksheet cannot hold are
    dropped. Titles are made legal for Excel (see :func:`legal_sheet_titles`). Worksheets
    may be filled in any order, each one's rows in order.

    XlsxWriter writes it in constant-memory mode: a finished row goes to a temporary file
    at once, the column widths measured on the way go in at saving. The workbook's
    properties carry :data:`WORKBOOK_TIME` and the zip members one fixed time, so the
    same sheets give the same bytes.
    """

    def __init__(self, path: Path, creator: str = "lookback", properties: Mapping[str, str] | None = None) -> None:
        """``properties``: custom document properties (name → text) the workbook carries."""
        import xlsxwriter

        self.path = path
        self._scratch = tempfile.TemporaryDirectory(prefix="lookback-workbook-")
        self._workbook = xlsxwriter.Workbook(
            str(path),
            {
                "constant_memory": True,
                "tmpdir": self._scratch.name,
                "strings_to_numbers": False,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "nan_inf_to_errors": False,
            },
        )
        self._workbook.set_properties({"created": WORKBOOK_TIME, "author": creator})
        for name, value in (properties or {}).items():
            self._workbook.set_custom_property(name, value, "text")
        self._bold = self._workbook.add_format({"bold": True})
        # Dates and times are numbers shown in these formats (openpyxl's, as these files always had).
        self._time_formats = {
            datetime: self._workbook.add_format({"num_format": "yyyy-mm-dd h:mm:ss"}),
            date: self._workbook.add_format({"num_format": "yyyy-mm-dd"}),
            time: self._workbook.add_format({"num_format": "h:mm:ss"}),
        }
        self._taken: set[str] = set()
        self._sheets: list[SheetWriter] = []
        self._print_formats: PrintFormats | None = None

    def add_sheet(self, title: str, headers: Sequence[Any], layout: PrintLayout | None = None) -> SheetWriter:
        """A new worksheet after the others, its header row written (with ``layout``, below
        its title, and made to print)."""
        worksheet = self._workbook.add_worksheet(_legal_title(title, self._taken))
        if layout is None:
            sheet = SheetWriter(worksheet, headers, self._bold, self._time_formats)
        else:
            if self._print_formats is None:
                self._print_formats = PrintFormats.of(self._workbook)
            sheet = PrintedSheetWriter(worksheet, headers, self._print_formats, layout)
        self._sheets.append(sheet)
        return sheet

    def close(self) -> None:
        """Save the workbook at ``path``; without a worksheet, none is written."""
        try:
            if not self._sheets:
                raise ValueError(f"{self.path.name}: a workbook needs at least one sheet")
            for sheet in self._sheets:
                sheet.finish()
            self._workbook.close()
        except BaseException:
            self.discard()
            raise
        finally:
            self._scratch.cleanup()

    def discard(self) -> None:
        """Give up the workbook: no file at ``path``."""
        self._scratch.cleanup()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> WorkbookWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()


class SheetWriter:
    """One worksheet of a :class:`WorkbookWriter`, written a row at a time."""

    def __init__(self, worksheet: Any, headers: Sequence[Any], bold: Any, time_formats: Mapping[type, Any]) -> None:
        self._worksheet = worksheet
        self._time_formats = time_formats
        # Rows of text and numbers are written as XlsxWriter writes them in constant-memory
        # mode, without its work per cell; rows with anything else go cell by cell.
        self._direct = bool(worksheet.constant_memory) and worksheet.excel_version == 2007
        self._widths: list[int] = []
        self.rows = 0
        cells = [_xlsx_value(caption) for caption in headers]
        _measure(cells, self._widths)
        for column, value in enumerate(cells):
            self._write(0, column, value, bold)

    def append(self, row: Iterable[Any]) -> None:
        """Write ``row`` below the rows written so far."""
        self.rows += 1
        number, widths = self.rows, self._widths
        cells: list[tuple[int, Any]] = []
        plain = True  # text and numbers only: the row's XML is written here at once
        for column, raw in enumerate(row):
            if column >= len(widths):  # a row longer than the header widens the autofilter
                widths.extend([0] * (column + 1 - len(widths)))
            if type(raw) is str:  # most cells: _xlsx_value's work for text, inline
                value = raw if raw.isprintable() else _ILLEGAL_CELL_CHARACTERS.sub("", raw)
                if not value:
                    continue
                if value.startswith(FORMULA_TRIGGERS):
                    value = "'" + value
            else:
                value = _xlsx_value(raw)
                if value is None:
                    continue
                if type(value) is not int and type(value) is not float:
                    plain = False
            # Text is at most twice as wide as it is long: measure only what may be wider.
            widest = widths[column]
            if widest < _WIDEST_CONTENT and (type(value) is not str or 2 * len(value) > widest):
                width = _display_width(value)
                if width > widest:
                    widths[column] = width
            cells.append((column, value))
        if not cells:
            return
        if plain and self._direct and number < self._worksheet.xls_rowmax and len(widths) <= self._worksheet.xls_colmax:
            _write_row_xml(self._worksheet, number, cells)
            return
        for column, value in cells:
            self._write(number, column, value, None)

    def _write(self, row: int, column: int, value: Any, cell_format: Any) -> None:
        worksheet = self._worksheet
        if value is None or value == "":
            worksheet.write_blank(row, column, None, cell_format)
        elif isinstance(value, str):
            worksheet.write_string(row, column, value, cell_format)
        elif isinstance(value, bool):
            worksheet.write_boolean(row, column, value, cell_format)
        elif isinstance(value, date | time):
            kind = datetime if isinstance(value, datetime) else date if isinstance(value, date) else time
            worksheet.write_datetime(row, column, value, cell_format or self._time_formats[kind])
        else:
            worksheet.write_number(row, column, value, cell_format)

    def finish(self) -> None:
        """Column widths, frozen header and autofilter: what goes before the rows in the file."""
        worksheet, widths = self._worksheet, self._widths
        for column, width in enumerate(widths):
            # In pixels of the default font's digit (7): the width stored is then exactly
            # this many characters, as Excel counts them.
            worksheet.set_column_pixels(column, column, _column_width(width) * _DIGIT_PIXELS)
        worksheet.freeze_panes(1, 0)
        if widths:
            worksheet.autofilter(0, 0, self.rows, len(widths) - 1)


@dataclass(frozen=True)
class PrintFormats:
    """The cell formats of printed sheets, shared by a workbook's sheets."""

    title: Any
    header: Any
    body: Any

    @classmethod
    def of(cls, workbook: Any) -> PrintFormats:
        ruled = {"border": 1, "text_wrap": True, "valign": "top"}
        return cls(
            title=workbook.add_format({"bold": True, "font_size": 14}),
            header=workbook.add_format(
                {**ruled, "bold": True, "align": "center", "valign": "vcenter", "bg_color": "#D9D9D9"}
            ),
            body=workbook.add_format(ruled),
        )


class PrintedSheetWriter(SheetWriter):
    """A worksheet of a :class:`WorkbookWriter` laid out to print (:class:`PrintLayout`),
    written a row at a time. Dates and other values that are neither text nor numbers are
    written as text (ISO dates), so that every cell carries the ruled format."""

    def __init__(self, worksheet: Any, headers: Sequence[Any], formats: PrintFormats, layout: PrintLayout) -> None:
        self._worksheet = worksheet
        self._time_formats: Mapping[type, Any] = {}
        self._layout = layout
        self._formats = formats
        self._direct = bool(worksheet.constant_memory) and worksheet.excel_version == 2007
        self._style = formats.body._get_xf_index()
        self.rows = 0
        captions = [_xlsx_value(caption) for caption in headers]
        self._columns = len(captions)
        self._hidden = {index for index, caption in enumerate(captions) if str(caption) in layout.hidden}
        self._fixed = {
            index: layout.widths[str(caption)]
            for index, caption in enumerate(captions)
            if str(caption) in layout.widths
        }
        self._widths = [0] * self._columns
        for index, caption in enumerate(captions):
            if index not in self._fixed:
                self._widths[index] = min(PRINT_COLUMN_WIDTH, _display_width(caption))
        worksheet.write_string(0, 0, str(neutralise(layout.title)), formats.title)
        worksheet.set_row(0, 24)
        header_lines = max(
            (_lines(str(caption), self._width(index)) for index, caption in enumerate(captions)), default=1
        )
        worksheet.set_row(1, max(20.0, header_lines * _LINE_POINTS + 4))
        for column, caption in enumerate(captions):
            self._write(1, column, caption, formats.header)

    def _width(self, column: int) -> int:
        """The room for text in a column, in characters (its width less the padding)."""
        fixed = self._fixed.get(column)
        return max(1, (fixed if fixed is not None else _column_width(self._widths[column])) - _COLUMN_PADDING)

    def append(self, row: Iterable[Any]) -> None:
        """Write ``row`` below the rows written so far, every cell of the header's width ruled."""
        self.rows += 1
        number = self.rows + 1
        values = [
            # Most cells: printable text that needs no apostrophe is printed as it is.
            raw
            if type(raw) is str and raw and raw.isprintable() and not raw.startswith(FORMULA_TRIGGERS)
            else printed_value(raw)
            for raw in row
        ]
        values.extend([None] * (self._columns - len(values)))
        widths, fixed, hidden = self._widths, self._fixed, self._hidden
        lines = 1
        for column, value in enumerate(values[: self._columns]):
            if value is None or column in hidden:
                continue
            if column not in fixed:
                widest = widths[column]
                # Text is at most twice as wide as it is long: measure only what may be wider.
                if widest < PRINT_COLUMN_WIDTH and (type(value) is not str or 2 * len(value) > widest):
                    width = min(PRINT_COLUMN_WIDTH, _display_width(value))
                    if width > widest:
                        widths[column] = width
            text = value if type(value) is str else str(value)
            room = self._width(column)
            if 2 * len(text) > room or "\n" in text:  # else it fits on one line
                lines = max(lines, _lines(text, room))
        height = max(self._layout.row_height, lines * _LINE_POINTS + 4)
        if self._direct and number < self._worksheet.xls_rowmax:
            _write_row_xml(self._worksheet, number, list(enumerate(values)), style=self._style, height=height)
            return
        self._worksheet.set_row(number, height)
        for column, value in enumerate(values):
            self._write(number, column, value, self._formats.body)

    def finish(self) -> None:
        """Column widths, frozen and repeated title and header rows, autofilter and page setup."""
        worksheet = self._worksheet
        for column in range(self._columns):
            width = self._fixed.get(column)
            if width is None:
                width = _column_width(self._widths[column])
            hidden = {"hidden": True} if column in self._hidden else None
            worksheet.set_column_pixels(column, column, width * _DIGIT_PIXELS, None, hidden)
        worksheet.freeze_panes(2, 0)
        if self._columns:
            worksheet.autofilter(1, 0, self.rows + 1, self._columns - 1)
        worksheet.set_landscape()
        worksheet.set_paper(_A4)
        worksheet.fit_to_pages(1, 0)
        worksheet.repeat_rows(0, 1)
        worksheet.set_margins(**_PRINT_MARGINS)
        worksheet.set_footer(FOOTER)
        worksheet.center_horizontally()


def printed_value(value: Any) -> Any:
    """What a printed sheet's cell holds for ``value`` (None: an empty cell): text cleaned
    and neutralised, numbers as they are, anything else as text."""
    cell = _xlsx_value(value)
    if cell is not None and type(cell) is not int and type(cell) is not float and not isinstance(cell, str):
        cell = _display_text(cell)
    return None if cell == "" else cell


def _display_text(value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _lines(text: str, width: int) -> int:
    """How many lines ``text`` takes wrapped within ``width`` characters (a Chinese
    character counts twice)."""
    return sum(
        1 if 2 * len(line) <= width else max(1, math.ceil(display_width(line) / width)) for line in text.split("\n")
    )


def _write_row_xml(
    worksheet: Any,
    row: int,
    cells: Sequence[tuple[int, Any]],
    *,
    style: int | None = None,
    height: float | None = None,
) -> None:
    """Write a row of unformatted text and number cells (in column order) into a
    constant-memory worksheet: the same XML, the same dimensions and the same flushing of
    the row before as XlsxWriter's ``write_string`` and ``write_number`` cell by cell
    (which store the row and write it when the next one starts), in one string.

    Its escapes are skipped where they cannot change the text: printable text holds no
    control character, and only text with ``_x`` can look like an escape. With ``style``
    (a format's index), every cell carries that format, a None cell written as an empty
    one; with ``height``, the row is that many points tall."""
    from xlsxwriter.utility import _utf16_len, _utf16_truncate, xl_col_to_name

    if row > worksheet.previous_row:
        worksheet._write_single_row(row)
    worksheet._check_dimensions(row, cells[0][0])
    worksheet._check_dimensions(row, cells[-1][0])
    escape_control, escape_data, longest = (
        worksheet._escape_control_characters,
        worksheet._escape_data,
        worksheet.xls_strmax,
    )
    number = str(row + 1)
    parts = [f'<row r="{number}">']
    if height is not None:  # in whole pixels, as XlsxWriter's set_row stores it
        pixels = int(height * 4.0 / 3.0 + 0.5)
        if not pixels == worksheet.original_row_height == worksheet.default_row_height:
            parts = [f'<row r="{number}" ht="{pixels * 0.75:.16g}" customHeight="1">']
    styled = "" if style is None else f' s="{style}"'
    for column, value in cells:
        name = _COLUMN_NAMES.get(column)
        if name is None:
            name = _COLUMN_NAMES[column] = xl_col_to_name(column)
        if value is None:
            parts.append(f'<c r="{name}{number}"{styled}/>')
            continue
        if type(value) is not str:
            parts.append(f'<c r="{name}{number}"{styled}><v>{value:.16G}</v></c>')
            continue
        if len(value) > longest // 2 and _utf16_len(value) > longest:
            value = _utf16_truncate(value, longest)
        if "_x" in value or not value.isprintable():
            value = escape_control(value)
        if value.startswith("<r>") and value.endswith("</r>"):
            parts.append(f'<c r="{name}{number}"{styled} t="inlineStr"><is>{value}</is></c>')
        else:
            # XlsxWriter's test, ^\s or \s$: \s is str.isspace, and $ before a final
            # line break leaves a space last either way.
            preserve = ' xml:space="preserve"' if value[0].isspace() or value[-1].isspace() else ""
            parts.append(
                f'<c r="{name}{number}"{styled} t="inlineStr"><is><t{preserve}>{escape_data(value)}</t></is></c>'
            )
    parts.append("</row>")
    worksheet.fh.write("".join(parts))


# Column letters by column number, as XlsxWriter writes them in cell references.
_COLUMN_NAMES: dict[int, str] = {}


def legal_sheet_titles(titles: Sequence[str]) -> list[str]:
    """The titles as Excel accepts them: ``[]:*?/\\`` and control characters replaced by
    ``_``, no apostrophe at either end, at most 31 characters, not empty, and unique
    regardless of case (a repeated title gets `` (2)``, `` (3)``, ... at its end)."""
    taken: set[str] = set()
    return [_legal_title(title, taken) for title in titles]


def _legal_title(title: str, taken: set[str]) -> str:
    """``title`` made legal and unlike every title in ``taken`` (regardless of case),
    which it then joins."""
    base = _ILLEGAL_TITLE_CHARACTERS.sub("_", title).strip().strip("'")
    base = base[:SHEET_TITLE_LENGTH].rstrip().rstrip("'") or "Sheet"
    if base.casefold() == "history":  # reserved by Excel
        base = f"{base}_"
    candidate, number = base, 2
    while candidate.casefold() in taken:
        suffix = f" ({number})"
        candidate = base[: SHEET_TITLE_LENGTH - len(suffix)].rstrip().rstrip("'") + suffix
        number += 1
    taken.add(candidate.casefold())
    return candidate


def _xlsx_value(value: Any) -> Any:
    """A cell value a worksheet can store: text cleaned and neutralised, numbers and dates
    as they are, NaN as an empty cell, anything else as its text."""
    if value is None:
        return None
    if isinstance(value, str):
        return neutralise(_ILLEGAL_CELL_CHARACTERS.sub("", value))
    if isinstance(value, bool | date | time | Decimal):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return None
        return neutralise(str(number)) if math.isinf(number) else number
    return neutralise(_ILLEGAL_CELL_CHARACTERS.sub("", str(value)))


def _display_width(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        text = "TRUE" if value else "FALSE"
    elif isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
    elif isinstance(value, date | time):
        text = value.isoformat()
    else:
        text = str(value)
    if text.isascii():
        return max(len(line) for line in text.split("\n"))
    return max(display_width(line) for line in text.split("\n"))


def _measure(cells: Sequence[Any], widths: list[int]) -> None:
    for index, value in enumerate(cells):
        width = _display_width(value)
        if index == len(widths):
            widths.append(width)
        elif width > widths[index]:
            widths[index] = width


def _column_width(content: int) -> int:
    return max(MIN_COLUMN_WIDTH, min(MAX_COLUMN_WIDTH, content + _COLUMN_PADDING))


# Publishing a folder


def staging_folder(target: Path) -> Path:
    """A new, empty folder beside ``target`` to write its next content into:
    ``.<name>.publishing-<random>`` in the same parent folder (created if need be), held
    until published or discarded; those that killed runs left there are removed first
    (see :mod:`lookback.scratch`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(target.parent, f".{target.name}.publishing-")
    for _ in range(10):
        staging = _sibling(target, "publishing")
        try:
            staging.mkdir()
        except FileExistsError:
            continue
        hold(staging)
        return staging
    raise LookbackError(f"{target.parent}: cannot create a staging folder for {target.name}")


def swap_into_place(staging: Path, target: Path, *, marker: str) -> None:
    """Make ``staging`` become ``target`` in one step, and remove what ``target`` held.

    A first publication is a rename. When ``target`` exists, the two folders are exchanged
    atomically (Linux ``renameat2`` with ``RENAME_EXCHANGE``) and the earlier content,
    now under the staging name, is removed. Where the exchange is not available, the
    earlier folder is moved aside, the new one renamed into place and the earlier one
    removed; if the new one cannot take its place, the earlier one is put back. Raises
    :class:`LookbackError` when the new content could not be published; ``target`` then
    holds what it held before.

    ``target`` is replaced only when it is missing, empty or holds ``marker`` (the file every
    publication of its kind writes, see :mod:`lookback.publish.replace`); otherwise
    :class:`~lookback.publish.replace.NotReplaceable` is raised and nothing changes.
    """
    try:
        _swap_into_place(staging, target, marker)
    finally:
        release(staging)


def _swap_into_place(staging: Path, target: Path, marker: str) -> None:
    if staging.is_symlink() or not staging.is_dir():
        raise LookbackError(f"{staging}: no staging folder to publish as {target}")
    check_replaceable(target, marker)
    if not os.path.lexists(target):
        try:
            staging.rename(target)
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise LookbackError(f"cannot publish {staging} as {target}: {_reason(error)}") from error
            # The target appeared in the meantime: exchange with it instead.
        else:
            return
    if target.is_symlink() or not target.is_dir():
        raise LookbackError(f"{target}: exists and is not a folder; not replacing it with {staging}")
    try:
        _exchange(staging, target)
    except OSError as error:
        if error.errno not in _EXCHANGE_UNSUPPORTED:
            raise LookbackError(f"cannot publish {staging} as {target}: {_reason(error)}") from error
        _replace_by_renames(staging, target)
        return
    _remove_earlier(staging, target)


def discard(staging: Path) -> None:
    """Remove a staging folder (after a failure, or what is left after publishing)."""
    if not _STAGING_NAME.fullmatch(staging.name):
        raise ValueError(f"{staging}: not a staging folder; not removing it")
    shutil.rmtree(staging, ignore_errors=True)
    release(staging)


def _sibling(target: Path, kind: str) -> Path:
    return target.parent / f".{target.name}.{kind}-{secrets.token_hex(6)}"


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _replace_by_renames(staging: Path, target: Path) -> None:
    earlier = _sibling(target, "old")
    try:
        target.rename(earlier)
    except OSError as error:
        raise LookbackError(f"cannot move {target} aside to publish {staging}: {_reason(error)}") from error
    try:
        staging.rename(target)
    except OSError as error:
        try:
            earlier.rename(target)
        except OSError as restore_error:
            raise LookbackError(
                f"cannot publish {staging} as {target} ({_reason(error)}), and cannot put the earlier "
                f"content back ({_reason(restore_error)}): it is in {earlier}"
            ) from error
        raise LookbackError(f"cannot publish {staging} as {target}: {_reason(error)}; {target} is unchanged") from error
    _remove_earlier(earlier, target)


def _remove_earlier(earlier: Path, target: Path) -> None:
    """The new content is in place; what is left of the old is only untidy."""
    try:
        shutil.rmtree(earlier)
    except OSError as error:
        log.warning("published %s, but cannot remove its earlier content in %s: %s", target, earlier, _reason(error))


def _exchange(first: Path, second: Path) -> None:
    """Exchange two paths atomically; OSError (ENOSYS where it cannot be done)."""
    renameat2 = _renameat2()
    if renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available", str(first), None, str(second))
    if renameat2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(first), None, str(second))


@cache
def _renameat2() -> Callable[[int, bytes, int, bytes, int], int] | None:
    """The C library's ``renameat2``, or None off Linux or with a C library without it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    renameat2: Callable[[int, bytes, int, bytes, int], int] = function
    return renameat2
