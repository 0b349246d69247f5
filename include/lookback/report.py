"""Plain-text tables for the terminal and task logs (never personal data)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from lookback.evaluate import Evaluation, FindingScore, PairScore, subject_kind
from lookback.ingest.load import ACCOUNTING_COLUMNS


class _CharacterWidths(dict[str, int]):
    """Each character's display width, looked up once: two for wide and full-width ones."""

    def __missing__(self, character: str) -> int:
        width = self[character] = 2 if unicodedata.east_asian_width(character) in "WF" else 1
        return width


_WIDTHS = _CharacterWidths()


def display_width(text: str) -> int:
    """Display width: CJK characters take two columns."""
    return len(text) if text.isascii() else sum(map(_WIDTHS.__getitem__, text))


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    cells = [[("" if row.get(column) is None else str(row.get(column))) for column in columns] for row in rows]
    widths = [
        max([display_width(column)] + [display_width(line[i]) for line in cells]) for i, column in enumerate(columns)
    ]

    def render(values: Sequence[str]) -> str:
        return "  ".join(
            value + " " * (width - display_width(value)) for value, width in zip(values, widths, strict=True)
        ).rstrip()

    lines = [render(list(columns)), render(["-" * width for width in widths])]
    lines += [render(line) for line in cells]
    return "\n".join(lines)


def format_accounting(rows: Sequence[Mapping[str, Any]]) -> str:
    """The per-source accounting table with a verdict line: delivered = accepted + skipped + quarantined."""
    table = format_table(rows, ACCOUNTING_COLUMNS)
    unbalanced = [
        row["source"] for row in rows if row["delivered"] != row["accepted"] + row["skipped"] + row["quarantined"]
    ]
    delivered = sum(int(row["delivered"]) for row in rows)
    if unbalanced:
        verdict = f"NOT BALANCED for {', '.join(unbalanced)}: rows are missing"
    else:
        verdict = f"every delivered row is accounted for: {delivered:,} delivered = accepted + skipped + quarantined"
    return f"{table}\n{verdict}"


def format_look_back(summary: Mapping[str, Any]) -> str:
    """The look-back's findings per rule (rows) and county (columns), and what changed since
    the last run."""
    from lookback.reconcile.catalogue import rules_by_code

    titles = {code: rule.title_zh for code, rule in rules_by_code().items()}
    per_county: Mapping[str, Mapping[str, int]] = summary.get("findings_per_county", {})
    counties = sorted(per_county)
    rows = []
    found_per_rule: Mapping[str, int] = summary.get("findings_per_rule", {})
    ordered = [code for code in titles if code in found_per_rule] + sorted(set(found_per_rule) - set(titles))
    for code in ordered:
        found = found_per_rule[code]
        row: dict[str, Any] = {"rule_code": code, "title": titles.get(code, ""), "findings": found}
        for county in counties:
            row[county or "(none)"] = per_county[county].get(code, 0)
        rows.append(row)
    total: dict[str, Any] = {
        "rule_code": "all",
        "title": "",
        "findings": sum(summary.get("findings_per_rule", {}).values()),
    }
    for county in counties:
        total[county or "(none)"] = sum(per_county[county].values())
    rows.append(total)
    life = summary.get("lifecycle", {})
    roster = summary.get("visit_roster", {})
    lines = [
        f"look-back {summary['run_id']} (batch {summary['batch_id']}, as of {summary['as_of']}): "
        "findings per rule and county",
        format_table(rows, ("rule_code", "title", "findings", *(county or "(none)" for county in counties))),
        (
            f"findings open {life.get('open', 0):,}: new {life.get('opened', 0):,}, still open "
            f"{life.get('still_open', 0):,}, reopened {life.get('reopened', 0):,}; resolved by this run "
            f"{life.get('resolved', 0):,}"
        ),
        f"visit roster: {sum(roster.values()):,} households ("
        + ", ".join(f"{category} {count:,}" for category, count in roster.items())
        + f"); census extract: {summary.get('census_persons', 0):,} persons",
    ]
    return "\n".join(lines)


def _markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join("" if row.get(c) is None else str(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def format_release(
    accounting: Sequence[Mapping[str, Any]], quality: Mapping[str, Any], look_back: Mapping[str, Any] | None
) -> str:
    """The Markdown the person approving a census extract reads: the row accounting, the
    quality result with its Data Docs, the findings per rule and what approving does."""
    from lookback.reconcile.catalogue import rules_by_code

    columns = ("source", "status", "delivered", "accepted", "skipped", "quarantined")
    balanced = all(row["delivered"] == row["accepted"] + row["skipped"] + row["quarantined"] for row in accounting)
    delivered = sum(int(row["delivered"]) for row in accounting)
    lines = [
        "### Rows delivered and accounted for",
        _markdown_table(accounting, columns),
        "",
        f"**{delivered:,} rows delivered: "
        + ("every row accepted, skipped or quarantined with its reason.**" if balanced else "NOT BALANCED.**"),
        "",
        "### Quality",
        (
            f"**{quality.get('critical_failed', 0)} critical expectation(s) failed**, "
            f"{quality.get('warnings', 0)} warning(s), of "
            f"{sum(stage['expectations'] for stage in quality.get('stages', {}).values())} expectations."
        ),
    ]
    if quality.get("data_docs"):
        lines.append(f"Data Docs: `{quality['data_docs']}`")
    if look_back is None:
        lines += ["", "The batch has not been looked back: there is no census extract to release."]
        return "\n".join(lines)
    titles = {code: rule.title_zh for code, rule in rules_by_code().items()}
    per_rule: Mapping[str, int] = look_back.get("findings_per_rule", {})
    rows = [{"rule": code, "title": titles.get(code, ""), "findings": n} for code, n in per_rule.items() if n]
    life = look_back.get("lifecycle", {})
    lines += [
        "",
        f"### Findings of look-back {look_back['run_id']} (as of {look_back['as_of']})",
        _markdown_table(rows, ("rule", "title", "findings")),
        "",
        (
            f"Open {life.get('open', 0):,} (new {life.get('opened', 0):,}, reopened {life.get('reopened', 0):,}); "
            f"resolved by this run {life.get('resolved', 0):,}; "
            f"visit roster {sum(look_back.get('visit_roster', {}).values()):,} households."
        ),
        "",
        f"### Census extract: {look_back.get('census_persons', 0):,} persons",
        "**Approve** releases the extract to the statistics bureau with the run's files. "
        "**Reject** publishes the findings, the visit roster and the county workbooks, "
        "but not the extract, and the run's summary says it was withheld.",
    ]
    return "\n".join(lines)


def _metric(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"  # targets such as 0.9975 need four places


def _score_cells(score: PairScore | FindingScore) -> dict[str, str]:
    return {"precision": _metric(score.precision), "recall": _metric(score.recall), "f1": _metric(score.f1)}


def format_evaluation(evaluation: Evaluation) -> str:
    """A plain-text report: linkage pairs, the review share, and findings per rule code."""
    pair_rows = [
        {
            "pairs": label,
            "true": f"{score.true_pairs:,}",
            "predicted": f"{score.predicted_pairs:,}",
            "correct": f"{score.correct_pairs:,}",
            **_score_cells(score),
        }
        for label, score in (("all", evaluation.linkage), ("hard", evaluation.hard_linkage))
    ]
    share = "—" if evaluation.review_share is None else f"{evaluation.review_share:.1%}"
    finding_rows = [
        {
            "rule_code": score.rule_code,
            "subject": subject,
            "truth": f"{score.truth:,}",
            "found": f"{score.found:,}",
            "correct": f"{score.correct:,}",
            **_score_cells(score),
        }
        for score, subject in (
            *((score, subject_kind(score.rule_code)) for score in evaluation.findings),
            (evaluation.findings_overall, ""),
        )
    ]
    metrics = ("precision", "recall", "f1")
    return "\n".join(
        [
            "linkage (unordered pairs of linked rows; hard: at least one row with an unusable identity number)",
            format_table(pair_rows, ("pairs", "true", "predicted", "correct", *metrics)),
            "",
            f"rows linked: {evaluation.rows_linked:,}; rows in review: {evaluation.rows_in_review:,} ({share})",
            "",
            "findings (open findings matched to true subjects)",
            format_table(finding_rows, ("rule_code", "subject", "truth", "found", "correct", *metrics)),
        ]
    )
