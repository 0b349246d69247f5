"""Money, whole numbers and phone numbers as typed in exports."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lookback.standardise.numbers import parse_integer, parse_money


@pytest.mark.parametrize(
    ("delivered", "expected"),
    [
        ("350", (Decimal("350.00"), None)),
        ("350.00", (Decimal("350.00"), None)),
        ("1,050.5", (Decimal("1050.50"), None)),
        ("350元", (Decimal("350.00"), None)),
        ("￥350", (Decimal("350.00"), None)),
        ("１，０５０", (Decimal("1050.00"), None)),
        (" 21000 ", (Decimal("21000.00"), None)),
        ("", (None, None)),
        ("-", (None, None)),
        ("三百五", (None, "unrecognised_amount")),
        ("NaN", (None, "unrecognised_amount")),
    ],
)
def test_parse_money(delivered: str, expected: tuple[Decimal | None, str | None]) -> None:
    assert parse_money(delivered) == expected


@pytest.mark.parametrize(
    ("delivered", "expected"),
    [
        ("3", (3, None)),
        ("3.0", (3, None)),
        ("3人", (3, None)),
        ("", (None, None)),
        ("3.5", (None, "unrecognised_integer")),
    ],
)
def test_parse_integer(delivered: str, expected: tuple[int | None, str | None]) -> None:
    assert parse_integer(delivered) == expected
