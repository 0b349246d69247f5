"""The census extract the statistics bureau signs: every identity number in it is the
person's own. A child entered in the registry with a parent's number is linked right, and
the extract carries neither that number nor an age from it, but says so."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from lookback.generate.batch import generate_batch
from tests import steps

# Generates a batch of 2,000 persons and runs the whole pipeline on it.
pytestmark = pytest.mark.integration

AS_OF = date(2020, 6, 30)


def _rows(path: Path, encoding: str = "utf-8-sig") -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, str]], dict[str, dict[str, str]]]:
    """The published extract, and per person_id the true person of its registry rows."""
    root = tmp_path_factory.mktemp("census")
    landing = root / "landing" / "b1"
    generate_batch(landing, persons=2000, seed=31, as_of=AS_OF, noise="hard")
    out = root / "runs" / "b1"
    steps.run_all(landing, out, AS_OF, f"sqlite:///{root / 'warehouse.sqlite'}")
    truth = root / "truth" / "b1"
    persons = {row["key"]: row for row in _rows(truth / "persons.csv", "utf-8")}
    whose = {(row["source"], row["source_row"]): row["person_key"] for row in _rows(truth / "rows.csv", "utf-8")}
    true_person: dict[str, dict[str, str]] = {}
    for link in _rows(out / "person_links.csv"):
        if link["source"] == "registry":
            true_person[link["person_id"]] = persons[whose[("registry", link["source_row"])]]
    census = [row for path in sorted((out / "census_extract").glob("*.csv")) for row in _rows(path)]
    return census, true_person


def test_every_number_in_the_extract_is_the_persons_own(
    extract: tuple[list[dict[str, str]], dict[str, dict[str, str]]],
) -> None:
    census, true_person = extract
    numbers = [row["identity_number"] for row in census if row["identity_number"]]
    assert numbers
    assert [number for number, count in Counter(numbers).items() if count > 1] == []
    someone_elses = [
        row["person_id"]
        for row in census
        if row["identity_number"] and row["identity_number"] != true_person[row["person_id"]]["identity_number"]
    ]
    assert someone_elses == []


def test_a_child_with_a_parents_number_has_no_number_and_no_age_from_it(
    extract: tuple[list[dict[str, str]], dict[str, dict[str, str]]],
) -> None:
    census, true_person = extract
    children = [row for row in census if true_person[row["person_id"]]["registry_identity_noise"] == "parent_number"]
    assert children, "the hard profile enters some children with a parent's number"
    for row in children:
        assert row["identity_borrowed"] == "是", row["person_id"]
        own = true_person[row["person_id"]]["identity_number"]
        assert row["identity_number"] in ("", own)
        if not row["identity_number"]:
            assert row["age"] == "" and row["birth_date"] == ""
    assert {row["identity_borrowed"] for row in census} <= {"是", "否"}
