"""Scoring a run against the truth: small hand-made truth and run folders, each count explained."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import pytest

from lookback.errors import LookbackError
from lookback.evaluate import (
    Evaluation,
    EvaluationError,
    FindingScore,
    evaluate_run,
    write_evaluation_json,
)
from lookback.generate.truth import ROW_FIELDS
from lookback.report import format_evaluation

LINK_HEADER = ("person_id", "source", "source_row", "household_key", "match_method", "match_score")
REVIEW_HEADER = ("source_1", "source_row_1", "source_2", "source_row_2", "score", "decision")
FINDING_HEADER = ("finding_id", "rule_code", "status", "person_id", "source_rows", "evidence")

Row = Sequence[object]


def _write(path: Path, header: Sequence[str], rows: Sequence[Row], encoding: str = "utf-8") -> None:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _truth_row(source: str, row: int, person: str, household: str, hard: bool = False) -> Row:
    return (source, row, person, household, "member" if person else "blank", "", "true" if hard else "false", "")


# The truth used by most tests:
#   person A (household H1): registry:1, insurance:1, dibao:1   (insurance:1 has a hard identity number)
#   person B (household H1): registry:2, insurance:2
#   person C (household H2): registry:3, housing:1 (the house of H2), dibao:2 (allowance household D9)
#   insurance:3 is a blank line about nobody
TRUTH_ROWS = (
    _truth_row("registry", 1, "A", "H1"),
    _truth_row("registry", 2, "B", "H1"),
    _truth_row("registry", 3, "C", "H2"),
    _truth_row("insurance", 1, "A", "H1", hard=True),
    _truth_row("insurance", 2, "B", "H1"),
    _truth_row("insurance", 3, "", ""),
    _truth_row("dibao", 1, "A", "D8"),
    _truth_row("dibao", 2, "C", "D9"),
    _truth_row("housing", 1, "C", "H2"),
)


def _truth(tmp_path: Path, rows: Sequence[Row] = TRUTH_ROWS, findings: Sequence[Row] = ()) -> Path:
    folder = tmp_path / "truth"
    folder.mkdir(exist_ok=True)
    _write(folder / "rows.csv", ROW_FIELDS, rows)
    _write(folder / "findings.csv", ("rule_code", "subject_kind", "subject_key", "planted"), findings)
    return folder


def _run(
    tmp_path: Path,
    links: Sequence[tuple[str, str, int]],
    review: Sequence[Row] | None = None,
    findings: Sequence[Row] | None = None,
    links_encoding: str = "utf-8",
) -> Path:
    """A run folder; ``links`` are (person_id, source, source_row)."""
    folder = tmp_path / "run"
    folder.mkdir(exist_ok=True)
    link_rows = [(person_id, source, row, "", "id_exact", "1.0") for person_id, source, row in links]
    _write(folder / "person_links.csv", LINK_HEADER, link_rows, encoding=links_encoding)
    if review is not None:
        _write(folder / "match_review.csv", REVIEW_HEADER, review)
    if findings is not None:
        _write(folder / "lookback_findings.csv", FINDING_HEADER, findings)
    return folder


# Every truth row about somebody, linked exactly as the truth says.
PERFECT_LINKS = (
    ("p-a", "registry", 1),
    ("p-a", "insurance", 1),
    ("p-a", "dibao", 1),
    ("p-b", "registry", 2),
    ("p-b", "insurance", 2),
    ("p-c", "registry", 3),
    ("p-c", "dibao", 2),
    ("p-c", "housing", 1),
)


def _finding(rule_code: str, by_code: Evaluation) -> FindingScore:
    return next(score for score in by_code.findings if score.rule_code == rule_code)


# --- linkage -------------------------------------------------------------------------------


def test_perfect_linkage_scores_one(tmp_path: Path) -> None:
    evaluation = evaluate_run(_truth(tmp_path), _run(tmp_path, PERFECT_LINKS))
    # A: 3 rows → 3 pairs, B: 2 rows → 1 pair, C: 3 rows → 3 pairs; all predicted, all correct.
    linkage = evaluation.linkage
    assert (linkage.true_pairs, linkage.predicted_pairs, linkage.correct_pairs) == (7, 7, 7)
    assert (linkage.precision, linkage.recall, linkage.f1) == (1.0, 1.0, 1.0)
    # Only insurance:1 is hard: A's pairs with it are registry:1–insurance:1 and insurance:1–dibao:1.
    hard = evaluation.hard_linkage
    assert (hard.true_pairs, hard.predicted_pairs, hard.correct_pairs) == (2, 2, 2)
    assert evaluation.rows_linked == 8


def test_wrongly_merged_pair_lowers_precision(tmp_path: Path) -> None:
    links = (("p-1", "registry", 1), ("p-1", "insurance", 1), ("p-1", "registry", 2))
    evaluation = evaluate_run(_truth(tmp_path), _run(tmp_path, links))
    # One id over three rows predicts 3 pairs; only registry:1–insurance:1 (both A) is true, and it is
    # the only true pair among these rows (B has a single linked row here).
    linkage = evaluation.linkage
    assert (linkage.true_pairs, linkage.predicted_pairs, linkage.correct_pairs) == (1, 3, 1)
    assert linkage.precision == pytest.approx(1 / 3)
    assert linkage.recall == 1.0
    assert linkage.f1 == pytest.approx(0.5)  # 2·1 / (3 + 1)


def test_missed_link_lowers_recall(tmp_path: Path) -> None:
    links = (("p-1", "registry", 3), ("p-1", "dibao", 2), ("p-2", "housing", 1))
    evaluation = evaluate_run(_truth(tmp_path), _run(tmp_path, links))
    # C's three rows hold 3 true pairs; housing:1 was left under its own id, so only 1 pair is predicted.
    linkage = evaluation.linkage
    assert (linkage.true_pairs, linkage.predicted_pairs, linkage.correct_pairs) == (3, 1, 1)
    assert linkage.precision == 1.0
    assert linkage.recall == pytest.approx(1 / 3)
    assert linkage.f1 == pytest.approx(0.5)  # 2·1 / (1 + 3)


def test_hard_pairs_are_those_with_a_hard_row(tmp_path: Path) -> None:
    # A's hard row insurance:1 is missed (own id); its easy rows and B's rows are linked right.
    links = (
        ("p-a", "registry", 1),
        ("p-a", "dibao", 1),
        ("p-x", "insurance", 1),
        ("p-b", "registry", 2),
        ("p-b", "insurance", 2),
    )
    evaluation = evaluate_run(_truth(tmp_path), _run(tmp_path, links))
    # All pairs: true A 3 + B 1 = 4; predicted p-a 1 + p-b 1 = 2, both correct.
    linkage = evaluation.linkage
    assert (linkage.true_pairs, linkage.predicted_pairs, linkage.correct_pairs) == (4, 2, 2)
    # Hard pairs: A has C(3,2) - C(2,2) = 2 pairs touching insurance:1, B none; no predicted pair touches it.
    hard = evaluation.hard_linkage
    assert (hard.true_pairs, hard.predicted_pairs, hard.correct_pairs) == (2, 0, 0)
    assert hard.precision is None  # nothing predicted
    assert hard.recall == 0.0
    assert hard.f1 == 0.0  # 2·0 / (0 + 2): defined, and zero


def test_hard_row_wrongly_merged_counts_as_a_hard_false_pair(tmp_path: Path) -> None:
    # A's hard row insurance:1 is put with B's two rows.
    links = (("p-b", "registry", 2), ("p-b", "insurance", 2), ("p-b", "insurance", 1))
    evaluation = evaluate_run(_truth(tmp_path), _run(tmp_path, links))
    # p-b: 3 rows, 2 easy → 3 - 1 = 2 predicted hard pairs, both joining A's row to B's: none correct.
    # True hard pairs: A has one linked row here, B's rows are easy → 0.
    hard = evaluation.hard_linkage
    assert (hard.true_pairs, hard.predicted_pairs, hard.correct_pairs) == (0, 2, 0)
    assert (hard.precision, hard.recall, hard.f1) == (0.0, None, 0.0)


def test_cluster_counts_agree_with_enumerated_pairs(tmp_path: Path) -> None:
    # A random truth and a random linkage, scored by enumerating every pair here and by cluster counts there.
    rng = random.Random(5)
    rows = [_truth_row("registry", n, f"P{rng.randrange(12)}", "H", hard=rng.random() < 0.3) for n in range(1, 61)]
    links = [("id" + str(rng.randrange(15)), "registry", n) for n in range(1, 61)]
    evaluation = evaluate_run(_truth(tmp_path, rows), _run(tmp_path, links))
    truth = {int(str(row[1])): (row[2], row[6] == "true") for row in rows}
    counts = {"true": [0, 0], "predicted": [0, 0], "correct": [0, 0]}
    for (id_1, _, row_1), (id_2, _, row_2) in combinations(links, 2):
        same_person, same_id = truth[row_1][0] == truth[row_2][0], id_1 == id_2
        is_hard = truth[row_1][1] or truth[row_2][1]
        for name, holds in (("true", same_person), ("predicted", same_id), ("correct", same_person and same_id)):
            counts[name][0] += holds
            counts[name][1] += holds and is_hard
    for index, score in enumerate((evaluation.linkage, evaluation.hard_linkage)):
        assert (score.true_pairs, score.predicted_pairs, score.correct_pairs) == (
            counts["true"][index],
            counts["predicted"][index],
            counts["correct"][index],
        )
    assert evaluation.linkage.correct_pairs > 0 and evaluation.hard_linkage.correct_pairs > 0  # not a vacuous case


# --- review --------------------------------------------------------------------------------


def test_review_share_counts_distinct_rows(tmp_path: Path) -> None:
    review = [
        ("registry", 1, "insurance", 1, "0.7", ""),
        ("registry", 1, "dibao", 1, "0.6", ""),  # registry:1 again: counted once
        ("insurance", 1, "registry", 1, "0.7", ""),  # the first pair reversed: nothing new
    ]
    evaluation = evaluate_run(_truth(tmp_path), _run(tmp_path, PERFECT_LINKS, review=review))
    # registry:1, insurance:1, dibao:1 over the 8 linked rows.
    assert evaluation.rows_in_review == 3
    assert evaluation.review_share == pytest.approx(3 / 8)


def test_no_review_file_means_nothing_in_review(tmp_path: Path) -> None:
    evaluation = evaluate_run(_truth(tmp_path), _run(tmp_path, PERFECT_LINKS))
    assert (evaluation.rows_in_review, evaluation.review_share) == (0, 0.0)


# --- findings ------------------------------------------------------------------------------


def test_findings_are_matched_through_the_registry_rows_they_cite(tmp_path: Path) -> None:
    truth = _truth(
        tmp_path,
        findings=[
            ("DECEASED_LISTED", "person", "A", "true"),
            ("DECEASED_LISTED", "person", "B", "true"),
            ("HOUSING_UNSAFE", "household", "H1", "true"),
            ("DIBAO_OUTSIDE_REGISTRY", "dibao_household", "D9", "true"),
        ],
    )
    findings = [
        # Cites B's insurance row first, then A's registry row: the registry row decides, so this is A.
        # Read in citation order over all rows it would be B, and the next finding (B) a false positive.
        ("f1", "DECEASED_LISTED", "open", "", "insurance:2 | registry:1", ""),
        ("f2", "DECEASED_LISTED", "open", "", "insurance:2", ""),  # no registry row: B
        # housing:1 is H2's house, registry:1 is in H1: the registry household decides → H1.
        ("f3", "HOUSING_UNSAFE", "open", "", "housing:1;registry:1", ""),
        # registry:3 is in H2, dibao:2 in allowance household D9: the dibao row decides → D9.
        ("f4", "DIBAO_OUTSIDE_REGISTRY", "open", "", "registry:3, dibao:2", ""),
    ]
    evaluation = evaluate_run(truth, _run(tmp_path, PERFECT_LINKS, findings=findings))
    deceased = _finding("DECEASED_LISTED", evaluation)
    assert (deceased.truth, deceased.found, deceased.correct) == (2, 2, 2)
    assert (_finding("HOUSING_UNSAFE", evaluation).correct, _finding("DIBAO_OUTSIDE_REGISTRY", evaluation).correct) == (
        1,
        1,
    )
    overall = evaluation.findings_overall
    assert (overall.truth, overall.found, overall.correct, overall.precision, overall.recall) == (4, 4, 4, 1.0, 1.0)


def test_a_finding_about_the_wrong_subject_is_a_false_positive(tmp_path: Path) -> None:
    truth = _truth(tmp_path, findings=[("MED_NOT_INSURED", "person", "C", "true")])
    findings = [("f1", "MED_NOT_INSURED", "open", "", "registry:2", "")]  # about B, not C
    score = _finding("MED_NOT_INSURED", evaluate_run(truth, _run(tmp_path, PERFECT_LINKS, findings=findings)))
    assert (score.truth, score.found, score.correct) == (1, 1, 0)
    assert (score.precision, score.recall, score.f1) == (0.0, 0.0, 0.0)


def test_resolved_findings_are_ignored(tmp_path: Path) -> None:
    truth = _truth(tmp_path, findings=[("DECEASED_LISTED", "person", "A", "true")])
    findings = [("f1", "DECEASED_LISTED", "resolved", "", "registry:1", "")]
    score = _finding("DECEASED_LISTED", evaluate_run(truth, _run(tmp_path, PERFECT_LINKS, findings=findings)))
    # The resolved finding is neither found nor correct: the true finding is missed.
    assert (score.truth, score.found, score.correct) == (1, 0, 0)
    assert score.precision is None
    assert score.recall == 0.0


def test_a_second_finding_for_the_same_truth_is_a_false_positive(tmp_path: Path) -> None:
    truth = _truth(tmp_path, findings=[("ID_CONFLICT", "person", "A", "true")])
    findings = [
        ("f1", "ID_CONFLICT", "open", "", "registry:1", ""),
        ("f2", "ID_CONFLICT", "open", "", "insurance:1 dibao:1", ""),  # A again: already matched by f1
    ]
    score = _finding("ID_CONFLICT", evaluate_run(truth, _run(tmp_path, PERFECT_LINKS, findings=findings)))
    assert (score.truth, score.found, score.correct) == (1, 2, 1)
    assert score.precision == 0.5
    assert score.recall == 1.0


def test_unknown_rule_codes_are_reported_as_person_rules(tmp_path: Path) -> None:
    truth = _truth(tmp_path, findings=[("NEW_RULE", "person", "B", "false")])
    findings = [
        ("f1", "NEW_RULE", "open", "", "insurance:2", ""),  # B
        ("f2", "OTHER_RULE", "open", "", "registry:1", ""),  # a code the truth never plants
    ]
    evaluation = evaluate_run(truth, _run(tmp_path, PERFECT_LINKS, findings=findings))
    assert [score.rule_code for score in evaluation.findings] == ["NEW_RULE", "OTHER_RULE"]
    assert (_finding("NEW_RULE", evaluation).correct, _finding("OTHER_RULE", evaluation).correct) == (1, 0)
    assert _finding("OTHER_RULE", evaluation).recall is None  # no true finding of that code


def test_unknown_row_reference_names_the_file_and_the_reference(tmp_path: Path) -> None:
    findings = [("f1", "DECEASED_LISTED", "open", "", "registry:1; registry:99", "")]
    with pytest.raises(EvaluationError, match=r"lookback_findings\.csv: line 2: finding f1: .*'registry:99'"):
        evaluate_run(_truth(tmp_path), _run(tmp_path, PERFECT_LINKS, findings=findings))


def test_malformed_row_reference_is_an_error(tmp_path: Path) -> None:
    findings = [("f1", "DECEASED_LISTED", "open", "", "registry#1", "")]
    with pytest.raises(EvaluationError, match=r"lookback_findings\.csv: .*'registry#1'"):
        evaluate_run(_truth(tmp_path), _run(tmp_path, PERFECT_LINKS, findings=findings))


# --- errors and edge cases -----------------------------------------------------------------


def test_linked_row_missing_from_truth_is_an_error(tmp_path: Path) -> None:
    links = (*PERFECT_LINKS, ("p-z", "insurance", 7))
    with pytest.raises(EvaluationError, match=r"person_links\.csv: line 10: insurance:7 is not a row of"):
        evaluate_run(_truth(tmp_path), _run(tmp_path, links))


def test_linked_row_about_nobody_is_an_error(tmp_path: Path) -> None:
    # insurance:3 is in the truth, but as a blank line: linking it to a person is a pipeline error.
    links = (("p-z", "insurance", 3),)
    with pytest.raises(EvaluationError, match=r"person_links\.csv: line 2: insurance:3 names nobody"):
        evaluate_run(_truth(tmp_path), _run(tmp_path, links))


def test_errors_reach_people_as_lookback_errors(tmp_path: Path) -> None:
    with pytest.raises(LookbackError, match=r"person_links\.csv: file not found"):
        evaluate_run(_truth(tmp_path), tmp_path)


def test_person_links_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    run = _run(tmp_path, PERFECT_LINKS, links_encoding="utf-8-sig")
    assert (run / "person_links.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # the BOM is really there
    evaluation = evaluate_run(_truth(tmp_path), run)
    assert evaluation.rows_linked == 8
    assert evaluation.linkage.correct_pairs == 7


def test_zero_denominators_give_none(tmp_path: Path) -> None:
    # Nothing linked, nothing in truth findings, no findings file: every ratio is undefined.
    evaluation = evaluate_run(_truth(tmp_path), _run(tmp_path, ()))
    for score in (evaluation.linkage, evaluation.hard_linkage):
        assert (score.true_pairs, score.predicted_pairs, score.correct_pairs) == (0, 0, 0)
        assert (score.precision, score.recall, score.f1) == (None, None, None)
    assert evaluation.rows_linked == 0
    assert evaluation.review_share is None
    assert evaluation.findings == ()
    overall = evaluation.findings_overall
    assert (overall.precision, overall.recall, overall.f1) == (None, None, None)


# --- outputs -------------------------------------------------------------------------------


def test_json_and_text_report(tmp_path: Path) -> None:
    truth = _truth(tmp_path, findings=[("DECEASED_LISTED", "person", "A", "true")])
    evaluation = evaluate_run(truth, _run(tmp_path, PERFECT_LINKS[:1]))  # one row: no pairs at all
    path = tmp_path / "evaluation.json"
    write_evaluation_json(evaluation, path)
    text = path.read_text(encoding="utf-8")
    loaded = json.loads(text)
    assert loaded == json.loads(json.dumps(evaluation.as_dict()))
    assert loaded["linkage"]["precision"] is None  # null in JSON
    assert loaded["findings"][0]["rule_code"] == "DECEASED_LISTED"
    assert list(loaded) == sorted(loaded) and list(loaded["linkage"]) == sorted(loaded["linkage"])

    report = format_evaluation(evaluation)
    finding_line = next(line for line in report.splitlines() if line.startswith("DECEASED_LISTED"))
    assert finding_line.split() == ["DECEASED_LISTED", "person", "1", "0", "0", "—", "0.0000", "0.0000"]
    assert "rows linked: 1; rows in review: 0 (0.0%)" in report
