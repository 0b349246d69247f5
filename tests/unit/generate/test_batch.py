"""The generated batch: deterministic, in the delivered formats, and carrying every quirk."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from lookback.generate.batch import DEFAULT_AS_OF, DEFAULT_COUNTIES, FILE_NAMES, generate_batch
from lookback.generate.people import PopulationBuilder
from lookback.ingest.readers import detect_encoding, open_delivery
from lookback.sources import SourceSpec
from lookback.standardise.dates import parse_date
from lookback.standardise.identity import normalise_identity_number
from lookback.standardise.names import to_simplified
from lookback.standardise.places import county_resolver


def _cells(folder: Path, spec: SourceSpec, column: str) -> list[str]:
    delivered = open_delivery(folder / FILE_NAMES[spec.source], spec)
    index = [c.name for c in spec.columns].index(column)
    width = len(spec.columns)  # rows broken by a lost delimiter are left out: their cells shifted
    return [record.values[index] for record in delivered.records if len(record.values) == width]


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    generate_batch(tmp_path / "a", persons=60, seed=11)
    generate_batch(tmp_path / "b", persons=60, seed=11)
    generate_batch(tmp_path / "c", persons=60, seed=12)
    for name in FILE_NAMES.values():
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a" / FILE_NAMES["registry"]).read_bytes() != (
        tmp_path / "c" / FILE_NAMES["registry"]
    ).read_bytes()


def test_files_are_in_their_delivered_encodings(generated_batch: Path) -> None:
    assert detect_encoding(generated_batch / FILE_NAMES["registry"]) == "gb18030"
    assert detect_encoding(generated_batch / FILE_NAMES["housing"]) == "gb18030"
    assert detect_encoding(generated_batch / FILE_NAMES["insurance"]) == "utf-8-sig"
    assert detect_encoding(generated_batch / FILE_NAMES["hukou"]) == "utf-8"
    assert (generated_batch / FILE_NAMES["dibao"]).read_bytes()[:2] == b"PK"  # an xlsx zip


def test_every_person_of_the_population_has_a_valid_identity_number() -> None:
    builder = PopulationBuilder(county_resolver(), list(DEFAULT_COUNTIES), seed=3, as_of=DEFAULT_AS_OF)
    households = [builder.household() for _ in range(300)]
    numbers = [person.identity_number for household in households for person in household.members]
    assert all(normalise_identity_number(number).is_valid for number in numbers)
    assert len(set(numbers)) == len(numbers)
    for household in households:
        assert household.village_code.startswith(household.county.code) and len(household.village_code) == 12


# Each identity-number quirk of the spec, recognised in the delivered text.
IDENTITY_QUIRKS: dict[str, Callable[[str], bool]] = {
    "disability certificate (20 or 22 characters)": lambda v: len(v) in (20, 22) and v[:17].isdigit(),
    "lower-case x": lambda v: v.endswith("x"),
    "full-width digits": lambda v: bool(re.search("[０-９]", v)),
    "spaces, tab or apostrophe": lambda v: bool(re.search(r"[\s']", v)),
    "15 digits": lambda v: len(v) == 15 and v.isdigit(),
    "Excel scientific notation": lambda v: "E+" in v,
    "last digits 000": lambda v: len(v) == 18 and v.endswith("000"),
    "blank": lambda v: v == "",
    "wrong check character or transposed digits": lambda v: (
        normalise_identity_number(v).problem in {"bad_check_character", "bad_birth_date"}
    ),
}


@pytest.mark.parametrize("quirk", list(IDENTITY_QUIRKS))
def test_identity_quirks_occur(generated_batch: Path, specs: dict[str, SourceSpec], quirk: str) -> None:
    values = _cells(generated_batch, specs["registry"], "identity_number")
    values += _cells(generated_batch, specs["insurance"], "identity_number")
    assert any(IDENTITY_QUIRKS[quirk](value) for value in values), quirk


NAME_QUIRKS: dict[str, Callable[[str], bool]] = {
    "traditional characters": lambda v: bool(v) and to_simplified(v) != v,
    "placeholder ? or *": lambda v: "?" in v or "*" in v,
    "pinyin for a rare character": lambda v: bool(re.search("[a-z]", v)),
    "stray or full-width space": lambda v: " " in v or "\u3000" in v,
    "middle dot variant": lambda v: any(dot in v for dot in ("・", "•", ".", "．")),
    "middle dot": lambda v: "·" in v,
}


@pytest.mark.parametrize("quirk", list(NAME_QUIRKS))
def test_name_quirks_occur(generated_batch: Path, specs: dict[str, SourceSpec], quirk: str) -> None:
    values = _cells(generated_batch, specs["registry"], "name") + _cells(generated_batch, specs["insurance"], "name")
    values += _cells(generated_batch, specs["dibao"], "name")
    assert any(NAME_QUIRKS[quirk](value) for value in values), quirk


def test_dates_come_in_every_format(generated_batch: Path, specs: dict[str, SourceSpec]) -> None:
    values = [v for v in _cells(generated_batch, specs["housing"], "appraisal_date") if v]
    shapes = {
        "iso": r"\d{4}-\d{2}-\d{2}",
        "slash": r"\d{4}/\d{1,2}/\d{1,2}",
        "compact": r"\d{8}",
        "chinese": r"\d{4}年\d{1,2}月\d{1,2}日",
        "excel serial": r"\d{5}",
        "datetime": r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}",
    }
    for name, pattern in shapes.items():
        assert any(re.fullmatch(pattern, value) for value in values), name
    parsed = [parse_date(value).value for value in values]
    assert all(isinstance(value, date) for value in parsed)


def test_places_numbers_and_whole_rows(generated_batch: Path, specs: dict[str, SourceSpec]) -> None:
    counties = _cells(generated_batch, specs["registry"], "county_code")
    assert any(value.endswith("自治县") for value in counties)  # full name
    assert any(value.endswith("县") and not value.endswith("自治县") for value in counties)  # short name
    assert any(value.isdigit() for value in counties)  # a code
    amounts = _cells(generated_batch, specs["dibao"], "monthly_payment") + _cells(
        generated_batch, specs["housing"], "subsidy"
    )
    assert any("," in value for value in amounts)
    assert any(value.endswith("元") for value in amounts)
    assert "-" in amounts
    registry = list(open_delivery(generated_batch / FILE_NAMES["registry"], specs["registry"]).records)
    assert any(not record.values for record in registry)  # an empty line
    assert any(record.values and not any(record.values) for record in registry)  # bare commas
    assert any(len(record.values) == len(specs["registry"].columns) - 1 for record in registry)  # a lost delimiter
    rows = [record.values for record in registry]
    assert len(rows) != len(set(rows))  # a row exported twice
    dibao = list(open_delivery(generated_batch / FILE_NAMES["dibao"], specs["dibao"]).records)
    assert dibao[-1].values[0] == "合计"
