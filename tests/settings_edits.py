"""Edits of a loaded settings document at a key path (``comparisons[0].levels[3].m``), for
the settings loaders' table-driven tests: each case is one mistake made in a good file."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

Edit = Callable[[Any], Any]


def _parts(key: str) -> list[str | int]:
    return [int(part[1:-1]) if part.startswith("[") else part for part in re.findall(r"\[\d+\]|[^.\[\]]+", key)]


def _apply(document: Any, key: str, change: Callable[[Any, str | int], None]) -> Any:
    edited = copy.deepcopy(document)
    *parents, last = _parts(key)
    container = edited
    for part in parents:
        container = container[part]
    change(container, last)
    return edited


def put(key: str, value: Any) -> Edit:
    """The document with ``value`` at ``key`` (added when absent)."""

    def change(container: Any, last: str | int) -> None:
        container[last] = value

    return lambda document: _apply(document, key, change)


def drop(key: str) -> Edit:
    """The document without ``key``."""

    def change(container: Any, last: str | int) -> None:
        del container[last]

    return lambda document: _apply(document, key, change)


def rename(key: str, new_name: str) -> Edit:
    """The document with the key at ``key`` spelt ``new_name``, its value kept."""

    def change(container: Any, last: str | int) -> None:
        container[new_name] = container.pop(last)

    return lambda document: _apply(document, key, change)
