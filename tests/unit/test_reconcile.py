"""The rule catalogue and the findings' lifecycle, without a warehouse."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from lookback.errors import ConfigError
from lookback.reconcile import catalogue
from lookback.reconcile.stage import _ordered_references, _walk
from lookback.rules import RULE_CODES


def _run(run_id: str, as_of: date, *counties: str) -> dict[str, object]:
    return {"run_id": run_id, "as_of": as_of, "counties": set(counties)}


RUNS = [
    _run("r1", date(2020, 3, 31), "431224", "431230"),
    _run("r2", date(2020, 6, 30), "431224", "431230"),
    _run("r3", date(2020, 7, 15), "431230"),  # another county only
    _run("r4", date(2020, 9, 30), "431224", "431230"),
]


def test_a_finding_is_opened_resolved_and_reopened() -> None:
    observed = {"F": {"r1", "r4"}}
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
    states, events = _walk(RUNS, {"F": {"r2"}, "G": {"r2"}}, {"F": "431224", "G": "431230"})
    # F (溆浦) is resolved by r4, the next run covering its county; G (通道) by r3.
    assert (states["F"].status, states["F"].resolved_in_run, states["F"].resolved_at) == (
        "resolved",
        "r4",
        date(2020, 9, 30),
    )
    assert (states["G"].resolved_in_run, states["G"].resolved_at) == ("r3", date(2020, 7, 15))
    assert [event["event"] for event in events if event["finding_id"] == "F"] == ["opened", "resolved"]


def test_a_finding_seen_by_every_run_stays_open_with_one_event() -> None:
    states, events = _walk(RUNS, {"F": {"r1", "r2", "r4"}}, {"F": "431224"})
    assert (states["F"].status, states["F"].first_seen_run, states["F"].last_seen_run) == ("open", "r1", "r4")
    assert [event["event"] for event in events] == ["opened"]


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
            "severity 'dire' is not one of",
        ),
        (
            lambda folder: (folder / "ID_INVALID.yaml").write_text(
                (folder / "ID_INVALID.yaml")
                .read_text(encoding="utf-8")
                .replace("subject: person", "subject: household"),
                encoding="utf-8",
            ),
            "subject household, the contract says person",
        ),
        (
            lambda folder: (folder / "RELAPSE_RISK.yaml").write_text(
                (folder / "RELAPSE_RISK.yaml").read_text(encoding="utf-8").replace("HOUSING_UNSAFE]", "NEW_RULE]"),
                encoding="utf-8",
            ),
            "depends on NEW_RULE, which must run before it",
        ),
    ],
)
def test_the_catalogue_refuses_a_rule_set_that_is_not_the_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: object, message: str
) -> None:
    include = tmp_path / "include"
    shutil.copytree(catalogue.rules_dir(), include / "sql" / "rules")
    monkeypatch.setenv("LOOKBACK_INCLUDE_DIR", str(include))
    catalogue.load_rules.cache_clear()
    try:
        change(include / "sql" / "rules")  # type: ignore[operator]
        with pytest.raises(ConfigError, match=message):
            catalogue.load_rules()
    finally:
        catalogue.load_rules.cache_clear()
