"""Source definitions: one YAML per departmental export, loaded into frozen dataclasses.

Everything that differs between provinces or departments (file name, format, encoding,
where the header is, the real column headers, code values, mandatory fields) lives in
``include/sources/<source>.yaml``. The readers and normalisers are generic; they take a
:class:`SourceSpec` and nothing else.

Loading validates the whole file: the file's shape is declared as pydantic models
(unknown keys refused, no type coerced), then what one key says about another is checked.
Every problem is one line naming the file and the key path, e.g.
``registry.yaml: columns.sex.codes.女: true is not text (...)``.

The models mirror the file; the dataclasses the rest of the code uses are built from them.
This module also holds what the other settings loaders share: :func:`read_yaml`,
:class:`SettingsModel` and :func:`validate_settings`.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
)

from lookback.errors import ConfigError, KeyPath, not_one_of, shown
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
        "place",  # a township or village name: kept, with the key it is compared by (青石村 = 青石)
        "digits",  # a long digit code (户编号, 村代码, phone): cleaned, Excel damage marked; optional length
    }
)
FORMATS = frozenset({"csv", "xlsx"})
HEADER_LOCATE = frozenset({"first_row", "search"})
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


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
    # digits columns: the number of digits allowed, (min, max); None when any length will do
    length: tuple[int, int] | None = None

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


class SettingsModel(BaseModel):
    """The shape of a settings document: unknown keys are refused, a value of the wrong type
    is never converted (``"yes"`` is not true, ``"10"`` not a number), and nothing changes
    once loaded."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


_Model = TypeVar("_Model", bound=SettingsModel)
_Item = TypeVar("_Item")
# A YAML list, held as a tuple: strict validation would take nothing but a tuple, which YAML
# never gives; the items stay strictly checked.
YamlList = Annotated[tuple[_Item, ...], Strict(False)]
# Text that says something: an empty string is as good as a missing key.
Text = Annotated[str, StringConstraints(min_length=1)]


def one_of(options: Iterable[str]) -> AfterValidator:
    """A validator of text that must be one of ``options`` (listed in their order, or sorted)."""
    listed = tuple(options) if isinstance(options, tuple | list) else tuple(sorted(options))

    def check(value: str) -> str:
        if value not in listed:
            raise ValueError(not_one_of(value, listed))
        return value

    return AfterValidator(check)


def validate_settings(model: type[_Model], document: Any, path: Path) -> _Model:
    """``document`` (a loaded YAML file) as ``model``, or a :class:`ConfigError` with one
    line per problem naming ``path`` and the key."""
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise ConfigError.from_validation(path, model, error) from None


def refuse(path: Path, problems: list[tuple[KeyPath, str]]) -> None:
    """Raise the problems found beyond the shape (one key against another), if any."""
    if problems:
        raise ConfigError.at(path, problems)


def _identifier(example: str) -> AfterValidator:
    def check(value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"must be a lower-case identifier such as {example}, not {value!r}")
        return value

    return AfterValidator(check)


def _headers(value: Any) -> Any:
    """One header text stands for a list of one."""
    return [value] if isinstance(value, str) else value


def _digit_length(value: Any) -> tuple[int, int] | None:
    """``length: 18`` is (18, 18); ``length: [14, 20]`` is (14, 20)."""

    def whole(item: Any) -> bool:
        return isinstance(item, int) and not isinstance(item, bool)

    if value is None:
        return None
    if whole(value):
        low = high = value
    elif isinstance(value, list | tuple) and len(value) == 2 and all(whole(item) for item in value):
        low, high = value
    else:
        raise ValueError(f"must be a number of digits or a list of two, [min, max], not {shown(value)}")
    if not 1 <= low <= high:
        raise ValueError(f"[{low}, {high}] is not a range of digits: 1 <= min <= max")
    return (low, high)


def _encoding(value: str) -> str:
    try:
        codecs.lookup(value)
    except LookupError:
        raise ValueError(f"unknown encoding {value!r}") from None
    return value


def _one_character(value: str) -> str:
    if len(value) != 1:
        raise ValueError(f"must be one character, not {value!r}")
    return value


class _File(SettingsModel):
    pattern: Text
    format: Annotated[str, one_of(FORMATS)]
    encoding: Annotated[str, AfterValidator(_encoding)] | None = None  # csv only; utf-8 when not given
    delimiter: Annotated[str, AfterValidator(_one_character)] = ","


class _Header(SettingsModel):
    locate: Annotated[str, one_of(HEADER_LOCATE)] = "first_row"
    search_rows: Annotated[int, Field(ge=1)] = 10


class _Subject(SettingsModel):
    name: Text
    identity_number: Text


class _Household(SettingsModel):
    number: Text
    place: YamlList[Text] = ()
    relation: Text | None = None


class _Column(SettingsModel):
    header: Annotated[
        YamlList[Text],
        BeforeValidator(_headers),
        Field(min_length=1, description="a header text or a list of them"),
    ]
    type: Annotated[str, one_of(COLUMN_TYPES)]
    required: bool = False
    codes: Annotated[dict[str, str], Field(min_length=1)] | None = Field(
        default=None, description="a mapping of delivered value to code"
    )
    length: Annotated[tuple[int, int] | None, BeforeValidator(_digit_length)] = None


class _Source(SettingsModel):
    source: Annotated[str, _identifier("registry")]
    title: Text | None = None  # the source name when not given
    department: str = ""
    required: bool = True
    file: _File
    header: _Header = _Header()
    subject: _Subject
    household: _Household | None = None
    columns: Annotated[
        dict[Annotated[str, _identifier("county_code")], _Column],
        Field(min_length=1, description="a mapping of canonical column name to its header and type"),
    ]


def _column_problems(name: str, column: _Column) -> list[tuple[KeyPath, str]]:
    where: KeyPath = ("columns", name)
    problems: list[tuple[KeyPath, str]] = []
    if column.type in {"code", "code_list"}:
        if column.codes is None:
            problems.append(
                ((*where, "codes"), f"is missing: a {column.type} column maps each delivered value to a code")
            )
        seen: dict[str, str] = {}
        for label in column.codes or {}:
            folded = normalise_label(label)
            if folded in seen:
                problems.append(((*where, "codes", label), f"same value as {seen[folded]!r} once normalised"))
            seen[folded] = label
    elif column.codes is not None:
        problems.append(((*where, "codes"), f"only code and code_list columns take codes, not {column.type}"))
    if column.length is not None and column.type != "digits":
        problems.append(((*where, "length"), f"only digits columns take a length, not {column.type}"))
    return problems


def _problems(document: _Source, path: Path) -> list[tuple[KeyPath, str]]:
    """What the shape cannot say: one key checked against another, and against the file name."""
    problems: list[tuple[KeyPath, str]] = []
    if path.stem != document.source:
        problems.append(
            (("source",), f"is {document.source!r} but the file is named {path.name}; name it {document.source}.yaml")
        )
    header_owner: dict[str, str] = {}
    for name, column in document.columns.items():
        problems += _column_problems(name, column)
        for header in column.header:
            folded = normalise_label(header)
            if folded in header_owner:
                problems.append((("columns", name, "header"), f"{header!r} is already read by {header_owner[folded]}"))
            else:
                header_owner[folded] = name
    for key, wanted in (("name", "name"), ("identity_number", "identity_number")):
        column_name = getattr(document.subject, key)
        subject_column = document.columns.get(column_name)
        if subject_column is None:
            problems.append((("subject", key), f"names no column: {column_name!r}"))
        elif subject_column.type != wanted:
            problems.append((("subject", key), f"column {column_name!r} has type {subject_column.type}, not {wanted}"))
    if document.household is not None:
        problems += _household_problems(document.household, document.columns)
    return problems


def _household_problems(household: _Household, columns: dict[str, _Column]) -> list[tuple[KeyPath, str]]:
    problems: list[tuple[KeyPath, str]] = []
    number = columns.get(household.number)
    if number is None or number.type != "digits":
        problems.append((("household", "number"), f"must name a digits column, not {household.number!r}"))
    for index, name in enumerate(household.place):
        if name not in columns:
            problems.append((("household", "place", index), f"names no column: {name!r}"))
    if household.relation is not None and household.relation not in columns:
        problems.append((("household", "relation"), f"names no column: {household.relation!r}"))
    return problems


def parse_source_spec(document: Any, path: Path) -> SourceSpec:
    """Validate one loaded YAML document and build its :class:`SourceSpec`."""
    source = validate_settings(_Source, document, path)
    refuse(path, _problems(source, path))
    file_format = source.file.format
    return SourceSpec(
        source=source.source,
        title=source.title or source.source,
        department=source.department,
        required=source.required,
        file=FileSpec(
            pattern=source.file.pattern,
            format=file_format,
            encoding=source.file.encoding or ("utf-8" if file_format == "csv" else "xlsx"),
            delimiter=source.file.delimiter,
        ),
        header=HeaderSpec(locate=source.header.locate, search_rows=source.header.search_rows),
        subject_name=source.subject.name,
        subject_identity_number=source.subject.identity_number,
        columns=tuple(
            ColumnSpec(
                name=name,
                headers=column.header,
                type=column.type,
                required=column.required,
                codes=tuple((column.codes or {}).items()),
                length=column.length,
            )
            for name, column in source.columns.items()
        ),
        path=path,
        household=HouseholdSpec(
            number=source.household.number,
            place=source.household.place,
            relation=source.household.relation,
        )
        if source.household is not None
        else None,
    )


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key written twice in one mapping is an error:
    PyYAML would keep the second silently (a second ``sex:`` column replacing the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # PyYAML's own error follows
            if key in first_line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} written twice (first on line {first_line[key]})", key_node.start_mark
                )
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """A configuration file's document; unreadable or malformed files fail naming the file."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # a SafeLoader
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
    specs: dict[str, SourceSpec] = {}
    broken: list[str] = []
    for path in paths:
        try:
            spec = load_source_spec(path)
        except ConfigError as error:  # every broken definition at once, not the first only
            broken.append(str(error))
        else:
            specs[spec.source] = spec
    if broken:
        raise ConfigError("\n".join(broken))
    return specs
