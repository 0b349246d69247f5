"""County tasks: the work of link and look-back split by county, so that counties can run
side by side (the orchestration maps them over workers) and give what the whole batch at
once gives.

A task is a group of counties, or every county no group names (``others``): given groups,
:func:`county_tasks` adds that last task, so nothing is left undone whatever the groups
miss. A row or finding of no county counts as county ``""``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Counties:
    """A county task: ``counties``, or with ``others`` every county not among them."""

    counties: frozenset[str]
    others: bool = False

    def holds(self, codes: np.ndarray) -> np.ndarray:
        """Per county code (``""``: none), whether it is this task's."""
        named: np.ndarray = np.isin(codes, sorted(self.counties))
        return ~named if self.others else named

    def __str__(self) -> str:
        listed = ",".join(sorted(code or '""' for code in self.counties))
        return f"counties other than {listed}" if self.others else f"counties {listed}"


def county_tasks(groups: Sequence[Collection[str]] | None) -> list[Counties | None]:
    """The groups of counties as tasks, then one for every county they do not name (None:
    one task for the whole batch)."""
    if groups is None:
        return [None]
    named = [str(county) for group in groups for county in group]
    if len(named) != len(set(named)):
        raise ValueError("a county is named in two groups: its work would be done twice")
    return [*(Counties(frozenset(map(str, group))) for group in groups), Counties(frozenset(named), others=True)]
