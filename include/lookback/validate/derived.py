"""Derived columns: what a suite checks that needs more than one cell of a row (one head per
household, a son younger than his father, the members an allowance household lists against
the number it is paid for), declared per source in its YAML under ``derived:`` and computed
by a small set of kinds (``lookback.validate.derive``), so that a new departmental export needs a YAML and a suite
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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from lookback.errors import KeyPath
from lookback.settings import SettingsModel, Text, YamlList, one_of


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


@dataclass(frozen=True)
class Kind:
    """What a kind of derived column takes: how many columns it reads, whether a group and a
    value to count (its computation is in ``lookback.validate.derive``)."""

    columns: int
    group: bool = False
    equals: bool = False


KINDS: Mapping[str, Kind] = {
    "present": Kind(1),  # the column has a value (a number survived normalisation)
    "whole_years": Kind(1),  # whole years from a date to the as-of date
    "count_in_group": Kind(1, group=True, equals=True),  # rows of the group whose column is `equals`
    "group_size": Kind(0, group=True),  # rows of the row's group
    "equal_numbers": Kind(2),  # the first (a number) equals the second; empty where it is blank
    "same_date": Kind(2),  # two dates are the same day
    "not_before": Kind(2),  # the first date is not before the second
    "not_after_as_of": Kind(1),  # a date is not after the as-of date
    "year_not_after_as_of": Kind(1),  # a year is not after the as-of year
    "age_fits_relation": Kind(4),  # birth date, relation, household, age
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


def described(derived: tuple[Derived, ...]) -> dict[str, str]:
    return {spec.name: spec.description for spec in derived}
