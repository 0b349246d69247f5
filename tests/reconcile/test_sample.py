"""The province's spot check (抽样核查): sizes from confidence and margin, shares per stratum,
a reproducible draw in which every stratum is represented, its lists, the inspectors'
results read back (all or nothing) and the per-county estimate with its Wilson interval,
checked against the interval worked out by hand."""

from __future__ import annotations

import csv
import math
import shutil
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import create_engine, text

from lookback.errors import LookbackError
from lookback.publish.sample_lists import publish_sample
from lookback.reconcile.sample import (
    INSPECTOR_HEADERS,
    RESULT,
    allocate,
    draw_sample,
    read_sample_results,
    sample_estimates,
    sample_size,
)
from lookback.run import open_warehouse
from tests import steps

AS_OF = date(2020, 6, 30)
Z_95 = 1.959963984540054  # the normal distribution's 97.5th percentile, from a table


def _by_hand(households: int, z: float = Z_95, margin: float = 0.05) -> int:
    first = z * z * 0.5 * 0.5 / (margin * margin)
    return math.ceil(first / (1 + (first - 1) / households))


@pytest.mark.parametrize("households", [1, 10, 312, 5_000, 1_000_000])
def test_the_size_estimates_a_share_within_the_margin_at_the_confidence(households: int) -> None:
    assert sample_size(households) == min(households, _by_hand(households))
    assert sample_size(312) == 173  # 384.1 before the correction for 312 households


def test_a_wider_margin_or_a_lower_confidence_needs_fewer_households() -> None:
    assert sample_size(5_000, margin=0.10) < sample_size(5_000) < sample_size(5_000, confidence=0.99)
    assert sample_size(0) == 0
    with pytest.raises(LookbackError, match="between 0 and 1"):
        sample_size(100, confidence=95)


def test_the_size_is_shared_in_proportion_every_stratum_at_least_one() -> None:
    # 6 after one each: 3.0, 1.8, 0.9, 0.3; then the largest remainders, c (0.9) and b (0.8).
    assert allocate(10, {"a": 50, "b": 30, "c": 15, "d": 5}) == {"a": 4, "b": 3, "c": 2, "d": 1}
    assert allocate(2, {"a": 50, "b": 30, "c": 15}) == {"a": 1, "b": 1, "c": 1}  # each stratum represented
    assert allocate(100, {"a": 3, "b": 2, "empty": 0}) == {"a": 3, "b": 2}  # never more than there are
    shares = allocate(173, {"a": 114, "b": 99, "c": 46, "d": 39, "e": 9, "f": 5})
    assert sum(shares.values()) == 173 and all(share >= 1 for share in shares.values())


def _query(url: str, sql: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(text(sql))]
    engine.dispose()
    return rows


@pytest.fixture(scope="module")
def looked_back(tmp_path_factory: pytest.TempPathFactory, generated_batch: Path) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("sample")
    landing = root / "landing" / "b1"
    shutil.copytree(generated_batch, landing)
    url = f"sqlite:///{root / 'warehouse.sqlite'}"
    steps.run_all(landing, root / "runs" / "b1", AS_OF, url)
    return root, url


@pytest.mark.integration
def test_the_same_seed_draws_the_same_households_and_every_stratum_is_represented(
    looked_back: tuple[Path, str],
) -> None:
    _root, url = looked_back
    with open_warehouse(url) as warehouse:
        first = draw_sample(warehouse, "b1", seed=11, sample_id="first")
        again = draw_sample(warehouse, "b1", seed=11, sample_id="again")
        draw_sample(warehouse, "b1", seed=12, sample_id="other")
    drawn = {
        sample: {
            row["household_key"] for row in _query(url, f"select * from sample_households where sample_id = '{sample}'")
        }
        for sample in ("first", "again", "other")
    }
    assert drawn["first"] == drawn["again"] and drawn["first"] != drawn["other"]
    assert first.per_county == again.per_county
    roster = _query(url, "select * from visit_roster where run_id = 'b1'")
    strata = Counter(
        (row["county_code"], f"{row['visit_category']}|{'open' if row['open_findings'] else 'clear'}") for row in roster
    )
    taken = Counter(
        (row["county_code"], row["stratum"])
        for row in _query(url, "select * from sample_households where sample_id = 'first'")
    )
    assert set(taken) == set(strata)  # every stratum of every county
    for county, (size, households) in first.per_county.items():
        assert households == sum(count for (place, _), count in strata.items() if place == county)
        represented = sum(1 for place, _ in strata if place == county)  # one at least from each stratum
        assert size == min(households, max(sample_size(households), represented))
    recorded = _query(url, "select * from samples where sample_id = 'first'")
    assert [(row["run_id"], row["seed"], row["confidence"], row["margin"]) for row in recorded] == [
        ("b1", 11, 0.95, 0.05)
    ]


@pytest.mark.integration
def test_the_lists_print_and_the_inspectors_results_give_the_estimate_and_its_interval(
    looked_back: tuple[Path, str], tmp_path: Path
) -> None:
    _root, url = looked_back
    with open_warehouse(url) as warehouse:
        drawn = draw_sample(warehouse, "b1", seed=3, per_county=8, sample_id="spot")
        files = publish_sample(warehouse, "spot", tmp_path / "spot")
    assert all(size == min(8, households) for size, households in drawn.per_county.values())
    with (tmp_path / "spot" / "sample.csv").open(encoding="utf-8-sig", newline="") as handle:
        listed = list(csv.DictReader(handle))
    assert len(listed) == sum(size for size, _ in drawn.per_county.values())
    workbook = next(path for path in files if path.suffix == ".xlsx")
    county = workbook.stem.split(" ")[0]
    book = openpyxl.load_workbook(workbook)
    header = [cell.value for cell in book.worksheets[0][2]]
    assert header[-5:-1] == list(INSPECTOR_HEADERS) and header[-1] == "户编号（系统）"
    rows = [(sheet, number) for sheet in book.worksheets for number in range(3, sheet.max_row + 1)]
    assert len(rows) == drawn.per_county[county][0]
    # A hand-made case: two of the county's households are not as recorded.
    for index, (sheet, number) in enumerate(rows):
        column = {caption: position + 1 for position, caption in enumerate(header)}
        sheet.cell(number, column[RESULT]).value = "不相符" if index < 2 else "相符"
        sheet.cell(number, column["不相符事项"]).value = "家庭人口数与登记不符" if index < 2 else None
        sheet.cell(number, column["核查日期"]).value = "2020/7/10"
    returned = tmp_path / "returned.xlsx"
    book.save(returned)
    with open_warehouse(url) as warehouse:
        read = read_sample_results(warehouse, returned, "省核查组")
        estimates = {item.county_code: item for item in sample_estimates(warehouse, "spot")}
    assert (read.sample_id, read.county, read.households) == ("spot", county, len(rows))
    estimate = estimates[county]
    n, x = len(rows), 2
    assert (estimate.checked, estimate.not_matching) == (n, x)
    # The Wilson interval worked out by hand.
    p, z = x / n, Z_95
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert estimate.share == pytest.approx(p)
    assert estimate.low == pytest.approx(centre - half, abs=1e-9)
    assert estimate.high == pytest.approx(centre + half, abs=1e-9)
    others = [item for code, item in estimates.items() if code != county]
    assert others and all(item.checked == 0 and item.share is None for item in others)


@pytest.mark.integration
def test_a_malformed_result_list_changes_nothing_and_names_sheet_and_row(
    looked_back: tuple[Path, str], tmp_path: Path
) -> None:
    _root, url = looked_back
    with open_warehouse(url) as warehouse:
        draw_sample(warehouse, "b1", seed=5, per_county=4, sample_id="bad")
        files = publish_sample(warehouse, "bad", tmp_path / "bad")
    workbook = next(path for path in files if path.suffix == ".xlsx")
    book = openpyxl.load_workbook(workbook)
    header = [cell.value for cell in book.worksheets[0][2]]
    column = {caption: position + 1 for position, caption in enumerate(header)}
    rows = [(sheet, number) for sheet in book.worksheets for number in range(3, sheet.max_row + 1)]
    assert len(rows) == 4
    (first, first_row), (second, second_row), (third, third_row) = rows[:3]
    first.cell(first_row, column[RESULT]).value = "不相符"  # what did not match is not said
    second.cell(second_row, column[RESULT]).value = "差不多"
    third.cell(third_row, column["户编号（系统）"]).value = "H999999999"
    third.cell(third_row, column[RESULT]).value = "相符"
    returned = tmp_path / "returned.xlsx"
    book.save(returned)
    with open_warehouse(url) as warehouse, pytest.raises(LookbackError) as raised:
        read_sample_results(warehouse, returned, "省核查组")
    message = str(raised.value)
    assert f"sheet {first.title}, row {first_row}: 不相符 needs what did not match" in message
    assert (
        f"sheet {second.title}, row {second_row}: 核查结果（相符/不相符） '差不多' is not one of 相符 / 不相符"
        in message
    )
    assert f"sheet {third.title}, row {third_row}: household H999999999 is not in sample bad" in message
    assert "nothing was stored" in message
    assert _query(url, "select * from sample_results where sample_id = 'bad'") == []
