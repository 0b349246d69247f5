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
What every settings loader shares (:func:`read_yaml`, :class:`SettingsModel`,
:func:`validate_settings`) is in :mod:`lookback.settings`.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
)

from lookback.errors import ConfigError, KeyPath, shown
from lookback.paths import sources_dir
from lookback.settings import SettingsModel, Text, YamlList, one_of, read_yaml, refuse, validate_settings
from lookback.validate.derived import Derived, DerivedModel, derived_columns, derived_problems
from lookback.xlsx import ArchiveLimits

# The limits of a workbook whose source sets none.
NO_LIMITS_GIVEN = ArchiveLimits()

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
# The kinds of staging column a source column expands to.
TEXT, DATE, INTEGER, MONEY, BOOLEAN = "text", "date", "integer", "money", "boolean"
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

    def staging_columns(self) -> list[tuple[str, str]]:
        """The staging columns (name, kind) this column expands to."""
        name = self.name
        if self.type == "name":
            return [(name, TEXT), (f"{name}_raw", TEXT), (f"{name}_pinyin", TEXT), (f"{name}_placeholder", BOOLEAN)]
        if self.type == "identity_number":
            return [
                (name, TEXT),
                (f"{name}_raw", TEXT),
                (f"{name}_status", TEXT),
                (f"{name}_problem", TEXT),
                (f"{name}_birth_date", DATE),
                (f"{name}_sex", TEXT),
            ]
        if self.type in {"code", "code_list", "county"}:
            return [(name, TEXT), (f"{name}_label", TEXT)]
        if self.type == "digits":
            return [(name, TEXT), (f"{name}_raw", TEXT), (f"{name}_problem", TEXT)]
        if self.type == "place":
            return [(name, TEXT), (f"{name}_key", TEXT)]
        kinds = {"date": DATE, "year_month": DATE, "year": INTEGER, "integer": INTEGER, "money": MONEY}
        return [(name, kinds.get(self.type, TEXT))]

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
    # xlsx: how large the workbook may unpack (``max_unpacked_mb``, ``max_compression_ratio``, ``max_entries``)
    limits: ArchiveLimits = NO_LIMITS_GIVEN


@dataclass(frozen=True)
class DatabaseSpec:
    """A source read from a table or a query in the department's database (``database:``)."""

    connection: str  # the connection id, resolved to a SQLAlchemy URL when the source is read
    order_by: tuple[str, ...]  # result columns that make the row order, and so ``source_row``, repeatable
    table: str | None = None
    schema: str | None = None
    query: str | None = None  # may bind ``:batch_id`` and the names of ``parameters``
    parameters: tuple[tuple[str, str | int | float | bool], ...] = ()
    chunk_rows: int = 50_000

    @property
    def origin(self) -> str:
        """Where the rows come from, as the accounting names it: ``db:<connection>/<schema.table>``
        or ``db:<connection>/query`` (never the URL, which may hold a password)."""
        if self.table is not None:
            return f"db:{self.connection}/{self.schema + '.' if self.schema else ''}{self.table}"
        return f"db:{self.connection}/query"


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
    file: FileSpec | None  # None for a source read from a database
    header: HeaderSpec
    subject_name: str
    subject_identity_number: str
    columns: tuple[ColumnSpec, ...]
    path: Path
    database: DatabaseSpec | None = None  # where a source not delivered as a file is read
    household: HouseholdSpec | None = None
    # Columns the quality suites check that are computed from several cells (``derived:``).
    derived: tuple[Derived, ...] = ()
    # The staging column each canonical linkage field is read from (``linkage:``): field,
    # column or ``=constant``; empty for a source the linkage does not read.
    linkage: tuple[tuple[str, str], ...] = ()
    order: int | None = None  # where it stands among the sources (None: after those that say, by name)

    @property
    def delivered_file(self) -> FileSpec:
        """The file the source is delivered as; a source read from a database has none."""
        if self.file is None:
            raise ConfigError(f"{self.path}: source {self.source} is read from a database, not delivered as a file")
        return self.file

    @property
    def text_cells(self) -> bool:
        """Whether delivered texts come from a spreadsheet's text cells, which cannot lose
        digits. A database's text is treated as a CSV's: it may have been loaded from a sheet."""
        return self.file is not None and self.file.format == "xlsx"

    @property
    def order_key(self) -> tuple[int, int, str]:
        return (0, self.order, self.source) if self.order is not None else (1, 0, self.source)

    def column(self, name: str) -> ColumnSpec:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def staging_table(self) -> str:
        return f"staging_{self.source}"


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
    # xlsx only: a workbook is refused before it is read when it would unpack to more.
    max_unpacked_mb: Annotated[int, Field(ge=1)] = ArchiveLimits.unpacked_mb
    max_compression_ratio: Annotated[float, Field(ge=1)] = ArchiveLimits.compression_ratio
    max_entries: Annotated[int, Field(ge=1)] = ArchiveLimits.entries


_LIMIT_KEYS = frozenset({"max_unpacked_mb", "max_compression_ratio", "max_entries"})
_QUERY_END = re.compile(r"[\s;]+$")


def _query(value: str) -> str:
    """A query without the semicolon it may end with (it is read as a subquery)."""
    query = _QUERY_END.sub("", value)
    if not query:
        raise ValueError("must not be empty")
    return query


class _Database(SettingsModel):
    connection: Annotated[
        Text, Field(description="the connection id: an Airflow connection, or LOOKBACK_CONNECTION_<ID> outside Airflow")
    ]
    table: Text | None = None
    schema_: Text | None = Field(default=None, alias="schema")
    query: Annotated[str, AfterValidator(_query)] | None = None
    parameters: dict[Annotated[str, _identifier("county")], str | int | float | bool] = Field(
        default_factory=dict, description="a mapping of query parameter name to value"
    )
    order_by: Annotated[
        YamlList[Text],
        BeforeValidator(_headers),
        Field(min_length=1, description="a result column or a list of them"),
    ]
    chunk_rows: Annotated[int, Field(ge=1)] = 50_000


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
    order: Annotated[int, Field(ge=1)] | None = None
    file: _File | None = None
    database: _Database | None = None
    header: _Header = _Header()
    subject: _Subject
    household: _Household | None = None
    columns: Annotated[
        dict[Annotated[str, _identifier("county_code")], _Column],
        Field(min_length=1, description="a mapping of canonical column name to its header and type"),
    ]
    derived: dict[Annotated[str, _identifier("heads_in_household")], DerivedModel] = Field(
        default_factory=dict, description="a mapping of derived column name to its kind and columns"
    )
    linkage: dict[Annotated[str, _identifier("identity_number")], Text] = Field(
        default_factory=dict, description="a mapping of linkage field to staging column"
    )


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
    problems += _delivery_problems(document)
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
    staged = frozenset(
        {"source_row"}
        | {
            name
            for column_name, column in document.columns.items()
            for name, _kind in _column_spec(column_name, column).staging_columns()
        }
    )
    problems += derived_problems(document.derived, staged)
    for field_name, column_name in document.linkage.items():
        if not column_name.startswith("=") and column_name not in staged:
            problems.append((("linkage", field_name), f"names no staging column: {column_name!r}"))
    return problems


def _delivery_problems(document: _Source) -> list[tuple[KeyPath, str]]:
    """A source is delivered as a file or read from a database, and a database source from
    a table or a query."""
    if document.file is None and document.database is None:
        return [(("file",), "is missing: a source is delivered as a file (file:) or read from a database (database:)")]
    if document.file is not None and document.database is not None:
        return [(("database",), "a source is delivered as a file or read from a database, not both: keep one")]
    database = document.database
    if database is None:
        file = document.file
        limits = (
            sorted({"max_unpacked_mb", "max_compression_ratio", "max_entries"} & file.model_fields_set) if file else []
        )
        if file is not None and file.format != "xlsx" and limits:
            return [(("file", key), "goes with format xlsx: only a workbook is unpacked") for key in limits]
        return []
    problems: list[tuple[KeyPath, str]] = []
    if "header" in document.model_fields_set:
        problems.append((("header",), "goes with file: a database's rows have no header row to find"))
    if database.table is not None and database.query is not None:
        problems.append((("database", "query"), "a database source reads a table or a query, not both: keep one"))
    elif database.table is None and database.query is None:
        problems.append((("database",), "needs a table (optionally with schema) or a query"))
    if database.query is not None:
        if database.schema_ is not None:
            problems.append((("database", "schema"), "goes with table, not with query"))
        if "batch_id" in database.parameters:
            problems.append((("database", "parameters", "batch_id"), "is the batch being read: it cannot be set"))
        known = {"batch_id", *database.parameters}
        for name in sorted(query_parameters(database.query)):
            if name not in known:
                problems.append(
                    (("database", "query"), f"binds :{name}, which is neither :batch_id nor one of parameters")
                )
    elif database.parameters:
        problems.append((("database", "parameters"), "go with query, not with table"))
    return problems


def query_parameters(query: str) -> set[str]:
    """The names a query binds (``:batch_id``), as SQLAlchemy reads them."""
    from sqlalchemy import text

    return set(text(query).compile().params)


def _database_spec(database: _Database) -> DatabaseSpec:
    return DatabaseSpec(
        connection=database.connection,
        order_by=database.order_by,
        table=database.table,
        schema=database.schema_,
        query=database.query,
        parameters=tuple(database.parameters.items()),
        chunk_rows=database.chunk_rows,
    )


def _column_spec(name: str, column: _Column) -> ColumnSpec:
    return ColumnSpec(
        name=name,
        headers=column.header,
        type=column.type,
        required=column.required,
        codes=tuple((column.codes or {}).items()),
        length=column.length,
    )


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
    file = source.file
    return SourceSpec(
        source=source.source,
        title=source.title or source.source,
        department=source.department,
        required=source.required,
        file=FileSpec(
            pattern=file.pattern,
            format=file.format,
            encoding=file.encoding or ("utf-8" if file.format == "csv" else "xlsx"),
            delimiter=file.delimiter,
            limits=ArchiveLimits(
                unpacked_mb=file.max_unpacked_mb,
                compression_ratio=file.max_compression_ratio,
                entries=file.max_entries,
            ),
        )
        if file is not None
        else None,
        database=_database_spec(source.database) if source.database is not None else None,
        header=HeaderSpec(locate=source.header.locate, search_rows=source.header.search_rows),
        subject_name=source.subject.name,
        subject_identity_number=source.subject.identity_number,
        columns=tuple(_column_spec(name, column) for name, column in source.columns.items()),
        path=path,
        household=HouseholdSpec(
            number=source.household.number,
            place=source.household.place,
            relation=source.household.relation,
        )
        if source.household is not None
        else None,
        derived=derived_columns(source.derived),
        linkage=tuple(source.linkage.items()),
        order=source.order,
    )


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
