"""Source definitions: one YAML per departmental export, loaded into frozen dataclasses.

Everything that differs between provinces or departments (file name, format, encoding,
where the header is, the real column headers, code values, mandatory fields) lives in
``include/sources/<source>.yaml``. The readers and normalisers are generic; they take a
:class:`SourceSpec` and nothing else.

Loading validates the whole file and fails with the file and the key path named, e.g.
``registry.yaml: columns.sex.codes: must be a mapping of delivered value to code``.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lookback.errors import ConfigError
from lookback.paths import sources_dir

COLUMN_TYPES = frozenset(
    {
        "text",  # kept as delivered, trimmed
        "name",  # a person's name: normalised, pinyin key, placeholder flag
        "identity_number",  # GB 11643 resident identity number
        "code",  # one value from a closed list, mapped to a canonical code
        "code_list",  # several values from a closed list joined by commas
        "date",
        "year_month",  # a month (享受起始年月): stored as the first day of the month
        "year",
        "integer",
        "money",
        "county",  # a county name, short name or code: stored as the 6-digit code
        "digits",  # a long digit code (户编号, 村代码, phone): cleaned, Excel damage marked
    }
)
FORMATS = frozenset({"csv", "xlsx"})
HEADER_LOCATE = frozenset({"first_row", "search"})
_SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TOP_KEYS = {
    "source",
    "title",
    "department",
    "required",
    "file",
    "header",
    "subject",
    "household",
    "columns",
}


def normalise_label(text: str) -> str:
    """The form in which headers and code values are compared.

    NFKC makes full-width brackets and letters half-width (``村（社区）`` = ``村(社区)``),
    letters are case-folded (appraisal level ``c`` = ``C``) and whitespace is dropped, so a
    header typed with a stray space still matches.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(folded.split())


@dataclass(frozen=True)
class ColumnSpec:
    """One canonical column and the delivered header(s) it is read from."""

    name: str
    headers: tuple[str, ...]
    type: str
    required: bool = False
    codes: tuple[tuple[str, str], ...] = ()
    length: tuple[int, int] | None = None  # digits: the least and most digits a code has

    def __post_init__(self) -> None:
        lookup = {normalise_label(delivered): code for delivered, code in self.codes}
        object.__setattr__(self, "_lookup", lookup)

    def code_for(self, label: str) -> str | None:
        """The canonical code of a delivered value, or None when the value is unknown."""
        lookup: dict[str, str] = self.__dict__["_lookup"]
        return lookup.get(label) or lookup.get(normalise_label(label))


@dataclass(frozen=True)
class FileSpec:
    pattern: str
    format: str
    encoding: str
    delimiter: str = ","


@dataclass(frozen=True)
class HeaderSpec:
    locate: str = "first_row"
    search_rows: int = 10


@dataclass(frozen=True)
class HouseholdSpec:
    """The columns that say which household a row belongs to: its household number (a
    ``digits`` column), the place its members share, and the row's relation to the head."""

    number: str
    place: tuple[str, ...]
    relation: str | None = None


@dataclass(frozen=True)
class SourceSpec:
    """A departmental export as delivered, and how to read it."""

    source: str
    title: str
    department: str
    required: bool
    file: FileSpec
    header: HeaderSpec
    subject_name: str
    subject_identity_number: str
    columns: tuple[ColumnSpec, ...]
    path: Path
    household: HouseholdSpec | None = None

    def column(self, name: str) -> ColumnSpec:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def staging_table(self) -> str:
        return f"staging_{self.source}"


def _fail(path: Path, key: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {message}")


def _require(mapping: Mapping[str, Any], key: str, path: Path, where: str) -> Any:
    if key not in mapping or mapping[key] in (None, ""):
        return _raise(_fail(path, f"{where}{key}", "is missing"))
    return mapping[key]


def _raise(error: ConfigError) -> Any:
    raise error


def _check_keys(mapping: Mapping[str, Any], allowed: set[str], path: Path, where: str) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise _fail(path, f"{where}{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _as_mapping(value: Any, path: Path, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, key, "must be a mapping")
    return value


def _parse_column(name: str, raw: Any, path: Path) -> ColumnSpec:
    where = f"columns.{name}."
    body = _as_mapping(raw, path, f"columns.{name}")
    _check_keys(body, {"header", "type", "required", "codes", "length"}, path, where)
    header = _require(body, "header", path, where)
    headers = (header,) if isinstance(header, str) else header
    if not isinstance(headers, list | tuple) or not all(isinstance(h, str) and h for h in headers):
        raise _fail(path, f"{where}header", "must be a header text or a list of them")
    column_type = _require(body, "type", path, where)
    if column_type not in COLUMN_TYPES:
        raise _fail(path, f"{where}type", f"unknown type {column_type!r} (known: {', '.join(sorted(COLUMN_TYPES))})")
    required = body.get("required", False)
    if not isinstance(required, bool):
        raise _fail(path, f"{where}required", "must be true or false")
    codes: tuple[tuple[str, str], ...] = ()
    if column_type in {"code", "code_list"}:
        raw_codes = body.get("codes")
        if not isinstance(raw_codes, Mapping) or not raw_codes:
            raise _fail(path, f"{where}codes", "must be a mapping of delivered value to code")
        codes = tuple((str(label), str(code)) for label, code in raw_codes.items())
        seen: dict[str, str] = {}
        for label, _code in codes:
            folded = normalise_label(label)
            if folded in seen:
                raise _fail(path, f"{where}codes.{label}", f"same value as {seen[folded]!r} once normalised")
            seen[folded] = label
    elif "codes" in body:
        raise _fail(path, f"{where}codes", f"only code and code_list columns take codes, not {column_type}")
    length = _parse_length(body, column_type, path, where)
    return ColumnSpec(
        name=name, headers=tuple(headers), type=column_type, required=required, codes=codes, length=length
    )


def _parse_length(body: Mapping[str, Any], column_type: str, path: Path, where: str) -> tuple[int, int] | None:
    if "length" not in body:
        return None
    if column_type != "digits":
        raise _fail(path, f"{where}length", f"only digits columns take a length, not {column_type}")
    value = body["length"]
    bounds = [value, value] if isinstance(value, int) else value
    if (
        not isinstance(bounds, list)
        or len(bounds) != 2
        or not all(isinstance(bound, int) and not isinstance(bound, bool) and bound > 0 for bound in bounds)
        or bounds[0] > bounds[1]
    ):
        raise _fail(path, f"{where}length", "must be a number of digits or a list [least, most]")
    return bounds[0], bounds[1]


def _parse_household(top: Mapping[str, Any], by_name: Mapping[str, ColumnSpec], path: Path) -> HouseholdSpec | None:
    if "household" not in top:
        return None
    body = _as_mapping(top["household"], path, "household")
    _check_keys(body, {"number", "place", "relation"}, path, "household.")
    number = _require(body, "number", path, "household.")
    if number not in by_name or by_name[number].type != "digits":
        raise _fail(path, "household.number", f"must name a digits column, not {number!r}")
    place = body.get("place") or []
    if not isinstance(place, list) or not all(isinstance(name, str) and name in by_name for name in place):
        raise _fail(path, "household.place", "must be a list of the columns that place a household")
    relation = body.get("relation")
    if relation is not None and relation not in by_name:
        raise _fail(path, "household.relation", f"names no column: {relation!r}")
    return HouseholdSpec(number=number, place=tuple(place), relation=relation)


def parse_source_spec(document: Any, path: Path) -> SourceSpec:
    """Validate one loaded YAML document and build its :class:`SourceSpec`."""
    top = _as_mapping(document, path, "(top level)")
    _check_keys(top, _TOP_KEYS, path, "")
    source = _require(top, "source", path, "")
    if not isinstance(source, str) or not _SOURCE_NAME.match(source):
        raise _fail(path, "source", "must be a lower-case identifier such as registry")
    if path.stem != source:
        raise _fail(path, "source", f"is {source!r} but the file is named {path.name}; name it {source}.yaml")

    file_body = _as_mapping(_require(top, "file", path, ""), path, "file")
    _check_keys(file_body, {"pattern", "format", "encoding", "delimiter"}, path, "file.")
    file_format = _require(file_body, "format", path, "file.")
    if file_format not in FORMATS:
        raise _fail(path, "file.format", f"must be one of {', '.join(sorted(FORMATS))}")
    encoding = str(file_body.get("encoding", "utf-8" if file_format == "csv" else "xlsx"))
    if file_format == "csv":
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise _fail(path, "file.encoding", f"unknown encoding {encoding!r}") from None
    delimiter = str(file_body.get("delimiter", ","))
    if len(delimiter) != 1:
        raise _fail(path, "file.delimiter", "must be one character")
    file_spec = FileSpec(
        pattern=str(_require(file_body, "pattern", path, "file.")),
        format=file_format,
        encoding=encoding,
        delimiter=delimiter,
    )

    header_body = _as_mapping(top.get("header", {}), path, "header")
    _check_keys(header_body, {"locate", "search_rows"}, path, "header.")
    locate = header_body.get("locate", "first_row")
    if locate not in HEADER_LOCATE:
        raise _fail(path, "header.locate", f"must be one of {', '.join(sorted(HEADER_LOCATE))}")
    search_rows = header_body.get("search_rows", 10)
    if not isinstance(search_rows, int) or search_rows < 1:
        raise _fail(path, "header.search_rows", "must be a positive integer")

    columns_body = _as_mapping(_require(top, "columns", path, ""), path, "columns")
    columns = tuple(_parse_column(str(name), body, path) for name, body in columns_body.items())
    header_owner: dict[str, str] = {}
    for column in columns:
        if not re.match(r"^[a-z][a-z0-9_]*$", column.name):
            raise _fail(path, f"columns.{column.name}", "canonical names are lower-case identifiers")
        for header in column.headers:
            folded = normalise_label(header)
            if folded in header_owner:
                raise _fail(
                    path, f"columns.{column.name}.header", f"{header!r} is already read by {header_owner[folded]}"
                )
            header_owner[folded] = column.name

    subject = _as_mapping(_require(top, "subject", path, ""), path, "subject")
    _check_keys(subject, {"name", "identity_number"}, path, "subject.")
    by_name = {column.name: column for column in columns}
    subject_name = _require(subject, "name", path, "subject.")
    subject_identity = _require(subject, "identity_number", path, "subject.")
    for key, value, wanted in (
        ("name", subject_name, "name"),
        ("identity_number", subject_identity, "identity_number"),
    ):
        if value not in by_name:
            raise _fail(path, f"subject.{key}", f"names no column: {value!r}")
        if by_name[value].type != wanted:
            raise _fail(path, f"subject.{key}", f"column {value!r} has type {by_name[value].type}, not {wanted}")

    required = top.get("required", True)
    if not isinstance(required, bool):
        raise _fail(path, "required", "must be true or false")
    return SourceSpec(
        source=source,
        title=str(top.get("title", source)),
        department=str(top.get("department", "")),
        required=required,
        file=file_spec,
        header=HeaderSpec(locate=locate, search_rows=search_rows),
        subject_name=subject_name,
        subject_identity_number=subject_identity,
        columns=columns,
        path=path,
        household=_parse_household(top, by_name, path),
    )


def read_yaml(path: Path) -> Any:
    """A configuration file's document; unreadable or malformed files fail naming the file."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error


def load_source_spec(path: Path) -> SourceSpec:
    """Load and validate one source YAML file."""
    return parse_source_spec(read_yaml(path), path)


def source_names(directory: Path | None = None) -> list[str]:
    """The sources defined, by file name only (cheap enough for DAG parsing)."""
    folder = directory or sources_dir()
    return sorted(path.stem for path in folder.glob("*.yaml"))


def load_source_specs(directory: Path | None = None) -> dict[str, SourceSpec]:
    """Every source definition in the folder, keyed by source name."""
    folder = directory or sources_dir()
    paths = sorted(folder.glob("*.yaml"))
    if not paths:
        raise ConfigError(f"{folder}: no source definitions (*.yaml) found")
    return {spec.source: spec for spec in (load_source_spec(path) for path in paths)}
