"""Money and counts as departments type them: ``1,050.5``, ``350元``, ``-``, blank."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

_NOISE = re.compile(r"[,\s元¥￥]")
_BLANKS = {"", "-", "—", "--", "/"}
# What the warehouse's columns hold: money as NUMERIC(14, 2), counts as INTEGER. A value
# beyond them is a problem of its row, not a load that fails.
MONEY_LIMIT = Decimal(10) ** 12
INTEGER_RANGE = (-(2**31), 2**31 - 1)


def _clean(raw: str | None) -> str:
    return _NOISE.sub("", unicodedata.normalize("NFKC", raw or "").strip())


def parse_money(raw: str | None) -> tuple[Decimal | None, str | None]:
    """Yuan as a Decimal with two places, or (None, problem); blank and ``-`` are no value."""
    text = _clean(raw)
    if text in _BLANKS:
        return None, None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None, "unrecognised_amount"
    if not amount.is_finite():
        return None, "unrecognised_amount"
    if not amount.copy_abs() < MONEY_LIMIT:
        return None, "amount_out_of_range"
    amount = amount.quantize(Decimal("0.01"))
    if not amount.copy_abs() < MONEY_LIMIT:  # 999999999999.999 rounds up to the limit
        return None, "amount_out_of_range"
    return amount, None


def parse_integer(raw: str | None) -> tuple[int | None, str | None]:
    """A whole number (``3``, ``3.0``, ``3人``), or (None, problem)."""
    text = _clean(raw).removesuffix("人").removesuffix("户")
    if text in _BLANKS:
        return None, None
    match = re.fullmatch(r"(-?\d+)(?:\.0+)?", text)
    if not match:
        return None, "unrecognised_integer"
    digits = match.group(1)
    if len(digits) > 12:  # int() reads no more than 4,300 digits; the warehouse holds 10
        return None, "integer_out_of_range"
    value = int(digits)
    if not INTEGER_RANGE[0] <= value <= INTEGER_RANGE[1]:
        return None, "integer_out_of_range"
    return value, None
