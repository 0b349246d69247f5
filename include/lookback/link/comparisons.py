"""Comparisons: the level every candidate pair falls into on each compared field, over arrays of pairs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lookback.link.levels import Comparison
from lookback.link.pairs import PairTable, character_differences


def counted_once(levels: np.ndarray, comparisons: Sequence[Comparison]) -> None:
    """Where two rows' birth dates are compared, a stage at school that fits the one or not
    says nothing more: the school age is weighed only for a row whose birth date is unknown."""
    fields = [comparison.field for comparison in comparisons]
    if "school_age" in fields and "birth_date" in fields:
        school, birth = fields.index("school_age"), fields.index("birth_date")
        levels[levels[:, birth] >= 0, school] = -1


def compare_pairs(
    records: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    comparisons: Sequence[Comparison],
    table: PairTable | None = None,
) -> np.ndarray:
    """Level index per pair and comparison (-1: the field says nothing of the pair), shape
    (pairs, comparisons): each comparison's levels over arrays of pairs, in chunks to bound
    memory, then what one comparison has weighed taken out of another. ``table``: the
    records' per-row arrays, when already computed for other pairs of the same records."""
    out = np.empty((len(left), len(comparisons)), dtype=np.int8)
    table = PairTable(records) if table is None else table
    chunk = 1_000_000
    for start in range(0, len(left), chunk):
        lhs, rhs = left[start : start + chunk], right[start : start + chunk]
        for position, comparison in enumerate(comparisons):
            out[start : start + len(lhs), position] = comparison.compare(table, lhs, rhs)
        _no_fault_counted_twice(records, lhs, rhs, out[start : start + len(lhs)], comparisons)
    return out


# Fields a person's rows state of the person alike (not of a household, a year or a place).
FACT_FIELDS = ("birth_date", "sex")


NEAR_NUMBERS = frozenset({"check_character", "transposition", "one_digit"})


# Numbers that agree, or nearly: a check character, a transposed pair, one digit apart.
AGREEING_NUMBERS = frozenset({"exact", *NEAR_NUMBERS})


def _no_fault_counted_twice(
    records: pd.DataFrame, left: np.ndarray, right: np.ndarray, levels: np.ndarray, comparisons: Sequence[Comparison]
) -> None:
    """A birth date read from an invalid number's digits says nothing more where the two
    numbers nearly agree: the identity level has weighed that fault already."""
    if "birth_from_digits" not in records:
        return
    positions = {comparison.field: index for index, comparison in enumerate(comparisons)}
    if "identity" not in positions or "birth_date" not in positions:
        return
    identity = comparisons[positions["identity"]]
    near = identity.indices(NEAR_NUMBERS)
    from_digits = records["birth_from_digits"].to_numpy(dtype=bool)
    either = from_digits[left] | from_digits[right]
    overlap = np.isin(levels[:, positions["identity"]], near) & either
    # Nor does one a digit or a transposition away from the other's: the damage may be there.
    births = records["birth_date"].to_numpy(dtype=object)
    differing = np.flatnonzero(either & (levels[:, positions["birth_date"]] >= 0) & ~overlap)
    if len(differing):
        dates = character_differences(births[left[differing]], births[right[differing]], 8)
        overlap[differing] = dates.same_length & ((dates.count == 1) | dates.swapped)
    levels[overlap, positions["birth_date"]] = -1
