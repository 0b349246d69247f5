"""What the look-back rules read of written identity numbers, for all the rows of a batch at once.

:func:`read_identities` gives, for each distinct text, what
:func:`~lookback.standardise.identity.normalise_identity_number` finds in it: the valid
number (or None), whether it is valid, and the birth date it carries. Most texts are a
plain 18-character number, or one once cleaned as the normaliser cleans them (protections,
full-width digits, a lower-case x): those are checked together (check character, province
and birth date) with numpy; any other text goes through the normaliser itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import NamedTuple

import numpy as np

from lookback.standardise import identity
from lookback.standardise.identity import (
    CHECK_CHARACTERS,
    PROVINCE_CODES,
    WEIGHTS,
    clean_identity_text,
    normalise_identity_number,
)

# A text the normaliser leaves as it is: 17 ASCII digits and a digit or X.
_PLAIN = re.compile(r"[0-9]{17}[0-9X]")


class Identity(NamedTuple):
    number: str | None  # the valid 18-character number; None when not valid
    is_valid: bool
    birth_date: date | None  # of a valid number


_INVALID = Identity(None, False, None)


def _of_normaliser(text: str) -> Identity:
    found = normalise_identity_number(text)
    return Identity(found.number, found.is_valid, found.birth_date) if found.is_valid else _INVALID


def _birth_date(digits: str, today: date) -> date | None:
    """The birth date of ``YYYYMMDD`` as the normaliser reads it: a real day, not before
    its earliest year nor after today."""
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None
    if born.year < identity._EARLIEST_BIRTH_YEAR or born > today:
        return None
    return born


def read_identities(texts: Iterable[str]) -> dict[str, Identity]:
    """Each distinct text, with what the normaliser finds in it."""
    found: dict[str, Identity] = {}
    written: list[str] = []  # the texts as written …
    plain: list[str] = []  # … and as the normaliser cleans them: a plain number
    for text in dict.fromkeys(texts):
        if len(text) == 18 and _PLAIN.fullmatch(text):
            written.append(text)
            plain.append(text)
            continue
        # The normaliser reads a text only as cleaned: a number with a protection, full-width
        # digits or a lower-case x is a plain number to it.
        cleaned = clean_identity_text(text)
        if len(cleaned) == 18 and _PLAIN.fullmatch(cleaned):
            written.append(text)
            plain.append(cleaned)
        else:
            found[text] = _of_normaliser(text)
    if not plain:
        return found
    characters = np.frombuffer("".join(plain).encode("ascii"), dtype=np.uint8).reshape(len(plain), 18)
    digits = characters[:, :17].astype(np.int64) - ord("0")
    check = np.frombuffer(CHECK_CHARACTERS.encode("ascii"), dtype=np.uint8)[digits @ np.array(WEIGHTS) % 11]
    provinces = np.zeros(100, dtype=bool)
    provinces[[int(code) for code in PROVINCE_CODES if code.isdigit() and len(code) == 2]] = True
    # Excel's 15 significant digits and zeros: never trusted as a number (the normaliser's rule).
    excel_zeros = (characters[:, 15:18] == ord("0")).all(axis=1)
    passed = (check == characters[:, 17]) & provinces[digits[:, 0] * 10 + digits[:, 1]] & ~excel_zeros
    today = date.today()
    born_of: dict[str, date | None] = {}
    for text, number, ok in zip(written, plain, passed.tolist(), strict=True):
        if not ok:
            found[text] = _INVALID
            continue
        day = number[6:14]
        if day not in born_of:
            born_of[day] = _birth_date(day, today)
        born = born_of[day]
        found[text] = Identity(number, True, born) if born is not None else _INVALID
    return found
