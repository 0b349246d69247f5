"""Identity numbers: every quirk of the delivered exports, with the expected outcome."""

from __future__ import annotations

import random
from datetime import date

import pytest

from lookback.standardise.identity import (
    check_character,
    convert_15_to_18,
    mask_identity_number,
    mask_identity_numbers_in,
    normalise_identity_number,
    valid_as_typed,
    valid_once_cleaned,
)

VALID = "431224198001011238"  # 溆浦县, born 1980-01-01, sequence 123 (odd: male)
VALID_X = "43123019900101019X"  # check character X
OLD_HUAIHUA = "433030196503150026"  # 4330xx: Huaihua's code before 1998, valid for life; female

# (delivered text, expected number or None, expected problem or None, why)
CASES = [
    (VALID, VALID, None, "clean"),
    (OLD_HUAIHUA, OLD_HUAIHUA, None, "old division code stays valid"),
    ("43123019900101019x", VALID_X, None, "lower-case x"),
    ("４３１２２４１９８００１０１１２３８", VALID, None, "full-width digits"),
    ("４３１２３０１９９００１０１０１９Ｘ", VALID_X, None, "full-width digits and X"),
    (" 431224 19800101 1238 ", VALID, None, "spaces inside and around"),
    ("\t431224198001011238", VALID, None, "leading tab typed to stop Excel"),
    ("\\t431224198001011238", VALID, None, "a literal \\t typed before the number"),
    ("'431224198001011238", VALID, None, "leading apostrophe"),
    ("\u3000431224198001011238", VALID, None, "full-width space"),
    ("431224800101123", VALID, None, "15-digit old number converted to 18"),
    ("43122419800101123842", VALID, None, "20-character disability certificate number"),
    ("4312241980010112384201", VALID, None, "22-character disability certificate number"),
    ("431224198001011239", None, "bad_check_character", "wrong check character"),
    ("431224198001011328", None, "bad_check_character", "two adjacent digits transposed"),
    ("431224198002301237", None, "bad_birth_date", "1980-02-30 does not exist"),
    ("431224210001011237", None, "bad_birth_date", "born in 2100: in the future"),
    ("991224198001011237", None, "unknown_province", "no province 99"),
    ("4.31224E+17", None, "excel_damaged", "Excel scientific notation"),
    ("4.31224198001011E+17", None, "excel_damaged", "Excel scientific notation, 15 digits"),
    ("431224198001011000", None, "excel_damaged", "last three digits lost to Excel (never guessed)"),
    ("43122419800101123A", None, "bad_characters", "a letter that is not a final X"),
    ("4312241980010112", None, "bad_length", "16 digits"),
    ("43122419800101123942", None, "bad_check_character", "certificate number around a mistyped identity number"),
    ("", None, "blank", "blank"),
    ("   ", None, "blank", "only spaces"),
]


@pytest.mark.parametrize(("delivered", "number", "problem", "why"), CASES, ids=[case[3] for case in CASES])
def test_normalise_identity_number(delivered: str, number: str | None, problem: str | None, why: str) -> None:
    found = normalise_identity_number(delivered)
    assert (found.number, found.problem) == (number, problem), why


def test_valid_number_carries_birth_date_and_sex() -> None:
    male = normalise_identity_number(VALID)
    female = normalise_identity_number(OLD_HUAIHUA)
    assert (male.birth_date, male.sex, male.status) == (date(1980, 1, 1), "male", "valid")
    assert (female.birth_date, female.sex) == (date(1965, 3, 15), "female")


def test_flags_say_how_the_number_was_recovered() -> None:
    assert normalise_identity_number("431224800101123").converted_from_15
    assert normalise_identity_number("43122419800101123842").from_disability_certificate
    assert not normalise_identity_number(VALID).converted_from_15


def test_invalid_number_keeps_the_cleaned_text_and_status() -> None:
    found = normalise_identity_number(" 431224198001011239 ")
    assert (found.cleaned, found.status, found.is_valid) == ("431224198001011239", "invalid", False)
    assert normalise_identity_number(None).status == "blank"


def test_check_character_and_15_digit_conversion() -> None:
    assert check_character("43122419800101123") == "8"
    assert check_character("43123019900101019") == "X"
    assert convert_15_to_18("431224800101123") == VALID


@pytest.mark.parametrize(
    ("value", "masked"),
    [(VALID, "431224********1238"), ("431224800101123", "431224*****1123"), ("", ""), ("12345", "*****")],
)
def test_mask_identity_number(value: str, masked: str) -> None:
    assert mask_identity_number(value) == masked


def test_numbers_in_free_text_are_masked_household_numbers_only_where_named() -> None:
    households = "户编号 431224101201000001 与 户编号 431224101201000002"
    text = f"证件号码 {VALID}，{households}；又 ４３１２２４１９８００１０１１２３８"
    masked_number, masked_wide = "431224********1238", "４３１２２４********１２３８"
    assert mask_identity_numbers_in(text) == (
        f"证件号码 {masked_number}，户编号 431224********0001 与 户编号 431224********0002；又 {masked_wide}"
    )
    spared = mask_identity_numbers_in(text, household_numbers=True)
    assert spared == f"证件号码 {masked_number}，{households}；又 {masked_wide}"
    assert mask_identity_numbers_in(f"户编号{VALID}", household_numbers=True) == f"户编号{masked_number}"


def test_a_number_ending_in_zeros_is_suspect_unless_typed_in_a_text_cell() -> None:
    """Excel turns the last three digits of a number stored as a number into zeros; about one
    real number in 1,100 ends in 000 too. A workbook's text cell cannot lose digits."""
    real = "431224198001011000"  # valid: sequence 100, check character 0
    assert normalise_identity_number(real).problem == "excel_damaged"
    typed = normalise_identity_number(real, text_cell=True)
    assert typed.is_valid and typed.number == real
    # A text cell does not make a damaged number that fails the check valid.
    assert normalise_identity_number("431224198001012000", text_cell=True).problem == "bad_check_character"


def _variants(rng: random.Random) -> list[str]:
    """Valid numbers and their near misses: a digit changed, the check character or the
    birth date wrong, damaged by Excel, lower-case x, unknown provinces, other lengths."""
    texts: list[str] = []
    for _ in range(3000):
        province = rng.choice(["43", "11", "65", "99", "00", "4３"])
        born = f"{rng.randint(1870, 2110)}{rng.randint(0, 13):02d}{rng.randint(0, 32):02d}"
        first_17 = f"{province}{rng.randint(0, 9999):04d}{born}{rng.randint(0, 999):03d}"
        number = first_17 + (check_character(first_17) if first_17.isascii() and first_17.isdigit() else "1")
        texts += [number, number[:-1] + rng.choice("0123456789Xx"), number.lower(), number[:15] + "000", number[:-1]]
        texts += [f"{number[:9]}{rng.choice('0123456789')}{number[10:]}", f" {number}", f"{number}Y", number[:17] + "E"]
    return texts


@pytest.mark.parametrize("text_cell", [False, True])
def test_valid_as_typed_finds_what_normalise_identity_number_finds(text_cell: bool) -> None:
    texts = [case[0] for case in CASES] + _variants(random.Random(11643)) + ["431224198001011000", "4312241980010110x0"]
    found, numbers, born, sexes = valid_as_typed(texts, text_cell=text_cell)
    assert len(found) > 1000
    for text, number, birth_date, sex in zip(found, numbers, born, sexes, strict=True):
        expected = normalise_identity_number(text, text_cell=text_cell)
        assert (expected.number, expected.cleaned, expected.birth_date) == (number, number, birth_date)
        assert expected.sex == sex
    left_out = set(texts) - set(found)
    for text in left_out:  # other than 18 ASCII characters, or not valid
        expected = normalise_identity_number(text, text_cell=text_cell)
        assert not expected.is_valid or len(text) != 18 or not text.isascii() or text.upper() != expected.cleaned


def _dressed(texts: list[str]) -> list[str]:
    """The texts as exports also hold them: full-width, with spaces, an apostrophe or a tab
    typed before them, shortened to the old 15 digits, or lengthened to a disability
    certificate number."""
    wide = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")
    dressed: list[str] = []
    for text in texts:
        dressed += [text.translate(wide), f" {text[:6]} {text[6:]} ", f"'{text}", f"\t{text}", f"\\t{text}"]
        dressed += [text[:6] + text[8:17], text + "42", text + "4201", text + "4", f"{text}.0"]
    return dressed


@pytest.mark.parametrize("text_cell", [False, True])
def test_valid_once_cleaned_finds_what_normalise_identity_number_finds(text_cell: bool) -> None:
    texts = [case[0] for case in CASES] + _dressed([*_variants(random.Random(7064)), "431224198001011000"])
    texts = list(dict.fromkeys(texts))
    found = valid_once_cleaned(texts, text_cell=text_cell)
    assert len(found[0]) > 5000
    for text, number, cleaned, birth_date, sex in zip(*found, strict=True):
        expected = normalise_identity_number(text, text_cell=text_cell)
        assert (expected.number, expected.cleaned, expected.birth_date, expected.sex) == (
            number,
            cleaned,
            birth_date,
            sex,
        )
    # Every text valid in these forms is found (those left out are not valid).
    left_out = set(texts) - set(found[0])
    assert not [text for text in left_out if normalise_identity_number(text, text_cell=text_cell).is_valid]
