"""The true state of each household, and the look-back findings planted in it.

:func:`settle` gives every household a consistent base state (registered households
insured and subsidised, houses safe or renovated, poverty categories agreeing with the
allowance roster, children at school). :func:`plant_findings` then breaks that state for a
known share of people and households, one rule at a time, at the rates in
:data:`PLANT_RATES`. The complete list of true findings (planted ones and any that arise
from the export noise) is computed afterwards by :mod:`lookback.generate.truth`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType
from typing import TypeVar

from lookback.generate import noise
from lookback.generate.people import Household, Person

# Share of the eligible people or households that get each finding planted.
PLANT_RATES = MappingProxyType(
    {
        "ID_INVALID": 0.012,  # registry persons: a mistyped, damaged or missing number in the registry
        "ID_CONFLICT": 0.01,  # registry children: recorded with a parent's number
        "DUPLICATE_PERSON": 0.005,  # registry persons: listed twice, or also in another household
        "DECEASED_LISTED": 0.01,  # registry persons aged 55+: dead, still listed
        "MED_NOT_INSURED": 0.03,  # registry persons: no paid enrolment this year
        "MED_CLAIM_MISMATCH": 0.01,  # insured registry persons the registry says are not insured
        "MED_NOT_SUBSIDISED": 0.02,  # insured registry persons without a subsidised category
        "HOUSING_UNSAFE": 0.03,  # registry households: C/D, not renovated
        "HOUSING_NOT_APPRAISED": 0.02,  # registry households: no appraisal at all
        "HOUSING_CLAIM_MISMATCH": 0.02,  # registry households: 是否危房户 wrong
        "DIBAO_CATEGORY_MISMATCH": 0.02,  # registry households: 贫困户属性 disagrees with the roster
        "NO_SAFETY_NET": 0.01,  # registry households: not out of poverty, nobody can work, no allowance
        "EDU_OUT_OF_SCHOOL": 0.03,  # registry children aged 6-15: not at school
        "RELAPSE_RISK": 0.3,  # exited households with a planted MED/HOUSING finding: a member seriously ill
    }
)
T = TypeVar("T")
DAMAGING_REGISTRY_NOISE = ("wrong_check_character", "transposed", "blank", "excel_scientific", "excel_zeros")
LABOUR_CAPABLE = ("普通劳动力", "技能劳动力", "弱劳动力或半劳动力")


@dataclass(frozen=True, slots=True)
class Planted:
    rule_code: str
    subject_kind: str  # person / household / dibao_household
    subject_key: str


def _schooling_for(age: int, rng: random.Random) -> str:
    if 3 <= age <= 5:
        return "学前教育"
    if 6 <= age <= 11:
        return "小学"
    if 12 <= age <= 14:
        return "初中"
    if age == 15:
        return rng.choice(("初中", "高中"))
    if 16 <= age <= 18:
        return rng.choice(("高中", "中职", ""))
    if 19 <= age <= 22:
        return rng.choice(("高职高专", "本科及以上", "", ""))
    return ""


def _labour_for(person: Person, age: int, rng: random.Random) -> str:
    if age < 16 or age > 64:
        return "无劳动力"
    if person.health != "健康":
        return rng.choice(("弱劳动力或半劳动力", "丧失劳动力"))
    return rng.choice(("普通劳动力", "普通劳动力", "技能劳动力"))


def settle(households: list[Household], as_of: date, rng: random.Random) -> None:
    """Give every household a consistent state in which no look-back rule fires."""
    for household in households:
        for person in household.members:
            age = person.age(as_of)
            person.health = (
                "健康" if rng.random() < 0.86 else rng.choice(("长期慢性病", "患有大病", "残疾", "残疾,长期慢性病"))
            )
            person.labour = _labour_for(person, age, rng)
            person.schooling = _schooling_for(age, rng)
            person.insurance = "paid" if household.kind != "other" or rng.random() < 0.95 else "none"
            person.scheme = "职工基本医疗保险" if rng.random() < 0.03 else "城乡居民基本医疗保险"
        if household.kind == "registry":
            _settle_registry(household, as_of, rng)
        elif household.kind == "outside":
            household.dibao_category = rng.choices(
                ("农村低保", "农村特困（分散供养）", "农村特困（集中供养）"), (70, 20, 10)
            )[0]
            household.dibao_status = "正常" if rng.random() < 0.9 else "停发"
            household.dibao_start = date(rng.randrange(2014, as_of.year), rng.randrange(1, 13), 1)
            _settle_housing(household, as_of, rng, appraised=rng.random() < 0.8)
        else:
            _settle_housing(household, as_of, rng, appraised=rng.random() < 0.1)
            for person in household.members:
                if person.age(as_of) >= 65 and rng.random() < 0.03:  # deaths outside the registry, in hukou only
                    person.died_on = as_of - timedelta(days=rng.randrange(10, 360))
                    person.insurance = "prior_year"
        _set_subsidy(household)


def _set_subsidy(household: Household) -> None:
    for person in household.members:
        if person.scheme != "城乡居民基本医疗保险":
            person.subsidy = ""
        elif household.kind == "registry":
            person.subsidy = "建档立卡贫困人口"
        elif household.dibao_category and household.dibao_status == "正常":
            person.subsidy = "低保对象" if household.dibao_category == "农村低保" else "特困人员"
        else:
            person.subsidy = ""


def _settle_housing(household: Household, as_of: date, rng: random.Random, appraised: bool = True) -> None:
    if not appraised:
        household.housing_level = ""
        return
    household.housing_level = rng.choices(("A", "B", "C", "D"), (20, 60, 12, 8))[0]
    household.appraisal_date = as_of - timedelta(days=rng.randrange(60, 1100))
    household.renovation_status = rng.choice(("已竣工", "已验收")) if household.housing_level in {"C", "D"} else ""
    if rng.random() < 0.05:
        household.housing_earlier_level = rng.choice(("C", "D"))
    if len(household.members) > 1 and rng.random() < 0.1:
        household.housing_head_index = rng.randrange(1, len(household.members))
    household.claims_unsafe_house = "否"


def _settle_registry(household: Household, as_of: date, rng: random.Random) -> None:
    household.registry_number = f"{household.village_code}{int(household.key[1:]):06d}"
    household.cause = rng.choice(("因病", "因残", "因学", "因灾", "缺技术", "缺劳力", "缺资金", "自身发展动力不足"))
    household.poverty_status = rng.choices(
        ("已脱贫（享受政策）", "已脱贫（不再享受政策）", "未脱贫", "返贫"), (70, 8, 18, 4)
    )[0]
    exited = household.poverty_status.startswith("已脱贫")
    household.exit_year = rng.randrange(2014, as_of.year + 1) if exited else None
    support = rng.choices(("", "农村低保", "农村特困（分散供养）"), (65, 28, 7))[0]
    if support == "农村低保":
        household.poverty_category = "低保脱贫户" if exited else "低保贫困户"
        household.dibao_category = support
    elif support:
        household.poverty_category = "特困供养脱贫户" if exited else "特困供养贫困户"
        household.dibao_category = support
    else:
        household.poverty_category = "一般脱贫户" if exited else "一般贫困户"
    household.dibao_status = "正常"
    household.dibao_start = date(rng.randrange(2014, as_of.year), rng.randrange(1, 13), 1)
    _settle_housing(household, as_of, rng)
    if household.poverty_status in {"未脱贫", "返贫"} and not household.dibao_category:
        _ensure_someone_can_work(household, as_of)
    for person in household.members:
        person.claims_insured = "是"


def _ensure_someone_can_work(household: Household, as_of: date) -> None:
    for person in household.members:
        if 16 <= person.age(as_of) <= 64:
            person.labour = "普通劳动力" if person.health == "健康" else "弱劳动力或半劳动力"
            return
    household.dibao_category = "农村低保"  # nobody of working age: the household gets the allowance
    household.poverty_category = "低保贫困户"


def _sample(items: Sequence[T], rate: float, rng: random.Random) -> list[T]:
    count = round(len(items) * rate)
    if rate > 0 and items and count == 0:
        count = 1  # a small batch still carries every rule
    return rng.sample(list(items), min(count, len(items)))


def plant_findings(households: list[Household], as_of: date, rng: random.Random, scale: float = 1.0) -> list[Planted]:
    """Break the settled state for a share of subjects, rule by rule; returns what was planted."""
    registry = [h for h in households if h.kind == "registry"]
    persons = [p for h in registry for p in h.members if not p.died_on and not p.duplicate]
    planted: list[Planted] = []

    def rate(rule: str) -> float:
        return PLANT_RATES[rule] * scale

    def mark(rule: str, kind: str, key: str) -> None:
        planted.append(Planted(rule, kind, key))

    for person in _sample([p for p in persons if p.registry_identity_noise == "none"], rate("ID_INVALID"), rng):
        person.registry_identity_noise = rng.choice(DAMAGING_REGISTRY_NOISE)
        person.registry_identity_written = noise.damage_identity(
            person.identity_number, person.registry_identity_noise, rng
        )
        mark("ID_INVALID", "person", person.key)

    by_key = {h.key: h for h in registry}
    children = [p for p in persons if p.relation in {"之子", "之女"} and p.registry_identity_noise == "none"]
    for child in _sample(children, rate("ID_CONFLICT"), rng):
        parent = by_key[child.household_key].head
        child.registry_identity_noise = "parent_number"
        child.registry_identity_written = parent.identity_number
        mark("ID_CONFLICT", "person", child.key)
        mark("ID_CONFLICT", "person", parent.key)

    # The county's other registry households, in registry order, without listing them for each person.
    in_county: dict[str, list[Household]] = {}
    for household in registry:
        in_county.setdefault(household.county_code, []).append(household)
    position = {h.key: index for households_of in in_county.values() for index, h in enumerate(households_of)}
    for person in _sample(persons, rate("DUPLICATE_PERSON"), rng):
        county = in_county[by_key[person.household_key].county_code]
        own = position[person.household_key]
        if len(county) > 1 and rng.random() < 0.5:
            chosen = rng.randrange(len(county) - 1)  # what rng.choice draws from the others
            person.duplicate = county[chosen + (chosen >= own)].key
        else:
            person.duplicate = "repeat"
        mark("DUPLICATE_PERSON", "person", person.key)

    elderly = [p for p in persons if p.age(as_of) >= 55 and p.relation != "户主"]
    for person in _sample(elderly, rate("DECEASED_LISTED"), rng):
        person.died_on = as_of - timedelta(days=rng.randrange(20, 500))
        person.insurance = "prior_year"
        mark("DECEASED_LISTED", "person", person.key)

    living = [p for p in persons if not p.died_on]
    for person in _sample(living, rate("MED_NOT_INSURED"), rng):
        person.insurance = rng.choice(("none", "suspended", "terminated", "prior_year"))
        person.claims_insured = "是" if rng.random() < 0.6 else "否"
        mark("MED_NOT_INSURED", "person", person.key)
    insured = [p for p in living if p.insurance == "paid"]
    for person in _sample(insured, rate("MED_CLAIM_MISMATCH"), rng):
        person.claims_insured = "否"
        mark("MED_CLAIM_MISMATCH", "person", person.key)
    residents = [p for p in insured if p.scheme == "城乡居民基本医疗保险"]
    for person in _sample(residents, rate("MED_NOT_SUBSIDISED"), rng):
        person.subsidy = ""
        mark("MED_NOT_SUBSIDISED", "person", person.key)

    appraised = [h for h in registry if h.housing_level]
    unsafe = list(_sample(appraised, rate("HOUSING_UNSAFE"), rng))
    for household in unsafe:
        household.housing_level = rng.choice(("C", "D"))
        household.renovation_status = rng.choice(("未改造", "改造中"))
        household.claims_unsafe_house = "是"
        mark("HOUSING_UNSAFE", "household", household.key)
    unsafe_keys = {h.key for h in unsafe}
    rest = [h for h in appraised if h.key not in unsafe_keys]
    for household in _sample(rest, rate("HOUSING_NOT_APPRAISED"), rng):
        household.housing_level = ""
        household.renovation_status = ""
        mark("HOUSING_NOT_APPRAISED", "household", household.key)
    for household in _sample([h for h in appraised if h.housing_level], rate("HOUSING_CLAIM_MISMATCH"), rng):
        household.claims_unsafe_house = "否" if household.claims_unsafe_house == "是" else "是"
        mark("HOUSING_CLAIM_MISMATCH", "household", household.key)

    for household in _sample(registry, rate("DIBAO_CATEGORY_MISMATCH"), rng):
        if household.dibao_category:
            household.dibao_status = rng.choice(("停发", "注销"))
        else:
            household.dibao_category = "农村低保"
            household.dibao_status = "正常"
            household.dibao_start = date(as_of.year - 1, rng.randrange(1, 13), 1)
        mark("DIBAO_CATEGORY_MISMATCH", "household", household.key)

    candidates = [h for h in registry if not h.dibao_category]
    for household in _sample(candidates, rate("NO_SAFETY_NET"), rng):
        household.poverty_status = rng.choice(("未脱贫", "返贫"))
        household.exit_year = None
        household.poverty_category = "一般贫困户"
        for person in household.members:
            if person.labour in LABOUR_CAPABLE:
                person.labour = rng.choice(("丧失劳动力", "无劳动力"))
                person.health = rng.choice(("患有大病", "残疾"))
        mark("NO_SAFETY_NET", "household", household.key)

    school_age = [p for p in living if 6 <= p.age(as_of) <= 15]
    for child in _sample(school_age, rate("EDU_OUT_OF_SCHOOL"), rng):
        child.schooling = rng.choice(("", "辍学"))
        mark("EDU_OUT_OF_SCHOOL", "person", child.key)

    at_risk_keys = {p.household_key for p in living if p.insurance != "paid"} | unsafe_keys
    at_risk = [h for h in registry if h.key in at_risk_keys and h.poverty_status.startswith("已脱贫")]
    for household in _sample(at_risk, PLANT_RATES["RELAPSE_RISK"], rng):
        household.members[-1].health = rng.choice(("患有大病", "残疾"))
        mark("RELAPSE_RISK", "household", household.key)
    return planted
