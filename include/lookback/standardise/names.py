"""Personal names (姓名).

:func:`normalise_name` gives the form names are compared in: Unicode-normalised, one
middle dot (U+00B7) for all its look-alikes in minority names, no spaces, traditional
characters made simplified (OpenCC), and a pinyin key beside it so that homophones
(章/张, 兰/蓝) meet in linkage. Rare characters that a system could not type and that were
replaced by ``?``, ``*`` or pinyin are kept as delivered and flagged: such a name is
still usable, but only as a partial clue.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MIDDLE_DOT = "\u00b7"
# After NFKC: U+30FB katakana middle dot, U+2022 bullet, full stop (U+FF0E folds to it),
# U+2027 hyphenation point, U+2219 bullet operator, U+22C5 dot operator, U+0387 Greek
# ano teleia, U+FF65 (folds to U+30FB), U+2024 one dot leader, U+00B7 itself.
_DOT_VARIANTS = re.compile("[\u00b7\u30fb\u2022.\u2027\u2219\u22c5\u0387\u2024]+")
_PLACEHOLDER = re.compile(r"[?*]")
_LATIN = re.compile(r"[A-Za-z]")
_HAN = re.compile(r"[\u3400-\u9fff\U00020000-\U0003134f]")


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


def pinyin_key(name: str) -> str:
    """Toneless pinyin of a name, Latin letters lower-cased, placeholders kept as ``?``."""
    from pypinyin import Style, lazy_pinyin

    syllables = lazy_pinyin(name, style=Style.NORMAL, errors=lambda chars: chars)
    key = "".join(syllables).lower()
    key = _PLACEHOLDER.sub("?", key)
    return key.replace(MIDDLE_DOT, "")


@lru_cache(maxsize=1_000_000)
def normalise_name(raw: str | None) -> Name:
    """Normalise one delivered name (see the module docstring)."""
    text = unicodedata.normalize("NFKC", raw or "")
    text = "".join(text.split())  # stray and full-width spaces (NFKC made them ASCII)
    text = text.replace("？", "?").replace("＊", "*")
    text = _DOT_VARIANTS.sub(MIDDLE_DOT, text).strip(MIDDLE_DOT)
    if not text:
        return Name(name=None, pinyin=None)
    text = to_simplified(text)
    has_placeholder = bool(_PLACEHOLDER.search(text)) or (bool(_LATIN.search(text)) and bool(_HAN.search(text)))
    return Name(name=text, pinyin=pinyin_key(text), has_placeholder=has_placeholder)
