"""The damage real exports carry, as small functions applied when a value is written.

Each function takes the clean value and returns it as a department would have typed or
exported it (``docs/inputs.md``, "what real exports look like"). The truth
stays clean; only the written copy is touched. Functions that can write a quirk in more
than one way return the form they chose beside the text, so that the truth can record
exactly what a cell holds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from lookback.standardise.dates import EXCEL_EPOCH

FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
# Excel keeps 15 significant digits of a number; a CSV saved from it shows six.
EXCEL_DIGITS = 15
SCIENTIFIC_FROM = 12  # Excel's "General" format shows a number of 12 digits or more as 4.31224E+11


# Long digit codes: identity numbers, 户编号, 村代码, county codes, phone numbers --------------
def pad_code(code: str, rng: random.Random) -> tuple[str, str]:
    """What people type to stop Excel converting a long code: a leading apostrophe, a tab, a
    literal ``\\t`` (backslash and t), or spaces around or inside it. Returns (text, form)."""
    form = rng.choice(("apostrophe", "tab", "literal_tab", "spaces"))
    if form == "apostrophe":
        return f"'{code}", form
    if form == "tab":
        return f"\t{code}", form
    if form == "literal_tab":
        return f"\\t{code}", form
    if len(code) == 11 and rng.random() < 0.5:  # a phone number, grouped as people read it
        return f"{code[:3]} {code[3:7]} {code[7:]}", form
    if len(code) > 11 and rng.random() < 0.5:
        return f"{code[:6]} {code[6:-4]} {code[-4:]}", form
    return f" {code} ", form


def code_full_width(code: str) -> str:
    return code.translate(FULL_WIDTH)


def code_excel_scientific(code: str) -> str | None:
    """The code as a CSV saved from Excel shows a number column (``4.31224E+17``); None when
    the code is too short for Excel to show it that way."""
    if len(code) < SCIENTIFIC_FROM or not code.isdigit():
        return None
    return format(float(code), ".6G")


def code_excel_zeros(code: str) -> str | None:
    """Excel kept 15 significant digits and filled the rest with zeros; None when the code
    has no digits past the 15th."""
    if len(code) <= EXCEL_DIGITS or not code[:EXCEL_DIGITS].isdigit():
        return None
    return code[:EXCEL_DIGITS] + "0" * (len(code) - EXCEL_DIGITS)


def code_number_cell(code: str) -> int | float | None:
    """The code as a number cell of a spreadsheet: exact up to 15 digits, rounded beyond."""
    if not code.isdigit():
        return None
    return int(code) if len(code) <= EXCEL_DIGITS else float(code[:EXCEL_DIGITS] + "0" * (len(code) - EXCEL_DIGITS))


# Identity numbers ---------------------------------------------------------------------
def id_disability_certificate(number: str, rng: random.Random) -> str:
    """A disability certificate number: the identity number plus category and grade (and an issue suffix)."""
    suffix = f"{rng.randrange(1, 8)}{rng.randrange(1, 5)}"
    return number + suffix + (f"{rng.randrange(0, 10)}{rng.randrange(1, 10)}" if rng.random() < 0.5 else "")


def id_lower_case_x(number: str, _rng: random.Random) -> str:
    return number[:-1] + "x" if number.endswith("X") else number


def id_full_width(number: str, _rng: random.Random) -> str:
    return code_full_width(number)


def id_padded(number: str, rng: random.Random) -> str:
    """Spaces, a tab, a literal ``\\t`` or a leading apostrophe typed to stop Excel converting the number."""
    return pad_code(number, rng)[0]


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


def padding_form(text: str) -> str:
    """Which protection a padded code carries (the form :func:`pad_code` chose)."""
    if text.startswith("'"):
        return "apostrophe"
    if text.startswith("\t"):
        return "tab"
    if text.startswith("\\t"):
        return "literal_tab"
    return "spaces"


# Names --------------------------------------------------------------------------------
# Characters typed for one another because they sound the same (toneless pinyin agrees).
HOMOPHONES = {
    "张": "章", "章": "张", "兰": "蓝", "蓝": "兰", "刘": "柳", "林": "琳", "明": "鸣", "华": "桦",
    "李": "理", "王": "汪", "陈": "晨", "杨": "阳", "周": "舟", "黄": "皇", "罗": "萝", "唐": "堂",
    "邓": "登", "胡": "湖", "肖": "萧", "吴": "武", "田": "甜", "向": "项", "龙": "隆", "石": "时",
    "姚": "尧", "贺": "和", "蒋": "江", "舒": "书", "杜": "度", "彭": "蓬", "谭": "潭", "粟": "速",
    "伟": "玮", "芳": "方", "静": "晶", "丽": "莉", "军": "君", "勇": "永", "艳": "燕", "杰": "洁",
    "涛": "滔", "英": "瑛", "平": "萍", "刚": "钢", "红": "宏", "玉": "钰", "国": "帼", "文": "雯",
    "斌": "彬", "辉": "晖", "霞": "侠", "云": "芸", "金": "今", "福": "富", "生": "升", "凤": "峰",
    "春": "椿", "梅": "媚", "桂": "贵", "德": "得", "秀": "绣", "强": "墙", "磊": "垒", "洋": "阳",
    "敏": "闽", "娜": "纳", "建": "健", "志": "智", "超": "钞",
}  # fmt: skip
# Surnames read other than their characters' usual reading (曾 zeng, not ceng): a clerk who
# hears the name types a character of the spoken reading, which no longer shares the
# usual pinyin of the surname.
SURNAME_HOMOPHONES = {
    "曾": ("增",), "单": ("善",), "解": ("谢",), "仇": ("求", "球"),
    "区": ("欧",), "朴": ("瓢",), "查": ("渣",), "覃": ("秦", "琴"),
}  # fmt: skip
# Characters misread or mistyped for one another because they look alike.
SIMILAR_SHAPES = {
    "己": "已", "已": "己", "戍": "戌", "戌": "戍", "王": "玉", "田": "由", "未": "末", "士": "土",
    "杨": "扬", "侯": "候", "春": "舂", "金": "全", "石": "右", "天": "夭", "贺": "贸", "李": "季",
    "陈": "阵", "吴": "昊", "伟": "传", "军": "车", "明": "朋", "英": "荚", "华": "毕", "平": "乎",
    "桂": "佳", "梅": "海", "海": "梅", "志": "忘", "辉": "挥", "云": "去", "凤": "风", "林": "材",
    "斌": "赋",
}  # fmt: skip
DOT_VARIANTS = ("・", "•", ".", "．")
DOT_FORMS = MappingProxyType(
    {"・": "dot_katakana", "•": "dot_bullet", ".": "dot_full_stop", "．": "dot_wide_full_stop"}
)


def _swap_one(name: str, table: dict[str, str]) -> str:
    for index, character in enumerate(name):
        if character in table:
            return name[:index] + table[character] + name[index + 1 :]
    return name


def name_homophone(name: str, rng: random.Random) -> str:
    spoken = SURNAME_HOMOPHONES.get(name[:1])
    if spoken:
        return rng.choice(spoken) + name[1:]
    return _swap_one(name, HOMOPHONES)


def name_similar_shape(name: str, _rng: random.Random) -> str:
    return _swap_one(name, SIMILAR_SHAPES)


@lru_cache(maxsize=1)
def _to_traditional() -> Any:
    import opencc

    return opencc.OpenCC("s2t")  # loading the dictionaries takes tens of milliseconds: once


def name_traditional(name: str, _rng: random.Random) -> str:
    return str(_to_traditional().convert(name))


def _is_han(character: str) -> bool:
    return "\u3400" <= character <= "\u9fff"


def name_rare_character(name: str, rng: random.Random) -> str:
    """The last character replaced as a system that could not type it would: ``?``, ``*`` or pinyin."""
    if not name or not _is_han(name[-1]):
        return name
    replacement = rng.choice(("?", "*", readings(name[-1])[0]))
    return name[:-1] + replacement


def name_spaces(name: str, rng: random.Random) -> str:
    space = rng.choice((" ", "\u3000"))
    return rng.choice((name[0] + space + name[1:], name + space, space + name))


def spaces_form(written: str) -> str:
    return "full_width_space" if "\u3000" in written else "stray_space"


NAME_QUIRKS: Mapping[str, Callable[[str, random.Random], str]] = MappingProxyType(
    {
        "homophone": name_homophone,
        "similar_shape": name_similar_shape,
        "traditional": name_traditional,
        "rare_character": name_rare_character,
        "spaces": name_spaces,
    }
)


# Rare characters a department's system cannot type ----------------------------------------
@lru_cache(maxsize=256)
def readings(character: str) -> tuple[str, ...]:
    """The character's toneless readings, the usual one (pypinyin's default) first."""
    from pypinyin import Style, lazy_pinyin, pinyin

    usual = lazy_pinyin(character)[0]
    others = [reading for reading in pinyin(character, style=Style.NORMAL, heteronym=True)[0] if reading != usual]
    return (usual, *dict.fromkeys(others))


def write_rare_character(name: str, index: int, form: str, reading: str) -> str:
    """The name with its rare character at ``index`` written as a department writes it:
    ``question_mark`` (``?``), ``asterisk`` (``*``) or a pinyin syllable in lower, upper or
    title case; ``keep`` leaves it."""
    replacement = {
        "question_mark": "?",
        "asterisk": "*",
        "pinyin_lower": reading.lower(),
        "pinyin_upper": reading.upper(),
        "pinyin_title": reading.title(),
    }.get(form)
    if replacement is None:
        return name
    return name[:index] + replacement + name[index + 1 :]


# Dates, money, places -----------------------------------------------------------------
# native_date: a spreadsheet's own date cell (xlsx only).
DATE_STYLES = ("iso", "slash", "compact", "chinese", "excel_serial", "datetime")
XLSX_DATE_STYLES = (*DATE_STYLES, "native_date")


def _year_month_day(value: date) -> str:
    """``%Y-%m-%d``: isoformat for a four-digit year, at a fifth of strftime's cost (strftime
    pads no year below 1000)."""
    return value.isoformat() if value.year >= 1000 else f"{value:%Y-%m-%d}"


def format_date(value: date | None, style: str) -> str:
    if value is None:
        return ""
    if style == "slash":
        return f"{value.year}/{value.month}/{value.day}"
    if style == "compact":
        return _year_month_day(value).replace("-", "")
    if style == "chinese":
        return f"{value.year}年{value.month}月{value.day}日"
    if style == "excel_serial":
        return str(excel_serial(value))
    if style == "datetime":
        return f"{_year_month_day(value)} 00:00:00"
    return value.isoformat()


def excel_serial(value: date) -> int:
    return (value - EXCEL_EPOCH).days


def date_cell(value: date, style: str) -> str | int | datetime:
    """A date as an xlsx cell: a native date cell, a serial number that lost its date
    format (a number cell), or text."""
    if style == "native_date":
        return datetime(value.year, value.month, value.day)
    if style == "excel_serial":
        return excel_serial(value)
    return format_date(value, style)


MONTH_STYLES = ("iso", "compact", "chinese")
XLSX_MONTH_STYLES = (*MONTH_STYLES, "native_date")  # Excel turns a typed 2018-07 into a date


def format_month(value: date, style: str) -> str:
    if style == "compact":
        return _year_month_day(value)[:-3].replace("-", "")
    if style == "chinese":
        return f"{value.year}年{value.month}月"
    return _year_month_day(value)[:-3]


# Forms an amount or a count is delivered in besides its plain digits; thousands separators
# only show from 1,000 and 元 only follows money.
NUMBER_FORMS = ("decimals", "thousands", "yuan", "blank", "dash")
COUNT_FORMS = ("decimals", "blank", "dash")


def format_money(amount: float | None, style: str) -> str:
    if amount is None:
        return "-"
    if style == "decimals":
        return f"{amount:.2f}"
    if style == "thousands":
        return f"{amount:,.2f}"
    if style == "yuan":
        return f"{amount:g}元"
    if style == "blank":
        return ""
    if style == "dash":
        return "-"
    return f"{amount:g}"


def format_count(count: int, style: str) -> str:
    if style == "decimals":
        return f"{count}.0"
    if style == "blank":
        return ""
    if style == "dash":
        return "-"
    return str(count)


def short_place(name: str) -> str | None:
    """A township or village without its suffix (牙屯堡镇 → 牙屯堡, 大高坪苗族乡 → 大高坪,
    青石村 → 青石); None when nothing sensible is left."""
    for suffix in ("苗族乡", "瑶族乡", "侗族乡", "土家族乡", "街道", "镇", "乡", "村"):
        stem = name.removesuffix(suffix)
        if stem != name:
            return stem if len(stem) >= 2 else None
    return None
