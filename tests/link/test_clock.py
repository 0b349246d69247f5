"""The link's task log: each step's time, and with the steps' shares which step of how many
and about how long is left."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from lookback.link import stage


def test_each_step_says_how_far_the_link_is_and_the_time_left(caplog: pytest.LogCaptureFixture) -> None:
    ticks: Iterator[float] = iter([0.0, 10.0, 40.0, 50.0])
    clock = stage.Clock("b1", {"read": 1.0, "linked": 3.0, "written": 1.0}, now=lambda: next(ticks))
    with caplog.at_level(logging.INFO, logger="lookback.link.stage"):
        clock.lap("read 1,000 rows", "read")
        clock.lap("linked", "linked")
        clock.lap("a step of no share")
    assert caplog.messages == [
        "link b1: read 1,000 rows in 10.0 s (10.0 s so far; step 1 of 3, about 40 s left)",
        "link b1: linked in 30.0 s (40.0 s so far; step 2 of 3, about 10 s left)",
        "link b1: a step of no share in 10.0 s (50.0 s so far)",
    ]
