"""Which household a row belongs to when its household number (户编号) is damaged.

A household number passes through the same spreadsheets as identity numbers: Excel can
turn it into ``4.3122E+16`` or its last digits into zeros, or a row can arrive without it.
Such a row is not a household of its own: it is placed in the household that the other
evidence names, and left unplaced (a value problem) when the evidence does not settle it.
The evidence, within one place (county and village):

* what survives of the number: a damaged number could only have been a household whose
  number agrees on the surviving digits (:meth:`lookback.standardise.codes.Code.could_be`);
* the head: a row that says 户主 does not join a household that has its head already;
* the rows around it, when the export lists each household's members together (it is
  checked, not assumed): a row between two rows of one household is of that household; a
  member follows its household's rows, a head begins them.

A number ending in zeros that several members of one place carry alike is the household's
real number (Excel's damage strikes one cell; one real number in a thousand ends in 000);
a damaged number that no household of its place could have been is a household of its own.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from lookback.standardise.codes import Code, normalise_code

HEAD = "head"
# A file lists members together when its rows change household hardly more often than
# there are households.
GROUPED_RUNS_PER_HOUSEHOLD = 1.2


@dataclass(frozen=True)
class Placement:
    """Where a row with a damaged or missing household number was placed."""

    source_row: int
    household_number: str | None  # None: not placed
    evidence: str  # words for people


def place_of(values: Sequence[object]) -> str:
    """The key rows of one place share (their place columns, spaces ignored)."""
    return "|".join("".join(unicodedata.normalize("NFKC", str(v)).split()) if v is not None else "" for v in values)


def _grouped(intact: pd.DataFrame) -> bool:
    """Whether the export lists each household's rows together (in source_row order)."""
    numbers = intact["number"].to_numpy(dtype=object)
    if len(numbers) < 2:
        return True
    runs = 1 + int((numbers[1:] != numbers[:-1]).sum())
    return runs <= GROUPED_RUNS_PER_HOUSEHOLD * intact["number"].nunique()


def place_rows(rows: pd.DataFrame, length: tuple[int, int] | None = None) -> list[Placement]:
    """A placement for every row without a usable household number (placed or not).

    ``rows`` has ``source_row``, ``number`` (the usable number or None), ``raw`` (the
    delivered number, cleaned), ``place`` (a key of the place columns) and ``relation``, and
    may have ``original`` (the first row of the same content, for a row delivered twice).
    """
    rows = rows.sort_values("source_row", kind="stable").reset_index(drop=True)
    # The delivered number of every row without a usable one, as a code (the others need none).
    codes = {index: normalise_code(rows.at[index, "raw"], length) for index in rows.index[rows["number"].isna()]}
    placements = _repeated(rows, codes)
    taken = {placement.source_row: placement.household_number for placement in placements}
    rows["number"] = rows["number"].where(~rows["source_row"].isin(list(taken)), rows["source_row"].map(taken))
    intact = rows[rows["number"].notna()]
    grouped = _grouped(intact)
    headed = set(intact.loc[intact["relation"] == HEAD, "number"])
    households_in: dict[str, list[str]] = {
        str(place): [str(number) for number in numbers]
        for place, numbers in intact.groupby("place")["number"].unique().items()
    }
    # The household of the nearest row with a usable number above and below each row, in
    # file order, when that row is of the same place.
    known = rows["number"]
    known_place = rows["place"].where(known.notna())
    before = known.ffill().shift(1).where(rows["place"].eq(known_place.ffill().shift(1)))
    after = known.bfill().shift(-1).where(rows["place"].eq(known_place.bfill().shift(-1)))
    # A head begins the household below it unless another head comes first: of two heads in
    # a row without a usable number, the second begins the household below.
    position = pd.Series(range(len(rows)), index=rows.index, dtype=float)
    next_known = position.where(known.notna()).bfill().shift(-1)
    heads_open = (rows["relation"] == HEAD) & known.isna()
    next_open_head = position.where(heads_open).bfill().shift(-1)
    right_below = after.where(~(next_open_head < next_known))
    # First the rows that the rows around them place, then the others: a head placed by the
    # members that follow it is the head of that household before another head with a
    # damaged number is found to be "the only household of the village it can be".
    open_rows = list(rows.index[rows["number"].isna()])
    places = rows["place"].to_numpy(dtype=object)
    placed_here: dict[int, str] = {}  # rows placed so far, by their index
    for by_neighbours in (True, False):
        still_open = []
        for index in open_rows:
            row, code = rows.loc[index], codes[index]
            # The row right above, placed a moment ago (a head just placed begins its household).
            just_placed = placed_here.get(index - 1) if index and places[index - 1] == places[index] else None
            above: object = just_placed if just_placed is not None else before.iat[index]
            everyone = households_in.get(str(row["place"]), [])
            candidates = [number for number in everyone if code.could_be(number)] if code.is_damaged else everyone
            # What survives of the number rules some households out: 4.31224E+17 rules out none.
            narrowed = len(candidates) < len(everyone)
            is_head = row["relation"] == HEAD
            if is_head:
                candidates = [number for number in candidates if number not in headed]
            chosen, evidence = _choose(
                candidates,
                above if grouped else None,
                (right_below if is_head else after).iat[index] if grouped else None,
                is_head,
                # A head with nothing of its number left and no members around it is as likely
                # a household of one as the head of the one household of the village left
                # without a head (whose head row may have been refused).
                alone_will_do=not by_neighbours and (narrowed or not is_head),
            )
            if chosen is None and by_neighbours:
                still_open.append(index)
                continue
            if chosen is None and code.is_damaged and not any(code.could_be(number) for number in everyone):
                # No household of the place could have had this number: it is a household of its own.
                chosen, evidence = (
                    code.cleaned,
                    "同村无可能的其他户，按原值成户 (no other household of the village could be it)",
                )
            if chosen is None:
                evidence = "无法从同村成员确定所属户 (no evidence settles the household)"
            if chosen is not None:
                placed_here[index] = chosen
                if is_head:
                    headed.add(chosen)
            placements.append(Placement(int(row["source_row"]), chosen, evidence))
        open_rows = still_open
    return sorted(placements, key=lambda placement: placement.source_row)


def _repeated(rows: pd.DataFrame, codes: dict[int, Code]) -> list[Placement]:
    """Rows of one place carrying the same number whose last digits are zeros, as Excel
    leaves them, listed one after another: damage strikes one cell, not every member of a
    household alike, so a number a run of members carries is the household's real number
    (one in a thousand ends in 000); unless the rows name two heads. A row delivered twice is
    one member, not a run: its damaged number is twice the same cell. Rows far apart that
    carry it are members of households numbered alike up to the 15th digit, each damaged."""
    original = rows["original"] if "original" in rows else rows["source_row"]
    zeros = pd.Series(False, index=rows.index)
    zeros[[index for index, code in codes.items() if code.is_damaged and code.cleaned.isdigit()]] = True
    placements: list[Placement] = []
    for (_place, raw), group in rows[zeros].groupby(["place", "raw"], sort=False):
        positions = group.index.to_numpy()  # rows are in file order, numbered from 0
        members = original[group.index].nunique()
        together = members >= 2 and bool((positions[1:] - positions[:-1] == 1).all())
        if not together or int((group["relation"] == HEAD).sum()) > 1:
            continue
        placements += [
            Placement(
                int(source_row), str(raw), "多名成员户编号相同，按原值成户 (carried alike by members listed together)"
            )
            for source_row in group["source_row"]
        ]
    return placements


def _choose(
    candidates: list[str], above: object, below: object, is_head: bool, alone_will_do: bool = True
) -> tuple[str | None, str]:
    if above is not None and above == below and above in candidates:
        return str(above), "与前后成员同户 (between two rows of the household)"
    if is_head and below in candidates:
        return str(below), "户主行，其后为该户成员 (a head, followed by the household's rows)"
    if not is_head and above in candidates:
        return str(above), "紧随该户成员之后 (right after the household's rows)"
    if alone_will_do and len(candidates) == 1:
        return candidates[0], "同村唯一可能的户 (the only household of the village it can be)"
    return None, ""
