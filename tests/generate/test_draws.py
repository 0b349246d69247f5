"""Draws takes the same draws from the same stream as random.Random, leaving the same state."""

from __future__ import annotations

import random

import pytest

from lookback.generate.draws import Draws


@pytest.mark.parametrize("seed", [0, 2020, "2020:P0000001:registry", 2**80 + 7])
def test_choices_and_ranges_are_the_standard_ones(seed: int | str) -> None:
    standard, inline = random.Random(seed), Draws(seed)
    sizes = [*range(1, 70), 127, 128, 129, 1000, 2**31 - 1, 2**31, 2**40 + 3]
    for size in sizes:
        options = range(size)
        assert [standard.choice(options) for _ in range(50)] == [inline.choice(options) for _ in range(50)]
        assert [standard.randrange(-3, size) for _ in range(50)] == [inline.randrange(-3, size) for _ in range(50)]
        assert [standard.randrange(size) for _ in range(20)] == [inline.randrange(size) for _ in range(20)]
        assert standard.randrange(0, 2 * size, 2) == inline.randrange(0, 2 * size, 2)
        assert standard.random() == inline.random()
    assert standard.choice("青石白马龙凤") == inline.choice("青石白马龙凤")
    assert standard.sample(range(1000), 30) == inline.sample(range(1000), 30)
    assert standard.getstate() == inline.getstate()


def test_empty_choices_and_ranges_fail_as_the_standard_ones() -> None:
    with pytest.raises(IndexError):
        Draws(1).choice([])
    with pytest.raises(ValueError):
        Draws(1).randrange(5, 5)
    with pytest.raises(ValueError):
        Draws(1).randrange(0)
