"""``quality.html``: the run's data quality on one page, in Chinese with the English beside it.

Great Expectations' Data Docs list every suite, and a suite whose only failures are
warnings shows there as "Failed". This page says what the gates decided: per stage, passed,
passed with warnings, or failed (a critical expectation failed, which stops the run), and
lists each warning as a warning and each critical failure as one, with the Data Docs linked
for the detail. A self-contained page: no script, no style sheet or font fetched.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Final

STAGE_WORDS: Final[Mapping[str, str]] = {
    "standardise": "标准化 Standardise",
    "link": "人员关联 Link",
    "publish": "普查底册 Census extract",
}
PASSED: Final = "通过 Passed"
WARNED: Final = "通过，有警告 Passed with warnings"
FAILED: Final = "未通过 Failed"


def _outcome(counts: Mapping[str, int]) -> tuple[str, str]:
    """A stage's (or the run's) outcome in words, and its CSS class."""
    if counts.get("critical_failed", 0):
        return FAILED, "failed"
    if counts.get("warnings", 0):
        return WARNED, "warned"
    return PASSED, "passed"


def quality_page(
    quality: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    *,
    batch_id: str,
    as_of: date | None,
    data_docs: str | None,
) -> str:
    """The page for a batch's ``quality`` (counts per stage, as ``quality_summary`` gives them)
    and its outcome ``rows`` (those of ``quality_results.csv``)."""
    e = html.escape
    overall, overall_class = _outcome(quality)
    stages = quality.get("stages", {})
    stage_rows = []
    order = list(STAGE_WORDS)  # the pipeline's order, then any other stage by name
    for stage, counts in sorted(
        stages.items(), key=lambda item: (order.index(item[0]) if item[0] in order else len(order), item[0])
    ):
        outcome, css = _outcome(counts)
        stage_rows.append(
            f"<tr><td>{e(STAGE_WORDS.get(stage, stage))}</td><td class=n>{counts.get('expectations', 0):,}</td>"
            f"<td class=n>{counts.get('critical_failed', 0):,}</td><td class=n>{counts.get('warnings', 0):,}</td>"
            f'<td class="{css}">{e(outcome)}</td></tr>'
        )
    failures = [row for row in rows if not row.get("success")]
    failure_rows = []
    for row in sorted(failures, key=lambda row: (row.get("severity") != "critical", str(row.get("stage")))):
        critical = row.get("severity") == "critical"
        kind = "关键（阻止发布） Critical" if critical else "警告 Warning"
        counted = row.get("unexpected_count")
        failure_rows.append(
            f'<tr class="{"failed" if critical else "warned"}"><td>{e(kind)}</td>'
            f"<td>{e(STAGE_WORDS.get(str(row.get('stage')), str(row.get('stage'))))}</td>"
            f"<td>{e(str(row.get('suite') or ''))}</td><td>{e(str(row.get('column_name') or ''))}</td>"
            f"<td>{e(str(row.get('description') or row.get('expectation') or ''))}</td>"
            f"<td class=n>{'' if counted is None else f'{int(counted):,}'}</td>"
            f"<td>{e(str(row.get('observed') or ''))}</td></tr>"
        )
    docs = (
        f'<p>详细报告 Full report: <a href="{e(data_docs)}">Great Expectations Data Docs</a></p>' if data_docs else ""
    )
    listed = (
        "<table><tr><th>类别 Kind</th><th>阶段 Stage</th><th>规则集 Suite</th><th>字段 Column</th>"
        "<th>检查内容 Expectation</th><th>不符行数 Rows</th><th>实测 Observed</th></tr>"
        + "".join(failure_rows)
        + "</table>"
        if failure_rows
        else "<p>全部检查通过。Every expectation was met.</p>"
    )
    as_of_text = f"，截至 {as_of.isoformat()} as of {as_of.isoformat()}" if as_of else ""
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>数据质量摘要 Data quality summary — {e(batch_id)}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #999; padding: 0.3em 0.6em; vertical-align: top; text-align: left; }}
th {{ background: #e8e8e8; }}
td.n {{ text-align: right; }}
.passed {{ background: #dff0d8; }}
.warned {{ background: #fcf8e3; }}
.failed {{ background: #f2dede; }}
.verdict {{ font-size: 1.4em; padding: 0.4em 0.8em; display: inline-block; }}
</style></head>
<body>
<h1>数据质量摘要 Data quality summary</h1>
<p>批次 Batch {e(batch_id)}{e(as_of_text)}</p>
<p class="verdict {overall_class}">{e(overall)}：关键失败 {
        int(quality.get("critical_failed", 0)):,} critical failed，警告 {int(quality.get("warnings", 0)):,} warnings</p>
<p>关键检查未通过则不发布；警告不阻止发布，但须核实。
A failed critical expectation stops the run; a warning does not, but is to be looked into.</p>
<h2>各阶段 Stages</h2>
<table><tr><th>阶段 Stage</th><th>检查数 Expectations</th><th>关键失败 Critical failed</th><th>警告 Warnings</th>
<th>结果 Result</th></tr>
{"".join(stage_rows)}
</table>
<h2>未满足的检查 Expectations not met</h2>
{listed}
{docs}
</body></html>
"""
