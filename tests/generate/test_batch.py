"""The generator's claims: deterministic, valid identity numbers, every rule planted, noise at
the profile's rates, files read back with full accounting, and a second batch that moves on."""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from lookback.generate.batch import FILE_NAMES, _build_population, _exports, generate_batch
from lookback.generate.noise import DOT_FORMS
from lookback.generate.people import RARE_CHARACTERS
from lookback.generate.profiles import DAMAGING_IDENTITY_QUIRKS, PROFILES
from lookback.generate.truth import HOUSEHOLD_FIELDS, PERSON_FIELDS, true_findings
from lookback.ingest.readers import detect_encoding, open_delivery
from lookback.rules import RULE_CODES
from lookback.sources import SourceSpec
from lookback.standardise.dates import parse_date
from lookback.standardise.identity import normalise_identity_number
from lookback.standardise.names import to_simplified
from tests import steps


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def hard_batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hard") / "landing" / "hard"
    generate_batch(folder, persons=1500, seed=11, noise="hard")
    return folder


def _truth(landing: Path) -> Path:
    return landing.parent.parent / "truth" / landing.name


def test_the_state_holds_only_what_the_truth_files_write_as_they_are() -> None:
    """persons.csv and households.csv hand the state's values to the csv writer unconverted,
    which writes text, whole numbers, dates and None as the truth's other files do; a bool or
    a datetime would come out other than ``true``/``false`` or an ISO date."""
    households, _ = _build_population(400, 3, date(2020, 6, 30), ("431230", "433130"), 0.05)
    persons = [person for household in households for person in household.members]
    values = [getattr(household, name) for household in households for name in HOUSEHOLD_FIELDS]
    values += [getattr(person, name) for person in persons for name in PERSON_FIELDS]
    assert {type(value) for value in values} <= {str, int, date, type(None)}


def _cells(folder: Path, spec: SourceSpec, column: str) -> list[str]:
    delivered = open_delivery(folder / FILE_NAMES[spec.source], spec)
    index = [c.name for c in spec.columns].index(column)
    width = len(spec.columns)  # rows broken by a lost delimiter are left out: their cells shifted
    return [record.values[index] for record in delivered.records if len(record.values) == width]


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        generate_batch(tmp_path / "landing" / name, persons=80, seed=12 if name == "c" else 11, noise="hard")
    for name in FILE_NAMES.values():
        first = (tmp_path / "landing" / "a" / name).read_bytes()
        assert first == (tmp_path / "landing" / "b" / name).read_bytes(), name
    for name in ("rows.csv", "findings.csv", "persons.csv", "households.csv"):
        assert (tmp_path / "truth" / "a" / name).read_bytes() == (tmp_path / "truth" / "b" / name).read_bytes(), name
    registry = FILE_NAMES["registry"]
    assert (tmp_path / "landing" / "a" / registry).read_bytes() != (tmp_path / "landing" / "c" / registry).read_bytes()


def test_truth_is_never_inside_the_landing_folder(tmp_path: Path) -> None:
    from lookback.errors import LookbackError

    with pytest.raises(LookbackError, match="must not be inside the landing folder"):
        generate_batch(tmp_path / "b", persons=20, truth=tmp_path / "b" / "truth")
    summary = generate_batch(tmp_path / "elsewhere" / "b", persons=20)
    assert summary.truth == (tmp_path / "elsewhere" / "b.truth").resolve()


def test_files_are_in_their_delivered_encodings(generated_batch: Path) -> None:
    assert detect_encoding(generated_batch / FILE_NAMES["registry"]) == "gb18030"
    assert detect_encoding(generated_batch / FILE_NAMES["housing"]) == "gb18030"
    assert detect_encoding(generated_batch / FILE_NAMES["insurance"]) == "utf-8-sig"
    assert detect_encoding(generated_batch / FILE_NAMES["hukou"]) == "utf-8"
    assert (generated_batch / FILE_NAMES["dibao"]).read_bytes()[:2] == b"PK"  # an xlsx zip


def test_every_identity_number_in_the_truth_is_valid(hard_batch: Path) -> None:
    persons = _read(_truth(hard_batch) / "persons.csv")
    numbers = [person["identity_number"] for person in persons]
    found = [normalise_identity_number(number) for number in numbers]
    assert all(item.is_valid for item in found)
    assert len(set(numbers)) == len(numbers)
    for person, item in zip(persons, found, strict=True):
        assert item.birth_date == date.fromisoformat(person["birth_date"])
        assert item.sex == ("male" if person["sex"] == "男" else "female")
    assert any(number.startswith("4330") for number in numbers)  # Huaihua's old prefecture code
    households = _read(_truth(hard_batch) / "households.csv")
    assert all(h["village_code"].startswith(h["county_code"]) and len(h["village_code"]) == 12 for h in households)
    assert any("·" in person["name"] for person in persons)  # minority names in minority counties
    names = Counter(person["name"] for person in persons)
    assert names.most_common(1)[0][1] > 1  # common names collide


def test_every_rule_code_has_planted_findings(hard_batch: Path) -> None:
    findings = _read(_truth(hard_batch) / "findings.csv")
    planted = {row["rule_code"] for row in findings if row["planted"] == "true"}
    assert planted == set(RULE_CODES)


def test_planted_findings_are_all_true_findings_without_noise() -> None:
    as_of = date(2020, 6, 30)
    households, planted = _build_population(800, seed=5, as_of=as_of, counties=["431230", "431224"])
    exports, _ = _exports(households, "clean", as_of, batch_seed=5, population_seed=5)
    found = {(f.rule_code, f.subject_kind, f.subject_key) for f in true_findings(households, exports, as_of, planted)}
    missing = [p for p in planted if (p.rule_code, p.subject_kind, p.subject_key) not in found]
    assert missing == []


@pytest.mark.integration  # three whole batches of 3,000 persons
@pytest.mark.parametrize("profile", ["clean", "typical", "hard"])
def test_noise_rates_within_tolerance(tmp_path: Path, profile: str) -> None:
    landing = tmp_path / "landing" / profile
    generate_batch(landing, persons=3000, seed=21, noise=profile)
    rows = [row for row in _read(_truth(landing) / "rows.csv") if row["source"] == "insurance"]
    data = [row for row in rows if row["row_kind"] in {"data", "duplicate", "broken"}]
    expected = PROFILES[profile]
    identity = sum(1 for row in data if row["identity_noise"] not in {"none", "lower_case_x"}) / len(data)
    damaging = sum(1 for row in data if row["identity_noise"] in DAMAGING_IDENTITY_QUIRKS) / len(data)
    names = sum(1 for row in data if row["name_noise"] not in {"none", "dot_variant"}) / len(data)
    blank = sum(1 for row in rows if row["row_kind"] == "blank") / len(data)
    broken = sum(1 for row in data if row["row_kind"] == "broken") / len(data)
    assert identity == pytest.approx(expected.identity_rate, abs=0.015)
    assert damaging == pytest.approx(expected.damaging_identity_rate, abs=0.01)
    assert names == pytest.approx(expected.name_rate, abs=0.015)
    assert blank == pytest.approx(expected.blank_row, abs=0.003)
    assert broken == pytest.approx(expected.broken_row, abs=0.003)
    touched = sum(
        1 for row in data if row["identity_noise"] != "none" or row["name_noise"] != "none" or row["row_kind"] != "data"
    ) / len(data)
    if profile == "clean":
        assert touched == 0
        assert all(row["quirks"] == "" for row in data)
    if profile == "hard":
        assert touched >= 0.10  # at least 10% of rows carry a quirk
        assert 0.02 <= damaging <= 0.08  # a few percent of identity numbers wrong

    # Every column where a quirk can occur gets it at the same rates: the registry's 户编号
    # (18 digits, so every code quirk applies) and the allowance roster's head columns.
    everything = _read(_truth(landing) / "rows.csv")
    registry = [row for row in everything if row["source"] == "registry" and row["row_kind"] == "data"]
    dibao = [row for row in everything if row["source"] == "dibao" and row["row_kind"] == "data"]

    def share(rows: list[dict[str, str]], column: str, leave_out: tuple[str, ...] = ()) -> float:
        def touched(row: dict[str, str]) -> bool:
            items = [q for q in row["quirks"].split(";") if q.startswith(f"{column}:")]
            return any(q.split(":")[1] not in leave_out for q in items)

        return sum(1 for row in rows if touched(row)) / len(rows)

    assert share(registry, "household_number") == pytest.approx(sum(expected.codes.values()), abs=0.015)
    head_quirks = share(dibao, "head_identity_number", leave_out=("lower_case_x",))
    assert head_quirks == pytest.approx(expected.identity_rate, abs=0.03)
    rare_forms = ("rare_question_mark", "rare_asterisk", "rare_pinyin_lower", "rare_pinyin_upper", "rare_pinyin_title")
    head_names = share(dibao, "head_name", leave_out=(*rare_forms, "rare_other_reading", *DOT_FORMS.values()))
    assert head_names == pytest.approx(expected.name_rate, abs=0.03)
    persons = _read(_truth(landing) / "persons.csv")
    rare = sum(1 for person in persons if any(character in RARE_CHARACTERS for character in person["name"]))
    assert rare / len(persons) == pytest.approx(expected.rare_character_persons, abs=0.002)


@pytest.mark.integration  # ingests the whole hard batch
def test_written_files_are_read_back_with_full_accounting(hard_batch: Path, tmp_path: Path) -> None:
    accounting = {a.source: a for a in steps.ingest(hard_batch, warehouse=f"sqlite:///{tmp_path / 'w.sqlite'}")}
    kinds = Counter((row["source"], row["row_kind"]) for row in _read(_truth(hard_batch) / "rows.csv"))
    for source, item in accounting.items():
        assert item.balanced
        assert item.delivered == sum(count for (s, _kind), count in kinds.items() if s == source)
        assert item.accepted == kinds[(source, "data")] + kinds[(source, "duplicate")], source
        assert item.skipped == kinds[(source, "blank")] + kinds[(source, "total")], source
        assert item.quarantined == kinds[(source, "broken")] + kinds[(source, "nobody")], source


@pytest.mark.integration  # two whole batches of 1,000 persons
def test_second_batch_fixes_some_findings_and_plants_new_ones(tmp_path: Path) -> None:
    first = tmp_path / "landing" / "2020-06"
    second = tmp_path / "landing" / "2020-09"
    generate_batch(first, persons=1000, seed=31, noise="clean")
    summary = generate_batch(second, seed=32, noise="clean", evolve_from=first, fix_fraction=0.5)
    before = {(r["rule_code"], r["subject_key"]) for r in _read(_truth(first) / "findings.csv")}
    after = {(r["rule_code"], r["subject_key"]) for r in _read(_truth(second) / "findings.csv")}
    assert summary.fixed > 0
    assert len(before - after) >= summary.fixed // 2  # fixed findings are resolved
    assert len(before & after) > 0  # the others stay open
    assert len(after - before) > 0  # and new ones appear
    people_before = {r["key"]: r["identity_number"] for r in _read(_truth(first) / "persons.csv")}
    people_after = {r["key"]: r["identity_number"] for r in _read(_truth(second) / "persons.csv")}
    assert all(people_before[key] == number for key, number in people_after.items())  # the same people
    manifest = (_truth(second) / "manifest.json").read_text(encoding="utf-8")
    assert '"as_of": "2020-09-29"' in manifest


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
def test_identity_quirks_occur(hard_batch: Path, specs: dict[str, SourceSpec], quirk: str) -> None:
    values = _cells(hard_batch, specs["registry"], "identity_number")
    values += _cells(hard_batch, specs["insurance"], "identity_number")
    assert any(IDENTITY_QUIRKS[quirk](value) for value in values), quirk


def test_someone_elses_number_occurs(hard_batch: Path) -> None:
    rows = _read(_truth(hard_batch) / "rows.csv")
    assert any(row["identity_noise"] == "someone_elses" and row["identity_hard"] == "true" for row in rows)
    assert any(row["identity_noise"] == "parent_number" for row in rows)  # a child with a parent's number


NAME_QUIRKS: dict[str, Callable[[str], bool]] = {
    "traditional characters": lambda v: bool(v) and to_simplified(v) != v,
    "placeholder ? or *": lambda v: "?" in v or "*" in v,
    "pinyin for a rare character": lambda v: bool(re.search("[a-z]", v)),
    "stray or full-width space": lambda v: " " in v or "\u3000" in v,
    "middle dot variant": lambda v: any(dot in v for dot in ("・", "•", ".", "．")),
    "middle dot": lambda v: "·" in v,
}


@pytest.mark.parametrize("quirk", list(NAME_QUIRKS))
def test_name_quirks_occur(hard_batch: Path, specs: dict[str, SourceSpec], quirk: str) -> None:
    values = _cells(hard_batch, specs["registry"], "name") + _cells(hard_batch, specs["insurance"], "name")
    values += _cells(hard_batch, specs["dibao"], "name")
    assert any(NAME_QUIRKS[quirk](value) for value in values), quirk


def test_homophones_and_similar_shapes_occur(hard_batch: Path) -> None:
    rows = _read(_truth(hard_batch) / "rows.csv")
    applied = Counter(row["name_noise"] for row in rows)
    assert applied["homophone"] > 0 and applied["similar_shape"] > 0


def test_dates_come_in_every_format(hard_batch: Path, specs: dict[str, SourceSpec]) -> None:
    values = [v for v in _cells(hard_batch, specs["housing"], "appraisal_date") if v]
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
    assert all(isinstance(parse_date(value).value, date) for value in values)


def test_places_numbers_and_whole_rows(hard_batch: Path, specs: dict[str, SourceSpec]) -> None:
    counties = _cells(hard_batch, specs["registry"], "county_code")
    assert any(value.endswith("自治县") for value in counties)  # full name
    assert any(value.endswith("县") and not value.endswith("自治县") for value in counties)  # short name
    assert any(value.isdigit() for value in counties)  # a code
    amounts = _cells(hard_batch, specs["dibao"], "monthly_payment") + _cells(hard_batch, specs["housing"], "subsidy")
    assert any("," in value for value in amounts)
    assert any(value.endswith("元") for value in amounts)
    assert "-" in amounts
    insurance = list(open_delivery(hard_batch / FILE_NAMES["insurance"], specs["insurance"]).records)
    assert any(not record.values for record in insurance)  # an empty line
    assert any(len(record.values) == len(specs["insurance"].columns) - 1 for record in insurance)  # a lost delimiter
    values = [record.values for record in insurance]
    assert len(values) != len(set(values))  # a row exported twice
    dibao = list(open_delivery(hard_batch / FILE_NAMES["dibao"], specs["dibao"]).records)
    assert dibao[-1].values[0] == "合计"


def test_population_is_deterministic_and_seeded() -> None:
    as_of = date(2020, 6, 30)
    first, _ = _build_population(200, seed=9, as_of=as_of, counties=["433130"])
    again, _ = _build_population(200, seed=9, as_of=as_of, counties=["433130"])
    assert [p.identity_number for h in first for p in h.members] == [
        p.identity_number for h in again for p in h.members
    ]
