"""Decisions: each row of the second pass accepted into a person, put to people, or left."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lookback.link.config import LinkageSettings
from lookback.link.levels import Comparison
from lookback.link.persons import UnionFind, first_pass_roots
from lookback.link.records import duplicate_of, same_written_number
from lookback.link.weights import PersonFacts, SeldomTwice

# The most persons a row left open is put to people with.
REVIEW_CANDIDATES = 3


def _holding_keys(records: pd.DataFrame, settings: LinkageSettings) -> np.ndarray:
    """Per row, a code for what it gives its person to hold only once (-1: nothing)."""
    sources = records["source"].to_numpy(dtype=object)
    enrolments = records["enrolment"].to_numpy(dtype=object) if "enrolment" in records else None
    labels = np.full(len(records), None, dtype=object)
    for rule in settings.one_per_person:
        rows = sources == rule.source
        if rule.per == "enrolment":
            if enrolments is None:
                continue
            labels[rows] = [f"{rule.source}:{value}" if isinstance(value, str) else None for value in enrolments[rows]]
        else:
            labels[rows] = rule.source
    codes, _kinds = pd.factorize(pd.Series(labels, dtype=object), use_na_sentinel=True)
    return codes.astype(np.int64)


def _held_conflicts(pairs: pd.DataFrame, roots: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Pairs whose two persons (``left_root``, ``target``) hold the same once-only thing.
    Only the holdings of the persons the pairs name are read, as sorted codes (person times
    the keys plus key): each round costs what its pairs cost, not what every row does (at a
    million persons, the rounds of every holding row grew faster than the batch)."""
    if pairs.empty or not (keys >= 0).any():
        return np.zeros(len(pairs), dtype=bool)
    left_root = pairs["left_root"].to_numpy(dtype=np.int64)
    target = pairs["target"].to_numpy(dtype=np.int64)
    named = np.zeros(len(roots), dtype=bool)
    named[left_root] = True
    named[target] = True
    holders = np.flatnonzero((keys >= 0) & named[roots])
    span = int(keys.max()) + 1
    held = np.sort(roots[holders].astype(np.int64) * span + keys[holders])
    # Each pair's left person's holdings: a slice of the sorted codes.
    start = np.searchsorted(held, left_root * span, side="left")
    counts = np.searchsorted(held, (left_root + 1) * span, side="left") - start
    ends = np.cumsum(counts)
    total = int(ends[-1])
    at = np.repeat(start - (ends - counts), counts) + np.arange(total)
    pair = np.repeat(np.arange(len(pairs)), counts)
    wanted = target[pair] * span + held[at] % span
    found = np.searchsorted(held, wanted, side="left")
    hit = held[np.minimum(found, len(held) - 1)] == wanted
    conflicts = np.zeros(len(pairs), dtype=bool)
    conflicts[pair[hit]] = True
    return conflicts


def _rank(pairs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each row's best person (the row of its best pair) and its best other person (the same
    columns; a row with no other candidate has weight -inf and right -1 there)."""
    best_per_target = pairs.sort_values("weight", ascending=False, kind="stable").drop_duplicates(["left", "target"])
    ranked = best_per_target.sort_values(["left", "weight"], ascending=[True, False], kind="stable")
    first = ranked.drop_duplicates("left")
    second = ranked[~ranked.index.isin(first.index)].drop_duplicates("left").set_index("left")
    runner = second.reindex(first["left"].to_numpy())
    runner["weight"] = runner["weight"].fillna(-math.inf)
    runner["right"] = runner["right"].fillna(-1).astype(np.int64)
    return first, runner.reset_index()


class _PairWeights:
    """The weight of every pair compared, looked up by its two rows in either order."""

    def __init__(self, left: np.ndarray, right: np.ndarray, weight: np.ndarray, rows: int) -> None:
        self.rows = rows
        keys = np.minimum(left, right).astype(np.int64) * rows + np.maximum(left, right)
        order = np.argsort(keys, kind="stable")
        self.keys, self.weights = keys[order], weight[order]

    def of(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Weights of the pairs (first[k], second[k]); -inf for a pair never compared."""
        if not len(self.keys):
            return np.full(len(first), -math.inf)
        keys = np.minimum(first, second).astype(np.int64) * self.rows + np.maximum(first, second)
        at = np.clip(np.searchsorted(self.keys, keys), 0, len(self.keys) - 1)
        found = (self.keys[at] == keys) & (first >= 0) & (second >= 0)
        return np.where(found, self.weights[at], -math.inf)


def number_owners(records: pd.DataFrame, cluster: np.ndarray, foreign: np.ndarray) -> np.ndarray:
    """Per row whose valid number was set aside as someone else's, a row of the person the
    number belongs to (-1 elsewhere): the row is not that person, whatever its name says."""
    owner = np.full(len(records), -1, dtype=np.int64)
    numbers = records["id"].to_numpy(dtype=object)
    linked = cluster >= 0
    first_of = pd.Series(np.flatnonzero(linked), index=numbers[linked]).groupby(level=0).first()
    carried = np.flatnonzero(foreign & pd.notna(numbers))
    found = pd.Series(numbers[carried]).map(first_of).to_numpy(dtype=float)
    owner[carried[~np.isnan(found)]] = found[~np.isnan(found)].astype(np.int64)
    return owner


@dataclass(frozen=True)
class Candidates:
    """The pairs of the second pass as compared: rows (``left`` a row of the second pass),
    match weight, levels, and per pair whether the numbers agree at least in part
    (``vouched``) and whether it agrees on more than the name and place (``supported``)."""

    left: np.ndarray
    right: np.ndarray
    weight: np.ndarray
    levels: np.ndarray
    vouched: np.ndarray | None = None
    supported: np.ndarray | None = None

    def take(self, pairs: np.ndarray) -> Candidates:
        """These pairs only (a mask or positions), in their order."""
        return Candidates(
            self.left[pairs],
            self.right[pairs],
            self.weight[pairs],
            self.levels[pairs],
            vouched=None if self.vouched is None else self.vouched[pairs],
            supported=None if self.supported is None else self.supported[pairs],
        )


@dataclass(frozen=True)
class Evidence:
    """What the decisions weigh beyond the pairs: per row, the row of the person its number
    (set aside as someone else's) belongs to (``owner``, -1: none); the rows carrying a valid
    number of their own (``numbered``; None where no row carries one); households seldom
    holding two rows of a source; the persons' facts; each row's twin."""

    owner: np.ndarray | None = None
    numbered: np.ndarray | None = None
    seldom: SeldomTwice | None = None
    facts: PersonFacts | None = None
    # Per row, the row it repeats (itself where none; see ``twins_of``): computed once for
    # the whole batch when the decisions are split by county.
    twin_of: np.ndarray | None = None


def twins_of(records: pd.DataFrame, unresolved: np.ndarray, repeats: np.ndarray | None = None) -> np.ndarray:
    """Per row, the row whose decision it follows: the first row of the same content, or of
    the same name and written number among the rows of the second pass (itself where none).
    ``repeats``: the records' :func:`~lookback.link.records.duplicate_of`, when the caller has it."""
    return same_written_number(records, duplicate_of(records) if repeats is None else repeats, unresolved)


@dataclass(frozen=True)
class Decisions:
    """Per row, its person (a root row), how it was linked and the deciding weight; the pairs put to people."""

    assigned: np.ndarray
    method: np.ndarray
    score: np.ndarray
    review: pd.DataFrame


def verdict(weight: float, settings: LinkageSettings) -> str:
    """What a pair's weight alone decides: ``accept`` (if it also beats the best candidate of
    another person by the margin), ``review`` or ``reject``."""
    if weight >= settings.accept:
        return "accept"
    return "review" if weight >= settings.review else "reject"


def accepted(best: np.ndarray, runner_up: np.ndarray, rivals: np.ndarray, settings: LinkageSettings) -> np.ndarray:
    """Rows whose best person is taken: its weight reaches ``accept`` and beats the best
    other person by ``margin``, unless that other is no rival (the same person)."""
    result: np.ndarray = (best >= settings.accept) & ((best - runner_up >= settings.margin) | ~rivals)
    return result


def summed_weights(levels: np.ndarray, tables: Sequence[np.ndarray]) -> np.ndarray:
    """Per pair, the sum of its levels' match weights (a field saying nothing adds nothing)."""
    weight = np.zeros(len(levels))
    for position, table in enumerate(tables):
        weight += np.append(table, 0.0)[levels[:, position]]  # -1, the last: nothing
    return weight


class _Persons(UnionFind):
    """The persons as the decisions join them: rows, what each person holds once, which rows
    each must stay apart from."""

    def __init__(self, records: pd.DataFrame, cluster: np.ndarray, settings: LinkageSettings, owner: np.ndarray):
        super().__init__(len(records))
        self.parent = first_pass_roots(cluster)
        self.keys = _holding_keys(records, settings)
        # What each person held once the twins followed, as keys sorted by person
        # (``_first_held``: where each person's begin); a person a join has changed is in ``held``.
        self._held_by: np.ndarray = np.empty(0, dtype=np.int64)
        self._first_held: np.ndarray = np.zeros(len(records) + 1, dtype=np.int64)
        self.held: dict[int, set[int]] = {}
        self.apart: dict[int, set[int]] = {}
        self.owner = owner

    def follow(self, twins: np.ndarray, twin_of: np.ndarray, scope: np.ndarray) -> None:
        """Each twin joins the person of the row it repeats; then what each person holds is
        read, of the rows in ``scope`` (the rows decided)."""
        # A twin repeats an earlier row, which may repeat one earlier still: follow the chain.
        while True:
            followed = self.parent[twin_of[twins]]
            if np.array_equal(followed, self.parent[twins]):
                break
            self.parent[twins] = followed
        # Read per person only when a join asks (most persons are never joined).
        holding = np.flatnonzero((self.keys >= 0) & scope)
        person = self.parent[holding]
        order = np.argsort(person, kind="stable")
        self._held_by = self.keys[holding][order]
        self._first_held = np.searchsorted(person[order], np.arange(len(self.parent) + 1), side="left")
        # A row carrying someone else's number never joins that someone.
        for row in np.flatnonzero((self.owner >= 0) & scope):
            self.apart.setdefault(self.find(int(row)), set()).add(int(self.owner[row]))
            self.apart.setdefault(self.find(int(self.owner[row])), set()).add(int(row))

    def held_by(self, root: int) -> set[int]:
        """What the person of root ``root`` holds once."""
        if root in self.held:
            return self.held[root]
        return set(self._held_by[self._first_held[root] : self._first_held[root + 1]].tolist())

    def kept_apart(self, a: int, b: int) -> bool:
        return any(self.find(x) == b for x in self.apart.get(a, ())) or any(
            self.find(x) == a for x in self.apart.get(b, ())
        )

    def join(self, i: int, j: int) -> bool:
        """Join the persons of rows i and j, unless they are one already, hold the same
        once-only thing, or must stay apart."""
        a, b = self.find(i), self.find(j)
        if a == b:
            return False
        held_a, held_b = self.held_by(a), self.held_by(b)
        if held_a & held_b or self.kept_apart(a, b):
            return False
        self.attach(a, b)
        self.held.pop(a, None)
        self.held[b] = held_b | held_a
        self.apart[b] = self.apart.get(b, set()) | self.apart.pop(a, set())
        return True


def _pending(candidates: Candidates, unresolved: np.ndarray, settings: LinkageSettings) -> pd.DataFrame:
    """The pairs strong enough to matter, each row of the second pass on the left of its own."""
    weight = candidates.weight
    # A pair this weak can neither be accepted nor keep another from being accepted.
    keep = weight >= min(settings.review, settings.accept - settings.margin)
    vouched = np.zeros(len(weight), dtype=bool) if candidates.vouched is None else candidates.vouched
    supported = np.ones(len(weight), dtype=bool) if candidates.supported is None else candidates.supported
    pending = pd.DataFrame(
        {
            "left": candidates.left[keep],
            "right": candidates.right[keep],
            "weight": weight[keep],
            "compared": weight[keep],
            "pair": np.flatnonzero(keep),
            "vouched": vouched[keep],
            "supported": supported[keep],
        }
    )
    # A pair of two rows of the second pass is a candidate for each of them: the registry row
    # that took another person need not leave its own enrolment behind.
    both = unresolved[pending["right"].to_numpy()]
    mirrored = pending[both].rename(columns={"left": "right", "right": "left"})
    joined: pd.DataFrame = pd.concat([pending, mirrored[pending.columns]], ignore_index=True)
    return joined


def _as_persons_stand(
    pending: pd.DataFrame,
    roots: np.ndarray,
    persons: _Persons,
    evidence: Evidence,
    levels: np.ndarray,
    sources: np.ndarray,
    decided: np.ndarray,
) -> pd.DataFrame:
    """The pairs still open between two persons as they now stand, weighed against them."""
    pending = pending.assign(left_root=roots[pending["left"].to_numpy()], target=roots[pending["right"].to_numpy()])
    pending = pending[pending["left_root"] != pending["target"]]
    owner = persons.owner
    owners = owner[pending["left"].to_numpy()]
    pending = pending[(owners < 0) | (roots[np.clip(owners, 0, None)] != pending["target"].to_numpy())]
    pending = pending[~_held_conflicts(pending, roots, persons.keys)]
    # Weighed against the persons as they now stand, from the pair's own weight.
    adjusted = np.zeros(len(pending))
    if evidence.seldom is not None and evidence.seldom.held:
        adjusted += evidence.seldom.weights(pending, roots, sources)
    if evidence.facts is not None:
        adjusted += evidence.facts.weights(pending, roots, levels)
    pending = pending.assign(weight=pending["compared"].to_numpy() + adjusted)
    # A placed row stays only while a person its number vouches for is still apart.
    placed = decided[pending["left"].to_numpy()]
    brings = pending["vouched"].to_numpy(dtype=bool)
    if evidence.numbered is not None:
        holds_number = np.zeros(len(roots), dtype=bool)
        holds_number[roots[evidence.numbered]] = True
        brings = brings | ~holds_number[pending["left_root"].to_numpy()]
    pending = pending.assign(brings=brings)
    may_bring = pending.loc[placed & brings, "left"].unique()
    standing: pd.DataFrame = pending[~placed | pending["left"].isin(may_bring).to_numpy()]
    return standing


def _chosen(
    first: pd.DataFrame,
    runner: pd.DataFrame,
    pair_weights: _PairWeights,
    decided: np.ndarray,
    settings: LinkageSettings,
    unit: np.ndarray | None = None,
) -> pd.DataFrame:
    """The best pairs accepted this round, strongest first, without those that must wait."""
    best, runner_up = first["weight"].to_numpy(), runner["weight"].to_numpy()
    # The best other person is no rival when it is itself, by its own pair with the best
    # candidate, the same person: two rows of one person are not two persons to choose from.
    rivals = pair_weights.of(first["right"].to_numpy(), runner["right"].to_numpy()) < settings.accept
    taken = accepted(best, runner_up, rivals, settings)
    taken &= first["supported"].to_numpy(dtype=bool)
    taken &= ~decided[first["left"].to_numpy()] | first["brings"].to_numpy(dtype=bool)
    # Strongest decisions first, so that a chain of weaker ones cannot pull a person apart.
    chosen = first[taken].sort_values("weight", ascending=False, kind="stable")
    # A row whose candidate is itself joining a third person this round is decided next
    # round, against that person as it will stand (an enrolment of another birth date is
    # not taken in through the allowance row that is joining its registry person).
    moving = chosen.drop_duplicates("left_root").set_index("left_root")["target"]
    destination = chosen["target"].map(moving)
    deferred = destination.notna().to_numpy() & (destination.to_numpy() != chosen["left_root"].to_numpy())
    # A ring of rows each joining the next: no one waits for ever. Rings are broken per unit
    # of rows that decide together (see ``decision_units``), so that the decisions of one
    # unit never depend on what is decided elsewhere at the same time.
    units = np.zeros(len(chosen), dtype=np.int64) if unit is None else unit[chosen["left"].to_numpy()]
    waiting = pd.Series(deferred).groupby(units).transform("all").to_numpy(dtype=bool)
    deferred &= ~waiting
    now: pd.DataFrame = chosen[~deferred]
    return now


def decide(
    records: pd.DataFrame,
    cluster: np.ndarray,
    candidates: Candidates,
    settings: LinkageSettings,
    evidence: Evidence | None = None,
    unit: np.ndarray | None = None,
    scope: np.ndarray | None = None,
) -> Decisions:
    """Accept, send to review, or leave each row of the second pass (``cluster`` -1).

    A row's candidates are grouped by the person they belong to; the best person is taken
    when its weight reaches ``accept`` and beats the next person by ``margin``. Decisions
    are made in rounds: rows joined in one round make one person of what were several
    candidates, and the rows still open are decided again against the persons as they now
    stand (a registry row whose name matches two insurance rows of one person, one of them
    linked only in the first round, is not left in doubt between them). A person never
    comes to hold two rows of what ``one_per_person`` allows once; a row delivered twice is
    decided once, and its twin follows it (so are rows of one name whose invalid number is
    written alike: see ``same_written_number``). A row already placed brings in a further
    person when its number agrees with theirs at least in part (``vouched``) and that
    person is, by the same rules, its best candidate now: a registry row with a wrong check
    character that first joined its allowance row also joins its own enrolments. A row whose
    number was set aside as someone else's never joins the person that number belongs to;
    a pair that agrees on nothing but the name, county and sex (``supported``) is put to
    people rather than accepted. A row placed with a person that holds no valid number yet
    (``numbered``: rows carrying one of their own) may still bring in a further person: a
    registry row with a blank number that joined its allowance row (blank too) also joins
    its enrolments, as it would have alone.

    ``unit`` (per row; see ``decision_units``) groups the rows whose decisions depend on
    one another: decided apart, each unit comes out as it does among all the others.
    ``scope`` (per row) marks the rows of the units decided here, when only some are (the
    candidates given are then theirs); elsewhere the result says nothing.
    """
    evidence = evidence or Evidence()
    n = len(records)
    unresolved = cluster < 0
    owner = np.full(n, -1, dtype=np.int64) if evidence.owner is None else evidence.owner
    persons = _Persons(records, cluster, settings, owner)
    twin_of = twins_of(records, unresolved) if evidence.twin_of is None else evidence.twin_of
    scope = np.ones(n, dtype=bool) if scope is None else scope
    twins = np.flatnonzero((twin_of != np.arange(n)) & unresolved & scope)
    persons.follow(twins, twin_of, scope)
    sources = records["source"].to_numpy(dtype=object)
    method = np.where(unresolved, "unmatched", "id_exact").astype(object)
    score = np.where(unresolved, np.nan, np.inf)
    pending = _pending(candidates, unresolved, settings)
    decided = np.zeros(n, dtype=bool)
    decided[twins] = True
    # Only whether a pair reaches ``accept`` is asked of it (see ``_chosen``): the weaker
    # pairs, most of them, need not be sorted.
    rival = ~(candidates.weight < settings.accept)
    pair_weights = _PairWeights(candidates.left[rival], candidates.right[rival], candidates.weight[rival], n)
    while True:
        pending = _as_persons_stand(pending, persons.roots(), persons, evidence, candidates.levels, sources, decided)
        first, runner = _rank(pending)
        chosen = _chosen(first, runner, pair_weights, decided, settings, unit)
        joined = 0
        for i, j, w in zip(
            chosen["left"].to_numpy(), chosen["right"].to_numpy(), chosen["weight"].to_numpy(), strict=True
        ):
            if not persons.join(int(i), int(j)):
                continue  # joined already, the person now holds what this row brings, or must stay apart
            # The pair decides both its rows: a row of the second pass taken by another is
            # placed as much as one that took (it brings in no further person on its own).
            for taken in (int(i), int(j)):
                if unresolved[taken] and not decided[taken]:
                    method[taken], score[taken], decided[taken] = "probabilistic", w, True
            joined += 1
        if joined == 0:
            break
    method[twins], score[twins] = method[twin_of[twins]], score[twin_of[twins]]
    review = _review(pending, first, decided, candidates.levels, settings)
    return Decisions(persons.roots(), method, score, review)


def _review(
    pending: pd.DataFrame, first: pd.DataFrame, decided: np.ndarray, levels: np.ndarray, settings: LinkageSettings
) -> pd.DataFrame:
    """People decide a row left open among the persons it could be: its best candidate and
    every other person within reach of review (at most REVIEW_CANDIDATES of them)."""
    undecided = ~decided[first["left"].to_numpy()] & (first["weight"].to_numpy() >= settings.review)
    candidates = pending[pending["left"].isin(first.loc[undecided, "left"]) & (pending["weight"] >= settings.review)]
    # Nor is a pair whose names have nothing in common put to people: at 200,000 persons such
    # pairs (two people born the same day in one county) were a third of the review, one in
    # three hundred of them a match.
    candidates = candidates[~_names_apart(levels, candidates["pair"].to_numpy(), settings.comparisons)]
    review_pairs = (
        candidates.sort_values(["left", "weight"], ascending=[True, False], kind="stable")
        .drop_duplicates(["left", "target"])
        .groupby("left", sort=False)
        .head(REVIEW_CANDIDATES)
    )
    # A pair both of whose rows are open is asked once.
    review_pairs = review_pairs.drop_duplicates("pair")
    return pd.DataFrame(
        {
            "i": review_pairs["left"].to_numpy(),
            "j": review_pairs["right"].to_numpy(),
            "weight": review_pairs["weight"].to_numpy(),
            "levels": levels[review_pairs["pair"].to_numpy(dtype=np.int64)].tolist(),
        }
    )


def _names_apart(levels: np.ndarray, pairs: np.ndarray, comparisons: Sequence[Comparison]) -> np.ndarray:
    """Of ``pairs`` (indices into ``levels``), those whose names compare at the last level."""
    for position, comparison in enumerate(comparisons):
        if comparison.field == "name":
            apart: np.ndarray = levels[pairs, position] == len(comparison.levels) - 1
            return apart
    return np.zeros(len(pairs), dtype=bool)
