"""The run's deliverables in the warehouse: the visit roster and the census extract.

The visit roster (上门排查清单) lists every household a village cadre must visit: every
registry household (those with a member 患有大病 or 残疾 as 重病重残户), and every active
allowance or dispersed extreme-hardship household outside the registry — each with its head,
masked number, member count and the findings open about it or its members after the run
(found by it, or left open because the run could not check them), in route
order (county, township, village, head). The census extract (普查底册) is one row per
registry person with the linked attributes of every source
(``include/sql/reconcile/census_extract.sql``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date
from typing import Any, Final

from sqlalchemy import Connection, delete, text

from lookback.sql import load_sql
from lookback.standardise.identity import mask_identity_number
from lookback.warehouse import Warehouse, rows_as_dicts

_ROUTE: Final = ("county_code", "township", "village", "head_name")
VISIT_CATEGORIES: Final[Mapping[str, str]] = {
    "registry": "建档立卡户",
    "ill_or_disabled": "重病重残户（建档立卡）",
    "outside_registry_dibao": "档外低保户",
    "outside_registry_tekun": "分散供养特困户（档外）",
}
_REGISTRY_HOUSEHOLDS: Final = """
select household_key, county_code, township, village, head_name, head_identity_number, members, ill_or_disabled
from lookback_households where batch_id = :batch_id
"""
_OUTSIDE_HOUSEHOLDS: Final = """
select household_key, county_code, township, village, head_name, head_identity_number, members, support_category
from lookback_dibao_households
where batch_id = :batch_id and active = 1 and members_in_registry = 0
    and support_category in ('dibao', 'tekun_dispersed')
"""
# Which household a person's finding counts for: the registry households listing the
# person, and the allowance household of the person's roster rows.
_PERSON_HOUSEHOLDS: Final = """
select m.person_id, h.household_key
from lookback_household_members m
join lookback_households h on h.batch_id = m.batch_id and h.household_number = m.household_number
where m.batch_id = :batch_id
union
select x.person_id, d.household_key
from lookback_rows x
join lookback_dibao_households d on d.batch_id = x.batch_id and d.dibao_household = x.dibao_household
where x.batch_id = :batch_id and x.source = 'dibao'
"""


# The findings open after a run: those it found, and those it could not check (a source
# they are made from not delivered) that an earlier run left open.
_OPEN_AFTER_RUN: Final = """
select finding_id, rule_code, subject_kind, subject_key
from finding_observations
where run_id = :run_id and superseded_at is null
union
select f.finding_id, f.rule_code, f.subject_kind, f.subject_key
from finding_events e
join findings f on f.finding_id = e.finding_id
where e.run_id = :run_id and e.event = 'not_checked'
"""


def _open_findings(connection: Connection, run_id: str, batch_id: str) -> dict[str, set[tuple[str, str]]]:
    """Per household key: the (finding_id, rule_code) of the findings open about it or its
    members after this run (found by it, or left open unchecked)."""
    households_of: dict[str, set[str]] = defaultdict(set)
    for person_id, household_key in connection.execute(text(_PERSON_HOUSEHOLDS), {"batch_id": batch_id}):
        households_of[person_id].add(household_key)
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for finding_id, rule_code, kind, subject_key in connection.execute(text(_OPEN_AFTER_RUN), {"run_id": run_id}):
        keys = households_of.get(subject_key, set()) if kind == "person" else {subject_key}
        for key in keys:
            found[key].add((finding_id, rule_code))
    return found


def build_visit_roster(connection: Connection, warehouse: Warehouse, run_id: str, batch_id: str) -> dict[str, int]:
    """Store the run's visit roster; returns households per visit category."""
    params = {"batch_id": batch_id}
    households: dict[str, dict[str, Any]] = {}
    for row in rows_as_dicts(connection.execute(text(_REGISTRY_HOUSEHOLDS), params)):
        row["visit_category"] = "ill_or_disabled" if row.pop("ill_or_disabled") else "registry"
        households.setdefault(row["household_key"], row)
    for row in rows_as_dicts(connection.execute(text(_OUTSIDE_HOUSEHOLDS), params)):
        category = row.pop("support_category")
        row["visit_category"] = "outside_registry_dibao" if category == "dibao" else "outside_registry_tekun"
        households.setdefault(row["household_key"], row)
    found = _open_findings(connection, run_id, batch_id)
    ordered = sorted(
        households.values(),
        key=lambda row: (*(str(row[name] or "") for name in _ROUTE), row["household_key"]),
    )
    roster = warehouse.table("visit_roster")
    connection.execute(delete(roster).where(roster.c.run_id == run_id))
    records = []
    counts: dict[str, int] = defaultdict(int)
    for position, row in enumerate(ordered, start=1):
        items = found.get(row["household_key"], set())
        counts[row["visit_category"]] += 1
        records.append(
            {
                "run_id": run_id,
                "household_key": row["household_key"],
                "visit_category": row["visit_category"],
                "visit_category_label": VISIT_CATEGORIES[row["visit_category"]],
                "county_code": row["county_code"],
                "township": row["township"],
                "village": row["village"],
                "head_name": row["head_name"],
                "head_id_masked": mask_identity_number(row["head_identity_number"]),
                "members": int(row["members"]),
                "open_findings": len(items),
                "finding_codes": ",".join(sorted({code for _, code in items})),
                "route_order": position,
            }
        )
    Warehouse.insert(connection, roster, records)
    return {category: counts[category] for category in VISIT_CATEGORIES if counts[category]}


def build_census_extract(connection: Connection, warehouse: Warehouse, run_id: str, batch_id: str, as_of: date) -> int:
    """Store the run's census extract; returns its persons."""
    extract = warehouse.table("census_extract")
    connection.execute(delete(extract).where(extract.c.run_id == run_id))
    connection.execute(load_sql("reconcile/census_extract"), {"run_id": run_id, "batch_id": batch_id, "as_of": as_of})
    return int(
        connection.execute(
            text("select count(*) from census_extract where run_id = :run_id"), {"run_id": run_id}
        ).scalar_one()
    )
