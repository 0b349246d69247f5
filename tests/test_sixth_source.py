"""A sixth departmental export added with a YAML and a suite file only: a disabled persons'
federation roster (残疾人名册) as a workbook with a title row, its own headers and
disability-certificate numbers, ingested, validated and linked with no Python changed."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from lookback.paths import include_dir
from lookback.run import connect_warehouse
from lookback.validate.stage import suites_dir
from tests import steps

pytestmark = pytest.mark.integration

AS_OF = date(2020, 6, 30)

DISABILITY_YAML = """\
# 残疾人名册: the disabled persons' federation (残联) roster, one row per certificate holder,
# an xlsx sheet with a title row above the header.
source: disability
title: 残疾人名册
department: 残联
required: false
order: 6
file:
  pattern: disability_roster*.xlsx
  format: xlsx
header:
  locate: search
  search_rows: 5
subject:
  name: name
  identity_number: certificate_number
columns:
  name: {header: 姓名, type: name, required: true}
  sex:
    header: 性别
    type: code
    codes: {男: male, 女: female}
  certificate_number: {header: 残疾人证号, type: identity_number, required: true}
  category:
    header: 残疾类别
    type: code
    required: true
    codes: {视力: sight, 听力: hearing, 言语: speech, 肢体: physical, 智力: intellectual, 精神: mental, 多重: multiple}
  grade:
    header: 残疾等级
    type: code
    codes: {一级: "1", 二级: "2", 三级: "3", 四级: "4"}
  county_code: {header: 所属区县, type: county, required: true}
  village: {header: 所在村（社区）, type: place}
  phone: {header: 联系电话, type: digits}
derived:
  identity_number_valid:
    kind: present
    columns: [certificate_number]
    description: the certificate reduces to a valid identity number
linkage:
  name: name
  identity_number: certificate_number
  sex: sex
  county: county_code
  village: village_key
"""

DISABILITY_SUITE = {
    "name": "standardise.disability",
    "meta": {"stage": "standardise", "dataset": "disability", "description": "残疾人名册 as staged."},
    "expectations": [
        {
            "type": "expect_table_columns_to_match_set",
            "severity": "critical",
            "kwargs": {"column_set": ["source_row", "name", "identity_number_valid", "category"], "exact_match": False},
            "description": "Every column the look-back reads is there.",
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "severity": "critical",
            "kwargs": {"column": "identity_number_valid", "value_set": [True], "mostly": 0.9},
            "description": "At least 90% of certificates reduce to a valid identity number.",
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "severity": "critical",
            "kwargs": {
                "column": "category",
                "value_set": ["sight", "hearing", "speech", "physical", "intellectual", "mental", "multiple"],
            },
            "description": "残疾类别 is standardised.",
        },
    ],
}

CATEGORIES = ("视力", "听力", "言语", "肢体", "智力", "精神", "多重")


@pytest.fixture
def six_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the configuration with the roster's YAML and suite added, and nothing else."""
    include = tmp_path / "include"
    shutil.copytree(include_dir(), include)
    shutil.copytree(suites_dir(), tmp_path / "expectations")
    (include / "sources" / "disability.yaml").write_text(DISABILITY_YAML, encoding="utf-8")
    (tmp_path / "expectations" / "standardise.disability.json").write_text(
        json.dumps(DISABILITY_SUITE, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    monkeypatch.setenv("LOOKBACK_INCLUDE_DIR", str(include))
    monkeypatch.setenv("LOOKBACK_EXPECTATIONS_DIR", str(tmp_path / "expectations"))
    return tmp_path


def _registry_persons(warehouse_url: str, batch: str) -> list[dict[str, str]]:
    """Registry persons of the batch with a valid number: name, number, sex, county, village."""
    warehouse = connect_warehouse(warehouse_url)
    try:
        table = warehouse.staging("registry")
        with warehouse.engine.connect() as connection:
            rows = connection.execute(
                select(table.c.name, table.c.identity_number, table.c.sex_label, table.c.county_code, table.c.village)
                .where(table.c.batch_id == batch, table.c.identity_number.is_not(None))
                .order_by(table.c.source_row)
            ).all()
    finally:
        warehouse.dispose()
    seen: dict[str, dict[str, str]] = {}
    for name, number, sex, county, village in rows:
        seen.setdefault(number, {"name": name, "number": number, "sex": sex, "county": county, "village": village})
    return list(seen.values())[:12]


def _write_roster(path: Path, persons: list[dict[str, str]]) -> None:
    """The roster as the federation sends it: a title row, then the header, then the holders
    (certificate number = identity number + two digits)."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["某县持证残疾人名册（截至2020年6月）"])
    sheet.append(
        ["序号", "姓名", "性别", "残疾人证号", "残疾类别", "残疾等级", "所属区县", "所在村（社区）", "联系电话"]
    )
    for number, person in enumerate(persons, start=1):
        sheet.append(
            [
                number,
                person["name"],
                person["sex"],
                f"{person['number']}{number % 4 + 1}{number % 7 + 1}",
                CATEGORIES[number % len(CATEGORIES)],
                f"{'一二三四'[number % 4]}级",
                person["county"],
                person["village"],
                f"1387310{number:04d}",
            ]
        )
    book.save(path)


def test_a_sixth_source_is_ingested_validated_and_linked_from_yaml_alone(
    six_sources: Path, generated_batch: Path
) -> None:
    landing = six_sources / "landing" / "six"
    shutil.copytree(generated_batch, landing)
    warehouse = f"sqlite:///{six_sources / 'warehouse.sqlite'}"
    steps.ingest(landing, warehouse=warehouse, sources=["registry"])
    persons = _registry_persons(warehouse, "six")
    assert len(persons) == 12
    _write_roster(landing / "disability_roster.xlsx", persons)

    accounting = {item.source: item for item in steps.ingest(landing, warehouse=warehouse)}
    roster = accounting["disability"]
    assert (roster.status, roster.delivered, roster.accepted) == ("ingested", 12, 12)
    assert roster.balanced and all(item.balanced for item in accounting.values())

    report = steps.validate("standardise", "six", six_sources / "run", AS_OF, warehouse)
    checked = [outcome for outcome in report.outcomes if outcome.suite == "standardise.disability"]
    assert len(checked) == len(DISABILITY_SUITE["expectations"])
    assert all(outcome.success for outcome in checked), [outcome.line() for outcome in checked]

    steps.link("six", warehouse)
    store = connect_warehouse(warehouse)
    try:
        links = store.table("person_links")
        with store.engine.connect() as connection:
            rows = connection.execute(
                select(links.c.source, links.c.source_row, links.c.person_id, links.c.match_method).where(
                    links.c.batch_id == "six", links.c.source.in_(["disability", "registry"])
                )
            ).all()
            registry = store.staging("registry")
            numbers = dict(
                connection.execute(
                    select(registry.c.source_row, registry.c.identity_number).where(registry.c.batch_id == "six")
                ).all()
            )
    finally:
        store.dispose()
    person_of_number = {
        numbers[row.source_row]: row.person_id
        for row in rows
        if row.source == "registry" and numbers.get(row.source_row)
    }
    roster_links = sorted((row for row in rows if row.source == "disability"), key=lambda row: row.source_row)
    assert len(roster_links) == 12
    # Each certificate holder is the registry person whose identity number the certificate carries.
    for row, person in zip(roster_links, persons, strict=True):
        assert row.person_id == person_of_number[person["number"]]
        assert row.match_method == "id_exact"
