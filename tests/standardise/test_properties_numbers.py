"""Properties of the money and count parsers."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from lookback.standardise.numbers import parse_integer, parse_money
from tests.standardise.strategies import awkward_text

amounts = st.decimals(
    min_value=Decimal("-999999999999.99"),
    max_value=Decimal("999999999999.99"),
    places=2,
    allow_nan=False,
    allow_infinity=False,
)


@given(awkward_text)
@example("1e30")  # beyond the 28 digits a Decimal rounds to two places in
@example("9" * 40)
@example("1E+999999999")
@example("1e13")  # more than NUMERIC(14, 2) holds: the load would fail
@example("999999999999.999")
def test_money_never_raises(raw: str) -> None:
    value, problem = parse_money(raw)
    assert (value is None) or (problem is None and value.is_finite() and value == value.quantize(Decimal("0.01")))
    assert problem in (None, "unrecognised_amount", "amount_out_of_range")
    assert value is None or abs(value) < 10**12  # the warehouse's NUMERIC(14, 2)


@given(awkward_text)
@example("1" * 5000)  # more digits than int() reads from text
@example("3000000000")  # more than PostgreSQL's INTEGER holds: the load would fail
def test_integer_never_raises(raw: str) -> None:
    value, problem = parse_integer(raw)
    assert value is None or (problem is None and isinstance(value, int))
    assert problem in (None, "unrecognised_integer", "integer_out_of_range")
    assert value is None or -(2**31) <= value < 2**31  # the warehouse's INTEGER


@given(awkward_text)
def test_parsing_is_idempotent(raw: str) -> None:
    money, _ = parse_money(raw)
    if money is not None:
        assert parse_money(str(money)) == (money, None)
    count, _ = parse_integer(raw)
    if count is not None:
        assert parse_integer(str(count)) == (count, None)


@given(amounts, st.sampled_from(["{}", "{}元", "¥{}", "￥ {}", " {} ", "{}　元"]), st.booleans(), st.booleans())
def test_an_amount_survives_the_forms_it_is_typed_in(amount: Decimal, form: str, grouped: bool, wide: bool) -> None:
    text = f"{amount:,}" if grouped else str(amount)
    if wide:
        text = text.translate(str.maketrans("0123456789.,-", "０１２３４５６７８９．，－"))
    assert parse_money(form.format(text)) == (amount, None)


@given(st.integers(-(10**9), 10**9), st.sampled_from(["{}", "{}人", "{}户", "{}.0", " {} "]))
def test_a_count_survives_the_forms_it_is_typed_in(count: int, form: str) -> None:
    assert parse_integer(form.format(count)) == (count, None)
