"""Hypothesis strategies for the normalisers' property tests: valid identity numbers, the
forms a department delivers them in, the forms free text carries them in, and text of
every kind around them.

``reveal`` is how the tests read masked text back as an adversary would: escapes decoded,
look-alike digits made ASCII, separators and invisible characters dropped.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import date

from hypothesis import strategies as st

from lookback.standardise.identity import PROVINCE_CODES, check_character

# Digits a number's characters may be written in: every character that stands for one
# decimal digit (ASCII, full-width, Arabic-Indic, Devanagari, mathematical, circled,
# superscript, ...), by its value.
UNICODE_DIGITS: dict[int, list[str]] = {value: [] for value in range(10)}
for _code in range(0x110000):
    _value = unicodedata.digit(chr(_code), None)
    if _value is not None:
        UNICODE_DIGITS[_value].append(chr(_code))
# Of those, the ones the identity normaliser reads as digits (they stand for one digit
# once Unicode-normalised, or are decimal digits).
READABLE_DIGITS: dict[int, list[str]] = {
    value: [
        c
        for c in chars
        if len(unicodedata.normalize("NFKC", c)) == 1
        and unicodedata.decimal(unicodedata.normalize("NFKC", c), None) == value
    ]
    for value, chars in UNICODE_DIGITS.items()
}

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
WHITESPACE = " \t\u3000\u00a0"
DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\uff0d\u2212"


def _escape(character: str, backslashes: int) -> str:
    return "\\" * backslashes + f"u{ord(character):04x}"


@st.composite
def valid_identity_numbers(draw: st.DrawFn, *, ending_000: bool = False) -> str:
    """A valid 18-character number: a province code, any county, a real birth day, a
    sequence number and its check character. Ending in ``000`` only when asked."""
    province = draw(st.sampled_from(sorted(PROVINCE_CODES)))
    county = draw(st.text("0123456789", min_size=4, max_size=4))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2020, 12, 31)))
    sequence = draw(st.text("0123456789", min_size=3, max_size=3))
    first_17 = f"{province}{county}{born:%Y%m%d}{sequence}"
    if ending_000:  # a sequence number x00 and a check character 0: the county's last digit and x chosen so
        return next(
            candidate + "0"
            for county_digit in "0123456789"
            for sequence_digit in "0123456789"
            if check_character(candidate := f"{first_17[:5]}{county_digit}{first_17[6:14]}{sequence_digit}00") == "0"
        )
    number = first_17 + check_character(first_17)
    if number.endswith("000"):  # one in about 1,100: move the sequence off x00
        first_17 = first_17[:-1] + "1"
        number = first_17 + check_character(first_17)
    return number


# Strategies made once (hypothesis takes a while to make one; these are drawn per character).
_READABLE = {str(value): st.sampled_from(chars) for value, chars in READABLE_DIGITS.items()} | {
    "X": st.sampled_from("XxＸｘ")
}
_INSIDE = st.text(WHITESPACE + ZERO_WIDTH, max_size=2)
_BEFORE = st.sampled_from(["", "'", "\t", "\\t", "‘", '"', "`", " "])
_AFTER = st.sampled_from(["", '"', "’", " ", "\t"])


@st.composite
def delivered_forms(draw: st.DrawFn, number: str) -> str:
    """A valid number as a department may deliver it and the identity normaliser accepts:
    any digit in a readable Unicode form, a lower-case or full-width ``x``, spaces, tabs or
    invisible characters between characters, an apostrophe, quotes, a tab or a literal
    ``\\t`` in front, spaces around."""
    characters = [draw(_READABLE[character]) for character in number]
    text = "".join(character + draw(_INSIDE) for character in characters[:-1]) + characters[-1]
    return draw(_BEFORE) + text + draw(_AFTER)


def _unit(character: str) -> st.SearchStrategy[str]:
    """One character of a number as free text may carry it."""
    if character == "X":
        return st.sampled_from(["X", "x", "Ｘ", "ｘ", "\\u0058", "\\u0078"])
    digit = int(character)
    escaped = st.tuples(st.sampled_from([character, chr(ord(character) + 0xFEE0)]), st.integers(1, 2)).map(
        lambda pair: _escape(*pair)
    )
    return st.one_of(st.just(character), st.sampled_from(UNICODE_DIGITS[digit]), escaped)


_UNITS = {character: _unit(character) for character in "0123456789X"}
_SEPARATORS = st.lists(
    st.sampled_from(
        [*WHITESPACE, *ZERO_WIDTH, *DASHES, "\\t", "\\u0009", "\\\\t", "\\u200b", "\\u3000", "\\n", "\\xa0"]
    ),
    max_size=2,
).map("".join)
_SUFFIXES = st.sampled_from(["", "", "11", "42", "73"])


@st.composite
def identity_like_runs(draw: st.DrawFn, number: str) -> str:
    """A number as free text (a quarantined record's JSON, an exception message, evidence)
    may carry it: each digit in any Unicode form or JSON-escaped (``\\u0034``, with one or
    two backslashes), separators between characters (spaces, tabs, dashes, invisible
    characters, ``\\t``, ``\\u0009``, ``\\xa0``), and maybe a disability certificate's two
    digits after it."""
    units = [draw(_UNITS[character]) for character in number + draw(_SUFFIXES)]
    return "".join(unit + draw(_SEPARATORS) for unit in units[:-1]) + units[-1]


_ESCAPE = re.compile(r"\\+(U[0-9a-fA-F]{8}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|[tnr])")
_CONTROL = {"t": "\t", "n": "\n", "r": "\r"}


def reveal(text: str) -> str:
    """The digits (and ``X``) a reader can make out of text: escapes decoded, every kind of
    digit as its ASCII digit, everything else (separators, invisible characters) dropped."""
    decoded = _ESCAPE.sub(lambda m: _CONTROL.get(m.group(1)) or chr(min(int(m.group(1)[1:], 16), 0x10FFFF)), text)
    shown = []
    for character in unicodedata.normalize("NFKC", decoded):
        value = unicodedata.digit(character, None)
        if value is not None:
            shown.append(str(value))
        elif character in "Xx":
            shown.append("X")
    return "".join(shown)


# Text without anything that reads as a digit or an X: what surrounds a number in the
# masking tests, so that every digit the masked text shows comes from the number.
digitless_text = st.text(
    st.characters(exclude_categories=("Nd", "No", "Nl", "Cs"), exclude_characters="Xxｘ Ｘ\\"),
    max_size=12,
).filter(lambda text: not reveal(text))

# Arbitrary text, with the characters departments' files are full of made likely.
awkward_text = st.one_of(
    st.text(max_size=40),
    st.text(
        st.sampled_from(
            "0123456789０１２３４５６７８９Xx ．.-—/\\t'\"年月日元,，·•?*人户E+e:①٣"
            "张王李曾欧阳村委会镇乡县市区湘西侗族自治" + ZERO_WIDTH + WHITESPACE
        ),
        max_size=30,
    ),
)


def json_cell(text: str) -> str:
    """A cell as a quarantined record's JSON carries it (``ensure_ascii`` either way)."""
    return json.dumps([text], ensure_ascii=False)
