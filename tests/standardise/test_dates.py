"""Dates, months and years in every delivered format."""

from __future__ import annotations

from datetime import date

import pytest

from lookback.standardise.dates import parse_date, parse_year, parse_year_month, plain_days

JUNE_FIRST = date(2020, 6, 1)

# (delivered, expected date, expected problem, why)
DATE_CASES = [
    ("2020-06-01", JUNE_FIRST, None, "YYYY-MM-DD"),
    ("2020/6/1", JUNE_FIRST, None, "YYYY/M/D"),
    ("2020/06/01", JUNE_FIRST, None, "YYYY/MM/DD"),
    ("20200601", JUNE_FIRST, None, "YYYYMMDD"),
    ("2020年6月1日", JUNE_FIRST, None, "YYYY年M月D日"),
    ("2020.6.1", JUNE_FIRST, None, "YYYY.M.D"),
    ("43983", JUNE_FIRST, None, "Excel serial number"),
    ("43983.0", JUNE_FIRST, None, "Excel serial number stored as a float"),
    ("2020-06-01 00:00:00", JUNE_FIRST, None, "datetime with a time part"),
    ("2020-06-01T08:30", JUNE_FIRST, None, "ISO datetime"),
    ("2020/6/1 8:30:00", JUNE_FIRST, None, "slashed datetime"),
    ("２０２０－０６－０１", JUNE_FIRST, None, "full-width digits"),
    ("", None, None, "blank"),
    ("-", None, None, "a dash for no value"),
    ("2020-02-30", None, "impossible_date", "no 30 February"),
    ("99999", None, "excel_serial_out_of_range", "serial beyond 2099"),
    ("next week", None, "unrecognised_date", "words"),
]


@pytest.mark.parametrize(("delivered", "expected", "problem", "why"), DATE_CASES, ids=[c[3] for c in DATE_CASES])
def test_parse_date(delivered: str, expected: date | None, problem: str | None, why: str) -> None:
    parsed = parse_date(delivered)
    assert (parsed.value, parsed.problem) == (expected, problem), why


# Excel's serial numbers (the 1900 date system). Excel counts a 29 February 1900 that never
# was: serials 1-59 count from 1899-12-31, serial 60 is that fictitious day, and serials
# from 61 on count from 1899-12-30. (delivered, expected date, expected problem, why)
SERIAL_CASES = [
    ("0", None, "excel_serial_out_of_range", "day 0 is no date: below the range"),
    ("1", date(1900, 1, 1), None, "Excel's day 1"),
    ("59", date(1900, 2, 28), None, "the last day before the fictitious leap day"),
    ("60", None, "excel_serial_1900_02_29", "the 29 February 1900 Excel counts but the calendar has not"),
    ("61", date(1900, 3, 1), None, "the first day counted from 1899-12-30"),
    ("43983", JUNE_FIRST, None, "a serial of 2020"),
    ("43983.75", JUNE_FIRST, None, "a time of day does not change the date"),
    ("73050", date(2099, 12, 31), None, "the last serial accepted"),
    ("73051", None, "excel_serial_out_of_range", "beyond 2099"),
]


@pytest.mark.parametrize(("delivered", "expected", "problem", "why"), SERIAL_CASES, ids=[c[3] for c in SERIAL_CASES])
def test_parse_excel_serial(delivered: str, expected: date | None, problem: str | None, why: str) -> None:
    parsed = parse_date(delivered)
    assert (parsed.value, parsed.problem) == (expected, problem), why


def test_every_serial_is_the_day_openpyxl_reads() -> None:
    from openpyxl.utils.datetime import from_excel

    for days in (*range(1, 60), *range(61, 73051)):
        assert parse_date(str(days)).value == from_excel(days).date(), days


@pytest.mark.parametrize(
    ("delivered", "expected", "problem"),
    [
        ("2018-07", date(2018, 7, 1), None),
        ("201807", date(2018, 7, 1), None),
        ("2018年7月", date(2018, 7, 1), None),
        ("2018/7", date(2018, 7, 1), None),
        ("2018-07-15", date(2018, 7, 1), None),
        ("43297", date(2018, 7, 1), None),
        ("", None, None),
        ("2018-13", None, "impossible_date"),
        ("July", None, "unrecognised_month"),
    ],
)
def test_parse_year_month(delivered: str, expected: date | None, problem: str | None) -> None:
    parsed = parse_year_month(delivered)
    assert (parsed.value, parsed.problem) == (expected, problem)


@pytest.mark.parametrize(
    ("delivered", "expected"),
    [
        ("2020", (2020, None)),
        ("2020年", (2020, None)),
        ("2020.0", (2020, None)),
        ("", (None, None)),
        ("20", (None, "unrecognised_year")),
        ("1066", (None, "year_out_of_range")),
    ],
)
def test_parse_year(delivered: str, expected: tuple[int | None, str | None]) -> None:
    assert parse_year(delivered) == expected


def test_plain_days_are_what_parse_date_gives() -> None:
    """Every text plain_days reads is a day parse_date reads alike; what it leaves out is
    left to parse_date (spaces, time parts, full-width or other digits, impossible days)."""
    texts = [
        f"{year}{first}{month}{second}{day}{end}"
        for year in ("1990", "1900", "2099", "0000")
        for first, second in (("-", "-"), ("/", "/"), (".", "."), ("年", "月"), ("-", "月"), ("年", "/"))
        for month in ("1", "01", "12", "13", "00", "2")
        for day in ("1", "02", "29", "30", "31", "32", "00")
        for end in ("", "日")
    ]
    texts += ["19900102", "19900230", "1990-01-02 ", " 1990-01-02", "1990-01-02\n", "1990-01-02 08:00:00"]
    texts += ["１９９０-01-02", "١٩٩٠-01-02", "43983", "", "-", "1990-1-2T08:00", "1990--01-02"]
    days = plain_days(texts)
    assert days["1990-01-02"] == date(1990, 1, 2) and days["19900102"] == date(1990, 1, 2)
    assert "19900230" not in days and "1990-01-02 " not in days and "１９９０-01-02" not in days
    for text in texts:
        parsed = parse_date(text)
        if text in days:
            assert (parsed.value, parsed.problem) == (days[text], None), text
