"""Numbers nothing else carries: a row linked on a valid number no other row has may still be
claimed by a person the other evidence names strongly."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lookback.link.comparisons import AGREEING_NUMBERS
from lookback.link.levels import Comparison
from lookback.link.pairs import sorted_distinct
from lookback.link.records import duplicate_of


def uncorroborated(records: pd.DataFrame, cluster: np.ndarray, repeats: np.ndarray | None = None) -> np.ndarray:
    """Rows linked on a valid number that no other row carries (a row delivered twice
    aside): nothing but the row itself says the number is its own. Such a row goes to the
    second pass as well, where a person the other evidence names strongly (an appraisal
    naming the head of a registry household, an allowance member listed with the rest of
    the household) can claim it, its number then being someone else's. ``repeats``: the
    records' :func:`~lookback.link.records.duplicate_of`, when the caller has it."""
    linked = cluster >= 0
    if not linked.any():
        return np.zeros(len(records), dtype=bool)
    rows = np.flatnonzero(linked)
    repeats = duplicate_of(records) if repeats is None else repeats
    distinct = pd.Series(repeats[rows]).groupby(cluster[rows]).nunique()
    single = pd.Series(cluster).map(distinct).fillna(0).to_numpy() == 1
    # Only a row that places its person (a village): what else would name its person is
    # where it lives and with whom; an enrolment alone is most often an insured person of
    # no programme, whom a namesake of the registry must not claim.
    placed = records["village"].notna().to_numpy() if "village" in records else np.zeros(len(records), dtype=bool)
    result: np.ndarray = linked & single & placed
    return result


def among_other_numbers(records: pd.DataFrame, assigned: np.ndarray, doubted: np.ndarray) -> np.ndarray:
    """Rows whose person holds a valid number other than the row's own, carried by a row
    whose number is not in doubt."""
    number, distinct = pd.factorize(records["id"].to_numpy(dtype=object), use_na_sentinel=True)
    span = len(distinct) + 1
    # Each (person, number) as one code; a row of no number is its person's code of none (0).
    held_by = assigned.astype(np.int64) * span + number + 1
    vouching = (number >= 0) & ~doubted
    held = sorted_distinct(held_by[vouching])
    count = np.bincount(held // span, minlength=len(assigned))
    found = np.searchsorted(held, held_by)
    holds_own = (number >= 0) & (held[np.minimum(found, len(held) - 1)] == held_by) if len(held) else False
    others: np.ndarray = count[assigned] - holds_own > 0
    return others


def without_place(claims: np.ndarray, levels: np.ndarray, comparisons: Sequence[Comparison]) -> np.ndarray:
    """Of the pairs in which a row whose number nothing else carries would go to a person of
    another valid number (``claims``), those not of one household: the same household, or,
    where one row names none (an appraisal), the same village and the same relation to its
    head (the head an appraisal names). A namesake of the county enrolled under their own
    number, or of the village on an allowance roster, is not evidence that the row's number
    is borrowed."""
    position = {comparison.field: index for index, comparison in enumerate(comparisons)}

    def level(field: str, name: str) -> np.ndarray:
        if field not in position:
            return np.zeros(len(claims), dtype=bool)
        return np.isin(levels[:, position[field]], comparisons[position[field]].indices({name}))

    household_unknown = levels[:, position["household"]] < 0 if "household" in position else np.ones(len(claims), bool)
    together = level("household", "exact") | (
        household_unknown & level("village", "exact") & level("relation", "exact")
    )
    result: np.ndarray = claims & ~together
    return result


def doubt_alone_numbers(levels: np.ndarray, alone: np.ndarray, comparisons: Sequence[Comparison]) -> None:
    """For pairs in which a row whose number nothing else carries meets a person of another
    valid number (``alone``), a disagreement of numbers, or of the birth dates read from
    them, is left unweighed (-1): the number may be borrowed. An agreement still counts, and
    against a row of no valid number (blank, damaged) a disagreement counts as ever."""
    for position, comparison in enumerate(comparisons):
        if comparison.field not in {"identity", "birth_date"}:
            continue
        column = levels[:, position]
        column[alone & (column >= 0) & ~np.isin(column, comparison.indices(AGREEING_NUMBERS))] = -1
