"""Rows whose household number (户编号) is damaged or missing, placed by the evidence around them."""

from __future__ import annotations

import pandas as pd

from lookback.standardise.households import place_rows

A = "431224101201000123"
B = "431224101201000145"
C = "431224101201007001"
LENGTH = (14, 20)


def _rows(*rows: tuple[str | None, str, str, str]) -> pd.DataFrame:
    """(usable number, delivered text, relation, village) per row, in file order."""
    return pd.DataFrame(
        {
            "source_row": range(1, len(rows) + 1),
            "number": pd.Series([row[0] for row in rows], dtype=object),
            "raw": [row[1] for row in rows],
            "relation": [row[2] for row in rows],
            "place": [f"431224|{row[3]}" for row in rows],
        }
    )


def _placed(rows: pd.DataFrame) -> dict[int, str | None]:
    return {placement.source_row: placement.household_number for placement in place_rows(rows, LENGTH)}


def test_a_member_between_two_rows_of_a_household_is_of_it() -> None:
    rows = _rows(
        (A, A, "head", "茶溪村"),
        (None, "4.31224E+17", "spouse", "茶溪村"),  # scientific: any household of the county could be it
        (A, A, "son", "茶溪村"),
        (B, B, "head", "茶溪村"),
        (B, B, "son", "茶溪村"),
    )
    assert _placed(rows) == {2: A}


def test_a_member_follows_its_household_and_a_head_begins_it() -> None:
    rows = _rows(
        (A, A, "head", "茶溪村"),
        (A, A, "spouse", "茶溪村"),
        (None, "4.31224E+17", "son", "茶溪村"),  # the last of A's rows (B could be it too)
        (None, "431224101201000000", "head", "茶溪村"),  # B's head: A has its head already
        (B, B, "spouse", "茶溪村"),
    )
    assert _placed(rows) == {3: A, 4: B}


def test_the_surviving_digits_leave_one_household() -> None:
    # Members listed apart from their households (not grouped): only the digits can tell.
    rows = _rows(
        (A, A, "head", "茶溪村"),
        (C, C, "head", "茶溪村"),
        (A, A, "son", "茶溪村"),
        (C, C, "son", "茶溪村"),
        (None, "431224101201007000", "daughter", "茶溪村"),  # 15 digits survive: only C agrees
        (A, A, "spouse", "茶溪村"),
        (C, C, "spouse", "茶溪村"),
    )
    assert _placed(rows) == {5: C}


def test_nothing_settles_it_and_the_row_is_not_placed() -> None:
    rows = _rows(
        (A, A, "head", "茶溪村"),
        (B, B, "head", "茶溪村"),
        (A, A, "son", "茶溪村"),
        (B, B, "son", "茶溪村"),
        (None, "", "daughter", "茶溪村"),  # blank, rows not grouped: A or B
        (A, A, "spouse", "茶溪村"),
        (B, B, "spouse", "茶溪村"),
    )
    assert _placed(rows) == {5: None}


def test_rows_around_it_in_another_village_say_nothing() -> None:
    rows = _rows(
        (A, A, "head", "茶溪村"),
        (A, A, "son", "茶溪村"),
        (None, "4.31224E+17", "son", "桐木村"),  # between rows of 茶溪村: they say nothing of it
        (B, B, "head", "茶溪村"),
        (C, C, "head", "桐木村"),  # two households of 桐木村 could be it
        (C, C, "son", "桐木村"),
        ("431224101202000001", "431224101202000001", "head", "桐木村"),
    )
    assert _placed(rows) == {3: None}


def test_a_number_ending_in_zeros_that_members_share_is_the_households_own() -> None:
    real = "431224101201001000"  # households numbered in sequence: 001000 is as real as 001001
    rows = _rows(
        (A, A, "head", "茶溪村"),
        (A, A, "son", "茶溪村"),
        (None, real, "head", "茶溪村"),
        (None, real, "spouse", "茶溪村"),
        ("431224101201001001", "431224101201001001", "head", "茶溪村"),  # shares the first 15 digits
        ("431224101201001001", "431224101201001001", "son", "茶溪村"),
    )
    assert _placed(rows) == {3: real, 4: real}


def test_a_damaged_number_no_household_could_have_been_is_a_household_of_its_own() -> None:
    rows = _rows(
        (A, A, "head", "茶溪村"),
        (A, A, "son", "茶溪村"),
        (None, "431224101201099000", "head", "茶溪村"),  # one person, alone: no other household fits
    )
    assert _placed(rows) == {3: "431224101201099000"}


def test_numbers_ending_in_zeros_with_two_heads_are_not_one_household() -> None:
    rows = _rows(
        (A, A, "head", "茶溪村"),
        (None, "431224101201000000", "head", "茶溪村"),  # A could be either, but A has its head
        (None, "431224101201000000", "head", "茶溪村"),
    )
    assert _placed(rows) == {2: None, 3: None}


def test_rows_far_apart_damaged_alike_are_members_of_households_numbered_alike() -> None:
    # 000123 and 000145 share their first 15 digits: damaged, both read 000000.
    rows = _rows(
        (None, "431224101201000000", "head", "茶溪村"),  # A's head, damaged
        (A, A, "son", "茶溪村"),
        (B, B, "head", "茶溪村"),
        (None, "431224101201000000", "son", "茶溪村"),  # B's son, damaged alike
    )
    assert _placed(rows) == {1: A, 4: B}


def test_a_row_delivered_twice_is_one_member_not_a_run_carrying_the_number() -> None:
    # The member's number lost its last digits; the row then arrived twice (the same cell
    # twice): it joins the household around it, it does not found one of its own.
    rows = _rows(
        (A, A, "head", "茶溪村"),
        (None, "431224101201000000", "son", "茶溪村"),
        (None, "431224101201000000", "son", "茶溪村"),
        (A, A, "daughter", "茶溪村"),
    ).assign(original=[1, 2, 2, 4])
    assert _placed(rows) == {2: A, 3: A}
    # Without saying which rows are copies, two rows alike read as two members of a real household.
    assert _placed(rows.drop(columns="original")) == {2: "431224101201000000", 3: "431224101201000000"}


def test_a_head_its_members_place_is_that_households_head_before_another_is_placed_alone() -> None:
    # Two heads whose numbers Excel turned to 4.31224E+17: the second is followed by its
    # household's members, so that household has its head; the first, a household of one,
    # is not "the only household of the village it can be" of it.
    damaged = "4.31224E+17"
    rows = _rows(
        (A, A, "head", "茶溪村"),
        (A, A, "son", "茶溪村"),
        (None, damaged, "head", "茶溪村"),  # 3: a household of one
        (None, damaged, "head", "茶溪村"),  # 4: B's head
        (B, B, "spouse", "茶溪村"),
    )
    assert _placed(rows) == {3: None, 4: B}


def test_a_head_begins_its_household_past_members_without_a_usable_number() -> None:
    damaged = "4.31224E+17"
    rows = _rows(
        (A, A, "head", "茶溪村"),
        (None, damaged, "head", "茶溪村"),  # 2: B's head
        (None, "", "son", "茶溪村"),  # 3: a member whose number is blank
        (B, B, "spouse", "茶溪村"),
    )
    assert _placed(rows) == {2: B, 3: B}


def test_a_head_with_nothing_of_its_number_left_is_not_the_head_the_village_lacks() -> None:
    rows = _rows(
        (A, A, "spouse", "茶溪村"),  # A's head row was refused: A has no head
        (A, A, "son", "茶溪村"),
        (B, B, "head", "茶溪村"),
        (B, B, "son", "茶溪村"),
        (None, "4.31224E+17", "head", "茶溪村"),  # 5: rules out no household: maybe a household of one
    )
    assert _placed(rows) == {5: None}
    # What survives of a number ending in zeros rules out every household but A: A's head.
    rows.loc[4, "raw"] = "431224101201000000"
    rows.loc[2, ["number", "raw"]] = C
    rows.loc[3, ["number", "raw"]] = C
    assert _placed(rows) == {5: A}
