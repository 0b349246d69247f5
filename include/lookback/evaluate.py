"""Score one pipeline run against the synthetic ground truth written by the generator.

Three questions, each answered with counts and precision/recall/F1:

- **linkage**: over the rows the run linked (``person_links.csv``), are the rows of one true
  person given one ``person_id``, and only theirs? Scored on unordered pairs of rows, once
  over all pairs and once over the *hard* pairs (at least one row whose identity number is
  missing, invalid, someone else's or shared), where linkage cannot lean on the number;
- **review**: what share of the linked rows the run left for people to decide
  (``match_review.csv``);
- **findings**: per rule code, are the open findings (``lookback_findings.csv``) about the
  true subjects (truth ``findings.csv``)? A finding is tied to its subject through the
  ``source:row`` references it cites.

Pairs are counted from cluster sizes, never enumerated: a cluster of n rows holds
n·(n-1)/2 pairs, and the correctly linked pairs are those inside one cell of the
(``person_id``, true person) contingency table. Truth rows are held as arrays indexed by
``source_row``, so a million-row batch fits in a few tens of megabytes.

Where a denominator is 0 the metric is ``None`` (JSON ``null``, printed as ``—``). F1 is
2·correct / (predicted + true), the harmonic mean of precision and recall wherever both
exist, and 0 rather than undefined when nothing correct was found.
"""

from __future__ import annotations

import csv
import json
import re
from array import array
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from lookback.errors import LookbackError
from lookback.rules import DIBAO_HOUSEHOLD, HOUSEHOLD, PERSON, RULE_SUBJECT_KINDS

TRUTH_ROWS_FILE: Final = "rows.csv"
TRUTH_FINDINGS_FILE: Final = "findings.csv"
PERSON_LINKS_FILE: Final = "person_links.csv"
MATCH_REVIEW_FILE: Final = "match_review.csv"
FINDINGS_FILE: Final = "lookback_findings.csv"

# A finding's subject is read from the rows of this source when it cites any: a person or
# household finding is about the registry's person or household, an allowance-household
# finding about the roster's household.
_PREFERRED_SOURCE: Final[Mapping[str, str]] = {PERSON: "registry", HOUSEHOLD: "registry", DIBAO_HOUSEHOLD: "dibao"}
OVERALL: Final = "all"

_TRUTH_ROW_COLUMNS: Final = ("source", "source_row", "person_key", "household_key", "identity_hard")
_TRUTH_FINDING_COLUMNS: Final = ("rule_code", "subject_kind", "subject_key")
_LINK_COLUMNS: Final = ("person_id", "source", "source_row")
_REVIEW_COLUMNS: Final = ("source_1", "source_row_1", "source_2", "source_row_2")
_FINDING_COLUMNS: Final = ("finding_id", "rule_code", "status", "source_rows")

_ABSENT: Final = -2  # no truth row carries this number
_NOBODY: Final = -1  # a truth row about nobody (blank line, total line, no identifiable person)
# Row numbers index arrays; a number this large is a broken file, not a real export.
_MAX_SOURCE_ROW: Final = 50_000_000
_REFERENCE_SEPARATORS: Final = re.compile(r"[;,|\s]+")
_BOOLEANS: Final[Mapping[str, bool]] = {"true": True, "false": False}


class EvaluationError(LookbackError):
    """A truth or run file cannot be scored: the message names the file and the row at fault."""


@dataclass(frozen=True)
class PairScore:
    """Pairwise linkage: unordered pairs of linked rows, true (same person), predicted (same person_id), both."""

    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    precision: float | None
    recall: float | None
    f1: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "true_pairs": self.true_pairs,
            "predicted_pairs": self.predicted_pairs,
            "correct_pairs": self.correct_pairs,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


@dataclass(frozen=True)
class FindingScore:
    """Findings of one rule code (or of all, ``rule_code == "all"``): true subjects, open findings, correct ones."""

    rule_code: str
    truth: int
    found: int
    correct: int
    precision: float | None
    recall: float | None
    f1: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_code": self.rule_code,
            "truth": self.truth,
            "found": self.found,
            "correct": self.correct,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


@dataclass(frozen=True)
class Evaluation:
    """One run scored against the truth."""

    linkage: PairScore
    hard_linkage: PairScore  # only pairs with at least one identity-hard row
    rows_linked: int  # rows of person_links.csv
    rows_in_review: int  # distinct rows on either side of match_review.csv
    review_share: float | None  # rows_in_review / rows_linked
    findings: tuple[FindingScore, ...]  # per rule code, in RULE_SUBJECT_KINDS order, then unknown codes sorted
    findings_overall: FindingScore  # micro-averaged over every rule code

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``None`` becomes ``null``)."""
        return {
            "linkage": self.linkage.as_dict(),
            "hard_linkage": self.hard_linkage.as_dict(),
            "rows_linked": self.rows_linked,
            "rows_in_review": self.rows_in_review,
            "review_share": self.review_share,
            "findings": [score.as_dict() for score in self.findings],
            "findings_overall": self.findings_overall.as_dict(),
        }


# --- reading -------------------------------------------------------------------------------


def _records(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, tuple[str, ...]]]:
    """Yield (line number, stripped values of ``columns``) for every non-empty line below the header.

    ``columns`` names at least two columns, so that the picked values always form a tuple. Read
    as ``utf-8-sig`` so that a byte-order mark (which run files carry for Excel) does not become
    part of the first column's name.
    """
    if not path.is_file():
        raise EvaluationError(f"{path}: file not found")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            missing = [column for column in columns if column not in header]
            if missing:
                raise EvaluationError(
                    f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(header) or 'no header'})"
                )
            pick = itemgetter(*(header.index(column) for column in columns))
            strip = str.strip
            for line in reader:
                if not line:
                    continue
                try:
                    values = pick(line)
                except IndexError:
                    raise EvaluationError(
                        f"{path}: line {reader.line_num}: {len(line)} fields, expected {len(header)}"
                    ) from None
                yield reader.line_num, tuple(map(strip, values))
    except UnicodeDecodeError as error:
        raise EvaluationError(f"{path}: not UTF-8 ({error.reason} at byte {error.start})") from None
    except csv.Error as error:
        raise EvaluationError(f"{path}: not a readable CSV file ({error})") from None


def _source_row(text: str, path: Path, line: int, column: str = "source_row") -> int:
    row = int(text) if text.isdecimal() else 0
    if not 0 < row <= _MAX_SOURCE_ROW:
        raise EvaluationError(f"{path}: line {line}: {column} {text!r} is not a row number (1 to {_MAX_SOURCE_ROW:,})")
    return row


@dataclass(frozen=True)
class _TruthRow:
    person_key: str  # "" for a row about nobody
    household_key: str


@dataclass(frozen=True)
class _SourceRows:
    """The truth rows of one source, indexed by source_row: codes into _TruthRows' key tuples."""

    person: array[int]  # person code, _NOBODY or _ABSENT
    household: array[int]  # household code or -1 when the row names none
    hard: bytearray

    def add(self, row: int, person: int, household: int, hard: bool) -> bool:
        """Record one row; False when the row number was already taken."""
        size = len(self.person)
        if row >= size:
            # Grow by doubling: rows mostly arrive in order, one beyond the end at a time.
            grow = max(row + 1 - size, size, 1024)
            self.person.extend(array("i", [_ABSENT]) * grow)
            self.household.extend(array("i", [-1]) * grow)
            self.hard.extend(bytes(grow))
        if self.person[row] != _ABSENT:
            return False
        self.person[row], self.household[row], self.hard[row] = person, household, hard
        return True

    def person_code(self, row: int) -> int:
        return self.person[row] if row < len(self.person) else _ABSENT


@dataclass(frozen=True)
class _TruthRows:
    path: Path
    sources: Mapping[str, _SourceRows]
    person_keys: tuple[str, ...]
    household_keys: tuple[str, ...]

    def get(self, source: str, row: int) -> _TruthRow | None:
        table = self.sources.get(source)
        if table is None or table.person_code(row) == _ABSENT:
            return None
        person, household = table.person[row], table.household[row]
        return _TruthRow(
            person_key=self.person_keys[person] if person >= 0 else "",
            household_key=self.household_keys[household] if household >= 0 else "",
        )


def _read_truth_rows(path: Path) -> _TruthRows:
    person_codes: dict[str, int] = {}
    household_codes: dict[str, int] = {}
    sources: dict[str, _SourceRows] = {}
    for line, (source, row_text, person_key, household_key, hard_text) in _records(path, _TRUTH_ROW_COLUMNS):
        if not source:
            raise EvaluationError(f"{path}: line {line}: source is empty")
        row = _source_row(row_text, path, line)
        hard = _BOOLEANS.get(hard_text.lower())
        # A row about nobody never reaches person_links, so its flag may be left blank.
        if hard is None and not (hard_text == "" and person_key == ""):
            raise EvaluationError(f"{path}: line {line}: identity_hard {hard_text!r} is not true or false")
        table = sources.get(source)
        if table is None:
            table = sources[source] = _SourceRows(array("i"), array("i"), bytearray())
        person = person_codes.setdefault(person_key, len(person_codes)) if person_key else _NOBODY
        household = household_codes.setdefault(household_key, len(household_codes)) if household_key else -1
        if not table.add(row, person, household, bool(hard)):
            raise EvaluationError(f"{path}: line {line}: {source}:{row} appears more than once")
    return _TruthRows(path, sources, tuple(person_codes), tuple(household_codes))


# --- linkage -------------------------------------------------------------------------------


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _f1(correct: int, predicted: int, true: int) -> float | None:
    return _ratio(2 * correct, predicted + true)


def _pair_score(true_pairs: int, predicted_pairs: int, correct_pairs: int) -> PairScore:
    return PairScore(
        true_pairs=true_pairs,
        predicted_pairs=predicted_pairs,
        correct_pairs=correct_pairs,
        precision=_ratio(correct_pairs, predicted_pairs),
        recall=_ratio(correct_pairs, true_pairs),
        f1=_f1(correct_pairs, predicted_pairs, true_pairs),
    )


def _pairs_within(keys: npt.NDArray[np.int64]) -> int:
    """Unordered pairs of rows sharing a key: n·(n-1)/2 summed over the clusters of equal keys."""
    _, sizes = np.unique(keys, return_counts=True)
    return int((sizes * (sizes - 1) // 2).sum())


def _cluster_pairs(keys: npt.NDArray[np.int64], easy: npt.NDArray[np.bool_]) -> tuple[int, int]:
    """(all pairs, hard pairs) within clusters of equal keys; ``easy`` marks the rows that are not identity-hard.

    A cluster of n rows, e of them easy, holds n·(n-1)/2 pairs of which e·(e-1)/2 have no hard row.
    """
    total = _pairs_within(keys)
    return total, total - _pairs_within(keys[easy])


def _score_linkage(path: Path, truth: _TruthRows) -> tuple[PairScore, PairScore, int]:
    """(all pairs, hard pairs, rows linked) of person_links.csv."""
    person_ids: dict[str, int] = {}
    # One entry per linked row, as codes: its person_id, its true person, and whether it is easy
    # (not identity-hard). Clusters are counted afterwards with numpy: a Counter takes seconds on a million rows.
    ids, persons, easy = array("i"), array("i"), bytearray()
    seen = {source: bytearray(len(table.person)) for source, table in truth.sources.items()}
    for line, (person_id, source, row_text) in _records(path, _LINK_COLUMNS):
        row = _source_row(row_text, path, line)
        table = truth.sources.get(source)
        person = _ABSENT if table is None or row >= len(table.person) else table.person[row]
        if table is None or person == _ABSENT:
            raise EvaluationError(f"{path}: line {line}: {source}:{row} is not a row of {truth.path}")
        if person == _NOBODY:
            raise EvaluationError(f"{path}: line {line}: {source}:{row} names nobody in {truth.path}, yet is linked")
        if not person_id:
            raise EvaluationError(f"{path}: line {line}: {source}:{row} has no person_id")
        if seen[source][row]:
            raise EvaluationError(f"{path}: line {line}: {source}:{row} is linked more than once")
        seen[source][row] = 1
        ids.append(person_ids.setdefault(person_id, len(person_ids)))
        persons.append(person)
        easy.append(not table.hard[row])

    # Clusters: by true person (true pairs), by person_id (predicted), by both: the contingency cells (correct).
    id_codes = np.frombuffer(ids, dtype=np.intc).astype(np.int64)
    person_codes = np.frombuffer(persons, dtype=np.intc).astype(np.int64)
    easy_rows = np.frombuffer(easy, dtype=np.bool_)
    true_all, true_hard = _cluster_pairs(person_codes, easy_rows)
    predicted_all, predicted_hard = _cluster_pairs(id_codes, easy_rows)
    correct_all, correct_hard = _cluster_pairs((id_codes << 32) | person_codes, easy_rows)
    return (
        _pair_score(true_all, predicted_all, correct_all),
        _pair_score(true_hard, predicted_hard, correct_hard),
        len(ids),
    )


def _count_review_rows(path: Path) -> int:
    """Distinct rows on either side of match_review.csv; 0 when the run left none to review."""
    if not path.exists():
        return 0
    rows: set[tuple[str, int]] = set()
    for line, (source_1, row_1, source_2, row_2) in _records(path, _REVIEW_COLUMNS):
        for source, row_text, column in ((source_1, row_1, "source_row_1"), (source_2, row_2, "source_row_2")):
            if not source and not row_text:
                continue  # an empty side names no row
            if not source:
                raise EvaluationError(f"{path}: line {line}: {column} is given without its source")
            rows.add((source, _source_row(row_text, path, line, column)))
    return len(rows)


# --- findings ------------------------------------------------------------------------------


def subject_kind(rule_code: str) -> str:
    """What a finding of this rule is about: person, household or dibao_household (person when unknown)."""
    return RULE_SUBJECT_KINDS.get(rule_code, PERSON)


def _read_truth_findings(path: Path) -> dict[str, set[str]]:
    """True subjects per rule code."""
    truth: dict[str, set[str]] = {}
    for line, (rule_code, kind, subject_key) in _records(path, _TRUTH_FINDING_COLUMNS):
        if not rule_code or not subject_key:
            raise EvaluationError(f"{path}: line {line}: rule_code and subject_key must not be empty")
        if rule_code in RULE_SUBJECT_KINDS and kind != RULE_SUBJECT_KINDS[rule_code]:
            raise EvaluationError(
                f"{path}: line {line}: subject_kind {kind!r} for {rule_code}, expected {RULE_SUBJECT_KINDS[rule_code]}"
            )
        truth.setdefault(rule_code, set()).add(subject_key)
    return truth


def _cited_rows(text: str, truth: _TruthRows, path: Path, line: int, finding_id: str) -> list[tuple[str, _TruthRow]]:
    cited = []
    for reference in _REFERENCE_SEPARATORS.split(text):
        if not reference:
            continue
        source, _, row_text = reference.rpartition(":")
        row = int(row_text) if row_text.isascii() and row_text.isdigit() else None
        found = truth.get(source, row) if source and row is not None else None
        if found is None:
            raise EvaluationError(
                f"{path}: line {line}: finding {finding_id or '(no id)'}: source row reference {reference!r} "
                f"is not a row of {truth.path}"
            )
        cited.append((source, found))
    return cited


def _candidates(kind: str, cited: Sequence[tuple[str, _TruthRow]]) -> list[str]:
    """Subject keys a finding may be about, in citation order: from the preferred source's rows if it cites any."""
    preferred = _PREFERRED_SOURCE.get(kind, "registry")
    rows = [row for source, row in cited if source == preferred] or [row for _, row in cited]
    keys = (row.person_key if kind == PERSON else row.household_key for row in rows)
    return list(dict.fromkeys(key for key in keys if key))


def _finding_score(rule_code: str, truth: int, found: int, correct: int) -> FindingScore:
    return FindingScore(
        rule_code=rule_code,
        truth=truth,
        found=found,
        correct=correct,
        precision=_ratio(correct, found),
        recall=_ratio(correct, truth),
        f1=_f1(correct, found, truth),
    )


def _score_findings(
    path: Path, truth_rows: _TruthRows, truth: Mapping[str, set[str]]
) -> tuple[tuple[FindingScore, ...], FindingScore]:
    unmatched = {rule_code: set(subjects) for rule_code, subjects in truth.items()}
    found: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    if path.exists():
        for line, (finding_id, rule_code, status, source_rows) in _records(path, _FINDING_COLUMNS):
            if status.lower() != "open":
                continue
            if not rule_code:
                raise EvaluationError(f"{path}: line {line}: finding {finding_id or '(no id)'} has no rule_code")
            found[rule_code] += 1
            cited = _cited_rows(source_rows, truth_rows, path, line, finding_id)
            remaining = unmatched.get(rule_code, set())
            # Greedy in file order: a true finding already claimed makes a repeat a false positive.
            for key in _candidates(subject_kind(rule_code), cited):
                if key in remaining:
                    remaining.discard(key)
                    correct[rule_code] += 1
                    break
    codes = set(truth) | set(found)
    ordered = [code for code in RULE_SUBJECT_KINDS if code in codes] + sorted(codes - set(RULE_SUBJECT_KINDS))
    scores = tuple(_finding_score(code, len(truth.get(code, ())), found[code], correct[code]) for code in ordered)
    overall = _finding_score(
        OVERALL,
        sum(score.truth for score in scores),
        sum(score.found for score in scores),
        sum(score.correct for score in scores),
    )
    return scores, overall


# --- public --------------------------------------------------------------------------------


def evaluate_run(truth_dir: Path, run_dir: Path) -> Evaluation:
    """Score the run in ``run_dir`` against the truth in ``truth_dir`` (``rows.csv``, ``findings.csv``).

    ``run_dir`` must hold ``person_links.csv``; ``match_review.csv`` and
    ``lookback_findings.csv`` are optional (absent: nothing in review, no findings).
    Raises :class:`EvaluationError` naming the file and row when a run file cites a row the
    truth does not have, or a file is missing or malformed.
    """
    truth_rows = _read_truth_rows(truth_dir / TRUTH_ROWS_FILE)
    linkage, hard_linkage, rows_linked = _score_linkage(run_dir / PERSON_LINKS_FILE, truth_rows)
    rows_in_review = _count_review_rows(run_dir / MATCH_REVIEW_FILE)
    truth_findings = _read_truth_findings(truth_dir / TRUTH_FINDINGS_FILE)
    findings, overall = _score_findings(run_dir / FINDINGS_FILE, truth_rows, truth_findings)
    return Evaluation(
        linkage=linkage,
        hard_linkage=hard_linkage,
        rows_linked=rows_linked,
        rows_in_review=rows_in_review,
        review_share=_ratio(rows_in_review, rows_linked),
        findings=findings,
        findings_overall=overall,
    )


def write_evaluation_json(evaluation: Evaluation, path: Path) -> None:
    """Write the evaluation as pretty JSON with sorted keys, UTF-8."""
    text = json.dumps(evaluation.as_dict(), indent=2, sort_keys=True, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
