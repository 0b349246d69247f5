"""Derived columns: what a suite checks that needs more than one cell of a row (one head per
household, a son younger than his father, the members an allowance household lists against
the number it is paid for), declared per source in its YAML under ``derived:`` and computed
here by a small set of kinds, so that a new departmental export needs a YAML and a suite
file, no Python.

Each entry names the column it makes, its kind, the staged columns it reads and a
description (shown with the suite's results)::

    derived:
      heads_in_household:
        kind: count_in_group
        group: [household_number]
        column: relation_to_head
        equals: head
        description: rows of the row's household whose relation to the head is 户主

A check that cannot be made for a row (a date blank) is empty there, not false. Entries are
computed in the order given: one may read a column an earlier one made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

import pandas as pd
from pydantic import Field

from lookback.errors import KeyPath
from lookback.settings import SettingsModel, Text, YamlList, one_of

# Relations whose holder is younger (True) or older (False) than the head.
YOUNGER = frozenset({"son", "daughter", "son_in_law", "daughter_in_law", "grandson", "granddaughter"})
OLDER = frozenset({"father", "mother"})
HEAD_MINIMUM_AGE = 16


@dataclass(frozen=True)
class Derived:
    """One derived column: ``name`` made by ``kind`` from the staged ``columns``."""

    name: str
    kind: str
    columns: tuple[str, ...]  # what it reads, in the order the kind takes them
    description: str
    group: tuple[str, ...] = ()
    equals: str | None = None

    @property
    def reads(self) -> frozenset[str]:
        return frozenset((*self.columns, *self.group))

    def compute(self, frame: pd.DataFrame, as_of: date) -> pd.Series:
        return KINDS[self.kind].compute(self, frame, as_of)


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


@dataclass(frozen=True)
class Kind:
    """A kind of derived column: how many columns it reads, whether it takes a group and a
    value to count, and how it is computed."""

    compute: Callable[[Derived, pd.DataFrame, date], pd.Series]
    columns: int
    group: bool = False
    equals: bool = False


KINDS: Mapping[str, Kind] = {
    "present": Kind(_present, 1),  # the column has a value (a number survived normalisation)
    "whole_years": Kind(_whole_years, 1),  # whole years from a date to the as-of date
    "count_in_group": Kind(_count_in_group, 1, group=True, equals=True),  # rows of the group whose column is `equals`
    "group_size": Kind(_group_size, 0, group=True),  # rows of the row's group
    "equal_numbers": Kind(_equal_numbers, 2),  # the first (a number) equals the second; empty where it is blank
    "same_date": Kind(_same_date, 2),  # two dates are the same day
    "not_before": Kind(_not_before, 2),  # the first date is not before the second
    "not_after_as_of": Kind(_not_after_as_of, 1),  # a date is not after the as-of date
    "year_not_after_as_of": Kind(_year_not_after_as_of, 1),  # a year is not after the as-of year
    "age_fits_relation": Kind(_age_fits_relation, 4),  # birth date, relation, household, age
}


class DerivedModel(SettingsModel):
    """One entry of a source's ``derived:`` section, as written."""

    kind: Annotated[str, one_of(KINDS)]
    columns: YamlList[Text] = ()
    group: YamlList[Text] = ()
    equals: Text | None = None
    description: Annotated[str, Field(min_length=1)]


def derived_problems(entries: Mapping[str, DerivedModel], columns: frozenset[str]) -> list[tuple[KeyPath, str]]:
    """What the shape cannot say: each entry reads columns the source has (or an earlier
    entry made) and gives its kind what it takes."""
    problems: list[tuple[KeyPath, str]] = []
    known = set(columns)
    for name, entry in entries.items():
        where: KeyPath = ("derived", name)
        kind = KINDS[entry.kind]
        if len(entry.columns) != kind.columns:
            problems.append(((*where, "columns"), f"a {entry.kind} column reads {kind.columns} column(s)"))
        if bool(entry.group) != kind.group:
            problems.append(((*where, "group"), f"{entry.kind} {'needs' if kind.group else 'takes no'} group"))
        if (entry.equals is not None) != kind.equals:
            problems.append(((*where, "equals"), f"{entry.kind} {'needs' if kind.equals else 'takes no'} equals"))
        for index, column in enumerate(entry.columns):
            if column not in known:
                problems.append(((*where, "columns", index), f"names no column: {column!r}"))
        for index, column in enumerate(entry.group):
            if column not in known:
                problems.append(((*where, "group", index), f"names no column: {column!r}"))
        if name in columns:
            problems.append((where, "is a column of the source already"))
        known.add(name)
    return problems


def derived_columns(entries: Mapping[str, DerivedModel]) -> tuple[Derived, ...]:
    return tuple(
        Derived(
            name=name,
            kind=entry.kind,
            columns=tuple(entry.columns),
            description=entry.description,
            group=tuple(entry.group),
            equals=entry.equals,
        )
        for name, entry in entries.items()
    )


def with_derived(frame: pd.DataFrame, derived: tuple[Derived, ...], as_of: date) -> pd.DataFrame:
    """``frame`` with every derived column added, in order."""
    for spec in derived:
        frame[spec.name] = spec.compute(frame, as_of)
    return frame


def described(derived: tuple[Derived, ...]) -> dict[str, str]:
    return {spec.name: spec.description for spec in derived}


def kinds_in_words() -> Mapping[str, Any]:
    """Each kind and what it reads, for error messages and the docs."""
    return {name: {"columns": kind.columns, "group": kind.group, "equals": kind.equals} for name, kind in KINDS.items()}
