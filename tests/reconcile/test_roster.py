"""The visit roster as a cadre reads it: the items to check in words, and one spelling per
township and village so that one stop of the route is not split in two."""

from __future__ import annotations

from typing import Any

from lookback.reconcile.catalogue import load_rules
from lookback.reconcile.roster import OpenItem, _one_spelling, check_items


def _item(code: str, finding_id: str, name: str = "", evidence: str = "") -> OpenItem:
    order = [rule.code for rule in load_rules()].index(code)
    return OpenItem(order, finding_id, code, name, evidence)


def test_items_to_check_are_numbered_titles_in_the_catalogues_order_with_whom_and_why() -> None:
    titles = {rule.code: rule.title_zh for rule in load_rules()}
    items = {
        _item("HOUSING_UNSAFE", "HOUSING_UNSAFE:H1", "张三", "住建: 最近一次房屋鉴定等级 = D"),
        _item("ID_INVALID", "ID_INVALID:P1", "李四"),
        _item("MED_NOT_INSURED", "MED_NOT_INSURED:P2", "", "医保: 2020年无参保缴费记录"),
    }
    assert check_items(items).split("\n") == [
        f"1. {titles['ID_INVALID']}（李四）",
        f"2. {titles['MED_NOT_INSURED']}：医保: 2020年无参保缴费记录",
        f"3. {titles['HOUSING_UNSAFE']}（张三）：住建: 最近一次房屋鉴定等级 = D",
    ]
    assert check_items([]) == ""


def test_an_identity_number_in_the_evidence_is_masked_but_a_household_number_is_not() -> None:
    text = check_items(
        [_item("ID_CONFLICT", "ID_CONFLICT:1", "王五", "证件号码 431224198001011234；户编号 431224108206000064")]
    )
    assert "431224198001011234" not in text and "431224********1234" in text
    assert "户编号 431224108206000064" in text


def _households(*places: tuple[str, str | None, str | None]) -> list[dict[str, Any]]:
    return [{"county_code": county, "township": township, "village": village} for county, township, village in places]


def test_a_township_is_named_as_the_division_table_names_it() -> None:
    rows = _households(("431224", "卢峰", "石牌村"), ("431224", "卢峰镇", "石牌村"), ("431224", " 卢 峰 ", "石牌村"))
    _one_spelling(rows)
    assert {row["township"] for row in rows} == {"卢峰镇"}


def test_an_unknown_township_and_its_villages_take_their_most_used_spelling() -> None:
    rows = _households(
        ("431224", "新塘", "青石"),
        ("431224", "新塘乡", "青石村"),
        ("431224", "新塘乡", "青石村"),
        ("431224", "新塘乡", "青石村委会"),
        ("431224", "新塘", "白沙"),
        ("431224", "新塘", "白沙村"),  # a tie: the longer spelling
    )
    _one_spelling(rows)
    assert {row["township"] for row in rows} == {"新塘乡"}
    assert [row["village"] for row in rows] == ["青石村"] * 4 + ["白沙村"] * 2


def test_places_of_other_counties_and_missing_places_stay_apart() -> None:
    rows = _households(("431224", "卢峰", "青石"), ("433130", "卢峰", "青石村"), ("431224", None, None), ("", "", ""))
    _one_spelling(rows)
    assert [(row["township"], row["village"]) for row in rows] == [
        ("卢峰镇", "青石"),
        ("卢峰", "青石村"),
        (None, None),
        ("", ""),
    ]
