"""Dates as departments type them.

Accepted: ``YYYY-MM-DD``, ``YYYY/M/D``, ``YYYY.M.D``, ``YYYYMMDD``, ``YYYY年M月D日``, an
Excel serial number (``43983``), and any of these followed by a time part. Months
(享受起始年月) also come as ``2018-07``, ``201807`` or ``2018年7月``. Serial numbers are read
as Excel reads them (1 is 1900-01-01); 60, Excel's 29 February 1900, is refused.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

# Excel's 1900 date system counts a 29 February 1900 that never was: serial 60 is that
# day, serials 1-59 count from 1899-12-31 and serials from 61 on from this epoch (so a
# date from 1900-03-01 on is ``EXCEL_EPOCH`` plus its serial).
EXCEL_EPOCH = date(1899, 12, 30)
EXCEL_LEAP_DAY_1900 = 60
# Serial numbers accepted as dates: 1900-01-01 .. 2099-12-31.
EXCEL_SERIAL_RANGE = (1, 73050)

_FULL = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_SERIAL = re.compile(r"^(\d{1,5})(\.\d+)?$")
_TIME_PART = re.compile(r"^(\S+?)(?:[T\s]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
_MONTH = re.compile(r"^(\d{4})(?:[-/.年](\d{1,2})月?|(\d{2}))$")


@dataclass(frozen=True)
class ParsedDate:
    value: date | None
    problem: str | None = None  # None when the value parsed, or the text was blank

    @property
    def is_blank(self) -> bool:
        return self.value is None and self.problem is None


BLANK = ParsedDate(value=None)


def _clean(raw: str | None) -> str:
    return unicodedata.normalize("NFKC", raw or "").strip()


@lru_cache(maxsize=100_000)
def _make(year: int, month: int, day: int) -> ParsedDate:
    """The parsed day, one object per day (a day is written many ways)."""
    try:
        return ParsedDate(value=date(year, month, day))
    except ValueError:
        return ParsedDate(value=None, problem="impossible_date")


@lru_cache(maxsize=100_000)
def parse_date(raw: str | None) -> ParsedDate:
    """Parse a delivered date; blank gives no value and no problem."""
    text = _clean(raw)
    if text in {"", "-", "—"}:
        return BLANK
    text = " ".join(text.split())
    match = _TIME_PART.match(text) if ":" in text else None  # no time part without a colon
    day_text = match.group(1) if match else text
    for pattern in (_FULL, _COMPACT):
        found = pattern.match(day_text)
        if found:
            return _make(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    serial = _SERIAL.match(text)
    if serial:
        return _from_excel_serial(int(serial.group(1)))
    return ParsedDate(value=None, problem="unrecognised_date")


# A day written plainly: ASCII digits and one of the separators ``_FULL`` takes, or eight
# digits, and nothing else (no space, no time part, nothing NFKC would change).
_PLAIN_DAY = re.compile(r"([0-9]{4})[-/.年]([0-9]{1,2})[-/.月]([0-9]{1,2})日?|([0-9]{4})([0-9]{2})([0-9]{2})")


def plain_days(raws: Iterable[str]) -> dict[str, date]:
    """The days of the texts written plainly (``1990-01-02``, ``1990/1/2``, ``19900102``,
    ``1990年1月2日``) that are days of the calendar: what :func:`parse_date` gives for
    them, found with one match per text instead of its cleaning and tries (the birth dates
    of a large export are tens of thousands of distinct texts). The other texts are left
    out, for :func:`parse_date`."""
    days: dict[str, date] = {}
    match = _PLAIN_DAY.fullmatch
    for raw in raws:
        found = match(raw)
        if found is None:
            continue
        year, month, day = found.group(1, 2, 3) if found.group(1) else found.group(4, 5, 6)
        parsed = _make(int(year), int(month), int(day))
        if parsed.value is not None:
            days[raw] = parsed.value
    return days


@lru_cache(maxsize=100_000)
def _from_excel_serial(days: int) -> ParsedDate:
    """The day an Excel serial number stands for (its time of day, if any, is dropped), as
    openpyxl's ``from_excel`` reads it: serials before Excel's leap day count from one day
    later than the epoch."""
    low, high = EXCEL_SERIAL_RANGE
    if not low <= days <= high:
        return ParsedDate(value=None, problem="excel_serial_out_of_range")
    if days == EXCEL_LEAP_DAY_1900:
        return ParsedDate(value=None, problem="excel_serial_1900_02_29")
    return ParsedDate(value=EXCEL_EPOCH + timedelta(days=days + (days < EXCEL_LEAP_DAY_1900)))


@lru_cache(maxsize=10_000)
def parse_year_month(raw: str | None) -> ParsedDate:
    """Parse a month (``2018-07``, ``201807``, ``2018年7月``) to its first day.

    A full date is accepted too and reduced to its month.
    """
    text = _clean(raw)
    if text in {"", "-", "—"}:
        return BLANK
    found = _MONTH.match(text)
    if found:
        month = found.group(2) or found.group(3)
        return _make(int(found.group(1)), int(month), 1)
    parsed = parse_date(text)
    if parsed.value is not None:
        return ParsedDate(value=parsed.value.replace(day=1))
    return ParsedDate(value=None, problem="unrecognised_month")


def parse_year(raw: str | None) -> tuple[int | None, str | None]:
    """A four-digit year (``2020``, ``2020年``, ``2020.0``), or a problem code."""
    text = _clean(raw).removesuffix("年")
    if text in {"", "-", "—"}:
        return None, None
    match = re.fullmatch(r"(\d{4})(?:\.0+)?", text)
    if not match:
        return None, "unrecognised_year"
    year = int(match.group(1))
    if not 1900 <= year <= 2100:
        return None, "year_out_of_range"
    return year, None


def cell_datetime_text(value: datetime | date) -> str:
    """How a date held natively in a spreadsheet cell is handed to :func:`parse_date`."""
    if isinstance(value, datetime):  # the year in four digits, as isoformat writes it (strftime writes 999)
        return f"{value.year:04d}-{value:%m-%d %H:%M:%S}"
    return value.isoformat()


def cell_date(value: Any) -> date | str | None:
    """A date a person typed into a spreadsheet cell: the date (a cell Excel holds as a
    date, or text :func:`parse_date` reads), None when empty, or the text when it is not a
    date."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    parsed = parse_date(str(value))
    return parsed.value if parsed.value is not None else str(value).strip() or None
