"""The derived columns the suites check, on small hand-made staged rows."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import pytest

from lookback.validate.datasets import derived_of, with_checks

AS_OF = date(2020, 6, 30)


def _registry(rows: list[tuple[str, str, str | None]]) -> pd.DataFrame:
    """(household, relation, birth date) per row; a birth date means a valid number."""
    return pd.DataFrame(
        {
            "source_row": range(1, len(rows) + 1),
            "household_number": [row[0] for row in rows],
            "relation_to_head": [row[1] for row in rows],
            "identity_number": ["4312241980010112X" if row[2] else None for row in rows],
            "identity_number_birth_date": [row[2] for row in rows],
        }
    )


def _values(frame: pd.DataFrame, column: str) -> list[Any]:
    return [None if pd.isna(value) else value for value in frame[column]]


def test_registry_ages_relations_and_heads() -> None:
    frame = with_checks(
        "registry",
        _registry(
            [
                ("A", "head", "1970-03-01"),  # 0: a head of 50
                ("A", "son", "1995-01-01"),  # 1: younger than his father: fits
                ("A", "daughter", "1965-01-01"),  # 2: older than the head: does not fit
                ("A", "mother", "1945-01-01"),  # 3: older than the head: fits
                ("B", "head", "2012-01-01"),  # 4: a 户主 of 8: does not fit
                ("B", "head", "1980-01-01"),  # 5: a second head in household B
                ("C", "spouse", None),  # 6: household C has no head; no birth date known
                ("A", "son", "2020-07-01"),  # 7: born the day after the as-of date: age -1
            ]
        ),
        AS_OF,
    )
    assert _values(frame, "age")[:6] == [50, 25, 55, 75, 8, 40]
    assert _values(frame, "age")[7] == -1
    assert _values(frame, "heads_in_household") == [1, 1, 1, 1, 2, 2, 0, 1]
    # Household B has two heads: a member's fit is judged against the first; here there is none.
    assert _values(frame, "age_fits_relation")[:7] == [True, True, False, True, False, True, None]
    assert _values(frame, "identity_number_valid") == [True] * 6 + [False, True]


def test_allowance_members_against_supported_members() -> None:
    frame = with_checks(
        "dibao",
        pd.DataFrame(
            {
                "source_row": [1, 2, 3, 4],
                "county_code": "431224",
                "village_key": "青山",
                "head_name": ["刘芳", "刘芳", "王伟", "王伟"],
                "head_identity_number_raw": ["A", "A", "B", "B"],
                "head_identity_number": ["A", "A", None, None],
                "identity_number": ["A", None, "B", "C"],
                "relation_to_head": ["head", "son", "head", "head"],
                "supported_members": [2, 2, 3, None],
                "support_start": ["2018-07-01", "2018-07-01", "2021-01-01", None],
            }
        ),
        AS_OF,
    )
    assert _values(frame, "members_listed") == [2, 2, 2, 2]
    assert _values(frame, "members_match_supported") == [True, True, False, None]  # 3 paid for, 2 listed
    assert _values(frame, "heads_in_household") == [1, 1, 2, 2]
    assert _values(frame, "support_start_not_after_as_of") == [True, True, False, None]
    assert _values(frame, "head_identity_number_valid") == [True, True, False, False]


def test_insurance_housing_and_hukou_dates() -> None:
    insurance = with_checks(
        "insurance",
        pd.DataFrame(
            {
                "source_row": [1, 2, 3],
                "identity_number": ["X", "Y", None],
                "birth_date": ["1970-01-01", "1970-01-02", "1970-01-01"],
                "identity_number_birth_date": ["1970-01-01", "1970-01-01", None],
                "year": [2020, 2021, 2019],
            }
        ),
        AS_OF,
    )
    assert _values(insurance, "birth_date_matches_identity") == [True, False, None]
    assert _values(insurance, "year_not_after_as_of") == [True, False, True]
    housing = with_checks(
        "housing",
        pd.DataFrame(
            {
                "source_row": [1, 2, 3],
                "head_identity_number": ["X", None, "Z"],
                "appraisal_date": ["2019-01-01", "2020-08-01", None],
                "completion_date": ["2019-06-01", "2020-07-01", "2019-01-01"],
            }
        ),
        AS_OF,
    )
    assert _values(housing, "appraisal_not_after_as_of") == [True, False, None]
    assert _values(housing, "completion_not_before_appraisal") == [True, False, None]
    hukou = with_checks(
        "hukou",
        pd.DataFrame({"source_row": [1, 2], "identity_number": [None, "X"], "cancellation_date": ["2020-01-01", None]}),
        AS_OF,
    )
    assert _values(hukou, "cancellation_not_after_as_of") == [True, None]
    assert _values(hukou, "identity_number_valid") == [False, True]


def test_every_derived_column_is_made() -> None:
    """Each source's YAML documents each derived column, and exactly those are made."""
    staged = {
        "registry": _registry([("A", "head", "1970-01-01")]),
        "dibao": pd.DataFrame(
            {
                "source_row": [1],
                "county_code": ["431224"],
                "village_key": ["v"],
                "head_name": ["n"],
                "head_identity_number_raw": ["A"],
                "head_identity_number": ["A"],
                "identity_number": ["A"],
                "relation_to_head": ["head"],
                "supported_members": [1],
                "support_start": ["2018-07-01"],
            }
        ),
        "insurance": pd.DataFrame(
            {
                "source_row": [1],
                "identity_number": ["X"],
                "birth_date": ["1970-01-01"],
                "identity_number_birth_date": ["1970-01-01"],
                "year": [2020],
            }
        ),
        "housing": pd.DataFrame(
            {"source_row": [1], "head_identity_number": ["X"], "appraisal_date": [None], "completion_date": [None]}
        ),
        "hukou": pd.DataFrame({"source_row": [1], "identity_number": ["X"], "cancellation_date": [None]}),
    }
    for source, frame in staged.items():
        made = set(with_checks(source, frame, AS_OF).columns) - set(frame.columns)
        assert made == set(derived_of(source)), source
        assert all(derived_of(source).values()), source  # each one described


def test_a_derived_column_names_only_columns_the_source_stages(tmp_path: Any) -> None:
    import pytest
    import yaml

    from lookback.errors import ConfigError
    from lookback.paths import sources_dir
    from lookback.sources import load_source_spec

    document = yaml.safe_load((sources_dir() / "hukou.yaml").read_text(encoding="utf-8"))
    document["derived"]["cancellation_not_after_as_of"]["columns"] = ["cancelled_on"]
    document["derived"]["identity_number_valid"]["kind"] = "present"
    document["derived"]["extra"] = {"kind": "not_before", "columns": ["cancellation_date"], "description": "x"}
    path = tmp_path / "hukou.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_source_spec(path)
    message = str(error.value)
    assert "derived.cancellation_not_after_as_of.columns[0]: names no column: 'cancelled_on'" in message
    assert "derived.extra.columns: a not_before column reads 2 column(s)" in message


def test_every_kind_of_derived_column_is_computed() -> None:
    from lookback.validate.derive import COMPUTE
    from lookback.validate.derived import KINDS

    assert set(COMPUTE) == set(KINDS)


def test_a_table_read_in_chunks_is_the_frame_of_all_its_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import column, create_engine, select, table, text

    from lookback.validate import datasets

    engine = create_engine("sqlite://")
    rows = [
        (
            row,
            f"43{row % 3}",
            None if 9 <= row <= 16 else row * 2,
            f"name {row}",
            "2020-01-0" + str(1 + row % 9),
            row / 3,
        )
        for row in range(1, 31)
    ]
    with engine.begin() as connection:
        connection.execute(
            text("create table t (row integer, county text, count integer, name text, day text, x real)")
        )
        connection.execute(
            text("insert into t values (:a, :b, :c, :d, :e, :f)"), [dict(zip("abcdef", r, strict=True)) for r in rows]
        )
        names = ("row", "county", "count", "name", "day", "x")
        query: Any = select(*(column(name) for name in names)).select_from(table("t")).order_by(column("row"))
        expected = pd.DataFrame.from_records(rows, columns=list(names))
        monkeypatch.setattr(datasets, "READ_CHUNK", 8)  # four chunks, the last short
        frame = datasets._read_fast(connection, query)
        empty = datasets._read_fast(connection, query.where(column("row") < 0))
    assert list(frame.dtypes) == list(expected.dtypes)  # NULL in the whole second chunk: float, as in one frame
    pd.testing.assert_frame_equal(frame, expected)
    counties = frame["county"].to_numpy(dtype=object)
    assert counties[0] is counties[3] and counties[0] is counties[9]  # equal strings one object, across chunks
    assert list(empty.columns) == list(expected.columns) and empty.empty
