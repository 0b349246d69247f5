"""What each department holds about the population, written as its export, with noise.

For every source, :class:`ExportBuilder` turns the true state into delivered records and,
for each record, a :class:`RowTruth` saying whom the row is about and which quirks were
applied to it, cell by cell. Every quirk is written wherever it can physically occur:
identity-number quirks in every identity column, name quirks in every name column, the
protections and Excel damage of identity numbers in every long digit code, every date,
place and number form in every column of its kind, and the whole-row problems in every
source. The registry's own recording errors are part of the state (they persist from batch
to batch until fixed), and so is how the registry wrote a person (drawn from the
population's seed); every other quirk is drawn per batch from the noise profile.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

from lookback.generate.cells import CellWriter
from lookback.generate.draws import Draws
from lookback.generate.identities import Identity, read_identities
from lookback.generate.people import Household, Person
from lookback.generate.profiles import DAMAGING_IDENTITY_QUIRKS
from lookback.generate.writers import Cell, CsvDelivery, Delivery, RawLine, XlsxDelivery, csv_line
from lookback.sources import SourceSpec


def household_appraisals(household: Household, as_of: date) -> list[tuple[date, str, str]]:
    """The appraisals of a household's house, earliest first: date, level, renovation status.
    A house appraised twice was first appraised 400 days earlier, and not renovated then."""
    appraised = household.appraisal_date or as_of - timedelta(days=365)
    appraisals = [(appraised, household.housing_level, household.renovation_status)]
    if household.housing_earlier_level:
        appraisals.insert(0, (appraised - timedelta(days=400), household.housing_earlier_level, "未改造"))
    return appraisals


class RowTruth(NamedTuple):
    """Whom a delivered row is about, and what was done to it when it was written (a named
    tuple: one is built for every delivered row, millions in a large batch)."""

    source: str
    source_row: int
    person_key: str  # blank: a row about nobody (blank line, total line, a row naming nobody)
    household_key: str
    row_kind: str  # data / duplicate / broken / blank / total / nobody
    identity_written: str  # the subject's identity number as written (kept in the truth only)
    identity_noise: str  # none / a quirk of profiles.IDENTITY_QUIRKS / someone_elses / parent_number
    name_noise: str  # none / a quirk of profiles.NAME_QUIRKS / dot_variant: the subject's name
    detail: str = ""  # what the oracle needs to know of the row: enrolment year, latest/earlier appraisal
    identity_hard: bool = False  # set once all rows are known (shared numbers)
    # Every quirk of the row, ``column:form`` joined by ``;`` (``row:form`` for whole-row ones).
    quirks: str = ""


@dataclass(slots=True)
class DraftRow:
    """A row before numbering: its cells, its subject, and what was applied to it."""

    cells: list[Cell]
    person: Person
    household: Household
    identity_written: str
    identity_noise: str
    name_noise: str
    detail: str = ""
    quirks: list[str] = field(default_factory=list)


@dataclass
class Export:
    source: str
    records: list[list[Cell] | RawLine]  # empty once written as they were made
    truths: list[RowTruth]
    title_rows: int = 0  # xlsx: title rows above the header


def sheet_titles(households: Sequence[Household], as_of: date) -> tuple[str, str]:
    """The allowance sheet's title rows (it has one or both)."""
    county = households[0].county_name if households else ""
    return f"{county}等农村低保及特困供养花名册（{as_of.year}年{as_of.month}月）", "填报单位：县民政局"


class ExportBuilder(CellWriter):
    """Writes the five exports of one batch from the population's state: into files as their
    records are made when ``delivery_paths`` names a file per source, else into each
    export's ``records``."""

    delivery_paths: Mapping[str, Path] | None = None

    def _delivery(self, spec: SourceSpec, title_rows: int) -> Delivery | None:
        if self.delivery_paths is None:
            return None
        path = self.delivery_paths[spec.source]
        if spec.delivered_file.format == "xlsx":
            return XlsxDelivery(path, spec, sheet_titles(self.households, self.as_of)[:title_rows])
        return CsvDelivery(path, spec)

    # --- exports --------------------------------------------------------------------
    def _registry_rng(self, person: Person) -> random.Random:
        """The registry's recording of a person is the same in every batch until corrected."""
        return Draws(f"{self.population_seed}:{person.key}:registry")

    def registry(self) -> Export:
        spec = self.specs["registry"]
        rows: list[DraftRow] = []
        for household in self.households:
            if household.kind != "registry":
                continue
            for person in household.members:
                listed_in = [household]
                if person.duplicate == "repeat":
                    listed_in.append(household)
                elif person.duplicate:
                    listed_in.append(self.by_household[person.duplicate])
                for place in listed_in:
                    rows.append(self._registry_row(spec, person, place))
        return self._finish(spec, rows)

    def _registry_row(self, spec: SourceSpec, person: Person, household: Household) -> DraftRow:
        rng = self._registry_rng(person)
        applied: list[str] = []
        if person.registry_identity_noise in {"none", "fixed"}:
            number, id_noise = self.identity(person, rng)
        else:
            number, id_noise = person.registry_identity_written, person.registry_identity_noise
        identity_cell = self.written_identity("identity_number", number, id_noise, applied)
        name, name_noise = self.name("name", person, "registry", rng, applied)
        phone = f"13{rng.randrange(100000000, 999999999)}" if person.relation == "户主" and rng.random() < 0.6 else ""
        values: dict[str, Cell] = {
            "prefecture": self.place("prefecture", self.prefecture_of(household), self.rng, applied),
            "county_code": self.county("county_code", household, self.rng, applied),
            "township": self.place("township", household.township, self.rng, applied),
            "village": self.place("village", household.village, self.rng, applied),
            "village_code": self.code("village_code", household.village_code, self.rng, applied),
            "household_number": self.code("household_number", household.registry_number, self.rng, applied),
            "name": name,
            "identity_number": identity_cell,
            "sex": person.sex,
            "ethnicity": person.ethnicity,
            "relation_to_head": person.relation,
            "poverty_category": household.poverty_category,
            "poverty_status": household.poverty_status,
            "exit_year": str(household.exit_year or ""),
            "poverty_cause": household.cause,
            "health": person.health,
            "labour_capacity": person.labour,
            "schooling": person.schooling,
            "claims_insured": person.claims_insured,
            "claims_unsafe_house": household.claims_unsafe_house,
            "claims_safe_water": "是",
            "phone": self.code("phone", phone, rng, applied),
        }
        return DraftRow(_cells(spec, values), person, household, number, id_noise, name_noise, "", applied)

    def dibao(self) -> Export:
        spec = self.specs["dibao"]
        rows: list[DraftRow] = []
        rng = self.rng
        for household in self.households:
            if not household.dibao_category:
                continue
            members = household.members if household.dibao_category == "农村低保" else household.members[:1]
            payment = 310.0 * len(members) if household.dibao_category == "农村低保" else 580.0
            stopped = household.dibao_status != "正常"
            for person in members:
                applied: list[str] = []
                cell, number, id_noise = self.identity_cell("identity_number", person, rng, applied, xlsx=True)
                name, name_noise = self.name("name", person, "dibao", rng, applied)
                head_name, _ = self.name("head_name", household.head, "dibao", rng, applied)
                head_number, _, _ = self.identity_cell("head_identity_number", household.head, rng, applied, xlsx=True)
                values: dict[str, Cell] = {
                    "county_code": self.county("county_code", household, rng, applied, xlsx=True),
                    "township": self.place("township", household.township, rng, applied),
                    "village": self.place("village", household.village, rng, applied),
                    "support_category": household.dibao_category,
                    "head_name": head_name,
                    "head_identity_number": head_number,
                    "name": name,
                    "identity_number": cell,
                    "relation_to_head": "本人" if person.relation == "户主" else person.relation,
                    "supported_members": self.count("supported_members", len(members), rng, applied, xlsx=True),
                    "monthly_payment": self.money("monthly_payment", payment, rng, applied, xlsx=True),
                    "support_start": self.month(
                        "support_start", household.dibao_start or date(2018, 1, 1), rng, applied, xlsx=True
                    ),
                    "status": household.dibao_status,
                    "stop_date": self.a_date("stop_date", self.as_of - timedelta(days=45), rng, applied, xlsx=True)
                    if stopped
                    else "",
                }
                rows.append(
                    DraftRow(_cells(spec, values), person, household, number, id_noise, name_noise, "", applied)
                )
        return self._finish(spec, rows)

    def insurance(self) -> Export:
        spec = self.specs["insurance"]
        rows: list[DraftRow] = []
        rng = self.rng
        year = self.as_of.year
        years_written = {year - 1: str(year - 1), year: str(year)}  # one text each, not one per row
        statuses = {"paid": "参保缴费", "suspended": "暂停参保", "terminated": "终止参保", "prior_year": "参保缴费"}
        for household in self.households:
            for person in household.members:
                if person.insurance == "none":
                    continue
                years = [year - 1] if person.insurance == "prior_year" else [year]
                if person.insurance == "paid" and rng.random() < 0.25:
                    years.insert(0, year - 1)
                for enrolment_year in years:
                    applied: list[str] = []
                    cell, number, id_noise = self.identity_cell("identity_number", person, rng, applied)
                    name, name_noise = self.name("name", person, "insurance", rng, applied)
                    values: dict[str, Cell] = {
                        "name": name,
                        "identity_number": cell,
                        "sex": person.sex,
                        "birth_date": self.a_date("birth_date", person.birth_date, rng, applied, usual="compact"),
                        "county_code": self.county("county_code", household, rng, applied, code_column=True),
                        "scheme": person.scheme,
                        "year": years_written[enrolment_year],
                        "status": statuses[person.insurance],
                        "subsidy_category": person.subsidy,
                        "personal_contribution": self.money(
                            "personal_contribution", 0.0 if person.subsidy else 280.0, rng, applied
                        ),
                    }
                    detail = years_written[enrolment_year]
                    rows.append(
                        DraftRow(_cells(spec, values), person, household, number, id_noise, name_noise, detail, applied)
                    )
        return self._finish(spec, rows)

    def housing(self) -> Export:
        spec = self.specs["housing"]
        rows: list[DraftRow] = []
        rng = self.rng
        types = {"registry": "建档立卡贫困户", "outside": "低保户", "other": "一般农户"}
        for household in self.households:
            if not household.housing_level:
                continue
            head = household.members[min(household.housing_head_index, len(household.members) - 1)]
            appraisals = household_appraisals(household, self.as_of)
            for index, (when, level, status) in enumerate(appraisals):
                applied: list[str] = []
                cell, number, id_noise = self.identity_cell("head_identity_number", head, rng, applied)
                name, name_noise = self.name("head_name", head, "housing", rng, applied)
                unsafe = level in {"C", "D"}
                done = status in {"已竣工", "已验收"}
                values: dict[str, Cell] = {
                    "county_code": self.county("county_code", household, rng, applied),
                    "township": self.place("township", household.township, rng, applied),
                    "village": self.place("village", household.village, rng, applied),
                    "head_name": name,
                    "head_identity_number": cell,
                    "household_size": self.count("household_size", len(household.members), rng, applied),
                    "household_type": types[household.kind]
                    if household.kind != "outside" or household.dibao_category == "农村低保"
                    else "分散供养特困人员",
                    "appraisal_level": level,
                    "appraisal_date": self.a_date("appraisal_date", when, rng, applied),
                    "renovation_method": rng.choice(("拆除重建", "修缮加固")) if unsafe else "无需改造",
                    "renovation_status": status,
                    "completion_date": self.a_date("completion_date", when + timedelta(days=90), rng, applied)
                    if done
                    else "",
                    "subsidy": self.money("subsidy", 21000.0 if unsafe and done else None, rng, applied),
                }
                detail = "latest" if index == len(appraisals) - 1 else "earlier"
                rows.append(
                    DraftRow(_cells(spec, values), head, household, number, id_noise, name_noise, detail, applied)
                )
        return self._finish(spec, rows)

    def hukou(self) -> Export:
        spec = self.specs["hukou"]
        rows: list[DraftRow] = []
        rng = self.rng
        for household in self.households:
            for person in household.members:
                moved = household.kind == "other" and not person.died_on and rng.random() < 0.005
                if not person.died_on and not moved:
                    continue
                applied: list[str] = []
                cell, number, id_noise = self.identity_cell("identity_number", person, rng, applied)
                name, name_noise = self.name("name", person, "hukou", rng, applied)
                values: dict[str, Cell] = {
                    "name": name,
                    "identity_number": cell,
                    "sex": person.sex,
                    "reason": "死亡" if person.died_on else "迁出",
                    "cancellation_date": self.a_date(
                        "cancellation_date", person.died_on or self.as_of - timedelta(days=100), rng, applied
                    ),
                    "county_code": self.county("county_code", household, rng, applied, code_column=True),
                }
                rows.append(
                    DraftRow(_cells(spec, values), person, household, number, id_noise, name_noise, "", applied)
                )
        return self._finish(spec, rows)

    # --- whole rows -----------------------------------------------------------------
    def _finish(self, spec: SourceSpec, rows: list[DraftRow]) -> Export:
        """Number the rows, adding the whole-row damage of the profile: blank rows (an empty
        line, a line of bare commas, an empty sheet row), rows exported twice, rows broken
        by a lost delimiter (CSV) or by cells shifted right (XLSX), a row that names nobody,
        and a total line at the bottom. ``rows`` is used up."""
        xlsx = spec.delivered_file.format == "xlsx"
        export = Export(source=spec.source, records=[], truths=[])
        if xlsx:
            export.title_rows = self.rng.choice(self.profile.title_rows)
        delivery = self._delivery(spec, export.title_rows)
        try:
            self._finish_rows(spec, rows, export, delivery if delivery is not None else export.records)
        finally:
            if delivery is not None:
                delivery.close()
        return export

    def _finish_rows(
        self, spec: SourceSpec, rows: list[DraftRow], export: Export, records: Delivery | list[list[Cell] | RawLine]
    ) -> None:
        xlsx = spec.delivered_file.format == "xlsx"
        width = len(spec.columns)
        rng = self.rng
        shifts_owed = 0
        source, truths = spec.source, export.truths

        def add(record: list[Cell] | RawLine, row: DraftRow | None, kind: str, quirks: str) -> None:
            records.append(record)
            if row is None:  # a row about nobody
                truths.append(RowTruth(source, len(records), "", "", kind, "", "none", "none", "", False, quirks))
                return
            truths.append(
                RowTruth(
                    source,
                    len(records),
                    row.person.key,
                    row.household.key,
                    kind,
                    row.identity_written,
                    row.identity_noise,
                    row.name_noise,
                    row.detail,
                    False,
                    quirks,
                )
            )

        profile = self.profile
        rows.reverse()  # taken from the end: each draft and its cells let go of once written
        while rows:
            row = rows.pop()
            cells = row.cells
            # Interned: tens of thousands of distinct quirk lists among millions of rows.
            quirks = sys.intern(";".join(row.quirks))
            if rng.random() < profile.blank_row:
                blank, form = self._blank(spec, rng)
                add(blank, None, "blank", f"row:{form}")
            if rng.random() < profile.broken_row:
                if not xlsx:
                    add(self._broken(spec, cells), row, "broken", _and(quirks, "row:lost_delimiter"))
                    continue
                shifts_owed += 1
            # Shifted cells show only when they push a value past the header's last column;
            # a row whose last cell is blank passes its shift on to the next row that can show it.
            if shifts_owed and cells[-1] != "":
                shifts_owed -= 1
                position = rng.randrange(0, width - 1)
                add([*cells[:position], "", *cells[position:]], row, "broken", _and(quirks, "row:shifted_cells"))
                continue
            add(cells, row, "data", quirks)
            if rng.random() < profile.duplicate_row:
                add(list(cells), row, "duplicate", _and(quirks, "row:duplicate"))
        nobody: list[Cell] = [""] * width
        nobody[-1] = "备注：此行数据缺失"  # a note typed into an otherwise empty row: identifies nobody
        if self.profile.mixed_formats:
            add(nobody, None, "nobody", "row:note_only")
        if xlsx or rng.random() < self.profile.total_line:
            add(self._total_line(spec, export), None, "total", "row:total_line")

    def _blank(self, spec: SourceSpec, rng: random.Random) -> tuple[list[Cell] | RawLine, str]:
        width = len(spec.columns)
        if spec.delivered_file.format == "xlsx":
            return [""] * width, "empty_sheet_row"
        if rng.random() < 0.5:
            return RawLine(""), "blank_line"
        return RawLine(spec.delivered_file.delimiter * (width - 1)), "bare_commas"

    def _broken(self, spec: SourceSpec, cells: list[Cell]) -> RawLine:
        texts = [str(cell) for cell in cells]
        position = self.rng.randrange(0, len(texts) - 1)
        texts[position : position + 2] = [texts[position] + texts[position + 1]]
        return RawLine(csv_line(texts, spec.delivered_file.delimiter))

    @staticmethod
    def _total_line(spec: SourceSpec, export: Export) -> list[Cell]:
        """``合计`` in the first column and the count of people in another, as sheets total."""
        columns = [column.name for column in spec.columns]
        people = sum(1 for truth in export.truths if truth.row_kind in {"data", "duplicate"})
        total: list[Cell] = ["合计", *([""] * (len(columns) - 1))]
        if "supported_members" in columns:
            total[columns.index("supported_members")] = people
        else:
            total[1] = f"{people}人"
        return total


def _and(quirks: str, quirk: str) -> str:
    return f"{quirks};{quirk}" if quirks else quirk


# Per source: its column names, and a getter of their values in that order.
_COLUMN_GETTERS: dict[str, tuple[tuple[str, ...], itemgetter[Any] | None]] = {}


def _cells(spec: SourceSpec, values: dict[str, Cell]) -> list[Cell]:
    """The row's cells in the source's column order; a column without a value is blank."""
    found = _COLUMN_GETTERS.get(spec.source)
    if found is None or len(found[0]) != len(spec.columns):
        names = tuple(column.name for column in spec.columns)
        # (itemgetter gives a tuple for two names or more, one name's value alone)
        found = _COLUMN_GETTERS[spec.source] = (names, itemgetter(*names) if len(names) > 1 else None)
    names, getter = found
    if getter is not None:
        try:
            return list(getter(values))
        except KeyError:  # a column without a value
            pass
    return [values.get(name, "") for name in names]


def identities_of(exports: Sequence[Export]) -> dict[str, Identity]:
    """What the normaliser finds in every identity number the rows of ``exports`` carry."""
    return read_identities(truth.identity_written for export in exports for truth in export.truths)


def numbers_shared(truths: Iterable[RowTruth], identities: dict[str, Identity]) -> dict[str, set[str]]:
    """The valid numbers that the rows ``truths`` give to more than one person, with those persons."""
    first_holder: dict[str, str] = {}  # most numbers have one holder: no set for each
    shared: dict[str, set[str]] = {}
    for truth in truths:
        number = identities[truth.identity_written].number
        if number:
            holder = first_holder.setdefault(number, truth.person_key)
            if holder != truth.person_key:
                shared.setdefault(number, {holder}).add(truth.person_key)
    return shared


def mark_hard_rows(
    exports: Sequence[Export],
    damaging: Sequence[str] = DAMAGING_IDENTITY_QUIRKS,
    identities: dict[str, Identity] | None = None,
) -> None:
    """Flag rows whose identity number is missing, invalid, someone else's, or shared."""
    if identities is None:
        identities = identities_of(exports)
    hard_noise = {*damaging, "parent_number"}
    shared = numbers_shared((truth for export in exports for truth in export.truths if truth.person_key), identities)
    hard_texts = {text for text, found in identities.items() if not found.is_valid or found.number in shared}
    for export in exports:
        truths = export.truths
        for index, truth in enumerate(truths):
            if truth.person_key and (truth.identity_noise in hard_noise or truth.identity_written in hard_texts):
                truths[index] = truth._replace(identity_hard=True)
