"""The reconcile stage's last tables: the visit roster and the census extract, in the warehouse
(the publish stage writes them as files).

The visit roster (上门排查清单) lists every household a village cadre must visit: every
registry household (those with a member 患有大病 or 残疾 as 重病重残户), and every active
allowance or dispersed extreme-hardship household outside the registry — each with its head,
masked number, members (named, with relation, age and health), and the findings open about
it or its members after the run (found by it, or left open because the run could not check
them), as codes and as the items to check in words, in route order (county, township,
village, head). Townships and villages are named one way each: a township as the division
table names it, else, like a village, in the spelling most of its households use (石牌 and
石牌镇 are one stop on the route). The census extract (普查底册) is one row per
registry person with the linked attributes of every source
(``include/sql/reconcile/census_extract.sql``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from sqlalchemy import Connection, delete

from lookback.reconcile.catalogue import load_rules
from lookback.sql import load_sql
from lookback.standardise.identity import mask_identity_number, mask_identity_numbers_in
from lookback.standardise.places import county_resolver, place_key
from lookback.warehouse import Warehouse, rows_as_dicts

_ROUTE: Final = ("county_code", "township", "village", "head_name")
VISIT_CATEGORIES: Final[Mapping[str, str]] = {
    "registry": "建档立卡户",
    "ill_or_disabled": "重病重残户（建档立卡）",
    "outside_registry_dibao": "档外低保户",
    "outside_registry_tekun": "分散供养特困户（档外）",
}


@dataclass(frozen=True, order=True)
class OpenItem:
    """A finding open about a household or one of its members, as a cadre checks it."""

    rule_order: int  # the catalogue's order
    finding_id: str
    rule_code: str
    subject_name: str
    evidence: str


def _open_findings(connection: Connection, run_id: str, batch_id: str) -> dict[str, set[OpenItem]]:
    """Per household key: the findings open about it or its members after this run (found
    by it, or left open unchecked)."""
    order = {rule.code: index for index, rule in enumerate(load_rules())}
    found: dict[str, set[OpenItem]] = defaultdict(set)
    for household_key, finding_id, rule_code, subject_name, evidence in connection.execute(
        load_sql("reconcile/open_per_household"), {"run_id": run_id, "batch_id": batch_id}
    ):
        item = OpenItem(order.get(rule_code, len(order)), finding_id, rule_code, subject_name or "", evidence or "")
        found[household_key].add(item)
    return found


def check_items(items: Iterable[OpenItem]) -> str:
    """What a cadre is to check, in words: one numbered line per open finding, in the
    catalogue's order, its rule's title, whom it is about and what it rests on."""
    titles = {rule.code: rule.title_zh for rule in load_rules()}
    lines = []
    for number, item in enumerate(sorted(items), start=1):
        title = titles.get(item.rule_code, item.rule_code)
        who = f"（{item.subject_name}）" if item.subject_name else ""
        evidence = f"：{mask_identity_numbers_in(item.evidence, household_numbers=True)}" if item.evidence else ""
        lines.append(f"{number}. {title}{who}{evidence}")
    return "\n".join(lines)


def _members(connection: Connection, batch_id: str) -> dict[str, str]:
    """Per household key: its members in words, the head first, one per line, each with
    relation, age, and health or death where they matter (张三（户主，45岁）)."""
    listed: dict[str, dict[str, tuple[Any, ...]]] = defaultdict(dict)
    for row in connection.execute(load_sql("reconcile/roster_members"), {"batch_id": batch_id}):
        household_key, source, source_row, person_id = row[0], row[1], int(row[2]), row[3]
        order = (0 if row[5] == "head" else 1, source != "registry", source_row)
        known = listed[household_key].get(person_id)
        if known is None or order < known[0]:
            listed[household_key][person_id] = (order, *row[4:])
    members = {}
    for household_key, persons in listed.items():
        lines = []
        for _order, name, _relation, relation_label, health, health_label, age, living in sorted(persons.values()):
            notes = [str(relation_label or "关系不详")]
            if age is not None:
                notes.append(f"{age}岁")
            if health and health != "healthy" and health_label:
                notes.append(str(health_label))
            if living == 0:
                notes.append("已故")
            lines.append(f"{name or '（无姓名）'}（{'，'.join(notes)}）")
        members[household_key] = "\n".join(lines)
    return members


def _one_spelling(households: Iterable[dict[str, Any]]) -> None:
    """Name each township and village one way (in place): a township as the division table
    names it when one of the county's townships matches it (石牌 = 石牌镇), else, as a
    village, the spelling most of its households use (the longer one on a tie, then the
    first in code-point order). Names that no key can be made of stay as they are."""
    resolver = county_resolver()
    rows = list(households)
    official: dict[tuple[str, str], str] = {}
    for county in {str(row["county_code"] or "") for row in rows}:
        for township in resolver.townships(county):
            key = place_key(township.name)
            if key:
                official.setdefault((county, key), township.name)

    def most_used(counts: Counter[str]) -> str:
        return min(counts, key=lambda spelling: (-counts[spelling], -len(spelling), spelling))

    townships: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for row in rows:
        key = place_key(row["township"])
        if key:
            townships[(str(row["county_code"] or ""), key)][row["township"]] += 1
    township_names = {place: official.get(place) or most_used(spellings) for place, spellings in townships.items()}
    villages: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for row in rows:
        county = str(row["county_code"] or "")
        key = place_key(row["township"])
        if key:
            row["township"] = township_names[(county, key)]
        village_key = place_key(row["village"])
        if village_key:
            villages[(county, row["township"] or "", village_key)][row["village"]] += 1
    village_names = {place: most_used(spellings) for place, spellings in villages.items()}
    for row in rows:
        village_key = place_key(row["village"])
        if village_key:
            row["village"] = village_names[(str(row["county_code"] or ""), row["township"] or "", village_key)]


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
    _one_spelling(households.values())
    found = _open_findings(connection, run_id, batch_id)
    members = _members(connection, batch_id)
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
                "member_list": members.get(row["household_key"]) or None,
                "open_findings": len(items),
                "finding_codes": ",".join(sorted({item.rule_code for item in items})),
                "check_items": check_items(items) or None,
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
