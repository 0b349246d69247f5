"""Properties of a record's standardisation: every text of every column type gives values
or a recorded problem, the Standardiser (each distinct text once, valid numbers checked all
at once) gives what standardise_values gives, and a problem's words show an identity
number masked."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from lookback.sources import SourceSpec, load_source_specs
from lookback.standardise.columns import Standardiser, standardise_values
from lookback.standardise.places import county_resolver
from tests.standardise.strategies import (
    awkward_text,
    delivered_forms,
    identity_like_runs,
    reveal,
    valid_identity_numbers,
)

SPECS = load_source_specs()
cells = st.one_of(
    awkward_text,
    valid_identity_numbers().flatmap(delivered_forms),
    valid_identity_numbers(ending_000=True),
    st.sampled_from(["", "溆浦县", "通道", "2020-06-01", "43983", "1,050.5", "3人", "本人", "户主", "青石村村委会"]),
)


@st.composite
def chunks(draw: st.DrawFn, spec: SourceSpec) -> list[list[str]]:
    """Records of a source: each column's texts drawn from a few, as texts repeat."""
    pool = draw(st.lists(cells, min_size=1, max_size=4))
    rows = draw(st.integers(1, 5))
    return [[draw(st.sampled_from(pool)) for _column in spec.columns] for _row in range(rows)]


@given(st.sampled_from(sorted(SPECS)), st.data())
def test_standardiser_gives_what_standardise_values_gives(source: str, data: st.DataObject) -> None:
    spec, resolver = SPECS[source], county_resolver()
    standardiser = Standardiser(spec, resolver, cache_size=5)
    for _chunk in range(2):  # the second meets texts the first remembered or forgot
        records = data.draw(chunks(spec))
        columns, problems = standardiser.convert([list(texts) for texts in zip(*records, strict=True)])
        for number, raws in enumerate(records):
            expected, expected_problems = standardise_values(
                spec, {column.name: raw for column, raw in zip(spec.columns, raws, strict=True)}, resolver
            )
            assert {name: values[number] for name, values in zip(standardiser.names, columns, strict=True)} == expected
            assert [problem for row, problem in problems if row == number] == expected_problems


identity_columns = [
    (source, column.name)
    for source, spec in SPECS.items()
    for column in spec.columns
    if column.type == "identity_number"
]


@given(
    st.sampled_from(identity_columns),
    valid_identity_numbers().flatmap(identity_like_runs),
    st.text(max_size=3),
)
@example(("dibao", "head_identity_number"), "11000020000101-0019", "")
def test_a_problem_shows_an_identity_number_masked(column: tuple[str, str], run: str, noise: str) -> None:
    source, name = column
    spec = SPECS[source]
    delivered = {name: noise + run + noise}
    _values, problems = standardise_values(spec, delivered, county_resolver())
    for problem in problems:
        if problem.column == name:
            shown = problem.message.rpartition(": ")[2]  # the words before it may say X
            assert len(reveal(shown)) <= 10 + 2 * len(reveal(noise)), problem.message
