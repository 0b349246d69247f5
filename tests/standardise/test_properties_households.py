"""Properties of the placement of rows whose household number (户编号) is damaged or missing."""

from __future__ import annotations

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from lookback.generate.noise import code_excel_scientific, code_excel_zeros
from lookback.standardise.codes import normalise_code
from lookback.standardise.households import HEAD, place_of, place_rows
from tests.standardise.strategies import awkward_text

HOUSEHOLDS = ["431224101201000123", "431224101201000145", "431224101201001000", "431224101202000007"]
LENGTH = (14, 20)


@st.composite
def delivered_number(draw: st.DrawFn) -> str:
    number = draw(st.sampled_from(HOUSEHOLDS))
    damage = draw(st.sampled_from(["intact", "intact", "zeros", "scientific", "blank", "other"]))
    if damage == "zeros":
        return code_excel_zeros(number) or number
    if damage == "scientific":
        return code_excel_scientific(number) or number
    if damage == "blank":
        return ""
    if damage == "other":
        return draw(awkward_text)
    return number


@st.composite
def household_rows(draw: st.DrawFn) -> pd.DataFrame:
    count = draw(st.integers(1, 8))
    rows = []
    for index in range(count):
        raw = draw(delivered_number())
        code = normalise_code(raw, LENGTH)
        rows.append(
            {
                "source_row": index + 1,
                "number": code.value,
                "raw": code.cleaned,
                "place": draw(st.sampled_from(["溆浦县|青石村", "溆浦县|白龙村"])),
                "relation": draw(st.sampled_from([HEAD, "spouse", "child"])),
            }
        )
    return pd.DataFrame(rows)


@given(household_rows())
def test_every_row_without_a_usable_number_is_placed_once_in_a_household_it_can_be(rows: pd.DataFrame) -> None:
    placements = place_rows(rows, LENGTH)
    open_rows = rows[rows["number"].isna()]
    assert sorted(placement.source_row for placement in placements) == sorted(open_rows["source_row"])
    for placement in placements:
        row = rows[rows["source_row"] == placement.source_row].iloc[0]
        assert placement.evidence
        if placement.household_number is None:
            continue
        code = normalise_code(row["raw"], LENGTH)
        of_place = set(rows.loc[(rows["place"] == row["place"]), "number"].dropna())
        # A household of the place its damaged number could have been, or the number itself
        # (carried alike by several members, or no household of the place could be it).
        assert (
            placement.household_number == code.cleaned
            or placement.household_number in of_place
            or any(other.household_number == placement.household_number for other in placements)
        )
        if code.is_damaged and placement.household_number != code.cleaned:
            assert code.could_be(placement.household_number)


@given(st.lists(st.one_of(st.none(), awkward_text, st.integers()), max_size=4))
def test_a_place_key_ignores_spaces_and_width(values: list[object]) -> None:
    key = place_of(values)
    assert key == place_of([None if v is None else f" {v}\u3000" for v in values])
