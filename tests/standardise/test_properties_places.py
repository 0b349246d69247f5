"""Properties of place keys (townships, villages) and of the county resolver."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from lookback.standardise.places import county_resolver, place_key, short_names
from tests.standardise.strategies import awkward_text

SUFFIXES = ["村", "镇", "乡", "苗族乡", "社区", "街道", "村委会", "村民委员会", "居委会", "办事处", "街道办事处"]
stems = st.text("青石王家大高坪廖舒新滩白龙江口", min_size=2, max_size=4)
place_names = st.one_of(
    awkward_text,
    st.tuples(stems, st.lists(st.sampled_from(SUFFIXES), max_size=3)).map(lambda t: t[0] + "".join(t[1])),
)


@given(place_names)
def test_short_names_never_raise_and_begin_with_the_name(name: str) -> None:
    names = short_names(name)
    assert names[0] == name and all(names[1:])


@given(place_names)
@example("王家村村委会")
@example("廖家村镇")
@example("新村村")
@example("U¯")  # NFKC: U, a space and a combining macron; without the space, Ū
def test_a_place_key_is_idempotent(name: str) -> None:
    key = place_key(name)
    assert key is None or place_key(key) == key


@given(stems, st.sampled_from(SUFFIXES), st.sampled_from(["村", "镇", "乡"]))
@example("王家", "村委会", "村")
def test_a_place_meets_its_name_with_or_without_the_suffix(stem: str, suffix: str, kind: str) -> None:
    """A village or township named with its kind (王家村) is the same place delivered with
    its committee's suffix (王家村村委会) or without (王家村)."""
    named = stem + kind
    assert place_key(named + suffix) == place_key(named)


@given(place_names, st.sampled_from(["", " ", "\u3000", "\t"]))
def test_spaces_do_not_change_a_place_key(name: str, space: str) -> None:
    assert place_key(space.join(name) + space) == place_key(name)


@given(st.one_of(awkward_text, st.sampled_from([d.name for d in county_resolver().counties()])))
def test_resolving_never_raises_and_a_resolved_code_resolves_to_itself(raw: str) -> None:
    resolver = county_resolver()
    found = resolver.resolve(raw)
    assert found.problem in (None, "unknown_county", "ambiguous_county")
    if found.county_code is not None:
        assert found.problem is None
        assert resolver.resolve(found.county_code).county_code == found.county_code
        name = resolver.name_of(found.county_code)
        assert name is not None and resolver.resolve(name).county_code == found.county_code


@given(st.sampled_from(sorted(county_resolver().counties(), key=lambda d: d.code)), st.data())
def test_every_county_is_found_by_each_of_its_names(county: object, data: st.DataObject) -> None:
    resolver = county_resolver()
    name = data.draw(st.sampled_from(short_names(county.name)))  # type: ignore[attr-defined]
    found = resolver.resolve(name)
    assert found.county_code == county.code or found.problem == "ambiguous_county"  # type: ignore[attr-defined]
