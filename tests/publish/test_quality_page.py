"""quality.html: the gates' outcome on one page, in Chinese with the English beside it; a
suite with only warnings passes with warnings (Data Docs call it "Failed")."""

from __future__ import annotations

from datetime import date
from typing import Any

from lookback.publish.quality_page import FAILED, PASSED, WARNED, quality_page


def _row(stage: str, severity: str, success: bool, description: str) -> dict[str, Any]:
    return {
        "stage": stage,
        "suite": f"{stage}.registry",
        "expectation": "expect_column_values_to_not_be_null",
        "column_name": "name",
        "severity": severity,
        "success": success,
        "unexpected_count": 0 if success else 12,
        "observed": None,
        "description": description,
    }


def test_warnings_pass_with_warnings_and_are_listed_as_warnings() -> None:
    rows = [
        _row("standardise", "warning", False, "At least 99% of numbers are valid <after> normalisation"),
        _row("standardise", "critical", True, "Every row has a name"),
        _row("link", "critical", True, "Every row is in one person"),
    ]
    quality = {
        "stages": {
            "link": {"expectations": 1, "critical_failed": 0, "warnings": 0},
            "standardise": {"expectations": 2, "critical_failed": 0, "warnings": 1},
        },
        "critical_failed": 0,
        "warnings": 1,
    }
    page = quality_page(quality, rows, batch_id="b1", as_of=date(2020, 6, 30), data_docs="data_docs/index.html")
    assert f'<p class="verdict warned">{WARNED}' in page
    assert FAILED not in page
    assert page.index("标准化 Standardise") < page.index("人员关联 Link")  # the pipeline's order
    assert f'<td class="warned">{WARNED}</td>' in page and f'<td class="passed">{PASSED}</td>' in page
    assert '<tr class="warned"><td>警告 Warning</td>' in page
    assert "&lt;after&gt;" in page  # text from the suites is escaped
    assert '<a href="data_docs/index.html">' in page
    assert "<script" not in page and "http" not in page  # nothing run, nothing fetched


def test_a_critical_failure_fails_its_stage_and_the_run() -> None:
    rows = [_row("publish", "critical", False, "One row per person")]
    quality = {
        "stages": {"publish": {"expectations": 1, "critical_failed": 1, "warnings": 0}},
        "critical_failed": 1,
        "warnings": 0,
    }
    page = quality_page(quality, rows, batch_id="b1", as_of=None, data_docs=None)
    assert f'<p class="verdict failed">{FAILED}' in page
    assert '<tr class="failed"><td>关键（阻止发布） Critical</td>' in page
    assert "Data Docs" not in page


def test_every_expectation_met_says_so() -> None:
    quality = {"stages": {"link": {"expectations": 1, "critical_failed": 0, "warnings": 0}}}
    page = quality_page(quality, [], batch_id="b1", as_of=None, data_docs=None)
    assert f'<p class="verdict passed">{PASSED}' in page and "全部检查通过。Every expectation was met." in page
