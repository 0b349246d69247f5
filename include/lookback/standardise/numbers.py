"""Money and counts as departments type them: ``1,050.5``, ``350元``, ``-``, blank."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

_NOISE = re.compile(r"[,\s元¥￥]")
_BLANKS = {"", "-", "—", "--", "/"}


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
    return amount.quantize(Decimal("0.01")), None


def parse_integer(raw: str | None) -> tuple[int | None, str | None]:
    """A whole number (``3``, ``3.0``, ``3人``), or (None, problem)."""
    text = _clean(raw).removesuffix("人").removesuffix("户")
    if text in _BLANKS:
        return None, None
    match = re.fullmatch(r"(-?\d+)(?:\.0+)?", text)
    if not match:
        return None, "unrecognised_integer"
    return int(match.group(1)), None
