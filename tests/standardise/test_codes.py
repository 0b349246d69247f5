"""Long digit codes: every way a spreadsheet delivers them, and the damage that is marked, never repaired."""

from __future__ import annotations

import pytest

from lookback.standardise.codes import normalise_code

HOUSEHOLD = (14, 20)  # 户编号
VILLAGE = (12, 12)  # 村代码
PHONE = (7, 12)  # 联系电话

# (delivered, length, expected value, expected problem, why)
CASES = [
    ("431224101201000123", HOUSEHOLD, "431224101201000123", None, "clean"),
    ("'431224101201000123", HOUSEHOLD, "431224101201000123", None, "leading apostrophe"),
    ("\t431224101201000123", HOUSEHOLD, "431224101201000123", None, "leading tab"),
    ("\\t431224101201000123", HOUSEHOLD, "431224101201000123", None, "a typed backslash-t"),
    (" 431224101201000123 ", HOUSEHOLD, "431224101201000123", None, "spaces around"),
    ("431224 101201 000123", HOUSEHOLD, "431224101201000123", None, "spaces inside"),
    ("４３１２２４１０１２０１０００１２３", HOUSEHOLD, "431224101201000123", None, "full-width digits"),
    ("431224101201000000", HOUSEHOLD, None, "excel_damaged", "digits past the 15th turned to zeros"),
    ("4312241012010000", HOUSEHOLD, None, "excel_damaged", "16 digits, the last turned to zero"),
    ("4.31224E+17", HOUSEHOLD, None, "excel_damaged", "scientific form"),
    ("4.3122E+16", HOUSEHOLD, None, "excel_damaged", "scientific form, fewer digits"),
    ("4.31224101201E+17", HOUSEHOLD, None, "excel_damaged", "scientific form as a long cell shows it"),
    ("43122410120100", HOUSEHOLD, "43122410120100", None, "14 digits: the shortest"),
    ("4312241012010", HOUSEHOLD, None, "bad_length", "13 digits"),
    ("43122410120100012A", HOUSEHOLD, None, "bad_characters", "a letter"),
    ("", HOUSEHOLD, None, None, "blank"),
    ("431224101201", VILLAGE, "431224101201", None, "village code"),
    ("'431224101201", VILLAGE, "431224101201", None, "village code with an apostrophe"),
    ("４３１２２４１０１２０１", VILLAGE, "431224101201", None, "village code in full-width digits"),
    ("431224101201.0", VILLAGE, "431224101201", None, "a number cell's .0"),
    ("4.31224E+11", VILLAGE, None, "excel_damaged", "village code in scientific form"),
    ("43122410120", VILLAGE, None, "bad_length", "a digit lost"),
    ("13812345678", PHONE, "13812345678", None, "mobile phone"),
    ("138 1234 5678", PHONE, "13812345678", None, "phone with spaces"),
    ("13812345678.0", PHONE, "13812345678", None, "phone as a number cell"),
    ("0745-1234567", PHONE, "07451234567", None, "landline with area code"),
    ("'13812345678", PHONE, "13812345678", None, "phone with an apostrophe"),
    ("无", PHONE, None, "bad_characters", "a word, not a number"),
]


@pytest.mark.parametrize(("delivered", "length", "value", "problem", "why"), CASES, ids=[case[4] for case in CASES])
def test_normalise_code(
    delivered: str, length: tuple[int, int], value: str | None, problem: str | None, why: str
) -> None:
    found = normalise_code(delivered, length)
    assert (found.value, found.problem) == (value, problem), why


@pytest.mark.parametrize(
    ("damaged", "intact", "could_be"),
    [
        ("431224101201000000", "431224101201000123", True),  # the first 15 digits survive
        ("431224101201000000", "431224101201001123", False),  # the 15th differs
        ("431224101201000000", "4312241012010001230", False),  # another length
        ("4.31224E+17", "431224101201000123", True),  # six significant digits survive
        ("4.31224E+17", "431223601201000123", True),  # ... the last of them rounded
        ("4.31224E+17", "431225101201000123", False),
        ("4.31224E+17", "43122410120100012", False),  # 17 digits, not 18
        ("431224101201000123", "431224101201000123", False),  # not damaged: nothing to recover
    ],
)
def test_what_a_damaged_code_could_have_been(damaged: str, intact: str, could_be: bool) -> None:
    assert normalise_code(damaged, HOUSEHOLD).could_be(intact) == could_be
