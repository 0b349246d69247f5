"""What each department holds about the population, written as its export, with noise.

For every source, :class:`ExportBuilder` turns the true state into delivered records and,
for each record, a :class:`RowTruth` saying whom the row is about and which quirks were
applied to it. The registry's own recording errors are part of the state (they persist
from batch to batch until fixed); every other quirk is drawn per batch from the noise
profile.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from lookback.generate import noise
from lookback.generate.people import Household, Person
from lookback.generate.profiles import DAMAGING_IDENTITY_QUIRKS, NoiseProfile
from lookback.generate.writers import Cell, RawLine, csv_line
from lookback.sources import SourceSpec
from lookback.standardise.places import short_names


def household_appraisals(household: Household, as_of: date) -> list[tuple[date, str, str]]:
    """The appraisals of a household's house, earliest first: date, level, renovation status.
    A house appraised twice was first appraised 400 days earlier, and not renovated then."""
    appraised = household.appraisal_date or as_of - timedelta(days=365)
    appraisals = [(appraised, household.housing_level, household.renovation_status)]
    if household.housing_earlier_level:
        appraisals.insert(0, (appraised - timedelta(days=400), household.housing_earlier_level, "未改造"))
    return appraisals


@dataclass(frozen=True)
class RowTruth:
    """Whom a delivered row is about, and what was done to it when it was written."""

    source: str
    source_row: int
    person_key: str  # blank: a row about nobody (blank line, total line, a row naming nobody)
    household_key: str
    row_kind: str  # data / duplicate / broken / blank / total / nobody
    identity_written: str  # the subject's identity number as written (kept in the truth only)
    identity_noise: str  # none / a quirk of profiles.IDENTITY_QUIRKS / someone_elses / parent_number
    name_noise: str
    detail: str = ""  # what the oracle needs to know of the row: enrolment year, latest/earlier appraisal
    identity_hard: bool = False  # set once all rows are known (shared numbers)


# A row before numbering: cells, subject, household, identity written, its quirk, name quirk, detail.
Row = tuple[list[Cell], Person, Household, str, str, str, str]


@dataclass
class Export:
    source: str
    records: list[list[Cell] | RawLine]
    truths: list[RowTruth]


class ExportBuilder:
    """Writes the five exports of one batch from the population's state."""

    def __init__(
        self,
        specs: dict[str, SourceSpec],
        households: list[Household],
        profile: NoiseProfile,
        as_of: date,
        batch_seed: int,
        population_seed: int,
    ) -> None:
        self.specs = specs
        self.households = households
        self.profile = profile
        self.as_of = as_of
        self.rng = random.Random(batch_seed)
        self.population_seed = population_seed
        self.people = [person for household in households for person in household.members]
        self.by_household = {household.key: household for household in households}

    # --- values ---------------------------------------------------------------------
    def _pick_quirk(self, rates: dict[str, float], rng: random.Random) -> str:
        draw = rng.random()
        for quirk, rate in rates.items():
            if draw < rate:
                return quirk
            draw -= rate
        return "none"

    def identity(self, person: Person, rng: random.Random) -> tuple[str, str]:
        """(written number, quirk) for a row about ``person``."""
        rates = {quirk: rate for quirk, rate in self.profile.identity.items() if quirk != "lower_case_x"}
        quirk = self._pick_quirk(rates, rng)
        number = person.identity_number
        if quirk == "none" and number.endswith("X") and rng.random() < self.profile.identity.get("lower_case_x", 0.0):
            return number[:-1] + "x", "lower_case_x"
        if quirk == "someone_elses":
            other = rng.choice(self.people)
            return (other.identity_number, quirk) if other is not person else (number, "none")
        if quirk == "none":
            return number, quirk
        written = noise.damage_identity(number, quirk, rng)
        if written == number:  # the quirk cannot apply (no 15-digit form after 1999): pad instead
            return noise.damage_identity(number, "padded", rng), "padded"
        return written, quirk

    def name(self, person: Person, rng: random.Random) -> tuple[str, str]:
        if "·" in person.name and self.profile.mixed_formats and rng.random() < 0.5:
            return person.name.replace("·", rng.choice(noise.DOT_VARIANTS)), "dot_variant"
        quirk = self._pick_quirk(dict(self.profile.names), rng)
        if quirk == "none":
            return person.name, quirk
        written = noise.NAME_QUIRKS[quirk](person.name, rng)
        if written == person.name:  # no character of the name has a homophone or look-alike listed
            return noise.name_spaces(person.name, rng), "spaces"
        return written, quirk

    def county(self, household: Household) -> str:
        if not self.profile.mixed_formats:
            return household.county_name
        return self.rng.choice([*short_names(household.county_name), household.county_code])

    def a_date(self, value: date | None) -> str:
        style = self.rng.choice(noise.DATE_STYLES) if self.profile.mixed_formats else "iso"
        return noise.format_date(value, style)

    def money(self, amount: float | None) -> str:
        if amount is None:
            return "-" if self.profile.mixed_formats else ""
        style = self.rng.choice(noise.MONEY_STYLES) if self.profile.mixed_formats else "plain"
        return noise.format_money(amount, style)

    # --- rows -----------------------------------------------------------------------
    def _registry_rng(self, person: Person) -> random.Random:
        """The registry's recording of a person is the same in every batch until corrected."""
        return random.Random(f"{self.population_seed}:{person.key}:registry")

    def registry(self) -> Export:
        spec = self.specs["registry"]
        rows: list[Row] = []
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
        return self._finish(spec, rows, duplicates_are_noise=False)

    def _registry_row(self, spec: SourceSpec, person: Person, household: Household) -> Row:
        rng = self._registry_rng(person)
        if person.registry_identity_noise in {"none", "fixed"}:
            number, id_noise = self.identity(person, rng)
        else:
            number, id_noise = person.registry_identity_written, person.registry_identity_noise
        name, name_noise = self.name(person, rng)
        values: dict[str, Cell] = {
            "prefecture": "怀化市" if household.county_code.startswith("4312") else "湘西土家族苗族自治州",
            "county_code": self.county(household),
            "township": household.township,
            "village": household.village,
            "village_code": household.village_code,
            "household_number": household.registry_number,
            "name": name,
            "identity_number": number,
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
            "phone": f"13{rng.randrange(100000000, 999999999)}"
            if person.relation == "户主" and rng.random() < 0.6
            else "",
        }
        return _cells(spec, values), person, household, number, id_noise, name_noise, ""

    def dibao(self) -> Export:
        spec = self.specs["dibao"]
        rows: list[Row] = []
        for household in self.households:
            if not household.dibao_category:
                continue
            members = household.members if household.dibao_category == "农村低保" else household.members[:1]
            payment = 310.0 * len(members) if household.dibao_category == "农村低保" else 580.0
            stopped = household.dibao_status != "正常"
            for person in members:
                number, id_noise = self.identity(person, self.rng)
                name, name_noise = self.name(person, self.rng)
                cell: Cell = number
                if id_noise == "excel_zeros":
                    cell = float(number)  # a number cell: Excel shows the damage, the reader must see it
                values: dict[str, Cell] = {
                    "county_code": self.county(household),
                    "township": household.township,
                    "village": household.village,
                    "support_category": household.dibao_category,
                    "head_name": household.head.name,
                    "head_identity_number": household.head.identity_number,
                    "name": name,
                    "identity_number": cell,
                    "relation_to_head": "本人" if person.relation == "户主" else person.relation,
                    "supported_members": len(members),
                    "monthly_payment": self.money(payment),
                    "support_start": noise.format_month(
                        household.dibao_start or date(2018, 1, 1),
                        self.rng.choice(noise.MONTH_STYLES) if self.profile.mixed_formats else "iso",
                    ),
                    "status": household.dibao_status,
                    "stop_date": self.a_date(self.as_of - timedelta(days=45)) if stopped else "",
                }
                rows.append((_cells(spec, values), person, household, number, id_noise, name_noise, ""))
        return self._finish(spec, rows)

    def insurance(self) -> Export:
        spec = self.specs["insurance"]
        rows: list[Row] = []
        year = self.as_of.year
        statuses = {"paid": "参保缴费", "suspended": "暂停参保", "terminated": "终止参保", "prior_year": "参保缴费"}
        for household in self.households:
            for person in household.members:
                if person.insurance == "none":
                    continue
                years = [year - 1] if person.insurance == "prior_year" else [year]
                if person.insurance == "paid" and self.rng.random() < 0.25:
                    years.insert(0, year - 1)
                for enrolment_year in years:
                    number, id_noise = self.identity(person, self.rng)
                    name, name_noise = self.name(person, self.rng)
                    values: dict[str, Cell] = {
                        "name": name,
                        "identity_number": number,
                        "sex": person.sex,
                        "birth_date": f"{person.birth_date:%Y%m%d}",
                        "county_code": household.county_code,
                        "scheme": person.scheme,
                        "year": str(enrolment_year),
                        "status": statuses[person.insurance],
                        "subsidy_category": person.subsidy,
                        "personal_contribution": "0" if person.subsidy else "280",
                    }
                    rows.append(
                        (_cells(spec, values), person, household, number, id_noise, name_noise, str(enrolment_year))
                    )
        return self._finish(spec, rows)

    def housing(self) -> Export:
        spec = self.specs["housing"]
        rows: list[Row] = []
        types = {"registry": "建档立卡贫困户", "outside": "低保户", "other": "一般农户"}
        for household in self.households:
            if not household.housing_level:
                continue
            head = household.members[min(household.housing_head_index, len(household.members) - 1)]
            appraisals = household_appraisals(household, self.as_of)
            for index, (when, level, status) in enumerate(appraisals):
                number, id_noise = self.identity(head, self.rng)
                name, name_noise = self.name(head, self.rng)
                unsafe = level in {"C", "D"}
                done = status in {"已竣工", "已验收"}
                values: dict[str, Cell] = {
                    "county_code": self.county(household),
                    "township": household.township,
                    "village": household.village,
                    "head_name": name,
                    "head_identity_number": number,
                    "household_size": str(len(household.members)),
                    "household_type": types[household.kind]
                    if household.kind != "outside" or household.dibao_category == "农村低保"
                    else "分散供养特困人员",
                    "appraisal_level": level,
                    "appraisal_date": self.a_date(when),
                    "renovation_method": self.rng.choice(("拆除重建", "修缮加固")) if unsafe else "无需改造",
                    "renovation_status": status,
                    "completion_date": self.a_date(when + timedelta(days=90)) if done else "",
                    "subsidy": self.money(21000.0 if unsafe and done else None),
                }
                detail = "latest" if index == len(appraisals) - 1 else "earlier"
                rows.append((_cells(spec, values), head, household, number, id_noise, name_noise, detail))
        return self._finish(spec, rows)

    def hukou(self) -> Export:
        spec = self.specs["hukou"]
        rows: list[Row] = []
        for household in self.households:
            for person in household.members:
                moved = household.kind == "other" and not person.died_on and self.rng.random() < 0.005
                if not person.died_on and not moved:
                    continue
                number, id_noise = self.identity(person, self.rng)
                name, name_noise = self.name(person, self.rng)
                values: dict[str, Cell] = {
                    "name": name,
                    "identity_number": number,
                    "sex": person.sex,
                    "reason": "死亡" if person.died_on else "迁出",
                    "cancellation_date": (person.died_on or self.as_of - timedelta(days=100)).isoformat(),
                    "county_code": household.county_code,
                }
                rows.append((_cells(spec, values), person, household, number, id_noise, name_noise, ""))
        return self._finish(spec, rows)

    # --- whole rows -----------------------------------------------------------------
    def _finish(
        self,
        spec: SourceSpec,
        rows: Sequence[Row],
        duplicates_are_noise: bool = True,
    ) -> Export:
        """Number the rows, adding the whole-row damage of the profile: blank rows,
        duplicated rows, rows broken by a lost delimiter (or shifted cells in xlsx)."""
        export = Export(source=spec.source, records=[], truths=[])
        width = len(spec.columns)
        rng = self.rng

        def add(record: list[Cell] | RawLine, truth: RowTruth) -> None:
            export.records.append(record)
            export.truths.append(replace(truth, source_row=len(export.records)))

        for cells, person, household, number, id_noise, name_noise, detail in rows:
            truth = RowTruth(spec.source, 0, person.key, household.key, "data", number, id_noise, name_noise, detail)
            if rng.random() < self.profile.blank_row:
                blank: list[Cell] | RawLine = RawLine("") if spec.file.format == "csv" else [""] * width
                add(blank, RowTruth(spec.source, 0, "", "", "blank", "", "none", "none"))
            # A lost delimiter is a CSV accident; shifted xlsx cells cannot be told from data.
            if spec.file.format == "csv" and rng.random() < self.profile.broken_row:
                add(self._broken(spec, cells), replace(truth, row_kind="broken"))
                continue
            add(cells, truth)
            if duplicates_are_noise and rng.random() < self.profile.duplicate_row:
                add(list(cells), replace(truth, row_kind="duplicate"))
        nobody: list[Cell] = [""] * width
        nobody[-1] = "备注：此行数据缺失"  # a note typed into an otherwise empty row: identifies nobody
        if self.profile.mixed_formats:
            add(nobody, RowTruth(spec.source, 0, "", "", "nobody", "", "none", "none"))
        return export

    def _broken(self, spec: SourceSpec, cells: list[Cell]) -> RawLine:
        texts = [str(cell) for cell in cells]
        position = self.rng.randrange(0, len(texts) - 1)
        texts[position : position + 2] = [texts[position] + texts[position + 1]]
        return RawLine(csv_line(texts, spec.file.delimiter))


def _cells(spec: SourceSpec, values: dict[str, Cell]) -> list[Cell]:
    return [values.get(column.name, "") for column in spec.columns]


def mark_hard_rows(exports: Sequence[Export], damaging: Sequence[str] = DAMAGING_IDENTITY_QUIRKS) -> None:
    """Flag rows whose identity number is missing, invalid, someone else's, or shared."""
    from lookback.standardise.identity import normalise_identity_number

    holders: dict[str, set[str]] = {}
    for export in exports:
        for truth in export.truths:
            found = normalise_identity_number(truth.identity_written) if truth.person_key else None
            if found is not None and found.number:
                holders.setdefault(found.number, set()).add(truth.person_key)
    for export in exports:
        for index, truth in enumerate(export.truths):
            if not truth.person_key:
                continue
            found = normalise_identity_number(truth.identity_written)
            hard = (
                truth.identity_noise in damaging
                or truth.identity_noise == "parent_number"
                or not found.is_valid
                or len(holders.get(found.number or "", set())) > 1
            )
            if hard:
                export.truths[index] = replace(truth, identity_hard=True)
