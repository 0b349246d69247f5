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
import pickle
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from lookback.errors import LookbackError
from lookback.report import display_width
from lookback.xlsx import WORKBOOK_TIME, fix_zip_timestamps

if TYPE_CHECKING:
    from openpyxl.cell.cell import Cell
    from openpyxl.styles import Font
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet
    from openpyxl.worksheet.dimensions import ColumnDimension, DimensionHolder
    from openpyxl.worksheet.filters import AutoFilter

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
    missing key or None as an empty cell, booleans as ``true``/``false`` and dates in ISO
    form. ``rows`` is read once, one row at a time.
    """
    header = list(columns if headers is None else headers)
    if len(header) != len(columns):
        raise ValueError(f"{path.name}: {len(header)} headers for {len(columns)} columns")
    written = 0
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow([_csv_cell(caption) for caption in header])
        for row in rows:
            writer.writerow([_csv_cell(row.get(column)) for column in columns])
            written += 1
    return written


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
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


def write_workbook(path: Path, sheets: Sequence[Sheet], creator: str = "lookback") -> None:
    """Write ``sheets`` to ``path`` as an xlsx workbook, one worksheet per sheet in order.

    Each worksheet has its header row in bold, frozen and with an autofilter, and columns
    as wide as their content. Text cells are neutralised and stored as text (never a
    formula or an error value); control characters a worksheet cannot hold are dropped.
    Titles are made legal for Excel (see :func:`legal_sheet_titles`). The same sheets give
    the same bytes.
    """
    from openpyxl import Workbook

    if not sheets:
        raise ValueError(f"{path.name}: a workbook needs at least one sheet")
    titles = legal_sheet_titles([sheet.title for sheet in sheets])
    workbook = Workbook(write_only=True)
    workbook.properties.created = WORKBOOK_TIME
    workbook.properties.modified = WORKBOOK_TIME
    workbook.properties.creator = creator
    try:
        for sheet, title in zip(sheets, titles, strict=True):
            _write_sheet(workbook.create_sheet(title), sheet)
        workbook.save(path)
        fix_zip_timestamps(path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def legal_sheet_titles(titles: Sequence[str]) -> list[str]:
    """The titles as Excel accepts them: ``[]:*?/\\`` and control characters replaced by
    ``_``, no apostrophe at either end, at most 31 characters, not empty, and unique
    regardless of case (a repeated title gets `` (2)``, `` (3)``, ... at its end)."""
    legal: list[str] = []
    taken: set[str] = set()
    for title in titles:
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
        legal.append(candidate)
    return legal


def _write_sheet(worksheet: WriteOnlyWorksheet, sheet: Sheet) -> None:
    """Measure the rows, then write them: a write-only worksheet puts column widths
    before the rows, so the widths must be known first. Rows that are not a list or other
    sequence are kept in a temporary file between the two passes."""
    headers = [_xlsx_value(caption) for caption in sheet.headers]
    widths = [_display_width(caption) for caption in headers]
    if isinstance(sheet.rows, Sequence):
        count = 0
        for row in sheet.rows:
            _measure([_xlsx_value(value) for value in row], widths)
            count += 1
        _write_rows(worksheet, headers, widths, count, ([_xlsx_value(value) for value in row] for row in sheet.rows))
        return
    with tempfile.TemporaryFile(prefix="lookback-sheet-") as spool:
        count = 0
        for row in sheet.rows:
            cells = [_xlsx_value(value) for value in row]
            _measure(cells, widths)
            pickle.dump(cells, spool, protocol=pickle.HIGHEST_PROTOCOL)
            count += 1
        spool.seek(0)
        _write_rows(worksheet, headers, widths, count, _unspool(spool))


def _write_rows(
    worksheet: WriteOnlyWorksheet, headers: Sequence[Any], widths: Sequence[int], count: int, rows: Iterable[list[Any]]
) -> None:
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    # Set up by openpyxl for write-only worksheets too, but missing from their stubs.
    column_dimensions: DimensionHolder[str, ColumnDimension] = worksheet.column_dimensions  # type: ignore[attr-defined]
    auto_filter: AutoFilter = worksheet.auto_filter  # type: ignore[attr-defined]
    for index, width in enumerate(widths, start=1):
        column_dimensions[get_column_letter(index)].width = _column_width(width)
    worksheet.freeze_panes = "A2"
    if widths:
        auto_filter.ref = f"A1:{get_column_letter(len(widths))}{count + 1}"
    bold = Font(bold=True)
    worksheet.append([_header_cell(worksheet, caption, bold) for caption in headers])
    for cells in rows:
        worksheet.append([_text_cell(worksheet, value) if isinstance(value, str) else value for value in cells])


def _unspool(spool: IO[bytes]) -> Iterator[list[Any]]:
    while True:
        try:
            yield pickle.load(spool)
        except EOFError:
            return


def _xlsx_value(value: Any) -> Any:
    """A cell value openpyxl can store: text cleaned and neutralised, numbers and dates as
    they are, NaN as an empty cell, anything else as its text."""
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


def _text_cell(worksheet: WriteOnlyWorksheet, text: str) -> Cell:
    """A cell that holds ``text`` as text: openpyxl would otherwise store text that starts
    with ``=`` as a formula and text such as ``#N/A`` as an error value."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(worksheet, value=text)
    cell.data_type = "s"
    return cell


def _header_cell(worksheet: WriteOnlyWorksheet, caption: Any, bold: Font) -> Cell:
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(worksheet, value=caption)
    if isinstance(caption, str):
        cell.data_type = "s"
    cell.font = bold
    return cell


# Publishing a folder


def staging_folder(target: Path) -> Path:
    """A new, empty folder beside ``target`` to write its next content into:
    ``.<name>.publishing-<random>`` in the same parent folder (created if need be)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(10):
        staging = _sibling(target, "publishing")
        try:
            staging.mkdir()
        except FileExistsError:
            continue
        return staging
    raise LookbackError(f"{target.parent}: cannot create a staging folder for {target.name}")


def swap_into_place(staging: Path, target: Path) -> None:
    """Make ``staging`` become ``target`` in one step, and remove what ``target`` held.

    A first publication is a rename. When ``target`` exists, the two folders are exchanged
    atomically (Linux ``renameat2`` with ``RENAME_EXCHANGE``) and the earlier content,
    now under the staging name, is removed. Where the exchange is not available, the
    earlier folder is moved aside, the new one renamed into place and the earlier one
    removed; if the new one cannot take its place, the earlier one is put back. Raises
    :class:`LookbackError` when the new content could not be published; ``target`` then
    holds what it held before.
    """
    if staging.is_symlink() or not staging.is_dir():
        raise LookbackError(f"{staging}: no staging folder to publish as {target}")
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
