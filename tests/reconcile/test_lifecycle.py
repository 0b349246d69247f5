"""The rule catalogue and the findings' lifecycle, without a warehouse."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import yaml

from lookback.errors import ConfigError
from lookback.paths import sources_dir
from lookback.reconcile import catalogue
from lookback.reconcile.findings import _ordered_references
from lookback.reconcile.lifecycle import _walk
from lookback.rules import RULE_CODES
from tests.settings_edits import Edit, drop, put, rename

ALL_SOURCES = frozenset({"registry", "dibao", "insurance", "housing", "hukou"})
WITHOUT_HUKOU = ALL_SOURCES - {"hukou"}


def _run(run_id: str, as_of: date, *counties: str, sources: frozenset[str] = ALL_SOURCES) -> dict[str, object]:
    return {"run_id": run_id, "as_of": as_of, "counties": set(counties), "sources": sources}


def _seen(*run_ids: str, made_from: frozenset[str] = frozenset({"registry"})) -> dict[str, frozenset[str]]:
    """The runs that found a finding, each with the sources it was made from."""
    return dict.fromkeys(run_ids, made_from)


RUNS = [
    _run("r1", date(2020, 3, 31), "431224", "431230"),
    _run("r2", date(2020, 6, 30), "431224", "431230"),
    _run("r3", date(2020, 7, 15), "431230"),  # another county only
    _run("r4", date(2020, 9, 30), "431224", "431230"),
]


def test_a_finding_is_opened_resolved_and_reopened() -> None:
    observed = {"F": _seen("r1", "r4")}
    states, events = _walk(RUNS, observed, {"F": "431224"})
    state = states["F"]
    assert (state.status, state.first_seen_run, state.last_seen_run, state.times_reopened) == ("open", "r1", "r4", 1)
    assert state.resolved_at is None and state.resolved_in_run is None
    assert [(event["run_id"], event["event"]) for event in events] == [
        ("r1", "opened"),
        ("r2", "resolved"),
        ("r4", "reopened"),
    ]


def test_a_run_of_other_counties_resolves_nothing_here() -> None:
    states, events = _walk(RUNS, {"F": _seen("r2"), "G": _seen("r2")}, {"F": "431224", "G": "431230"})
    # F (溆浦) is resolved by r4, the next run covering its county; G (通道) by r3.
    assert (states["F"].status, states["F"].resolved_in_run, states["F"].resolved_at) == (
        "resolved",
        "r4",
        date(2020, 9, 30),
    )
    assert (states["G"].resolved_in_run, states["G"].resolved_at) == ("r3", date(2020, 7, 15))
    assert [event["event"] for event in events if event["finding_id"] == "F"] == ["opened", "resolved"]


def test_a_finding_seen_by_every_run_stays_open_with_one_event() -> None:
    states, events = _walk(RUNS, {"F": _seen("r1", "r2", "r4")}, {"F": "431224"})
    assert (states["F"].status, states["F"].first_seen_run, states["F"].last_seen_run) == ("open", "r1", "r4")
    assert [event["event"] for event in events] == ["opened"]


def test_a_run_without_a_source_the_finding_is_made_from_cannot_resolve_it() -> None:
    runs = [
        _run("r1", date(2020, 3, 31), "431224"),
        _run("r2", date(2020, 6, 30), "431224", sources=WITHOUT_HUKOU),
        _run("r3", date(2020, 9, 30), "431224", sources=WITHOUT_HUKOU),
        _run("r4", date(2020, 12, 31), "431224"),
    ]
    from_hukou = frozenset({"registry", "dibao", "hukou"})
    observed = {
        "DECEASED": _seen("r1", made_from=from_hukou),  # r2, r3 cannot check it; r4 resolves it
        "INSURED": _seen("r1"),  # r2 checks it (it needs no hukou) and resolves it
        # Made from hukou in r1; found again in r3 from the registry alone.
        "BACK": {"r1": from_hukou, "r3": frozenset({"registry"})},
    }
    states, events = _walk(runs, observed, dict.fromkeys(observed, "431224"))

    deceased = states["DECEASED"]
    assert (deceased.status, deceased.last_seen_run, deceased.last_checked_run) == ("resolved", "r1", "r4")
    assert deceased.resolved_at == date(2020, 12, 31)
    assert [(event["run_id"], event["event"]) for event in events if event["finding_id"] == "DECEASED"] == [
        ("r1", "opened"),
        ("r2", "not_checked"),
        ("r3", "not_checked"),
        ("r4", "resolved"),
    ]
    assert (states["INSURED"].status, states["INSURED"].resolved_in_run) == ("resolved", "r2")
    # r2 could not check BACK (made from hukou then); r3 found it again (from the registry
    # alone), so r4 checks it against that and resolves it.
    back = states["BACK"]
    assert (back.status, back.last_seen_run, back.last_checked_run, back.resolved_in_run) == (
        "resolved",
        "r3",
        "r4",
        "r4",
    )
    assert [event["event"] for event in events if event["finding_id"] == "BACK"] == [
        "opened",
        "not_checked",
        "resolved",
    ]


def test_an_open_finding_last_checked_long_ago_stays_open() -> None:
    runs = [
        _run("r1", date(2020, 3, 31), "431224"),
        _run("r2", date(2020, 6, 30), "431224", sources=WITHOUT_HUKOU),
    ]
    states, _ = _walk(runs, {"F": _seen("r1", made_from=frozenset({"hukou"}))}, {"F": "431224"})
    assert (states["F"].status, states["F"].last_seen_run, states["F"].last_checked_run) == ("open", "r1", "r1")


def test_references_are_ordered_registry_first_and_by_row_number() -> None:
    assert _ordered_references("insurance:12;registry:10;registry:9;hukou:1;registry:9") == (
        "registry:9;registry:10;insurance:12;hukou:1"
    )
    assert _ordered_references(None) == ""


def test_the_catalogue_is_the_contract() -> None:
    rules = catalogue.load_rules()
    assert [rule.code for rule in rules] == list(RULE_CODES)
    for rule in rules:
        assert rule.title_zh and rule.title_en and rule.responsible and rule.seed_items
        assert ":batch_id" in rule.sql and "select" in rule.sql.lower()
    relapse = catalogue.rules_by_code()["RELAPSE_RISK"]
    assert relapse.depends_on == ("MED_NOT_INSURED", "HOUSING_UNSAFE")
    # Each rule names the sources it reads: only the one that reads the optional hukou
    # export needs it, the others read deaths from the latest hukou delivered.
    by_code = catalogue.rules_by_code()
    assert [code for code, rule in by_code.items() if "hukou" in rule.sources] == ["DECEASED_LISTED"]
    assert by_code["ID_CONFLICT"].optional_sources == ("hukou",)
    assert by_code["DECEASED_LISTED"].missing_sources({"registry", "dibao", "insurance", "housing"}) == ("hukou",)
    assert all(rule.sources and rule.sources[0] == "registry" for rule in rules)


@pytest.fixture
def rules_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the rules, read by load_rules in place of the project's."""
    include = tmp_path / "include"
    rules = include / "sql" / "reconcile" / "rules"
    shutil.copytree(catalogue.rules_dir(), rules)
    shutil.copytree(sources_dir(), include / "sources")
    monkeypatch.setenv("LOOKBACK_INCLUDE_DIR", str(include))
    catalogue.load_rules.cache_clear()
    yield rules
    catalogue.load_rules.cache_clear()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda folder: (folder / "EDU_OUT_OF_SCHOOL.yaml").unlink(), "missing: EDU_OUT_OF_SCHOOL"),
        (lambda folder: (folder / "EDU_OUT_OF_SCHOOL.sql").unlink(), "no EDU_OUT_OF_SCHOOL.sql beside it"),
        (
            lambda folder: (folder / "NO_SAFETY_NET.yaml").write_text(
                (folder / "NO_SAFETY_NET.yaml").read_text(encoding="utf-8").replace("severity: high", "severity: dire"),
                encoding="utf-8",
            ),
            "severity: 'dire' is not one of high, medium, low",
        ),
        (
            lambda folder: (folder / "ID_INVALID.yaml").write_text(
                (folder / "ID_INVALID.yaml")
                .read_text(encoding="utf-8")
                .replace("subject: person", "subject: household"),
                encoding="utf-8",
            ),
            "subject: household, the contract says person",
        ),
        (
            lambda folder: (folder / "RELAPSE_RISK.yaml").write_text(
                (folder / "RELAPSE_RISK.yaml").read_text(encoding="utf-8").replace("HOUSING_UNSAFE]", "NEW_RULE]"),
                encoding="utf-8",
            ),
            r"depends_on\[1\]: 'NEW_RULE' is not a rule of the contract",
        ),
        (
            lambda folder: (folder / "MED_NOT_INSURED.yaml").write_text(
                (folder / "MED_NOT_INSURED.yaml").read_text(encoding="utf-8") + "depends_on: [RELAPSE_RISK]\n",
                encoding="utf-8",
            ),
            r"MED_NOT_INSURED.yaml: depends_on\[0\]: RELAPSE_RISK must run before MED_NOT_INSURED, and does not",
        ),
        (
            lambda folder: (folder / "DUPLICATE_PERSON.yaml").write_text(
                (folder / "DUPLICATE_PERSON.yaml").read_text(encoding="utf-8").replace("sources: [registry]", ""),
                encoding="utf-8",
            ),
            "DUPLICATE_PERSON.yaml: sources: is missing",
        ),
        (
            lambda folder: (folder / "DUPLICATE_PERSON.yaml").write_text(
                (folder / "DUPLICATE_PERSON.yaml")
                .read_text(encoding="utf-8")
                .replace("sources: [registry]", "sources: [registry, census]"),
                encoding="utf-8",
            ),
            r"DUPLICATE_PERSON.yaml: sources\[1\]: unknown source 'census'",
        ),
        (
            lambda folder: (folder / "RELAPSE_RISK.yaml").write_text(
                (folder / "RELAPSE_RISK.yaml")
                .read_text(encoding="utf-8")
                .replace("sources: [registry, insurance, housing]", "sources: [registry, housing]"),
                encoding="utf-8",
            ),
            "depends on MED_NOT_INSURED, which reads insurance",
        ),
    ],
)
def test_the_catalogue_refuses_a_rule_set_that_is_not_the_contract(
    rules_folder: Path, change: object, message: str
) -> None:
    change(rules_folder)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=message):
        catalogue.load_rules()


@pytest.mark.parametrize(
    ("rule", "edit", "expected"),
    [
        # unknown and misspelt keys
        pytest.param("DECEASED_LISTED", put("owner", "扶贫办"), "owner: unknown key", id="unknown key"),
        pytest.param("DECEASED_LISTED", rename("severity", "severty"), "severty: unknown key", id="severty"),
        pytest.param("DECEASED_LISTED", rename("severity", "severty"), "severity: is missing", id="so no severity"),
        pytest.param("RELAPSE_RISK", rename("depends_on", "depends"), "depends: unknown key", id="depends"),
        # wrong types, top level and nested
        pytest.param("DECEASED_LISTED", put("title_en", 5), "title_en: 5 is not text", id="a number for a title"),
        pytest.param("DECEASED_LISTED", put("seed_items", ["18"]), "seed_items[0]: '18' is not an integer", id="'18'"),
        pytest.param("DECEASED_LISTED", put("seed_items", [18.5]), "seed_items[0]: 18.5 is not an integer", id="18.5"),
        pytest.param(
            "DECEASED_LISTED", put("seed_items", ["eighteen"]), "seed_items[0]: 'eighteen' is not an integer", id="18"
        ),
        pytest.param(
            "DECEASED_LISTED",
            put("responsible", ["民政", {"name": "公安"}]),
            "responsible[1]: must be text, not a mapping",
            id="a mapping in a list",
        ),
        pytest.param("DECEASED_LISTED", put("responsible", "民政"), "responsible: must be a list", id="not a list"),
        pytest.param(
            "RELAPSE_RISK", put("depends_on", "MED_NOT_INSURED"), "depends_on: must be a list", id="depends_on"
        ),
        pytest.param("DECEASED_LISTED", put("severity", True), "severity: true is not text", id="severity: true"),
        # missing keys
        pytest.param("DECEASED_LISTED", drop("title_en"), "title_en: is missing", id="no title_en"),
        pytest.param("DECEASED_LISTED", drop("code"), "code: is missing", id="no code"),
        pytest.param("DECEASED_LISTED", put("responsible", []), "responsible: must not be empty", id="nobody"),
    ],
)
def test_a_rule_mistake_is_refused_naming_file_and_key(
    rules_folder: Path, rule: str, edit: Edit, expected: str
) -> None:
    path = rules_folder / f"{rule}.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump(edit(document), allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        catalogue.load_rules()
    assert f"{path}: {expected}" in str(raised.value)


def test_every_broken_rule_file_is_reported_at_once(rules_folder: Path) -> None:
    for code, edit in (("DECEASED_LISTED", put("title_en", 5)), ("ID_INVALID", put("owner", "扶贫办"))):
        path = rules_folder / f"{code}.yaml"
        document = edit(yaml.safe_load(path.read_text(encoding="utf-8")))
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        catalogue.load_rules()
    lines = str(raised.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["title_en", "owner"]
    assert lines[0].startswith(f"{rules_folder / 'DECEASED_LISTED.yaml'}: ")
    assert lines[1].startswith(f"{rules_folder / 'ID_INVALID.yaml'}: ")
