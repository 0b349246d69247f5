"""County tasks: the work of link and look-back split by county, so that counties can run
side by side (the orchestration maps them over workers) and give what the whole batch at
once gives.

A task is a group of counties, or every county no group names (``others``): given groups,
:func:`county_tasks` adds that last task, so nothing is left undone whatever the groups
miss. A row or finding of no county counts as county ``""``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from sqlalchemy import func, select

if TYPE_CHECKING:
    from lookback.link.config import LinkageSettings
    from lookback.warehouse import Warehouse

# Airflow maps at most this many tasks of one task (``[core] max_map_length``).
MAX_TASKS: Final = 1024


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


# The county code of rows that state none: a group of its own (or with the lightest group,
# when no row lacks a county, so that a finding of no county still has its task).
NO_COUNTY: Final = ""


def county_label(code: str) -> str:
    """``431224 泸溪县`` (the division table's name), for task names and messages."""
    if code == NO_COUNTY:
        return "no county stated (未填县)"
    from lookback.standardise.places import county_resolver

    name = county_resolver().name_of(code) if code.isdigit() else None
    return f"{code} {name}" if name else code


def rows_per_county(warehouse: Warehouse, batch_id: str, settings: LinkageSettings | None = None) -> dict[str, int]:
    """The batch's accepted rows per county the linkage reads them in (``""``: none stated)."""
    from lookback.link.config import load_linkage_settings

    settings = settings or load_linkage_settings()
    counts: Counter[str] = Counter()
    with warehouse.engine.connect() as connection:
        for source, fields in settings.sources.items():
            if source not in warehouse.specs:
                continue
            table = warehouse.staging(source)
            column = fields.get("county")
            if column is None or column.startswith("="):
                rows = connection.execute(select(func.count()).where(table.c.batch_id == batch_id)).scalar_one()
                counts[column[1:] if column else NO_COUNTY] += int(rows)
                continue
            query = select(table.c[column], func.count()).where(table.c.batch_id == batch_id).group_by(table.c[column])
            for code, rows in connection.execute(query):
                counts[code.strip() if isinstance(code, str) else NO_COUNTY] += int(rows)
    return dict(counts)


def county_groups(
    warehouse: Warehouse, batch_id: str, max_tasks: int = MAX_TASKS, settings: LinkageSettings | None = None
) -> list[dict[str, Any]]:
    """The batch's counties in at most ``max_tasks`` groups of about equal rows, one county a
    group when there are few enough (a province has 122; Airflow maps at most 1024 tasks).

    Each group is ``{"counties": [codes], "label": "431224 泸溪县", "rows": n}``: codes and
    counts only. Rows stating no county form a group of their own (``""``); when every row
    states one, ``""`` still goes with the lightest group, for findings of no county.
    """
    if max_tasks < 1:
        raise ValueError(f"max_tasks must be at least 1, not {max_tasks}")
    counts = rows_per_county(warehouse, batch_id, settings)
    if not counts:
        raise ValueError(f"batch {batch_id} has no accepted rows: ingest it first")
    named = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    groups: list[list[str]] = [[] for _ in range(min(max_tasks, len(named)))]
    rows = [0] * len(groups)
    # The largest first, each to the lightest group so far (ties: the first).
    for code, count in named:
        lightest = min(range(len(groups)), key=lambda index: (rows[index], index))
        groups[lightest].append(code)
        rows[lightest] += count
    if NO_COUNTY not in counts:
        lightest = min(range(len(groups)), key=lambda index: (rows[index], index))
        groups[lightest].append(NO_COUNTY)
    result = []
    for group, total in zip(groups, rows, strict=True):
        codes = sorted(group)
        labelled = [code for code in codes if counts.get(code)] or codes
        label = county_label(labelled[0])
        if len(labelled) > 1:
            label += f" and {len(labelled) - 1} more"
        result.append({"counties": codes, "label": label, "rows": total, "first": labelled[0]})
    # In code order, the rows of no county last.
    result.sort(key=lambda group: (group["first"] == NO_COUNTY, group.pop("first")))
    return result
