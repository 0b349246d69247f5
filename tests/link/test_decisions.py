"""Decisions people made on pairs of rows, applied to the linkage's clusters."""

from __future__ import annotations

import random

import numpy as np
import pytest

from lookback.link.stage import _decided_clusters


def _one_at_a_time(
    clusters: np.ndarray, methods: np.ndarray, scores: np.ndarray, pairs: list[tuple[int, int, str]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The decisions' meaning, spelled out: each relabels every row of a cluster."""
    clusters, methods, scores = clusters.copy(), methods.copy(), scores.copy()
    next_cluster = int(clusters.max()) + 1
    for i, j, decision in pairs:
        if decision == "same":
            clusters[clusters == clusters[i]] = clusters[j]
            methods[i] = "manual"
        elif clusters[i] == clusters[j]:
            leaving = i if methods[i] != "id_exact" or methods[j] == "id_exact" else j
            clusters[leaving], methods[leaving], scores[leaving] = next_cluster, "manual", np.nan
            next_cluster += 1
    return clusters, methods, scores


@pytest.mark.parametrize("seed", range(40))
def test_decisions_taken_in_turn_give_the_clusters_relabelling_gives(seed: int) -> None:
    draw = random.Random(seed)
    rows = draw.randint(2, 60)
    clusters = np.array([draw.randrange(0, rows, 3) for _ in range(rows)], dtype=np.int64)
    methods = np.array([draw.choice(["id_exact", "probabilistic", "alone"]) for _ in range(rows)], dtype=object)
    scores = np.array([draw.random() for _ in range(rows)])
    pairs = [
        (draw.randrange(rows), draw.randrange(rows), draw.choice(["same", "different", "different"]))
        for _ in range(draw.randint(0, 3 * rows))
    ]
    given = clusters.tolist(), methods.tolist()
    got = _decided_clusters(clusters, methods, scores, pairs)
    expected = _one_at_a_time(clusters, methods, scores, pairs)
    assert got[0].tolist() == expected[0].tolist()
    assert got[1].tolist() == expected[1].tolist()
    np.testing.assert_array_equal(got[2], expected[2])
    assert (clusters.tolist(), methods.tolist()) == given  # the input is left as it was


def test_a_row_decided_away_and_back_rejoins() -> None:
    clusters = np.array([7, 7, 7, 9], dtype=np.int64)
    methods = np.array(["id_exact", "probabilistic", "id_exact", "alone"], dtype=object)
    scores = np.array([1.0, 0.5, 1.0, np.nan])
    pairs = [(0, 1, "different"), (1, 3, "same"), (3, 2, "same")]
    decided, method, _ = _decided_clusters(clusters, methods, scores, pairs)
    # Row 1 leaves (new cluster 10), joins row 3's cluster 9, which then joins cluster 7.
    assert decided.tolist() == [7, 7, 7, 7]
    assert method.tolist() == ["id_exact", "manual", "id_exact", "manual"]
