"""Hand-made tables for the look-back rules: staging rows, links and crosswalk, written
straight into a warehouse, and the run's findings read back.

The tests are the linkage here: they decide who is the same person (``Person``) and which
registry household a row belongs to (``Household``). Values are given as delivered (the
Chinese labels); the builder fills each staging column pair (code and label, number and
its status, birth date and problem) the way ingestion would, from the source definitions.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from sqlalchemy import create_engine, text

from lookback.reconcile.stage import reconcile_batch
from lookback.run import connect_warehouse
from lookback.sources import ColumnSpec, SourceSpec, load_source_specs
from lookback.standardise.identity import check_character, normalise_identity_number
from lookback.standardise.names import normalise_name
from lookback.standardise.places import place_key

AS_OF: Final = date(2020, 6, 30)
BATCH: Final = "rules-2020-06"
RUN: Final = "rules-run"
COUNTY: Final = "431224"
TOWNSHIP: Final = "红岩乡"
VILLAGE: Final = "红岩村"
SOURCES: Final = ("registry", "dibao", "insurance", "housing", "hukou")

_SPECS: Final = load_source_specs()


def number(county: str = COUNTY, born: str = "20100515", sequence: str = "123") -> str:
    """A valid 18-character identity number (GB 11643 check character) for this birth date."""
    first_17 = county + born + sequence
    result = first_17 + check_character(first_17)
    assert normalise_identity_number(result).number == result, result
    return result


def person_key(n: int) -> str:
    return f"P{n:09d}"


def household_key(n: int) -> str:
    return f"H{n:09d}"


@dataclass(frozen=True)
class Person:
    """One person as the linkage sees them: their id, home household key and number."""

    person_id: str
    household_key: str
    name: str
    number: str  # as delivered by default on the person's rows ("" = blank)


@dataclass(frozen=True)
class Household:
    """A registry household: its 户编号, its key, and the household-level fields every member row carries."""

    number: str
    key: str
    fields: Mapping[str, Any]


def staging_values(spec: SourceSpec, given: Mapping[str, Any], unmapped: Collection[str] = ()) -> dict[str, Any]:
    """The staging columns of one row from values as delivered (labels, raw numbers, dates).
    A code column named in ``unmapped`` may carry a label outside its code list (the code is
    then null, the label kept, as ingestion does); any other unknown label is a typo here."""
    values: dict[str, Any] = {}
    for name, value in given.items():
        column: ColumnSpec = spec.column(name)
        if column.type == "identity_number":
            found = normalise_identity_number(value)
            values |= {
                name: found.number,
                f"{name}_raw": found.cleaned or None,
                f"{name}_status": found.status,
                f"{name}_problem": found.problem,
                f"{name}_birth_date": found.birth_date,
                f"{name}_sex": found.sex,
            }
        elif column.type == "name":
            normal = normalise_name(value)
            values |= {
                name: value,
                f"{name}_raw": value,
                f"{name}_pinyin": normal.pinyin,
                f"{name}_placeholder": normal.has_placeholder,
            }
        elif column.type == "code":
            code = column.code_for(value) if value else None
            assert code is not None or not value or name in unmapped, f"{spec.source}.{name}: unknown label {value!r}"
            values |= {name: code, f"{name}_label": value or None}
        elif column.type == "code_list":
            labels = [part for part in (value or "").split(",") if part]
            codes = [column.code_for(label) for label in labels]
            assert all(codes), f"{spec.source}.{name}: unknown label in {value!r}"
            values |= {name: ",".join(str(code) for code in codes) or None, f"{name}_label": value or None}
        elif column.type == "county":
            values |= {name: value, f"{name}_label": value}
        elif column.type == "place":
            values |= {name: value, f"{name}_key": place_key(value)}
        else:
            values[name] = value
    return values


class Batch:
    """A batch of hand-made rows: ``person``/``household`` to make the linkage, then one
    method per source to add a row (returning its source_row), then :meth:`run`."""

    def __init__(self, batch_id: str = BATCH, not_delivered: Collection[str] = ()) -> None:
        self.batch_id = batch_id
        self.not_delivered = frozenset(not_delivered)  # sources whose export the batch lacks
        self.rows: dict[str, list[dict[str, Any]]] = {source: [] for source in SOURCES}
        self.links: list[dict[str, Any]] = []
        self.crosswalk: list[dict[str, Any]] = []
        self.reviews: list[dict[str, Any]] = []
        self.numbers: set[str] = set()  # every identity number delivered, to check masking
        self._persons = 0
        self._households = 0
        self._sequence = 101

    # --- the linkage -----------------------------------------------------------------

    def household(
        self,
        category: str | None = "一般贫困户",
        status: str | None = "未脱贫",
        claims_unsafe_house: str | None = "否",
    ) -> Household:
        """A registry household (户编号 and key, crosswalked) with its category, status and housing claim."""
        self._households += 1
        household = Household(
            number=f"431224101201{self._households:06d}",
            key=household_key(self._households),
            fields={"poverty_category": category, "poverty_status": status, "claims_unsafe_house": claims_unsafe_house},
        )
        self.crosswalk.append(
            {
                "anchor": f"registry:{household.number}",
                "key": household.key,
                "first_batch": self.batch_id,
                "created_at": datetime(2020, 6, 1, tzinfo=UTC),
            }
        )
        return household

    def outside_household(self) -> str:
        """A household key for people outside the registry (an allowance household, say)."""
        self._households += 1
        return household_key(self._households)

    def person(
        self, name: str, born: str = "19700101", *, home: Household | str | None = None, identity: str | None = None
    ) -> Person:
        """A person (new person_id) with a valid number for ``born`` unless ``identity`` is given."""
        self._persons += 1
        if identity is None:
            identity = number(born=born, sequence=f"{self._sequence:03d}")
            self._sequence += 2
        key = home.key if isinstance(home, Household) else home or self.outside_household()
        return Person(person_key(self._persons), key, name, identity)

    def member(
        self, home: Household, name: str, born: str = "19700101", relation: str = "户主", **labels: Any
    ) -> Person:
        """A new person listed once in the registry household ``home``."""
        person = self.person(name, born, home=home, identity=labels.pop("identity", None))
        self.registry(person, home, relation, **labels)
        return person

    def unmatched(self, person: Person) -> None:
        """The linkage tied this person's rows to nothing (no usable number of their own)."""
        for link in self.links:
            if link["person_id"] == person.person_id:
                link["match_method"] = "unmatched"

    def borrowed(self, person: Person) -> None:
        """The linkage found this person's rows carrying someone else's valid number (a child
        entered with a parent's): the number is carried, not the person's own."""
        for link in self.links:
            if link["person_id"] == person.person_id:
                link["identity_borrowed"] = True

    def review(self, registry_row: int, insurance_row: int) -> None:
        """A candidate pair the linkage could not decide: waiting in match_review."""
        self.reviews.append(
            {
                "batch_id": self.batch_id,
                "source_1": "insurance",
                "source_row_1": insurance_row,
                "source_2": "registry",
                "source_row_2": registry_row,
                "row_hash_1": f"insurance-{insurance_row}",
                "row_hash_2": f"registry-{registry_row}",
                "score": 5.0,
                "explanation": "hand-made candidate",
                "decision": None,
            }
        )

    # --- one row per source --------------------------------------------------------------

    def _add(
        self,
        source: str,
        person: Person,
        key: str,
        values: Mapping[str, Any],
        row_hash: str | None,
        unmapped: Collection[str] = (),
    ) -> int:
        source_row = len(self.rows[source]) + 1
        self.numbers |= {str(values[name]) for name in ("identity_number", "head_identity_number") if values.get(name)}
        staged = staging_values(_SPECS[source], values, unmapped)
        self.rows[source].append(
            {
                "batch_id": self.batch_id,
                "source_row": source_row,
                "source": source,
                "row_hash": row_hash or f"{source}-{source_row}",
                **staged,
            }
        )
        subject = _SPECS[source].subject_identity_number
        self.links.append(
            {
                "batch_id": self.batch_id,
                "source": source,
                "source_row": source_row,
                "person_id": person.person_id,
                "household_key": key,
                "match_method": "id_exact",
                "match_score": None,
                "conflicting_identity": False,
                "identity_number": staged.get(subject),
                "identity_birth_date": staged.get(f"{subject}_birth_date"),
                "identity_borrowed": False,
            }
        )
        return source_row

    def registry(
        self,
        person: Person,
        household: Household,
        relation: str = "户主",
        *,
        identity: str | None = None,
        row_hash: str | None = None,
        **labels: Any,
    ) -> int:
        """A registry row of ``person`` in ``household`` (number: the person's unless given)."""
        values = {
            "county_code": COUNTY,
            "township": TOWNSHIP,
            "village": VILLAGE,
            "household_number": household.number,
            "name": person.name,
            "identity_number": person.number if identity is None else identity,
            "relation_to_head": relation,
            "claims_insured": "是",
            **household.fields,
            **labels,
        }
        return self._add("registry", person, household.key, values, row_hash)

    def dibao(
        self,
        person: Person,
        head: Person,
        category: str = "农村低保",
        status: str = "正常",
        *,
        relation: str = "户主",
        identity: str | None = None,
        head_identity: str | None = None,
    ) -> int:
        """A roster row of ``person`` in the allowance household headed by ``head``."""
        values = {
            "county_code": COUNTY,
            "township": TOWNSHIP,
            "village": VILLAGE,
            "support_category": category,
            "head_name": head.name,
            "head_identity_number": head.number if head_identity is None else head_identity,
            "name": person.name,
            "identity_number": person.number if identity is None else identity,
            "relation_to_head": relation,
            "status": status,
        }
        return self._add("dibao", person, person.household_key, values, None)

    def insurance(
        self,
        person: Person,
        year: int = 2020,
        status: str = "参保缴费",
        *,
        scheme: str = "城乡居民基本医疗保险",
        subsidy: str | None = "建档立卡贫困人口",
        identity: str | None = None,
    ) -> int:
        values = {
            "name": person.name,
            "identity_number": person.number if identity is None else identity,
            "county_code": COUNTY,
            "scheme": scheme,
            "year": year,
            "status": status,
            "subsidy_category": subsidy,
        }
        return self._add("insurance", person, person.household_key, values, None)

    def housing(
        self,
        head: Person,
        level: str | None,
        appraised: date = date(2019, 5, 1),
        renovation: str | None = "未改造",
    ) -> int:
        """An appraisal of the house whose head (in housing) is ``head``; ``level`` as
        delivered (blank, or a value outside A–D, is an unknown level)."""
        values = {
            "county_code": COUNTY,
            "township": TOWNSHIP,
            "village": VILLAGE,
            "head_name": head.name,
            "head_identity_number": head.number,
            "household_type": "建档立卡贫困户",
            "appraisal_level": level,
            "appraisal_date": appraised,
            "renovation_status": renovation,
        }
        return self._add("housing", head, head.household_key, values, None, unmapped=("appraisal_level",))

    def hukou(self, person: Person, reason: str = "死亡", on: date = date(2019, 12, 1)) -> int:
        values = {
            "name": person.name,
            "identity_number": person.number,
            "reason": reason,
            "cancellation_date": on,
            "county_code": COUNTY,
        }
        return self._add("hukou", person, person.household_key, values, None)

    # --- into the warehouse and back -------------------------------------------------------

    def _accounting(self) -> list[dict[str, Any]]:
        """``ingest_accounting``: every source ingested, unless named in ``not_delivered``."""
        rows = []
        for source in SOURCES:
            delivered = source not in self.not_delivered
            assert delivered or not self.rows[source], f"{source}: rows of a source not delivered"
            count = len(self.rows[source])
            rows.append(
                {
                    "batch_id": self.batch_id,
                    "source": source,
                    "status": "ingested" if delivered else "not_delivered",
                    "delivered": count,
                    "accepted": count,
                    "skipped": 0,
                    "quarantined": 0,
                    "value_problems": 0,
                    "ingested_at": datetime(2020, 6, 30, tzinfo=UTC),
                }
            )
        return rows

    def run(self, warehouse_url: str, as_of: date = AS_OF, run_id: str = RUN) -> Findings:
        """Write the tables, look back, and return the run's findings."""
        warehouse = connect_warehouse(warehouse_url)
        try:
            with warehouse.engine.begin() as connection:
                connection.execute(warehouse.table("ingest_accounting").insert(), self._accounting())
                for source in SOURCES:
                    table = warehouse.staging(source)
                    rows = [
                        {column.name: row.get(column.name) for column in table.columns} for row in self.rows[source]
                    ]
                    if rows:
                        connection.execute(table.insert(), rows)
                # An earlier batch of the same households crosswalked them already.
                known = {anchor for (anchor,) in connection.execute(text("select anchor from household_crosswalk"))}
                for name, rows in (
                    ("person_links", self.links),
                    ("household_crosswalk", [row for row in self.crosswalk if row["anchor"] not in known]),
                    ("match_review", self.reviews),
                ):
                    if rows:
                        connection.execute(warehouse.table(name).insert(), rows)
            reconcile_batch(warehouse, self.batch_id, as_of, run_id)
            with warehouse.engine.connect() as connection:
                observed = connection.execute(
                    text("select * from finding_observations where run_id = :run_id and superseded_at is null"),
                    {"run_id": run_id},
                )
                return Findings([dict(row._mapping) for row in observed])
        finally:
            warehouse.dispose()


def query(warehouse_url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of a query on the warehouse (the census extract, the runs, the findings …)."""
    engine = create_engine(warehouse_url)
    try:
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(text(sql), params)]
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Findings:
    """One run's observations."""

    rows: list[dict[str, Any]]

    def subjects(self, rule: str) -> set[str]:
        return {str(row["subject_key"]) for row in self.rows if row["rule_code"] == rule}

    def of(self, rule: str, subject: str) -> dict[str, Any]:
        matching = [row for row in self.rows if row["rule_code"] == rule and row["subject_key"] == subject]
        assert len(matching) == 1, (rule, subject, self.subjects(rule))
        return matching[0]
