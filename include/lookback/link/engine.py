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

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lookback.link.alone import among_other_numbers, doubt_alone_numbers, uncorroborated, without_place
from lookback.link.blocking import candidate_pairs
from lookback.link.comparisons import AGREEING_NUMBERS, compare_pairs, counted_once
from lookback.link.config import LinkageSettings
from lookback.link.decide import Candidates, Evidence, decide, number_owners, summed_weights
from lookback.link.view import second_pass_view
from lookback.link.weights import (
    estimate_weights,
    person_facts,
    seldom_twice,
    supported_pairs,
    term_frequency_adjustment,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkResult:
    """Per record: its cluster, how it was linked, and the weight of the deciding pair."""

    records: pd.DataFrame  # the records given, with cluster, match_method, match_score
    review: pd.DataFrame  # pairs for people: i, j, weight, explanation
    weights: Mapping[str, Mapping[str, float]]  # field → level label → weight
    pairs_by_rule: Mapping[str, int]


def link_records(records: pd.DataFrame, settings: LinkageSettings) -> LinkResult:
    """Link all records; returns each record's cluster and how it got there."""
    work, cluster, foreign = second_pass_view(records)
    alone = uncorroborated(records, cluster)
    cluster = np.where(alone, -1, cluster)
    unresolved = cluster < 0
    log.info(
        "deterministic pass: %s of %s rows linked on identity number (%s carry someone else's number)",
        f"{(~unresolved).sum():,}",
        f"{len(records):,}",
        f"{foreign.sum():,}",
    )
    level_weights = estimate_weights(work, cluster, settings)
    left, right, by_rule = candidate_pairs(work, unresolved, settings, cluster)
    same_cluster = (cluster[left] == cluster[right]) & (cluster[left] >= 0)
    left, right = left[~same_cluster], right[~same_cluster]
    # Put the row of the second pass on the left.
    swap = ~unresolved[left]
    left, right = np.where(swap, right, left), np.where(swap, left, right)
    levels = compare_pairs(work, left, right, settings.comparisons)
    counted_once(levels, settings.comparisons)
    numbered = records["id"].notna().to_numpy() & ~foreign
    claims = (alone[left] & numbered[right]) | (alone[right] & numbered[left])
    doubt_alone_numbers(levels, claims, settings.comparisons)
    weight = summed_weights(levels, level_weights)
    weight += term_frequency_adjustment(work, left, levels, settings.comparisons)
    log.info("probabilistic pass: %s candidate pairs compared", f"{len(left):,}")

    # Pairs whose identity numbers agree or nearly agree (a check character, a transposed
    # pair, one digit): evidence strong enough for a row already placed to bring in a person.
    # Agreeing on the first 15 digits is not: two people born the same day in one county do.
    vouched = np.zeros(len(left), dtype=bool)
    for position, comparison in enumerate(settings.comparisons):
        if comparison.field == "identity":
            vouched |= np.isin(levels[:, position], comparison.indices(AGREEING_NUMBERS))
    supported = supported_pairs(records, left, right, levels, level_weights, settings)
    supported &= ~without_place(claims, levels, settings.comparisons)
    decisions = decide(
        records,
        cluster,
        Candidates(left, right, weight, levels, vouched=vouched, supported=supported),
        settings,
        Evidence(
            owner=number_owners(records, cluster, foreign),
            # Where no row holds a valid number (another data set: FEBRL), a placed row
            # brings in only what its number vouches for, as ever.
            numbered=numbered if numbered.any() else None,
            seldom=seldom_twice(work, cluster, settings.seldom_twice),
            facts=person_facts(work, alone, settings, level_weights),
        ),
    )
    assigned, method, score, review = decisions.assigned, decisions.method, decisions.score, decisions.review
    # A row whose number no other row carries keeps it, and its own person, unless the
    # second pass placed it with another person: then the number is someone else's.
    claimed = alone & among_other_numbers(records, assigned, alone | foreign)
    kept = alone & ~claimed
    method[kept], score[kept] = "id_exact", np.inf
    # Nor is such a row put to people: short of a strong claim, its number is its own.
    review = review[~alone[review["i"].to_numpy(dtype=np.int64)]].reset_index(drop=True)
    foreign = foreign | claimed
    result = records.copy()
    # A valid number the row carries that is someone else's (a child entered with a parent's).
    result["borrowed"] = foreign & records["id"].notna().to_numpy()
    result["cluster"] = assigned
    result["match_method"] = method
    result["match_score"] = score
    weights = {
        comparison.field: {level.label: float(table[i]) for i, level in enumerate(comparison.levels)}
        for comparison, table in zip(settings.comparisons, level_weights, strict=True)
    }
    return LinkResult(records=result, review=review, weights=weights, pairs_by_rule=by_rule)


def explain_levels(
    levels: Iterable[int],
    settings: LinkageSettings,
    weights: Mapping[str, Mapping[str, float]],
    total: float | None = None,
) -> str:
    """``name exact (+9.1); identity null; birth_date exact (+7.3)…``: a pair's comparison in
    words; given the pair's total weight, what the name's frequency added is named too."""
    parts = []
    summed = 0.0
    for level_index, comparison in zip(levels, settings.comparisons, strict=True):
        if level_index < 0:
            parts.append(f"{comparison.field} missing (0)")
            continue
        level = comparison.levels[level_index]
        weight = weights[comparison.field][level.label]
        summed += weight
        parts.append(f"{comparison.field} {level.label} ({weight:+.1f})")
    if total is not None and abs(total - summed) >= 0.05:
        parts.append(f"name frequency ({total - summed:+.1f})")
    return "; ".join(parts)
