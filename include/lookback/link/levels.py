"""Comparisons as lists of level objects, the way splink's comparisons are.

A comparison reads one field of the two rows of every candidate pair. Where the field says
nothing of a pair (a value missing on either side) the pair gets no level (-1) and no
weight; else it falls into the first of the comparison's levels, in the order the settings
give them, whose condition holds. Each level owns its label and its condition over arrays
of pairs; the level of a single pair (:meth:`Comparison.level_of_pair`, used by ``explain``
and the tests) is computed by the same condition on a table of two rows, so the two cannot
disagree. Each field declares the column it reads, when it says nothing, and the levels it
takes (``FIELDS``); the settings are validated against that table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from lookback.link.ages import AGE_GAPS, SCHOOL_AGES, age_gaps, as_numbers, enrolment_year, fits_relation
from lookback.link.pairs import (
    CharacterDifferences,
    PairTable,
    Sides,
    character_differences,
    distinct_inverse,
    fixed_width,
    has_placeholder,
)
from lookback.standardise.names import _slots_fit, _written, name_slots

# The kind of household key given to an allowance household of one member that no person
# ties to a registry household.
ONE_MEMBER = "one"

# The columns a pair of records is compared on (the one-pair form builds a table of these):
# ``id`` is the valid number, when the row carries one of its own.
PAIR_FIELDS = (
    "name",
    "pinyin",
    "id",
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


# --- levels -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Level:
    """One level of a comparison: its label, its condition, its fixed m (if any)."""

    kind: ClassVar[str] = ""
    m: float | None = None  # a fixed m probability, where the data cannot teach it
    term_frequency: bool = False  # weight by how common the value agreeing is
    frequency_column: ClassVar[str | None] = None  # the column whose frequency counts (default: the compared one)

    @property
    def label(self) -> str:
        return self.kind

    def hits(self, sides: Sides, open_: np.ndarray) -> np.ndarray:
        """Where the condition holds; it need only be right for the pairs still ``open_``."""
        raise NotImplementedError


@dataclass(frozen=True)
class Exact(Level):
    kind: ClassVar[str] = "exact"

    def hits(self, sides: Sides, open_: np.ndarray) -> np.ndarray:
        return sides.same()


@dataclass(frozen=True)
class Else(Level):
    kind: ClassVar[str] = "else"

    def hits(self, sides: Sides, open_: np.ndarray) -> np.ndarray:
        return np.ones(len(sides), dtype=bool)


@dataclass(frozen=True)
class SamePinyin(Level):
    kind: ClassVar[str] = "same_pinyin"
    frequency_column: ClassVar[str | None] = "pinyin"

    def hits(self, sides: Sides, open_: np.ndarray) -> np.ndarray:
        hit = np.zeros(len(sides), dtype=bool)
        rows = np.flatnonzero(open_)
        left, right = sides.left[rows], sides.right[rows]
        pinyin = sides.table.column("pinyin")
        hit[rows] = sides.table.present("pinyin")[left] & (pinyin[left] == pinyin[right])
        return hit


@dataclass(frozen=True)
class Placeholder(Level):
    """A character written ``?``, ``*`` or as pinyin on one side fits the other's."""

    kind: ClassVar[str] = "placeholder"

    def hits(self, sides: Sides, open_: np.ndarray) -> np.ndarray:
        hit = np.zeros(len(sides), dtype=bool)
        rows = np.flatnonzero(open_)
        table, column = sides.table, sides.column
        slots: NameSlots = table.derived(f"name_slots:{column}", lambda: NameSlots.of(table.distinct(column)[1]))
        codes = table.codes(column)
        a, b = codes[sides.left[rows]], codes[sides.right[rows]]
        # Names of different lengths never fit: only names of as many slots are read.
        wild = (slots.marked[a] | slots.marked[b]) & (slots.count[a] == slots.count[b])
        hit[rows[wild]] = slots.fit(a[wild], b[wild])
        return hit


@dataclass(frozen=True)
class NameSlots:
    """Distinct names as character slots (see ``name_slots``), to compare pairs of names slot
    by slot over arrays: each pair of slots that meets is looked at once, not each pair of
    names. Indexed by a name's code; the last entry is a missing name's (code -1)."""

    marked: np.ndarray  # per name, whether it has a placeholder
    count: np.ndarray  # per name, how many slots (-1: no name)
    slots: np.ndarray  # (names, most slots): each slot's code (-1 past the name's end)
    vocabulary: np.ndarray  # per slot code, the slot
    written: np.ndarray  # per slot code, whether it is a character as written

    @classmethod
    def of(cls, names: np.ndarray) -> NameSlots:
        marked = np.append(has_placeholder(names), False)
        count = np.append(_slot_counts(names), -1)
        width = max(int(count.max(initial=0)), 1)
        flat = [slot for name in names if isinstance(name, str) for slot in name_slots(name)]
        codes, vocabulary = pd.factorize(pd.Series(flat, dtype=object))
        slots = np.full((len(count), width), -1, dtype=np.int64)
        lengths = np.maximum(count, 0)
        # The k-th slot of the flat list is its name's slot k minus where the name's slots begin.
        name_of = np.repeat(np.arange(len(count)), lengths)
        slots[name_of, np.arange(len(codes)) - (np.cumsum(lengths) - lengths)[name_of]] = codes
        written = np.array([_written(slot) for slot in vocabulary.tolist()], dtype=bool)
        return cls(marked, count, slots, np.asarray(vocabulary, dtype=object), written)

    def fit(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``names_fit`` of the names of codes ``a`` and ``b`` (as many slots each): equal
        names, or every slot fitting the other's with one written on both sides."""
        fits = np.ones(len(a), dtype=bool)
        anchored = np.zeros(len(a), dtype=bool)
        size = len(self.vocabulary)
        for position in range(self.slots.shape[1]):
            rows = np.flatnonzero(self.count[a] > position)
            x, y = self.slots[a[rows], position], self.slots[b[rows], position]
            met, back = distinct_inverse(x * size + y)
            vocabulary = self.vocabulary
            fit_of = np.array(
                [_slots_fit(vocabulary[code // size], vocabulary[code % size]) for code in met.tolist()], dtype=bool
            )
            fits[rows] &= fit_of[back]
            anchored[rows] |= self.written[x] & self.written[y]
        result: np.ndarray = (a == b) | (fits & anchored)
        return result


@dataclass(frozen=True)
class JaroWinkler(Level):
    kind: ClassVar[str] = "jaro_winkler"
    threshold: float = 0.0

    @property
    def label(self) -> str:
        return f"jaro_winkler>={self.threshold:g}"

    def hits(self, sides: Sides, open_: np.ndarray) -> np.ndarray:
        from rapidfuzz.distance import JaroWinkler as Scorer
        from rapidfuzz.process import cpdist

        hit = np.zeros(len(sides), dtype=bool)
        rows = np.flatnonzero(open_)
        scores = cpdist(list(sides.a[rows]), list(sides.b[rows]), scorer=Scorer.normalized_similarity)
        hit[rows] = scores >= self.threshold - 1e-9
        return hit


@dataclass(frozen=True)
class OneCharacter(Level):
    """Names of one length (two or more) one character apart: a look-alike typed."""

    kind: ClassVar[str] = "one_character"

    def hits(self, sides: Sides, open_: np.ndarray) -> np.ndarray:
        from rapidfuzz.distance import Hamming
        from rapidfuzz.process import cpdist

        hit = np.zeros(len(sides), dtype=bool)
        lengths_a, lengths_b = _lengths(sides, "a"), _lengths(sides, "b")
        rows = np.flatnonzero(open_)
        even = rows[(lengths_a[rows] == lengths_b[rows]) & (lengths_a[rows] >= 2)]
        if len(even):
            hit[even] = cpdist(list(sides.a[even]), list(sides.b[even]), scorer=Hamming.distance) == 1
        return hit


def _slot_counts(names: np.ndarray) -> np.ndarray:
    """Per row, how many character slots its name has (-1: no name)."""
    return np.fromiter(
        (len(name_slots(name)) if isinstance(name, str) else -1 for name in names), dtype=np.int64, count=len(names)
    )


def _lengths(sides: Sides, side: str) -> np.ndarray:
    table, column = sides.table, sides.column
    per_row: np.ndarray = table.derived(
        f"lengths:{column}",
        lambda: table.per_row(
            column,
            lambda values: np.fromiter(
                (len(x) if isinstance(x, str) else 0 for x in values), dtype=np.int64, count=len(values)
            ),
            0,
        ),
    )
    lengths: np.ndarray = per_row[sides.left if side == "a" else sides.right]
    return lengths


IDENTITY_WIDTH = 18


def _digit_differences(sides: Sides) -> CharacterDifferences:
    found: CharacterDifferences = sides.derived(
        "digits", lambda: character_differences(*_fixed_width_sides(sides, IDENTITY_WIDTH), IDENTITY_WIDTH)
    )
    return found


def _fixed_width_sides(sides: Sides, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs' two values as fixed-width text, each row's converted once (not each pair's)."""
    table, column = sides.table, sides.column
    text: np.ndarray = table.derived(f"fixed_width:{column}:{width}", lambda: fixed_width(table.column(column), width))
    return text[sides.left], text[sides.right]


def _two_valid_numbers(sides: Sides) -> np.ndarray:
    """Pairs of two different valid numbers, each its row's own: two persons' (born the same
    day in the same county, a sequence apart), whatever damage the digits could suggest."""

    def compute() -> np.ndarray:
        own = sides.table.own_number()
        found: np.ndarray = own[sides.left] & own[sides.right] & (sides.a != sides.b)
        return found

    found: np.ndarray = sides.derived("two_valid", compute)
    return found


@dataclass(frozen=True)
class _ForgivesDamage(Level):
    """A level that forgives damage to a number: never of two valid numbers, which only a
    transposition can leave both valid."""

    def hits(self, sides: Sides, open_: np.ndarray) -> np.ndarray:
        result: np.ndarray = self.damage(_digit_differences(sides)) & ~_two_valid_numbers(sides)
        return result

    def damage(self, c: CharacterDifferences) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class CheckCharacter(_ForgivesDamage):
    kind: ClassVar[str] = "check_character"

    def damage(self, c: CharacterDifferences) -> np.ndarray:
        width = IDENTITY_WIDTH
        result: np.ndarray = (
            (c.left_length == width) & (c.right_length == width) & (c.differ[:, : width - 1].sum(axis=1) == 0)
        )
        return result


@dataclass(frozen=True)
class Transposition(Level):
    kind: ClassVar[str] = "transposition"

    def hits(self, sides: Sides, open_: np.ndarray) -> np.ndarray:
        c = _digit_differences(sides)
        result: np.ndarray = c.same_length & c.swapped
        return result


@dataclass(frozen=True)
class OneDigit(_ForgivesDamage):
    kind: ClassVar[str] = "one_digit"

    def damage(self, c: CharacterDifferences) -> np.ndarray:
        result: np.ndarray = c.same_length & (c.count == 1)
        return result


@dataclass(frozen=True)
class FirstDigits(_ForgivesDamage):
    kind: ClassVar[str] = "first_digits"
    digits: int = 0

    @property
    def label(self) -> str:
        return f"first_{self.digits}_digits"

    def damage(self, c: CharacterDifferences) -> np.ndarray:
        digits = self.digits
        result: np.ndarray = (
            (c.left_length >= digits) & (c.right_length >= digits) & (c.differ[:, :digits].sum(axis=1) == 0)
        )
        return result


@dataclass(frozen=True)
class YearMonth(Level):
    kind: ClassVar[str] = "year_month"

    def hits(self, sides: Sides, open_: np.ndarray) -> np.ndarray:
        table, column = sides.table, sides.column
        months: np.ndarray = table.derived(
            f"month_codes:{column}",
            lambda: _month_codes(table, column),
        )
        result: np.ndarray = months[sides.left] == months[sides.right]
        return result


@dataclass(frozen=True)
class Plausible(Level):
    """The pair's ages fit the relation one row states to its household head."""

    kind: ClassVar[str] = "plausible"

    def hits(self, sides: Sides, open_: np.ndarray) -> np.ndarray:
        result: np.ndarray = _age_fit(sides) == 1
        return result


@dataclass(frozen=True)
class Fits(Level):
    """One row's school stage fits the other row's age in the enrolment year."""

    kind: ClassVar[str] = "fits"

    def hits(self, sides: Sides, open_: np.ndarray) -> np.ndarray:
        result: np.ndarray = _school_fit(sides) == 1
        return result


LEVEL_KINDS: Mapping[str, type[Level]] = {
    kind.kind: kind
    for kind in (
        Exact,
        SamePinyin,
        Placeholder,
        JaroWinkler,
        OneCharacter,
        CheckCharacter,
        Transposition,
        OneDigit,
        FirstDigits,
        YearMonth,
        Plausible,
        Fits,
        Else,
    )
}


def make_level(kind: str, **parameters: Any) -> Level:
    """The level of ``kind`` with its parameters (threshold, digits, term_frequency, m)."""
    return LEVEL_KINDS[kind](**parameters)


def _month_codes(table: PairTable, column: str) -> np.ndarray:
    """Per row, a code of its date's year and month (-1: none), read once per distinct date."""
    codes, dates = table.distinct(column)
    months = pd.factorize(pd.Series(dates, dtype=object).str[:6], use_na_sentinel=True)[0]
    per_row: np.ndarray = np.append(months, -1)[codes]
    return per_row


# --- what each field reads --------------------------------------------------------------
def _gaps(table: PairTable, column: str, gaps: Mapping[str, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """``age_gaps`` of each row's value of the column, read once per distinct value."""
    codes, values = table.distinct(column)
    low, high = age_gaps(pd.Series(values, dtype=object), gaps)
    return np.append(low, np.nan)[codes], np.append(high, np.nan)[codes]


def _age_fit(sides: Sides) -> np.ndarray:
    """1 where the pair's ages fit the relation one row states to its household head, 0
    where they do not, -1 where nothing can be said."""

    def compute() -> np.ndarray:
        table = sides.table
        low, high = table.derived("relation_gaps", lambda: _gaps(table, "relation", AGE_GAPS))
        head = table.derived("head_birth_number", lambda: as_numbers(table.records["head_birth"]))
        birth = table.derived("birth_number", lambda: as_numbers(table.records["birth_date"]))
        result = np.full(len(sides), -1, dtype=np.int8)
        for first, second in ((sides.left, sides.right), (sides.right, sides.left)):
            fit = fits_relation(low[first], high[first], head[first], birth[second])
            known = (result < 0) & (fit >= 0)
            result[known] = fit[known]
        return result

    found: np.ndarray = sides.derived("age_fit", compute)
    return found


def _school_fit(sides: Sides) -> np.ndarray:
    """1 where one row's school stage fits the other row's birth year, 0 where it does not,
    -1 where nothing can be said (no stage, no birth date, no year to age them at)."""

    def compute() -> np.ndarray:
        table = sides.table
        result = np.full(len(sides), -1, dtype=np.int8)
        year = table.derived("enrolment_year", lambda: enrolment_year(table.records))
        if year is None or "schooling" not in table.records:
            return result
        low, high = table.derived("school_gaps", lambda: _gaps(table, "schooling", SCHOOL_AGES))
        born = np.floor(table.derived("birth_number", lambda: as_numbers(table.records["birth_date"])) / 10_000)
        for first, second in ((sides.left, sides.right), (sides.right, sides.left)):
            age = year - born[second]
            known = (result < 0) & ~np.isnan(low[first]) & ~np.isnan(age)
            fits = (age >= low[first]) & (age <= high[first])
            result[known] = np.where(fits[known], 1, 0)
        return result

    found: np.ndarray = sides.derived("school_fit", compute)
    return found


def _value_missing(sides: Sides) -> np.ndarray:
    present = sides.table.present(sides.column)
    result: np.ndarray = ~(present[sides.left] & present[sides.right])
    return result


def _household_unknown(sides: Sides) -> np.ndarray:
    """Households of two departments are the same household only once a person links them
    (``joined_households``): an allowance household of one member that no person has tied to
    a registry household yet (a 特困 person supported alone, living in a registry household)
    says nothing either way of one, unless the keys agree."""
    table = sides.table
    one, registry = table.derived(
        "household_one_registry",
        lambda: (table.household_kind() == ONE_MEMBER, table.household_kind() == "registry"),
    )
    left, right = sides.left, sides.right
    one_and_registry = (one[left] & registry[right]) | (one[right] & registry[left])
    missing = _value_missing(sides)
    present = np.flatnonzero(~missing)
    unknown = missing.copy()
    unknown[present] = one_and_registry[present] & ~sides.same()[present]
    return unknown


@dataclass(frozen=True)
class FieldSpec:
    """A field the settings can compare: the record column it reads, the pairs it says
    nothing of, and the kinds of level it takes."""

    column: str
    kinds: frozenset[str]
    unknown: Callable[[Sides], np.ndarray] = _value_missing


_EQUALITY = frozenset({"exact", "else"})
FIELDS: Mapping[str, FieldSpec] = {
    "name": FieldSpec(
        "name", frozenset({"exact", "same_pinyin", "placeholder", "jaro_winkler", "one_character", "else"})
    ),
    "identity": FieldSpec(
        "id_digits", frozenset({"exact", "check_character", "transposition", "one_digit", "first_digits", "else"})
    ),
    "birth_date": FieldSpec("birth_date", frozenset({"exact", "year_month", "else"})),
    "sex": FieldSpec("sex", _EQUALITY),
    "county": FieldSpec("county", _EQUALITY),
    "village": FieldSpec("village", _EQUALITY),
    "household": FieldSpec("household", _EQUALITY, _household_unknown),
    "relation": FieldSpec("relation", _EQUALITY),
    # The programme a row places its person in (poverty registry, allowance, none).
    "programme": FieldSpec("programme", _EQUALITY),
    # The candidate's birth date against the household head's, given the row's relation to
    # the head: a son born before his father is someone else of the same name.
    "age_in_household": FieldSpec("birth_date", frozenset({"plausible", "else"}), lambda s: _age_fit(s) < 0),
    # A pupil's stage at school (registry) against the candidate's age in the enrolment year.
    "school_age": FieldSpec("birth_date", frozenset({"fits", "else"}), lambda s: _school_fit(s) < 0),
}


@dataclass(frozen=True)
class Comparison:
    """A field compared through an ordered list of levels (the last one ``else``)."""

    field: str
    levels: tuple[Level, ...]

    @property
    def spec(self) -> FieldSpec:
        return FIELDS[self.field]

    def compare(self, table: PairTable, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Level index per pair (-1 where the field says nothing of the pair)."""
        sides = Sides(table, left, right, self.spec.column)
        result = np.full(len(left), -1, dtype=np.int8)
        rows = np.flatnonzero(~self.spec.unknown(sides))
        if not len(rows):
            return result
        known = sides.take(rows)
        level_of = np.full(len(rows), len(self.levels) - 1, dtype=np.int8)
        open_ = np.ones(len(rows), dtype=bool)
        for index, level in enumerate(self.levels):
            if not open_.any():
                break
            take = open_ & level.hits(known, open_)
            level_of[take] = index
            open_ &= ~take
        result[rows] = level_of
        return result

    def level_of_pair(self, first: Mapping[str, Any], second: Mapping[str, Any]) -> int:
        """The level (-1: nothing to compare) of one pair of records given as column → value,
        by the same conditions that compare every candidate pair. What only a whole table
        states (the enrolment year a pupil's age is taken in) is read from the two rows."""
        records = pd.DataFrame({name: [first.get(name), second.get(name)] for name in PAIR_FIELDS}, dtype=object)
        return int(self.compare(PairTable(records), np.array([0]), np.array([1]))[0])

    def compare_values(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Levels of aligned values of the compared column (a person's against another's)."""
        records = pd.DataFrame({self.spec.column: np.concatenate([a, b]).astype(object)}, dtype=object)
        return self.compare(PairTable(records), np.arange(len(a)), len(a) + np.arange(len(b)))

    def indices(self, kinds: Iterable[str]) -> list[int]:
        """The indices of the levels whose kind is one of ``kinds``."""
        wanted = set(kinds)
        return [index for index, level in enumerate(self.levels) if level.kind in wanted]
