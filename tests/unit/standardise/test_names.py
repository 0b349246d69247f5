"""Names: every quirk of the delivered exports, with the expected normalised form."""

from __future__ import annotations

import pytest

from lookback.standardise.names import normalise_name, pinyin_key

# (delivered, expected name, expected pinyin key, placeholder flag, why)
CASES = [
    ("王伟", "王伟", "wangwei", False, "clean"),
    ("劉德華", "刘德华", "liudehua", False, "traditional characters made simplified"),
    ("陳", "陈", "chen", False, "one traditional character"),
    ("王 伟", "王伟", "wangwei", False, "stray space inside"),
    (" 王伟 ", "王伟", "wangwei", False, "spaces around"),
    ("王\u3000伟", "王伟", "wangwei", False, "full-width space"),
    ("阿依古丽·买买提", "阿依古丽·买买提", "ayigulimaimaiti", False, "middle dot U+00B7"),
    ("阿依古丽・买买提", "阿依古丽·买买提", "ayigulimaimaiti", False, "katakana middle dot U+30FB"),
    ("阿依古丽•买买提", "阿依古丽·买买提", "ayigulimaimaiti", False, "bullet U+2022"),
    ("阿依古丽.买买提", "阿依古丽·买买提", "ayigulimaimaiti", False, "full stop"),
    ("阿依古丽．买买提", "阿依古丽·买买提", "ayigulimaimaiti", False, "full-width full stop U+FF0E"),
    ("阿依古丽 · 买买提", "阿依古丽·买买提", "ayigulimaimaiti", False, "dot with spaces"),
    ("张?", "张?", "zhang?", True, "rare character replaced by ?"),
    ("张？", "张?", "zhang?", True, "full-width question mark"),
    ("李*明", "李*明", "li?ming", True, "rare character replaced by *"),
    ("王xin", "王xin", "wangxin", True, "rare character replaced by its pinyin"),
    ("ＷＡＮＧ", "WANG", "wang", False, "full-width Latin letters"),
]


@pytest.mark.parametrize(("delivered", "name", "pinyin", "placeholder", "why"), CASES, ids=[c[4] for c in CASES])
def test_normalise_name(delivered: str, name: str, pinyin: str, placeholder: bool, why: str) -> None:
    found = normalise_name(delivered)
    assert (found.name, found.pinyin, found.has_placeholder) == (name, pinyin, placeholder), why
    assert found.is_usable


@pytest.mark.parametrize(
    ("first", "second"),
    [("章三", "张三"), ("兰芳", "蓝芳"), ("刘明", "柳鸣")],
    ids=["章/张", "兰/蓝", "刘/柳 and 明/鸣"],
)
def test_homophones_share_a_pinyin_key(first: str, second: str) -> None:
    assert normalise_name(first).name != normalise_name(second).name
    assert pinyin_key(first) == pinyin_key(second)


@pytest.mark.parametrize("delivered", ["", "   ", "\u3000", "?", "*", "·", None])
def test_nothing_usable(delivered: str | None) -> None:
    assert not normalise_name(delivered).is_usable


def test_similar_shapes_stay_distinct() -> None:
    # 己/已 look alike but are different characters with different readings: the name
    # keeps what was typed, and linkage (not normalisation) weighs the likeness.
    assert normalise_name("王己").name == "王己"
    assert normalise_name("王已").name == "王已"
