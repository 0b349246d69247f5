"""Properties of the date, month and year parsers."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from lookback.standardise.dates import (
    EXCEL_EPOCH,
    cell_date,
    cell_datetime_text,
    parse_date,
    parse_year,
    parse_year_month,
    plain_days,
)
from tests.standardise.strategies import awkward_text

days = st.dates(min_value=date(1000, 1, 1), max_value=date(9999, 12, 31))
PROBLEMS = {None, "impossible_date", "unrecognised_date", "excel_serial_out_of_range", "excel_serial_1900_02_29"}


@st.composite
def written_days(draw: st.DrawFn) -> tuple[date, str]:
    """A day as departments write it: any of the accepted forms, maybe with a time part."""
    day = draw(days)
    y, m, d = day.year, day.month, day.day
    forms = [
        f"{y}-{m:02d}-{d:02d}",
        f"{y}/{m}/{d}",
        f"{y}.{m}.{d}",
        f"{y}{m:02d}{d:02d}",
        f"{y}年{m}月{d}日",
        f"{y}年{m:02d}月{d:02d}日",
        f"{y}-{m}-{d}",
    ]
    text = draw(st.sampled_from(forms))
    text += draw(st.sampled_from(["", " 00:00:00", " 8:05", "T12:30:59.5", "  23:59"]))
    if draw(st.booleans()):
        text = text.translate(str.maketrans("0123456789-/.:", "０１２３４５６７８９－／．："))
    return day, draw(st.sampled_from(["", " ", "\u3000"])) + text


@given(awkward_text)
@example("0000-01-01")
@example("99999")
@example("2020-13-45 25:61")
def test_never_raises(raw: str) -> None:
    parsed = parse_date(raw)
    assert parsed.problem in PROBLEMS and (parsed.value is None) == (parsed.problem is not None or parsed.is_blank)
    month = parse_year_month(raw)
    assert month.value is None or month.value.day == 1
    year, problem = parse_year(raw)
    assert year is None or (1900 <= year <= 2100 and problem is None)
    assert isinstance(cell_date(raw), (date, str, type(None)))


@given(awkward_text)
def test_parsing_is_idempotent(raw: str) -> None:
    parsed = parse_date(raw)
    if parsed.value is not None:
        assert parse_date(parsed.value.isoformat()).value == parsed.value
        assert parse_date(cell_datetime_text(parsed.value)).value == parsed.value
    month = parse_year_month(raw)
    if month.value is not None:
        assert parse_year_month(month.value.isoformat()).value == month.value
        assert parse_year_month(f"{month.value:%Y-%m}").value == month.value
    year, _ = parse_year(raw)
    if year is not None:
        assert parse_year(str(year)) == (year, None)


@given(written_days())
@example((date(2020, 6, 1), "２０２０年６月１日"))
@example((date(1990, 1, 2), "19900102 08:00"))
def test_a_day_survives_every_form_it_is_written_in(written: tuple[date, str]) -> None:
    day, text = written
    assert parse_date(text).value == day
    assert parse_year_month(text).value == day.replace(day=1)
    assert cell_date(text) == day


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)), st.sampled_from(["", ".0", ".75"]))
@example(date(1900, 3, 1), "")
@example(date(1900, 2, 28), "")
def test_an_excel_serial_number_is_its_day(day: date, fraction: str) -> None:
    """Excel counts a 29 February 1900 (serial 60): the days before it are one serial less."""
    serial = (day - EXCEL_EPOCH).days - (day < date(1900, 3, 1))
    assert parse_date(f"{serial}{fraction}").value == day


@given(st.lists(st.one_of(awkward_text, written_days().map(lambda written: written[1]))))
def test_plain_days_agree_with_the_parser(raws: list[str]) -> None:
    for raw, day in plain_days(raws).items():
        assert parse_date(raw).value == day


@given(st.datetimes(min_value=datetime(1000, 1, 1)))
def test_a_date_cell_is_its_day(moment: datetime) -> None:
    assert cell_date(moment) == moment.date()
    assert cell_date(moment.date()) == moment.date()
    assert parse_date(cell_datetime_text(moment)).value == moment.date()
    assert parse_date(cell_datetime_text(moment.date() + timedelta(0))).value == moment.date()
