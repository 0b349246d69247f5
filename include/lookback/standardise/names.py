"""Personal names (姓名).

:func:`normalise_name` gives the form names are compared in: Unicode-normalised, one
middle dot (U+00B7) for all its look-alikes in minority names, no spaces, traditional
characters made simplified (OpenCC), and a pinyin key beside it so that homophones
(章/张, 兰/蓝) meet in linkage. Rare characters that a system could not type and that were
replaced by ``?``, ``*`` or pinyin are kept as delivered and flagged: such a name is
still usable, but only as a partial clue.

:func:`names_fit` is the one definition of when two written names can be one name: each
department replaces a rare character its own way (``李玥``, ``李?``, ``李YUE``, ``李yue``), and
each of ``?``, ``*`` and a whole pinyin syllable (any letter case) is one unknown character
that fits the characters it could stand for. The pinyin key reads a surname as surnames are
read (曾 zeng, 单 shan, 解 xie), so that a homophone typed for it (增 for 曾) meets it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import Any, Final

MIDDLE_DOT = "\u00b7"
# After NFKC: U+30FB katakana middle dot, U+2022 bullet, full stop (U+FF0E folds to it),
# U+2027 hyphenation point, U+2219 bullet operator, U+22C5 dot operator, U+0387 Greek
# ano teleia, U+FF65 (folds to U+30FB), U+2024 one dot leader, U+00B7 itself.
_DOT_VARIANTS = re.compile("[\u00b7\u30fb\u2022.\u2027\u2219\u22c5\u0387\u2024]+")
_PLACEHOLDER = re.compile(r"[?*]")
_LATIN = re.compile(r"[A-Za-z]")
_HAN = re.compile(r"[\u3400-\u9fff\U00020000-\U0003134f]")
_LATIN_RUN = re.compile(r"[A-Za-z]+|[^A-Za-z]")

# A surname's reading where it differs from the character's everyday one (pypinyin reads
# 曾国藩 as ceng guo fan). Compound surnames pypinyin already reads right as phrases.
SURNAME_READINGS: Final = {
    "曾": "zeng", "单": "shan", "解": "xie", "仇": "qiu", "区": "ou", "朴": "piao", "查": "zha",
    "覃": "qin", "缪": "miao", "翟": "zhai", "召": "shao", "秘": "bi", "句": "gou", "祭": "zhai",
    "繁": "po", "能": "nai", "蕃": "pi", "折": "she", "隗": "wei", "阚": "kan", "种": "chong",
    "重": "chong", "么": "yao", "乜": "nie", "角": "jue", "薄": "bo", "佴": "nai", "孛": "bo",
    "盖": "ge", "藏": "zang", "都": "du", "员": "yun", "长": "chang", "卜": "bu", "黑": "he",
}  # fmt: skip
COMPOUND_SURNAMES: Final = frozenset(
    {"尉迟", "万俟", "单于", "长孙", "澹台", "令狐", "欧阳", "上官", "诸葛", "司马", "皇甫", "公孙", "东方", "宇文",
     "慕容", "夏侯", "闻人", "呼延", "赫连", "拓跋", "钟离", "鲜于", "宗政", "濮阳", "公冶", "太叔", "申屠", "轩辕"}
)  # fmt: skip
# A name with a character written as ``?``, ``*`` or pinyin (a pattern for pandas' str.contains).
PLACEHOLDER_PATTERN: Final = r"[?*A-Za-z]"
UNKNOWN = "?"  # the slot of a character written as ?, * or something that is not a pinyin syllable


@dataclass(frozen=True)
class Name:
    """A normalised name."""

    name: str | None  # None when nothing usable was delivered
    pinyin: str | None  # toneless pinyin syllables joined, e.g. "zhangwei"
    has_placeholder: bool = False  # a rare character replaced by ?, * or pinyin

    @property
    def is_usable(self) -> bool:
        """True when the name holds at least one real character to compare."""
        return bool(self.name) and bool(_HAN.search(self.name or "") or _LATIN.search(self.name or ""))


@lru_cache(maxsize=1)
def _converter() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional characters to simplified (劉 → 刘, 陳 → 陈)."""
    return str(_converter().convert(text))


@lru_cache(maxsize=1)
def _pinyin_tools() -> tuple[Callable[[str], list[str]], Any]:
    """How ``lazy_pinyin`` segments a text (:func:`_segmenter`) and the converter it uses by default."""
    from pypinyin.converter import UltimateConverter

    return _segmenter(), UltimateConverter()


def _segmenter() -> Callable[[str], list[str]]:
    """pypinyin's segmentation (``pypinyin.seg.simpleseg.seg``) made for names, which are
    short and nearly all Han characters: a name of Han characters alone is one run,
    without a pattern matched per character, and a run is cut with the prefixes of the
    phrase dictionary looked up in their set, not through a generator and a method call
    per prefix. The words are those pypinyin's cut gives: from each place the longest
    prefix that is a phrase, found among the prefixes until the first that begins no
    phrase; where none is, one character, or every character left when the prefixes run
    to the end of the run."""
    from pypinyin.constants import PHRASES_DICT, RE_HANS
    from pypinyin.seg import mmseg
    from pypinyin.seg.simpleseg import simple_seg

    phrases = PHRASES_DICT
    prefix_set = mmseg.seg._prefix_set
    prefixes = getattr(prefix_set, "_set", prefix_set)
    all_han = RE_HANS.fullmatch

    def cut(run: str) -> list[str]:
        if not phrases:  # the phrase dictionary turned off: runs are not cut
            return [run]
        words: list[str] = []
        start, length = 0, len(run)
        while start < length:
            phrase_end = 0
            end = start + 1
            while end <= length and run[start:end] in prefixes:
                if run[start:end] in phrases:
                    phrase_end = end
                end += 1
            if phrase_end:
                words.append(run[start:phrase_end])
                start = phrase_end
            elif end <= length:
                words.append(run[start])
                start += 1
            else:
                words.extend(run[start:])
                break
        return words

    def segment(text: str) -> list[str]:
        if all_han(text):
            return cut(text)
        words: list[str] = []
        for run in simple_seg(text):
            if RE_HANS.match(run):
                words.extend(cut(run))
            else:
                words.append(run)
        return words

    return segment


def _as_delivered(chars: str) -> str:
    return chars


@lru_cache(maxsize=100_000)
def _word_syllables(word: str) -> tuple[str, ...]:
    """The toneless syllables of one segment of a name, as ``lazy_pinyin`` gives them: a
    segment converts alone, so the few thousand segments names are made of (mostly single
    characters) are converted once each rather than once per name."""
    from pypinyin import Style

    _seg, converter = _pinyin_tools()
    return tuple(chain.from_iterable(converter.convert(word, Style.NORMAL, False, _as_delivered, strict=True)))


def _lazy_pinyin(name: str) -> list[str]:
    """``lazy_pinyin(name, style=Style.NORMAL, errors=lambda chars: chars)``, segment by segment."""
    seg, _converter = _pinyin_tools()
    return [syllable for word in seg(name) for syllable in _word_syllables(word)]


def pinyin_key(name: str) -> str:
    """Toneless pinyin of a name, Latin letters lower-cased, placeholders kept as ``?``; the
    surname read as a surname (曾 zeng, not ceng)."""
    syllables = _lazy_pinyin(name)
    if syllables and name[:2] not in COMPOUND_SURNAMES and name[0] in SURNAME_READINGS:
        syllables[0] = SURNAME_READINGS[name[0]]
    key = "".join(syllables).lower()
    key = _PLACEHOLDER.sub("?", key)
    return key.replace(MIDDLE_DOT, "")


@lru_cache(maxsize=1_000_000)
def normalise_name(raw: str | None) -> Name:
    """Normalise one delivered name (see the module docstring)."""
    text = unicodedata.normalize("NFKC", raw or "")
    # Stray and full-width spaces (NFKC made them ASCII); normalised again without them, as
    # NFKC writes ¯ as a space and a combining macron, which then joins the letter before it.
    text = unicodedata.normalize("NFKC", "".join(text.split()))
    text = text.replace("？", "?").replace("＊", "*")
    text = _DOT_VARIANTS.sub(MIDDLE_DOT, text).strip(MIDDLE_DOT)
    if not text:
        return Name(name=None, pinyin=None)
    text = to_simplified(text)
    has_placeholder = bool(_PLACEHOLDER.search(text)) or (bool(_LATIN.search(text)) and bool(_HAN.search(text)))
    return Name(name=text, pinyin=pinyin_key(text), has_placeholder=has_placeholder)


@lru_cache(maxsize=1)
def pinyin_syllables() -> frozenset[str]:
    """Every toneless pinyin syllable (``v`` for ü), from pypinyin's dictionary."""
    from pypinyin.contrib.tone_convert import to_normal
    from pypinyin.pinyin_dict import pinyin_dict

    # Tens of thousands of characters share a thousand or so toned readings: each converted once.
    toned = {reading for readings in pinyin_dict.values() for reading in readings.split(",") if reading.isalpha()}
    return frozenset(to_normal(reading) for reading in toned)


@lru_cache(maxsize=100_000)
def character_readings(character: str) -> frozenset[str]:
    """Every toneless reading of a character (all of a heteronym's, the surname reading
    included), with ``u`` beside ``v`` for ü as people type it."""
    from pypinyin import Style, pinyin

    # No reading at all (not a Han character: ``é``, a control character) is no list at all.
    readings = set(next(iter(pinyin(character, heteronym=True, style=Style.NORMAL, errors="ignore")), None) or ())
    if character in SURNAME_READINGS:
        readings.add(SURNAME_READINGS[character])
    return frozenset(readings | {reading.replace("v", "u") for reading in readings})


@lru_cache(maxsize=100_000)
def usual_readings(character: str) -> frozenset[str]:
    """A character's everyday toneless reading, and its surname reading: what a clerk typing
    a homophone goes by (pypinyin lists rare readings too: 王 has yu)."""
    from pypinyin import Style, lazy_pinyin

    readings = set(lazy_pinyin(character, style=Style.NORMAL, errors="ignore"))
    if character in SURNAME_READINGS:
        readings.add(SURNAME_READINGS[character])
    return frozenset(readings)


def _syllables_of(run: str) -> list[str] | None:
    """A run of Latin letters as pinyin syllables (one for each character it stands for),
    the fewest that cover it; None when it is not pinyin."""
    known = pinyin_syllables()
    text = run.lower()
    best: list[list[str] | None] = [[]] + [None] * len(text)
    for end in range(1, len(text) + 1):
        for start in range(max(0, end - 6), end):
            before = best[start]
            if before is not None and text[start:end] in known:
                candidate = [*before, text[start:end]]
                current = best[end]
                if current is None or len(candidate) < len(current):
                    best[end] = candidate
    return best[len(text)]


@lru_cache(maxsize=1_000_000)
def name_slots(name: str) -> tuple[str, ...]:
    """A normalised name as character slots: a character, ``?`` for a character written as
    ``?`` or ``*``, or a lower-case pinyin syllable for a character written in pinyin (a run
    of letters that is not pinyin is one unknown character)."""
    slots: list[str] = []
    for token in _LATIN_RUN.findall(name):
        if token in "?*":
            slots.append(UNKNOWN)
        elif token.isascii() and token.isalpha():
            slots.extend(_syllables_of(token) or [UNKNOWN])
        else:
            slots.append(token)
    return tuple(slots)


def _written(slot: str) -> bool:
    """True for a character as written, False for a placeholder (``?`` or a pinyin syllable)."""
    return slot != UNKNOWN and not slot.isascii()


@lru_cache(maxsize=1_000_000)
def _slots_fit(first: str, second: str) -> bool:
    """True when two slots can be one character (a few thousand characters meet each other
    again and again: cached)."""
    if _written(first) and _written(second):
        # The same character, or a homophone typed for it (黄 for 皇 beside a placeholder).
        return first == second or bool(usual_readings(first) & usual_readings(second))
    if _written(first) or _written(second):
        character, other = (first, second) if _written(first) else (second, first)
        return other == UNKNOWN or other in character_readings(character)
    # Two placeholders of one slot: ? fits any; two syllables fit when they are one syllable.
    return UNKNOWN in (first, second) or first == second


@lru_cache(maxsize=1_000_000)
def names_fit(first: str, second: str) -> bool:
    """True when two normalised names can be one name written by two departments: slot by
    slot the same character or a homophone of it, or a placeholder that fits it (``?``/``*``
    any character, a pinyin syllable any character read so), with at least one character
    written alike or as a homophone on both sides. ``李YUE`` fits ``李玥`` and ``李?``;
    ``肖?`` fits ``萧珺``; ``李YUE`` does not fit ``李伟``."""
    if first == second:
        return True
    a, b = name_slots(first), name_slots(second)
    if len(a) != len(b):
        return False
    anchored = False  # a slot written on both sides (every slot fits, so it fits too)
    for x, y in zip(a, b, strict=True):
        if not _slots_fit(x, y):
            return False
        anchored = anchored or (_written(x) and _written(y))
    return anchored


def characters_apart(first: str, second: str) -> int | None:
    """How many character slots of two names of as many characters do not fit each other
    (None for names of different lengths): ``由隽`` and ``田?`` are one apart."""
    a, b = name_slots(first), name_slots(second)
    if len(a) != len(b):
        return None
    return sum(not _slots_fit(x, y) for x, y in zip(a, b, strict=True))
