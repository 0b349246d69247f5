"""The tables the suites validate: a stage's rows of one batch, with the columns their checks
read.

A suite checks columns; some checks need more than one row (one head per household, a son
younger than his father, the members an allowance household lists against the number it
is paid for). Those are computed once, as plain columns of the validated table, so the
suites in ``expectations/`` stay declarative Great Expectations JSON: a source's are
declared in its YAML (``derived:``), the link and census tables' here. A suite may name
only columns the table has.

Identity numbers do not enter the validated tables: a check on them reads
``identity_number_valid`` (the number survived normalisation), so no number can reach the
validation results or the Data Docs. Examples for messages are described from ``people``,
the name and the number of each row, masked when shown.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Numeric, Select, case, literal, null, select

from lookback.sources import SourceSpec, load_source_specs
from lookback.standardise.identity import mask_identity_number
from lookback.validate.derive import with_derived
from lookback.validate.derived import Derived, described
from lookback.warehouse import Warehouse, shared_strings

# Derived columns of the tables that are not a source's: name → what it holds. A source's
# are declared in its YAML (``derived:``, see lookback.validate.derived).
TABLE_DERIVED: Mapping[str, Mapping[str, str]] = {
    "census_extract": {
        "identity_number_valid": "the person has a valid 18-character identity number in the extract",
        "identity_number_holders": "how many persons of the extract carry the person's identity number",
    },
    "person_links": {
        "links_of_row": "person_links rows for the accepted row (exactly one when every row is linked once)",
        "in_review": "1 when the row is in a pair left for review, else 0 (its mean is the review share)",
    },
}


def derived_of(dataset: str, specs: Mapping[str, SourceSpec] | None = None) -> dict[str, str]:
    """A dataset's derived columns: name → what it holds."""
    if dataset in TABLE_DERIVED:
        return dict(TABLE_DERIVED[dataset])
    spec = (specs or load_source_specs()).get(dataset)
    return described(spec.derived) if spec is not None else {}


# What messages name a staged row by: its name and its (masked) number as delivered, the
# first of each pair the staging table has.
_EXAMPLE_NAMES = ("name", "head_name")
_EXAMPLE_NUMBERS = ("identity_number_raw", "head_identity_number_raw")


@dataclass(frozen=True)
class ValidatedTable:
    """What a suite validates: the table, the column that names its rows, and who each row
    is about, for messages (``row 12 王伟 431224********1238``). A source's table reads who
    its rows are about only for the rows its messages name (``read_people``, see
    :meth:`with_people`): the numbers as delivered are read for a few rows, not for all."""

    frame: pd.DataFrame
    key: str  # a column of frame naming each row
    people: pd.DataFrame | None = None  # indexed by key: name, number (as delivered; masked when shown)
    row_word: str = "row"
    read_people: Callable[[Collection[Any]], pd.DataFrame] | None = None  # ``people`` of the rows of some keys

    def with_people(self, keys: Collection[Any]) -> ValidatedTable:
        """The table with ``people`` for the rows of ``keys`` (those its messages name), where
        it reads them when asked."""
        if self.read_people is None:
            return self
        return replace(self, people=self.read_people(keys), read_people=None)

    def describe(self, key: Any) -> str:
        words = [f"{self.row_word} {key}".strip()]
        if self.people is not None and key in self.people.index:
            name, number = self.people.at[key, "name"], self.people.at[key, "number"]
            if isinstance(name, str) and name:
                words.append(name)
            if isinstance(number, str) and number:
                words.append(mask_identity_number(number))
        return " ".join(words)


def _staging(
    warehouse: Warehouse,
    source: str,
    batch_id: str,
    columns: Iterable[str] | None,
    presence_only: Collection[str] = (),
) -> pd.DataFrame:
    """The batch's staged rows of ``source``: all columns, or those of ``columns`` it has.
    A column of ``presence_only`` (whose values nothing reads, only whether there is one)
    holds 1 where the row has a value and is empty where not: the values themselves, an
    identity number on every row, cost far more to read."""
    table = warehouse.staging(source)
    wanted = None if columns is None else set(columns)
    picked = [column for column in table.columns if wanted is None or column.name in wanted]
    picked = [table.c.source_row, *(column for column in picked if column.name != "source_row")]
    selected = [
        case((column.is_not(None), literal(1)), else_=null()).label(column.name)
        if column.name in presence_only
        else column
        for column in picked
    ]
    query = select(*selected).where(table.c.batch_id == batch_id).order_by(table.c.source_row)
    with warehouse.engine.connect() as connection:
        frame = _read_fast(connection, query)
    for column in picked:
        if isinstance(column.type, Numeric) and column.name in frame:
            frame[column.name] = pd.to_numeric(frame[column.name], errors="coerce")  # Decimal → float
    return frame


def _presence_only(derived: Iterable[Derived], columns: Iterable[str]) -> frozenset[str]:
    """The staged columns that only ``present`` checks read (whether a row has a value)
    and the suite does not name."""
    present: set[str] = set()
    read_otherwise: set[str] = set(columns)
    for spec in derived:
        if spec.kind == "present":
            present.update(spec.columns)
        else:
            read_otherwise.update(spec.reads)
    return frozenset(present - read_otherwise)


# Rows fetched at a time: the driver's tuples of a whole table would be held at once.
READ_CHUNK = 100_000


def _read_fast(connection: Connection, query: Select[Any]) -> pd.DataFrame:
    """Rows as the database driver returns them, without SQLAlchemy's per-value processing
    (which turns every SQLite date text into a date object): half the time of read_sql.

    Fetched a chunk at a time, each column's values kept as arrays with equal strings one
    object (the driver makes a string per row for every county, village, date), the frame
    built once at the end, each column's dtype inferred as from the rows' tuples: at a million
    persons the tuples and repeated strings of the largest export held gigabytes."""
    compiled = query.compile(dialect=connection.dialect)
    parameters: Any = compiled.params
    if compiled.positional:
        parameters = tuple(compiled.params[name] for name in compiled.positiontup or ())
    cursor = connection.connection.cursor()
    try:
        cursor.execute(str(compiled), parameters)
        columns = [description[0] for description in cursor.description]
        chunks: list[list[np.ndarray]] = [[] for _ in columns]
        pools: list[dict[str, str]] = [{} for _ in columns]
        while rows := cursor.fetchmany(READ_CHUNK):
            block = np.empty((len(rows), len(columns)), dtype=object)
            block[:] = rows  # the tuples' values, row by row, in C
            del rows
            for index, (kept, pool) in enumerate(zip(chunks, pools, strict=True)):
                kept.append(_shared(np.ascontiguousarray(block[:, index]), pool))
            del block
    finally:
        cursor.close()
    if not chunks or not chunks[0]:
        return pd.DataFrame.from_records([], columns=columns)
    frame = pd.DataFrame(
        {name: np.concatenate(kept) for name, kept in zip(columns, chunks, strict=True)}, columns=columns
    )
    del chunks
    # Each column's dtype inferred from its values, as pandas infers it from the rows' tuples.
    return frame.infer_objects()


def _shared(values: np.ndarray, pool: dict[str, str]) -> np.ndarray:
    """A chunk's values of one column, each string replaced by the equal one met first (each
    distinct value looked up once), unless most of its values are distinct."""
    if not any(type(value) is str for value in values[:1000]):  # numbers, dates, NULLs: as they are
        return values
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if len(uniques) > len(values) // 2:  # names, numbers: nearly every value its own
        return values
    return shared_strings(values, codes, uniques, pool)


def compact(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """Every text column but the key as a categorical: the same values, nulls and batch
    fingerprint for Great Expectations, which filters the whole table for each metric (a
    categorical's codes are taken in a fraction of the time its strings are) and tests
    nulls and sets on the distinct values once; codes also hold a fraction of the memory."""
    texts = [column for column in frame.columns if column != key and pd.api.types.is_string_dtype(frame[column])]
    if not texts:
        return frame
    frame = frame.copy()
    for column in texts:
        # In order of appearance: sorting the categories (as astype does) costs more than
        # the categorical saves on a column of person keys.
        codes, uniques = pd.factorize(frame[column])
        frame[column] = pd.Categorical.from_codes(codes, categories=uniques)
    return frame


def _without_identity_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop every column that holds an identity number, cleaned or as delivered, and phones."""
    numbers = [
        column
        for column in frame.columns
        if column.endswith(("identity_number", "identity_number_raw")) or column.startswith("phone")
    ]
    return frame.drop(columns=numbers)


def _people_reader(warehouse: Warehouse, source: str, batch_id: str) -> Callable[[Collection[Any]], pd.DataFrame]:
    """What reads the staged rows' names and numbers as delivered, by ``source_row``, for the
    rows of the keys it is given (a row without such a column has neither)."""
    table = warehouse.staging(source)

    def first_of(names: tuple[str, ...]) -> Any:
        return next((table.c[name] for name in names if name in table.c), literal(None))

    name, number = first_of(_EXAMPLE_NAMES), first_of(_EXAMPLE_NUMBERS)

    def read(keys: Collection[Any]) -> pd.DataFrame:
        rows: list[tuple[Any, ...]] = []
        if keys:
            query = select(table.c.source_row, name, number).where(
                table.c.batch_id == batch_id, table.c.source_row.in_(sorted(set(keys)))
            )
            with warehouse.engine.connect() as connection:
                rows = [tuple(row) for row in connection.execute(query)]
        return pd.DataFrame(
            {"name": [row[1] for row in rows], "number": [row[2] for row in rows]},
            index=[row[0] for row in rows],
            dtype=object,
        )

    return read


def with_checks(
    source: str, frame: pd.DataFrame, as_of: date, specs: Mapping[str, SourceSpec] | None = None
) -> pd.DataFrame:
    """The staged rows of ``source`` with the derived columns its YAML declares added."""
    spec = (specs or load_source_specs()).get(source)
    return with_derived(frame.copy(), spec.derived, as_of) if spec is not None and spec.derived else frame


def source_table(
    warehouse: Warehouse, source: str, batch_id: str, as_of: date, columns: Iterable[str] | None = None
) -> ValidatedTable | None:
    """A source's staged rows of the batch with the derived columns; None when it delivered
    nothing. With ``columns`` (those a suite names), only what they need is read, and the
    table holds only them: validation time grows with every column a table carries."""
    spec = warehouse.specs[source]
    inputs = frozenset().union(*(derived.reads for derived in spec.derived))
    wanted = None if columns is None else set(columns) | inputs
    presence_only = () if columns is None else _presence_only(spec.derived, columns)
    frame = _staging(warehouse, source, batch_id, wanted, presence_only)
    if frame.empty:
        return None
    frame = with_checks(source, frame, as_of, warehouse.specs)
    frame = _without_identity_numbers(frame)
    if columns is not None:
        frame = frame[["source_row", *(c for c in frame.columns if c in set(columns) and c != "source_row")]]
    return ValidatedTable(
        frame=compact(frame, "source_row"),
        key="source_row",
        read_people=_people_reader(warehouse, source, batch_id),
    )


def _linked_rows(connection: Connection, warehouse: Warehouse, source: str, batch_id: str) -> pd.DataFrame:
    """The batch's staged rows of ``source`` in their order, each with its link (empty where
    it has none): one join in the database, instead of reading the staged rows and the links
    apart and merging them in pandas."""
    staged = warehouse.staging(source)
    links = warehouse.table("person_links")
    query = (
        select(
            staged.c.source_row,
            links.c.person_id,
            links.c.household_key,
            links.c.match_method,
            links.c.conflicting_identity,
            links.c.source_row.is_not(None).label("linked"),
        )
        .select_from(
            staged.outerjoin(
                links,
                (links.c.batch_id == staged.c.batch_id)
                & (links.c.source == source)
                & (links.c.source_row == staged.c.source_row),
            )
        )
        .where(staged.c.batch_id == batch_id)
        .order_by(staged.c.source_row)
    )
    return _read_fast(connection, query)


def _review_rows(connection: Connection, warehouse: Warehouse, batch_id: str) -> set[tuple[str, int]]:
    """The rows (source, source row) in a pair left for review."""
    review = warehouse.table("match_review")
    pairs = connection.execute(
        select(review.c.source_1, review.c.source_row_1, review.c.source_2, review.c.source_row_2).where(
            review.c.batch_id == batch_id
        )
    ).all()
    return {(source_1, row_1) for source_1, row_1, _, _ in pairs} | {
        (source_2, row_2) for _, _, source_2, row_2 in pairs
    }


def link_table(warehouse: Warehouse, batch_id: str, columns: Iterable[str] | None = None) -> ValidatedTable:
    """Every accepted row of the batch with its links: person, household, method, and
    whether it is left for review. With ``columns`` (those a suite names), the table holds
    only them and the row's key.

    A row has at most one link (person_links' key is the batch, source and row), so
    ``links_of_row`` is whether the join found one."""
    parts = []
    with warehouse.engine.connect() as connection:
        in_review = _review_rows(connection, warehouse, batch_id)
        for source in warehouse.specs:
            part = _linked_rows(connection, warehouse, source, batch_id)
            rows = part["source_row"].to_numpy(dtype=np.int64)
            reviewed = np.fromiter((row for name, row in in_review if name == source), dtype=np.int64)
            part.insert(1, "source", source)
            part["links_of_row"] = part.pop("linked").to_numpy(dtype=np.int64)
            part["in_review"] = np.isin(rows, reviewed).astype(np.int64)
            part["row"] = (source + ":") + part["source_row"].astype(str)
            parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    # Nullable booleans: a row without a link has no value.
    frame["conflicting_identity"] = pd.array(
        [None if value is None or value != value else bool(value) for value in frame["conflicting_identity"]],
        dtype="boolean",
    )
    if columns is not None:
        frame = frame[["row", *(c for c in frame.columns if c in set(columns) and c != "row")]]
    return ValidatedTable(frame=compact(frame, "row"), key="row", row_word="")


def census_table(warehouse: Warehouse, run_id: str, columns: Iterable[str] | None = None) -> ValidatedTable:
    """The run's census extract, one row per person; the identity number is replaced by
    ``identity_number_valid`` and ``identity_number_holders`` (persons of the extract
    carrying the same number), so no number reaches the results. With ``columns`` (those a
    suite names), the table holds only them and the person's key."""
    extract = warehouse.table("census_extract")
    wanted = None if columns is None else {"person_id", "name", "identity_number", *columns}
    picked = [column for column in extract.columns if wanted is None or column.name in wanted]
    with warehouse.engine.connect() as connection:
        frame = _read_fast(connection, select(*picked).where(extract.c.run_id == run_id))
    numbers = frame["identity_number"]
    valid = numbers.notna() & numbers.astype("string").str.fullmatch(r"[0-9]{17}[0-9X]").fillna(False)
    frame["identity_number_valid"] = valid.astype(bool)
    holders = numbers.map(numbers.value_counts())
    frame["identity_number_holders"] = holders.where(numbers.notna()).astype("Int64")
    people = frame.set_index("person_id")[["name", "identity_number"]].rename(columns={"identity_number": "number"})
    frame = frame.drop(columns=[column for column in ("identity_number", "run_id") if column in frame])
    if columns is not None:
        frame = frame[["person_id", *(c for c in frame.columns if c in set(columns) and c != "person_id")]]
    return ValidatedTable(frame=compact(frame, "person_id"), key="person_id", people=people, row_word="person")
