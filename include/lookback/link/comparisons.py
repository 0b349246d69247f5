"""Comparisons: the level every candidate pair falls into on each compared field, over arrays of pairs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lookback.link.config import Comparison
from lookback.standardise.names import PLACEHOLDER_PATTERN, names_fit

# Years between the head's birth and a member's, by the member's relation to the head.
AGE_GAPS = {
    "head": (0, 0),
    "spouse": (-20, 20),
    "son": (14, 55),
    "daughter": (14, 55),
    "daughter_in_law": (5, 60),
    "son_in_law": (5, 60),
    "grandson": (30, 85),
    "granddaughter": (30, 85),
    "father": (-60, -14),
    "mother": (-60, -14),
}


PAIR_FIELDS = (
    "name",
    "pinyin",
    "id_digits",
    "birth_date",
    "sex",
    "county",
    "village",
    "household",
    "relation",
    "programme",
    "schooling",
    "enrolment",
    "head_birth",
)


def level_of_pair(comparison: Comparison, first: Mapping[str, Any], second: Mapping[str, Any]) -> int:
    """The level (-1: a value is missing) of one pair of records given as field → value,
    computed by the same code that compares every candidate pair (:func:`compare_pairs`)."""
    records = pd.DataFrame({field: [first.get(field), second.get(field)] for field in PAIR_FIELDS}, dtype=object)
    return int(compare_pairs(records, np.array([0]), np.array([1]), [comparison])[0, 0])


def has_value(values: np.ndarray) -> np.ndarray:
    return np.fromiter((bool(value) for value in values), dtype=bool, count=len(values))


@dataclass(frozen=True)
class _CharacterDifferences:
    """Aligned strings compared position by position, as character matrices."""

    left_length: np.ndarray
    right_length: np.ndarray
    differ: np.ndarray  # (pairs, width): the positions that differ
    count: np.ndarray  # how many differ
    swapped: np.ndarray  # exactly two, adjacent, the same characters swapped

    @property
    def same_length(self) -> np.ndarray:
        result: np.ndarray = self.left_length == self.right_length
        return result


def _character_differences(a: np.ndarray, b: np.ndarray, width: int) -> _CharacterDifferences:
    left, right = np.asarray(a, dtype=f"U{width}"), np.asarray(b, dtype=f"U{width}")
    chars_left = left.view("U1").reshape(-1, width)
    chars_right = right.view("U1").reshape(-1, width)
    differ = chars_left != chars_right
    count = differ.sum(axis=1)
    first = differ.argmax(axis=1)
    second = np.minimum(first + 1, width - 1)
    rows = np.arange(len(left))
    swapped = (
        (count == 2)
        & differ[rows, second]
        & (chars_left[rows, first] == chars_right[rows, second])
        & (chars_left[rows, second] == chars_right[rows, first])
    )
    return _CharacterDifferences(np.char.str_len(left), np.char.str_len(right), differ, count, swapped)


def _identity_levels(a: np.ndarray, b: np.ndarray, levels: Sequence[Any]) -> np.ndarray:
    """Identity levels of aligned pairs, as character matrices: one digit, a transposition,
    a prefix are all comparisons of positions."""
    width = 18
    c = _character_differences(a, b, width)
    result = np.full(len(a), len(levels) - 1, dtype=np.int8)
    open_ = np.ones(len(a), dtype=bool)
    for index, level in enumerate(levels):
        kind = level.level
        if kind == "exact":
            hit = c.same_length & (c.count == 0)
        elif kind == "check_character":
            hit = (c.left_length == width) & (c.right_length == width) & (c.differ[:, : width - 1].sum(axis=1) == 0)
        elif kind == "transposition":
            hit = c.same_length & c.swapped
        elif kind == "one_digit":
            hit = c.same_length & (c.count == 1)
        elif kind == "first_digits":
            digits = level.digits
            hit = (c.left_length >= digits) & (c.right_length >= digits) & (c.differ[:, :digits].sum(axis=1) == 0)
        else:
            hit = np.ones(len(a), dtype=bool)
        take = open_ & hit
        result[take] = index
        open_ &= ~take
    return result


def _has_placeholder(names: np.ndarray) -> np.ndarray:
    """Names with a character written as ``?``, ``*`` or pinyin."""
    return pd.Series(names, dtype=object).str.contains(PLACEHOLDER_PATTERN, regex=True).to_numpy(dtype=bool)


def _name_levels(
    a: np.ndarray, b: np.ndarray, pinyin_a: np.ndarray, pinyin_b: np.ndarray, levels: Sequence[Any]
) -> np.ndarray:
    """Name levels of aligned pairs: equalities as arrays, string similarities in rapidfuzz's C loops."""
    from rapidfuzz.distance import Hamming, JaroWinkler
    from rapidfuzz.process import cpdist

    result = np.full(len(a), len(levels) - 1, dtype=np.int8)
    open_ = np.ones(len(a), dtype=bool)
    lengths_a = np.fromiter((len(x) for x in a), dtype=np.int64, count=len(a))
    lengths_b = np.fromiter((len(y) for y in b), dtype=np.int64, count=len(b))
    for index, level in enumerate(levels):
        kind = level.level
        candidates = np.flatnonzero(open_)
        if not len(candidates):
            break
        hit = np.zeros(len(a), dtype=bool)
        if kind == "exact":
            hit[candidates] = a[candidates] == b[candidates]
        elif kind == "same_pinyin":
            pa, pb = pinyin_a[candidates], pinyin_b[candidates]
            hit[candidates] = has_value(pa) & (pa == pb)
        elif kind == "placeholder":
            wild = candidates[_has_placeholder(a[candidates]) | _has_placeholder(b[candidates])]
            hit[wild] = [names_fit(a[k], b[k]) for k in wild]
        elif kind == "jaro_winkler":
            scores = cpdist(list(a[candidates]), list(b[candidates]), scorer=JaroWinkler.normalized_similarity)
            hit[candidates] = scores >= level.threshold - 1e-9
        elif kind == "one_character":
            even = candidates[(lengths_a[candidates] == lengths_b[candidates]) & (lengths_a[candidates] >= 2)]
            if len(even):
                distances = cpdist(list(a[even]), list(b[even]), scorer=Hamming.distance)
                hit[even] = distances == 1
        else:
            hit[candidates] = True
        take = open_ & hit
        result[take] = index
        open_ &= ~take
    return result


def age_gaps(relations: pd.Series, table: Mapping[str, tuple[int, int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The least and most years from the head's birth to a member's, per relation (NaN: none),
    by ``table`` (AGE_GAPS unless given)."""
    table = AGE_GAPS if table is None else table
    gaps = relations.map(lambda value: table.get(value) if isinstance(value, str) else None)
    low = gaps.map(lambda gap: gap[0] if gap else np.nan).to_numpy(dtype=float)
    high = gaps.map(lambda gap: gap[1] if gap else np.nan).to_numpy(dtype=float)
    return low, high


def fits_relation(low: np.ndarray, high: np.ndarray, head_birth: np.ndarray, birth: np.ndarray) -> np.ndarray:
    """1 where a birth date (a YYYYMMDD number) fits the relation's gap to the head's birth,
    0 where it does not, -1 where nothing can be said."""
    usable = ~np.isnan(low) & ~np.isnan(head_birth) & ~np.isnan(birth)
    years = np.floor((birth - head_birth) / 10_000)  # whole years from the head's birth
    same_person = (low == 0) & (high == 0)
    fits = np.where(same_person, birth == head_birth, (years >= low) & (years <= high))
    return np.where(usable, fits.astype(np.int8), -1).astype(np.int8)


def as_numbers(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def _age_levels(records: pd.DataFrame, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """0 where the pair's ages fit the relation one row states to its household head, 1
    where they do not, -1 where nothing can be said."""
    low, high = age_gaps(records["relation"])
    head, birth = as_numbers(records["head_birth"]), as_numbers(records["birth_date"])
    result = np.full(len(left), -1, dtype=np.int8)
    for first, second in ((left, right), (right, left)):
        fit = fits_relation(low[first], high[first], head[first], birth[second])
        known = (result < 0) & (fit >= 0)
        result[known] = np.where(fit[known] == 1, 0, 1)
    return result


# The ages (in whole years at the end of the reference year) at which pupils are found at
# each school stage a registry row states, generous at both ends: repeated and skipped
# years, late and early starts. Dropping out says nothing of an age.
SCHOOL_AGES = {
    "preschool": (2, 7),
    "primary": (5, 14),
    "junior_secondary": (11, 18),
    "senior_secondary": (14, 21),
    "secondary_vocational": (14, 22),
    "higher_vocational": (16, 26),
    "university": (16, 30),
}


def enrolment_year(records: pd.DataFrame) -> int | None:
    """The latest enrolment year the records state: the year the exports describe."""
    if "enrolment" not in records:
        return None
    years = pd.to_numeric(records["enrolment"].dropna().str.rsplit(":", n=1).str[-1], errors="coerce")
    return int(years.max()) if years.notna().any() else None


def _school_levels(records: pd.DataFrame, left: np.ndarray, right: np.ndarray, year: int | None) -> np.ndarray:
    """0 where one row's school stage fits the other row's birth year, 1 where it does not,
    -1 where nothing can be said (no stage, no birth date, no year to age them at)."""
    result = np.full(len(left), -1, dtype=np.int8)
    if year is None or "schooling" not in records:
        return result
    low, high = age_gaps(records["schooling"], SCHOOL_AGES)
    born = np.floor(as_numbers(records["birth_date"]) / 10_000)
    for first, second in ((left, right), (right, left)):
        age = year - born[second]
        known = (result < 0) & ~np.isnan(low[first]) & ~np.isnan(age)
        fits = (age >= low[first]) & (age <= high[first])
        result[known] = np.where(fits[known], 0, 1)
    return result


def counted_once(levels: np.ndarray, comparisons: Sequence[Comparison]) -> None:
    """Where two rows' birth dates are compared, a stage at school that fits the one or not
    says nothing more: the school age is weighed only for a row whose birth date is unknown."""
    fields = [comparison.field for comparison in comparisons]
    if "school_age" in fields and "birth_date" in fields:
        school, birth = fields.index("school_age"), fields.index("birth_date")
        levels[levels[:, birth] >= 0, school] = -1


def compare_pairs(
    records: pd.DataFrame, left: np.ndarray, right: np.ndarray, comparisons: Sequence[Comparison]
) -> np.ndarray:
    """Level index per pair and comparison (-1: a value is missing), shape (pairs, comparisons).


    Every level is computed over arrays of pairs (in chunks, to bound memory); this is the
    only definition of the levels (:func:`level_of_pair` asks it about one pair).
    """
    out = np.empty((len(left), len(comparisons)), dtype=np.int8)
    columns = {field: records[field].to_numpy(dtype=object) for field in PAIR_FIELDS if field != "head_birth"}
    present = {field: has_value(values) for field, values in columns.items()}
    columns["age_in_household"] = columns["birth_date"]
    present["age_in_household"] = np.ones(len(records), dtype=bool)
    columns["school_age"] = columns["birth_date"]
    present["school_age"] = np.ones(len(records), dtype=bool)
    reference_year = enrolment_year(records)
    # The kind of each row's household key (registry, head, one), read once per row.
    household_kind = pd.Series(columns["household"], dtype=object).str.split(":", n=1).str[0].to_numpy(dtype=object)
    # Rows compared on a valid number of their own (not one set aside as someone else's).
    own_number = (
        (records["id"].notna() & (records["id"] == records["id_digits"])).to_numpy(dtype=bool)
        if "id" in records
        else np.zeros(len(records), dtype=bool)
    )
    chunk = 1_000_000
    for start in range(0, len(left), chunk):
        lhs, rhs = left[start : start + chunk], right[start : start + chunk]
        for position, comparison in enumerate(comparisons):
            levels = comparison.levels
            field = {"identity": "id_digits"}.get(comparison.field, comparison.field)
            both = present[field][lhs] & present[field][rhs]
            result = np.full(len(lhs), -1, dtype=np.int8)
            rows = np.flatnonzero(both)
            a, b = columns[field][lhs[rows]], columns[field][rhs[rows]]
            if comparison.field == "name":
                pinyin = columns["pinyin"]
                result[rows] = _name_levels(a, b, pinyin[lhs[rows]], pinyin[rhs[rows]], levels)
            elif comparison.field == "identity":
                level_of = _identity_levels(a, b, levels)
                # Two different valid numbers are two persons' (born the same day in the same
                # county, a sequence apart): of the levels that forgive damage only a
                # transposition can leave both numbers valid.
                both_valid = own_number[lhs[rows]] & own_number[rhs[rows]] & (a != b)
                transposed = levels_named(comparison, {"transposition"})
                forgiven = both_valid & ~np.isin(level_of, transposed)
                level_of[forgiven] = len(levels) - 1
                result[rows] = level_of
            elif comparison.field == "age_in_household":
                result = _age_levels(records, lhs, rhs)
            elif comparison.field == "school_age":
                result = _school_levels(records, lhs, rhs, reference_year)
            elif comparison.field == "household":
                # Households of two departments are the same household only once a person
                # links them (``joined_households``): an allowance household of one member
                # that no person has tied to a registry household yet (a 特困 person supported
                # alone, living in a registry household) says nothing either way of one.
                kinds_a, kinds_b = household_kind[lhs[rows]], household_kind[rhs[rows]]
                unknown = ((kinds_a == ONE_MEMBER) & (kinds_b == "registry")) | (
                    (kinds_b == ONE_MEMBER) & (kinds_a == "registry")
                )
                result[rows] = np.where(a == b, 0, np.where(unknown, -1, len(levels) - 1))
            elif comparison.field in FACT_FIELDS:
                result[rows] = fact_levels(comparison, a, b)
            else:
                result[rows] = np.where(a == b, 0, len(levels) - 1)
            out[start : start + len(lhs), position] = result
        _no_fault_counted_twice(records, lhs, rhs, out[start : start + len(lhs)], comparisons)
    return out


# Fields a person's rows state of the person alike (not of a household, a year or a place).
FACT_FIELDS = ("birth_date", "sex")


def fact_levels(comparison: Comparison, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Levels of a birth date or sex comparison for values present on both sides."""
    levels = comparison.levels
    level_of = np.full(len(a), len(levels) - 1, dtype=np.int8)
    if comparison.field == "birth_date":
        year_month = next((i for i, level in enumerate(levels) if level.level == "year_month"), None)
        if year_month is not None:
            months_a = pd.Series(a, dtype=object).str[:6].to_numpy(dtype=object)
            months_b = pd.Series(b, dtype=object).str[:6].to_numpy(dtype=object)
            level_of[months_a == months_b] = year_month
        exact = next((i for i, level in enumerate(levels) if level.level == "exact"), None)
        if exact is not None:
            level_of[a == b] = exact
        return level_of
    level_of[a == b] = 0
    return level_of


NEAR_NUMBERS = frozenset({"check_character", "transposition", "one_digit"})


# Numbers that agree, or nearly: a check character, a transposed pair, one digit apart.
AGREEING_NUMBERS = frozenset({"exact", *NEAR_NUMBERS})


def levels_named(comparison: Comparison, names: Iterable[str]) -> list[int]:
    """The indices of the comparison's levels whose kind is one of ``names``."""
    wanted = set(names)
    return [index for index, level in enumerate(comparison.levels) if level.level in wanted]


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
    near = levels_named(identity, NEAR_NUMBERS)
    from_digits = records["birth_from_digits"].to_numpy(dtype=bool)
    either = from_digits[left] | from_digits[right]
    overlap = np.isin(levels[:, positions["identity"]], near) & either
    # Nor does one a digit or a transposition away from the other's: the damage may be there.
    births = records["birth_date"].to_numpy(dtype=object)
    differing = np.flatnonzero(either & (levels[:, positions["birth_date"]] >= 0) & ~overlap)
    if len(differing):
        dates = _character_differences(births[left[differing]], births[right[differing]], 8)
        overlap[differing] = dates.same_length & ((dates.count == 1) | dates.swapped)
    levels[overlap, positions["birth_date"]] = -1


# The kind of household key given to an allowance household of one member that no person
# ties to a registry household.
ONE_MEMBER = "one"
