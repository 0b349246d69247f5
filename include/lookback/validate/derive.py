"""How each kind of derived column (``lookback.validate.derived``) is computed, over the
staged rows of one batch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date

import pandas as pd

from lookback.validate.derived import Derived

# Relations whose holder is younger (True) or older (False) than the head.
YOUNGER = frozenset({"son", "daughter", "son_in_law", "daughter_in_law", "grandson", "granddaughter"})
OLDER = frozenset({"father", "mother"})
HEAD_MINIMUM_AGE = 16


def _dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, errors="coerce")


def _nullable(values: pd.Series, known: pd.Series) -> pd.Series:
    """A boolean column that is empty where the check cannot be made (a nullable boolean
    column fills with NA where ``known`` is false)."""
    return values.astype("boolean").where(known)


def _group_key(frame: pd.DataFrame, group: tuple[str, ...]) -> pd.Series:
    """The rows' group: one column as it is (rows without a value in no group), or several
    joined, a blank part counting as empty text."""
    if len(group) == 1:
        return frame[group[0]]
    key = frame[group[0]].fillna("")
    for column in group[1:]:
        key = key + "|" + frame[column].fillna("")
    return key


def _present(spec: Derived, frame: pd.DataFrame, as_of: date) -> pd.Series:
    return frame[spec.columns[0]].notna()


def _whole_years(spec: Derived, frame: pd.DataFrame, as_of: date) -> pd.Series:
    born = _dates(frame[spec.columns[0]])
    years = as_of.year - born.dt.year
    before_birthday = (born.dt.month > as_of.month) | ((born.dt.month == as_of.month) & (born.dt.day > as_of.day))
    whole: pd.Series = (years - before_birthday.astype(int)).astype("Int64")
    return whole


def _count_in_group(spec: Derived, frame: pd.DataFrame, as_of: date) -> pd.Series:
    counted: pd.Series = (
        (frame[spec.columns[0]] == spec.equals).groupby(_group_key(frame, spec.group)).transform("sum").astype("Int64")
    )
    return counted


def _group_size(spec: Derived, frame: pd.DataFrame, as_of: date) -> pd.Series:
    key = _group_key(frame, spec.group)
    sized: pd.Series = key.map(key.value_counts()).astype("Int64")
    return sized


def _equal_numbers(spec: Derived, frame: pd.DataFrame, as_of: date) -> pd.Series:
    first = pd.to_numeric(frame[spec.columns[0]], errors="coerce")
    return _nullable(first == frame[spec.columns[1]], first.notna())


def _same_date(spec: Derived, frame: pd.DataFrame, as_of: date) -> pd.Series:
    first, second = _dates(frame[spec.columns[0]]), _dates(frame[spec.columns[1]])
    return _nullable(first == second, first.notna() & second.notna())


def _not_before(spec: Derived, frame: pd.DataFrame, as_of: date) -> pd.Series:
    first, second = _dates(frame[spec.columns[0]]), _dates(frame[spec.columns[1]])
    return _nullable(first >= second, first.notna() & second.notna())


def _not_after_as_of(spec: Derived, frame: pd.DataFrame, as_of: date) -> pd.Series:
    when = _dates(frame[spec.columns[0]])
    return _nullable(when <= pd.Timestamp(as_of), when.notna())


def _year_not_after_as_of(spec: Derived, frame: pd.DataFrame, as_of: date) -> pd.Series:
    year = pd.to_numeric(frame[spec.columns[0]], errors="coerce")
    return _nullable(year <= as_of.year, year.notna())


def _age_fits_relation(spec: Derived, frame: pd.DataFrame, as_of: date) -> pd.Series:
    """The head is HEAD_MINIMUM_AGE or older; children and grandchildren are younger than the
    head of their household, parents older (empty where a birth date is unknown). Reads the
    birth date, the relation to the head, the household and the age, in that order."""
    birth_column, relation_column, household_column, age_column = spec.columns
    is_head = frame[relation_column] == "head"
    birth = _dates(frame[birth_column])
    head_birth = (
        pd.DataFrame({"household": frame[household_column], "birth": birth})[is_head]
        .dropna()
        .drop_duplicates("household")
        .set_index("household")["birth"]
    )
    heads = frame[household_column].map(head_birth)
    relation = frame[relation_column]
    younger, older = relation.isin(YOUNGER), relation.isin(OLDER)
    fits = pd.Series(True, index=frame.index, dtype="boolean")
    fits[is_head] = (frame.loc[is_head, age_column] >= HEAD_MINIMUM_AGE).astype("boolean")
    fits[younger] = birth[younger] > heads[younger]
    fits[older] = birth[older] < heads[older]
    known = birth.notna() & (is_head | ((younger | older) & heads.notna()))
    return _nullable(fits, known)


COMPUTE: Mapping[str, Callable[[Derived, pd.DataFrame, date], pd.Series]] = {
    "present": _present,
    "whole_years": _whole_years,
    "count_in_group": _count_in_group,
    "group_size": _group_size,
    "equal_numbers": _equal_numbers,
    "same_date": _same_date,
    "not_before": _not_before,
    "not_after_as_of": _not_after_as_of,
    "year_not_after_as_of": _year_not_after_as_of,
    "age_fits_relation": _age_fits_relation,
}


def with_derived(frame: pd.DataFrame, derived: tuple[Derived, ...], as_of: date) -> pd.DataFrame:
    """``frame`` with every derived column added, in order."""
    for spec in derived:
        frame[spec.name] = COMPUTE[spec.kind](spec, frame, as_of)
    return frame
