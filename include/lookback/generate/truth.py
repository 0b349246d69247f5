"""The truth of a generated batch: who every row is, and every finding a perfect pipeline makes.

:func:`true_findings` applies the look-back rules of ``docs/rules.md`` to
the population's state, seen through the rows a pipeline can accept (a row broken by a
lost delimiter is quarantined, so what it says is unknown to the pipeline) and linked
perfectly. It is the reference the evaluation scores a run against.

What a perfect pipeline is assumed to recover, so that these quirks change no finding:

* a registry household from its members, even when some members' 户编号 cells are damaged
  (apostrophes, tabs, spaces and full-width digits are harmless; Excel's ``000`` or
  scientific form is not, and may even equal another household's number): the village,
  the other members, the relation to the head and the persons linked in other sources tell
  the household, so the truth never splits or merges one;
* every date, month, place, amount and count in any of its delivered forms, and 村代码,
  county codes and phone numbers whatever protection or damage they carry (no rule reads
  them);
* every person through any name quirk (linkage is perfect);
* the allowance roster's 户主姓名 and 户主身份证号 name the head for the reader only: a
  roster row's identity number is its member's (``lookback_rules.md``), so their quirks,
  someone else's number included, change no finding.

What the noise does change is followed as before: a subject's damaged identity number is
what the rules see (``ID_INVALID`` in the registry, someone else's or a parent's number an
``ID_CONFLICT``, an age taken from a valid number only), a row broken by a lost delimiter
or by shifted cells is quarantined, and a registry row exported twice is a
``DUPLICATE_PERSON``.

The truth folder holds ``manifest.json``, ``persons.csv`` and ``households.csv`` (the
state, read back by ``--evolve-from``), ``rows.csv`` (one line per delivered row, with
every quirk of the row as ``column:form`` items in ``quirks``) and ``findings.csv`` (one
line per true finding; ``planted`` says whether it was planted on purpose or arose from the
export noise).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date
from operator import attrgetter
from pathlib import Path
from typing import Any

from lookback.errors import LookbackError
from lookback.generate.exports import Export, RowTruth, household_appraisals, identities_of, numbers_shared
from lookback.generate.identities import Identity
from lookback.generate.people import Household, Person
from lookback.generate.plant import LABOUR_CAPABLE, Planted
from lookback.rules import RULE_SUBJECT_KINDS

ACCEPTED_KINDS = frozenset({"data", "duplicate"})
DIBAO_NAMES = ("低保贫困户", "低保脱贫户", "低保特困供养贫困户")
TEKUN_NAMES = ("特困供养贫困户", "特困供养脱贫户", "低保特困供养贫困户")
ORDINARY_NAMES = ("一般贫困户", "一般脱贫户")


@dataclass(frozen=True, order=True, slots=True)
class TrueFinding:
    rule_code: str
    subject_kind: str
    subject_key: str
    planted: bool = False


class _Seen:
    """The accepted rows, indexed the way the rules ask for them."""

    def __init__(self, exports: Sequence[Export], identities: dict[str, Identity]) -> None:
        self.identities = identities
        self.rows: dict[str, dict[str, list[RowTruth]]] = defaultdict(lambda: defaultdict(list))
        self.by_household: dict[str, dict[str, list[RowTruth]]] = defaultdict(lambda: defaultdict(list))
        self.all_rows: list[RowTruth] = []
        for export in exports:
            by_person, by_household = self.rows[export.source], self.by_household[export.source]
            accepted = [t for t in export.truths if t.row_kind in ACCEPTED_KINDS and t.person_key]
            for truth in accepted:
                by_person[truth.person_key].append(truth)
                by_household[truth.household_key].append(truth)
            self.all_rows += accepted

    def of(self, source: str, person: Person) -> list[RowTruth]:
        return self.rows[source].get(person.key, [])


def _birth_date(person: Person, seen: _Seen) -> date | None:
    """From the person's own number as their registry row gives it when valid there, else as
    another source gives it; never from a number a row carries that is someone else's (a
    child entered with a parent's number is not the parent's age)."""
    for source in ("registry", "insurance", "dibao", "housing", "hukou"):
        for truth in seen.of(source, person):
            found = seen.identities[truth.identity_written]
            if found.birth_date and found.number == person.identity_number:
                return found.birth_date
    return None


def _age(born: date | None, as_of: date) -> int | None:
    if born is None:
        return None
    return as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))


def _appraisal(row: RowTruth, household: Household, as_of: date) -> tuple[date, int, str, str]:
    """A housing row's appraisal date, row number, level and renovation status."""
    when, level, status = household_appraisals(household, as_of)[-1 if row.detail == "latest" else 0]
    return when, row.source_row, level, status


def true_findings(
    households: Sequence[Household],
    exports: Sequence[Export],
    as_of: date,
    planted: Iterable[Planted] = (),
    identities: dict[str, Identity] | None = None,
) -> list[TrueFinding]:
    """Every finding of every rule, as a perfect pipeline would make it from these exports
    (``identities``: what :func:`~lookback.generate.exports.identities_of` finds in them, when known)."""
    seen = _Seen(exports, identities if identities is not None else identities_of(exports))
    people = {person.key: person for household in households for person in household.members}
    found: set[tuple[str, str, str]] = set()

    def add(rule: str, key: str) -> None:
        found.add((rule, RULE_SUBJECT_KINDS[rule], key))

    by_key = {household.key: household for household in households}
    known_dead = {
        person_key
        for person_key, rows in seen.rows["hukou"].items()
        if rows and (died_on := people[person_key].died_on) is not None and died_on < as_of
    }
    in_registry = {key for key, rows in seen.rows["registry"].items() if rows}

    # Data quality: everyone listed.
    for key, rows in seen.rows["registry"].items():
        for row in rows:
            if not seen.identities[row.identity_written].is_valid:
                add("ID_INVALID", key)
                break
        if len(rows) > 1:
            add("DUPLICATE_PERSON", key)
    for persons in numbers_shared(seen.all_rows, seen.identities).values():
        if persons & in_registry:
            for key in persons:
                add("ID_CONFLICT", key)
    active_dibao_people = {
        row.person_key
        for household_key, rows in seen.by_household["dibao"].items()
        for row in rows
        if by_key[household_key].dibao_status == "正常"
    }
    for key in known_dead & (in_registry | active_dibao_people):
        add("DECEASED_LISTED", key)

    # People's situation: living registry people only.
    year = str(as_of.year)
    registry_households = {key: by_key[key] for key in seen.by_household["registry"]}
    insurance_rows = seen.rows["insurance"]
    for key in seen.rows["registry"]:  # in registry order, not a set's: the people's records lie in that order
        if key in known_dead:
            continue
        person = people[key]
        current = [row for row in insurance_rows.get(key, ()) if row.detail == year]
        insured = person.insurance == "paid" and bool(current)
        if not insured:
            add("MED_NOT_INSURED", key)
        if (person.claims_insured == "是") != insured:
            add("MED_CLAIM_MISMATCH", key)
        if insured and person.scheme == "城乡居民基本医疗保险" and not person.subsidy:
            add("MED_NOT_SUBSIDISED", key)
        age = _age(_birth_date(person, seen), as_of)
        if age is not None and 6 <= age <= 15 and person.schooling in {"", "辍学"}:
            add("EDU_OUT_OF_SCHOOL", key)

    for household_key, household in registry_households.items():
        listed = {row.person_key for row in seen.by_household["registry"][household_key]}
        living = [people[key] for key in listed if key not in known_dead]
        # An accounts rule: every household listed, a dead member's active support included.
        members = [people[key] for key in listed]
        held = [
            (member.key, by_key[row.household_key].dibao_category)
            for member in members
            for row in seen.of("dibao", member)
            if by_key[row.household_key].dibao_status == "正常"
        ]
        support = {category for _, category in held}
        has_dibao = "农村低保" in support
        has_tekun = any(category.startswith("农村特困") for category in support)
        category = household.poverty_category
        if (
            (category in DIBAO_NAMES and not has_dibao)
            or (category in TEKUN_NAMES and not has_tekun)
            or (category in ORDINARY_NAMES and support)
        ):
            add("DIBAO_CATEGORY_MISMATCH", household_key)
        if not living:
            continue
        # The appraisals of the house of any listed member whom housing names as head.
        housing_rows = [row for key in sorted(listed) for row in seen.rows["housing"].get(key, [])]
        unsafe = False
        if not housing_rows:
            add("HOUSING_NOT_APPRAISED", household_key)
        else:
            _, _, level, status = max(_appraisal(row, by_key[row.household_key], as_of) for row in housing_rows)
            unsafe = level in {"C", "D"} and status not in {"已竣工", "已验收"}
            if unsafe:
                add("HOUSING_UNSAFE", household_key)
            if (household.claims_unsafe_house == "是") != unsafe:
                add("HOUSING_CLAIM_MISMATCH", household_key)
        # A living-only rule: support still paid to a dead member is no one's safety net.
        living_supported = bool({person.key for person in living} & {key for key, _ in held})
        if household.poverty_status in {"未脱贫", "返贫"} and not living_supported:
            workers = [
                person
                for person in living
                if (age := _age(_birth_date(person, seen), as_of)) is not None
                and 16 <= age <= 64
                and person.labour in LABOUR_CAPABLE
            ]
            if not workers:
                add("NO_SAFETY_NET", household_key)
        if household.poverty_status.startswith("已脱贫") and any(
            "患有大病" in person.health or "残疾" in person.health for person in living
        ):
            med = any(("MED_NOT_INSURED", "person", person.key) in found for person in living)
            if med or unsafe:
                add("RELAPSE_RISK", household_key)

    for household_key, rows in seen.by_household["dibao"].items():
        household = by_key[household_key]
        active = household.dibao_status == "正常" and household.dibao_category in {"农村低保", "农村特困（分散供养）"}
        # The allowance household's members are those the roster lists (a dispersed 特困
        # person alone, not the rest of the family), as a registry row accepted shows them.
        if active and rows and not any(row.person_key in in_registry for row in rows):
            add("DIBAO_OUTSIDE_REGISTRY", household_key)

    planted_keys = {(p.rule_code, p.subject_kind, p.subject_key) for p in planted}
    # Sorted as the findings' own order sorts them: (rule, kind, key) is unique in ``found``.
    return [TrueFinding(rule, kind, key, (rule, kind, key) in planted_keys) for rule, kind, key in sorted(found)]


# --- the truth folder -----------------------------------------------------------------
PERSON_FIELDS = [f.name for f in fields(Person)]
HOUSEHOLD_FIELDS = [f.name for f in fields(Household) if f.name != "members"]
ROW_FIELDS = (
    "source",
    "source_row",
    "person_key",
    "household_key",
    "row_kind",
    "identity_noise",
    "identity_hard",
    "name_noise",
    "quirks",
)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _write(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([value if value.__class__ is str else _text(value) for value in row] for row in rows)


def _write_state(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Rows of the population's state, whose values are text, whole numbers, dates or None:
    the csv writer writes those as :func:`_text` does (None blank, a date in ISO form), so
    they go to it as they are (persons.csv is the second largest file)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _write_rows(path: Path, truths: Iterable[RowTruth]) -> None:
    """``rows.csv``: one line per delivered row (written field by field: it is the largest file)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(ROW_FIELDS)
        writer.writerows(
            (
                t.source,
                t.source_row,
                t.person_key,
                t.household_key,
                t.row_kind,
                t.identity_noise,
                "true" if t.identity_hard else "false",
                t.name_noise,
                t.quirks,
            )
            for t in truths
        )


def write_truth(
    folder: Path,
    manifest: dict[str, Any],
    households: Sequence[Household],
    exports: Sequence[Export],
    findings: Sequence[TrueFinding],
) -> None:
    """Write the truth folder (never inside the landing folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    person_fields = attrgetter(*PERSON_FIELDS)
    _write_state(
        folder / "persons.csv",
        ["member_index", *PERSON_FIELDS],
        ((index, *person_fields(p)) for h in households for index, p in enumerate(h.members)),
    )
    _write_state(
        folder / "households.csv",
        HOUSEHOLD_FIELDS,
        map(attrgetter(*HOUSEHOLD_FIELDS), households),
    )
    _write_rows(folder / "rows.csv", (truth for export in exports for truth in export.truths))
    _write(
        folder / "findings.csv",
        ("rule_code", "subject_kind", "subject_key", "planted"),
        ((f.rule_code, f.subject_kind, f.subject_key, f.planted) for f in findings),
    )
    (folder / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n", "utf-8"
    )


def _parse(kind: str, text: str) -> Any:
    if kind in {"date", "date | None"}:
        return date.fromisoformat(text) if text else None
    if kind in {"int", "int | None"}:
        return int(text) if text else None
    return text


def read_population(folder: Path) -> tuple[dict[str, Any], list[Household]]:
    """The manifest and the population state of an earlier batch's truth folder."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise LookbackError(f"{folder}: not a truth folder (no manifest.json)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    household_types = {f.name: str(f.type) for f in fields(Household)}
    person_types = {f.name: str(f.type) for f in fields(Person)}
    households: dict[str, Household] = {}
    with (folder / "households.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            values = {name: _parse(household_types[name], text) for name, text in row.items()}
            households[row["key"]] = Household(**values)
    with (folder / "persons.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            values = {name: _parse(person_types[name], text) for name, text in row.items() if name != "member_index"}
            households[row["household_key"]].members.append(Person(**values))
    return manifest, list(households.values())
