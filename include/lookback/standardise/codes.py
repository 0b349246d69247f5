"""Long digit codes (户编号, 村代码, division codes, phone numbers).

They pass through the same spreadsheets as identity numbers and arrive with the same
protections and damage: a leading apostrophe or ``\\t`` (typed, or a literal backslash-t),
spaces, full-width digits, or Excel's numeric storage (``4.3122E+16``; past the 15th
significant digit, zeros). :func:`normalise_code` cleans them as identity numbers are
cleaned and marks the damage; it never repairs it: the lost digits cannot be known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from lookback.standardise.identity import clean_identity_text

# Problem codes.
EXCEL_DAMAGED = "excel_damaged"  # 4.3122E+16, or the digits past the 15th turned to zeros
BAD_CHARACTERS = "bad_characters"
BAD_LENGTH = "bad_length"

PROBLEM_WORDS = {
    EXCEL_DAMAGED: "被 Excel 按数值存储丢失末位 (digits lost to Excel, not recoverable)",
    BAD_CHARACTERS: "含有数字以外的字符 (characters other than digits)",
    BAD_LENGTH: "位数不对 (wrong number of digits)",
}

# Excel keeps 15 significant digits of a number.
EXCEL_DIGITS = 15
_SCIENTIFIC = re.compile(r"^(\d)(?:\.(\d+))?E\+?(\d+)$", re.ASCII)
_SEPARATORS = re.compile(r"[-－—]")
_FLOAT_TEXT = re.compile(r"^(\d+)\.0+$", re.ASCII)


def _digits(text: str) -> bool:
    """Whether ``text`` is ASCII digits only (``str.isdigit`` also takes ``፩`` and ``²``)."""
    return text.isascii() and text.isdigit()


@dataclass(frozen=True)
class Code:
    """A normalised digit code and what is known about it."""

    value: str | None  # the digits when usable; None when blank or damaged
    cleaned: str  # the delivered text after cleaning, kept for evidence and recovery
    problem: str | None = None

    @property
    def is_damaged(self) -> bool:
        return self.problem == EXCEL_DAMAGED

    def could_be(self, digits: str) -> bool:
        """Whether an intact code could be what this damaged one was before Excel: the
        surviving significant digits agree (a rounded last one allowed for) and so does the
        length."""
        if not self.is_damaged or not _digits(digits):
            return False
        scientific = _SCIENTIFIC.match(self.cleaned)
        if scientific is None:  # the digits past the 15th turned to zeros
            return len(digits) == len(self.cleaned) and digits[:EXCEL_DIGITS] == self.cleaned[:EXCEL_DIGITS]
        mantissa = scientific.group(1) + (scientific.group(2) or "")
        exponent = int(scientific.group(3))
        # One digit fewer when rounding carried into a new one (9999999999999995 shows as 1E+16).
        if len(digits) not in (exponent + 1, exponent) or len(mantissa) > exponent + 1:
            return False
        scale: int = 10 ** (exponent + 1 - len(mantissa))
        return abs(int(digits) - int(mantissa) * scale) * 2 <= scale


def clean_code_text(raw: str | None) -> str:
    """The delivered text without what was typed around the digits: full-width digits made
    half-width, spaces, tabs, quotes, a literal ``\\t`` and separators removed, a ``.0`` that
    a spreadsheet added dropped."""
    text = _SEPARATORS.sub("", clean_identity_text(raw or ""))
    plain = _FLOAT_TEXT.match(text)
    return plain.group(1) if plain and len(plain.group(1)) <= EXCEL_DIGITS else text


@lru_cache(maxsize=200_000)
def normalise_code(raw: str | None, length: tuple[int, int] | None = None) -> Code:
    """Normalise one delivered digit code of ``length`` (min, max) digits, if given."""
    cleaned = clean_code_text(raw)
    if not cleaned:
        return Code(value=None, cleaned="")
    if _SCIENTIFIC.match(cleaned):
        return Code(value=None, cleaned=cleaned, problem=EXCEL_DAMAGED)
    if not _digits(cleaned):
        return Code(value=None, cleaned=cleaned, problem=BAD_CHARACTERS)
    if length is not None and not length[0] <= len(cleaned) <= length[1]:
        return Code(value=None, cleaned=cleaned, problem=BAD_LENGTH)
    if len(cleaned) > EXCEL_DIGITS and set(cleaned[EXCEL_DIGITS:]) == {"0"}:
        # Excel fills what it cannot keep with zeros. A real code may end so too; without a
        # check digit the two cannot be told apart, so the code is not trusted as a key.
        return Code(value=None, cleaned=cleaned, problem=EXCEL_DAMAGED)
    return Code(value=cleaned, cleaned=cleaned)
