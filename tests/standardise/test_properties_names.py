"""Properties of the name normaliser and of when two names can be one."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from lookback.standardise.names import MIDDLE_DOT, characters_apart, names_fit, normalise_name
from tests.standardise.strategies import awkward_text

# Names as departments type them: common characters, traditional ones, a minority name's
# dot in its look-alikes, placeholders for rare characters, pinyin, spaces.
name_characters = st.sampled_from(
    "王李张刘陈杨黄赵吴周曾单解欧阳司马伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英"
    "劉陳張楊黃趙華國麗偉阿依古丽买提·・•.．?？*＊xinYUEzhang 　"
)
names = st.one_of(st.text(name_characters, max_size=8), awkward_text)


@given(names)
@example("ΐ")
@example("O¯")  # NFKC: O, a space and a combining macron; without the space, Ō
@example("·?·")
@example("欧阳?")
def test_never_raises_and_is_idempotent(raw: str) -> None:
    found = normalise_name(raw)
    if found.name is None:
        assert found.pinyin is None and not found.is_usable
        return
    assert found.name == found.name.strip(MIDDLE_DOT) and "".join(found.name.split()) == found.name
    again = normalise_name(found.name)
    assert again == found


@given(names)
def test_a_name_fits_itself_when_it_has_a_character(raw: str) -> None:
    name = normalise_name(raw).name
    if name is None:
        return
    assert names_fit(name, name)
    assert characters_apart(name, name) == 0


@given(names, names)
@example("00000000", "0000000\x80")  # a character without a reading against a pinyin syllable
@example("李yue", "李é")
def test_fitting_is_symmetric(first: str, second: str) -> None:
    a, b = normalise_name(first).name, normalise_name(second).name
    if a is None or b is None:
        return
    assert names_fit(a, b) == names_fit(b, a)
    assert characters_apart(a, b) == characters_apart(b, a)


@given(
    st.text("王李张刘陈杨黄赵吴周伟芳娜敏静丽强磊军洋勇艳杰涛明超", min_size=1, max_size=4),
    st.data(),
)
def test_a_name_with_characters_replaced_by_placeholders_fits_while_one_is_left(name: str, data: st.DataObject) -> None:
    """``?``, ``*`` or the character's pinyin each stand for one character; a name fits
    such a form of itself (either way round) as long as one character is still written."""
    replaced = data.draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    placeholders = [
        data.draw(st.sampled_from(["?", "*", "？", normalise_name(character).pinyin or "?"])) for character in name
    ]
    typed = normalise_name("".join(p if r else c for c, p, r in zip(name, placeholders, replaced, strict=True)))
    assert typed.name is not None
    if any(replaced) and not all(replaced):  # all in pinyin is a name in Latin letters
        assert typed.has_placeholder
    fits = not all(replaced)
    assert names_fit(typed.name, name) == fits
    assert names_fit(name, typed.name) == fits
