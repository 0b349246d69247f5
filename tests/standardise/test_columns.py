"""A source's records standardised one by one and by the Standardiser, which converts each
distinct text of a column once: the same values and problems."""

from __future__ import annotations

import pytest

from lookback.sources import SourceSpec
from lookback.standardise.columns import Standardiser, standardise_values
from lookback.standardise.places import county_resolver

TEXTS = ["", " ", "-", "王伟", "曾?", "431224198001011238", "431224198001011000", "4.31224E+17", "2020-06-01",
         "20200601", "2018年7月", "43983", "1,050.5", "350元", "溆浦县", "通道", "本人", "之子", "正常", "a、b", "3人",
         "2020年", "青石村", "4312240000000000001"]  # fmt: skip


@pytest.mark.parametrize("source", ["registry", "dibao", "insurance", "housing", "hukou"])
def test_standardiser_gives_what_standardise_values_gives(specs: dict[str, SourceSpec], source: str) -> None:
    spec = specs[source]
    resolver = county_resolver()
    standardiser = Standardiser(spec, resolver, cache_size=7)  # small: remembered texts are forgotten too
    for shift in range(3 * len(TEXTS)):
        raws = [TEXTS[(shift + index * 5) % len(TEXTS)] for index in range(len(spec.columns))]
        expected, expected_problems = standardise_values(
            spec, {column.name: raw for column, raw in zip(spec.columns, raws, strict=True)}, resolver
        )
        values, problems = standardiser.row(raws)
        assert dict(zip(standardiser.names, values, strict=True)) == expected
        assert problems == expected_problems
