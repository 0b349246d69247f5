"""The link stage: link a batch's staged rows, give people and households stable keys, and
write ``person_links`` and ``match_review`` (``docs/outputs.md``).

Stable keys come from crosswalks kept in the warehouse: a person is anchored on the
identity number most of their rows carry (or, without one, on their first row's content),
a household on its registry household number (or the allowance head's number); the first
batch that sees an anchor gives it the next key, and every later batch finds it again.
Decisions people write into ``match_review`` are kept by the content of the two rows and
applied whenever those rows are delivered again.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Column, Table, bindparam, delete, select, update

from lookback.faults import fault_point
from lookback.ingest.progress import duration_words
from lookback.link.config import LinkageSettings, load_linkage_settings
from lookback.link.engine import LinkResult, explain_levels, link_records
from lookback.link.load import load_records
from lookback.link.words import explain_levels_zh
from lookback.locks import one_writer_at_a_time
from lookback.standardise.identity import mask_identity_number
from lookback.warehouse import Warehouse

log = logging.getLogger(__name__)


# The steps of the whole link and of its merge, each with its share of the work: CPU seconds
# measured step by step on a hard batch of a million registry persons (README, "the link's
# steps measured one by one"). They make the task log's "about ... left" after each step.
WHOLE_LINK_STEPS = {"read": 89.6, "linked": 363.5, "anchored": 65.5, "keys": 28.8, "written": 43.3}
MERGE_STEPS = {"decided": 92.2, "anchored": 65.5, "keys": 28.8, "written": 43.3}


# A step of the link as the task log shows it: batch, step, its seconds, where the link is.
LAP_MESSAGE = "link %s: %s in %.1f s (%s)"


class Clock:
    """Logs how long each step of a long link took, for the task log; given the steps to
    come with their shares of the work, also which step of how many and the time left."""

    def __init__(
        self, batch_id: str, steps: Mapping[str, float] | None = None, now: Callable[[], float] = time.perf_counter
    ) -> None:
        self.batch_id = batch_id
        self.now = now
        self.started = self.last = now()
        self.steps = dict(steps or {})
        self.done: list[str] = []

    def lap(self, step: str, key: str | None = None) -> None:
        now = self.now()
        elapsed = now - self.started
        where = f"{elapsed:.1f} s so far"
        if key in self.steps and key not in self.done:
            self.done.append(key)
            share = sum(self.steps[name] for name in self.done) / sum(self.steps.values())
            left = elapsed * (1 - share) / share if share > 0 else 0.0
            where += f"; step {len(self.done)} of {len(self.steps)}, about {duration_words(left)} left"
        log.info(LAP_MESSAGE, self.batch_id, step, now - self.last, where)
        self.last = now


@dataclass(frozen=True)
class LinkSummary:
    batch_id: str
    rows: int
    persons: int
    households: int
    by_method: Mapping[str, int]
    review_pairs: int
    candidate_pairs: Mapping[str, int]
    persons_with_two_numbers: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "rows": self.rows,
            "persons": self.persons,
            "households": self.households,
            "by_method": dict(self.by_method),
            "review_pairs": self.review_pairs,
            "candidate_pairs": dict(self.candidate_pairs),
            "persons_with_two_numbers": self.persons_with_two_numbers,
        }


# Staged rows asked for at a time by their numbers.
HASH_CHUNK = 500


def _staged_hashes(
    warehouse: Warehouse, batch_id: str, source: str, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The batch's staged rows of ``source`` (or those of ``rows``, distinct numbers): their
    numbers in order, and their content hashes."""
    table = warehouse.staging(source)
    query = select(table.c.source_row, table.c.row_hash).where(table.c.batch_id == batch_id)
    with warehouse.engine.connect() as connection:
        if rows is None:
            found = Warehouse.plain_rows(connection, query.order_by(table.c.source_row))
        else:
            found = []
            for start in range(0, len(rows), HASH_CHUNK):
                chunk = rows[start : start + HASH_CHUNK].tolist()
                found += Warehouse.plain_rows(connection, query.where(table.c.source_row.in_(chunk)))
            found.sort()
    if not found:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
    # Column by column in C: a frame built from result rows asks each row for namedtuple fields.
    block = np.empty((len(found), 2), dtype=object)
    block[:] = found
    return block[:, 0].astype(np.int64), block[:, 1].copy()


def _row_hashes(
    warehouse: Warehouse, batch_id: str, records: pd.DataFrame, wanted: np.ndarray | None = None
) -> np.ndarray:
    """Per record, the content hash of its staged row (only where ``wanted``, when given:
    empty elsewhere): each source's staged rows in order, each record's found by binary
    search (merging on source and row compared objects). A source's wanted rows are asked
    for by number when they are few, else all its rows are read."""
    sources = records["source"].to_numpy(dtype=object)
    numbers = records["source_row"].to_numpy(dtype=np.int64)
    hashes = np.full(len(records), None, dtype=object)
    found = np.zeros(len(records), dtype=bool) if wanted is None else ~wanted
    for source in pd.unique(sources):
        of_source = sources == source
        at = np.flatnonzero(of_source if wanted is None else of_source & wanted)
        few = wanted is not None and len(at) * 4 < np.count_nonzero(of_source)
        if wanted is not None and not len(at):
            continue
        staged_rows, staged_hashes = _staged_hashes(
            warehouse, batch_id, str(source), np.unique(numbers[at]) if few else None
        )
        if not len(staged_rows):
            continue
        place = np.minimum(np.searchsorted(staged_rows, numbers[at]), len(staged_rows) - 1)
        hit = staged_rows[place] == numbers[at]
        hashes[at[hit]] = staged_hashes[place[hit]]
        found[at[hit]] = True
    if not found.all():
        first = int(np.flatnonzero(~found)[0])
        raise ValueError(f"{sources[first]} row {numbers[first]} of batch {batch_id} is not staged")
    return hashes


def _rows_needing_hashes(records: pd.DataFrame, review: pd.DataFrame) -> np.ndarray:
    """The rows whose content hash is used when no decision people made applies: those of a
    person no number linked on itself (anchored on their rows' smallest hash, see
    :func:`_anchors`) and those in pairs for review. Elsewhere it is not read (about 1% of
    a batch's rows are needed, reading all took a tenth of storing the links)."""
    clusters = records["cluster"].to_numpy()
    numbered = (records["match_method"] == "id_exact").to_numpy(dtype=bool) & records["id"].notna().to_numpy()
    wanted = ~np.isin(clusters, np.unique(clusters[numbered]))
    wanted[review["i"].to_numpy(dtype=np.int64)] = True
    wanted[review["j"].to_numpy(dtype=np.int64)] = True
    return wanted


def _decisions(warehouse: Warehouse) -> list[tuple[str, str, str]]:
    """The decisions people made in match_review: (row hash, row hash, same or different)."""
    table = warehouse.table("match_decisions")
    with warehouse.engine.connect() as connection:
        rows = connection.execute(select(table.c.row_hash_1, table.c.row_hash_2, table.c.decision)).all()
    return [(first, second, decision) for first, second, decision in rows]


def _apply_decisions(
    decisions: Sequence[tuple[str, str, str]], records: pd.DataFrame, hashes: np.ndarray
) -> tuple[int, set[frozenset[str]]]:
    """Apply the decisions people made in match_review: rows decided ``same`` are one person;
    a row decided ``different`` from another leaves that person when the linkage put it
    there. Returns how many decisions applied, and the decided pairs (by row content), which
    are never asked again."""
    decided = {frozenset((first, second)) for first, second, _decision in decisions}
    if not decisions:
        return 0, decided
    position = {value: index for index, value in enumerate(hashes)}
    pairs = [
        (position[hash_1], position[hash_2], decision)
        for hash_1, hash_2, decision in decisions
        if hash_1 in position and hash_2 in position
    ]
    clusters, methods, scores = _decided_clusters(
        records["cluster"].to_numpy(),
        records["match_method"].to_numpy(),
        records["match_score"].to_numpy(dtype=float),
        pairs,
    )
    records["cluster"], records["match_method"], records["match_score"] = clusters, methods, scores
    return len(pairs), decided


def _decided_clusters(
    clusters: np.ndarray, methods: np.ndarray, scores: np.ndarray, pairs: Sequence[tuple[int, int, str]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The clusters after the decisions on pairs of rows ``(i, j, decision)``, taken in turn:
    ``same`` joins i's cluster to j's (named as j's was), ``different`` of two rows in one
    cluster moves the row the second pass placed into a cluster of its own.

    Clusters are sets in a disjoint-set forest whose roots carry the cluster's number, each
    row pointing at its cluster's set: a join links two roots, a row leaving points at a new
    set, so that each decision costs about nothing however many rows the batch has (relabelling
    the rows of a cluster per decision grew with rows times decisions).
    """
    methods, scores = methods.copy(), scores.copy()
    labels, node_of = np.unique(clusters, return_inverse=True)
    parent = list(range(len(labels)))
    label = labels.tolist()
    node = node_of.tolist()
    next_cluster = int(labels.max()) + 1 if len(labels) else 0

    def root(at: int) -> int:
        top = at
        while parent[top] != top:
            top = parent[top]
        while parent[at] != top:  # path compression
            parent[at], at = top, parent[at]
        return top

    for i, j, decision in pairs:
        root_i, root_j = root(node[i]), root(node[j])
        if decision == "same":
            parent[root_i] = root_j
            methods[i] = "manual"
        elif root_i == root_j:
            # Decided different, yet linked: the row the second pass placed leaves the person.
            leaving = i if methods[i] != "id_exact" or methods[j] == "id_exact" else j
            parent.append(len(parent))
            label.append(next_cluster)
            node[leaving] = len(parent) - 1
            methods[leaving], scores[leaving] = "manual", np.nan
            next_cluster += 1
    roots = [root(at) for at in range(len(parent))]
    decided = np.asarray([label[top] for top in roots], dtype=clusters.dtype)[np.asarray(node, dtype=np.int64)]
    return decided, methods, scores


def _next_number(keys: Iterable[str], prefix: str) -> int:
    return max((int(key[len(prefix) :]) for key in keys if key.startswith(prefix)), default=0) + 1


def _bound(connection: Any, column: Column[Any], value: Any) -> Any:
    """``value`` as the column's type binds it for the database (a date as SQLite's text)."""
    processor = column.type.dialect_impl(connection.dialect).bind_processor(connection.dialect)
    return value if processor is None else processor(value)


def _insert_anchors(
    connection: Any, table: Table, anchors: Sequence[str], keys: Sequence[str], batch_id: str, now: datetime
) -> None:
    """New rows of a crosswalk, in one bulk insert; the batch and time they share are bound
    once (bound row by row, the time cost more than writing the rows)."""
    Warehouse.bulk_insert(
        connection,
        table,
        {
            "anchor": anchors,
            "key": keys,
            "first_batch": [_bound(connection, table.c.first_batch, batch_id)] * len(anchors),
            "created_at": [_bound(connection, table.c.created_at, now)] * len(anchors),
        },
    )


def _keys(
    connection: Any, table: Table, anchors: pd.Series, batch_id: str, prefix: str, now: datetime
) -> dict[str, str]:
    """Existing keys for the anchors, and new ones (next in sequence) for those never seen.

    The crosswalk is read whole (one row per person ever seen): cheaper than asking for
    hundreds of thousands of anchors in chunks.
    """
    known = dict(Warehouse.plain_rows(connection, select(table.c.anchor, table.c.key)))
    unseen = sorted(set(anchors) - set(known))
    next_number = _next_number(known.values(), prefix) if unseen else 0
    for anchor in unseen:
        known[anchor] = f"{prefix}{next_number:09d}"
        next_number += 1
    _insert_anchors(connection, table, unseen, [known[anchor] for anchor in unseen], batch_id, now)
    return known


# What a row says about its person, besides the number: a person is found again by it.
_DESCRIBING = ("source", "name", "county", "village", "household", "relation", "birth_stated", "sex_stated")


def _row_descriptions(records: pd.DataFrame) -> np.ndarray:
    """Per row, a digest of what it says about its person (not its number, not the year)."""
    columns = []
    for name in _DESCRIBING:
        values = records[name].to_numpy(dtype=object, copy=True)
        values[records[name].isna().to_numpy()] = ""
        columns.append(values)
    digest = hashlib.blake2b
    return np.array(
        [
            digest("|".join(map(str, values)).encode(), digest_size=16).hexdigest()
            for values in zip(*columns, strict=True)
        ],
        dtype=object,
    )


def _person_keys(
    connection: Any,
    warehouse: Warehouse,
    records: pd.DataFrame,
    person_anchor: pd.Series,
    batch_id: str,
    now: datetime,
) -> pd.Series:
    """Per cluster, the person's key: the key of its anchor (the number most of its rows
    carry) when seen before; else the key that what its rows say was last seen under (a
    person without a usable number whose rows changed, a person whose number is new);
    else a new one.

    What a row says is digested only for the rows that need it: those of a person not
    found by their anchor, and those remembered below."""
    crosswalk = warehouse.table("person_crosswalk")
    described_table = warehouse.table("person_row_anchors")
    known = dict(Warehouse.plain_rows(connection, select(crosswalk.c.anchor, crosswalk.c.key)))
    described = dict(Warehouse.plain_rows(connection, select(described_table.c.anchor, described_table.c.key)))
    clusters = records["cluster"].to_numpy()
    keys: dict[Any, str] = {}
    unknown = []  # (cluster, anchor) of anchors never seen
    for cluster, anchor in person_anchor.items():
        key = known.get(anchor)
        if key is None:
            unknown.append((cluster, anchor))
        else:
            keys[cluster] = key
    taken = set(keys.values())
    # Remember what the rows said: of every registry row, and of every row of a person whose
    # anchor is not a number (no other way to find them again).
    without_number = person_anchor.index[~person_anchor.str.startswith("id:")]
    remember = (records["source"] == "registry").to_numpy() | np.isin(clusters, without_number.to_numpy())
    unkeyed = ~np.isin(clusters, np.fromiter(keys, dtype=clusters.dtype, count=len(keys)))
    descriptions = np.full(len(records), None, dtype=object)
    # An unkeyed row's digest is looked up among those remembered: none are on a first
    # batch, where every row is unkeyed (at 100,000 persons the keys took 3.5 s, not 5.9).
    needed = remember | unkeyed if described else remember
    descriptions[needed] = _row_descriptions(records[list(_DESCRIBING)][needed])
    votes = pd.DataFrame(
        {"cluster": clusters[unkeyed], "key": [described.get(text) for text in descriptions[unkeyed]]}
    ).dropna()
    votes = votes[~votes["key"].isin(list(taken))]
    ranked = votes.groupby(["cluster", "key"]).size().rename("rows").reset_index()
    ranked = ranked.sort_values(["rows", "cluster", "key"], ascending=[False, True, True], kind="stable")
    for cluster, key in zip(ranked["cluster"], ranked["key"], strict=True):
        if cluster not in keys and key not in taken:
            keys[cluster] = str(key)
            taken.add(str(key))
    # Only anchors never seen have anything to do (a cluster without a key has such an
    # anchor); sorting just those keeps their order in the sort of all.
    next_number = _next_number(known.values(), "P") if any(cluster not in keys for cluster, _ in unknown) else 0
    new_anchors, new_keys = [], []
    for cluster, anchor in sorted(unknown, key=lambda item: str(item[1])):
        if cluster not in keys:
            keys[cluster] = f"P{next_number:09d}"
            next_number += 1
        if anchor not in known:
            new_anchors.append(anchor)
            new_keys.append(keys[cluster])
    _insert_anchors(connection, crosswalk, new_anchors, new_keys, batch_id, now)
    latest = {text: keys[cluster] for text, cluster in zip(descriptions[remember], clusters[remember], strict=True)}
    changed = [
        {"text": text, "key": key} for text, key in latest.items() if text in described and described[text] != key
    ]
    if changed:
        connection.execute(
            update(described_table)
            .where(described_table.c.anchor == bindparam("text"))
            .values(key=bindparam("key"), last_batch=batch_id),
            changed,
        )
    Warehouse.insert_records(
        connection,
        described_table,
        [{"anchor": text, "key": key, "last_batch": batch_id} for text, key in latest.items() if text not in described],
    )
    return pd.Series(keys, dtype=object)


def _birth_date(value: Any) -> date | None:
    """A ``YYYYMMDD`` key as a date."""
    if not isinstance(value, str) or len(value) != 8:
        return None
    return date(int(value[:4]), int(value[4:6]), int(value[6:]))


def _birth_dates(values: np.ndarray, bind: Callable[[date | None], Any] = lambda value: value) -> list[Any]:
    """``_birth_date`` of each value, each distinct value converted (and ``bind``) once."""
    converted: dict[Any, Any] = {}
    result = []
    for value in values:
        if value not in converted:
            converted[value] = bind(_birth_date(value))
        result.append(converted[value])
    return result


# What the review file shows of each row of a pair beside its name and masked number.
_REVIEW_CONTEXT = {"county": "county", "village": "village", "household": "household", "relation": "relation"}


def _review_context(linked: pd.DataFrame, review: pd.DataFrame) -> dict[str, dict[int, Any]]:
    """Per column the review file shows (place, household, relation, birth date), its value
    for each row of a pair under review, by row position."""
    positions = sorted({int(i) for i in review["i"]} | {int(j) for j in review["j"]})
    shown: dict[str, dict[int, Any]] = {}
    for name, column in _REVIEW_CONTEXT.items():
        values = linked[column].to_numpy(dtype=object)[positions]
        shown[name] = {
            position: value if isinstance(value, str) and value else None
            for position, value in zip(positions, values, strict=True)
        }
    births = _birth_dates(linked["birth_date"].to_numpy(dtype=object)[positions])
    shown["birth_date"] = dict(zip(positions, births, strict=True))
    return shown


def _scores(scores: np.ndarray) -> list[float | None]:
    """Scores as floats, empty where there is none."""
    finite = np.isfinite(scores)
    values = scores.astype(object)
    values[~finite] = None
    return values.tolist()  # type: ignore[no-any-return]


def _commonest(frame: pd.DataFrame, value: str) -> pd.Series:
    """Per cluster, the value most of its rows carry (ties: the smallest), vectorised: the
    values as codes, ranked in their sort order where a cluster has more than one (most
    have one: sorting every distinct value cost more than the rest)."""
    codes, values = pd.factorize(frame[value], use_na_sentinel=True)
    stated = codes >= 0
    counts = (
        pd.DataFrame({"cluster": frame["cluster"].to_numpy()[stated], "code": codes[stated]})
        .groupby(["cluster", "code"], sort=True)
        .size()
        .rename("rows")
        .reset_index()
    )
    clusters, counted = counts["cluster"].to_numpy(), counts["code"].to_numpy()
    distinct = np.asarray(values, dtype=object)
    contested = np.unique(counted[pd.Series(clusters).duplicated(keep=False).to_numpy()])
    rank = np.zeros(len(distinct), dtype=np.int64)
    rank[contested] = pd.factorize(distinct[contested], sort=True)[0]
    order = np.lexsort((rank[counted], -counts["rows"].to_numpy(), clusters))
    first = counts.iloc[order].drop_duplicates("cluster")
    return pd.Series(distinct[first["code"].to_numpy()], index=first["cluster"].to_numpy())


def _anchors(records: pd.DataFrame, hashes: np.ndarray) -> tuple[pd.Series, pd.Series]:
    """Per cluster: the person anchor and the household anchor."""
    frame = records[["cluster", "id", "source", "household", "match_method"]].copy()
    frame["hash"] = hashes
    # Only numbers that linked on themselves anchor a person: a number set aside as someone
    # else's would otherwise give its carrier the owner's key.
    with_id = frame[(frame["match_method"] == "id_exact") & frame["id"].notna()]
    commonest = _commonest(with_id, "id")
    # Per cluster in order, set by position (setting by label looked each cluster up).
    clusters, of_row = np.unique(frame["cluster"].to_numpy(), return_inverse=True)
    person = np.empty(len(clusters), dtype=object)
    numbered = np.searchsorted(clusters, commonest.index.to_numpy())
    person[numbered] = np.array(["id:" + str(value) for value in commonest], dtype=object)
    # A person without such a number: the smallest of their rows' hashes (sorting only
    # those rows' hashes, not every row's).
    unnumbered = np.ones(len(clusters), dtype=bool)
    unnumbered[numbered] = False
    rows = unnumbered[of_row]
    hash_codes, sorted_hashes = pd.factorize(frame["hash"].to_numpy()[rows], sort=True)
    first_hash = pd.Series(hash_codes).groupby(of_row[rows], sort=True).min()
    person[first_hash.index.to_numpy()] = np.array(
        ["row:" + str(value) for value in np.asarray(sorted_hashes, dtype=object)[first_hash.to_numpy()]],
        dtype=object,
    )
    household = np.array(["person:" + anchor for anchor in person], dtype=object)
    households = frame[frame["household"].notna()]
    heads = _commonest(households[households["household"].str.startswith("head:")], "household")
    registry = _commonest(households[households["source"] == "registry"], "household")
    for named in (heads, registry):
        household[np.searchsorted(clusters, named.index.to_numpy())] = named.to_numpy(dtype=object)
    return pd.Series(person, index=clusters, dtype=object), pd.Series(household, index=clusters, dtype=object)


def _resolve_heads(household_anchor: pd.Series, person_anchor: pd.Series) -> pd.Series:
    """An allowance household named by its head's number joins the registry household of that head."""
    households = household_anchor.reindex(person_anchor.index).fillna("").astype(str).tolist()
    by_head = {
        "head:" + person[3:]: household
        for person, household in zip(person_anchor.tolist(), households, strict=True)
        if person.startswith("id:") and household.startswith("registry:")
    }
    anchors = household_anchor.to_numpy(dtype=object)
    return pd.Series([by_head.get(anchor, anchor) for anchor in anchors], index=household_anchor.index, dtype=object)


def link_batch(
    warehouse: Warehouse,
    batch_id: str,
    settings: LinkageSettings | None = None,
    counties: Sequence[Collection[str]] | None = None,
) -> LinkSummary:
    """Link every accepted row of the batch and store person_links, match_review and keys
    (``counties``: the second pass in county tasks, see :func:`~lookback.link.engine.link_records`)."""
    settings = settings or load_linkage_settings()
    kept = record_decisions(warehouse)
    if kept:
        log.info("%d decisions people made in match_review are kept", kept)
    clock = Clock(batch_id, WHOLE_LINK_STEPS)
    records = load_records(warehouse, batch_id, settings)
    clock.lap(f"read {len(records):,} rows", "read")
    if records.empty:
        raise ValueError(f"batch {batch_id} has no accepted rows to link")
    result = link_records(records, settings, counties)
    clock.lap("linked", "linked")
    return store_links(warehouse, batch_id, settings, result, clock)


def store_links(
    warehouse: Warehouse, batch_id: str, settings: LinkageSettings, result: LinkResult, clock: Clock
) -> LinkSummary:
    """Give the linked rows their person and household keys (people's decisions in
    match_review applied first) and write person_links, match_review and link_weights."""
    linked = result.records
    decisions = _decisions(warehouse)
    # Every row's hash when decisions apply (they are found by content), else only those used.
    wanted = None if decisions else _rows_needing_hashes(linked, result.review)
    hashes = _row_hashes(warehouse, batch_id, linked, wanted)
    manual, decided = _apply_decisions(decisions, linked, hashes)
    person_anchor, household_anchor = _anchors(linked, hashes)
    clock.lap("persons and households anchored", "anchored")
    household_anchor = _resolve_heads(household_anchor, person_anchor)
    # A person whose rows carry two different valid numbers is flagged (ID_CONFLICT's evidence).
    numbers_per_person = linked[["cluster", "id"]].dropna(subset=["id"]).groupby("cluster")["id"].nunique()
    conflicting = numbers_per_person.index[numbers_per_person > 1]
    now = datetime.now(UTC)
    review = result.review
    with warehouse.engine.begin() as connection:
        # Keys are numbered across batches: one batch at a time gives them.
        one_writer_at_a_time(connection, "keys")
        person_keys = _person_keys(connection, warehouse, linked, person_anchor, batch_id, now)
        # Every registry household has its key, also one whose members all belong more to
        # another household (a person listed twice): the look-back reports on each.
        registry_households = linked["household"][linked["source"] == "registry"].dropna()
        household_keys = _keys(
            connection,
            warehouse.table("household_crosswalk"),
            pd.concat([household_anchor, registry_households], ignore_index=True),
            batch_id,
            "H",
            now,
        )
        clock.lap("keys found and given", "keys")
        # The person index is built once after the rows are in: kept up row by row, it made
        # writing a million links several times slower.
        links_table = warehouse.table("person_links")
        for index in links_table.indexes:
            index.drop(connection, checkfirst=True)
        for name in ("person_links", "match_review", "link_weights"):
            table = warehouse.table(name)
            connection.execute(delete(table).where(table.c.batch_id == batch_id))
        scores = linked["match_score"].to_numpy(dtype=float)
        columns: dict[str, list[Any]] = {
            "batch_id": [batch_id] * len(linked),
            "source": linked["source"].tolist(),
            "source_row": linked["source_row"].astype(int).tolist(),
            "person_id": linked["cluster"].map(person_keys).tolist(),
            "household_key": linked["cluster"].map(household_anchor).map(household_keys).tolist(),
            "match_method": linked["match_method"].tolist(),
            "match_score": _scores(scores),
            "conflicting_identity": linked["cluster"].isin(conflicting).tolist(),
            "identity_number": [
                number if isinstance(number, str) else None for number in linked["id"].to_numpy(dtype=object)
            ],
            "identity_birth_date": _birth_dates(
                linked["id_birth"].to_numpy(dtype=object),
                lambda value: _bound(connection, links_table.c.identity_birth_date, value),
            ),
            "identity_borrowed": linked["borrowed"].astype(bool).tolist(),
        }
        Warehouse.bulk_insert(connection, links_table, columns)
        for index in links_table.indexes:
            index.create(connection, checkfirst=True)
        clock.lap("person_links written", "written")
        fault_point("link")
        sources, source_rows = linked["source"].tolist(), linked["source_row"].tolist()
        names, digits = linked["name"].tolist(), linked["id_digits"].tolist()
        shown = _review_context(linked, review)
        review_rows = [
            {
                **{f"{name}_1": values[i] for name, values in shown.items()},
                **{f"{name}_2": values[j] for name, values in shown.items()},
                "explanation_zh": explain_levels_zh(levels, settings, result.weights, total=float(weight)),
                "batch_id": batch_id,
                "source_1": sources[i],
                "source_row_1": int(source_rows[i]),
                "source_2": sources[j],
                "source_row_2": int(source_rows[j]),
                "row_hash_1": hashes[i],
                "row_hash_2": hashes[j],
                "name_1": names[i],
                "identity_1_masked": mask_identity_number(digits[i] or ""),
                "name_2": names[j],
                "identity_2_masked": mask_identity_number(digits[j] or ""),
                "score": float(weight),
                "explanation": explain_levels(levels, settings, result.weights, total=float(weight)),
                "decision": None,
            }
            for i, j, weight, levels in zip(review["i"], review["j"], review["weight"], review["levels"], strict=True)
            if frozenset((hashes[i], hashes[j])) not in decided
        ]
        Warehouse.insert(connection, warehouse.table("match_review"), review_rows)
        weight_rows = [
            {"batch_id": batch_id, "field": field, "level": level, "weight": weight}
            for field, levels in result.weights.items()
            for level, weight in levels.items()
        ]
        Warehouse.insert(connection, warehouse.table("link_weights"), weight_rows)
    by_method = linked["match_method"].value_counts().to_dict()
    if manual:
        log.info("applied %d decisions people made in match_review", manual)
    summary = LinkSummary(
        batch_id=batch_id,
        rows=len(linked),
        persons=len(set(person_anchor)),
        households=len(set(household_anchor)),
        by_method={str(key): int(value) for key, value in by_method.items()},
        review_pairs=len(review_rows),
        candidate_pairs=result.pairs_by_rule,
        persons_with_two_numbers=len(conflicting),
    )
    log.info(
        "linked %s rows into %s persons and %s households (%s); %s pairs for review",
        f"{summary.rows:,}",
        f"{summary.persons:,}",
        f"{summary.households:,}",
        ", ".join(f"{k} {v:,}" for k, v in sorted(summary.by_method.items())),
        f"{summary.review_pairs:,}",
    )
    return summary


def record_decisions(warehouse: Warehouse) -> int:
    """Keep the decisions people filled into match_review (any batch), to apply on every later run."""
    review = warehouse.table("match_review")
    decisions = warehouse.table("match_decisions")
    with warehouse.engine.begin() as connection:
        one_writer_at_a_time(connection, "keys")
        filled = connection.execute(
            select(review.c.row_hash_1, review.c.row_hash_2, review.c.decision, review.c.batch_id).where(
                review.c.decision.in_(["same", "different"])
            )
        ).all()
        for hash_1, hash_2, decision, batch_id in filled:
            connection.execute(
                delete(decisions).where(decisions.c.row_hash_1 == hash_1, decisions.c.row_hash_2 == hash_2)
            )
            connection.execute(
                decisions.insert().values(
                    row_hash_1=hash_1, row_hash_2=hash_2, decision=decision, decided_in_batch=batch_id
                )
            )
    return len(filled)
