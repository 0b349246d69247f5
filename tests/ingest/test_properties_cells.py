"""Properties of the readers that turn delivered cells into texts: a spreadsheet's cell
(openpyxl's value, or python-calamine's on the fast path), a database's value, and a
record's cells as the JSON a quarantined record keeps."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lookback.ingest.database import database_text
from lookback.ingest.readers import _fast_text, _NotVouchedFor, cell_text, raw_json
from lookback.standardise.codes import normalise_code
from lookback.standardise.dates import parse_date
from lookback.standardise.identity import mask_identity_numbers_in, normalise_identity_number
from lookback.standardise.numbers import parse_money
from tests.standardise.strategies import delivered_forms, reveal, valid_identity_numbers

cell_values = st.one_of(
    st.none(),
    st.text(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.dates(),
    st.datetimes(),
    st.decimals(),
)


@given(cell_values)
@example(float("nan"))
@example(10**400)
def test_a_cell_always_has_a_text(value: object) -> None:
    text = cell_text(value)
    assert isinstance(text, str)
    if isinstance(value, str):
        assert text == value
    assert isinstance(database_text(value), str)


@given(st.integers(-(10**15) + 1, 10**15 - 1))
def test_a_whole_number_cell_below_excels_precision_is_its_digits(value: int) -> None:
    assert cell_text(value) == str(value) == cell_text(float(value))
    assert normalise_code(cell_text(abs(value))).value == str(abs(value))


@given(st.integers(10**15, 10**20 - 1))
@example(9_999_999_999_999_995)  # rounds up to 1E+16, a digit longer
def test_a_number_cell_past_excels_precision_is_marked_damaged(value: int) -> None:
    """An identity number or a 户编号 stored as a number is never "repaired" by float
    rounding: it reads as Excel shows it, damaged, and what is left could have been it."""
    for cell in (value, float(value)):
        code = normalise_code(cell_text(cell))
        assert code.is_damaged and code.value is None
        if isinstance(cell, int):
            assert code.could_be(str(value))
        assert not normalise_identity_number(cell_text(cell)).is_valid


@given(valid_identity_numbers().filter(lambda number: number[-1] != "X"))
def test_an_identity_number_in_a_number_cell_is_never_valid(number: str) -> None:
    assert normalise_identity_number(cell_text(int(number))).problem == "excel_damaged"
    assert normalise_identity_number(cell_text(float(number)), text_cell=True).problem == "excel_damaged"


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-999_999_999_999.0, max_value=999_999_999_999.0))
def test_a_money_cell_reads_as_its_amount(value: float) -> None:
    amount, problem = parse_money(cell_text(value))
    assert problem is None and amount is not None
    assert abs(amount - Decimal(value)) <= Decimal("0.005") + abs(Decimal(value)) * Decimal("1e-14")


@given(st.one_of(st.dates(), st.datetimes()))
@example(datetime(999, 1, 1))  # a database's timestamp of a year before 1000
def test_a_date_cell_reads_as_its_day(value: date) -> None:
    day = value.date() if isinstance(value, datetime) else value
    assert parse_date(cell_text(value)).value == day
    assert parse_date(database_text(value)).value == day


@given(st.one_of(st.text(), st.booleans(), st.integers(), st.floats(), st.dates(), st.datetimes()))
@example(datetime(1900, 2, 28))
@example(datetime(2020, 1, 1, 0, 0, 0, 5))
def test_the_fast_reader_gives_what_openpyxl_gives_or_steps_aside(value: object) -> None:
    """python-calamine's cell gives the text openpyxl's gives, or the workbook is read by
    openpyxl instead (never another text)."""
    try:
        fast = _fast_text(value)
    except _NotVouchedFor:
        assert (
            isinstance(value, date)
            and (not isinstance(value, datetime) or value.microsecond or value < datetime(1900, 3, 1))
        ) or (isinstance(value, date) and not isinstance(value, datetime) and value < date(1900, 3, 1))
        return
    expected = (
        value
        if not (isinstance(value, date) and not isinstance(value, datetime))
        else datetime(value.year, value.month, value.day)
    )
    assert fast == cell_text(expected)


@given(st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**11), max_value=10**11))
def test_a_database_amount_reads_as_itself(value: Decimal) -> None:
    assert parse_money(database_text(value)) == (value, None)


@given(st.binary())
def test_database_bytes_are_text(value: bytes) -> None:
    assert database_text(value) == value.decode("utf-8", errors="replace")


@given(st.lists(st.text()))
def test_a_records_json_is_json(values: list[str]) -> None:
    assert raw_json(values) == json.dumps(values, ensure_ascii=False)
    assert json.loads(raw_json(values)) == values


@given(
    valid_identity_numbers().flatmap(lambda n: st.tuples(st.just(n), delivered_forms(n))),
    st.lists(st.sampled_from(["王伟", "", "户主", "溆浦县", "\t"]), max_size=3),
)
def test_a_quarantined_records_json_is_masked(delivered: tuple[str, str], others: list[str]) -> None:
    """What quarantine.csv shows of a record: its cells' JSON with every number masked."""
    number, raw = delivered
    masked = mask_identity_numbers_in(raw_json([*others, raw, *others]))
    shown = reveal(masked)
    assert len(shown) <= 10 and number[6:14] not in shown


def test_fast_reader_refuses_what_it_cannot_vouch_for() -> None:
    with pytest.raises(_NotVouchedFor):
        _fast_text(datetime(1900, 1, 1))
