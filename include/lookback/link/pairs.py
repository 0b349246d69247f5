"""Pairs of records as arrays: the table the comparisons read, the two sides of a set of
pairs, and strings compared position by position."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from lookback.standardise.names import PLACEHOLDER_PATTERN


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted: ``np.unique`` by a sort (numpy's own hashes the values,
    which at a million integers took a hundred times as long)."""
    ordered = np.sort(values)
    distinct: np.ndarray = ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])] if len(ordered) else ordered
    return distinct


def distinct_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` of a flat array, by one sort."""
    order = np.argsort(values)
    ordered = values[order]
    first = np.concatenate([[True], ordered[1:] != ordered[:-1]]) if len(ordered) else np.zeros(0, dtype=bool)
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def has_value(values: np.ndarray) -> np.ndarray:
    """Per value, whether it is truthy (not None, not empty), as ``bool`` gives it."""
    present: np.ndarray = np.asarray(values, dtype=object).astype(bool)
    return present


def has_placeholder(names: np.ndarray) -> np.ndarray:
    """Names with a character written as ``?``, ``*`` or pinyin."""
    return pd.Series(names, dtype=object).str.contains(PLACEHOLDER_PATTERN, regex=True).to_numpy(dtype=bool)


@dataclass(frozen=True)
class CharacterDifferences:
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


def fixed_width(values: np.ndarray, width: int) -> np.ndarray:
    """Strings as fixed-width text of ``width`` characters (bytes where all are ASCII: a
    quarter of the memory), as ``character_differences`` compares them."""
    try:
        return np.asarray(values, dtype=f"S{width}")
    except UnicodeEncodeError:
        return np.asarray(values, dtype=f"U{width}")


def character_differences(a: np.ndarray, b: np.ndarray, width: int) -> CharacterDifferences:
    """Aligned strings compared position by position (``a`` and ``b``: objects, or text of
    ``fixed_width``)."""
    left = a if a.dtype.kind in "SU" else np.asarray(a, dtype=f"U{width}")
    right = b if b.dtype.kind in "SU" else np.asarray(b, dtype=f"U{width}")
    chars_left = left.view(f"{left.dtype.kind}1").reshape(-1, width)
    chars_right = right.view(f"{right.dtype.kind}1").reshape(-1, width)
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
    return CharacterDifferences(np.char.str_len(left), np.char.str_len(right), differ, count, swapped)


class PairTable:
    """The records as the comparisons read them: each per-row array computed once."""

    def __init__(self, records: pd.DataFrame) -> None:
        self.records = records
        self._cache: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.records)

    def clear(self) -> None:
        """Let go of the arrays computed (they are computed again when asked for)."""
        self._cache.clear()

    def derived(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def column(self, name: str) -> np.ndarray:
        values: np.ndarray = self.derived(f"column:{name}", lambda: self.records[name].to_numpy(dtype=object))
        return values

    def codes(self, name: str) -> np.ndarray:
        """The column as integer codes, equal where the values are equal (-1: missing)."""
        return self.distinct(name)[0]

    def distinct(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The column as integer codes (-1: missing) and the distinct values they index:
        what is read of a value is read once per value, not once per row."""
        found: tuple[np.ndarray, np.ndarray] = self.derived(
            f"distinct:{name}", lambda: pd.factorize(self.column(name), use_na_sentinel=True)
        )
        return found

    def present(self, name: str) -> np.ndarray:
        values: np.ndarray = self.derived(f"present:{name}", lambda: has_value(self.column(name)))
        return values

    def own_number(self) -> np.ndarray:
        """Rows compared on a valid number of their own (not one set aside as someone else's)."""
        records = self.records

        def compute() -> np.ndarray:
            if "id" not in records:
                return np.zeros(len(records), dtype=bool)
            own: np.ndarray = (records["id"].notna() & (records["id"] == records["id_digits"])).to_numpy(dtype=bool)
            return own

        values: np.ndarray = self.derived("own_number", compute)
        return values

    def household_kind(self) -> np.ndarray:
        """The kind of each row's household key (registry, head, one)."""
        values: np.ndarray = self.derived("household_kind", lambda: self.per_row("household", _key_kinds, None))
        return values

    def per_row(self, name: str, compute: Callable[[np.ndarray], np.ndarray], missing: Any) -> np.ndarray:
        """Per row, ``compute`` of its value of the column, computed once per distinct value
        (``missing``: a missing value's)."""
        codes, values = self.distinct(name)
        of_value = compute(values)
        result: np.ndarray = np.append(of_value, np.array([missing], dtype=of_value.dtype))[codes]
        return result


def _key_kinds(keys: np.ndarray) -> np.ndarray:
    """The kind of each household key: what comes before its first colon."""
    kinds: np.ndarray = pd.Series(keys, dtype=object).str.split(":", n=1).str[0].to_numpy(dtype=object)
    return kinds


@dataclass
class Sides:
    """Pairs as a comparison sees them: the two rows of each and the column it reads."""

    table: PairTable
    left: np.ndarray
    right: np.ndarray
    column: str
    _derived: dict[str, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.left)

    def take(self, rows: np.ndarray) -> Sides:
        """These pairs' ``rows``, with what was derived of every pair (arrays) kept for them."""
        taken = Sides(self.table, self.left[rows], self.right[rows], self.column)
        for key, value in self._derived.items():
            if isinstance(value, np.ndarray) and value.shape[:1] == (len(self),):
                taken._derived[key] = value[rows]
        return taken

    @cached_property
    def a(self) -> np.ndarray:
        values: np.ndarray = self.table.column(self.column)[self.left]
        return values

    @cached_property
    def b(self) -> np.ndarray:
        values: np.ndarray = self.table.column(self.column)[self.right]
        return values

    def same(self) -> np.ndarray:
        """Pairs whose two values are equal (compared as codes, not as strings)."""
        same: np.ndarray = self.derived(
            "same", lambda: self.table.codes(self.column)[self.left] == self.table.codes(self.column)[self.right]
        )
        return same

    def of(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        values = self.table.column(name)
        return values[self.left], values[self.right]

    def derived(self, key: str, compute: Callable[[], Any]) -> Any:
        """What several levels of one comparison read of the same pairs, computed once."""
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]
