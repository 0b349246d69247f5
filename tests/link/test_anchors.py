"""A cluster's commonest value and its person anchor, against their meaning spelled out."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from lookback.link.stage import _anchors, _commonest, _rows_needing_hashes


def _spelled_out(frame: pd.DataFrame, value: str) -> dict[int, str]:
    """Per cluster, the value most of its rows carry, the smallest of those tied."""
    counts: dict[int, Counter[str]] = {}
    for cluster, stated in zip(frame["cluster"], frame[value], strict=True):
        if isinstance(stated, str):
            counts.setdefault(int(cluster), Counter())[stated] += 1
    return {cluster: min(counted, key=lambda text: (-counted[text], text)) for cluster, counted in counts.items()}


@pytest.mark.parametrize("seed", range(30))
def test_the_commonest_value_is_the_most_carried_then_the_smallest(seed: int) -> None:
    draw = random.Random(seed)
    rows = draw.randint(1, 80)
    frame = pd.DataFrame(
        {
            "cluster": [draw.randrange(0, max(1, rows // 3)) for _ in range(rows)],
            "id": [draw.choice(["b", "a", "c", "aa", None]) for _ in range(rows)],
        }
    )
    found = _commonest(frame, "id")
    assert dict(zip(found.index.tolist(), found.tolist(), strict=True)) == _spelled_out(frame, "id")
    assert list(found.index) == sorted(found.index)


def test_a_person_without_a_number_of_their_own_is_anchored_on_their_smallest_row_hash() -> None:
    records = pd.DataFrame(
        {
            "cluster": [7, 7, 3, 3, 5],
            "id": ["X", "Y", "Z", None, None],
            "source": ["registry", "dibao", "registry", "registry", "hukou"],
            "household": ["registry:1", None, "head:Z", None, None],
            "match_method": ["id_exact", "id_exact", "probabilistic", "probabilistic", "unmatched"],
        }
    )
    hashes = np.array(["e", "d", "c", "b", "a"], dtype=object)
    person, household = _anchors(records, hashes)
    assert person.to_dict() == {3: "row:b", 5: "row:a", 7: "id:X"}
    assert household.to_dict() == {3: "head:Z", 5: "person:row:a", 7: "registry:1"}
    needed = _rows_needing_hashes(records, pd.DataFrame({"i": [0], "j": [4]}))
    assert needed.tolist() == [True, False, True, True, True]
