"""A landing batch of all five exports, written in their delivered formats.

:func:`generate_batch` builds a small population (:mod:`lookback.generate.people`), derives
what each department holds about it, and writes the five files, damaging the written
copies with every quirk of real exports (:mod:`lookback.generate.noise`). Quirks are
dealt in rotation over the rows, so that even a small batch carries every kind.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from lookback.generate import noise
from lookback.generate.people import DOT_NAMES, Household, Person, PopulationBuilder
from lookback.generate.writers import Cell, RawLine, Record, csv_line, write_csv, write_xlsx
from lookback.sources import SourceSpec, load_source_specs
from lookback.standardise.places import county_resolver, short_names

DEFAULT_COUNTIES = ("431230", "431224", "433130")  # 通道侗族自治县, 溆浦县, 龙山县
DEFAULT_AS_OF = date(2020, 6, 30)
FILE_NAMES = {
    "registry": "registry_members.csv",
    "dibao": "dibao_roster.xlsx",
    "insurance": "insurance_enrolment.csv",
    "housing": "housing_safety.csv",
    "hukou": "hukou_cancellations.csv",
}
# Every n-th row of a source gets the next identity-number quirk, every m-th the next name quirk.
IDENTITY_QUIRK_EVERY = 6
NAME_QUIRK_EVERY = 5


@dataclass(frozen=True)
class BatchSummary:
    folder: Path
    households: int
    registry_persons: int
    rows: dict[str, int]


class _Rotation:
    """Deals quirks in turn to every n-th value it is asked about."""

    def __init__(self, quirks: Sequence[Callable[[str, random.Random], str]], every: int, rng: random.Random) -> None:
        self.quirks = quirks
        self.every = every
        self.rng = rng
        self.seen = 0
        self.dealt = 0

    def __call__(self, value: str) -> str:
        self.seen += 1
        if not value or self.seen % self.every:
            return value
        for _ in range(len(self.quirks)):
            quirk = self.quirks[self.dealt % len(self.quirks)]
            self.dealt += 1
            changed = quirk(value, self.rng)
            if changed != value:
                return changed
        return value


def _columns(spec: SourceSpec, values: dict[str, Cell]) -> list[Cell]:
    return [values.get(column.name, "") for column in spec.columns]


class BatchWriter:
    def __init__(self, seed: int, as_of: date, counties: Sequence[str]) -> None:
        self.rng = random.Random(seed + 1)
        self.as_of = as_of
        self.specs = load_source_specs()
        self.resolver = county_resolver()
        self.builder = PopulationBuilder(self.resolver, list(counties), seed, as_of)
        self.identity_quirk = _Rotation(noise.IDENTITY_QUIRKS, IDENTITY_QUIRK_EVERY, self.rng)
        self.name_quirk = _Rotation(noise.NAME_QUIRKS, NAME_QUIRK_EVERY, self.rng)
        self.dots_written = 0

    def written_name(self, name: str) -> str:
        """The name as this export typed it; a middle dot comes in each of its look-alikes in turn."""
        if "·" in name:
            self.dots_written += 1
            dots = ("·", *noise.DOT_VARIANTS)
            return name.replace("·", dots[self.dots_written % len(dots)])
        return self.name_quirk(name)

    def county_label(self, household: Household) -> str:
        return self.rng.choice([*short_names(household.county.name), household.county.code])

    def population(self, registry_persons: int) -> tuple[list[Household], list[Household], list[Household]]:
        """Registry households, allowance households outside the registry, other rural households."""
        registry: list[Household] = []
        while sum(len(h.members) for h in registry) < registry_persons:
            household = self.builder.household()
            household.registry_number = f"{household.village_code}{household.key:06d}"
            self._registry_state(household)
            registry.append(household)
        outside = [self.builder.household() for _ in range(max(1, len(registry) // 8))]
        for household in outside:
            household.dibao_category = self.rng.choice(("农村低保", "农村低保", "农村特困（分散供养）"))
        others = [self.builder.household() for _ in range(max(1, len(registry) // 2))]
        # A few people from elsewhere with minority names written with a middle dot.
        for name, household in zip(DOT_NAMES, registry[1::7], strict=False):
            household.members[-1].name = name
        # A child entered with a parent's identity number.
        if len(registry) > 3 and len(registry[3].members) > 1:
            registry[3].members[-1].identity_number = registry[3].head.identity_number
        return registry, outside, others

    def _registry_state(self, household: Household) -> None:
        rng = self.rng
        household.poverty_status = rng.choice(
            ("已脱贫（享受政策）",) * 6 + ("已脱贫（不再享受政策）", "未脱贫", "未脱贫", "返贫")
        )
        household.exit_year = None if household.poverty_status in {"未脱贫", "返贫"} else rng.randrange(2014, 2021)
        household.cause = rng.choice(("因病", "因残", "因学", "缺技术", "缺劳力", "缺资金"))
        kind = rng.random()
        if kind < 0.25:
            household.dibao_category = "农村低保"
            household.poverty_category = "低保贫困户"
        elif kind < 0.32:
            household.dibao_category = "农村特困（分散供养）"
            household.poverty_category = "特困供养贫困户"
        else:
            household.poverty_category = "一般贫困户"
        if household.exit_year:
            household.poverty_category = household.poverty_category.replace("贫困户", "脱贫户")
        household.housing_level = rng.choice(("A", "B", "B", "B", "C", "D", None))
        if household.housing_level in {"C", "D"}:
            household.renovation_status = rng.choice(("已竣工", "已验收", "改造中", "未改造"))
        for member in household.members:
            age = (self.as_of - member.birth_date).days // 365
            if rng.random() < 0.12:
                member.health = rng.choice(("长期慢性病", "患有大病", "残疾", "残疾,长期慢性病"))
            if age < 16 or age > 64:
                member.labour = "无劳动力"
            elif member.health != "健康":
                member.labour = rng.choice(("弱劳动力或半劳动力", "丧失劳动力"))
            if 3 <= age <= 5:
                member.schooling = "学前教育"
            elif 6 <= age <= 11:
                member.schooling = "小学"
            elif 12 <= age <= 14:
                member.schooling = "初中"
            elif 15 <= age <= 17:
                member.schooling = rng.choice(("高中", "中职", "辍学"))
            elif 18 <= age <= 22 and rng.random() < 0.4:
                member.schooling = rng.choice(("高职高专", "本科及以上"))
            member.insured = rng.random() < 0.95
            if age >= 60 and rng.random() < 0.04:
                member.died_on = self.as_of - timedelta(days=rng.randrange(30, 400))

    # --- registry -------------------------------------------------------------------
    def registry_records(self, households: list[Household]) -> list[Record | RawLine]:
        spec = self.specs["registry"]
        records: list[Record | RawLine] = []
        for household in households:
            for member in household.members:
                values: dict[str, Cell] = {
                    "prefecture": "怀化市" if household.county.code.startswith("4312") else "湘西土家族苗族自治州",
                    "county_code": self.county_label(household),
                    "township": household.township.name,
                    "village": household.village,
                    "village_code": household.village_code,
                    "household_number": household.registry_number or "",
                    "name": self.written_name(member.name),
                    "identity_number": self.identity_quirk(member.identity_number),
                    "sex": member.sex,
                    "ethnicity": member.ethnicity,
                    "relation_to_head": member.relation,
                    "poverty_category": household.poverty_category,
                    "poverty_status": household.poverty_status,
                    "exit_year": str(household.exit_year or ""),
                    "poverty_cause": household.cause,
                    "health": member.health,
                    "labour_capacity": member.labour,
                    "schooling": member.schooling,
                    "claims_insured": "是" if member.insured or self.rng.random() < 0.5 else "否",
                    "claims_unsafe_house": "是" if household.housing_level in {"C", "D"} else "否",
                    "claims_safe_water": "是",
                    "phone": f"13{self.rng.randrange(100000000, 999999999)}"
                    if member.relation == "户主" and self.rng.random() < 0.6
                    else "",
                }
                records.append(_columns(spec, values))
        self._whole_row_damage(records, spec)
        return records

    def _whole_row_damage(self, records: list[Record | RawLine], spec: SourceSpec) -> None:
        """A duplicated row, a row with a delimiter missing, blank lines, and a row naming nobody."""
        width = len(spec.columns)
        if len(records) > 6 and not isinstance(records[4], RawLine) and not isinstance(records[2], RawLine):
            records.insert(5, list(records[4]))  # exported twice
            broken = [str(cell) for cell in records[2]]
            broken[1:3] = [broken[1] + broken[2]]  # a delimiter lost between two fields
            records.insert(3, RawLine(csv_line(broken, spec.file.delimiter)))
        records.insert(len(records) // 2, RawLine(""))
        records.insert(len(records) // 3, RawLine("," * (width - 1)))
        nobody: list[Cell] = [""] * width
        nobody[width - 1] = "备注：此行数据缺失"
        records.append(nobody)

    # --- dibao ----------------------------------------------------------------------
    def dibao_records(self, households: list[Household]) -> list[Record]:
        spec = self.specs["dibao"]
        records: list[Record] = []
        for index, household in enumerate(h for h in households if h.dibao_category):
            status = "停发" if index % 9 == 4 else "正常"
            members = household.members if household.dibao_category == "农村低保" else household.members[:1]
            payment = 350.0 * len(members) if household.dibao_category == "农村低保" else 560.0
            started = date(self.rng.randrange(2015, 2020), self.rng.randrange(1, 13), 1)
            for member in members:
                number = self.identity_quirk(member.identity_number)
                values: dict[str, Cell] = {
                    "county_code": self.county_label(household),
                    "township": household.township.name,
                    "village": household.village,
                    "support_category": household.dibao_category or "",
                    "head_name": household.head.name,
                    "head_identity_number": household.head.identity_number,
                    "name": self.written_name(member.name),
                    "identity_number": float(number) if number.endswith("000") and number.isdigit() else number,
                    "relation_to_head": "本人" if member.relation == "户主" else member.relation,
                    "supported_members": len(members),
                    "monthly_payment": noise.format_money(payment, noise.MONEY_STYLES[index % 4]),
                    "support_start": noise.format_month(started, noise.MONTH_STYLES[index % 3]),
                    "status": status,
                    "stop_date": noise.format_date(self.as_of - timedelta(days=40), noise.DATE_STYLES[index % 6])
                    if status == "停发"
                    else "",
                }
                records.append(_columns(spec, values))
        if len(records) > 4:
            records.insert(3, [""] * len(spec.columns))  # an empty sheet row
        return records

    # --- insurance ------------------------------------------------------------------
    def insurance_records(self, households: list[Household]) -> list[Record | RawLine]:
        spec = self.specs["insurance"]
        records: list[Record | RawLine] = []
        for household in households:
            for member in household.members:
                if not member.insured or member.died_on:
                    continue
                employee = self.rng.random() < 0.03
                subsidy = ""
                if household.registry_number:
                    subsidy = "建档立卡贫困人口"
                elif household.dibao_category:
                    subsidy = "低保对象" if household.dibao_category == "农村低保" else "特困人员"
                values: dict[str, Cell] = {
                    "name": self.written_name(member.name),
                    "identity_number": self.identity_quirk(member.identity_number),
                    "sex": member.sex,
                    "birth_date": f"{member.birth_date:%Y%m%d}",
                    "county_code": household.county.code,
                    "scheme": "职工基本医疗保险" if employee else "城乡居民基本医疗保险",
                    "year": str(self.as_of.year),
                    "status": "参保缴费",
                    "subsidy_category": "" if employee else subsidy,
                    "personal_contribution": "0" if subsidy else noise.format_money(250.0, "plain"),
                }
                records.append(_columns(spec, values))
        self._whole_row_damage(records, spec)
        return records

    # --- housing --------------------------------------------------------------------
    def housing_records(self, households: list[Household]) -> list[Record | RawLine]:
        spec = self.specs["housing"]
        records: list[Record | RawLine] = []
        for index, household in enumerate(households):
            if household.housing_level is None:
                continue
            head = household.members[1] if index % 10 == 3 and len(household.members) > 1 else household.head
            unsafe = household.housing_level in {"C", "D"}
            done = household.renovation_status in {"已竣工", "已验收"}
            appraised = self.as_of - timedelta(days=self.rng.randrange(60, 900))
            values: dict[str, Cell] = {
                "county_code": self.county_label(household),
                "township": household.township.name,
                "village": household.village,
                "head_name": self.written_name(head.name),
                "head_identity_number": self.identity_quirk(head.identity_number),
                "household_size": str(len(household.members)),
                "household_type": "建档立卡贫困户" if household.registry_number else "低保户",
                "appraisal_level": household.housing_level,
                "appraisal_date": noise.format_date(appraised, noise.DATE_STYLES[index % 6]),
                "renovation_method": self.rng.choice(("拆除重建", "修缮加固")) if unsafe else "无需改造",
                "renovation_status": household.renovation_status,
                "completion_date": noise.format_date(appraised + timedelta(days=45), noise.DATE_STYLES[(index + 1) % 6])
                if done
                else "",
                "subsidy": noise.format_money(21000.0 if unsafe else None, noise.MONEY_STYLES[index % 4]),
            }
            records.append(_columns(spec, values))
        self._whole_row_damage(records, spec)
        return records

    # --- hukou ----------------------------------------------------------------------
    def hukou_records(self, households: list[Household]) -> list[Record | RawLine]:
        spec = self.specs["hukou"]
        records: list[Record | RawLine] = []
        for index, person, household in self._people(households):
            moved = not person.died_on and index % 23 == 0
            if not person.died_on and not moved:
                continue
            when = person.died_on or self.as_of - timedelta(days=100)
            values: dict[str, Cell] = {
                "name": person.name,
                "identity_number": person.identity_number,
                "sex": person.sex,
                "reason": "死亡" if person.died_on else "迁出",
                "cancellation_date": when.isoformat(),
                "county_code": household.county.code,
            }
            records.append(_columns(spec, values))
        return records

    @staticmethod
    def _people(households: list[Household]) -> list[tuple[int, Person, Household]]:
        people = [(person, household) for household in households for person in household.members]
        return [(index, person, household) for index, (person, household) in enumerate(people)]


def generate_batch(
    out: Path,
    persons: int = 120,
    seed: int = 1,
    as_of: date = DEFAULT_AS_OF,
    counties: Sequence[str] = DEFAULT_COUNTIES,
) -> BatchSummary:
    """Write one landing batch of about ``persons`` registry persons into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    writer = BatchWriter(seed, as_of, counties)
    registry, outside, others = writer.population(persons)
    everyone = registry + outside + others
    specs = writer.specs
    rows: dict[str, int] = {}

    registry_rows = writer.registry_records(registry)
    write_csv(out / FILE_NAMES["registry"], specs["registry"], registry_rows)
    rows["registry"] = len(registry_rows)

    dibao_rows = writer.dibao_records(registry + outside)
    county = registry[0].county.name
    total: list[Cell] = ["合计", *([""] * (len(specs["dibao"].columns) - 1))]
    total[[c.name for c in specs["dibao"].columns].index("supported_members")] = len(dibao_rows)
    write_xlsx(
        out / FILE_NAMES["dibao"],
        specs["dibao"],
        dibao_rows,
        title_rows=(f"{county}农村低保及特困供养花名册（{as_of.year}年{as_of.month}月）", f"填报单位：{county}民政局"),
        total_row=total,
    )
    rows["dibao"] = len(dibao_rows) + 1

    insurance_rows = writer.insurance_records(everyone)
    write_csv(out / FILE_NAMES["insurance"], specs["insurance"], insurance_rows)
    rows["insurance"] = len(insurance_rows)

    housing_rows = writer.housing_records(registry + outside)
    write_csv(out / FILE_NAMES["housing"], specs["housing"], housing_rows)
    rows["housing"] = len(housing_rows)

    hukou_rows = writer.hukou_records(everyone)
    write_csv(out / FILE_NAMES["hukou"], specs["hukou"], hukou_rows)
    rows["hukou"] = len(hukou_rows)

    return BatchSummary(
        folder=out,
        households=len(everyone),
        registry_persons=sum(len(h.members) for h in registry),
        rows=rows,
    )
