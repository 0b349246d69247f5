"""Record linkage: every accepted row of every source assigned to a person.

Two passes, as census offices link:

1. **Deterministic**: rows whose valid, normalised identity numbers agree and whose names are
   compatible (equal, same pinyin, a placeholder that fits, one character apart in a name
   of three or more) form a person (``id_exact``). A row whose name does not fit the others
   carrying its number holds someone else's number (a child entered with a parent's): its
   number is set aside and the row goes to the second pass.
2. **Probabilistic** (Fellegi–Sunter): the remaining rows are compared with candidates
   found by the blocking rules; each comparison falls into a level, each level carries a
   match weight log2(m/u), with m estimated from the deterministic links (or fixed in the
   settings where those cannot teach it) and u from random pairs, and exact names weighted
   by how common the name is. A row joins the person of its best candidate when the weight
   reaches ``accept`` and beats the best other person by ``margin``; between ``review``
   and there, the pair goes to people (``match_review``).

Everything is vectorised over pandas frames or done once per distinct value; nothing loops
over pairs in Python except the string comparisons, which rapidfuzz does in C.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from lookback.counties import Counties, county_tasks
from lookback.link.alone import among_other_numbers, doubt_alone_numbers, uncorroborated, without_place
from lookback.link.blocking import candidate_pairs
from lookback.link.comparisons import AGREEING_NUMBERS, compare_pairs, counted_once
from lookback.link.config import LinkageSettings
from lookback.link.decide import Candidates, Decisions, Evidence, decide, number_owners, summed_weights, twins_of
from lookback.link.levels import Comparison, Level
from lookback.link.pairs import PairTable
from lookback.link.persons import first_pass_roots
from lookback.link.records import duplicate_of
from lookback.link.view import second_pass_view
from lookback.link.weights import (
    estimate_weights,
    person_facts,
    seldom_twice,
    supported_pairs,
    term_frequency_adjustment,
)
from lookback.processes import die_with_parent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkResult:
    """Per record: its cluster, how it was linked, and the weight of the deciding pair."""

    records: pd.DataFrame  # the records given, with cluster, match_method, match_score
    review: pd.DataFrame  # pairs for people: i, j, weight, explanation
    weights: Mapping[str, Mapping[str, float]]  # field → level label → weight
    pairs_by_rule: Mapping[str, int]


@dataclass(frozen=True)
class LinkPlan:
    """What the whole batch shares, computed once before the work is split by county: the
    deterministic pass (identity numbers link across counties), the match weights and name
    frequencies, the candidate pairs of every blocking rule (a person who moved is a
    candidate in both counties) and each row's county (``""``: none stated)."""

    records: pd.DataFrame
    work: pd.DataFrame  # the records as the second pass compares them
    cluster: np.ndarray  # the first pass's persons; -1: a row of the second pass
    foreign: np.ndarray  # rows whose valid number is someone else's
    alone: np.ndarray  # rows whose number no other row carries
    level_weights: list[np.ndarray]
    left: np.ndarray  # candidate pairs: a row of the second pass on the left
    right: np.ndarray
    by_rule: Mapping[str, int]
    evidence: Evidence
    county: np.ndarray
    table: PairTable

    @property
    def counties(self) -> list[str]:
        """The counties rows state (``""`` for rows stating none), each once, in order."""
        return sorted(set(self.county.tolist()))


def plan_links(records: pd.DataFrame, settings: LinkageSettings) -> LinkPlan:
    """The first pass and everything the second pass shares across counties."""
    work, cluster, foreign = second_pass_view(records)
    repeats = duplicate_of(records)  # read twice below
    alone = uncorroborated(records, cluster, repeats)
    cluster = np.where(alone, -1, cluster)
    unresolved = cluster < 0
    log.info(
        "deterministic pass: %s of %s rows linked on identity number (%s carry someone else's number)",
        f"{(~unresolved).sum():,}",
        f"{len(records):,}",
        f"{foreign.sum():,}",
    )
    table = PairTable(work)
    level_weights = estimate_weights(work, cluster, settings, table)
    left, right, by_rule = candidate_pairs(work, unresolved, settings, cluster)
    same_cluster = (cluster[left] == cluster[right]) & (cluster[left] >= 0)
    left, right = left[~same_cluster], right[~same_cluster]
    # Put the row of the second pass on the left.
    swap = ~unresolved[left]
    left, right = np.where(swap, right, left), np.where(swap, left, right)
    # Positions of rows in four bytes where they fit: at a million persons the pairs are some
    # 45 million, held while they are scored.
    if len(records) < np.iinfo(np.int32).max:
        left, right = left.astype(np.int32), right.astype(np.int32)
    numbered = records["id"].notna().to_numpy() & ~foreign
    evidence = Evidence(
        owner=number_owners(records, cluster, foreign),
        # Where no row holds a valid number (another data set: FEBRL), a placed row
        # brings in only what its number vouches for, as ever.
        numbered=numbered if numbered.any() else None,
        seldom=seldom_twice(work, cluster, settings.seldom_twice),
        facts=person_facts(work, alone, settings, level_weights),
        twin_of=twins_of(records, unresolved, repeats),
    )
    county = records["county"].to_numpy(dtype=object) if "county" in records else np.full(len(records), None)
    county = np.array([value if isinstance(value, str) else "" for value in county], dtype=object)
    return LinkPlan(
        records, work, cluster, foreign, alone, level_weights, left, right, by_rule, evidence, county, table
    )


@dataclass(frozen=True)
class Scored:
    """Candidate pairs compared and weighed, of which only those strong enough to matter to a
    decision are kept (see :func:`kept_pairs`): ``pair`` their positions in the plan's pairs;
    ``compared`` how many pairs were compared in all."""

    pair: np.ndarray
    candidates: Candidates
    compared: int


# Candidate pairs compared and weighed at a time: at a million persons the batch has some 45
# million, whose levels, weights and flags at once held gigabytes while about 3 % are kept.
SCORE_CHUNK = 1_000_000


def decisive_weight(settings: LinkageSettings) -> float:
    """The weight below which a pair can neither be accepted, nor keep another from being
    accepted, nor be put to people, nor join two rows into one unit of decisions."""
    return min(settings.review, settings.accept - settings.margin, settings.accept)


def link_workers() -> int:
    """Processes that score the candidate pairs: ``LOOKBACK_LINK_WORKERS``, else one per core
    (1: scored in this process)."""
    stated = os.environ.get("LOOKBACK_LINK_WORKERS", "").strip()
    if stated:
        if not stated.isdigit() or int(stated) < 1:
            raise ValueError(f"LOOKBACK_LINK_WORKERS must be a whole number of at least 1, not {stated!r}")
        return int(stated)
    return os.cpu_count() or 1


@dataclass(frozen=True)
class _Scoring:
    """What every chunk of one scoring reads: the plan, the settings, per row whether its
    pairs are scored here (None: all) and whether it carries a valid number of its own, and
    the decisive weight."""

    plan: LinkPlan
    settings: LinkageSettings
    mine: np.ndarray | None
    numbered: np.ndarray
    floor: float

    def chunk(self, start: int) -> tuple[np.ndarray, Candidates, int]:
        """The decisive pairs of the chunk from ``start`` (their positions, the pairs) and how
        many pairs it compared."""
        plan = self.plan
        left, right = plan.left[start : start + SCORE_CHUNK], plan.right[start : start + SCORE_CHUNK]
        pair = np.arange(start, start + len(left))
        if self.mine is not None:
            own = self.mine[left]
            pair, left, right = pair[own], left[own], right[own]
        scored = _score_chunk(plan, self.settings, left.astype(np.int64), right.astype(np.int64), self.numbered)
        decisive = ~(scored.weight < self.floor)
        return pair[decisive], scored.take(decisive), len(pair)


# The scoring the worker processes forked for it read (shared with them copy-on-write), and
# the index of the next chunk to score, which this process and its workers take in turn.
_forked: _Scoring | None = None
_next_chunk: Any = None


def _score_shared(starts: Sequence[int]) -> list[tuple[int, tuple[np.ndarray, Candidates, int]]]:
    """Chunks of ``starts`` scored until none is left, each taken by whichever process is
    free (this one or a worker): their indices and what they gave."""
    assert _forked is not None and _next_chunk is not None
    done: list[tuple[int, tuple[np.ndarray, Candidates, int]]] = []
    while True:
        with _next_chunk.get_lock():
            index = _next_chunk.value
            _next_chunk.value += 1
        if index >= len(starts):
            return done
        done.append((index, _forked.chunk(starts[index])))


def score_pairs(
    plan: LinkPlan, settings: LinkageSettings, counties: Counties | None = None, workers: int | None = None
) -> Scored:
    """Compare and weigh the candidate pairs whose row of the second pass lies in
    ``counties`` (None: every pair): a county's own rows, scored by the county's task.
    The pairs are scored SCORE_CHUNK at a time and only the decisive ones kept (a pair whose
    weight is not a number is kept too: it was never below the bar), so that memory is
    bounded by a chunk and the few pairs kept, whatever the batch's size. With ``workers``
    (default :func:`link_workers`) above one, the chunks after the first are scored in that
    many processes forked from this one, which share the plan (the first, scored here, fills
    the caches of the plan's table they read); the result is the same."""
    scoring = _Scoring(
        plan,
        settings,
        None if counties is None else counties.holds(plan.county),
        plan.records["id"].notna().to_numpy() & ~plan.foreign,
        decisive_weight(settings),
    )
    starts = list(range(0, len(plan.left), SCORE_CHUNK))
    if not starts:
        nothing = np.empty(0, dtype=np.int64)
        levels = np.empty((0, len(settings.comparisons)), dtype=np.int8)
        none = np.empty(0, dtype=bool)
        return Scored(nothing, Candidates(nothing, nothing, np.empty(0), levels, vouched=none, supported=none), 0)
    parts = [scoring.chunk(starts[0])]
    parts += _scored_apart(scoring, starts[1:], link_workers() if workers is None else workers)
    return Scored(
        np.concatenate([pair for pair, _, _ in parts]),
        _joined([found for _, found, _ in parts]),
        sum(compared for _, _, compared in parts),
    )


def _scored_apart(scoring: _Scoring, starts: Sequence[int], workers: int) -> list[tuple[np.ndarray, Candidates, int]]:
    """The chunks from ``starts`` scored, in order: by this process and ``workers`` - 1
    forked ones when ``workers`` is above one and this process may fork, else here.

    This process scores too rather than wait: a worker's private memory is the pages of the
    plan it touches (about a gigabyte at a million persons), so one worker fewer is that
    much less held at the link's peak, for the same use of the cores."""
    workers = min(workers, len(starts))
    # A daemonic process (a task runner's worker) may have no children.
    forks = "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon
    if workers <= 1 or not forks:
        return [scoring.chunk(start) for start in starts]
    global _forked, _next_chunk
    context = multiprocessing.get_context("fork")
    _forked, _next_chunk = scoring, context.Value("q", 0)
    # The objects alive now are left out of the collector's passes in the workers: a pass
    # writes to every object it visits, which would copy the plan's pages into each worker.
    gc.collect()
    gc.freeze()
    try:
        with context.Pool(workers - 1, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            theirs = [pool.apply_async(_score_shared, (starts,)) for _ in range(workers - 1)]
            done = _score_shared(starts)
            for result in theirs:
                done.extend(result.get())
    finally:
        gc.unfreeze()
        _forked = _next_chunk = None
    return [found for _, found in sorted(done, key=lambda item: item[0])]


def _score_chunk(
    plan: LinkPlan, settings: LinkageSettings, left: np.ndarray, right: np.ndarray, numbered: np.ndarray
) -> Candidates:
    """Compare and weigh these pairs (``numbered``: rows carrying a valid number of their own)."""
    records, work, comparisons = plan.records, plan.work, settings.comparisons
    levels = compare_pairs(work, left, right, comparisons, plan.table)
    counted_once(levels, comparisons)
    alone = plan.alone
    claims = (alone[left] & numbered[right]) | (alone[right] & numbered[left])
    doubt_alone_numbers(levels, claims, comparisons)
    weight = summed_weights(levels, plan.level_weights)
    weight += term_frequency_adjustment(work, left, levels, comparisons, plan.table)
    # Pairs whose identity numbers agree or nearly agree (a check character, a transposed
    # pair, one digit): evidence strong enough for a row already placed to bring in a person.
    # Agreeing on the first 15 digits is not: two people born the same day in one county do.
    vouched = np.zeros(len(left), dtype=bool)
    for position, comparison in enumerate(comparisons):
        if comparison.field == "identity":
            vouched |= np.isin(levels[:, position], comparison.indices(AGREEING_NUMBERS))
    supported = supported_pairs(records, left, right, levels, plan.level_weights, settings)
    supported &= ~without_place(claims, levels, comparisons)
    return Candidates(left, right, weight, levels, vouched=vouched, supported=supported)


def _joined(parts: Sequence[Candidates]) -> Candidates:
    """Pairs scored apart as one, in the order given."""
    if len(parts) == 1:
        return parts[0]

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(part, name) for part in parts])

    return Candidates(
        joined("left"),
        joined("right"),
        joined("weight"),
        joined("levels"),
        vouched=joined("vouched"),
        supported=joined("supported"),
    )


def gather_scores(parts: Sequence[Scored]) -> Candidates:
    """The pairs scored by county tasks as one, in the plan's order of pairs."""
    if len(parts) == 1:
        return parts[0].candidates  # one task scores its pairs in order
    pair = np.concatenate([part.pair for part in parts])
    order = np.argsort(pair, kind="stable")
    if (np.diff(pair[order]) == 0).any():
        raise ValueError("a candidate pair was scored by two county tasks")
    return _joined([part.candidates for part in parts]).take(order)


@dataclass(frozen=True)
class Units:
    """Per row, the unit of rows whose decisions depend on one another (``unit``), and per
    unit the county that decides it (``county``): the county most of its rows state."""

    unit: np.ndarray
    county: np.ndarray

    def rows_of(self, counties: Counties | None) -> np.ndarray:
        """Rows of the units the counties decide (all rows for None)."""
        if counties is None:
            return np.ones(len(self.unit), dtype=bool)
        decided: np.ndarray = counties.holds(self.county)[self.unit]
        return decided


def decision_units(plan: LinkPlan, candidates: Candidates, settings: LinkageSettings) -> Units:
    """The rows whose decisions depend on one another: one person of the first pass, a row
    and the row it repeats, a row and the owner of the number it carries, one household
    (whether it holds an appraisal weighs its candidates), and the two rows of every pair
    strong enough to matter to a decision are one unit."""
    n = len(plan.records)
    rows = np.arange(n)
    strong = candidates.weight >= min(settings.review, settings.accept - settings.margin)
    owner = plan.evidence.owner if plan.evidence.owner is not None else np.full(n, -1)
    twin_of = plan.evidence.twin_of if plan.evidence.twin_of is not None else rows
    household = pd.factorize(plan.work["household"], use_na_sentinel=True)[0]
    housed = household >= 0
    first_of_household = np.full(n, -1, dtype=np.int64)
    first_of_household[housed] = pd.Series(rows[housed]).groupby(household[housed]).transform("min").to_numpy()
    owned = owner >= 0
    heads = np.concatenate(
        [first_pass_roots(plan.cluster), twin_of, owner[owned], first_of_household[housed], candidates.left[strong]]
    )
    tails = np.concatenate([rows, rows, rows[owned], rows[housed], candidates.right[strong]])
    graph = coo_matrix((np.ones(len(heads), dtype=np.int8), (heads, tails)), shape=(n, n))
    count, unit = connected_components(graph, directed=False)
    unit = unit.astype(np.int64)
    stated = plan.county != ""
    votes = pd.DataFrame({"unit": unit[stated], "county": plan.county[stated]})
    ranked = votes.groupby(["unit", "county"]).size().rename("rows").reset_index()
    ranked = ranked.sort_values(["unit", "rows", "county"], ascending=[True, False, True], kind="stable")
    county = np.full(count, "", dtype=object)
    first = ranked.drop_duplicates("unit")
    county[first["unit"].to_numpy()] = first["county"].to_numpy()
    return Units(unit, county)


def decide_counties(
    plan: LinkPlan,
    candidates: Candidates,
    units: Units,
    settings: LinkageSettings,
    counties: Counties | None = None,
) -> tuple[np.ndarray, Decisions]:
    """Decide the units of ``counties`` (None: all): the rows decided, and the decisions
    (which say nothing of the other rows)."""
    scope = units.rows_of(counties)
    if counties is not None:
        candidates = candidates.take(scope[candidates.left])
    decisions = decide(plan.records, plan.cluster, candidates, settings, plan.evidence, units.unit, scope)
    return scope, decisions


def merge_decisions(
    plan: LinkPlan, settings: LinkageSettings, parts: Sequence[tuple[np.ndarray, Decisions]]
) -> LinkResult:
    """The county tasks' decisions as one result, as the whole batch decided at once gives it."""
    records, alone = plan.records, plan.alone
    n = len(records)
    covered = np.zeros(n, dtype=int)
    assigned = np.arange(n)
    method = np.full(n, "unmatched", dtype=object)
    score = np.full(n, np.nan)
    reviews = []
    for scope, decisions in parts:
        covered += scope
        assigned[scope] = decisions.assigned[scope]
        method[scope], score[scope] = decisions.method[scope], decisions.score[scope]
        reviews.append(decisions.review)
    if (covered != 1).any():
        raise ValueError(f"{int((covered != 1).sum()):,} rows were decided by no county task or by two")
    review = pd.concat(reviews, ignore_index=True) if reviews else pd.DataFrame(columns=["i", "j", "weight", "levels"])
    # Each row's pairs are in one unit: ordered by row, strongest first, they are as one
    # decision over the whole batch lists them.
    review = review.sort_values(["i", "weight"], ascending=[True, False], kind="stable").reset_index(drop=True)
    # A row whose number no other row carries keeps it, and its own person, unless the
    # second pass placed it with another person: then the number is someone else's.
    claimed = alone & among_other_numbers(records, assigned, alone | plan.foreign)
    kept = alone & ~claimed
    method[kept], score[kept] = "id_exact", np.inf
    # Nor is such a row put to people: short of a strong claim, its number is its own.
    review = review[~alone[review["i"].to_numpy(dtype=np.int64)]].reset_index(drop=True)
    foreign = plan.foreign | claimed
    # Under copy-on-write a shallow copy shares the records' columns until one is written:
    # a deep one copied every column of millions of Python objects the result leaves as they are.
    result = records.copy(deep=False)
    # A valid number the row carries that is someone else's (a child entered with a parent's).
    result["borrowed"] = foreign & records["id"].notna().to_numpy()
    result["cluster"] = assigned
    result["match_method"] = method
    result["match_score"] = score
    weights = {
        comparison.field: {level.label: float(table[i]) for i, level in enumerate(comparison.levels)}
        for comparison, table in zip(settings.comparisons, plan.level_weights, strict=True)
    }
    return LinkResult(records=result, review=review, weights=weights, pairs_by_rule=plan.by_rule)


def link_records(
    records: pd.DataFrame, settings: LinkageSettings, counties: Sequence[Collection[str]] | None = None
) -> LinkResult:
    """Link all records; returns each record's cluster and how it got there.

    ``counties`` splits the second pass into county tasks (:func:`~lookback.counties.county_tasks`:
    the groups, then every county they do not name): each scores its own rows' pairs, then
    decides its own units, as a task of the fan-out does; the result is the same as the
    whole batch's at once.
    """
    plan = plan_links(records, settings)
    groups = county_tasks(counties)
    scored = [score_pairs(plan, settings, group) for group in groups]
    candidates = gather_scores(scored)
    log.info("probabilistic pass: %s candidate pairs compared", f"{sum(part.compared for part in scored):,}")
    del scored
    # What the scoring read is let go before deciding, which reads neither: the candidate pairs
    # (the few decisive ones are in ``candidates``) and the per-row arrays the comparisons
    # derived (at a million persons, some 45 million pairs and a gigabyte of arrays).
    plan.table.clear()
    plan = replace(plan, left=np.empty(0, dtype=plan.left.dtype), right=np.empty(0, dtype=plan.right.dtype))
    units = decision_units(plan, candidates, settings)
    parts = [decide_counties(plan, candidates, units, settings, group) for group in groups]
    return merge_decisions(plan, settings, parts)


def weighed_levels(
    levels: Iterable[int], settings: LinkageSettings, weights: Mapping[str, Mapping[str, float]]
) -> list[tuple[Comparison, Level | None, float]]:
    """Each comparison of a pair with the level it reached (None: a value missing, weight 0)
    and that level's match weight: what every explanation of a pair is written from."""
    weighed: list[tuple[Comparison, Level | None, float]] = []
    for level_index, comparison in zip(levels, settings.comparisons, strict=True):
        if level_index < 0:
            weighed.append((comparison, None, 0.0))
        else:
            level = comparison.levels[level_index]
            weighed.append((comparison, level, weights[comparison.field][level.label]))
    return weighed


def explain_levels(
    levels: Iterable[int],
    settings: LinkageSettings,
    weights: Mapping[str, Mapping[str, float]],
    total: float | None = None,
) -> str:
    """``name exact (+9.1); identity null; birth_date exact (+7.3)…``: a pair's comparison in
    words; given the pair's total weight, what the name's frequency added is named too."""
    weighed = weighed_levels(levels, settings, weights)
    parts = [
        f"{comparison.field} missing (0)" if level is None else f"{comparison.field} {level.label} ({weight:+.1f})"
        for comparison, level, weight in weighed
    ]
    summed = sum(weight for _, _, weight in weighed)
    if total is not None and abs(total - summed) >= 0.05:
        parts.append(f"name frequency ({total - summed:+.1f})")
    return "; ".join(parts)
