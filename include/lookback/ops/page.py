"""The ops view as one HTML page: Chinese labels with English beside them, tables for what
people read and a chart for what they would rather look at (findings over runs). Plain
HTML and inline SVG, no script: it renders the same in Airflow's iframe, a browser on a
county office's PC and a headless test. Every value is escaped."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

from lookback.publish.quality_page import STAGE_WORDS, _outcome
from lookback.reconcile.rectification import RECTIFICATION_STATES

STYLE: Final = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:16px;color:#1d2733;background:#fff}
h1{font-size:20px;margin:0 0 4px}
h3{font-size:14px;margin:10px 0 4px} h2{font-size:16px;margin:22px 0 6px;border-bottom:1px solid #d4dae1}
table{border-collapse:collapse;font-size:13px;margin:4px 0} th,td{border:1px solid #d4dae1;padding:3px 8px}
th{background:#f1f4f7;text-align:left;font-weight:600} td.n{text-align:right;font-variant-numeric:tabular-nums}
.passed{color:#17663a;font-weight:600} .warned{color:#8a5a00;font-weight:600} .failed{color:#b3261e;font-weight:600}
.bad{color:#b3261e} .muted{color:#66717d;font-size:12px} a{color:#0b57d0}
.cards{display:flex;gap:10px;flex-wrap:wrap}
.card{border:1px solid #d4dae1;border-radius:6px;padding:8px 12px;min-width:130px}
.card b{display:block;font-size:22px} nav a{margin-right:10px}
"""
EVENT_WORDS: Final[Mapping[str, str]] = {
    "found": "本次在册 Open in run",
    "opened": "新发现 Opened",
    "resolved": "已销号 Resolved",
    "reopened": "复现 Reopened",
    "not_checked": "未能核对 Not checked",
}
STATE_ENGLISH: Final[Mapping[str, str]] = {
    "no_answer": "no answer",
    "in_progress": "in progress",
    "overdue": "overdue",
    "reported_fixed": "reported fixed",
    "still_found": "still found",
    "cannot_fix": "cannot fix",
    "verified": "verified",
}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _n(value: Any) -> str:
    return f"<td class=n>{int(value or 0):,}</td>"


def _table(headers: Sequence[str], rows: Sequence[str], empty: str) -> str:
    if not rows:
        return f"<p class=muted>{_e(empty)}</p>"
    head = "".join(f"<th>{_e(header)}</th>" for header in headers)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def trend_chart(trend: Sequence[Mapping[str, Any]], width: int = 640, height: int = 200) -> str:
    """An SVG line of the findings each run holds open, with bars of what it opened (red) and
    resolved (green); a run per step, labelled with its id and as-of date."""
    if not trend:
        return "<p class=muted>尚无运行 No runs yet</p>"
    left, bottom, top = 48, 46, 12
    plot_w, plot_h = width - left - 12, height - bottom - top
    peak = max(max(int(run["found"]), int(run["opened"]), int(run["resolved"])) for run in trend) or 1
    step = plot_w / len(trend)
    bar = max(2.0, min(14.0, step / 4))

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / peak

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="findings over runs" class="trend">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 12}" y2="{top + plot_h}" stroke="#9aa5b1"/>',
        f'<text x="{left - 6}" y="{y(peak) + 4:.1f}" font-size="11" text-anchor="end">{peak:,}</text>',
        f'<text x="{left - 6}" y="{top + plot_h + 4}" font-size="11" text-anchor="end">0</text>',
    ]
    points = []
    for index, run in enumerate(trend):
        middle = left + step * (index + 0.5)
        for offset, key, colour in ((-bar, "opened", "#d93025"), (0.0, "resolved", "#188038")):
            value = int(run[key])
            parts.append(
                f'<rect x="{middle + offset:.1f}" y="{y(value):.1f}" width="{bar:.1f}" '
                f'height="{top + plot_h - y(value):.1f}" fill="{colour}" opacity="0.75">'
                f"<title>{_e(run['run_id'])}: {_e(EVENT_WORDS[key])} {value:,}</title></rect>"
            )
        points.append(f"{middle:.1f},{y(int(run['found'])):.1f}")
        parts.append(
            f'<circle cx="{middle:.1f}" cy="{y(int(run["found"])):.1f}" r="3" fill="#0b57d0">'
            f"<title>{_e(run['run_id'])}: {_e(EVENT_WORDS['found'])} {int(run['found']):,}</title></circle>"
        )
        parts.append(
            f'<text x="{middle:.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="middle">'
            f"{_e(run['run_id'])[:14]}</text>"
            f'<text x="{middle:.1f}" y="{top + plot_h + 30}" font-size="10" fill="#66717d" '
            f'text-anchor="middle">{_e(run["as_of"])}</text>'
        )
    parts.insert(4, f'<polyline points="{" ".join(points)}" fill="none" stroke="#0b57d0" stroke-width="2"/>')
    parts.append("</svg>")
    legend = (
        '<p class=muted><span style="color:#0b57d0">●</span> 在册问题 open findings　'
        '<span style="color:#d93025">■</span> 新发现 opened　<span style="color:#188038">■</span> 已销号 resolved</p>'
    )
    return "".join(parts) + legend


def _runs(runs: Sequence[Mapping[str, Any]], current: str | None, base: str) -> str:
    rows = [
        f"<tr><td><a href='{base}/runs/{quote(str(run['run_id']), safe='')}'>{_e(run['run_id'])}</a>"
        f"{' ◀' if run['run_id'] == current else ''}</td><td>{_e(run['batch_id'])}</td><td>{_e(run['as_of'])}</td>"
        f"<td>{_e(str(run['looked_back_at'])[:19])}</td>{_n(run['execution'])}<td>{_e(run['sources_delivered'])}</td>"
        f"<td>{_e(run['rules_not_applied'])}</td></tr>"
        for run in runs
    ]
    return _table(
        [
            "运行 Run",
            "批次 Batch",
            "基准日 As of",
            "回头看于 Looked back at",
            "次数 Execution",
            "已交付 Sources",
            "未执行规则 Rules not applied",
        ],
        rows,
        "尚无运行 No look-back run yet",
    )


def _accounting(rows: Sequence[Mapping[str, Any]]) -> str:
    body = [
        f"<tr><td>{_e(row['source'])}</td><td>{_e(row['status'])}</td><td>{_e(row['file_name'])}</td>"
        f"{_n(row['delivered'])}{_n(row['accepted'])}{_n(row['skipped'])}{_n(row['quarantined'])}"
        f"{_n(row['value_problems'])}<td class='{'passed' if row['adds_up'] else 'failed'}'>"
        f"{'相符 adds up' if row['adds_up'] else '不符 does not add up'}</td></tr>"
        for row in rows
    ]
    return _table(
        [
            "来源 Source",
            "状态 Status",
            "文件 File",
            "交付 Delivered",
            "接收 Accepted",
            "跳过 Skipped",
            "隔离 Quarantined",
            "取值问题 Value problems",
            "核对 Accounting",
        ],
        body,
        "本批次无交付记录 No accounting for this batch",
    )


def _quality(quality: Mapping[str, Any], docs_href: str | None) -> str:
    overall, css = _outcome(quality)
    rows = []
    for stage, counts in quality.get("stages", {}).items():
        outcome, stage_css = _outcome(counts)
        rows.append(
            f"<tr><td>{_e(STAGE_WORDS.get(stage, stage))}</td>{_n(counts.get('expectations'))}"
            f"{_n(counts.get('critical_failed'))}{_n(counts.get('warnings'))}"
            f"<td class='{stage_css}'>{_e(outcome)}</td></tr>"
        )
    link = (
        f" · <a href='{docs_href}'>数据质量报告 Data Docs</a>"
        if docs_href
        else " · <span class=muted>无数据质量报告 no Data Docs published</span>"
    )
    table = _table(
        ["阶段 Stage", "检查项 Expectations", "严重失败 Critical failed", "警告 Warnings", "结果 Outcome"],
        rows,
        "尚未校验 Not validated",
    )
    return f"<p class='{css}'>{_e(overall)}{link}</p>{table}"


_FINDING_KEYS: Final = ("found", "opened", "resolved", "reopened", "not_checked")


def _grouped(rows: Sequence[Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        group = groups.setdefault(row[key], {**row, **dict.fromkeys(_FINDING_KEYS, 0)})
        for name in _FINDING_KEYS:
            group[name] += int(row[name])
    return [groups[name] for name in sorted(groups)]


def _finding_rows(rows: Sequence[Mapping[str, Any]], labels: Sequence[str], total_span: int) -> list[str]:
    body = [
        f"<tr>{''.join(f'<td>{cell}</td>' for cell in _cells(row, labels))}"
        f"{''.join(_n(row[key]) for key in _FINDING_KEYS)}</tr>"
        for row in rows
    ]
    if rows:
        sums = {key: sum(int(row[key]) for row in rows) for key in _FINDING_KEYS}
        body.append(
            f"<tr class=total><th colspan={total_span}>合计 Total</th>"
            f"{''.join(_n(sums[key]) for key in _FINDING_KEYS)}</tr>"
        )
    return body


def _cells(row: Mapping[str, Any], labels: Sequence[str]) -> list[str]:
    words = {
        "county": _e(row["county"]),
        "rule_code": _e(row["rule_code"]),
        "rule": f"{_e(row['rule_zh'])} <span class=muted>{_e(row['rule_en'])}</span>",
    }
    return [words[label] for label in labels]


def _findings(rows: Sequence[Mapping[str, Any]]) -> str:
    """Per county, per rule, and (folded) per county and rule: a province has a hundred
    counties and a score of rules, too many lines to read at once."""
    if not rows:
        return "<p class=muted>本次未发现问题 No findings in this run</p>"
    counts = [EVENT_WORDS[key] for key in _FINDING_KEYS]
    by_county = _table(["县市区 County", *counts], _finding_rows(_grouped(rows, "county_code"), ["county"], 1), "")
    by_rule = _table(
        ["规则 Rule", "问题 Finding", *counts], _finding_rows(_grouped(rows, "rule_code"), ["rule_code", "rule"], 2), ""
    )
    both = _table(
        ["县市区 County", "规则 Rule", "问题 Finding", *counts],
        _finding_rows(rows, ["county", "rule_code", "rule"], 3),
        "",
    )
    return (
        f"<h3>按县市区 By county</h3><div class=by-county>{by_county}</div>"
        f"<h3>按规则 By rule</h3><div class=by-rule>{by_rule}</div>"
        f"<details><summary>按县市区和规则 By county and rule ({len(rows):,})</summary>{both}</details>"
    )


def _rectification(rows: Sequence[Mapping[str, Any]]) -> str:
    body = [
        f"<tr><td>{_e(row['county'])}</td>{''.join(_n(row[state]) for state in RECTIFICATION_STATES)}</tr>"
        for row in rows
    ]
    return _table(
        ["县市区 County", *(f"{words} {STATE_ENGLISH[state]}" for state, words in RECTIFICATION_STATES.items())],
        body,
        "尚无问题 No findings yet",
    )


def _roster(rows: Sequence[Mapping[str, Any]]) -> str:
    body = [
        f"<tr><td>{_e(row['label'])}</td><td class=muted>{_e(row['visit_category'])}</td>{_n(row['households'])}"
        f"{_n(row['with_findings'])}</tr>"
        for row in rows
    ]
    if rows:
        body.append(
            f"<tr><th colspan=2>合计 Total</th>{_n(sum(int(row['households']) for row in rows))}"
            f"{_n(sum(int(row['with_findings'] or 0) for row in rows))}</tr>"
        )
    return _table(
        ["走访类别 Visit category", "代码 Code", "户数 Households", "有问题户 With open findings"],
        body,
        "本次无走访名单 No visit roster in this run",
    )


def _approvals(approvals: Sequence[Mapping[str, Any]]) -> str:
    body = [
        f"<tr><td>{_e(item['dag_id'])}</td><td>{_e(item['dag_run_id'])}</td><td>{_e(item['subject'])}</td>"
        f"<td>{_e(item['waiting_since'])}</td><td>{_e(item['assignees'])}</td></tr>"
        for item in approvals
    ]
    return _table(
        ["DAG", "DAG 运行 DAG run", "事项 Subject", "等待自 Waiting since", "审批人 Approvers"],
        body,
        "无待审批 Nothing waiting for approval",
    )


def _failures(failures: Sequence[Mapping[str, Any]]) -> str:
    body = [
        f"<tr><td>{_e(item.get('at'))}</td><td>{_e(item.get('batch'))}</td><td>{_e(item.get('dag_id'))}</td>"
        f"<td>{_e(item.get('task_id'))}</td><td class=bad>{_e(item.get('reason'))}</td></tr>"
        for item in failures
    ]
    return _table(["时间 At", "批次 Batch", "DAG", "任务 Task", "原因 Reason"], body, "近期无失败 No recent failures")


def _files(files: Sequence[Mapping[str, Any]], href: str) -> str:
    body = [
        f"<tr><td><a href='{href}/{quote(str(item['path']))}'>{_e(item['path'])}</a></td>{_n(item['rows'])}"
        f"{_n(item['bytes'])}</tr>"
        for item in files
    ]
    return _table(["文件 File", "行数 Rows", "字节 Bytes"], body, "本次运行尚未发布 Not published yet")


def render_page(
    *,
    runs: Sequence[Mapping[str, Any]],
    trend: Sequence[Mapping[str, Any]],
    rectification: Sequence[Mapping[str, Any]],
    overview: Mapping[str, Any] | None,
    approvals: Sequence[Mapping[str, Any]],
    failures: Sequence[Mapping[str, Any]],
    base: str,
) -> str:
    """The whole page: the runs, the chosen run's state (``overview``, see
    :func:`lookback.ops.summary.run_overview`), the trend and what waits on people."""
    run = overview["run"] if overview else None
    sections = [
        "<!doctype html><html lang=zh-CN><head><meta charset=utf-8>"
        "<title>回头看 运行概况 Look-back ops view</title>"
        f"<style>{STYLE}</style></head><body>",
        "<h1>回头看 运行概况 <span class=muted>Look-back ops view</span></h1>",
        f"<nav><a href='{base}/'>最新 Latest</a><a href='{base}/api/summary'>JSON</a></nav>",
    ]
    if overview and run:
        run_href = f"{base}/runs/{quote(str(run['run_id']), safe='')}"
        findings = overview["findings"]
        cards = [
            ("在册问题 Open in run", sum(int(row["found"]) for row in findings)),
            ("新发现 Opened", sum(int(row["opened"]) for row in findings)),
            ("已销号 Resolved", sum(int(row["resolved"]) for row in findings)),
            ("走访户 Households to visit", sum(int(row["households"]) for row in overview["roster"])),
            ("待复核配对 Pairs to review", overview["review"]["pending"]),
            ("待审批 Approvals waiting", len(approvals)),
        ]
        docs = f"{run_href}/files/data_docs/index.html" if overview["quality"].get("data_docs") else None
        sections += [
            f"<p>运行 Run <b class=run-id>{_e(run['run_id'])}</b> · 批次 Batch {_e(run['batch_id'])} · "
            f"基准日 As of {_e(run['as_of'])} · 第 {int(run['execution'])} 次执行 execution</p>",
            "<div class=cards>"
            + "".join(
                f"<div class=card data-card='{_e(label)}'><b>{int(value):,}</b>{_e(label)}</div>"
                for label, value in cards
            )
            + "</div>",
            "<h2>问题趋势 Findings over runs</h2>",
            trend_chart(trend),
            "<h2>数据交付与行数核对 Row accounting per source</h2>",
            _accounting(overview["accounting"]),
            "<h2>数据质量 Quality result</h2>",
            _quality(overview["quality"], docs),
            "<h2>问题 按县市区和规则 Findings by county and rule</h2>",
            _findings(findings),
            "<h2>走访名单 Visit roster</h2>",
            _roster(overview["roster"]),
            "<h2>待复核配对 Pairs waiting for review</h2>",
            f"<p>待复核 pending <b class=review-pending>{int(overview['review']['pending']):,}</b> / "
            f"共 of {int(overview['review']['pairs']):,}</p>",
            "<h2>交付文件 Delivered files</h2>",
            _files(overview["files"], f"{run_href}/files"),
        ]
    else:
        sections.append("<p class=muted>尚无回头看运行 No look-back run yet</p>")
    sections += [
        "<h2>整改状态 按县市区 Rectification per county</h2>",
        _rectification(rectification),
        "<h2>待审批 Pending approval</h2>",
        _approvals(approvals),
        "<h2>近期失败 Recent failures</h2>",
        _failures(failures),
        "<h2>最近运行 Latest runs</h2>",
        _runs(runs, run["run_id"] if run else None, base),
        "<p class=muted>只读 Read-only · 不显示身份证号 no identity numbers shown</p></body></html>",
    ]
    return "\n".join(sections)
