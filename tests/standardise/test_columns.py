"""A source's records standardised one by one and by the Standardiser, which converts each
distinct text of a column once: the same values and problems."""

from __future__ import annotations

import pytest

from lookback.sources import SourceSpec
from lookback.standardise.columns import Standardiser, standardise_values
from lookback.standardise.places import county_resolver

TEXTS = ["", " ", "-", "王伟", "曾?", "431224198001011238", "431224198001011000", "4.31224E+17",
         " 431224 19800101 1238", "'43123019900101019x", "４３３０３０１９６５０３１５００２６", "431224800101123",
         "43122419800101123842", "2020-06-01", "20200601", "2018年7月", "43983", "1,050.5", "350元", "溆浦县", "通道",
         "本人", "之子", "正常", "a、b", "3人", "2020年", "青石村", "4312240000000000001"]  # fmt: skip


@pytest.mark.parametrize("source", ["registry", "dibao", "insurance", "housing", "hukou"])
def test_standardiser_gives_what_standardise_values_gives(specs: dict[str, SourceSpec], source: str) -> None:
    spec = specs[source]
    resolver = county_resolver()
    standardiser = Standardiser(spec, resolver, cache_size=7)  # small: remembered texts are forgotten too
    records = [
        [TEXTS[(shift + index * 5) % len(TEXTS)] for index in range(len(spec.columns))]
        for shift in range(3 * len(TEXTS))
    ]
    # Converted in two chunks, the second meeting texts the first remembered or forgot.
    for chunk in (records[:30], records[30:]):
        columns, problems = standardiser.convert([list(texts) for texts in zip(*chunk, strict=True)])
        assert len(columns) == len(standardiser.names)
        for number, raws in enumerate(chunk):
            expected, expected_problems = standardise_values(
                spec, {column.name: raw for column, raw in zip(spec.columns, raws, strict=True)}, resolver
            )
            assert {name: values[number] for name, values in zip(standardiser.names, columns, strict=True)} == expected
            assert [problem for row, problem in problems if row == number] == expected_problems
        rows = [row for row, _problem in problems]
        assert rows == sorted(rows)


def test_standardiser_binds_each_value(specs: dict[str, SourceSpec]) -> None:
    spec = specs["insurance"]
    standardiser = Standardiser(spec, county_resolver(), bind={"birth_date": str})
    texts = [
        ["2020-06-01", "", "2020-06-01"] if column.name == "birth_date" else ["", "", ""] for column in spec.columns
    ]
    columns, _problems = standardiser.convert(texts)
    assert columns[standardiser.names.index("birth_date")] == ("2020-06-01", "None", "2020-06-01")
