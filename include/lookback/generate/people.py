"""A small population of rural households in real Hunan counties, with valid identity numbers.

This is the clean truth that exports are written from; :mod:`lookback.generate.noise`
then damages the written copies the way real exports are damaged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from lookback.standardise.identity import check_character
from lookback.standardise.places import CountyResolver, Division

# Surnames roughly by frequency in Hunan, so that common names collide as they do.
SURNAMES = (
    ("刘", 80), ("李", 70), ("王", 60), ("张", 55), ("陈", 50), ("杨", 40), ("彭", 30), ("谭", 30),
    ("周", 28), ("黄", 27), ("罗", 26), ("唐", 25), ("邓", 22), ("曾", 22), ("胡", 20), ("肖", 18),
    ("吴", 18), ("田", 16), ("向", 14), ("龙", 12), ("石", 10), ("姚", 10), ("贺", 9), ("蒋", 9),
    ("舒", 6), ("覃", 6), ("粟", 5), ("杜", 5), ("章", 4), ("蓝", 3),
)  # fmt: skip
GIVEN_CHARACTERS = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀英华兰平刚桂红玉梅建国志文斌辉霞云凤金福德春生林海"
DOT_NAMES = ("阿依古丽·买买提", "热依拉·吐尔逊", "努尔·艾力")
ETHNIC_BY_COUNTY = {"431230": "侗族", "433130": "土家族", "431224": "汉族"}


@dataclass
class Person:
    name: str
    identity_number: str
    sex: str  # 男 / 女
    birth_date: date
    relation: str
    ethnicity: str
    health: str = "健康"
    labour: str = "普通劳动力"
    schooling: str = ""
    insured: bool = True
    scheme: str = "城乡居民基本医疗保险"
    died_on: date | None = None


@dataclass
class Household:
    key: int
    county: Division
    township: Division
    village_code: str
    village: str
    members: list[Person] = field(default_factory=list)
    registry_number: str | None = None  # None: not in the poverty registry
    poverty_category: str = "一般贫困户"
    poverty_status: str = "已脱贫（享受政策）"
    exit_year: int | None = 2019
    cause: str = "因病"
    dibao_category: str | None = None  # 农村低保 / 农村特困（分散供养） / …
    dibao_status: str = "正常"
    housing_level: str | None = "B"  # None: never appraised
    renovation_status: str = ""  # blank while the house needs no renovation

    @property
    def head(self) -> Person:
        return self.members[0]


def make_identity_number(county_code: str, born: date, male: bool, used: set[str], rng: random.Random) -> str:
    """A valid, unused 18-character number; never one ending in ``000`` (which reads as Excel damage)."""
    while True:
        sequence = rng.randrange(1, 999)
        if sequence % 2 != (1 if male else 0) or sequence % 100 == 0:
            continue
        first_17 = f"{county_code}{born:%Y%m%d}{sequence:03d}"
        number = first_17 + check_character(first_17)
        if number not in used:
            used.add(number)
            return number


class PopulationBuilder:
    """Builds households deterministically from a seed."""

    def __init__(self, resolver: CountyResolver, county_codes: list[str], seed: int, as_of: date) -> None:
        self.rng = random.Random(seed)
        self.resolver = resolver
        self.as_of = as_of
        self.used_numbers: set[str] = set()
        counties = {division.code: division for division in resolver.counties()}
        self.counties = [counties[code] for code in county_codes]
        self._surnames = [surname for surname, _ in SURNAMES]
        self._weights = [weight for _, weight in SURNAMES]
        self._next_key = 1

    def name(self, surname: str | None = None) -> str:
        family = surname or self.rng.choices(self._surnames, self._weights)[0]
        given = "".join(self.rng.choice(GIVEN_CHARACTERS) for _ in range(self.rng.choice((1, 2, 2))))
        return family + given

    def birth(self, age_low: int, age_high: int) -> date:
        age_days = self.rng.randrange(age_low * 365 + 1, age_high * 365 + 300)
        return self.as_of - timedelta(days=age_days)

    def person(
        self, county: Division, relation: str, male: bool, age: tuple[int, int], surname: str | None = None
    ) -> Person:
        born = self.birth(*age)
        number = make_identity_number(county.code, born, male, self.used_numbers, self.rng)
        return Person(
            name=self.name(surname),
            identity_number=number,
            sex="男" if male else "女",
            birth_date=born,
            relation=relation,
            ethnicity=ETHNIC_BY_COUNTY.get(county.code, "汉族"),
        )

    def household(self) -> Household:
        county = self.rng.choice(self.counties)
        township = self.rng.choice(self.resolver.townships(county.code))
        village_number = self.rng.randrange(201, 230)
        household = Household(
            key=self._next_key,
            county=county,
            township=township,
            village_code=f"{township.code}{village_number:03d}",
            village=f"{self.rng.choice('青石白马龙凤桃李新和')}{self.rng.choice('山溪坪塘湾冲坳')}村",
        )
        self._next_key += 1
        head_male = self.rng.random() < 0.85
        head = self.person(county, "户主", head_male, (30, 75))
        surname = head.name[0] if head_male else None
        household.members.append(head)
        if self.rng.random() < 0.8:
            household.members.append(self.person(county, "配偶", not head_male, (28, 72)))
        for _ in range(self.rng.choice((0, 1, 1, 2, 2, 3))):
            son = self.rng.random() < 0.5
            child = self.person(county, "之子" if son else "之女", son, (3, 25), surname if head_male else None)
            household.members.append(child)
        if self.rng.random() < 0.25:
            household.members.append(self.person(county, "之母", False, (70, 90)))
        return household
