"""Properties of the digit codes' normaliser (户编号, 村代码, phone numbers)."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from lookback.generate.noise import code_excel_scientific, code_excel_zeros
from lookback.standardise.codes import EXCEL_DAMAGED, PROBLEM_WORDS, clean_code_text, normalise_code
from tests.standardise.strategies import READABLE_DIGITS, awkward_text

lengths = st.one_of(st.none(), st.tuples(st.integers(0, 25), st.integers(0, 25)).map(sorted).map(tuple))


@given(awkward_text, lengths)
@example("፩፪፫", None)  # Ethiopic digits: digits to str.isdigit, not a code
@example("1" * 5000, None)
def test_never_raises_and_a_value_is_ascii_digits(raw: str, length: tuple[int, int] | None) -> None:
    found = normalise_code(raw, length)
    assert found.problem is None or found.problem in PROBLEM_WORDS
    if found.value is not None:
        assert found.problem is None and found.value == found.cleaned
        assert found.value.isascii() and found.value.isdigit()
        assert length is None or length[0] <= len(found.value) <= length[1]
    assert found.could_be("431224101201000123") in (True, False)


@given(awkward_text, lengths)
def test_normalising_is_idempotent(raw: str, length: tuple[int, int] | None) -> None:
    found = normalise_code(raw, length)
    assert clean_code_text(found.cleaned) == found.cleaned
    assert normalise_code(found.cleaned, length) == found


digit_codes = st.text("0123456789", min_size=1, max_size=20).filter(
    lambda code: len(code) <= 15 or set(code[15:]) != {"0"}
)


@st.composite
def delivered_codes(draw: st.DrawFn) -> tuple[str, str]:
    """A code and a way a spreadsheet delivers it: any readable digits, spaces or dashes
    inside, an apostrophe, a tab or a literal ``\\t`` in front, a number cell's ``.0``."""
    code = draw(digit_codes)
    text = "".join(
        draw(st.sampled_from(READABLE_DIGITS[int(c)])) + draw(st.sampled_from(["", "", " ", "-", "－", "\u3000"]))
        for c in code
    )
    before = draw(st.sampled_from(["", "'", "\t", "\\t", " "]))
    after = draw(st.sampled_from(["", " ", ".0"])) if (len(code) <= 15 and code[0] != "0") or len(code) == 1 else ""
    return code, before + text + after


@given(delivered_codes())
@example(("431224101201000123", "４３１２２４ １０１２０１ ０００１２３"))
@example(("07451234567", "0745-1234567"))
@example(("13812345678", "'13812345678.0"))
def test_a_code_survives_every_form_it_is_delivered_in(delivered: tuple[str, str]) -> None:
    code, raw = delivered
    assert normalise_code(raw, (len(code), len(code))).value == code


@given(st.text("0123456789", min_size=16, max_size=20).filter(lambda code: code[0] != "0"))
@example("4312241012010001234")
@example("9999995000000000")  # shown as 1E+16: rounding carried into a new digit
def test_what_excel_left_of_a_long_code_could_have_been_it(code: str) -> None:
    """Excel's two kinds of damage are marked, never repaired, and each keeps the code among
    what it could have been (the households' placement looks there)."""
    for damaged in (code_excel_zeros(code), code_excel_scientific(code)):
        assert damaged is not None
        found = normalise_code(damaged)
        assert found.problem == EXCEL_DAMAGED and found.value is None
        assert found.could_be(code)


@given(st.text("0123456789", min_size=16, max_size=20).filter(lambda code: code[0] != "0"))
def test_a_long_code_from_a_number_cell_is_not_taken_as_it_reads(code: str) -> None:
    """A number cell's ``.0`` after more digits than Excel keeps: the digits past the 15th
    are Excel's, not the code's."""
    assert normalise_code(code + ".0").value is None
