"""The cycle collector paused for work that makes millions of objects, and as it was after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from lookback import collector


@pytest.fixture(autouse=True)
def collector_enabled() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.enable()
    yield
    if not enabled:
        gc.disable()


def test_paused_stops_the_collector_for_the_block() -> None:
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_paused_starts_it_again_when_the_block_fails() -> None:
    with pytest.raises(RuntimeError, match="failed"), collector.paused():
        raise RuntimeError("failed")
    assert gc.isenabled()


def test_paused_leaves_a_stopped_collector_stopped() -> None:
    gc.disable()
    with collector.paused():
        assert not gc.isenabled()
    assert not gc.isenabled()
