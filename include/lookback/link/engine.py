"""Record linkage: every accepted row of every source assigned to a person.

Two passes, as census offices link:

1. **Deterministic**: rows whose valid, normalised identity numbers agree and whose names are
   compatible (equal, same pinyin, a placeholder that fits, one character apart in a name
   of three or more) form a person (``id_exact``). A row whose name does not fit the others
   carrying its number holds someone else's number (a child entered with a parent's): its
   number is set aside and the row goes to the second pass.
2. **Probabilistic** (Fellegi–Sunter): the remaining rows are compared with candidates
   found by the blocking rules; each comparison falls into a level, each level carries a
   match weight log2(m/u), with m estimated from the deterministic links (or fixed in the
   settings where those cannot teach it) and u from random pairs, and exact names weighted
   by how common the name is. A row joins the person of its best candidate when the weight
   reaches ``accept`` and beats the best other person by ``margin``; between ``review``
   and there, the pair goes to people (``match_review``).

Everything is vectorised over pandas frames or done once per distinct value; nothing loops
over pairs in Python except the string comparisons, which rapidfuzz does in C.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from lookback.link.config import Comparison, LinkageSettings
from lookback.standardise.dates import parse_date
from lookback.standardise.identity import number_ending_in_zeros
from lookback.standardise.names import PLACEHOLDER_PATTERN, characters_apart, name_slots, names_fit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkResult:
    """Per record: its cluster, how it was linked, and the weight of the deciding pair."""

    records: pd.DataFrame  # the records given, with cluster, match_method, match_score
    review: pd.DataFrame  # pairs for people: i, j, weight, explanation
    weights: Mapping[str, Mapping[str, float]]  # field → level label → weight
    pairs_by_rule: Mapping[str, int]


def _digits(text: Any) -> str:
    """Identity text usable for comparison: digits (and a final X), certificate suffix dropped."""
    if not isinstance(text, str) or not text or "E" in text or "." in text:
        return ""
    if len(text) in (20, 22):
        text = text[:18]
    return text if re.fullmatch(r"\d{5,17}[\dX]?", text) else ""


def prepare_records(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One frame of linkage records from per-source frames already in linkage field names.

    Each source frame has ``source_row`` and any of: name, pinyin, placeholder, id (valid
    number), id_text (cleaned delivered text), id_birth_date, id_sex, sex, birth_date,
    county, village, household, household_head.
    """
    parts = []
    for source, frame in frames.items():
        empty = pd.Series([None] * len(frame), index=frame.index, dtype=object)

        def column(name: str, frame: pd.DataFrame = frame, empty: pd.Series = empty) -> pd.Series:
            return frame.get(name, empty)

        part = pd.DataFrame({"source": source, "source_row": frame["source_row"].astype(int)})
        for name in ("name", "pinyin", "id", "county", "village", "programme"):
            part[name] = column(name)
        part["placeholder"] = [
            bool(value) if value == value and value is not None else False for value in column("placeholder")
        ]
        ids = part["id"].where(part["id"].notna(), None)
        part["id_digits"] = [
            valid if isinstance(valid, str) else _digits(raw) for valid, raw in zip(ids, column("id_text"), strict=True)
        ]
        part["birth_stated"] = [_date_key(value) for value in column("birth_date")]
        part["id_birth"] = [_date_key(value) for value in column("id_birth_date")]
        part["sex_stated"] = [value if isinstance(value, str) else None for value in column("sex")]
        part["id_sex"] = [value if isinstance(value, str) else None for value in column("id_sex")]
        part["relation"] = [value if isinstance(value, str) and value else None for value in column("relation")]
        part["schooling"] = [value if isinstance(value, str) and value else None for value in column("schooling")]
        # An enrolment (scheme and year): a person has one per scheme and year.
        part["enrolment"] = [
            f"{scheme}:{int(year)}" if isinstance(scheme, str) and year == year and year is not None else None
            for scheme, year in zip(column("scheme"), column("year"), strict=True)
        ]
        part["head_birth"] = [
            value[6:14] if isinstance(value, str) and len(value) == 18 else None for value in column("household_head")
        ]
        if "household" in frame:
            prefix, values = source, frame["household"]
        else:
            prefix, values = "head", column("household_head")
        part["household"] = [f"{prefix}:{value}" if isinstance(value, str) and value else None for value in values]
        parts.append(part)
    records = pd.concat(parts, ignore_index=True)
    for name in (
        "name",
        "pinyin",
        "id",
        "county",
        "village",
        "household",
        "birth_stated",
        "id_birth",
        "sex_stated",
        "id_sex",
    ):
        records[name] = records[name].astype(object).where(records[name].notna(), None)
    corroborate_numbers_ending_in_zeros(records)
    derive_birth_and_sex(records, np.zeros(len(records), dtype=bool))
    _head_births(records)
    return records


def corroborate_numbers_ending_in_zeros(records: pd.DataFrame) -> None:
    """Take as valid a number ending in ``000`` that passes every check when another
    department delivered the same 18 digits for a name that fits: Excel's damage does not
    repeat alike in two departments' systems, while a real number (one in 1,100 ends in 000)
    does. Uncorroborated, it stays suspect (no number)."""
    texts = records["id_digits"].to_numpy(dtype=object)
    found = {text: number_ending_in_zeros(text) for text in set(texts[records["id"].isna().to_numpy()]) if text}
    suspects = {text: number for text, number in found.items() if number is not None}
    if not suspects:
        return
    digits = records["id"].where(records["id"].notna(), records["id_digits"]).to_numpy(dtype=object)
    frame = pd.DataFrame(
        {
            "row": np.arange(len(records)),
            "digits": digits,
            "source": records["source"],
            "name": records["name"],
            "pinyin": records["pinyin"],
        }
    )
    frame = frame[frame["digits"].isin(list(suspects))]
    corroborated: list[int] = []
    for _digits, group in frame.groupby("digits", sort=False):
        if group["source"].nunique() < 2:
            continue
        names, pinyin = group["name"].to_numpy(dtype=object), group["pinyin"].to_numpy(dtype=object)
        sources = group["source"].to_numpy(dtype=object)
        for k, row in enumerate(group["row"].to_numpy()):
            if any(
                sources[other] != sources[k]
                and isinstance(names[k], str)
                and isinstance(names[other], str)
                and _compatible(names[k], pinyin[k], names[other], pinyin[other]) == COMPATIBLE
                for other in range(len(group))
            ):
                corroborated.append(int(row))
    if not corroborated:
        return
    numbers = [suspects[texts[row]] for row in corroborated]
    records.loc[corroborated, "id"] = [number.number for number in numbers]
    records.loc[corroborated, "id_digits"] = [number.number for number in numbers]
    records.loc[corroborated, "id_birth"] = [_date_key(number.birth_date) for number in numbers]
    records.loc[corroborated, "id_sex"] = [number.sex for number in numbers]
    log.info("%s numbers ending in 000 corroborated by another department", f"{len(corroborated):,}")


def _head_births(records: pd.DataFrame) -> None:
    """A registry row's head birth date: that of its household's head row (by its valid number)."""
    heads = records[(records["relation"] == "head") & records["household"].notna() & records["id_birth"].notna()]
    by_household = heads.drop_duplicates("household").set_index("household")["id_birth"]
    known = records["household"].map(by_household)
    records["head_birth"] = _objects(
        [a if a else (b if isinstance(b, str) else None) for a, b in zip(records["head_birth"], known, strict=True)],
        records.index,
    )


def derive_birth_and_sex(records: pd.DataFrame, foreign: np.ndarray) -> None:
    """Birth date and sex for comparison: from the row's valid number unless it is someone
    else's; else as stated in the row."""
    id_birth = [None if away else value for away, value in zip(foreign, records["id_birth"], strict=True)]
    id_sex = [None if away else value for away, value in zip(foreign, records["id_sex"], strict=True)]
    # Else the birth date that the surviving digits of an invalid number still give (a wrong
    # check character, digits lost to Excel's zeros, often a transposition): compare_pairs
    # leaves it out where the two numbers nearly agree, so one fault is not counted twice.
    digits_birth = [
        None if away else _birth_in_digits(digits) for away, digits in zip(foreign, records["id_digits"], strict=True)
    ]
    births = [a or b or c for a, b, c in zip(id_birth, records["birth_stated"], digits_birth, strict=True)]
    records["birth_date"] = _objects(births, records.index)
    records["birth_from_digits"] = [
        not a and not b and c is not None
        for a, b, c in zip(id_birth, records["birth_stated"], digits_birth, strict=True)
    ]
    records["sex"] = _objects([a or b for a, b in zip(id_sex, records["sex_stated"], strict=True)], records.index)


def _birth_in_digits(digits: Any) -> str | None:
    """``YYYYMMDD`` from the birth-date digits of an 18-digit text, when they are a date."""
    if not isinstance(digits, str) or len(digits) != 18:
        return None
    key = digits[6:14]
    parsed = parse_date(key) if key.isdigit() and "1900" <= key[:4] <= "2099" else None
    return key if parsed is not None and parsed.value is not None else None


def _objects(values: list[Any], index: pd.Index) -> pd.Series:
    """A column of Python objects, None for missing (pandas would otherwise store NaN in strings)."""
    return pd.Series(values, index=index, dtype=object)


def _date_key(value: Any) -> str | None:
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    if isinstance(value, str) and value:
        parsed = parse_date(value)
        return parsed.value.strftime("%Y%m%d") if parsed.value else None
    return None


# --- comparisons ------------------------------------------------------------------------
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


def _present(values: np.ndarray) -> np.ndarray:
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
            hit[candidates] = _present(pa) & (pa == pb)
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


def _age_gaps(
    relations: pd.Series, table: Mapping[str, tuple[int, int]] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The least and most years from the head's birth to a member's, per relation (NaN: none),
    by ``table`` (AGE_GAPS unless given)."""
    table = AGE_GAPS if table is None else table
    gaps = relations.map(lambda value: table.get(value) if isinstance(value, str) else None)
    low = gaps.map(lambda gap: gap[0] if gap else np.nan).to_numpy(dtype=float)
    high = gaps.map(lambda gap: gap[1] if gap else np.nan).to_numpy(dtype=float)
    return low, high


def _fits_relation(low: np.ndarray, high: np.ndarray, head_birth: np.ndarray, birth: np.ndarray) -> np.ndarray:
    """1 where a birth date (a YYYYMMDD number) fits the relation's gap to the head's birth,
    0 where it does not, -1 where nothing can be said."""
    usable = ~np.isnan(low) & ~np.isnan(head_birth) & ~np.isnan(birth)
    years = np.floor((birth - head_birth) / 10_000)  # whole years from the head's birth
    same_person = (low == 0) & (high == 0)
    fits = np.where(same_person, birth == head_birth, (years >= low) & (years <= high))
    return np.where(usable, fits.astype(np.int8), -1).astype(np.int8)


def _numbers(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def _age_levels(records: pd.DataFrame, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """0 where the pair's ages fit the relation one row states to its household head, 1
    where they do not, -1 where nothing can be said."""
    low, high = _age_gaps(records["relation"])
    head, birth = _numbers(records["head_birth"]), _numbers(records["birth_date"])
    result = np.full(len(left), -1, dtype=np.int8)
    for first, second in ((left, right), (right, left)):
        fit = _fits_relation(low[first], high[first], head[first], birth[second])
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
    low, high = _age_gaps(records["schooling"], SCHOOL_AGES)
    born = np.floor(_numbers(records["birth_date"]) / 10_000)
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


# Years from the head's birth to a member's that no household can have, by relation (a
# spouse forty years apart, a child born before the head was twelve): outside these bounds
# the number is someone else's. Wider than AGE_GAPS, which weighs what is merely unlikely.
POSSIBLE_GAPS = {
    "spouse": (-40, 40),
    "son": (12, 200),
    "daughter": (12, 200),
    "daughter_in_law": (0, 200),
    "son_in_law": (0, 200),
    "grandson": (25, 200),
    "granddaughter": (25, 200),
    "father": (-200, -12),
    "mother": (-200, -12),
}


def impossible_in_household(records: pd.DataFrame, cluster: np.ndarray, near: np.ndarray | None = None) -> np.ndarray:
    """Rows whose valid number (linked on it: ``cluster``) gives an age no one of the row's
    relation to its household's head can have (a spouse born the year before last, a son
    older than his father): the number is someone else's. Only where the head's birth is
    borne out: the head's number is linked on itself and another member's age fits it, or
    another department carries the head's number under a name that fits; and only where no
    other department carries the row's number under a name that fits."""
    low, high = _age_gaps(records["relation"], POSSIBLE_GAPS)
    household = records["household"].astype(object)
    linked = cluster >= 0
    is_head = (records["relation"] == "head").to_numpy() & linked & household.notna().to_numpy()
    heads = pd.DataFrame({"household": household[is_head], "birth": records["id_birth"][is_head]})
    heads = heads.drop_duplicates("household", keep=False)  # a household with two heads says nothing
    head_birth = _numbers(household.map(heads.set_index("household")["birth"]))
    checked = linked if near is None else linked | near
    fit = _fits_relation(low, high, head_birth, _numbers(records["id_birth"].where(checked)))
    borne_out = pd.Series(fit == 1, index=records.index).groupby(household, dropna=True).sum()
    sizes = pd.Series(cluster[linked]).value_counts()
    head_clusters = pd.Series(cluster[is_head], index=household[is_head].to_numpy())
    confirmed = head_clusters.map(sizes).ge(2).groupby(level=0).any()
    trusted = (household.map(borne_out).fillna(0).to_numpy() > 0) | household.map(confirmed).eq(True).to_numpy()
    # A number another department gives under a name that fits is the row's own: then it is
    # the relation or the household that is wrong (a person listed in a second household).
    sources = pd.Series(records["source"].to_numpy()[linked]).groupby(cluster[linked]).nunique()
    alone = pd.Series(cluster).map(sources).fillna(0).to_numpy() <= 1
    impossible: np.ndarray = (fit == 0) & trusted & alone
    return impossible


def compare_pairs(
    records: pd.DataFrame, left: np.ndarray, right: np.ndarray, comparisons: Sequence[Comparison]
) -> np.ndarray:
    """Level index per pair and comparison (-1: a value is missing), shape (pairs, comparisons).

    Every level is computed over arrays of pairs (in chunks, to bound memory); this is the
    only definition of the levels (:func:`level_of_pair` asks it about one pair).
    """
    out = np.empty((len(left), len(comparisons)), dtype=np.int8)
    columns = {field: records[field].to_numpy(dtype=object) for field in PAIR_FIELDS if field != "head_birth"}
    present = {field: _present(values) for field, values in columns.items()}
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


# The most persons a row left open is put to people with.
REVIEW_CANDIDATES = 3

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


# --- the two passes ---------------------------------------------------------------------
COMPATIBLE, NEAR, FOREIGN = 0, 1, 2


def _compatible(name: str | None, pinyin: str | None, modal: str | None, modal_pinyin: str | None) -> int:
    """How a row's name fits the name its number's owner goes by.

    COMPATIBLE links on the number; NEAR (two characters, one of them different: a
    look-alike, or a parent and child of one surname) is left to the second pass with its
    number still counting; FOREIGN means the number is someone else's.
    """
    if not name or not modal:
        return COMPATIBLE
    if name == modal or (pinyin and pinyin == modal_pinyin):
        return COMPATIBLE
    if names_fit(name, modal):
        return COMPATIBLE
    apart = characters_apart(name, modal)
    if apart == 1:
        return COMPATIBLE if len(name_slots(name)) >= 3 else NEAR
    return FOREIGN


def _owner_names(tally: pd.DataFrame) -> pd.DataFrame:
    """Per number, the name its owner goes by: the one that the most votes fit (the votes of
    every row whose name fits it), then a name written whole before one with a placeholder
    (王国* is a damaged 王国刚, never the other way round), then the most votes of its own.
    ``tally`` has one row per number and written name, with its votes."""
    tally = tally.assign(support=tally["vote"], damaged=tally["name"].str.contains(PLACEHOLDER_PATTERN, regex=True))
    several = tally["id"].duplicated(keep=False).to_numpy()
    support = tally["support"].to_numpy().copy()
    for _number, group in tally[several].groupby("id", sort=False):
        names, pinyins = group["name"].to_numpy(dtype=object), group["pinyin"].to_numpy(dtype=object)
        votes, damaged = group["vote"].to_numpy(), group["damaged"].to_numpy(dtype=bool)
        for position, index in enumerate(group.index):
            # A damaged name counts only the names it fits: 曾霞? is 曾霞生 written badly, and a
            # 曾玉玉 one character from the damaged form casts no vote for the owner.
            support[tally.index.get_loc(index)] = sum(
                vote
                for other, (name, pinyin, vote) in enumerate(zip(names, pinyins, votes, strict=True))
                if other == position
                or (
                    names_fit(name, names[position])
                    if damaged[position]
                    else _compatible(name, pinyin, names[position], pinyins[position]) == COMPATIBLE
                )
            )
    tally["support"] = support
    return tally.sort_values(
        ["id", "support", "damaged", "vote", "name"], ascending=[True, False, True, False, True], kind="stable"
    ).drop_duplicates("id")


def deterministic_clusters(records: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Cluster ids (-1 for rows left to the second pass) and a mask of rows whose number is someone else's."""
    n = len(records)
    cluster = np.full(n, -1, dtype=np.int64)
    foreign = np.zeros(n, dtype=bool)
    frame = pd.DataFrame(
        {
            "row": np.arange(n),
            "id": records["id"].to_numpy(dtype=object),
            "name": records["name"].to_numpy(dtype=object),
            "pinyin": records["pinyin"].to_numpy(dtype=object),
        }
    )
    stated_birth, id_birth = records["birth_stated"].to_numpy(dtype=object), records["id_birth"].to_numpy(dtype=object)
    stated_sex, id_sex = records["sex_stated"].to_numpy(dtype=object), records["id_sex"].to_numpy(dtype=object)
    has_id = frame["id"].notna().to_numpy()
    # A row that states a birth date or sex other than its number's carries someone else's number.
    contradicts = has_id & (
        (pd.notna(stated_birth) & (stated_birth != id_birth)) | (pd.notna(stated_sex) & (stated_sex != id_sex))
    )
    foreign |= contradicts
    candidates = frame[has_id & ~contradicts]
    # The owner's name: the one most rows fit, where a row whose stated birth date agrees
    # with the number counts as ten (the number is verified as its own).
    verified = pd.notna(stated_birth) & (stated_birth == id_birth)
    votes = candidates.assign(vote=np.where(verified[candidates["row"]], 10, 1)).dropna(subset=["name"])
    tally = votes.groupby(["id", "name"], sort=True).agg(vote=("vote", "sum"), pinyin=("pinyin", "first")).reset_index()
    tally = _owner_names(tally)
    modal = candidates.merge(
        tally.rename(columns={"name": "modal", "pinyin": "modal_pinyin"})[["id", "modal", "modal_pinyin"]],
        on="id",
        how="left",
    )
    numbers = pd.factorize(modal["id"], sort=True)[0]
    name, pinyin = modal["name"].to_numpy(dtype=object), modal["pinyin"].to_numpy(dtype=object)
    owner, owner_pinyin = modal["modal"].to_numpy(dtype=object), modal["modal_pinyin"].to_numpy(dtype=object)
    quick = pd.isna(name) | pd.isna(owner) | (name == owner) | (pd.notna(pinyin) & (pinyin == owner_pinyin))
    fit = np.full(len(modal), COMPATIBLE, dtype=np.int8)
    for k in np.flatnonzero(~quick):
        fit[k] = _compatible(name[k], pinyin[k], owner[k], owner_pinyin[k])
    rows = modal["row"].to_numpy()
    # A name close to the owner's is still someone else's when the owner is another member
    # of the row's own household: 罗娜 listed with the number of 罗海, the head of her
    # household, carries her father's number (close names run in families).
    undecided = np.flatnonzero(~quick & (fit != FOREIGN))
    if "household" in records and len(undecided):
        # The owner as a member is known by name or by its pinyin (萝静 in one export is 罗静).
        # A member whose own valid number is another is not the owner: a head 罗红 (written
        # 罗*) beside a daughter 罗红 of her own number carries her own.
        members = records[["household", "name", "pinyin", "id"]].dropna(subset=["household"])
        asked = pd.DataFrame(
            {
                "k": undecided,
                "household": records["household"].to_numpy(dtype=object)[rows[undecided]],
                "name": owner[undecided],
                "pinyin": owner_pinyin[undecided],
                "number": modal["id"].to_numpy(dtype=object)[undecided],
            }
        )
        by_name = asked.merge(members[["household", "name", "id"]].drop_duplicates(), on=["household", "name"])
        by_name = by_name[by_name["id"].isna() | (by_name["id"] == by_name["number"])]
        # By pinyin only for a name one character from the owner's: a name that fits it (肖?
        # for 肖JUN) is the owner's, whatever homophone a child bears (肖军).
        written = pd.Series(name[undecided], dtype=object).fillna("")
        apart = asked[
            [not names_fit(own, owner_name) for own, owner_name in zip(written, asked["name"].fillna(""), strict=True)]
        ]
        by_pinyin = apart.dropna(subset=["pinyin"]).merge(
            members[["household", "pinyin", "id"]].dropna(subset=["pinyin"]).drop_duplicates(),
            on=["household", "pinyin"],
        )
        by_pinyin = by_pinyin[by_pinyin["id"].isna() | (by_pinyin["id"] == by_pinyin["number"])]
        fit[np.union1d(by_name["k"].to_numpy(), by_pinyin["k"].to_numpy()).astype(np.int64)] = FOREIGN
    cluster[rows[fit == COMPATIBLE]] = numbers[fit == COMPATIBLE]
    foreign[rows[fit == FOREIGN]] = True
    # A member listed with the number its household's head is listed with carries the head's.
    borrowed = members_with_heads_number(records)
    cluster[borrowed] = -1
    foreign |= borrowed
    # So does a row whose number's age no one of its relation to its household's head can have
    # (a row linked on its number, or one left to the second pass with its number).
    near = np.zeros(n, dtype=bool)
    near[rows[fit == NEAR]] = True
    impossible = impossible_in_household(records, cluster, near)
    cluster[impossible] = -1
    foreign |= impossible
    return cluster, foreign


def members_with_heads_number(records: pd.DataFrame) -> np.ndarray:
    """Rows of a household member (a relation other than head) carrying the valid number a
    head row of the same household carries: a son listed with his father's number, whatever
    the two names (a father and son both named 杨凤)."""
    if not {"household", "relation"} <= set(records.columns):
        return np.zeros(len(records), dtype=bool)
    relation = records["relation"].to_numpy(dtype=object)
    keys = records["household"].astype(object) + "|" + records["id"].astype(object)
    stated = records["household"].notna().to_numpy() & records["id"].notna().to_numpy()
    heads = set(keys[stated & (relation == "head")])
    member = stated & pd.notna(relation) & (relation != "head")
    borrowed: np.ndarray = member & keys.isin(heads).to_numpy(dtype=bool)
    return borrowed


def same_written_number(records: pd.DataFrame, twin_of: np.ndarray, unresolved: np.ndarray) -> np.ndarray:
    """``twin_of`` with rows of the second pass of one name carrying the same 18 digits (a
    number that is not valid, with a wrong check character kept from row to row, or one set
    aside as someone else's: a child listed twice under a parent's number) made twins of the
    first of them: they are one person, decided once."""
    if not {"id_digits", "name"} <= set(records.columns):
        return twin_of
    digits = records["id_digits"].to_numpy(dtype=object)
    names = records["name"].to_numpy(dtype=object)
    written = unresolved & pd.notna(names) & (records["id_digits"].str.len() == 18).to_numpy()
    twin_of = twin_of.copy()
    if not written.any():
        return twin_of
    frame = pd.DataFrame({"row": np.flatnonzero(written), "digits": digits[written], "name": names[written]})
    frame = frame[twin_of[frame["row"].to_numpy()] == frame["row"].to_numpy()]  # not already a twin
    first = frame.groupby(["digits", "name"], sort=False)["row"].transform("min").to_numpy()
    twin_of[frame["row"].to_numpy()] = first
    return twin_of


def _blocking_keys(records: pd.DataFrame) -> pd.DataFrame:
    keys = pd.DataFrame(index=records.index)
    keys["county"] = records["county"]
    keys["name"] = records["name"]
    keys["pinyin"] = records["pinyin"]
    keys["birth_date"] = records["birth_date"]
    keys["sex"] = records["sex"]
    keys["household"] = records["household"]
    # The first two characters and the length (in characters, a pinyin syllable or ``?`` one)
    # of every name, and the given name of a name of three or more; on the side of the row
    # being decided, only of a name with a placeholder or a row with no number to block on:
    # 罗国* and 罗国na meet 罗国娜, 由霞金 (a look-alike typed) meets 田霞金 — pairs the name
    # and pinyin keys miss — and no other row pays for it.
    slots_of = [name_slots(name) if isinstance(name, str) else () for name in records["name"]]
    keys["placeholder_head"] = ["".join(slots[:2]) + f":{len(slots)}" if slots else None for slots in slots_of]
    keys["given_name"] = ["".join(slots[1:]) + f":{len(slots)}" if len(slots) >= 3 else None for slots in slots_of]
    # The first and last characters of a name of three or more: 张金兰 meets 张全兰, a look-alike
    # typed for the middle character.
    keys["name_ends"] = [slots[0] + slots[-1] + f":{len(slots)}" if len(slots) >= 3 else None for slots in slots_of]
    # The surname and the length (see _surname_length_pairs): 肖* meets 肖生, which the first
    # two characters of a name of two miss.
    keys["surname_length"] = [slots[0] + f":{len(slots)}" if len(slots) >= 2 else None for slots in slots_of]
    digits = records["id_digits"].fillna("")
    keys["id_digits"] = digits.where(digits.str.len() > 0)
    keys["id_first14"] = digits.where(digits.str.len() >= 14).str[:14]
    keys["id_last4"] = digits.where(digits.str.len().isin([15, 18])).str[-4:]
    return keys


def _surname_length_pairs(
    left_keys: pd.DataFrame,
    keys: pd.DataFrame,
    columns: list[str],
    records: pd.DataFrame,
    persons: np.ndarray,
) -> pd.DataFrame:
    """Pairs on the surname and length, where one of the two names has a placeholder: a row
    of the second pass (with a placeholder, or with neither number nor birth date) meets the
    rows of persons holding no row of its source: 肖* of the registry (a blank number) meets
    the enrolment 肖生 of a person not registered, not the enrolments of every registered 肖."""
    placeholder = records["placeholder"].to_numpy(dtype=bool)
    sources = records["source"].to_numpy(dtype=object)
    lhs = left_keys.dropna(subset=columns)[[*columns, "row"]]
    found = []
    for source, group in lhs.groupby(sources[lhs["row"].to_numpy()], sort=True):
        holds = np.zeros(len(records), dtype=bool)
        holds[persons[sources == source]] = True
        rhs = keys[~holds[persons]].dropna(subset=columns)[[*columns, "row"]]
        pairs = group.merge(rhs, on=columns, suffixes=("_l", "_r"))[["row_l", "row_r"]]
        either = placeholder[pairs["row_l"].to_numpy()] | placeholder[pairs["row_r"].to_numpy()]
        found.append(pairs[either])
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame({"row_l": [], "row_r": []}, dtype=np.int64)


def candidate_pairs(
    records: pd.DataFrame, unresolved: np.ndarray, settings: LinkageSettings, cluster: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Pairs (left always a row of the second pass) agreeing on every key of some blocking
    rule (``cluster``: the persons of the first pass, for the rule on surname and length)."""
    keys = _blocking_keys(records)
    keys["row"] = np.arange(len(records))
    left_keys = keys[unresolved].copy()
    numberless = (keys["id_digits"].isna().to_numpy() & records["birth_date"].isna().to_numpy())[unresolved]
    placeholder = records["placeholder"].to_numpy(dtype=bool)[unresolved]
    left_keys.loc[~(placeholder | numberless), "placeholder_head"] = None
    left_keys.loc[~numberless, ["given_name", "name_ends"]] = None
    left_keys.loc[~(placeholder | numberless), "surname_length"] = None
    found: list[pd.DataFrame] = []
    counts: dict[str, int] = {}
    for rule in settings.blocking:
        columns = list(rule.keys)
        if "surname_length" in columns:
            # The persons of the first pass; a row of the second pass is a person of its own.
            persons = _first_pass_roots(np.where(unresolved, -1, -1 if cluster is None else cluster))
            pairs = _surname_length_pairs(left_keys, keys, columns, records, persons)
        else:
            lhs = left_keys.dropna(subset=columns)[[*columns, "row"]]
            rhs = keys.dropna(subset=columns)[[*columns, "row"]]
            pairs = lhs.merge(rhs, on=columns, suffixes=("_l", "_r"))[["row_l", "row_r"]]
        pairs = pairs[pairs["row_l"] != pairs["row_r"]]
        counts[rule.name] = len(pairs)
        log.info("blocking rule %s: %s candidate pairs", rule.name, f"{len(pairs):,}")
        found.append(pairs)
    if not found:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), counts
    pairs = pd.concat(found, ignore_index=True)
    low = np.minimum(pairs["row_l"].to_numpy(), pairs["row_r"].to_numpy())
    high = np.maximum(pairs["row_l"].to_numpy(), pairs["row_r"].to_numpy())
    unique = pd.DataFrame({"a": low, "b": high}).drop_duplicates()
    return unique["a"].to_numpy(), unique["b"].to_numpy(), counts


def estimate_weights(records: pd.DataFrame, cluster: np.ndarray, settings: LinkageSettings) -> list[np.ndarray]:
    """Match weight per comparison level: log2(m/u), m from deterministic links, u from random pairs."""
    rng = np.random.default_rng(settings.seed)
    n = len(records)
    sample = min(settings.random_pairs, max(n * 4, 1000))
    left = rng.integers(0, n, sample)
    right = rng.integers(0, n, sample)
    keep = (left != right) & ~((cluster[left] == cluster[right]) & (cluster[left] >= 0))
    u_levels = compare_pairs(records, left[keep], right[keep], settings.comparisons)
    # Linked pairs: consecutive rows of each deterministic cluster.
    order = np.argsort(cluster, kind="stable")
    ordered = cluster[order]
    same = (ordered[1:] == ordered[:-1]) & (ordered[1:] >= 0)
    m_left, m_right = order[:-1][same], order[1:][same]
    if len(m_left) > settings.random_pairs:
        pick = rng.choice(len(m_left), settings.random_pairs, replace=False)
        m_left, m_right = m_left[pick], m_right[pick]
    m_levels = compare_pairs(records, m_left, m_right, settings.comparisons)
    weights = []
    for position, comparison in enumerate(settings.comparisons):
        count = len(comparison.levels)
        m_counts = np.bincount(m_levels[:, position][m_levels[:, position] >= 0], minlength=count).astype(float)
        u_counts = np.bincount(u_levels[:, position][u_levels[:, position] >= 0], minlength=count).astype(float)
        m = (m_counts + 0.5) / (m_counts.sum() + 0.5 * count)
        u = (u_counts + 0.5) / (u_counts.sum() + 0.5 * count)
        for index, level in enumerate(comparison.levels):
            if level.m is not None:
                m[index] = level.m
        weights.append(np.log2(m / u))
    return weights


def term_frequency_adjustment(
    records: pd.DataFrame, left: np.ndarray, levels: np.ndarray, comparisons: Sequence[Comparison]
) -> np.ndarray:
    """For names agreeing exactly, or in their pinyin: log2(u_average / u_value), so that 王伟
    agreeing counts less than 粟晓蓉 agreeing, and 李芳 for 理芳 (lifang) less than a rare
    homophone."""
    adjustment = np.zeros(len(left))
    for position, comparison in enumerate(comparisons):
        if comparison.field != "name":
            continue
        for index, level in enumerate(comparison.levels):
            if not level.term_frequency:
                continue
            values = records["pinyin" if level.level == "same_pinyin" else "name"]
            frequency = values.map(values.value_counts(normalize=True)).to_numpy()
            distinct = values.nunique() or 1
            hit = levels[:, position] == index
            adjustment[hit] += np.log2((1.0 / distinct) / frequency[left[hit]])
    return adjustment


def joined_households(households: pd.Series, cluster: np.ndarray) -> pd.Series:
    """Household keys made one where a person links them: the allowance household whose head
    is a registry person is that person's registry household, so that its members without a
    usable number are compared as members of the same household."""
    codes, keys = pd.factorize(households, use_na_sentinel=True)
    if len(keys) == 0:
        return households.astype(object)  # no row names a household
    parent = np.arange(len(keys))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    linked = pd.DataFrame({"cluster": cluster, "household": codes})
    linked = linked[(linked["cluster"] >= 0) & (linked["household"] >= 0)].drop_duplicates()
    linked = linked[linked.duplicated("cluster", keep=False)]
    for _, members in linked.groupby("cluster")["household"]:
        values = members.to_numpy()
        for other in values[1:]:
            a, b = find(int(values[0])), find(int(other))
            if a != b:
                parent[max(a, b)] = min(a, b)
    roots = np.array([find(i) for i in range(len(keys))], dtype=np.int64)
    joined = pd.Series(np.asarray(keys, dtype=object)[roots[np.clip(codes, 0, None)]], index=households.index)
    return joined.where(codes >= 0, None).astype(object)


def second_pass_view(records: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The deterministic pass, and the records as the second pass compares them: without
    numbers that are someone else's (they tell nothing about the row's person), with
    households joined through the persons just linked. Returns (view, cluster, foreign)."""
    cluster, foreign = deterministic_clusters(records)
    work = records.copy()
    work.loc[foreign, ["id_digits"]] = ""
    derive_birth_and_sex(work, foreign)
    # A head whose number is someone else's gives the household no head's birth date.
    heads = work[(work["relation"] == "head").to_numpy() & foreign & work["household"].notna().to_numpy()]
    borrowed = set(zip(heads["household"], heads["id_birth"], strict=True))
    if borrowed:
        from_borrowed = [
            (household, birth) in borrowed
            for household, birth in zip(work["household"], work["head_birth"], strict=True)
        ]
        work.loc[from_borrowed, "head_birth"] = None
    work["household"] = lone_households(joined_households(work["household"], cluster), duplicate_of(work))
    # An enrolment states neither village nor relation, a death no programme; the person
    # the row was linked to may: an enrolment of a namesake known to live in another
    # village, or known not to head their household, is not a candidate as good as the
    # appraised head's own; a death whose enrolment places its person in the registry is a
    # registry person's.
    work["village"] = of_persons(work["village"], cluster)
    # Relations as a household roster states them (an appraisal's head is only presumed).
    stated = work["household"].notna().to_numpy()
    work["relation"] = of_persons(work["relation"], cluster, stated)
    work["programme"] = of_persons(work["programme"], cluster)
    return work, cluster, foreign


def of_persons(values: pd.Series, cluster: np.ndarray, known: np.ndarray | None = None) -> pd.Series:
    """``values`` with the linked rows that state none given their person's, where the
    person's rows (of those ``known``) state one value."""
    named = values.notna().to_numpy() & (cluster >= 0)
    if known is not None:
        named &= known
    stated = pd.Series(values.to_numpy()[named], index=cluster[named]).groupby(level=0)
    value_of = stated.first()[stated.nunique() == 1]
    missing = values.isna().to_numpy() & (cluster >= 0)
    result = values.copy()
    result[missing] = pd.Series(cluster[missing]).map(value_of).to_numpy()
    return result.astype(object).where(result.notna(), None)


# The kind of household key given to an allowance household of one member that no person
# ties to a registry household.
ONE_MEMBER = "one"


def lone_households(households: pd.Series, twin_of: np.ndarray) -> pd.Series:
    """``households`` with each allowance household (``head:`` keys, not joined to a registry
    household) whose rows are one member, delivered once or twice, keyed ``one:``."""
    allowance = households.str.startswith("head:", na=False).to_numpy()
    if not allowance.any():
        return households
    members = pd.Series(twin_of[allowance]).groupby(households[allowance].to_numpy()).nunique()
    alone = households.map(members).eq(1).to_numpy() & allowance
    result = households.copy()
    result[alone] = ONE_MEMBER + ":" + households[alone].str.slice(len("head:"))
    return result


def link_records(records: pd.DataFrame, settings: LinkageSettings) -> LinkResult:
    """Link all records; returns each record's cluster and how it got there."""
    work, cluster, foreign = second_pass_view(records)
    alone = uncorroborated(records, cluster)
    cluster = np.where(alone, -1, cluster)
    unresolved = cluster < 0
    log.info(
        "deterministic pass: %s of %s rows linked on identity number (%s carry someone else's number)",
        f"{(~unresolved).sum():,}",
        f"{len(records):,}",
        f"{foreign.sum():,}",
    )
    level_weights = estimate_weights(work, cluster, settings)
    left, right, by_rule = candidate_pairs(work, unresolved, settings, cluster)
    same_cluster = (cluster[left] == cluster[right]) & (cluster[left] >= 0)
    left, right = left[~same_cluster], right[~same_cluster]
    # Put the row of the second pass on the left.
    swap = ~unresolved[left]
    left, right = np.where(swap, right, left), np.where(swap, left, right)
    levels = compare_pairs(work, left, right, settings.comparisons)
    counted_once(levels, settings.comparisons)
    numbered = records["id"].notna().to_numpy() & ~foreign
    claims = (alone[left] & numbered[right]) | (alone[right] & numbered[left])
    _doubt_alone_numbers(levels, claims, settings.comparisons)
    weight = np.zeros(len(left))
    for position, table in enumerate(level_weights):
        column = levels[:, position]
        weight += np.where(column >= 0, table[np.clip(column, 0, None)], 0.0)
    weight += term_frequency_adjustment(work, left, levels, settings.comparisons)
    log.info("probabilistic pass: %s candidate pairs compared", f"{len(left):,}")

    # Pairs whose identity numbers agree or nearly agree (a check character, a transposed
    # pair, one digit): evidence strong enough for a row already placed to bring in a person.
    # Agreeing on the first 15 digits is not: two people born the same day in one county do.
    vouched = np.zeros(len(left), dtype=bool)
    for position, comparison in enumerate(settings.comparisons):
        if comparison.field == "identity":
            vouched |= np.isin(levels[:, position], levels_named(comparison, AGREEING_NUMBERS))
    supported = _supported(records, left, right, levels, level_weights, settings)
    supported &= ~_without_place(claims, levels, settings.comparisons)
    assigned, method, score, review = _decide(
        records,
        cluster,
        unresolved,
        left,
        right,
        weight,
        levels,
        settings,
        vouched,
        _owners(records, cluster, foreign),
        supported,
        # Where no row holds a valid number (another data set: FEBRL), a placed row brings
        # in only what its number vouches for, as ever.
        numbered if numbered.any() else None,
        seldom_twice(work, cluster, settings.seldom_twice),
        person_facts(work, alone, settings, level_weights),
    )
    # A row whose number no other row carries keeps it, and its own person, unless the
    # second pass placed it with another person: then the number is someone else's.
    claimed = alone & _among_other_numbers(records, assigned, alone | foreign)
    kept = alone & ~claimed
    method[kept], score[kept] = "id_exact", np.inf
    # Nor is such a row put to people: short of a strong claim, its number is its own.
    review = review[~alone[review["i"].to_numpy(dtype=np.int64)]].reset_index(drop=True)
    foreign = foreign | claimed
    result = records.copy()
    # A valid number the row carries that is someone else's (a child entered with a parent's).
    result["borrowed"] = foreign & records["id"].notna().to_numpy()
    result["cluster"] = assigned
    result["match_method"] = method
    result["match_score"] = score
    weights = {
        comparison.field: {level.label: float(table[i]) for i, level in enumerate(comparison.levels)}
        for comparison, table in zip(settings.comparisons, level_weights, strict=True)
    }
    return LinkResult(records=result, review=review, weights=weights, pairs_by_rule=by_rule)


def uncorroborated(records: pd.DataFrame, cluster: np.ndarray) -> np.ndarray:
    """Rows linked on a valid number that no other row carries (a row delivered twice
    aside): nothing but the row itself says the number is its own. Such a row goes to the
    second pass as well, where a person the other evidence names strongly (an appraisal
    naming the head of a registry household, an allowance member listed with the rest of
    the household) can claim it, its number then being someone else's."""
    linked = cluster >= 0
    if not linked.any():
        return np.zeros(len(records), dtype=bool)
    rows = np.flatnonzero(linked)
    distinct = pd.Series(duplicate_of(records)[rows]).groupby(cluster[rows]).nunique()
    single = pd.Series(cluster).map(distinct).fillna(0).to_numpy() == 1
    # Only a row that places its person (a village): what else would name its person is
    # where it lives and with whom; an enrolment alone is most often an insured person of
    # no programme, whom a namesake of the registry must not claim.
    placed = records["village"].notna().to_numpy() if "village" in records else np.zeros(len(records), dtype=bool)
    result: np.ndarray = linked & single & placed
    return result


def _among_other_numbers(records: pd.DataFrame, assigned: np.ndarray, doubted: np.ndarray) -> np.ndarray:
    """Rows whose person holds a valid number other than the row's own, carried by a row
    whose number is not in doubt."""
    numbers = records["id"].to_numpy(dtype=object)
    vouching = pd.notna(numbers) & ~doubted
    held = pd.DataFrame({"person": assigned[vouching], "number": numbers[vouching]}).drop_duplicates()
    count = held.groupby("person").size()
    own = pd.DataFrame({"person": assigned, "number": numbers})
    holds_own = own.merge(held.assign(found=True), on=["person", "number"], how="left")["found"].eq(True).to_numpy()
    others = pd.Series(assigned).map(count).fillna(0).to_numpy() - holds_own
    return others > 0


def _without_place(claims: np.ndarray, levels: np.ndarray, comparisons: Sequence[Comparison]) -> np.ndarray:
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
        return np.isin(levels[:, position[field]], levels_named(comparisons[position[field]], {name}))

    household_unknown = levels[:, position["household"]] < 0 if "household" in position else np.ones(len(claims), bool)
    together = level("household", "exact") | (
        household_unknown & level("village", "exact") & level("relation", "exact")
    )
    result: np.ndarray = claims & ~together
    return result


def _doubt_alone_numbers(levels: np.ndarray, alone: np.ndarray, comparisons: Sequence[Comparison]) -> None:
    """For pairs in which a row whose number nothing else carries meets a person of another
    valid number (``alone``), a disagreement of numbers, or of the birth dates read from
    them, is left unweighed (-1): the number may be borrowed. An agreement still counts, and
    against a row of no valid number (blank, damaged) a disagreement counts as ever."""
    for position, comparison in enumerate(comparisons):
        if comparison.field not in {"identity", "birth_date"}:
            continue
        column = levels[:, position]
        column[alone & (column >= 0) & ~np.isin(column, levels_named(comparison, AGREEING_NUMBERS))] = -1


def _supported(
    records: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    levels: np.ndarray,
    level_weights: Sequence[np.ndarray],
    settings: LinkageSettings,
) -> np.ndarray:
    """Pairs that agree on something beyond the name and where a person lives (``support`` in
    the settings): the others are put to people (a hukou death with no usable number and a
    namesake of the county), however strong the name."""
    if settings.support is None:
        return np.ones(len(left), dtype=bool)
    agrees = {
        comparison.field: np.where(
            levels[:, position] >= 0, level_weights[position][np.clip(levels[:, position], 0, None)], 0.0
        )
        > 0
        for position, comparison in enumerate(settings.comparisons)
    }

    def any_of(fields: Iterable[str]) -> np.ndarray:
        found = np.zeros(len(left), dtype=bool)
        for name in fields:
            if name in agrees:
                found |= agrees[name]
        return found

    supported = any_of(settings.support.any_of)
    sources = records["source"].to_numpy(dtype=object)
    for source, fields in settings.support.by_source.items():
        involved = (sources[left] == source) | (sources[right] == source)
        supported = np.where(involved, any_of(fields), supported)
    return supported


def _holding_keys(records: pd.DataFrame, settings: LinkageSettings) -> np.ndarray:
    """Per row, a code for what it gives its person to hold only once (-1: nothing)."""
    sources = records["source"].to_numpy(dtype=object)
    enrolments = records["enrolment"].to_numpy(dtype=object) if "enrolment" in records else None
    labels = np.full(len(records), None, dtype=object)
    for rule in settings.one_per_person:
        rows = sources == rule.source
        if rule.per == "enrolment":
            if enrolments is None:
                continue
            labels[rows] = [f"{rule.source}:{value}" if isinstance(value, str) else None for value in enrolments[rows]]
        else:
            labels[rows] = rule.source
    codes, _kinds = pd.factorize(pd.Series(labels, dtype=object), use_na_sentinel=True)
    return codes.astype(np.int64)


# What a row says about its person; two rows of one source saying the same are one row
# delivered twice.
_CONTENT_COLUMNS = (
    "source",
    "name",
    "id_digits",
    "birth_stated",
    "sex_stated",
    "county",
    "village",
    "household",
    "relation",
    "enrolment",
)


def duplicate_of(records: pd.DataFrame) -> np.ndarray:
    """Per row, the first row with the same content (itself when it has no twin)."""
    columns = [column for column in _CONTENT_COLUMNS if column in records]
    content = records[columns].astype(object).where(records[columns].notna(), "")
    codes = content.groupby(columns, sort=False, dropna=False).ngroup().to_numpy()
    first = pd.Series(np.arange(len(records))).groupby(codes).transform("min").to_numpy()
    return first.astype(np.int64)


def _roots(parent: np.ndarray) -> np.ndarray:
    """Every row's root in the union-find forest, by pointer jumping."""
    roots = parent.copy()
    while True:
        jumped = roots[roots]
        if np.array_equal(jumped, roots):
            return roots
        roots = jumped


@dataclass(frozen=True)
class SeldomTwice:
    """Sources a household seldom holds two rows of (an appraisal repeated). Per source and
    kind of household (``registry``, ``head``: an allowance household), the weights (bits)
    of the candidate's household holding another row of the source already (``held``) and
    of its holding none (``none``); each row's household code (-1: none) and each code's kind."""

    held: Mapping[tuple[str, int], float]
    none: Mapping[tuple[str, int], float]
    household: np.ndarray
    kind_of_household: np.ndarray

    def weights(self, pairs: pd.DataFrame, roots: np.ndarray, sources: np.ndarray) -> np.ndarray:
        """The weight each pair (``left_root``, ``target``) gains or loses: where the left
        person holds a row of such a source and the target is of a household, by whether
        that household holds another."""
        added = np.zeros(len(pairs))
        units = _units(roots, self.household)
        left_root, target = pairs["left_root"].to_numpy(), pairs["target"].to_numpy()
        of_household = units[target] < len(self.kind_of_household)
        kinds = np.where(of_household, self.kind_of_household[np.where(of_household, units[target], 0)], -1)
        for source in {source for source, _kind in self.held}:
            holders = np.unique(roots[sources == source])
            holds = np.zeros(len(roots), dtype=bool)
            holds[holders] = True
            per_unit = pd.Series(units[holders]).value_counts()
            in_unit = pd.Series(units[target]).map(per_unit).fillna(0).to_numpy()
            # The left person's own row does not count for its own household.
            in_unit -= holds[left_root] & (units[left_root] == units[target])
            for kind in np.unique(kinds[holds[left_root] & (kinds >= 0)]).tolist():
                if (source, kind) not in self.held:
                    continue  # no household of the kind holds one: nothing was learnt
                weighed = holds[left_root] & (kinds == kind)
                added[weighed] += np.where(in_unit[weighed] > 0, self.held[(source, kind)], self.none[(source, kind)])
        return added


def _first_pass_roots(cluster: np.ndarray) -> np.ndarray:
    """Each row's person as a row: a linked row's is its cluster's first row, any other row is its own."""
    linked = cluster >= 0
    roots = np.arange(len(cluster))
    roots[linked] = pd.Series(np.flatnonzero(linked)).groupby(cluster[linked]).transform("min").to_numpy()
    return roots


def _units(roots: np.ndarray, household: np.ndarray) -> np.ndarray:
    """Per person (root), the household its rows name (any of them), else itself past the
    household codes."""
    unit = len(roots) + np.arange(len(roots), dtype=np.int64)
    housed = np.flatnonzero(household >= 0)
    unit[roots[housed]] = household[housed]
    return unit


def seldom_twice(work: pd.DataFrame, cluster: np.ndarray, sources: Iterable[str]) -> SeldomTwice:
    """How often a household holding a row of each source holds a second (m of ``held``),
    against how often a household of the kind holds one at all (its u), among the
    households of the persons the first pass linked."""
    household, keys = pd.factorize(work["household"], use_na_sentinel=True)
    household = household.astype(np.int64)
    kind_names, kind_of_key = np.unique([str(key).split(":", 1)[0] for key in keys], return_inverse=True)
    kind_of_key = np.asarray(kind_of_key, dtype=np.int64)
    linked = cluster >= 0
    roots = _first_pass_roots(cluster)
    units = _units(roots, household)
    households_of_kind = np.bincount(kind_of_key, minlength=len(kind_names))
    held: dict[tuple[str, int], float] = {}
    none: dict[tuple[str, int], float] = {}
    for source in sources:
        # Rows alike but for what the linkage does not read (an appraisal repeated, its date
        # aside) are two rows here.
        rows = (work["source"] == source).to_numpy() & linked
        counts = pd.Series(units[roots[rows]]).value_counts()
        counts = counts[counts.index < len(keys)]  # households, not persons of none
        for code, total in enumerate(households_of_kind.tolist()):
            of_kind = counts[kind_of_key[counts.index.to_numpy()] == code]
            if of_kind.empty:
                continue
            twice = (int((of_kind >= 2).sum()) + 0.5) / (len(of_kind) + 1)
            holding = (len(of_kind) + 0.5) / (total + 1)
            held[(source, code)] = math.log2(twice / holding)
            none[(source, code)] = math.log2((1 - twice) / (1 - holding))
            log.info(
                "%s households holding a %s row: %.1f%%, a second of them %.1f%% (%+.1f bits held, %+.1f none)",
                kind_names[code],
                source,
                100 * holding,
                100 * twice,
                held[(source, code)],
                none[(source, code)],
            )
    return SeldomTwice(held, none, household, kind_of_key)


@dataclass(frozen=True)
class PersonFacts:
    """What a person's rows say alike of the person (a birth date, a sex), to weigh the pairs
    whose two rows could not be compared on it: an enrolment of one birth date is not taken
    into a person through its allowance row, which states none, when the person's registry
    number gives another. Per fact: the comparison's position, its level weights, and each
    row's value (None where the row states none, or only what a damaged number's digits give)."""

    comparisons: tuple[Comparison, ...]
    positions: tuple[int, ...]
    tables: tuple[np.ndarray, ...]
    values: tuple[np.ndarray, ...]

    def weights(self, pairs: pd.DataFrame, roots: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """The weight each pair (``left_root``, ``target``) gains or loses by comparing the two
        persons as they now stand on each fact its own rows left uncompared."""
        added = np.zeros(len(pairs))
        left_root, target = pairs["left_root"].to_numpy(), pairs["target"].to_numpy()
        uncompared_pairs = pairs["pair"].to_numpy()
        for comparison, position, table, values in zip(
            self.comparisons, self.positions, self.tables, self.values, strict=True
        ):
            stated = _present(values)
            by_person = pd.Series(values[stated]).groupby(roots[stated])
            agreed = by_person.first()[by_person.nunique() == 1]
            of_person = np.full(len(roots), None, dtype=object)
            of_person[agreed.index.to_numpy()] = agreed.to_numpy()
            a, b = of_person[left_root], of_person[target]
            weighed = np.flatnonzero((levels[uncompared_pairs, position] < 0) & _present(a) & _present(b))
            added[weighed] += table[fact_levels(comparison, a[weighed], b[weighed])]
        return added


def person_facts(
    work: pd.DataFrame, alone: np.ndarray, settings: LinkageSettings, level_weights: Sequence[np.ndarray]
) -> PersonFacts:
    """The facts of :class:`PersonFacts` that the settings compare, from the second pass's
    view: as a row states them, or as its number gives them where another row corroborates
    the number (an ``alone`` number may be someone else's; a damaged one's digits may be anyone's)."""
    found = [
        (comparison, position, level_weights[position])
        for position, comparison in enumerate(settings.comparisons)
        if comparison.field in FACT_FIELDS
    ]
    from_digits = work["birth_from_digits"].to_numpy(dtype=bool)
    values = []
    for comparison, _position, _table in found:
        column = work[comparison.field].to_numpy(dtype=object).copy()
        stated = work[f"{comparison.field.removesuffix('_date')}_stated"].to_numpy(dtype=object)
        column[alone] = stated[alone]
        if comparison.field == "birth_date":
            column[from_digits] = None
        values.append(column)
    comparisons, positions, tables = zip(*found, strict=True) if found else ((), (), ())
    return PersonFacts(tuple(comparisons), tuple(positions), tuple(tables), tuple(values))


def _held_conflicts(pairs: pd.DataFrame, roots: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Pairs whose two persons (``left_root``, ``target``) hold the same once-only thing."""
    holders = np.flatnonzero(keys >= 0)
    if len(holders) == 0 or pairs.empty:
        return np.zeros(len(pairs), dtype=bool)
    span = int(keys.max()) + 1
    held = pd.DataFrame({"left_root": roots[holders], "key": keys[holders]}).drop_duplicates()
    held_codes = np.unique(roots[holders].astype(np.int64) * span + keys[holders])
    exploded = pairs[["left_root", "target"]].reset_index().merge(held, on="left_root")
    hit = np.isin(exploded["target"].to_numpy(dtype=np.int64) * span + exploded["key"].to_numpy(), held_codes)
    return pairs.index.isin(exploded.loc[hit, "index"].to_numpy())


def _rank(pairs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each row's best person (the row of its best pair) and its best other person (the same
    columns; a row with no other candidate has weight -inf and right -1 there)."""
    best_per_target = pairs.sort_values("weight", ascending=False, kind="stable").drop_duplicates(["left", "target"])
    ranked = best_per_target.sort_values(["left", "weight"], ascending=[True, False], kind="stable")
    first = ranked.drop_duplicates("left")
    second = ranked[~ranked.index.isin(first.index)].drop_duplicates("left").set_index("left")
    runner = second.reindex(first["left"].to_numpy())
    runner["weight"] = runner["weight"].fillna(-math.inf)
    runner["right"] = runner["right"].fillna(-1).astype(np.int64)
    return first, runner.reset_index()


class _PairWeights:
    """The weight of every pair compared, looked up by its two rows in either order."""

    def __init__(self, left: np.ndarray, right: np.ndarray, weight: np.ndarray, rows: int) -> None:
        self.rows = rows
        keys = np.minimum(left, right).astype(np.int64) * rows + np.maximum(left, right)
        order = np.argsort(keys, kind="stable")
        self.keys, self.weights = keys[order], weight[order]

    def of(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Weights of the pairs (first[k], second[k]); -inf for a pair never compared."""
        keys = np.minimum(first, second).astype(np.int64) * self.rows + np.maximum(first, second)
        at = np.clip(np.searchsorted(self.keys, keys), 0, max(len(self.keys) - 1, 0))
        found = (len(self.keys) > 0) & (self.keys[at] == keys) & (first >= 0) & (second >= 0)
        return np.where(found, self.weights[at] if len(self.keys) else -math.inf, -math.inf)


def _owners(records: pd.DataFrame, cluster: np.ndarray, foreign: np.ndarray) -> np.ndarray:
    """Per row whose valid number was set aside as someone else's, a row of the person the
    number belongs to (-1 elsewhere): the row is not that person, whatever its name says."""
    owner = np.full(len(records), -1, dtype=np.int64)
    numbers = records["id"].to_numpy(dtype=object)
    linked = cluster >= 0
    first_of = pd.Series(np.flatnonzero(linked), index=numbers[linked]).groupby(level=0).first()
    carried = np.flatnonzero(foreign & pd.notna(numbers))
    found = pd.Series(numbers[carried]).map(first_of).to_numpy(dtype=float)
    owner[carried[~np.isnan(found)]] = found[~np.isnan(found)].astype(np.int64)
    return owner


def _decide(
    records: pd.DataFrame,
    cluster: np.ndarray,
    unresolved: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    weight: np.ndarray,
    levels: np.ndarray,
    settings: LinkageSettings,
    vouched: np.ndarray | None = None,
    owner: np.ndarray | None = None,
    supported: np.ndarray | None = None,
    numbered: np.ndarray | None = None,
    seldom: SeldomTwice | None = None,
    facts: PersonFacts | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """Accept, send to review, or leave each row of the second pass.

    A row's candidates are grouped by the person they belong to; the best person is taken
    when its weight reaches ``accept`` and beats the next person by ``margin``. Decisions
    are made in rounds: rows joined in one round make one person of what were several
    candidates, and the rows still open are decided again against the persons as they now
    stand (a registry row whose name matches two insurance rows of one person, one of them
    linked only in the first round, is not left in doubt between them). A person never
    comes to hold two rows of what ``one_per_person`` allows once; a row delivered twice is
    decided once, and its twin follows it (so are rows of one name whose invalid number is
    written alike: see ``same_written_number``). A row already placed brings in a further
    person when its number agrees with theirs at least in part (``vouched``) and that
    person is, by the same rules, its best candidate now: a registry row with a wrong check
    character that first joined its allowance row also joins its own enrolments. A row whose
    number was set aside as someone else's never joins the person that number belongs to;
    a pair that agrees on nothing but the name, county and sex (``supported``) is put to
    people rather than accepted. A row placed with a person that holds no valid number yet
    (``numbered``: rows carrying one of their own) may still bring in a further person: a
    registry row with a blank number that joined its allowance row (blank too) also joins
    its enrolments, as it would have alone.
    """
    n = len(records)
    parent = np.arange(n)
    first_of: dict[int, int] = {}
    for row in np.flatnonzero(~unresolved):
        parent[row] = first_of.setdefault(int(cluster[row]), int(row))
    twin_of = same_written_number(records, duplicate_of(records), unresolved)
    twins = np.flatnonzero((twin_of != np.arange(n)) & unresolved)
    for row in twins:
        parent[row] = parent[twin_of[row]]
    keys = _holding_keys(records, settings)
    sources = records["source"].to_numpy(dtype=object)
    held: dict[int, set[int]] = {}
    for row in np.flatnonzero(keys >= 0):
        held.setdefault(int(parent[row]), set()).add(int(keys[row]))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    method = np.where(unresolved, "unmatched", "id_exact").astype(object)
    score = np.where(unresolved, np.nan, np.inf)
    # A pair this weak can neither be accepted nor keep another from being accepted.
    floor = min(settings.review, settings.accept - settings.margin)
    keep = weight >= floor
    vouched = np.zeros(len(left), dtype=bool) if vouched is None else vouched
    supported = np.ones(len(left), dtype=bool) if supported is None else supported
    pending = pd.DataFrame(
        {
            "left": left[keep],
            "right": right[keep],
            "weight": weight[keep],
            "compared": weight[keep],
            "pair": np.flatnonzero(keep),
            "vouched": vouched[keep],
            "supported": supported[keep],
        }
    )
    # A pair of two rows of the second pass is a candidate for each of them: the registry row
    # that took another person need not leave its own enrolment behind.
    both = unresolved[pending["right"].to_numpy()]
    mirrored = pending[both].rename(columns={"left": "right", "right": "left"})
    pending = pd.concat([pending, mirrored[pending.columns]], ignore_index=True)
    decided = np.zeros(n, dtype=bool)
    decided[twins] = True
    pair_weights = _PairWeights(left, right, weight, n)
    # A row carrying someone else's number never joins that someone (``owner``).
    owner = np.full(n, -1, dtype=np.int64) if owner is None else owner
    apart: dict[int, set[int]] = {}
    for row in np.flatnonzero(owner >= 0):
        apart.setdefault(find(int(row)), set()).add(int(owner[row]))
        apart.setdefault(find(int(owner[row])), set()).add(int(row))

    def kept_apart(a: int, b: int) -> bool:
        return any(find(x) == b for x in apart.get(a, ())) or any(find(x) == a for x in apart.get(b, ()))

    while True:
        roots = _roots(parent)
        pending = pending.assign(left_root=roots[pending["left"].to_numpy()], target=roots[pending["right"].to_numpy()])
        pending = pending[pending["left_root"] != pending["target"]]
        owners = owner[pending["left"].to_numpy()]
        pending = pending[(owners < 0) | (roots[np.clip(owners, 0, None)] != pending["target"].to_numpy())]
        pending = pending[~_held_conflicts(pending, roots, keys)]
        # Weighed against the persons as they now stand, from the pair's own weight.
        adjusted = np.zeros(len(pending))
        if seldom is not None and seldom.held:
            adjusted += seldom.weights(pending, roots, sources)
        if facts is not None:
            adjusted += facts.weights(pending, roots, levels)
        pending = pending.assign(weight=pending["compared"].to_numpy() + adjusted)
        # A placed row stays only while a person its number vouches for is still apart.
        placed = decided[pending["left"].to_numpy()]
        brings = pending["vouched"].to_numpy(dtype=bool)
        if numbered is not None:
            holds_number = np.zeros(n, dtype=bool)
            holds_number[roots[numbered]] = True
            brings = brings | ~holds_number[pending["left_root"].to_numpy()]
        pending = pending.assign(brings=brings)
        may_bring = pending.loc[placed & brings, "left"].unique()
        pending = pending[~placed | pending["left"].isin(may_bring).to_numpy()]
        first, runner = _rank(pending)
        best, runner_up = first["weight"].to_numpy(), runner["weight"].to_numpy()
        # The best other person is no rival when it is itself, by its own pair with the best
        # candidate, the same person: two rows of one person are not two persons to choose from.
        rivals = pair_weights.of(first["right"].to_numpy(), runner["right"].to_numpy()) < settings.accept
        accepted = (best >= settings.accept) & ((best - runner_up >= settings.margin) | ~rivals)
        accepted &= first["supported"].to_numpy(dtype=bool)
        accepted &= ~decided[first["left"].to_numpy()] | first["brings"].to_numpy(dtype=bool)
        # Strongest decisions first, so that a chain of weaker ones cannot pull a person apart.
        chosen = first[accepted].sort_values("weight", ascending=False, kind="stable")
        # A row whose candidate is itself joining a third person this round is decided next
        # round, against that person as it will stand (an enrolment of another birth date is
        # not taken in through the allowance row that is joining its registry person).
        moving = chosen.drop_duplicates("left_root").set_index("left_root")["target"]
        destination = chosen["target"].map(moving)
        deferred = destination.notna().to_numpy() & (destination.to_numpy() != chosen["left_root"].to_numpy())
        if deferred.all():
            deferred[:] = False  # a ring of rows each joining the next: no one waits for ever
        chosen = chosen[~deferred]
        joined = 0
        for i, j, w in zip(
            chosen["left"].to_numpy(), chosen["right"].to_numpy(), chosen["weight"].to_numpy(), strict=True
        ):
            a, b = find(int(i)), find(int(j))
            if a == b or held.get(a, set()) & held.get(b, set()) or kept_apart(a, b):
                continue  # joined already, the person now holds what this row brings, or must stay apart
            parent[a] = b
            held[b] = held.get(b, set()) | held.pop(a, set())
            apart[b] = apart.get(b, set()) | apart.pop(a, set())
            # The pair decides both its rows: a row of the second pass taken by another is
            # placed as much as one that took (it brings in no further person on its own).
            for taken in (int(i), int(j)):
                if unresolved[taken] and not decided[taken]:
                    method[taken], score[taken], decided[taken] = "probabilistic", w, True
            joined += 1
        if joined == 0:
            break
    assigned = _roots(parent)
    method[twins], score[twins] = method[twin_of[twins]], score[twin_of[twins]]
    # People decide a row left open among the persons it could be: its best candidate and
    # every other person within reach of review (at most REVIEW_CANDIDATES of them).
    undecided = ~decided[first["left"].to_numpy()] & (best >= settings.review)
    candidates = pending[pending["left"].isin(first.loc[undecided, "left"]) & (pending["weight"] >= settings.review)]
    # Nor is a pair whose names have nothing in common put to people: at 200,000 persons such
    # pairs (two people born the same day in one county) were a third of the review, one in
    # three hundred of them a match.
    candidates = candidates[~_names_apart(levels, candidates["pair"].to_numpy(), settings.comparisons)]
    review_pairs = (
        candidates.sort_values(["left", "weight"], ascending=[True, False], kind="stable")
        .drop_duplicates(["left", "target"])
        .groupby("left", sort=False)
        .head(REVIEW_CANDIDATES)
    )
    # A pair both of whose rows are open is asked once.
    review_pairs = review_pairs.drop_duplicates("pair")
    review = pd.DataFrame(
        {
            "i": review_pairs["left"].to_numpy(),
            "j": review_pairs["right"].to_numpy(),
            "weight": review_pairs["weight"].to_numpy(),
            "levels": [levels[int(pair)].tolist() for pair in review_pairs["pair"]],
        }
    )
    return assigned, method, score, review


def _names_apart(levels: np.ndarray, pairs: np.ndarray, comparisons: Sequence[Comparison]) -> np.ndarray:
    """Of ``pairs`` (indices into ``levels``), those whose names compare at the last level."""
    for position, comparison in enumerate(comparisons):
        if comparison.field == "name":
            apart: np.ndarray = levels[pairs, position] == len(comparison.levels) - 1
            return apart
    return np.zeros(len(pairs), dtype=bool)


def explain_levels(
    levels: Iterable[int],
    settings: LinkageSettings,
    weights: Mapping[str, Mapping[str, float]],
    total: float | None = None,
) -> str:
    """``name exact (+9.1); identity null; birth_date exact (+7.3)…``: a pair's comparison in
    words; given the pair's total weight, what the name's frequency added is named too."""
    parts = []
    summed = 0.0
    for level_index, comparison in zip(levels, settings.comparisons, strict=True):
        if level_index < 0:
            parts.append(f"{comparison.field} missing (0)")
            continue
        level = comparison.levels[level_index]
        weight = weights[comparison.field][level.label]
        summed += weight
        parts.append(f"{comparison.field} {level.label} ({weight:+.1f})")
    if total is not None and abs(total - summed) >= 0.05:
        parts.append(f"name frequency ({total - summed:+.1f})")
    return "; ".join(parts)
