"""The synthetic province's true state: households in real Hunan counties and villages,
their members with valid identity numbers, and what is true of each of them.

Built deterministically from a seed by :class:`PopulationBuilder`. The base state is
consistent (everyone insured, houses safe, categories agreeing); :mod:`lookback.generate.plant`
then plants each look-back finding at a known rate, and the exports are written from
this state by :mod:`lookback.generate.exports`.
"""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate

from lookback.errors import LookbackError
from lookback.generate.draws import Draws
from lookback.standardise.identity import CHECK_CHARACTERS, WEIGHTS
from lookback.standardise.places import CountyResolver

# Surnames roughly by frequency in Hunan, so that common names collide as they do.
SURNAMES = (
    ("刘", 80), ("李", 70), ("王", 60), ("张", 55), ("陈", 50), ("杨", 40), ("彭", 30), ("谭", 30),
    ("周", 28), ("黄", 27), ("罗", 26), ("唐", 25), ("邓", 22), ("曾", 22), ("胡", 20), ("肖", 18),
    ("吴", 18), ("田", 16), ("向", 14), ("龙", 12), ("石", 10), ("姚", 10), ("贺", 9), ("蒋", 9),
    ("舒", 6), ("覃", 6), ("粟", 5), ("杜", 5), ("章", 4), ("蓝", 3), ("单", 2), ("查", 1.5),
    ("解", 1), ("仇", 1), ("区", 0.5), ("朴", 0.3),
)  # fmt: skip
# Surnames read other than their characters' usual reading (曾 zeng, 单 shan, 解 xie, 仇 qiu,
# 区 ou, 朴 piao, 查 zha, 覃 qin): SURNAMES gives them their small real share.
SPECIAL_READING_SURNAMES = "曾单解仇区朴查覃"
GIVEN_CHARACTERS = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀英华兰平刚桂红玉梅建国志文斌辉霞云凤金福德春生林海"
# Real characters of given names that many departments' systems cannot type (outside the
# character sets their input methods cover). A third have a second reading (晟 cheng/sheng,
# 珩 hang/heng, 隽 juan/jun, 焘 dao/tao, …) and a clerk may type the one pypinyin does not give.
RARE_CHARACTERS = "玥堃喆昇赟珺琎犇淼垚甦翀祎旻炜琰彧煜璟琛珅瑢湉颀晟珩靓蔚茜昕隽焘瑱玹翯莘玢"
_RARE_SET = frozenset(RARE_CHARACTERS)
# Names of people from minority groups whose names are transliterated with a middle dot;
# they appear in the minority counties.
DOT_GIVEN = ("阿依古丽", "热依拉", "努尔", "古丽", "买买提", "阿不都")
DOT_FAMILY = ("买买提", "吐尔逊", "艾力", "依明", "热合曼")
ETHNIC_GROUPS = {"431230": "侗族", "433130": "土家族", "433124": "苗族", "431226": "苗族", "431229": "苗族"}
# Huaihua's counties were 4330xx before the prefecture became 4312xx in 1998; identity
# numbers issued before then keep the old code for life.
OLD_PREFECTURE = {"4312": "4330"}
OLD_CODE_BEFORE = date(1998, 1, 1)


@dataclass(slots=True)
class Person:
    key: str
    household_key: str
    name: str
    identity_number: str
    sex: str  # 男 / 女
    birth_date: date
    relation: str
    ethnicity: str
    health: str = "健康"
    labour: str = "普通劳动力"
    schooling: str = ""  # blank: not a student
    insurance: str = "paid"  # paid / suspended / terminated / prior_year / none
    scheme: str = "城乡居民基本医疗保险"
    subsidy: str = ""  # 资助参保类别, blank when not subsidised
    claims_insured: str = "是"  # what the registry says
    died_on: date | None = None
    # What the registry recorded, when it differs from the truth (persistent across batches).
    registry_identity_written: str = ""  # blank: the true number
    registry_identity_noise: str = "none"
    duplicate: str = ""  # "" / "repeat" (same household twice) / a household key (also registered there)

    def age(self, as_of: date) -> int:
        years = as_of.year - self.birth_date.year
        return years - ((as_of.month, as_of.day) < (self.birth_date.month, self.birth_date.day))


@dataclass(slots=True)
class Household:
    key: str
    county_code: str
    county_name: str
    township_code: str
    township: str
    village_code: str
    village: str
    kind: str  # registry / outside (allowance household outside the registry) / other
    members: list[Person] = field(default_factory=list)
    registry_number: str = ""
    poverty_category: str = ""
    poverty_status: str = ""
    exit_year: int | None = None
    cause: str = ""
    claims_unsafe_house: str = "否"
    dibao_category: str = ""  # 农村低保 / 农村特困（分散供养） / 农村特困（集中供养） / blank
    dibao_status: str = "正常"
    dibao_start: date | None = None
    housing_level: str = ""  # latest appraisal A/B/C/D; blank: never appraised
    housing_earlier_level: str = ""  # an earlier appraisal, when the house was appraised twice
    renovation_status: str = ""  # 未改造 / 改造中 / 已竣工 / 已验收; blank when not needed
    appraisal_date: date | None = None
    housing_head_index: int = 0  # which member the housing record names as head

    @property
    def head(self) -> Person:
        return self.members[0]

    @property
    def housing_safe(self) -> bool:
        return self.housing_level in {"A", "B"} or self.renovation_status in {"已竣工", "已验收"}


# The check character's weighted sum in parts: over the division code, over the birth date
# (with its YYYYMMDD text), and over the sequence (with its three digits). A few divisions
# and some 36,000 birth dates repeat across a million people; the sequence has 999 values.
def _weighted_sum(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=True))


_DIVISION_SUMS: dict[str, int] = {}
# Years and days of the year apart: a hundred and 366 entries stay at hand, where a table of
# every birth date (36,000) looked up in the people's random order cost more than summing.
_YEARS: dict[int, tuple[str, int]] = {}
_MONTH_DAYS: dict[int, tuple[str, int]] = {}
_SEQUENCES = tuple((f"{n:03d}", _weighted_sum(f"{n:03d}", WEIGHTS[14:17])) for n in range(1000))


def make_identity_number(division_code: str, born: date, male: bool, used: set[str], rng: random.Random) -> str:
    """A valid, unused 18-character number; never one ending in ``000`` (which reads as Excel damage).

    The check character is :func:`~lookback.standardise.identity.check_character`'s,
    summed in parts: division, birth date, sequence."""
    division_sum = _DIVISION_SUMS.get(division_code)
    if division_sum is None:
        division_sum = _DIVISION_SUMS[division_code] = _weighted_sum(division_code, WEIGHTS[:6])
    year = _YEARS.get(born.year)
    if year is None:
        text = f"{born:%Y}"
        year = _YEARS[born.year] = (text, _weighted_sum(text, WEIGHTS[6:10]))
    month_day = _MONTH_DAYS.get(born.month * 100 + born.day)
    if month_day is None:
        text = f"{born:%m%d}"
        month_day = _MONTH_DAYS[born.month * 100 + born.day] = (text, _weighted_sum(text, WEIGHTS[10:14]))
    first_14 = division_code + year[0] + month_day[0]
    weighted = division_sum + year[1] + month_day[1]
    parity = 1 if male else 0
    while True:
        sequence = rng.randrange(1, 999)
        if sequence % 2 != parity or sequence % 100 == 0:
            continue
        digits, sequence_sum = _SEQUENCES[sequence]
        number = f"{first_14}{digits}{CHECK_CHARACTERS[(weighted + sequence_sum) % 11]}"
        if number not in used:
            used.add(number)
            return number


def rare_character_index(name: str) -> int | None:
    """Where the name holds a rare character, if it does."""
    if _RARE_SET.isdisjoint(name):
        return None
    for index, character in enumerate(name):
        if character in RARE_CHARACTERS:
            return index
    return None


def give_rare_characters(households: list[Household], share: float, rng: random.Random) -> None:
    """Give ``share`` of the people a rare character in their given name (never the surname)."""
    people = [person for household in households for person in household.members if "·" not in person.name]
    for person in rng.sample(people, round(len(people) * share)):
        position = rng.randrange(1, len(person.name))
        person.name = person.name[:position] + rng.choice(RARE_CHARACTERS) + person.name[position + 1 :]


class PopulationBuilder:
    """Builds households deterministically from a seed."""

    def __init__(self, resolver: CountyResolver, county_codes: list[str], seed: int, as_of: date) -> None:
        self.rng = Draws(seed)
        self.resolver = resolver
        self.as_of = as_of
        self.used_numbers: set[str] = set()
        counties = {division.code: division for division in resolver.counties()}
        unknown = [code for code in county_codes if code not in counties]
        if unknown:
            raise LookbackError(f"--counties: not current Hunan county codes: {', '.join(unknown)}")
        self.counties = [counties[code] for code in county_codes]
        self._townships = {county.code: resolver.townships(county.code) for county in self.counties}
        # rng.choices(surnames, weights)[0], drawn as it draws it without summing the weights each time.
        self._surnames = tuple(surname for surname, _ in SURNAMES)
        self._surname_bounds = list(accumulate(weight for _, weight in SURNAMES))
        self._surname_total = self._surname_bounds[-1] + 0.0
        self._households = 0
        self._persons = 0
        self._villages: dict[tuple[str, int], str] = {}

    def name(self, county_code: str, surname: str | None = None) -> str:
        if county_code in ETHNIC_GROUPS and surname is None and self.rng.random() < 0.02:
            return f"{self.rng.choice(DOT_GIVEN)}·{self.rng.choice(DOT_FAMILY)}"
        rng = self.rng
        if not surname:
            draw = rng.random() * self._surname_total
            surname = self._surnames[bisect(self._surname_bounds, draw, 0, len(self._surnames) - 1)]
        if rng.choice((1, 2, 2)) == 1:
            return surname + rng.choice(GIVEN_CHARACTERS)
        return surname + rng.choice(GIVEN_CHARACTERS) + rng.choice(GIVEN_CHARACTERS)

    def person(
        self, household: Household, relation: str, male: bool, age: tuple[int, int], surname: str | None = None
    ) -> Person:
        low, high = age
        born = self.as_of - timedelta(days=self.rng.randrange(low * 365 + 1, high * 365 + 300))
        division = household.county_code
        prefix = OLD_PREFECTURE.get(division[:4])
        if prefix and born < OLD_CODE_BEFORE and self.rng.random() < 0.5:
            division = prefix + division[4:]
        self._persons += 1
        return Person(
            key=f"P{self._persons:07d}",
            household_key=household.key,
            name=self.name(household.county_code, surname),
            identity_number=make_identity_number(division, born, male, self.used_numbers, self.rng),
            sex="男" if male else "女",
            birth_date=born,
            relation=relation,
            ethnicity=ETHNIC_GROUPS.get(household.county_code, "汉族") if self.rng.random() < 0.7 else "汉族",
        )

    def household(self, kind: str) -> Household:
        county = self.rng.choice(self.counties)
        township = self.rng.choice(self._townships[county.code])
        village_number = self.rng.randrange(201, 216)
        village = self._villages.get((township.code, village_number))
        if village is None:  # a village keeps its name
            village_rng = random.Random(f"{township.code}{village_number}")
            village = f"{village_rng.choice('青石白马龙凤桃李新和金沙')}{village_rng.choice('山溪坪塘湾冲坳田')}村"
            self._villages[(township.code, village_number)] = village
        self._households += 1
        household = Household(
            key=f"H{self._households:07d}",
            county_code=county.code,
            county_name=county.name,
            township_code=township.code,
            township=township.name,
            village_code=f"{township.code}{village_number:03d}",
            village=village,
            kind=kind,
        )
        head_male = self.rng.random() < 0.85
        head = self.person(household, "户主", head_male, (28, 78))
        head_age = head.age(self.as_of)
        surname = head.name[0] if head_male and "·" not in head.name else None
        household.members.append(head)
        if self.rng.random() < 0.75:
            household.members.append(
                self.person(household, "配偶", not head_male, (max(22, head_age - 8), head_age + 4))
            )
        oldest_child = min(26, head_age - 20)
        for _ in range(self.rng.choice((0, 1, 1, 2, 2, 3)) if oldest_child >= 1 else 0):
            son = self.rng.random() < 0.5
            household.members.append(self.person(household, "之子" if son else "之女", son, (0, oldest_child), surname))
        if head_age < 60 and self.rng.random() < 0.25:
            household.members.append(self.person(household, "之母", False, (head_age + 20, min(head_age + 38, 98))))
        if head_age < 55 and self.rng.random() < 0.1:
            household.members.append(
                self.person(household, "之父", True, (head_age + 22, min(head_age + 38, 96)), surname)
            )
        return household
