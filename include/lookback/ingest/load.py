"""Ingest one source of a batch: read it, account for every record, stage what is accepted.

Every delivered record ends in exactly one of three places:

* **accepted**: standardised into ``staging_<source>`` with its ``source_row``; values that
  could not be standardised are kept as problems in ``value_problems`` (an invalid
  identity number alone never rejects a row);
* **skipped**: a blank record, a total line (``合计``) or the header line repeated (two
  exports pasted into one file), listed in ``skipped_rows``;
* **quarantined**: a record that is structurally broken (a missing or extra delimiter)
  or that identifies nobody (no usable name and no valid identity number), kept whole in
  ``quarantine`` with a reason code and words.

A CSV record must have the number of fields the file's lines have: the header's, or, when
more than half of the records that hold data end with the same number of empty fields
beyond the header (some exporters end every line with a comma), the header's and those.
A blank surplus on one record does not show that nothing moved, since a comma typed
inside a row whose last field is blank pushes that blank beyond the header; and in a file
whose lines end with a comma, the record with the header's width is the one that lost a
delimiter. Deciding that needs the whole file, so a CSV is read twice, the first time
only to count fields.

``delivered = accepted + skipped + quarantined`` is checked before the load commits, and
stored per source and batch in ``ingest_accounting``.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from functools import lru_cache
from itertools import compress, islice
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Dialect, Table

from lookback import collector
from lookback.connections import Connections
from lookback.errors import ConfigError, DeliveryError
from lookback.faults import fault_point
from lookback.ingest.database import DeliveredTable, open_table
from lookback.ingest.placement import place_households
from lookback.ingest.progress import Progress
from lookback.ingest.readers import DeliveredFile, DeliveredRecord, open_delivery, raw_json
from lookback.paths import check_file_name, is_safe_name
from lookback.sources import SourceSpec, normalise_label
from lookback.standardise.columns import Standardiser
from lookback.standardise.identity import normalise_identity_number
from lookback.standardise.names import normalise_name
from lookback.standardise.places import CountyResolver, county_resolver
from lookback.warehouse import Warehouse

log = logging.getLogger(__name__)

# A source's rows as delivered: a file, or a table or query in the department's database.
Delivery = DeliveredFile | DeliveredTable

TOTAL_MARKERS = ("合计", "总计")
STAGE_CHUNK = 10_000

# Quarantine reason codes.
FIELD_COUNT = "field_count"
NO_IDENTIFIER = "no_identifier"
NUL_CHARACTER = "nul_character"
# Skip reason codes.
BLANK = "blank"
TOTAL_LINE = "total_line"
REPEATED_HEADER = "repeated_header"
# The row accounting of a delivery as published (ingest_accounting.csv) and printed.
ACCOUNTING_COLUMNS = (
    "source",
    "status",
    "file_name",
    "sheet_name",
    "encoding",
    "delivered",
    "accepted",
    "skipped",
    "quarantined",
    "value_problems",
)


@dataclass(frozen=True)
class SourceAccounting:
    """What became of one source's delivery in one batch (no personal data)."""

    batch_id: str
    source: str
    status: str  # ingested / not_delivered
    file_name: str | None = None
    file_sha256: str | None = None
    file_format: str | None = None
    encoding: str | None = None
    sheet_name: str | None = None  # XLSX: the sheet read
    header_position: int | None = None
    delivered: int = 0
    accepted: int = 0
    skipped: int = 0
    quarantined: int = 0
    value_problems: int = 0
    ignored_headers: tuple[str, ...] = field(default=())

    @property
    def balanced(self) -> bool:
        return self.delivered == self.accepted + self.skipped + self.quarantined

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ignored_headers": list(self.ignored_headers), "balanced": self.balanced}

    def to_row(self, ingested_at: datetime) -> dict[str, Any]:
        """The ``ingest_accounting`` row."""
        return asdict(self) | {"ignored_headers": "、".join(self.ignored_headers) or None, "ingested_at": ingested_at}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SourceAccounting:
        values = {f.name: row[f.name] for f in fields(cls)}
        values["ignored_headers"] = tuple(row["ignored_headers"].split("、")) if row["ignored_headers"] else ()
        return cls(**values)


def check_batch_id(batch_id: str) -> str:
    """A batch or run id, whole: it names folders (``runs/<batch>``), so ``..``, a separator,
    NUL or a line break (``b1\\n``) is refused."""
    if not isinstance(batch_id, str) or not is_safe_name(batch_id):
        raise DeliveryError(
            f"batch id {batch_id!r}: use letters, digits, '.', '_' or '-' (at most 64, starting with a "
            "letter or digit, no '..')"
        )
    return batch_id


def find_delivery(spec: SourceSpec, batch_dir: Path) -> Path | None:
    """The source's file in the batch folder, None when not delivered; more than one is an error."""
    if not batch_dir.is_dir():
        raise DeliveryError(f"{batch_dir}: landing folder does not exist")
    check_landing_folder(batch_dir)
    pattern = spec.delivered_file.pattern
    matches = sorted(path for path in batch_dir.glob(pattern) if path.is_file() and not path.name.startswith("~$"))
    for path in matches:
        try:
            check_file_name(path.name, str(batch_dir))
        except ConfigError as error:
            raise DeliveryError(str(error)) from None
    if len(matches) > 1:
        names = ", ".join(path.name for path in matches)
        raise DeliveryError(f"{batch_dir}: more than one file for source {spec.source} ({names}); keep one")
    if not matches:
        if spec.required:
            raise DeliveryError(
                f"{batch_dir}: mandatory source {spec.source} ({spec.title}) not delivered: no file matching {pattern}"
            )
        return None
    return matches[0]


def check_landing_folder(batch_dir: Path) -> None:
    """Refuse a landing folder holding a symbolic link that leads out of it (to a file or a
    folder): what is read must be what was delivered into the folder, never a file elsewhere
    on the machine that a link names."""
    root = batch_dir.resolve()
    for entry in sorted(batch_dir.iterdir()):
        if not entry.is_symlink():
            continue
        target = entry.resolve()
        if target == root or not target.is_relative_to(root):
            kind = "folder" if target.is_dir() else "file"
            raise DeliveryError(
                f"{entry}: a symbolic link to a {kind} outside the landing folder ({target}): refused; "
                "copy the export into the folder instead"
            )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def map_header(spec: SourceSpec, delivered: Delivery) -> tuple[dict[str, int], tuple[str, ...]]:
    """Canonical column → position in the record, and the delivered headers not read (a
    database's columns are its header).

    A required column missing from the header fails the file, naming what is missing and
    what was found.
    """
    positions = {normalise_label(header): index for index, header in enumerate(delivered.header) if header}
    mapping: dict[str, int] = {}
    missing: list[str] = []
    for column in spec.columns:
        index = next((positions[normalise_label(h)] for h in column.headers if normalise_label(h) in positions), None)
        if index is not None:
            mapping[column.name] = index
        elif column.required:
            missing.append("/".join(column.headers))
    if missing:
        found = "、".join(header for header in delivered.header if header)
        raise DeliveryError(
            f"{delivered.name}: required column(s) {'、'.join(missing)} missing from the header "
            f"({delivered.header_where}; found: {found})"
        )
    used = set(mapping.values())
    ignored = tuple(header for index, header in enumerate(delivered.header) if header and index not in used)
    ignored += delivered.left_out
    return mapping, ignored


# The columns of the rows gathered for the bookkeeping tables, in the order of their values.
SKIPPED_COLUMNS = ("batch_id", "source", "source_row", "position", "reason_code", "raw_record")
QUARANTINE_COLUMNS = (
    "batch_id",
    "source",
    "source_row",
    "file_name",
    "position",
    "reason_code",
    "reason",
    "raw_record",
)
PROBLEM_COLUMNS = ("batch_id", "source", "source_row", "column_name", "header", "problem", "message", "raw_value")


@dataclass
class _Outcome:
    """Rows gathered for one chunk of the load: the staged rows column by column (keyed by
    :attr:`SourceIngest.staged_columns`, values as the warehouse binds them), the others as
    tuples in the order of the ``*_COLUMNS``."""

    staged: dict[str, Sequence[Any]] = field(default_factory=dict)
    accepted: int = 0
    problems: list[tuple[Any, ...]] = field(default_factory=list)
    skipped: list[tuple[Any, ...]] = field(default_factory=list)
    quarantined: list[tuple[Any, ...]] = field(default_factory=list)


def _is_total_line(values: Sequence[str]) -> bool:
    first = values[0] if values and values[0].strip() else next((value for value in values if value.strip()), "")
    return _label(first).startswith(TOTAL_MARKERS)


@lru_cache(maxsize=100_000)
def _label(text: str) -> str:
    """:func:`normalise_label` of a cell that the skip tests read on every record (the first
    cells of a file repeat: counties, the names of a household's head)."""
    return normalise_label(text)


def _labels(values: Sequence[str]) -> tuple[str, ...]:
    """Cells as headers are compared, without the empty cells at the end."""
    labels = [normalise_label(value) for value in values]
    while labels and not labels[-1]:
        labels.pop()
    return tuple(labels)


def _holds_data(values: Sequence[str], width: int) -> bool:
    """Whether a record holds more than white space beyond the header's ``width`` fields."""
    return any(value.strip() for value in values[width:])


def _empty_fields(count: int) -> str:
    return f"{count} empty field" + ("" if count == 1 else "s")


@lru_cache(maxsize=1_000_000)
def _usable_name(name: str) -> bool:
    """Whether a delivered name is usable (names repeat across a batch's sources: cached,
    as :func:`normalise_name` is)."""
    return normalise_name(name).is_usable


def _identifies_someone(names: Sequence[str], identity_numbers: Sequence[str]) -> list[bool]:
    """Whether each record's name is usable or, where it is not, its identity number valid."""
    usable = list(map(_usable_name, names))
    if all(usable):  # nearly every chunk
        return usable
    return [
        named or normalise_identity_number(number).is_valid
        for named, number in zip(usable, identity_numbers, strict=True)
    ]


class SourceIngest:
    """Classifies and standardises the records of one delivery (a file, or a database's rows)."""

    def __init__(
        self,
        spec: SourceSpec,
        batch_id: str,
        delivered: Delivery,
        resolver: CountyResolver,
        bind: Mapping[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        self.spec = spec
        self.batch_id = batch_id
        self.delivered = delivered
        self.resolver = resolver
        self.standardiser = Standardiser(spec, resolver, bind=bind)
        self.mapping, self.ignored_headers = map_header(spec, delivered)
        # Where each of the source's columns is in a record (-1: not delivered).
        self.positions = [self.mapping.get(column.name, -1) for column in spec.columns]
        names = [column.name for column in spec.columns]
        self.subject = (names.index(spec.subject_name), names.index(spec.subject_identity_number))
        self.staged_columns = (
            "batch_id",
            "source",
            "source_row",
            *self.standardiser.names,
            "row_hash",
            "duplicate_of_row",
        )
        self.width = len(delivered.header)
        self.header_labels = _labels(delivered.header)
        # Where a repeated header is looked for first: its first named column.
        self.first_named = next((index for index, label in enumerate(self.header_labels) if label), None)
        self.first_row_by_hash: dict[str, int] = {}
        self.counts = {"delivered": 0, "accepted": 0, "skipped": 0, "quarantined": 0, "value_problems": 0}
        # CSV: the empty fields the file's lines end with after the header's (0 unless the
        # exporter ends every line with a delimiter); counts the records on the way.
        self.total: int | None = delivered.total
        self.trailing_fields = self._trailing_empty_fields()
        # The delivered headers of the subject's columns, which a record must identify someone by.
        self.subject_headers = tuple(
            delivered.header[self.mapping[column]] if column in self.mapping else spec.column(column).headers[0]
            for column in (spec.subject_name, spec.subject_identity_number)
        )

    def _key(self, record: DeliveredRecord) -> tuple[str, str, int]:
        return self.batch_id, self.spec.source, record.source_row

    def _is_header_again(self, values: Sequence[str]) -> bool:
        """The header line once more, as where two exports were pasted into one file
        (compared as headers are: full-width brackets, case and spaces do not matter)."""
        index = self.first_named
        if index is None or index >= len(values) or _label(values[index]) != self.header_labels[index]:
            return False  # the cheap test that settles nearly every record
        return _labels(values) == self.header_labels

    def skip_reason(self, values: Sequence[str]) -> str | None:
        """Why a record holds no data to read, or None when it does."""
        if not "".join(values).strip():  # no cell holds more than white space
            return BLANK
        if _is_total_line(values):
            return TOTAL_LINE
        if self._is_header_again(values):
            return REPEATED_HEADER
        return None

    def _trailing_empty_fields(self) -> int:
        """How many empty fields beyond the header the lines of a CSV end with: the number
        that more than half of the records holding data end with (blank, total and repeated
        header lines aside), else 0. Only field counts are kept while the file is read."""
        if self.delivered.reread is None:
            return 0
        width = self.width
        votes: Counter[int] = Counter()  # records holding data, by field count; -1: data beyond the header
        usual: int | None = None  # the field count of the last record found to hold data
        records = 0
        with closing(self.delivered.reread()) as lines:
            for cells in lines:
                records += 1
                count = len(cells)
                if count > width and any(cell.strip() for cell in cells[width:]):
                    count = -1
                # Only a line whose length differs from the last data line's is classified
                # (that keeps the pass quick); a blank or total line of the same length was
                # written by the same hand, and its vote changes nothing.
                if count != usual:
                    if self.skip_reason(cells) is not None:
                        continue
                    usual = count
                votes[count] += 1
        self.total = records
        if not votes:
            return 0
        count, records = votes.most_common(1)[0]
        if count <= width or 2 * records <= sum(votes.values()):
            return 0
        log.info(
            "%s: %s of %s records end with %s after the header's %d: the file's layout",
            self.delivered.name,
            f"{records:,}",
            f"{sum(votes.values()):,}",
            _empty_fields(count - width),
            width,
        )
        return count - width

    def classify(self, records: Sequence[DeliveredRecord]) -> _Outcome:
        """A chunk of records skipped, quarantined or staged. The records are classified one
        by one; those that hold a person are standardised column by column, each distinct
        text of a column converted once."""
        outcome = _Outcome()
        rows = [record.values for record in records]
        raw_jsons = list(map(raw_json, rows))
        width = self.width
        if self.delivered.format == "csv":
            # More fields than the file's lines have (even blank), fewer, or data in the
            # trailing ones: a delimiter missing or one too many.
            line_width = width + self.trailing_fields
            broken = [len(values) != line_width for values in rows]
            if self.trailing_fields:
                broken = [wrong or _holds_data(values, width) for values, wrong in zip(rows, broken, strict=True)]
        else:  # a sheet has no delimiters: its rows end at their last stored cell
            broken = [len(values) > width and _holds_data(values, width) for values in rows]
        held: list[int] = []  # the records' places in the chunk
        for at, (values, skip, wrong) in enumerate(zip(rows, self._skip_reasons(rows), broken, strict=True)):
            if skip is None and not wrong:
                held.append(at)
            elif skip is not None:
                record = records[at]
                outcome.skipped.append((*self._key(record), record.position, skip, raw_jsons[at]))
            else:
                extra = len(values) > width and _holds_data(values, width)
                if self.delivered.format == "csv":
                    extra = extra or len(values) > width + self.trailing_fields
                reason = self._field_count_reason(len(values), extra)
                self._quarantine(records[at], outcome, FIELD_COUNT, reason, raw_jsons[at])
        held = self._without_nul(records, rows, raw_jsons, held, outcome)
        texts = self._texts([rows[at] for at in held])
        name, identity_number = self.subject
        identifies = _identifies_someone(texts[name], texts[identity_number])
        if not all(identifies):
            for at, identified in zip(held, identifies, strict=True):
                if not identified:
                    reason = (
                        f"neither a usable name ({self.subject_headers[0]}) nor a valid identity number "
                        f"({self.subject_headers[1]}): identifies nobody"
                    )
                    self._quarantine(records[at], outcome, NO_IDENTIFIER, reason, raw_jsons[at])
            outcome.quarantined.sort(key=itemgetter(2))  # by source_row, as the records came
            held = list(compress(held, identifies))
            texts = [list(compress(column, identifies)) for column in texts]
        if held:
            self._stage([records[at] for at in held], [raw_jsons[at] for at in held], texts, outcome)
        return outcome

    def _without_nul(
        self,
        records: Sequence[DeliveredRecord],
        rows: Sequence[Sequence[str]],
        raw_jsons: Sequence[str],
        held: list[int],
        outcome: _Outcome,
    ) -> list[int]:
        """``held`` without the records holding a NUL character, which are quarantined: no
        one types one, a warehouse may refuse it (PostgreSQL does), and it often marks a
        file damaged in transfer. The raw record keeps it escaped (``\\u0000``)."""
        if not any("\\u0000" in raw_jsons[at] for at in held):  # the JSON text escapes it: one test a record
            return held
        kept: list[int] = []
        for at in held:
            columns = [index for index, value in enumerate(rows[at]) if "\x00" in value]
            if not columns:
                kept.append(at)
                continue
            header = self.delivered.header
            named = "、".join(
                header[index].replace("\x00", "") or f"column {index + 1}"
                if index < len(header)
                else f"column {index + 1}"
                for index in columns
            )
            reason = f"a NUL character (\\x00) in {named}: not text anyone types, the export is likely damaged"
            self._quarantine(records[at], outcome, NUL_CHARACTER, reason, raw_jsons[at])
        outcome.quarantined.sort(key=itemgetter(2))
        return kept

    def _skip_reasons(self, rows: Sequence[Sequence[str]]) -> list[str | None]:
        """:meth:`skip_reason` of each record: a record whose first cell holds more than white
        space is not blank, and that cell is the one a total line is told by."""
        index = self.first_named
        header_label = self.header_labels[index] if index is not None else None
        label = _label
        reasons: list[str | None] = []
        for values in rows:
            first = values[0] if values else ""
            if not first.strip():
                reasons.append(self.skip_reason(values))
            elif label(first).startswith(TOTAL_MARKERS):
                reasons.append(TOTAL_LINE)
            elif (
                index is not None
                and index < len(values)
                and label(values[index]) == header_label
                and _labels(values) == self.header_labels
            ):
                reasons.append(REPEATED_HEADER)
            else:
                reasons.append(None)
        return reasons

    def _texts(self, rows: Sequence[Sequence[str]]) -> list[Sequence[str]]:
        """The records' texts of each of the source's columns (empty where not delivered)."""
        width = self.width
        if self.delivered.format != "csv":  # a sheet's row ends at its last stored cell
            rows = [values if len(values) >= width else (*values, *[""] * (width - len(values))) for values in rows]
        lengths = set(map(len, rows))
        if len(lengths) > 1:  # a sheet's rows with blank cells beyond the header's
            return [[values[index] for values in rows] if index >= 0 else [""] * len(rows) for index in self.positions]
        # A CSV's records held all have the file's number of fields: its columns at once.
        cells = list(zip(*rows, strict=True)) if rows else [() for _index in range(width)]
        return [cells[index] if index >= 0 else [""] * len(rows) for index in self.positions]

    def _stage(
        self,
        records: Sequence[DeliveredRecord],
        raw_jsons: Sequence[str],
        texts: Sequence[Sequence[str]],
        outcome: _Outcome,
    ) -> None:
        staged, problems = self.standardiser.convert(texts)
        rows = [record.source_row for record in records]
        hashes = [hashlib.sha256(raw_json.encode("utf-8")).hexdigest() for raw_json in raw_jsons]
        first_row_by_hash = self.first_row_by_hash
        duplicate_of: list[int | None] = []
        for row_hash, row in zip(hashes, rows, strict=True):
            first = first_row_by_hash.setdefault(row_hash, row)
            duplicate_of.append(first if first != row else None)
        count = len(rows)
        outcome.accepted = count
        columns: list[Sequence[Any]] = [
            [self.batch_id] * count,
            [self.spec.source] * count,
            rows,
            *staged,
            hashes,
            duplicate_of,
        ]
        outcome.staged = dict(zip(self.staged_columns, columns, strict=True))
        if problems:
            self.counts["value_problems"] += len(problems)
            batch_id, source = self.batch_id, self.spec.source
            outcome.problems.extend(
                (
                    batch_id,
                    source,
                    rows[row],
                    problem.column,
                    problem.header,
                    problem.problem,
                    problem.message,
                    problem.raw_value,
                )
                for row, problem in problems
            )

    def _field_count_reason(self, fields: int, extra: bool) -> str:
        layout = f"the header has {self.width}"
        if self.trailing_fields:
            layout += f" and the file's lines end with {_empty_fields(self.trailing_fields)} more"
        cause = "an extra delimiter or shifted columns" if extra else "a delimiter is missing"
        return f"{fields} fields where {layout}: {cause}"

    def where(self, record: DeliveredRecord) -> str:
        """``registry_members.csv, row 17 (line 18)`` or ``db:civil/public.roster, row 17``:
        how people find a record in the delivery."""
        return self.delivered.where(record.source_row, record.position)

    def _quarantine(self, record: DeliveredRecord, outcome: _Outcome, code: str, reason: str, raw_json: str) -> None:
        outcome.quarantined.append(
            (
                *self._key(record),
                self.delivered.name,
                record.position,
                code,
                f"{self.where(record)}: {reason}",
                raw_json,
            )
        )

    def chunks(self) -> Iterator[_Outcome]:
        """The records classified chunk by chunk; a progress line in the log now and then
        (:class:`~lookback.ingest.progress.Progress`), checked once a chunk."""
        records = iter(self.delivered.records)
        progress = Progress(self.spec.source, self.total)
        while chunk := list(islice(records, STAGE_CHUNK)):
            self.counts["delivered"] += len(chunk)
            yield self._counted(self.classify(chunk))
            progress.update(self.counts["delivered"])

    def _counted(self, outcome: _Outcome) -> _Outcome:
        self.counts["accepted"] += outcome.accepted
        self.counts["skipped"] += len(outcome.skipped)
        self.counts["quarantined"] += len(outcome.quarantined)
        return outcome


def bind_processors(table: Table, dialect: Dialect) -> dict[str, Callable[[Any], Any]]:
    """What turns a value of each column into the one the database is given, for the columns
    whose type converts (a date into SQLite's text, an amount into its number)."""
    processors: dict[str, Callable[[Any], Any]] = {}
    for column in table.columns:
        processor = column.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[column.name] = processor
    return processors


def _bulk_insert(
    connection: Connection, warehouse: Warehouse, table: Table, names: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Rows (tuples of the values of ``names``) in one bulk insert, each value bound as the
    column's type binds it: what an insert of the rows as dictionaries stores, without the
    cost of building one per row."""
    if not rows:
        return
    processors = bind_processors(table, connection.dialect)
    columns: dict[str, Sequence[Any]] = {}
    for name, values in zip(names, zip(*rows, strict=True), strict=True):
        processor = processors.get(name)
        columns[name] = values if processor is None else [processor(value) for value in values]
    warehouse.bulk_insert(connection, table, columns)


def _load(ingest: SourceIngest, warehouse: Warehouse, staging: Table, now: datetime) -> SourceAccounting:
    """Stage a delivery's records in one transaction (replacing an earlier load of its batch
    and source), and record and return its accounting."""
    spec, batch_id, delivered = ingest.spec, ingest.batch_id, ingest.delivered
    with warehouse.engine.begin() as connection:
        warehouse.clear_source_batch(connection, spec.source, batch_id)
        for outcome in ingest.chunks():
            warehouse.bulk_insert(connection, staging, outcome.staged)
            _bulk_insert(connection, warehouse, warehouse.table("value_problems"), PROBLEM_COLUMNS, outcome.problems)
            _bulk_insert(connection, warehouse, warehouse.table("skipped_rows"), SKIPPED_COLUMNS, outcome.skipped)
            _bulk_insert(connection, warehouse, warehouse.table("quarantine"), QUARANTINE_COLUMNS, outcome.quarantined)
        fault_point("ingest")
        if spec.household is not None:
            ingest.counts["value_problems"] += place_households(connection, warehouse, spec, batch_id)
        accounting = SourceAccounting(
            batch_id=batch_id,
            source=spec.source,
            status="ingested",
            file_name=delivered.name,
            # A file's bytes; a database's rows as read, in order.
            file_sha256=(
                delivered.content_sha256 if isinstance(delivered, DeliveredTable) else file_sha256(delivered.path)
            ),
            file_format=delivered.format,
            encoding=delivered.encoding,
            sheet_name=delivered.sheet_name,
            header_position=delivered.header_position,
            ignored_headers=ingest.ignored_headers,
            **ingest.counts,
        )
        if not accounting.balanced:
            raise AssertionError(f"{spec.source}: row accounting does not add up: {accounting.as_dict()}")
        warehouse.insert(connection, warehouse.table("ingest_accounting"), [accounting.to_row(now)])
    return accounting


def _not_delivered(spec: SourceSpec, batch_id: str, warehouse: Warehouse, now: datetime) -> SourceAccounting:
    accounting = SourceAccounting(batch_id=batch_id, source=spec.source, status="not_delivered")
    with warehouse.engine.begin() as connection:
        warehouse.clear_source_batch(connection, spec.source, batch_id)
        warehouse.insert(connection, warehouse.table("ingest_accounting"), [accounting.to_row(now)])
    return accounting


def ingest_source(
    spec: SourceSpec,
    batch_dir: Path | None,
    batch_id: str,
    warehouse: Warehouse,
    *,
    connections: Connections | None = None,
) -> SourceAccounting:
    """Ingest one source as batch ``batch_id``: its file in ``batch_dir``, or, for a source
    with a ``database:`` block, its table or query through the connection that
    ``connections`` resolves (a function or mapping of connection id to SQLAlchemy URL;
    default: ``LOOKBACK_CONNECTION_<ID>`` in the environment, see :mod:`lookback.connections`).

    Replaces whatever an earlier load of the same batch and source wrote, in one
    transaction. A source that is optional and not delivered (no file; a database result
    without rows) is recorded as such; a mandatory one fails.
    """
    check_batch_id(batch_id)
    now = datetime.now(UTC)
    if spec.database is not None:
        with collector.paused():
            accounting = _read_and_load_table(spec, batch_id, warehouse, now, connections)
    else:
        if batch_dir is None:
            raise DeliveryError(f"source {spec.source} is delivered as a file: a landing folder is needed")
        path = find_delivery(spec, batch_dir)
        if path is None:
            log.info("%s: not delivered in batch %s (optional source)", spec.source, batch_id)
            return _not_delivered(spec, batch_id, warehouse, now)
        with collector.paused():
            accounting = _read_and_load(spec, path, batch_id, warehouse, now)
    if accounting.status != "ingested":
        return accounting
    log.info(
        "%s: delivered %d = accepted %d + skipped %d + quarantined %d (%d value problems)",
        spec.source,
        accounting.delivered,
        accounting.accepted,
        accounting.skipped,
        accounting.quarantined,
        accounting.value_problems,
    )
    return accounting


def _read_and_load(
    spec: SourceSpec, path: Path, batch_id: str, warehouse: Warehouse, now: datetime
) -> SourceAccounting:
    """Open a delivery and stage it (:func:`_load`); what the load remembered (each column's
    texts, each row's hash, a workbook's rows) is let go when this returns, before the
    cycle collector runs again: it would otherwise walk all of it once before it is freed."""
    delivered = open_delivery(path, spec)
    log.info(
        "%s: reading %s (%s, encoding %s, %sheader at %s %d)",
        spec.source,
        path.name,
        delivered.format,
        delivered.encoding,
        "" if delivered.sheet_name is None else f"sheet {delivered.sheet_name}, ",
        delivered.position_word,
        delivered.header_position,
    )
    return _stage_delivery(spec, batch_id, delivered, warehouse, now)


def _read_and_load_table(
    spec: SourceSpec, batch_id: str, warehouse: Warehouse, now: datetime, connections: Connections | None
) -> SourceAccounting:
    """:func:`_read_and_load` for a source read from a database. A result without rows is
    an optional source not delivered, and fails a mandatory one."""
    with open_table(spec, batch_id, connections) as delivered:
        if delivered.total == 0:
            if spec.required:
                raise DeliveryError(
                    f"{delivered.name}: mandatory source {spec.source} ({spec.title}) not delivered: "
                    f"the {'query' if spec.database and spec.database.query else 'table'} has no rows "
                    f"for batch {batch_id} ({spec.path.name})"
                )
            log.info(
                "%s: not delivered in batch %s: %s has no rows (optional source)", spec.source, batch_id, delivered.name
            )
            return _not_delivered(spec, batch_id, warehouse, now)
        log.info(
            "%s: reading %s (%s rows by %s, in chunks of %s)",
            spec.source,
            delivered.name,
            f"{delivered.total:,}",
            ", ".join(delivered.database.order_by),
            f"{delivered.database.chunk_rows:,}",
        )
        return _stage_delivery(spec, batch_id, delivered, warehouse, now)


def _stage_delivery(
    spec: SourceSpec, batch_id: str, delivered: Delivery, warehouse: Warehouse, now: datetime
) -> SourceAccounting:
    staging = warehouse.staging(spec.source)
    # Standardised values are bound once per distinct delivered text, by the standardiser;
    # the staging table's other columns (batch, row, hash) are text and integers.
    bind = bind_processors(staging, warehouse.engine.dialect)
    ingest = SourceIngest(spec, batch_id, delivered, county_resolver(), bind=bind)
    unbound = set(bind) - set(ingest.standardiser.names)
    if unbound:
        raise AssertionError(f"{staging.name}: columns {sorted(unbound)} would be stored unbound")
    if ingest.ignored_headers:
        log.warning(
            "%s: columns not in the source definition, not read: %s", spec.source, "、".join(ingest.ignored_headers)
        )
    return _load(ingest, warehouse, staging, now)
