"""Source definitions: the real ones load; broken ones fail naming the file and the key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from lookback.errors import ConfigError
from lookback.sources import SourceSpec, load_source_spec, load_source_specs, source_names

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
    assert specs["dibao"].file.format == "xlsx"
    assert specs["dibao"].header.locate == "search"
    assert specs["insurance"].file.encoding == "utf-8-sig"
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
        (_broken(file={"pattern": "x", "format": "json"}), "sample.yaml: file.format: must be one of csv, xlsx"),
        (_broken(file={"pattern": "x", "format": "csv", "encoding": "klingon"}), "file.encoding: unknown encoding"),
        (_broken(column_sex={"header": "性别", "type": "code"}), "columns.sex.codes: must be a mapping"),
        (_broken(column_sex={"header": "性别", "type": "colour"}), "columns.sex.type: unknown type 'colour'"),
        (_broken(column_sex={"type": "text"}), "columns.sex.header: is missing"),
        (_broken(column_sex={"header": "姓名", "type": "text"}), "columns.sex.header: '姓名' is already read by name"),
        (_broken(column_sex={"header": "性别", "type": "text", "codes": {"男": "m"}}), "columns.sex.codes: only code"),
        (_broken(column_sex={"header": "性别", "type": "text", "required": "yes"}), "columns.sex.required: must be"),
        (_broken(subject={"name": "nobody", "identity_number": "identity_number"}), "subject.name: names no column"),
        (_broken(subject={"name": "sex", "identity_number": "identity_number"}), "subject.name: column 'sex' has type"),
        (_broken(header={"locate": "guess"}), "header.locate: must be one of"),
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
