"""Source definitions: the real ones load; broken ones fail naming the file and the key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from lookback.errors import ConfigError
from lookback.sources import SourceSpec, load_source_spec, load_source_specs, source_names
from tests.settings_edits import Edit, drop, put, rename

MINIMAL: dict[str, Any] = {
    "source": "sample",
    "file": {"pattern": "sample*.csv", "format": "csv", "encoding": "gb18030"},
    "subject": {"name": "name", "identity_number": "identity_number"},
    "columns": {
        "name": {"header": "姓名", "type": "name", "required": True},
        "identity_number": {"header": "证件号码", "type": "identity_number"},
        "sex": {"header": "性别", "type": "code", "codes": {"男": "male", "女": "female"}},
    },
}


def _write(tmp_path: Path, document: object, name: str = "sample.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def test_every_source_of_the_spec_is_defined() -> None:
    specs = load_source_specs()
    assert source_names() == ["dibao", "housing", "hukou", "insurance", "registry"]
    assert [name for name, spec in specs.items() if not spec.required] == ["hukou"]
    assert specs["dibao"].delivered_file.format == "xlsx"
    assert specs["dibao"].header.locate == "search"
    assert specs["insurance"].delivered_file.encoding == "utf-8-sig"
    # dibao is about the member, housing about the head
    assert specs["dibao"].subject_identity_number == "identity_number"
    assert specs["housing"].subject_identity_number == "head_identity_number"


def test_minimal_definition_loads(tmp_path: Path) -> None:
    spec = load_source_spec(_write(tmp_path, MINIMAL))
    assert spec.column("sex").code_for("男") == "male"
    assert spec.column("sex").code_for(" 女 ") == "female"
    assert spec.column("sex").code_for("未知") is None
    assert spec.staging_table == "staging_sample"


def test_code_values_compare_after_normalisation(specs: dict[str, SourceSpec]) -> None:
    status = specs["registry"].column("poverty_status")
    assert status.code_for("已脱贫(享受政策)") == "exited_with_policies"  # half-width brackets
    assert specs["housing"].column("appraisal_level").code_for("c") == "C"  # lower case


def _broken(**changes: Any) -> dict[str, Any]:
    """MINIMAL with top-level keys replaced; ``column_<name>=...`` replaces one column."""
    document = copy.deepcopy(MINIMAL)
    for key, value in changes.items():
        if key.startswith("column_"):
            document["columns"][key.removeprefix("column_")] = value
        else:
            document[key] = value
    return document


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (_broken(unexpected=1), "sample.yaml: unexpected: unknown key"),
        (_broken(source="Sample"), "sample.yaml: source: must be a lower-case identifier"),
        (_broken(source="other"), "sample.yaml: source: is 'other' but the file is named sample.yaml"),
        (_broken(file={"pattern": "x", "format": "json"}), "sample.yaml: file.format: 'json' is not one of csv, xlsx"),
        (_broken(file={"pattern": "x", "format": "csv", "encoding": "klingon"}), "file.encoding: unknown encoding"),
        (_broken(column_sex={"header": "性别", "type": "code"}), "columns.sex.codes: is missing"),
        (
            _broken(column_sex={"header": "性别", "type": "colour"}),
            "columns.sex.type: 'colour' is not one of code, code_list",
        ),
        (_broken(column_sex={"type": "text"}), "columns.sex.header: is missing"),
        (_broken(column_sex={"header": "姓名", "type": "text"}), "columns.sex.header: '姓名' is already read by name"),
        (_broken(column_sex={"header": "性别", "type": "text", "codes": {"男": "m"}}), "columns.sex.codes: only code"),
        (
            _broken(column_sex={"header": "性别", "type": "text", "required": "yes"}),
            "columns.sex.required: 'yes' is not true",
        ),
        (_broken(subject={"name": "nobody", "identity_number": "identity_number"}), "subject.name: names no column"),
        (_broken(subject={"name": "sex", "identity_number": "identity_number"}), "subject.name: column 'sex' has type"),
        (_broken(header={"locate": "guess"}), "header.locate: 'guess' is not one of"),
        (["not", "a", "mapping"], "sample.yaml: (top level): must be a mapping"),
    ],
)
def test_broken_definitions_name_file_and_key(tmp_path: Path, document: object, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_source_spec(_write(tmp_path, document))
    assert expected in str(raised.value)
    assert str(tmp_path / "sample.yaml") in str(raised.value)


def test_unparseable_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sample.yaml"
    path.write_text("source: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"sample.yaml: not valid YAML"):
        load_source_spec(path)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no source definitions"):
        load_source_specs(tmp_path)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # unknown keys, top level and nested
        pytest.param(put("owner", "扶贫办"), "owner: unknown key", id="unknown top-level key"),
        pytest.param(put("file.compression", "zip"), "file.compression: unknown key", id="unknown key in file"),
        pytest.param(put("columns.sex.width", 4), "columns.sex.width: unknown key", id="unknown key in a column"),
        # misspelt keys
        pytest.param(rename("columns.name.required", "requird"), "columns.name.requird: unknown key", id="requird"),
        pytest.param(put("header", {"locate": "search", "search_row": 5}), "header.search_row: unknown key", id="row"),
        pytest.param(rename("subject.identity_number", "id_number"), "subject.id_number: unknown key", id="subject"),
        # wrong types
        pytest.param(put("required", "yes"), "required: 'yes' is not true or false", id="required: 'yes'"),
        pytest.param(put("columns.sex.required", "no"), "columns.sex.required: 'no' is not true or false", id="col"),
        pytest.param(put("title", 5), "title: 5 is not text", id="a number for a title"),
        pytest.param(put("department", ["扶贫办"]), "department: must be text, not a list", id="a list for text"),
        pytest.param(put("file.pattern", 5), "file.pattern: 5 is not text", id="a number for a pattern"),
        pytest.param(put("file.delimiter", 1), "file.delimiter: 1 is not text", id="a number for a delimiter"),
        pytest.param(put("header", {"search_rows": True}), "header.search_rows: true is not an integer", id="rows"),
        pytest.param(put("columns.sex.codes", ["男", "女"]), "columns.sex.codes: must be a mapping", id="codes list"),
        # YAML reads an unquoted yes as true: the code would have been the text "True"
        pytest.param(put("columns.sex.codes.女", True), "columns.sex.codes.女: true is not text", id="code yes"),
        pytest.param(put("columns.sex.codes", {1: "male"}), "columns.sex.codes.1: 1 is not text", id="label 1"),
        pytest.param(put("columns.sex.header", []), "columns.sex.header: must not be empty", id="no header"),
        pytest.param(put("columns.sex.header", ["性别", 5]), "columns.sex.header[1]: 5 is not text", id="header 5"),
        # missing keys
        pytest.param(drop("file.format"), "file.format: is missing", id="no file format"),
        pytest.param(drop("columns"), "columns: is missing", id="no columns"),
        pytest.param(drop("columns.sex.type"), "columns.sex.type: is missing", id="no column type"),
        pytest.param(drop("subject.name"), "subject.name: is missing", id="no subject name"),
        # checks of one key against another, kept from the hand-written loader
        pytest.param(
            put("columns.Sex", {"header": "性", "type": "text"}),
            "columns.Sex: must be a lower-case identifier",
            id="column name",
        ),
        pytest.param(
            put("columns.sex.codes", {"男": "male", "男 ": "m"}),
            "columns.sex.codes.男 : same value as '男' once normalised",
            id="codes equal once normalised",
        ),
        # digits columns and their length
        pytest.param(
            put("columns.sex", {"header": "性别", "type": "text", "length": 18}),
            "columns.sex.length: only digits columns take a length, not text",
            id="length on a text column",
        ),
        pytest.param(
            put("columns.phone", {"header": "电话", "type": "digits", "length": "11"}),
            "columns.phone.length: must be a number of digits or a list of two, [min, max], not '11'",
            id="length as text",
        ),
        pytest.param(
            put("columns.phone", {"header": "电话", "type": "digits", "length": [20, 14]}),
            "columns.phone.length: [20, 14] is not a range",
            id="length reversed",
        ),
        pytest.param(
            put("columns.phone", {"header": "电话", "type": "digits", "length": [7, 11, 12]}),
            "columns.phone.length: must be a number of digits or a list of two",
            id="length of three",
        ),
        pytest.param(
            put("columns.phone", {"header": "电话", "type": "digits", "length": True}),
            "columns.phone.length: must be a number of digits or a list of two, [min, max], not true",
            id="length: true",
        ),
        # the household section
        pytest.param(
            put("household", {"number": "sex"}),
            "household.number: must name a digits column, not 'sex'",
            id="household number not a digits column",
        ),
        pytest.param(
            put("household", {"number": "name", "place": ["county", "village"]}),
            "household.place[0]: names no column: 'county'",
            id="household place names no column",
        ),
        pytest.param(
            put("household", {"numbr": "name"}),
            "household.numbr: unknown key",
            id="household key misspelt",
        ),
    ],
)
def test_a_mistake_is_refused_naming_file_and_key(tmp_path: Path, edit: Edit, expected: str) -> None:
    path = _write(tmp_path, edit(MINIMAL))
    with pytest.raises(ConfigError) as raised:
        load_source_spec(path)
    assert f"{path}: {expected}" in str(raised.value)


@pytest.mark.parametrize(("length", "expected"), [(None, None), (18, (18, 18)), ([14, 20], (14, 20))])
def test_a_digits_column_may_state_its_length(tmp_path: Path, length: object, expected: object) -> None:
    column: dict[str, object] = {"header": "户编号", "type": "digits"}
    if length is not None:
        column["length"] = length
    spec = load_source_spec(_write(tmp_path, put("columns.household_number", column)(MINIMAL)))
    assert spec.column("household_number").type == "digits"
    assert spec.column("household_number").length == expected
    assert spec.column("sex").length is None


def test_a_key_written_twice_is_refused(tmp_path: Path) -> None:
    # PyYAML keeps the second of two keys silently: sex would be read as text, its codes lost.
    path = tmp_path / "sample.yaml"
    path.write_text(
        """source: sample
file: {pattern: sample*.csv, format: csv}
subject: {name: name, identity_number: identity_number}
columns:
  name: {header: 姓名, type: name}
  identity_number: {header: 证件号码, type: identity_number}
  sex: {header: 性别, type: code, codes: {男: male, 女: female}}
  sex: {header: 性别代码, type: text}
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"sample.yaml: not valid YAML: key 'sex' written twice \(first on line 7\)"):
        load_source_spec(path)


def test_every_broken_definition_is_reported_at_once(tmp_path: Path) -> None:
    _write(tmp_path, put("title", 5)(MINIMAL))
    _write(tmp_path, put("source", "other")(put("owner", "x")(MINIMAL)), name="other.yaml")
    with pytest.raises(ConfigError) as raised:
        load_source_specs(tmp_path)
    assert str(raised.value).splitlines() == [
        f"{tmp_path / 'other.yaml'}: owner: unknown key, did you mean order? (known: source, title, department, "
        "required, order, file, database, "
        "header, subject, household, columns, derived, linkage)",
        f"{tmp_path / 'sample.yaml'}: title: 5 is not text (quote it)",
    ]
