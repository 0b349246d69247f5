"""Every suite in expectations/: a clean table passes it, and for every expectation a table
with one defect planted for it fails it, with that expectation named.

The clean tables are made by hand here, column by column, as the suites' datasets are
built (``lookback.validate.datasets``); the defects are planted from each expectation's own
arguments, so a new expectation in a suite is tested without a new test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lookback.errors import ConfigError
from lookback.validate.datasets import ValidatedTable
from lookback.validate.stage import _UNEXPECTED_INDICES, STAGES, SuiteFile, _Project, read_suite, stage_suites

ROWS = 200


def _cycle(*values: Any) -> list[Any]:
    return [values[i % len(values)] for i in range(ROWS)]


def _common() -> dict[str, Any]:
    return {
        "source_row": list(range(1, ROWS + 1)),
        "county_code": "431224",
        "township": "青山镇",
        "village": "青山村",
        "duplicate_of_row": None,
    }


CLEAN: dict[str, Callable[[], dict[str, Any]]] = {
    "registry": lambda: (
        _common()
        | {
            "household_number": [f"43122410120100{i // 4:04d}" for i in range(ROWS)],
            "name": "王伟",
            "identity_number_valid": True,
            "sex": _cycle("male", "female"),
            "relation_to_head": _cycle("head", "spouse", "son", "daughter"),
            "poverty_category": "ordinary",
            "poverty_status": _cycle("not_exited", "exited_with_policies"),
            "health": "healthy",
            "schooling": None,
            "claims_insured": "yes",
            "claims_unsafe_house": "no",
            "claims_safe_water": "yes",
            "age": _cycle(45, 43, 15, 12),
            "exit_year": _cycle(None, 2019),
            "heads_in_household": 1,
            "age_fits_relation": True,
        }
    ),
    "dibao": lambda: (
        _common()
        | {
            "support_category": "dibao",
            "head_name": "刘芳",
            "head_identity_number_valid": True,
            "name": "刘芳",
            "identity_number_valid": True,
            "relation_to_head": _cycle("head", "son"),
            "supported_members": 2,
            "status": "active",
            "monthly_payment": 700.0,
            "heads_in_household": 1,
            "members_listed": 2,
            "members_match_supported": True,
            "support_start_not_after_as_of": True,
        }
    ),
    "insurance": lambda: (
        _common()
        | {
            "name": "张三",
            "identity_number_valid": True,
            "sex": "male",
            "birth_date": "1970-01-01",
            "scheme": "residents",
            "year": 2020,
            "status": "paid",
            "subsidy_category": _cycle("registry", None),
            "personal_contribution": 0.0,
            "year_not_after_as_of": True,
            "birth_date_matches_identity": True,
        }
    ),
    "housing": lambda: (
        _common()
        | {
            "head_name": "李四",
            "head_identity_number_valid": True,
            "household_size": 4,
            "household_type": "registry",
            "appraisal_level": _cycle("A", "B"),
            "appraisal_date": "2019-05-01",
            "renovation_status": None,
            "completion_date": None,
            "appraisal_not_after_as_of": True,
            "completion_not_before_appraisal": None,
        }
    ),
    "hukou": lambda: (
        _common()
        | {
            "name": "赵五",
            "identity_number_valid": True,
            "sex": "female",
            "reason": "death",
            "cancellation_date": "2020-03-01",
            "cancellation_not_after_as_of": True,
        }
    ),
    "person_links": lambda: {
        "source": "registry",
        "source_row": list(range(1, ROWS + 1)),
        "row": [f"registry:{i}" for i in range(1, ROWS + 1)],
        "person_id": [f"P{i:09d}" for i in range(1, ROWS + 1)],
        "household_key": [f"H{i // 4:09d}" for i in range(ROWS)],
        "match_method": "id_exact",
        "links_of_row": 1,
        "conflicting_identity": False,
        "in_review": 0,
    },
    "census_extract": lambda: {
        "person_id": [f"P{i:09d}" for i in range(1, ROWS + 1)],
        "household_key": [f"H{i // 4:09d}" for i in range(ROWS)],
        "county_code": "431224",
        "name": "王伟",
        "identity_number_valid": True,
        "identity_number_holders": 1,
        "age": _cycle(8, 35, 70),
        "sex": _cycle("男", "女"),
        "relation_to_head": _cycle("户主", "配偶", "之子", "之女"),
        "poverty_status": _cycle("未脱贫", "已脱贫（享受政策）"),
        "insured": _cycle("是", "否"),
        "deceased": "否",
        "open_findings": _cycle(0, 2),
    },
}
_KEYS = {"person_links": "row", "census_extract": "person_id"}


def _table(dataset: str, frame: pd.DataFrame | None = None) -> ValidatedTable:
    frame = pd.DataFrame(CLEAN[dataset]()) if frame is None else frame
    key = _KEYS.get(dataset, "source_row")
    for column in ("age_fits_relation", "members_match_supported", "support_start_not_after_as_of"):
        if column in frame:
            frame[column] = frame[column].astype("boolean")
    return ValidatedTable(frame=frame, key=key, row_word="" if key == "row" else "row")


def _suites() -> list[SuiteFile]:
    return [suite for stage in STAGES for suite in stage_suites(stage)]


def _defects() -> Iterator[tuple[SuiteFile, int]]:
    for suite in _suites():
        for index in range(len(suite.document["expectations"])):
            yield suite, index


def _plant(frame: pd.DataFrame, expectation: dict[str, Any]) -> pd.DataFrame:
    """A copy of the clean table that breaks ``expectation`` (and, where a sibling with a
    looser threshold watches the same column, possibly that one too)."""
    kind, kwargs = expectation["type"], expectation["kwargs"]
    broken = frame.copy()
    column = kwargs.get("column")
    share = 1.0 - float(kwargs.get("mostly", 1.0))
    rows = broken.index[: max(1, int(ROWS * share) + 2)]  # just past what ``mostly`` allows
    if kind == "expect_table_row_count_to_be_between":
        return broken.iloc[0:0]
    if kind == "expect_table_columns_to_match_set":
        return broken.drop(columns=[kwargs["column_set"][-1]])
    if kind == "expect_column_values_to_not_be_null":
        broken[column] = broken[column].astype(object)
        broken.loc[rows, column] = None
    elif kind == "expect_column_values_to_be_null":
        broken.loc[rows, column] = 1
    elif kind == "expect_column_values_to_be_in_set":
        allowed = kwargs["value_set"]
        broken[column] = broken[column].astype(object)
        broken.loc[rows, column] = (not allowed[0]) if isinstance(allowed[0], bool) else "不在代码表"
    elif kind == "expect_column_values_to_be_between":
        broken[column] = broken[column].astype(object)
        if kwargs.get("max_value") is not None:
            broken.loc[rows, column] = kwargs["max_value"] + 1
        else:
            broken.loc[rows, column] = kwargs["min_value"] - 1
    elif kind == "expect_column_values_to_be_unique":
        last: Any = broken[column].iloc[-1]
        broken.loc[rows, column] = last
    elif kind == "expect_column_values_to_match_regex":
        broken.loc[rows, column] = "not-a-key"
    elif kind == "expect_column_mean_to_be_between":
        broken[column] = 1
    else:
        raise AssertionError(f"no defect is known for {kind}: teach _plant how to break it")
    return broken


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> _Project:
    root = tmp_path_factory.mktemp("quality")
    return _Project(root / "gx", root / "data_docs")


def test_every_stage_has_suites_and_every_dataset_a_clean_table() -> None:
    suites = _suites()
    assert {suite.stage for suite in suites} == set(STAGES)
    assert {suite.dataset for suite in suites} == set(CLEAN)


@pytest.mark.parametrize("suite", _suites(), ids=lambda suite: suite.path.name)
def test_a_clean_table_passes(project: _Project, suite: SuiteFile) -> None:
    outcomes = project.validate(suite, _table(suite.dataset), run_name="clean")
    assert [o.line() for o in outcomes if not o.success] == []
    assert len(outcomes) == len(suite.document["expectations"])


@pytest.mark.integration  # a whole Great Expectations validation for every expectation of every suite
@pytest.mark.parametrize(
    ("suite", "index"),
    list(_defects()),
    ids=[f"{suite.dataset}-{index}-{suite.document['expectations'][index]['type']}" for suite, index in _defects()],
)
def test_a_planted_defect_fails_its_expectation(project: _Project, suite: SuiteFile, index: int) -> None:
    expectation = suite.document["expectations"][index]
    clean = _table(suite.dataset)
    broken = _table(suite.dataset, _plant(clean.frame, expectation))
    outcomes = project.validate(suite, broken, run_name="defect")
    column = expectation["kwargs"].get("column")
    failed = [o for o in outcomes if not o.success]
    named = [o for o in failed if o.expectation == expectation["type"] and o.column == column]
    assert named, f"{expectation['type']}({column}) did not fail: {[o.line() for o in failed]}"
    assert all(o.severity in {"critical", "warning"} for o in outcomes)
    assert any(expectation["type"] in o.line() for o in named)


def _one_expectation_suite(folder: Path, name: str, expectation: dict[str, Any]) -> Path:
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"name": name, "expectations": [expectation]}), encoding="utf-8")
    return path


def test_suite_files_are_checked(tmp_path: Path) -> None:
    bad = _one_expectation_suite(
        tmp_path, "standardise.registry", {"type": "expect_column_values_to_be_null", "kwargs": {"column": "x"}}
    )
    with pytest.raises(ConfigError, match=r"standardise.registry.json: expectations\[0\].*severity"):
        read_suite(bad)
    wrong_name = tmp_path / "reconcile.findings.json"
    wrong_name.write_text('{"name": "reconcile.findings", "expectations": []}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"named <stage>\.<dataset>\.json"):
        read_suite(wrong_name)


def test_an_unknown_expectation_is_refused_not_dropped(project: _Project, tmp_path: Path) -> None:
    """GX drops an expectation it cannot build with only a log line; the project refuses it."""
    path = _one_expectation_suite(
        tmp_path,
        "standardise.hukou",
        {"type": "expect_column_to_be_lovely", "kwargs": {"column": "name"}, "severity": "warning"},
    )
    with pytest.raises(ConfigError, match=r"standardise\.hukou\.json"):
        project.validate(read_suite(path), _table("hukou"), run_name="bad")


def test_an_expectation_on_a_missing_column_fails_and_says_why(project: _Project, tmp_path: Path) -> None:
    path = _one_expectation_suite(
        tmp_path,
        "standardise.hukou",
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "shoe_size"}, "severity": "critical"},
    )
    (outcome,) = project.validate(read_suite(path), _table("hukou"), run_name="bad")
    assert not outcome.success and outcome.error is not None
    assert "could not be evaluated" in outcome.line() and "shoe_size" in outcome.line()


def test_only_the_unexpected_rows_kept_are_named(project: _Project) -> None:
    """Great Expectations is handed only the unexpected rows its SUMMARY results keep, and
    names them exactly as it names them from all; COMPLETE results still name every row."""
    from great_expectations.expectations.metrics import util
    from great_expectations.expectations.metrics.map_metric_provider import map_condition_auxilliary_methods

    frame = pd.DataFrame({"source_row": range(1, 101), "status": ["lost"] * 100})
    summary = {
        "result_format": "SUMMARY",
        "partial_unexpected_count": 5,
        "unexpected_index_column_names": ["source_row"],
    }
    arguments: dict[str, Any] = {
        "domain_records_df": frame,
        "execution_engine": None,
        "metrics": {"table.columns": list(frame.columns)},
        "expectation_domain_column_list": ["status"],
    }
    named = getattr(map_condition_auxilliary_methods, _UNEXPECTED_INDICES)
    everyone = util.compute_unexpected_pandas_indices(result_format=summary, **arguments)
    assert named(result_format=summary, **arguments) == everyone[:5]
    assert named(result_format=summary, **arguments)[0] == {"status": "lost", "source_row": 1}
    assert len(named(result_format={**summary, "result_format": "COMPLETE"}, **arguments)) == 100


def test_a_failed_expectation_names_its_first_rows(project: _Project) -> None:
    suite = next(suite for suite in stage_suites("standardise") if suite.dataset == "hukou")
    frame = pd.DataFrame(CLEAN["hukou"]())
    frame.loc[frame.index[10:], "reason"] = "不在代码表"
    (outcome,) = [
        o
        for o in project.validate(suite, _table("hukou", frame), run_name="first")
        if o.expectation == "expect_column_values_to_be_in_set" and o.column == "reason"
    ]
    assert outcome.unexpected_count == ROWS - 10
    assert outcome.examples == ("row 11", "row 12", "row 13", "row 14", "row 15")
