"""The look-back's findings against a generated province's truth, on a hard batch large
enough for every rule to count (20,000 registry persons, every quirk in every column it
can reach): each rule with at least 50 true findings at 0.99 precision and recall."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from lookback.evaluate import evaluate_run
from lookback.generate.batch import generate_batch
from tests import steps

AS_OF = date(2020, 6, 30)
BAR = 0.99


@pytest.mark.integration
@pytest.mark.slow
def test_every_rule_on_a_hard_province_of_20000(tmp_path: Path) -> None:
    landing = tmp_path / "landing" / "hard"
    generate_batch(landing, persons=20000, seed=2020, as_of=AS_OF, noise="hard")
    out = tmp_path / "runs" / "hard"
    steps.run_all(landing, out, AS_OF, f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    scores = evaluate_run(tmp_path / "truth" / "hard", out)

    assert scores.linkage.precision is not None and scores.linkage.precision >= 0.9995
    assert scores.linkage.recall is not None and scores.linkage.recall >= 0.9985
    assert scores.hard_linkage.f1 is not None and scores.hard_linkage.f1 >= 0.985
    below = {}
    for rule in scores.findings:
        if rule.truth < 50:
            continue
        if (rule.precision or 0.0) < BAR or (rule.recall or 0.0) < BAR:
            below[rule.rule_code] = (rule.precision, rule.recall)
    assert below == {}
