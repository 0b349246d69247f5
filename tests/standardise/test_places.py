"""Places: county names, short names and codes to the 6-digit code in force now."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookback.cli import main
from lookback.paths import divisions_dir, official_divisions_dir
from lookback.standardise.places import (
    build_division_table,
    county_resolver,
    place_key,
    short_names,
    write_division_table,
)


@pytest.mark.parametrize(
    ("delivered", "code", "problem"),
    [
        ("通道侗族自治县", "431230", None),  # full name
        ("通道县", "431230", None),  # short name people use
        ("通道", "431230", None),  # bare stem
        ("怀化市通道县", "431230", None),  # with the prefecture in front
        ("湖南省怀化市溆浦县", "431224", None),  # province and prefecture
        ("湘西州龙山县", "433130", None),  # short form of an autonomous prefecture
        ("靖州县", "431229", None),  # 靖州苗族侗族自治县: two ethnic groups
        ("431224", "431224", None),  # a code
        ("431224101201", "431224", None),  # a village code starts with the county's
        ("祁阳县", "431181", None),  # historical name: 祁阳县 became 祁阳市
        ("431121", "431181", None),  # historical code resolves to the current one
        ("南县", "430921", None),  # a one-character stem stays whole
        ("邵阳", "430523", None),  # a county column holds counties: 邵阳县, not the prefecture 邵阳市
        ("长沙", "430121", None),  # 长沙县
        ("邵阳市", None, "unknown_county"),  # the prefecture itself is no county
        ("朝阳区", None, "unknown_county"),  # not in Hunan
        ("110101", None, "unknown_county"),
        ("'431224", "431224", None),  # a code protected from Excel by an apostrophe
        ("\\t431224", "431224", None),  # ... or by a typed backslash-t
        ("４３１２２４", "431224", None),  # full-width digits
        ("431224.0", "431224", None),  # a number cell
        (" 431 224 ", "431224", None),  # spaces
        ("4.31224E+11", None, "unknown_county"),  # a village code Excel showed in scientific form
        ("", None, None),
    ],
)
def test_resolve_county(delivered: str, code: str | None, problem: str | None) -> None:
    result = county_resolver().resolve(delivered)
    assert (result.county_code, result.problem) == (code, problem)


def test_short_names() -> None:
    assert short_names("通道侗族自治县") == ["通道侗族自治县", "通道县", "通道"]
    assert short_names("靖州苗族侗族自治县") == ["靖州苗族侗族自治县", "靖州县", "靖州"]
    assert short_names("溆浦县") == ["溆浦县", "溆浦"]
    assert short_names("湘西土家族苗族自治州") == ["湘西土家族苗族自治州", "湘西州", "湘西"]


def test_committed_division_table_matches_the_official_lists(tmp_path: Path) -> None:
    """include/divisions/hunan.csv is exactly what `lookback divisions` builds from the
    official lists kept in include/divisions/official/."""
    built = build_division_table(official_divisions_dir(), divisions_dir() / "historical.csv")
    counties = [d for d in built if d.level == "county" and d.status == "current"]
    assert len(counties) == 134  # Hunan's county-level divisions, 2023 edition
    write_division_table(built, tmp_path / "hunan.csv")
    committed = (divisions_dir() / "hunan.csv").read_bytes()
    assert committed == (tmp_path / "hunan.csv").read_bytes()


def test_divisions_command_rebuilds_the_committed_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`lookback divisions` reads the in-repository lists unless --from names another folder."""
    assert main(["-q", "divisions", "--out", str(tmp_path / "default.csv")]) == 0
    assert main(["-q", "divisions", "--from", str(official_divisions_dir()), "--out", str(tmp_path / "from.csv")]) == 0
    assert "wrote 2159 divisions" in capsys.readouterr().out
    committed = (divisions_dir() / "hunan.csv").read_bytes()
    assert (tmp_path / "default.csv").read_bytes() == committed == (tmp_path / "from.csv").read_bytes()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("青石村", "青石"),
        ("青石村", "青石村委会"),
        ("青石村", " 青石村 "),
        ("牙屯堡镇", "牙屯堡"),
        ("大高坪苗族乡", "大高坪"),
        ("大高坪苗族乡", "大高坪乡"),
        ("大堡子土家族苗族乡", "大堡子"),
        ("火马冲镇", "火马冲"),
        ("长塘街道", "长塘"),
        ("芙蓉社区", "芙蓉"),
    ],
)
def test_township_and_village_names_are_compared_without_their_suffix(first: str, second: str) -> None:
    assert place_key(first) == place_key(second)


def test_a_place_key_keeps_a_name_that_is_all_suffix() -> None:
    assert place_key("新村") == "新村"  # 新 alone would say nothing
