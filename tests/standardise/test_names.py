"""Names: every quirk of the delivered exports, with the expected normalised form."""

from __future__ import annotations

import random

import pytest

from lookback.standardise.names import _pinyin_tools, normalise_name, pinyin_key

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


@pytest.mark.parametrize(
    ("surname", "typed_for_it", "key"),
    [
        ("曾国华", "增国华", "zengguohua"),
        ("单伟", "善伟", "shanwei"),
        ("解明", "谢明", "xieming"),
        ("仇芳", "求芳", "qiufang"),
        ("区丽", "欧丽", "ouli"),
        ("朴军", "瓢军", "piaojun"),
        ("查文", "渣文", "zhawen"),
        ("覃勇", "秦勇", "qinyong"),
    ],
)
def test_a_surname_is_read_as_a_surname(surname: str, typed_for_it: str, key: str) -> None:
    """pypinyin reads 曾 as ceng; as a surname it is zeng, so the homophone 增 meets it."""
    assert pinyin_key(surname) == pinyin_key(typed_for_it) == key


def test_compound_surnames_keep_their_reading() -> None:
    assert pinyin_key("单于飞") == "chanyufei"  # 单于, not shan yu
    assert pinyin_key("尉迟恭") == "yuchigong"


def test_names_are_segmented_as_pypinyin_segments_them() -> None:
    """The segmentation the pinyin key is read by is pypinyin's: names made of its phrases,
    parts of phrases and other characters, Han or not, cut alike."""
    from pypinyin.constants import PHRASES_DICT
    from pypinyin.seg.simpleseg import seg

    segment, _converter = _pinyin_tools()
    rng = random.Random(7)
    phrases = sorted(phrase for phrase in PHRASES_DICT if len(phrase) <= 4)
    texts = ["", "王伟", "欧阳娜娜", "李YUE", "王?明", "阿依古丽·买买提", "a张b", "张\n", "〇", "123"]
    texts += ["".join(rng.choice(phrases) for _ in range(rng.randint(1, 3))) for _ in range(3000)]
    texts += [
        "".join(rng.choice(phrase) for phrase in rng.sample(phrases, 4))[: rng.randint(1, 6)] for _ in range(3000)
    ]
    texts += [
        rng.choice(phrases)[: rng.randint(1, 3)] + rng.choice(["·", "?", "Li", ""]) + rng.choice(phrases)
        for _ in range(1000)
    ]
    assert [segment(text) for text in texts] == [seg(text) for text in texts]
