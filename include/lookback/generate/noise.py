"""The damage real exports carry, as small functions applied when a value is written.

Each function takes the clean value and returns it as a department would have typed or
exported it (``../shared/specs/sources.md``, "what real exports look like"). The truth
stays clean; only the written copy is touched.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import date
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from lookback.standardise.dates import EXCEL_EPOCH

FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


# Identity numbers ---------------------------------------------------------------------
def id_disability_certificate(number: str, rng: random.Random) -> str:
    """A disability certificate number: the identity number plus category and grade (and an issue suffix)."""
    suffix = f"{rng.randrange(1, 8)}{rng.randrange(1, 5)}"
    return number + suffix + (f"{rng.randrange(0, 10)}{rng.randrange(1, 10)}" if rng.random() < 0.5 else "")


def id_lower_case_x(number: str, _rng: random.Random) -> str:
    return number[:-1] + "x" if number.endswith("X") else number


def id_full_width(number: str, _rng: random.Random) -> str:
    return number.translate(FULL_WIDTH)


def id_padded(number: str, rng: random.Random) -> str:
    """Spaces, a tab or a leading apostrophe typed to stop Excel converting the number."""
    return rng.choice((f"'{number}", f"\t{number}", f" {number} ", f"{number[:6]} {number[6:14]} {number[14:]}"))


def id_fifteen_digits(number: str, _rng: random.Random) -> str:
    """The old 15-digit form (only for people born in the 1900s)."""
    return number[:6] + number[8:17] if number[6:8] == "19" else number


def id_wrong_check_character(number: str, rng: random.Random) -> str:
    wrong = rng.choice([character for character in "0123456789X" if character != number[-1]])
    return number[:-1] + wrong


def id_transposed(number: str, rng: random.Random) -> str:
    """Two adjacent differing digits swapped, as in hand entry."""
    positions = [i for i in range(6, 16) if number[i] != number[i + 1]]
    i = rng.choice(positions)
    return number[:i] + number[i + 1] + number[i] + number[i + 2 :]


def id_blank(_number: str, _rng: random.Random) -> str:
    return ""


def id_excel_scientific(number: str, _rng: random.Random) -> str:
    """What a CSV saved from Excel holds once the column was a number."""
    return format(float(number[:17]) * 10, ".6G")


def id_excel_zeros(number: str, _rng: random.Random) -> str:
    """Excel keeps 15 significant digits: the last three become zeros."""
    return number[:15] + "000"


IDENTITY_QUIRKS: Mapping[str, Callable[[str, random.Random], str]] = MappingProxyType(
    {
        "disability_certificate": id_disability_certificate,
        "lower_case_x": id_lower_case_x,
        "full_width": id_full_width,
        "padded": id_padded,
        "fifteen_digits": id_fifteen_digits,
        "wrong_check_character": id_wrong_check_character,
        "transposed": id_transposed,
        "blank": id_blank,
        "excel_scientific": id_excel_scientific,
        "excel_zeros": id_excel_zeros,
    }
)


def damage_identity(number: str, quirk: str, rng: random.Random) -> str:
    """The number as written with one named quirk."""
    return IDENTITY_QUIRKS[quirk](number, rng)


# Names --------------------------------------------------------------------------------
HOMOPHONES = {"张": "章", "章": "张", "兰": "蓝", "蓝": "兰", "刘": "柳", "林": "琳", "明": "鸣", "华": "桦"}
SIMILAR_SHAPES = {"己": "已", "已": "己", "戍": "戌", "戌": "戍", "王": "玉", "田": "由", "未": "末", "士": "土"}
DOT_VARIANTS = ("・", "•", ".", "．")


def _swap_one(name: str, table: dict[str, str]) -> str:
    for index, character in enumerate(name):
        if character in table:
            return name[:index] + table[character] + name[index + 1 :]
    return name


def name_homophone(name: str, _rng: random.Random) -> str:
    return _swap_one(name, HOMOPHONES)


def name_similar_shape(name: str, _rng: random.Random) -> str:
    return _swap_one(name, SIMILAR_SHAPES)


@lru_cache(maxsize=1)
def _to_traditional() -> Any:
    import opencc

    return opencc.OpenCC("s2t")  # loading the dictionaries takes tens of milliseconds: once


def name_traditional(name: str, _rng: random.Random) -> str:
    return str(_to_traditional().convert(name))


def name_rare_character(name: str, rng: random.Random) -> str:
    """The last character replaced as a system that could not type it would: ``?``, ``*`` or pinyin."""
    from pypinyin import lazy_pinyin

    replacement = rng.choice(("?", "*", lazy_pinyin(name[-1])[0]))
    return name[:-1] + replacement


def name_dot_variant(name: str, rng: random.Random) -> str:
    return name.replace("·", rng.choice(DOT_VARIANTS))


def name_spaces(name: str, rng: random.Random) -> str:
    space = rng.choice((" ", "\u3000"))
    return rng.choice((name[0] + space + name[1:], name + space, space + name))


NAME_QUIRKS: Mapping[str, Callable[[str, random.Random], str]] = MappingProxyType(
    {
        "homophone": name_homophone,
        "similar_shape": name_similar_shape,
        "traditional": name_traditional,
        "rare_character": name_rare_character,
        "spaces": name_spaces,
    }
)


# Dates, money, places -----------------------------------------------------------------
DATE_STYLES = ("iso", "slash", "compact", "chinese", "excel_serial", "datetime")


def format_date(value: date | None, style: str) -> str:
    if value is None:
        return ""
    if style == "slash":
        return f"{value.year}/{value.month}/{value.day}"
    if style == "compact":
        return f"{value:%Y%m%d}"
    if style == "chinese":
        return f"{value.year}年{value.month}月{value.day}日"
    if style == "excel_serial":
        return str((value - EXCEL_EPOCH).days)
    if style == "datetime":
        return f"{value:%Y-%m-%d} 00:00:00"
    return value.isoformat()


MONTH_STYLES = ("iso", "compact", "chinese")


def format_month(value: date, style: str) -> str:
    if style == "compact":
        return f"{value:%Y%m}"
    if style == "chinese":
        return f"{value.year}年{value.month}月"
    return f"{value:%Y-%m}"


MONEY_STYLES = ("plain", "decimals", "thousands", "yuan")


def format_money(amount: float | None, style: str) -> str:
    if amount is None:
        return "-"
    if style == "decimals":
        return f"{amount:.2f}"
    if style == "thousands":
        return f"{amount:,.2f}"
    if style == "yuan":
        return f"{amount:g}元"
    return f"{amount:g}"
