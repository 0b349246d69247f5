"""Places: county names and codes to 6-digit county codes, via the Hunan division table.

The table ``include/divisions/hunan.csv`` is the project's own copy of the official
statistical division codes for Hunan (province, prefectures, counties, townships), with
historical codes added from ``include/divisions/historical.csv``; ``lookback divisions``
rebuilds it from the official lists kept in ``include/divisions/official/`` (or from
another copy of them: ``--from DIR``). A county may be delivered as its
full name (通道侗族自治县), a short name (通道县, 通道), with its prefecture in front
(怀化市通道县), as its code, or as a longer code that starts with it (a village code).
Historical codes and names resolve to the code in force now.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lookback.errors import ConfigError
from lookback.paths import divisions_dir
from lookback.standardise.codes import normalise_code

DIVISION_FIELDS = ("code", "name", "level", "parent_code", "status", "successor_code")
HUNAN = "43"
_ETHNIC_GROUPS = (
    "土家|苗|侗|瑶|白|回|壮|彝|藏|蒙古|维吾尔|满|朝鲜|布依|哈尼|傣|黎|傈僳|佤|畲|拉祜|水|东乡|纳西|景颇"
    "|柯尔克孜|土|达斡尔|仫佬|羌|布朗|撒拉|毛南|仡佬|锡伯|阿昌|普米|塔吉克|怒|乌孜别克|俄罗斯|鄂温克|德昂"
    "|保安|裕固|京|塔塔尔|独龙|鄂伦春|赫哲|门巴|珞巴|基诺|哈萨克|各"
)
_AUTONOMOUS = re.compile(f"^(.+?)(?:(?:{_ETHNIC_GROUPS})族)+自治(县|州)$")
_COUNTY_SUFFIXES = ("自治县", "县", "市", "区")


@dataclass(frozen=True)
class Division:
    code: str
    name: str
    level: str  # province / prefecture / county / township
    parent_code: str
    status: str  # current / historical
    successor_code: str  # for historical codes: the code in force now


@dataclass(frozen=True)
class PlaceResult:
    county_code: str | None
    problem: str | None = None  # unknown_county / ambiguous_county; None when found or blank


def build_division_table(official_dir: Path, historical_csv: Path) -> list[Division]:
    """Hunan's divisions from the official CSV lists, plus the historical additions."""

    def rows(name: str) -> Iterable[dict[str, str]]:
        path = official_dir / name
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                yield from csv.DictReader(handle)
        except OSError as error:
            raise ConfigError(f"{path}: cannot be read: {error.strerror}") from error

    divisions = [
        Division(row["code"], row["name"], "province", "", "current", "")
        for row in rows("provinces.csv")
        if row["code"] == HUNAN
    ]
    divisions += [
        Division(row["code"], row["name"], "prefecture", row["provinceCode"], "current", "")
        for row in rows("cities.csv")
        if row["provinceCode"] == HUNAN
    ]
    divisions += [
        Division(row["code"], row["name"], "county", row["cityCode"], "current", "")
        for row in rows("areas.csv")
        if row["provinceCode"] == HUNAN
    ]
    divisions += [
        Division(row["code"], row["name"], "township", row["areaCode"], "current", "")
        for row in rows("streets.csv")
        if row["provinceCode"] == HUNAN
    ]
    with historical_csv.open(encoding="utf-8", newline="") as handle:
        divisions += [
            Division(row["code"], row["name"], row["level"], row["parent_code"], "historical", row["successor_code"])
            for row in csv.DictReader(handle)
        ]
    return sorted(divisions, key=lambda division: (len(division.code), division.code))


def write_division_table(divisions: Iterable[Division], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(DIVISION_FIELDS)
        for division in divisions:
            writer.writerow([getattr(division, field) for field in DIVISION_FIELDS])


def load_division_table(path: Path | None = None) -> tuple[Division, ...]:
    table = path or divisions_dir() / "hunan.csv"
    try:
        with table.open(encoding="utf-8", newline="") as handle:
            return tuple(Division(**row) for row in csv.DictReader(handle))
    except (OSError, TypeError) as error:
        raise ConfigError(f"{table}: not a readable division table: {error}") from error


def short_names(full_name: str) -> list[str]:
    """Names people use for a division: 通道侗族自治县 → 通道县, 通道; 溆浦县 → 溆浦;
    湘西土家族苗族自治州 → 湘西州, 湘西."""
    names = [full_name]
    autonomous = _AUTONOMOUS.match(full_name)
    if autonomous:
        names += [autonomous.group(1) + autonomous.group(2), autonomous.group(1)]
        return names
    for suffix in _COUNTY_SUFFIXES:
        stem = full_name.removesuffix(suffix)
        if stem != full_name:
            if len(stem) >= 2:
                names.append(stem)
            break
    return names


# What people leave off a township or village name (牙屯堡镇 → 牙屯堡, 青石村 → 青石,
# 大高坪苗族乡 → 大高坪), longest first.
_PLACE_SUFFIXES = re.compile(
    r"(?:(?:(?:苗|瑶|侗|土家|白|回|壮|满|蒙古|维吾尔)族)*乡|街道办事处|街道|办事处|社区居委会|社区居民委员会|"
    r"居委会|村民委员会|村委会|社区|镇|村)$"
)


def place_key(name: str | None) -> str | None:
    """The form township and village names are compared in: without spaces and the suffixes
    people leave off (青石村 = 青石 = 青石村委会; 大高坪苗族乡 = 大高坪 = 大高坪乡), one after
    another (王家村村委会 = 王家村 = 王家; 廖家村镇 = 廖家村), while two characters are left."""
    # Normalised again once the spaces are gone: NFKC writes ¯ as a space and a combining
    # macron, which joins the letter before it only without the space.
    text = unicodedata.normalize("NFKC", "".join(unicodedata.normalize("NFKC", name or "").split()))
    if not text:
        return None
    while (stem := _PLACE_SUFFIXES.sub("", text)) != text and len(stem) >= 2:
        text = stem
    return text


def _fold(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


class CountyResolver:
    """Resolves delivered county names or codes to the 6-digit code in force now."""

    def __init__(self, divisions: Iterable[Division]) -> None:
        self._divisions = tuple(divisions)
        self._counties = {d.code: d for d in self._divisions if d.level == "county"}
        prefectures = [d for d in self._divisions if d.level == "prefecture"]
        self._prefixes = sorted(
            {"湖南省", "湖南"}
            | {p.name for p in prefectures}
            | {n for p in prefectures for n in short_names(p.name)[1:]},
            key=len,
            reverse=True,
        )
        # A county column holds counties: a bare stem shared with a prefecture (长沙 of
        # 长沙市 and 长沙县) means the county, the only county of that name.
        candidates: dict[str, set[str]] = {}
        for county in self._counties.values():
            current = county.successor_code or county.code
            for alias in short_names(county.name):
                candidates.setdefault(_fold(alias), set()).add(current)
        self._by_name = candidates
        self._resolved: dict[str, PlaceResult] = {}
        self._townships: dict[str, list[Division]] = {}
        for division in self._divisions:
            if division.level == "township":
                self._townships.setdefault(division.parent_code, []).append(division)

    def resolve(self, raw: str | None) -> PlaceResult:
        """The county a delivered name or code means (the same few values repeat on every row)."""
        key = raw or ""
        found = self._resolved.get(key)
        if found is None:
            found = self._resolved[key] = self._resolve(key)
        return found

    def _resolve(self, raw: str) -> PlaceResult:
        text = _fold(raw)
        if not text or text == "-":
            return PlaceResult(county_code=None)
        code = normalise_code(text)
        if code.value is not None:
            return self._resolve_code(code.value)
        if code.is_damaged or any(character.isdigit() for character in text):
            return PlaceResult(county_code=None, problem="unknown_county")
        for attempt in self._with_prefixes_removed(text):
            codes = self._by_name.get(attempt)
            if codes and len(codes) == 1:
                return PlaceResult(county_code=next(iter(codes)))
            if codes:
                return PlaceResult(county_code=None, problem="ambiguous_county")
        return PlaceResult(county_code=None, problem="unknown_county")

    def _with_prefixes_removed(self, text: str) -> list[str]:
        attempts = [text]
        for _ in range(2):  # province, then prefecture
            for prefix in self._prefixes:
                if text.startswith(prefix) and len(text) > len(prefix):
                    text = text[len(prefix) :]
                    attempts.append(text)
                    break
        return attempts

    def _resolve_code(self, digits: str) -> PlaceResult:
        if len(digits) < 6:
            return PlaceResult(county_code=None, problem="unknown_county")
        county = self._counties.get(digits[:6])
        if county is None:
            return PlaceResult(county_code=None, problem="unknown_county")
        return PlaceResult(county_code=county.successor_code or county.code)

    def name_of(self, code: str) -> str | None:
        county = self._counties.get(code)
        return county.name if county else None

    def townships(self, county_code: str) -> list[Division]:
        return self._townships.get(county_code, [])

    def counties(self) -> list[Division]:
        return [d for d in self._counties.values() if d.status == "current"]


@lru_cache(maxsize=4)
def county_resolver(path: Path | None = None) -> CountyResolver:
    """The resolver over the project's division table (cached)."""
    return CountyResolver(load_division_table(path))
