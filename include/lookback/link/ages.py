"""Ages a row implies: the years a relation to the household head allows between the head's
birth and a member's, and the ages at which pupils are found at each school stage."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

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


def age_gaps(relations: pd.Series, table: Mapping[str, tuple[int, int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The least and most years from the head's birth to a member's, per relation (NaN: none),
    by ``table`` (AGE_GAPS unless given)."""
    table = AGE_GAPS if table is None else table
    # A handful of relations among a million rows: each looked up once.
    codes, distinct = pd.factorize(relations.to_numpy(dtype=object), use_na_sentinel=True)
    gaps = [table.get(value) if isinstance(value, str) else None for value in distinct.tolist()]
    low = np.array([gap[0] if gap else np.nan for gap in gaps] + [np.nan], dtype=float)[codes]
    high = np.array([gap[1] if gap else np.nan for gap in gaps] + [np.nan], dtype=float)[codes]
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
    """``values`` as numbers (NaN where not one); text (dates as ``YYYYMMDD``, which repeat)
    converted once per distinct value."""
    if values.dtype != object:
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    codes, distinct = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
    numbers = pd.to_numeric(pd.Series(distinct, dtype=object), errors="coerce").to_numpy(dtype=float)
    return np.append(numbers, np.nan)[codes]


def enrolment_year(records: pd.DataFrame) -> int | None:
    """The latest enrolment year the records state: the year the exports describe."""
    if "enrolment" not in records:
        return None
    # An enrolment is ``scheme:year``: a handful of distinct values among a million rows.
    distinct = pd.Series(records["enrolment"].dropna().unique(), dtype=object)
    years = pd.to_numeric(distinct.str.rsplit(":", n=1).str[-1], errors="coerce")
    return int(years.max()) if years.notna().any() else None
