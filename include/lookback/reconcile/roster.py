"""The reconcile stage's last tables: the visit roster and the census extract, in the warehouse
(the publish stage writes them as files).

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

from sqlalchemy import Connection, delete

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


def _open_findings(connection: Connection, run_id: str, batch_id: str) -> dict[str, set[tuple[str, str]]]:
    """Per household key: the (finding_id, rule_code) of the findings open about it or its
    members after this run (found by it, or left open unchecked)."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for household_key, finding_id, rule_code in connection.execute(
        load_sql("reconcile/open_per_household"), {"run_id": run_id, "batch_id": batch_id}
    ):
        found[household_key].add((finding_id, rule_code))
    return found


def build_visit_roster(connection: Connection, warehouse: Warehouse, run_id: str, batch_id: str) -> dict[str, int]:
    """Store the run's visit roster; returns households per visit category."""
    params = {"batch_id": batch_id}
    households: dict[str, dict[str, Any]] = {}
    for row in rows_as_dicts(connection.execute(load_sql("reconcile/registry_households"), params)):
        row["visit_category"] = "ill_or_disabled" if row.pop("ill_or_disabled") else "registry"
        households.setdefault(row["household_key"], row)
    for row in rows_as_dicts(connection.execute(load_sql("reconcile/outside_households"), params)):
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
    Warehouse.insert_records(connection, roster, records)
    return {category: counts[category] for category in VISIT_CATEGORIES if counts[category]}


def build_census_extract(connection: Connection, warehouse: Warehouse, run_id: str, batch_id: str, as_of: date) -> int:
    """Store the run's census extract; returns its persons."""
    extract = warehouse.table("census_extract")
    connection.execute(delete(extract).where(extract.c.run_id == run_id))
    connection.execute(load_sql("reconcile/census_extract"), {"run_id": run_id, "batch_id": batch_id, "as_of": as_of})
    return int(connection.execute(load_sql("reconcile/census_persons"), {"run_id": run_id}).scalar_one())
