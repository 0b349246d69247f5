"""Properties of the identity normaliser and of the masking of identity numbers in free text."""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from lookback.standardise.identity import (
    PROBLEM_WORDS,
    clean_identity_text,
    mask_identity_number,
    mask_identity_numbers_in,
    normalise_identity_number,
    number_ending_in_zeros,
    valid_as_typed,
    valid_once_cleaned,
)
from tests.standardise.strategies import (
    awkward_text,
    delivered_forms,
    digitless_text,
    identity_like_runs,
    json_cell,
    reveal,
    valid_identity_numbers,
)

VALID = "431224198001011238"


@given(awkward_text, st.booleans())
@example("4312241980010112፩8", False)  # Ethiopic digit one: a digit to str.isdigit, not to int()
@example("4312241980010112፩", False)
@example("43١٢٢٤198001011238", False)  # Arabic-Indic digits: a valid number, in ASCII
def test_never_raises_and_a_valid_number_is_ascii(raw: str, text_cell: bool) -> None:
    found = normalise_identity_number(raw, text_cell=text_cell)
    assert found.problem is None or found.problem in PROBLEM_WORDS
    recovered = number_ending_in_zeros(found.cleaned)
    assert recovered is None or (recovered.number == found.cleaned and found.cleaned.endswith("000"))
    if found.is_valid:
        assert found.number is not None
        assert len(found.number) == 18 and found.number.isascii()
        assert found.number[:17].isdigit() and found.number[17] in "0123456789X"
        assert found.birth_date is not None and found.sex in ("male", "female")
    else:
        assert found.number is None


@given(awkward_text, st.booleans())
@example("ΐ", False)  # upper-casing gives a decomposed letter that Unicode normalisation joins again
def test_normalising_is_idempotent(raw: str, text_cell: bool) -> None:
    found = normalise_identity_number(raw, text_cell=text_cell)
    assert clean_identity_text(found.cleaned) == found.cleaned
    again = normalise_identity_number(found.cleaned, text_cell=text_cell)
    assert (again.number, again.problem) == (found.number, found.problem)
    if found.number is not None:
        # The number itself, typed in a text cell (where a number ending in 000 is trusted).
        assert normalise_identity_number(found.number, text_cell=True).number == found.number


@given(
    valid_identity_numbers().flatmap(lambda number: st.tuples(st.just(number), delivered_forms(number))), st.booleans()
)
@example((VALID, "４３１２２４ １９８００１０１\t１２３８"), False)
@example(("43123019900101019X", "'43123019900101019x"), False)
@example((VALID, "43\u0661\u0662\u0662\u0664198001011238"), False)
@example((VALID, "4312\u200b24198001011238"), False)
def test_a_valid_number_survives_every_form_it_is_delivered_in(delivered: tuple[str, str], text_cell: bool) -> None:
    number, raw = delivered
    found = normalise_identity_number(raw, text_cell=text_cell)
    assert (found.number, found.problem) == (number, None)


@given(valid_identity_numbers(ending_000=True).flatmap(lambda n: st.tuples(st.just(n), delivered_forms(n))))
def test_a_number_ending_in_000_is_kept_only_from_a_text_cell(delivered: tuple[str, str]) -> None:
    number, raw = delivered
    assert normalise_identity_number(raw, text_cell=True).number == number
    assert normalise_identity_number(raw).problem == "excel_damaged"
    assert number_ending_in_zeros(number) is not None


@given(valid_identity_numbers(ending_000=True), st.sampled_from(["00", "0000"]))
@example("431224198001011000", "00")
def test_a_certificate_number_excel_damaged_is_not_taken_for_an_identity_number(number: str, zeros: str) -> None:
    """A 20-digit certificate number stored as a number keeps 15 digits: the identity number
    it starts with then ends in 000, and passes its check one time in eleven."""
    assert normalise_identity_number(number + zeros).problem == "excel_damaged"
    assert valid_once_cleaned([number + zeros]) == ([], [], [], [], [])
    assert normalise_identity_number(number + zeros, text_cell=True).number == number
    assert normalise_identity_number(number + "11").number == number  # its suffix kept: not Excel's


_CERTIFICATES = st.tuples(valid_identity_numbers(ending_000=True), st.sampled_from(["00", "11", "0000"])).map("".join)


@given(
    st.lists(
        st.one_of(
            awkward_text, valid_identity_numbers(), valid_identity_numbers().flatmap(delivered_forms), _CERTIFICATES
        )
    )
)
def test_checking_many_at_once_agrees_with_one_by_one(raws: list[str]) -> None:
    """The column-at-once checks find valid exactly what the normaliser finds valid, alike."""
    for text_cell in (False, True):
        texts, numbers, born, sexes = valid_as_typed(raws, text_cell=text_cell)
        for text, number, day, sex in zip(texts, numbers, born, sexes, strict=True):
            one = normalise_identity_number(text, text_cell=text_cell)
            assert (one.number, one.birth_date, one.sex) == (number, day, sex)
        others, numbers, cleaned, born, sexes = valid_once_cleaned(raws, text_cell=text_cell)
        for text, number, clean, day, sex in zip(others, numbers, cleaned, born, sexes, strict=True):
            one = normalise_identity_number(text, text_cell=text_cell)
            assert (one.number, one.cleaned, one.birth_date, one.sex) == (number, clean, day, sex)


def _shown(masked: str, number: str) -> None:
    """At most ten of the number's characters (the first six and last four) can be made
    out of the masked text, and its birth date not at all."""
    shown = reveal(masked)
    assert len(shown) <= 10, (masked, shown)
    assert number[6:14] not in shown


@given(valid_identity_numbers().flatmap(identity_like_runs), digitless_text, digitless_text)
@example(VALID.replace("19800101", "1980\t0101"), "", "")
@example("431224-19800101-1238", "", "")
@example("431224\\t198001011238", '["', '"]')
@example("4312241980\\u00090101 1238", "", "")
@example("\\u0034\\u0033" + VALID[2:], "", "")
@example("\\\\u0034\\\\u0033" + VALID[2:], "", "")
@example(VALID + "11", "残疾证号", "")
@example("4312\u200b24198001011238", "", "")
@example("\u2463\u2462\u2460" + VALID[3:], "", "")
@example("٤٣١٢٢٤١٩٨٠٠١٠١١٢٣٨", "", "")
@example(" ".join(VALID), "", "")
def test_masking_hides_every_identity_like_run(run: str, before: str, after: str) -> None:
    text = before + run + after
    number = reveal(run)[:18]
    masked = mask_identity_numbers_in(text)
    assert masked.startswith(before) and masked.endswith(after)
    _shown(masked, number)
    assert masked[len(before) : len(masked) - len(after)].count("*") >= len(reveal(run)) - 10


@given(valid_identity_numbers().flatmap(lambda n: st.tuples(st.just(n), delivered_forms(n))), digitless_text)
@example((VALID, "431224\xa019800101\xa01238"), "")
def test_masking_hides_numbers_in_a_quarantined_records_json(delivered: tuple[str, str], other: str) -> None:
    """``raw_record`` is the delivered cells as JSON: a tab becomes ``\\t``, and with
    ``ensure_ascii`` every full-width digit an escape. A failure's message quotes a value
    as Python's repr does: a no-break space becomes ``\\xa0``."""
    number, raw = delivered
    quoted = (json_cell(raw), json.dumps([other, raw, other]), json.dumps([raw], ensure_ascii=True), repr((other, raw)))
    for cells in quoted:
        _shown(mask_identity_numbers_in(cells), number)


@given(st.lists(st.one_of(digitless_text, valid_identity_numbers().flatmap(identity_like_runs)), max_size=4))
def test_masking_hides_several_numbers_in_one_text(parts: list[str]) -> None:
    masked = mask_identity_numbers_in("，".join(parts))
    runs = [part for part in parts if reveal(part)]
    assert len(reveal(masked)) <= 10 * len(runs)


@given(awkward_text, st.booleans())
def test_masking_never_raises_is_idempotent_and_leaves_short_runs(text: str, households: bool) -> None:
    masked = mask_identity_numbers_in(text, household_numbers=households)
    assert mask_identity_numbers_in(masked, household_numbers=households) == masked
    if len(reveal(text)) < 15:  # too few digits for any number: nothing to mask
        assert masked == text


@given(st.text("0123456789", min_size=15, max_size=20), digitless_text)
def test_a_household_number_named_as_such_stays_readable(number: str, before: str) -> None:
    named = f"{before}户编号 {number}"
    assert mask_identity_numbers_in(named, household_numbers=True) == named
    assert number not in mask_identity_numbers_in(named)


@given(
    st.text("0123456789", min_size=14, max_size=20),
    valid_identity_numbers().flatmap(lambda n: st.tuples(st.just(n), identity_like_runs(n))),
    st.sampled_from([" ", "\t", "\u3000", "-", ""]),
)
@example("431224101201000001", (VALID, VALID), " ")
def test_a_number_right_after_a_named_household_number_is_masked(
    household: str, delivered: tuple[str, str], separator: str
) -> None:
    """Only a 户编号 itself is spared, not a number run into it by a separator."""
    number, run = delivered
    masked = mask_identity_numbers_in(f"户编号 {household}{separator}{run}", household_numbers=True)
    assert number[6:14] not in reveal(masked)


@given(st.one_of(awkward_text, valid_identity_numbers()))
def test_a_masked_number_keeps_at_most_its_first_six_and_last_four(value: str) -> None:
    masked = mask_identity_number(value)
    assert len(masked) == len(value)
    kept = [i for i, character in enumerate(masked) if character != "*"]
    assert all(i < 6 or i >= len(value) - 4 for i in kept)
    assert all(masked[i] == value[i] for i in kept)
    if len(value) > 10:
        assert masked[6:-4] == "*" * (len(value) - 10)
