"""The linkage in the words of the people who decide pairs: field and level names in Chinese,
with the English names (those of ``include/linkage.yaml``) beside them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from lookback.link.config import LinkageSettings
from lookback.link.engine import weighed_levels
from lookback.link.levels import FirstDigits, JaroWinkler, Level

# The compared fields, as county staff call them.
FIELD_WORDS: Final[Mapping[str, str]] = {
    "name": "姓名",
    "identity": "证件号码",
    "birth_date": "出生日期",
    "sex": "性别",
    "county": "县市区",
    "village": "行政村",
    "household": "户",
    "relation": "与户主关系",
    "programme": "所在部门名单",
    "age_in_household": "年龄与户内关系",
    "school_age": "在校学段与年龄",
}
# What each kind of level says of the two values.
LEVEL_WORDS: Final[Mapping[str, str]] = {
    "exact": "相同",
    "else": "不同",
    "same_pinyin": "拼音相同",
    "placeholder": "一方为占位名（如“张某”）",
    "one_character": "只差一个字",
    "check_character": "只差校验位",
    "transposition": "两位数字颠倒",
    "one_digit": "只差一位数字",
    "year_month": "年月相同",
    "plausible": "相符",
    "fits": "相符",
}
MISSING_WORDS: Final = "缺失"
FREQUENCY_WORDS: Final = "姓名常见程度"


def level_words(level: Level) -> str:
    """A level in Chinese: 相同, 前15位相同, 相近（相似度≥0.9）, …"""
    if isinstance(level, FirstDigits):
        return f"前{level.digits}位相同"
    if isinstance(level, JaroWinkler):
        return f"相近（相似度≥{level.threshold:g}）"
    return LEVEL_WORDS.get(level.kind, level.kind)


def explain_levels_zh(
    levels: Iterable[int],
    settings: LinkageSettings,
    weights: Mapping[str, Mapping[str, float]],
    total: float | None = None,
) -> str:
    """``姓名 相同（+9.1）；证件号码 缺失（0）；…``: the English explanation's words in Chinese,
    the same weights; given the total, what the name's frequency added too."""
    weighed = weighed_levels(levels, settings, weights)
    parts = [
        f"{FIELD_WORDS.get(comparison.field, comparison.field)} "
        + (f"{MISSING_WORDS}（0）" if level is None else f"{level_words(level)}（{weight:+.1f}）")
        for comparison, level, weight in weighed
    ]
    summed = sum(weight for _, _, weight in weighed)
    if total is not None and abs(total - summed) >= 0.05:
        parts.append(f"{FREQUENCY_WORDS}（{total - summed:+.1f}）")
    return "；".join(parts)
