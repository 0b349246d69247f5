"""Resident identity numbers (居民身份证号码, GB 11643-1999).

:func:`normalise_identity_number` turns whatever an export holds into an
:class:`IdentityNumber`: the 18-character number when it can be had without guessing, its
birth date and sex, and, when it is not valid, a problem code that says why. A number
that Excel damaged (``4.31224E+17``, last three digits ``000``) is marked invalid and is
never repaired: its lost digits cannot be known.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from itertools import compress
from operator import mul
from typing import cast

import numpy as np

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARACTERS = "10X98765432"
_ASCII_ZERO_TOTAL = ord("0") * sum(WEIGHTS)

# Province-level codes (first two digits) of the mainland divisions, the only part of the
# division code a number is checked against: county codes change over time (Huaihua's
# 4330xx became 4312xx) and a number keeps the code it was issued under for life.
PROVINCE_CODES = frozenset(
    {
        "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
        "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
    }
)  # fmt: skip

# Problem codes, in the order they are checked. Words for people are in PROBLEM_WORDS.
BLANK = "blank"
EXCEL_DAMAGED = "excel_damaged"
BAD_CHARACTERS = "bad_characters"
BAD_LENGTH = "bad_length"
UNKNOWN_PROVINCE = "unknown_province"
BAD_BIRTH_DATE = "bad_birth_date"
BAD_CHECK_CHARACTER = "bad_check_character"

PROBLEM_WORDS = {
    BLANK: "证件号码为空 (blank)",
    EXCEL_DAMAGED: "被 Excel 按数值存储丢失末位 (digits lost to Excel, not recoverable)",
    BAD_CHARACTERS: "含有非法字符 (characters other than digits and a final X)",
    BAD_LENGTH: "位数不对 (neither 15 nor 18 characters)",
    UNKNOWN_PROVINCE: "省级行政区划代码不存在 (no such province code)",
    BAD_BIRTH_DATE: "出生日期不存在 (impossible birth date)",
    BAD_CHECK_CHARACTER: "校验码错误 (check character wrong: mistyped or transposed digits)",
}

# Characters typed around a number to stop Excel converting it, separators, and the
# invisible characters text copied from a web page or a chat brings along.
_STRIP = re.compile("[\\s'‘’\"“”`\u00ad\u200b-\u200d\u2060\ufeff]+")
_LITERAL_TAB = re.compile(r"\\t")
_SCIENTIFIC = re.compile(r"^\d(\.\d+)?E\+?\d+$", re.ASCII)
# A disability certificate number (残疾人证号) is the holder's identity number followed
# by the disability category and grade (20 characters) or a two-character issue suffix
# on top of that (22 characters).
_DISABILITY_SUFFIX_LENGTHS = (2, 4)
_EARLIEST_BIRTH_YEAR = 1880


@dataclass(frozen=True)
class IdentityNumber:
    """A normalised identity number and what is known about it."""

    number: str | None  # the 18-character number when valid; None otherwise
    cleaned: str  # the delivered text after cleaning, for evidence (may be invalid)
    problem: str | None = None  # None when valid
    birth_date: date | None = None
    sex: str | None = None  # "male" / "female", from the sequence digit
    converted_from_15: bool = False
    from_disability_certificate: bool = False

    @property
    def is_valid(self) -> bool:
        return self.problem is None

    @property
    def status(self) -> str:
        if self.problem is None:
            return "valid"
        return "blank" if self.problem == BLANK else "invalid"


def check_character(first_17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits."""
    if len(first_17) != len(WEIGHTS):
        raise ValueError(f"{len(first_17)} digits where a check character needs {len(WEIGHTS)}")
    if first_17.isascii():  # digits as bytes are their values plus 48
        total = sum(map(mul, first_17.encode("ascii"), WEIGHTS)) - _ASCII_ZERO_TOTAL
    else:
        total = sum(map(mul, map(int, first_17), WEIGHTS))
    return CHECK_CHARACTERS[total % 11]


def convert_15_to_18(number_15: str) -> str:
    """The 18-character form of an old 15-digit number: ``19`` before the year, plus a check."""
    first_17 = number_15[:6] + "19" + number_15[6:]
    return first_17 + check_character(first_17)


def _birth_date(number_18: str) -> date | None:
    try:
        born = date(int(number_18[6:10]), int(number_18[10:12]), int(number_18[12:14]))
    except ValueError:
        return None
    if born.year < _EARLIEST_BIRTH_YEAR or (born > _today_seen[0] and born > _today()):
        return None
    return born


_today_seen = [date.min]  # a day known to have come: today, when last asked


def _today() -> date:
    _today_seen[0] = date.today()
    return _today_seen[0]


def _structure_problem(number_18: str) -> str | None:
    """Why an 18-character string is not a valid number, or None."""
    return _checked(number_18)[0]


def _checked(number_18: str) -> tuple[str | None, date | None]:
    """Why an 18-character string is not a valid number (or None), and its birth date."""
    if not (_ascii_digits(number_18[:17]) and (_ascii_digits(number_18[17]) or number_18[17] == "X")):
        return BAD_CHARACTERS, None
    if number_18[:2] not in PROVINCE_CODES:
        return UNKNOWN_PROVINCE, None
    born = _birth_date(number_18)
    if born is None:
        return BAD_BIRTH_DATE, None
    if check_character(number_18[:17]) != number_18[17]:
        return BAD_CHECK_CHARACTER, born
    return None, born


def _ascii_digits(text: str) -> bool:
    """Whether ``text`` is ASCII digits only (``str.isdigit`` also takes ``፩`` and ``²``,
    which ``int`` refuses)."""
    return text.isascii() and text.isdigit()


def _zeros_past_excels_digits(cleaned: str) -> bool:
    """Whether digits past the 15 Excel keeps are all zeros, as Excel leaves a long number."""
    return len(cleaned) > 15 and _ascii_digits(cleaned) and cleaned.endswith("0" * (len(cleaned) - 15))


def _decimal_digit(character: str) -> str:
    value = unicodedata.decimal(character, None)
    return character if value is None else str(value)


def clean_identity_text(raw: str) -> str:
    """Full-width (and any other script's) digits to ASCII, upper-case X, and no spaces,
    tabs, quotes or apostrophes."""
    if raw.isascii() and raw.isalnum():
        return raw.upper()  # nothing to normalise or strip: how nearly every number comes
    text = unicodedata.normalize("NFKC", raw)
    text = _LITERAL_TAB.sub("", text)
    text = _STRIP.sub("", text).upper()
    if not text.isascii():
        # Upper-casing can give a letter Unicode normalisation writes otherwise (ΐ), and
        # digits of other scripts (٣, ३) stay what they are through it.
        text = "".join(map(_decimal_digit, unicodedata.normalize("NFKC", text)))
    return text


def _valid(
    number_18: str,
    cleaned: str,
    *,
    converted_from_15: bool = False,
    from_disability_certificate: bool = False,
    birth_date: date | None = None,
) -> IdentityNumber:
    return IdentityNumber(
        number=number_18,
        cleaned=cleaned,
        birth_date=birth_date or _birth_date(number_18),
        sex="male" if int(number_18[16]) % 2 == 1 else "female",
        converted_from_15=converted_from_15,
        from_disability_certificate=from_disability_certificate,
    )


@lru_cache(maxsize=1_000_000)
def normalise_identity_number(raw: str | None, *, text_cell: bool = False) -> IdentityNumber:
    """Normalise one delivered identity number.

    Handles full-width digits, lower-case ``x``, spaces, tabs, a leading apostrophe or
    ``\\t``, 15-digit old numbers (converted), disability certificate numbers (reduced to
    the identity number they start with). Excel damage, wrong check characters and
    impossible dates make the number invalid, with the problem named. A number ending in
    ``000`` is suspect as Excel's damage unless it was typed in a spreadsheet's text cell
    (``text_cell``: a text cell cannot lose digits).
    """
    cleaned = clean_identity_text(raw or "")
    if not cleaned:
        return IdentityNumber(number=None, cleaned="", problem=BLANK)
    if _SCIENTIFIC.match(cleaned):
        return IdentityNumber(number=None, cleaned=cleaned, problem=EXCEL_DAMAGED)
    if len(cleaned) == 15 and _ascii_digits(cleaned):
        number_18 = convert_15_to_18(cleaned)
        problem, born = _checked(number_18)
        if problem is None:
            return _valid(number_18, cleaned, converted_from_15=True, birth_date=born)
        return IdentityNumber(number=None, cleaned=cleaned, problem=problem)
    if len(cleaned) == 18:
        if cleaned.endswith("000") and _ascii_digits(cleaned) and not text_cell:
            # Excel keeps 15 significant digits and fills the rest with zeros. One real
            # number in about 1,100 also ends in 000 (sequence x00, check 0); it cannot be
            # told apart, so it is reported for checking rather than trusted: a damaged
            # number passes the check one time in eleven and would link to a stranger.
            return IdentityNumber(number=None, cleaned=cleaned, problem=EXCEL_DAMAGED)
        problem, born = _checked(cleaned)
        if problem is None:
            return _valid(cleaned, cleaned, birth_date=born)
        return IdentityNumber(number=None, cleaned=cleaned, problem=problem)
    if len(cleaned) - 18 in _DISABILITY_SUFFIX_LENGTHS:
        if _zeros_past_excels_digits(cleaned) and not text_cell:
            # A certificate number stored as a number: Excel turned its last five (seven)
            # digits into zeros, and the identity number's last three with them.
            return IdentityNumber(number=None, cleaned=cleaned, problem=EXCEL_DAMAGED)
        problem = _structure_problem(cleaned[:18])
        if problem is None:
            return _valid(cleaned[:18], cleaned, from_disability_certificate=True)
        if problem != BAD_CHARACTERS:  # a certificate number around a damaged identity number
            return IdentityNumber(number=None, cleaned=cleaned, problem=problem)
    if not re.fullmatch(r"[0-9X]+", cleaned):
        return IdentityNumber(number=None, cleaned=cleaned, problem=BAD_CHARACTERS)
    return IdentityNumber(number=None, cleaned=cleaned, problem=BAD_LENGTH)


_PROVINCE_TABLE = np.isin(np.arange(100), [int(code) for code in PROVINCE_CODES])
_WEIGHT_VECTOR = np.array(WEIGHTS, dtype=np.int64)
_CHECK_CODES = np.frombuffer(CHECK_CHARACTERS.encode("ascii"), dtype=np.uint8)
_DATE_PLACES = 10 ** np.arange(7, -1, -1, dtype=np.int64)  # the eight digits of a day as one number
_SEXES = ("female", "male")  # by the parity of the sequence digit


@lru_cache(maxsize=100_000)
def _day(digits: int) -> date | None:
    """The day of eight digits read as one number (19800101), or None for no such day or
    one before 1880 (birth days repeat: cached)."""
    try:
        born = date(digits // 10_000, digits // 100 % 100, digits % 100)
    except ValueError:
        return None
    return None if born.year < _EARLIEST_BIRTH_YEAR else born


def valid_as_typed(
    raws: Sequence[str], *, text_cell: bool = False
) -> tuple[list[str], list[str], list[date], list[str]]:
    """The texts among ``raws`` that are valid numbers typed as numbers mostly come (18
    ASCII digits, or 17 and an ``X`` or ``x``, nothing around them), and for each its
    number, birth date and sex, in four lists. :func:`normalise_identity_number` finds each
    of these texts valid, with that number, birth date and sex; the checks are the same,
    made on all the texts at once (as an array of their characters) rather than text by
    text, for the columns of numbers that nearly never repeat. Texts it leaves out may be
    valid too, or not: :func:`normalise_identity_number` says."""
    texts = [raw for raw in raws if len(raw) == 18 and raw.isascii()]
    if not texts:
        return [], [], [], []
    chars = np.frombuffer("".join(texts).encode("ascii"), dtype=np.uint8).reshape(len(texts), 18)
    digits = chars[:, :17].astype(np.int64) - ord("0")
    last = chars[:, 17]
    last_digit = (last >= ord("0")) & (last <= ord("9"))
    ok = ((digits >= 0) & (digits <= 9)).all(axis=1) & (last_digit | (last == ord("X")) | (last == ord("x")))
    ok &= _PROVINCE_TABLE[np.clip(digits[:, 0] * 10 + digits[:, 1], 0, 99)]
    if not text_cell:  # 18 digits ending in 000: suspect as Excel's damage
        ok &= ~(last_digit & (chars[:, 15:] == ord("0")).all(axis=1))
    ok &= _CHECK_CODES[(digits @ _WEIGHT_VECTOR) % 11] == np.where(last == ord("x"), ord("X"), last)
    days = digits[:, 6:14] @ _DATE_PLACES
    today = _today()
    ok &= days <= today.year * 10_000 + today.month * 100 + today.day  # not born after today
    texts = list(compress(texts, ok.tolist()))
    lower_x = bool((ok & (last == ord("x"))).any())
    day_numbers = days[ok].tolist()
    sexes = list(map(_SEXES.__getitem__, (digits[ok, 16] % 2).tolist()))
    born = list(map(_day, day_numbers))
    if None in born:  # no such day, or before 1880
        real = [day is not None for day in born]
        texts, born, sexes = list(compress(texts, real)), list(compress(born, real)), list(compress(sexes, real))
    numbers = [text.upper() for text in texts] if lower_x else texts
    return texts, numbers, cast("list[date]", born), sexes


def valid_once_cleaned(
    raws: Sequence[str], *, text_cell: bool = False
) -> tuple[list[str], list[str], list[str], list[date], list[str]]:
    """The texts among ``raws`` that are valid numbers once cleaned (:func:`clean_identity_text`:
    spaces, quotes, a tab, full-width characters, a lower-case ``x``), as 18 characters, as
    an old 15-digit number or as a disability certificate number; for each its number,
    cleaned text, birth date and sex, in five lists. :func:`normalise_identity_number`
    finds each of these texts valid, with that number, cleaned text, birth date and sex: a
    text is cleaned one by one, and the number it stands for is checked with the others by
    :func:`valid_as_typed` (an 18-character text as typed, so that one ending in ``000``
    stays suspect outside a text cell; a converted or certificate number as
    :func:`normalise_identity_number` checks it, without that test). Texts it leaves out
    may be valid too, or not: :func:`normalise_identity_number` says."""
    typed: list[tuple[str, str]] = []  # (delivered, cleaned): 18 characters once cleaned
    derived: list[tuple[str, str, str]] = []  # (delivered, cleaned, the 18 characters it stands for)
    for raw in raws:
        cleaned = clean_identity_text(raw)
        length = len(cleaned)
        if length == 18:
            typed.append((raw, cleaned))
        elif length == 15 and cleaned.isascii() and cleaned.isdigit():
            derived.append((raw, cleaned, convert_15_to_18(cleaned)))
        elif length - 18 in _DISABILITY_SUFFIX_LENGTHS and (text_cell or not _zeros_past_excels_digits(cleaned)):
            derived.append((raw, cleaned, cleaned[:18]))
    texts: list[str] = []
    numbers: list[str] = []
    cleaned_texts: list[str] = []
    born: list[date] = []
    sexes: list[str] = []
    for entries, cell in (([(raw, cleaned, cleaned) for raw, cleaned in typed], text_cell), (derived, True)):
        if not entries:
            continue
        valid, _numbers, days, sexes_of = valid_as_typed([number for _raw, _cleaned, number in entries], text_cell=cell)
        checked = dict(zip(valid, zip(days, sexes_of, strict=True), strict=True))
        for raw, cleaned, number in entries:
            if number in checked:
                day, sex = checked[number]
                texts.append(raw)
                numbers.append(number)
                cleaned_texts.append(cleaned)
                born.append(day)
                sexes.append(sex)
    return texts, numbers, cleaned_texts, born, sexes


def number_ending_in_zeros(cleaned: str | None) -> IdentityNumber | None:
    """The valid number an 18-digit text ending in ``000`` would be, were it not damaged:
    such a text is suspect (Excel turns the last three digits of a number stored as a number
    into zeros), yet about one real number in 1,100 ends so. None when it is not such a text
    or would not be valid anyway."""
    if not cleaned or len(cleaned) != 18 or not _ascii_digits(cleaned) or not cleaned.endswith("000"):
        return None
    if _structure_problem(cleaned) is not None:
        return None
    return _valid(cleaned, cleaned)


HOUSEHOLD_NUMBER_WORD = "户编号 "
# What free text may carry a number in: a quarantined record's JSON (a tab as ``\t``, with
# ``ensure_ascii`` every full-width digit as ``\uff14``; a backslash itself escaped), an
# exception's message (a value's repr: a no-break space as ``\xa0``), evidence. A digit is
# any character that stands for one (٣, ③, ³) or its JSON escape; between digits may come
# spaces, tabs, dashes and invisible characters, as themselves or escaped. Fifteen digits
# or more are a number, with maybe an X after them and a certificate's suffix after that.
_X = r"(?:[XxＸｘ]|\\+u(?:00(?:58|78)|[fF]{2}(?:38|58)))"
_SEPARATOR = (
    r"(?:\\+(?:[tnr]|x(?:09|0[aAdD]|20|[aA]0|[aA][dD])|u(?:000[9aAdD]|0020|00[aA]0|00[aA][dD]|002[dD]|200[b-dB-D]|201[0-5]|2060|2212|3000"
    r"|[fF][eE][fF]{2}|[fF]{2}0[dD]))|[\s\-\u00ad\u2010-\u2015\u2212\ufe63\uff0d_\u200b-\u200d\u2060\ufeff])"
)


def _character_class(characters: Sequence[str]) -> str:
    """A regular expression's class of the characters, as ranges."""
    codes = sorted(map(ord, characters))
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return "[" + "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges) + "]"


# A 户编号 as the evidence writes one: its digits alone.
_HOUSEHOLD_NUMBER = re.compile(r"[0-9]{14,20}")


@lru_cache(maxsize=1)
def _identity_like() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The run of free text that could be a number, and one digit, X or separator of it."""
    characters = [chr(code) for code in range(sys.maxunicode + 1) if unicodedata.digit(chr(code), None) is not None]
    # Each digit's JSON escape (``\u0669``; past the BMP a surrogate pair), any letter case.
    escapes = {f"u{ord(c):04x}" for c in characters if c.isascii()}
    escapes |= {json.dumps(c)[2:-1].replace("\\", r"\\+") for c in characters if not c.isascii()}
    escaped = r"\\+(?i:" + "|".join(sorted(escapes, key=len, reverse=True)) + ")"
    digit = f"(?:{escaped}|{_character_class(characters)})"
    gap = f"{_SEPARATOR}{{0,3}}"
    run = re.compile(f"{digit}(?:{gap}{digit}){{14,}}(?:{gap}{_X}(?:{gap}{digit}){{0,4}})?")
    piece = re.compile(f"(?P<separator>{_SEPARATOR})|{digit}|{_X}")
    return run, piece


def mask_identity_numbers_in(text: str, *, household_numbers: bool = False) -> str:
    """Mask every run of characters in free text that could be an identity number, in any
    form (see ``_identity_like``): its first six and last four digits kept as written, one
    ``*`` for each digit between, the separators between those gone. With
    ``household_numbers``, a run introduced by ``户编号 `` (how the look-back's evidence names
    a registry household) is left as it is: it names a household, not a person."""
    run, piece = _identity_like()

    def mask(match: re.Match[str]) -> str:
        found = match.group(0)
        named = household_numbers and text.endswith(HOUSEHOLD_NUMBER_WORD, 0, match.start())
        if named and _HOUSEHOLD_NUMBER.fullmatch(found):
            return found  # as the evidence writes a 户编号, and nothing else with it
        digits = [(at.start(), at.end()) for at in piece.finditer(found) if at.lastgroup != "separator"]
        return found[: digits[5][1]] + "*" * (len(digits) - 10) + found[digits[-4][0] :]

    return run.sub(mask, text)


def mask_identity_number(value: str | None) -> str:
    """The masked form used in files for county and village staff: ``431224********1234``."""
    if not value:
        return ""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]
