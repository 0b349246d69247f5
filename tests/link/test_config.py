"""Linkage settings: each mistake in a good file is refused, naming the file and the key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lookback.errors import ConfigError
from lookback.link.config import load_linkage_settings, parse_linkage_settings
from lookback.paths import include_dir
from tests.settings_edits import Edit, drop, put, rename

GOOD: dict[str, Any] = yaml.safe_load((include_dir() / "linkage.yaml").read_text(encoding="utf-8"))
# In include/linkage.yaml: comparisons[0] is the name comparison, its levels[3] jaro_winkler
# (threshold 0.9), comparisons[1] the identity comparison, its levels[5] first_digits (15).


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # unknown keys, top level and nested
        pytest.param(put("linkage_mode", "strict"), "linkage_mode: unknown key", id="unknown top-level key"),
        pytest.param(
            put("blocking[0].note", "x"), "blocking[0].note: unknown key", id="unknown key in a blocking rule"
        ),
        # misspelt keys
        pytest.param(
            rename("comparisons[0].levels[3].threshold", "treshold"),
            "comparisons[0].levels[3].treshold: unknown key",
            id="treshold",
        ),
        pytest.param(rename("thresholds", "tresholds"), "tresholds: unknown key", id="tresholds"),
        pytest.param(
            put("support.any_of", ["identity", "shoe_size"]),
            "support.any_of[1]: 'shoe_size' is not one of",
            id="support names no comparison kind",
        ),
        pytest.param(
            put("support.by_source", {"census": ["identity"]}),
            "support.by_source.census: 'census' is not one of the sources",
            id="support for an unknown source",
        ),
        pytest.param(put("support.all_of", ["identity"]), "support.all_of: unknown key", id="support key misspelt"),
        pytest.param(rename("thresholds.accept", "acept"), "thresholds.acept: unknown key", id="acept"),
        pytest.param(rename("one_per_person[2].per", "pr"), "one_per_person[2].pr: unknown key", id="per"),
        pytest.param(
            rename("comparisons[2].field", "feild"), "comparisons[2].feild: unknown key", id="feild in a comparison"
        ),
        # wrong types
        pytest.param(put("thresholds.accept", "high"), "thresholds.accept: 'high' is not a number", id="accept: high"),
        pytest.param(put("thresholds.review", True), "thresholds.review: true is not a number", id="review: true"),
        pytest.param(put("margin", "3"), "margin: '3' is not a number", id="margin as text"),
        pytest.param(put("random_pairs", "many"), "random_pairs: 'many' is not an integer", id="random_pairs"),
        pytest.param(put("seed", 1.5), "seed: 1.5 is not an integer", id="seed: 1.5"),
        pytest.param(
            put("comparisons[0].levels[0].term_frequency", "no"),
            "comparisons[0].levels[0].term_frequency: 'no' is not true or false",
            id="term_frequency: 'no'",
        ),
        pytest.param(
            put("comparisons[1].levels[5].digits", "15"),
            "comparisons[1].levels[5].digits: '15' is not an integer",
            id="digits as text",
        ),
        pytest.param(
            put("comparisons[0].levels[3].m", "high"), "comparisons[0].levels[3].m: 'high' is not a number", id="m"
        ),
        pytest.param(put("blocking[0].name", 5), "blocking[0].name: 5 is not text", id="a number for a name"),
        pytest.param(put("programmes", ["registry"]), "programmes: must be a mapping", id="programmes as a list"),
        pytest.param(put("blocking", {"keys": ["county"]}), "blocking: must be a list", id="blocking as a mapping"),
        pytest.param(
            put("comparisons[3].levels", {"level": "else"}), "comparisons[3].levels: must be a list", id="levels"
        ),
        pytest.param(
            put("comparisons[0].levels[3].m", 0), "comparisons[0].levels[3].m: 0 is not a probability", id="m: 0"
        ),
        # missing keys, and keys whose absence would make the level lie
        pytest.param(drop("comparisons"), "comparisons: is missing", id="no comparisons"),
        pytest.param(
            drop("comparisons[0].levels[0].level"), "comparisons[0].levels[0].level: is missing", id="level kind"
        ),
        pytest.param(drop("blocking[0].keys"), "blocking[0].keys: is missing", id="blocking keys"),
        pytest.param(
            drop("comparisons[0].levels[3].threshold"),
            "comparisons[0].levels[3].threshold: is missing",
            id="jaro_winkler without threshold",
        ),
        pytest.param(
            put("comparisons[0].levels[0].threshold", 0.9),
            "comparisons[0].levels[0].threshold: only jaro_winkler levels take a threshold",
            id="threshold on an exact level",
        ),
        pytest.param(
            drop("comparisons[1].levels[5].digits"),
            "comparisons[1].levels[5].digits: is missing",
            id="first_digits without digits",
        ),
        # checks of one key against another
        pytest.param(
            put("comparisons[0].levels[2].level", "else"),
            "comparisons[0].levels[2].level: else must be the last level",
            id="else before other levels",
        ),
        pytest.param(
            put("comparisons[0].levels[3].level", "jaro_winklr"),
            "comparisons[0].levels[3].level: 'jaro_winklr' is not one of else, exact, jaro_winkler",
            id="a level the field does not have",
        ),
        pytest.param(
            put("thresholds.review", 12), "thresholds.review: must not be above accept (12 > 10)", id="review"
        ),
        pytest.param(
            put("one_per_person[0].source", "tax_office"),
            "one_per_person[0].source: 'tax_office' is not one of the sources",
            id="one_per_person of no source",
        ),
        pytest.param(
            put("comparisons[1].levels[0].term_frequency", True),
            "comparisons[1].levels[0].term_frequency: only the name comparison",
            id="term_frequency on identity numbers",
        ),
    ],
)
def test_a_mistake_is_refused_naming_file_and_key(tmp_path: Path, edit: Edit, expected: str) -> None:
    path = tmp_path / "linkage.yaml"
    with pytest.raises(ConfigError) as raised:
        parse_linkage_settings(edit(GOOD), path)
    assert f"{path}: {expected}" in str(raised.value)


def test_every_mistake_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "linkage.yaml"
    document = put("thresholds.accept", "high")(rename("comparisons[0].levels[3].threshold", "treshold")(GOOD))
    with pytest.raises(ConfigError) as raised:
        parse_linkage_settings(document, path)
    lines = str(raised.value).splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"{path}: ") for line in lines)


def test_the_settings_files_load() -> None:
    settings = load_linkage_settings()
    name = next(c for c in settings.comparisons if c.field == "name")
    assert [level.label for level in name.levels] == [
        "exact",
        "same_pinyin",
        "placeholder",
        "jaro_winkler>=0.9",
        "one_character",
        "else",
    ]
    assert (settings.accept, settings.review, settings.margin) == (10.0, 4.0, 3.0)
    assert settings.sources["housing"]["relation"] == "=head"
    febrl = load_linkage_settings(Path(__file__).resolve().parents[2] / "benchmarks" / "febrl4" / "linkage.yaml")
    assert [rule.name for rule in febrl.blocking] == ["postcode", "birth_date", "social_security", "name"]


@pytest.mark.parametrize(
    ("linkage", "expected"),
    [
        pytest.param({"shoe_size": "shoe_size"}, "linkage.shoe_size: unknown key", id="field"),
        pytest.param({"sex": 7}, "linkage.sex: 7 is not text", id="a number for a column"),
        pytest.param({"identity_number": None}, "linkage.identity_number: is missing", id="identity column"),
    ],
)
def test_a_mistake_in_a_sources_linkage_fields_names_its_yaml(linkage: dict[str, Any], expected: str) -> None:
    """A source's linkage fields are declared in its own YAML: a mistake there names that file."""
    import dataclasses

    from lookback.sources import load_source_specs

    specs = load_source_specs()
    hukou = specs["hukou"]
    fields = {**dict(hukou.linkage), **linkage}
    specs["hukou"] = dataclasses.replace(
        hukou, linkage=tuple((key, value) for key, value in fields.items() if value is not None)
    )
    with pytest.raises(ConfigError) as raised:
        parse_linkage_settings(GOOD, include_dir() / "linkage.yaml", specs)
    assert f"{hukou.path}: {expected}" in str(raised.value)


def test_the_sources_are_linked_in_the_order_their_yaml_gives() -> None:
    assert list(load_linkage_settings().sources) == ["registry", "dibao", "insurance", "housing", "hukou"]
