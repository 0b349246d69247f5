"""Input built to do harm: workbooks that inflate to gigabytes, landing folders with links
that lead elsewhere, ids and names that are paths, output folders that are not run folders,
and cell values written to break SQL or a shell.

Every delivery here is tiny and made in the test (a zip bomb's archive is written by hand,
its deflate stream one repeated block); the end-to-end runs use a 20-person batch.
"""

from __future__ import annotations

import csv
import json
import struct
import zlib
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select

from lookback.errors import ConfigError, DeliveryError, LookbackError
from lookback.generate.batch import generate_batch
from lookback.generate.writers import write_csv
from lookback.ingest import readers
from lookback.ingest.load import NUL_CHARACTER, check_batch_id, ingest_source
from lookback.ingest.readers import detect_encoding, open_delivery
from lookback.publish.files import staging_folder, swap_into_place
from lookback.publish.replace import RUN_MARKER, NotReplaceable
from lookback.publish.run_files import work_folder
from lookback.run import Run, connect_warehouse, open_warehouse
from lookback.settings import read_yaml
from lookback.sources import SourceSpec, normalise_label, parse_source_spec
from lookback.warehouse import Warehouse
from lookback.xlsx import MIB, ArchiveLimits, check_archive, open_returned
from tests import steps

VALID = "431224198001011238"
AS_OF = date(2020, 6, 30)

# Zip bombs, written by hand: a deflate block that inflates to 1 MiB of blanks (valid between
# XML tags), repeated; after a full flush a block refers to nothing before it, so the copies
# make one valid stream. A sheet of 1,100 MiB packs into about 1.1 MB.


def _deflated_blanks(mebibytes: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = compressor.compress(b" " * MIB) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * mebibytes + zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()


def _write_zip(path: Path, members: Sequence[tuple[str, bytes, int, int]]) -> None:
    """A zip archive of already deflated members: (name, deflated bytes, declared unpacked
    size, declared CRC), the sizes and CRC written as given, true or not."""
    body, directory = b"", b""
    for name, deflated, size, crc in members:
        encoded = name.encode()
        header = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(deflated), size, len(encoded), 0)
        directory += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(deflated), size, len(encoded), 0, 0, 0, 0, 0,
            len(body),
        ) + encoded  # fmt: skip
        body += header + encoded + deflated
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), len(body), 0)
    path.write_bytes(body + directory + end)


def _bomb(path: Path, mebibytes: int, declared: int | None = None) -> Path:
    """A "workbook" whose sheet inflates to ``mebibytes`` MiB; its directory says
    ``declared`` bytes (default: the truth)."""
    content_types = (
        b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
    )
    packed = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    types_deflated = packed.compress(content_types) + packed.flush()
    size = mebibytes * MIB if declared is None else declared
    # The true checksum where the member is meant to be read through (the small ones); a
    # refused bomb is never read that far.
    crc = 0
    if mebibytes <= 64:
        for _ in range(mebibytes):
            crc = zlib.crc32(b" " * MIB, crc)
    _write_zip(
        path,
        [
            ("[Content_Types].xml", types_deflated, len(content_types), zlib.crc32(content_types)),
            ("xl/worksheets/sheet1.xml", _deflated_blanks(mebibytes), size, crc),
        ],
    )
    return path


@pytest.fixture
def readers_must_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a workbook reader (calamine or openpyxl) is ever reached."""

    def reached(*arguments: Any, **keywords: Any) -> Any:
        pytest.fail("a refused workbook was handed to a reader")

    monkeypatch.setattr(readers, "_fast_xlsx", reached)
    monkeypatch.setattr(readers, "_open_workbook", reached)


@pytest.mark.usefixtures("readers_must_not_run")
def test_a_workbook_declaring_more_than_a_gigabyte_is_refused_before_it_is_read(
    tmp_path: Path, specs: dict[str, SourceSpec]
) -> None:
    bomb = _bomb(tmp_path / "dibao_roster.xlsx", 1100)
    assert bomb.stat().st_size < 2 * MIB  # 1,100 MiB in a file of about 1 MB
    with pytest.raises(DeliveryError, match=r"^dibao_roster\.xlsx: refused before reading: it declares 1,100 MB"):
        open_delivery(bomb, specs["dibao"])
    warehouse = connect_warehouse(f"sqlite:///{tmp_path / 'w.sqlite'}")
    with pytest.raises(DeliveryError, match=r"dibao_roster\.xlsx: .*max_unpacked_mb 1,024"):
        ingest_source(specs["dibao"], tmp_path, "b1", warehouse)
    warehouse.engine.dispose()


@pytest.mark.usefixtures("readers_must_not_run")
def test_a_zip_directory_that_lies_about_the_size_is_caught_while_inflating(
    tmp_path: Path, specs: dict[str, SourceSpec]
) -> None:
    """The directory says 1,000 bytes; the sheet inflates to 1,100 MiB: the streamed inflate
    stops at the declared size (in a moment, holding 64 KiB at most)."""
    bomb = _bomb(tmp_path / "dibao_roster.xlsx", 1100, declared=1000)
    with pytest.raises(
        DeliveryError, match=r"dibao_roster\.xlsx: refused: member 'xl/worksheets/sheet1\.xml' inflates to more than"
    ):
        open_delivery(bomb, specs["dibao"])


@pytest.mark.usefixtures("readers_must_not_run")
def test_a_workbook_compressed_beyond_the_ratio_is_refused(tmp_path: Path, specs: dict[str, SourceSpec]) -> None:
    bomb = _bomb(tmp_path / "dibao_roster.xlsx", 8)  # small, but a thousand to one
    with pytest.raises(
        DeliveryError, match=r"sheet1\.xml' is compressed [\d,]+ to 1, more than max_compression_ratio 100"
    ):
        open_delivery(bomb, specs["dibao"])


def _with_file_keys(spec: SourceSpec, **keys: Any) -> SourceSpec:
    document = read_yaml(spec.path)
    document["file"] |= keys
    return parse_source_spec(document, spec.path)


def test_the_limits_are_set_per_source(tmp_path: Path, specs: dict[str, SourceSpec]) -> None:
    bomb = _bomb(tmp_path / "dibao_roster.xlsx", 8)
    lenient = _with_file_keys(specs["dibao"], max_compression_ratio=5000)
    assert lenient.delivered_file.limits == ArchiveLimits(compression_ratio=5000)
    # Past the limits, the file is what it is: no workbook (openpyxl says so).
    with pytest.raises(DeliveryError, match=r"dibao_roster\.xlsx: not a readable xlsx workbook"):
        open_delivery(bomb, lenient)
    strict = _with_file_keys(specs["dibao"], max_unpacked_mb=4, max_compression_ratio=5000)
    with pytest.raises(DeliveryError, match="declares 8 MB unpacked, more than max_unpacked_mb 4"):
        open_delivery(bomb, strict)
    with pytest.raises(ConfigError, match=r"registry\.yaml: file\.max_unpacked_mb: goes with format xlsx"):
        _with_file_keys(specs["registry"], max_unpacked_mb=10)
    with pytest.raises(ConfigError, match=r"file\.max_compression_ratio: must be at least 1"):
        _with_file_keys(specs["dibao"], max_compression_ratio=0)


def test_a_workbook_of_too_many_members_is_refused(tmp_path: Path, specs: dict[str, SourceSpec]) -> None:
    folder = tmp_path / "b1"
    generate_batch(folder, persons=5, seed=3)
    workbook = folder / "dibao_roster.xlsx"
    open_delivery(workbook, specs["dibao"])  # a real workbook keeps to the default limits
    with pytest.raises(
        DeliveryError, match=r"dibao_roster\.xlsx: refused: the workbook holds \d+ zip members, more than max_entries 3"
    ):
        open_delivery(workbook, _with_file_keys(specs["dibao"], max_entries=3))


def test_a_returned_workbook_is_measured_too(tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "县扶贫办.xlsx", 1100)
    with pytest.raises(LookbackError, match=r"县扶贫办\.xlsx: refused before reading"):
        open_returned(bomb)
    with pytest.raises(LookbackError, match="inflates to more than its zip directory declares"):
        check_archive(_bomb(tmp_path / "lies.xlsx", 1100, declared=2 * MIB), ArchiveLimits())


# CSV limits and NUL characters


def _registry_row(spec: SourceSpec, **values: str) -> list[str]:
    person = {"county_code": "溆浦县", "household_number": "43122410120100001", "relation_to_head": "户主"}
    return [({**person, **values}).get(column.name, "") for column in spec.columns]


def test_a_csv_field_larger_than_16_mib_is_a_clear_error(tmp_path: Path, specs: dict[str, SourceSpec]) -> None:
    spec = specs["registry"]
    write_csv(tmp_path / "registry_members.csv", spec, [_registry_row(spec, name="王伟", identity_number=VALID)])
    with (tmp_path / "registry_members.csv").open("a", encoding="gb18030", newline="") as handle:
        handle.write('溆浦县,"' + "x" * (17 * MIB) + '"\r\n')  # or a quote left open
    warehouse = connect_warehouse(f"sqlite:///{tmp_path / 'w.sqlite'}")
    with pytest.raises(DeliveryError, match=r"^registry_members\.csv, line 3: a field larger than 16 MiB"):
        ingest_source(spec, tmp_path, "b1", warehouse)
    warehouse.engine.dispose()


def test_a_nul_character_in_a_cell_is_quarantined(
    tmp_path: Path, specs: dict[str, SourceSpec], warehouse_url: str
) -> None:
    """On PostgreSQL too, which refuses a NUL in text: the record is quarantined, its raw
    record keeps the character (escaped), and the others are staged."""
    spec = specs["registry"]
    rows = [
        _registry_row(spec, name="王伟", identity_number=VALID),
        _registry_row(spec, name="李\x00娜", identity_number="433030196503150026"),
        _registry_row(spec, name="张三", identity_number="431224198001011246", village="青石\x00村"),
    ]
    write_csv(tmp_path / "registry_members.csv", spec, rows)
    with open_warehouse(warehouse_url) as warehouse:
        accounting = ingest_source(spec, tmp_path, "b1", warehouse)
        assert (accounting.delivered, accounting.accepted, accounting.quarantined) == (3, 1, 2)
        quarantined = _table(warehouse, "quarantine")
    assert [(row["source_row"], row["reason_code"]) for row in quarantined] == [(2, NUL_CHARACTER), (3, NUL_CHARACTER)]
    assert "a NUL character (\\x00) in 姓名" in quarantined[0]["reason"]
    assert quarantined[0]["reason"].startswith("registry_members.csv, row 2 (line 3)")
    assert "行政村" in quarantined[1]["reason"]
    assert json.loads(quarantined[1]["raw_record"]) == [str(cell) for cell in rows[2]]


def _table(warehouse: Warehouse, name: str) -> list[dict[str, Any]]:
    table = warehouse.table(name)
    with warehouse.engine.connect() as connection:
        order = table.c.source_row if "source_row" in table.c else next(iter(table.c))
        return [dict(row._mapping) for row in connection.execute(select(table).order_by(order))]


# Ids, file names, links and output folders


@pytest.mark.parametrize(
    "batch_id", ["b1\n", "b1\r", "..", "../etc", "a/../b", "b1/", "a\\b", "a\x00b", "a..b", " b1", "b1 "]
)
def test_a_batch_id_that_is_a_path_or_holds_a_control_character_is_refused(batch_id: str) -> None:
    with pytest.raises(DeliveryError, match="batch id"):
        check_batch_id(batch_id)
    with pytest.raises(LookbackError):
        Run.create(batch=batch_id, warehouse="sqlite://")
    with pytest.raises(LookbackError):
        Run.create(batch="b1", run_id=batch_id, warehouse="sqlite://")


def test_ordinary_batch_ids_are_kept() -> None:
    assert [check_batch_id(value) for value in ("b1", "2020-06", "q2.batch_7")] == ["b1", "2020-06", "q2.batch_7"]


@pytest.fixture
def landing(tmp_path: Path, generated_batch: Path) -> Path:
    """A copy of the generated batch's exports, and a folder outside it."""
    folder = tmp_path / "landing" / "b1"
    folder.mkdir(parents=True)
    for name in ("registry_members.csv", "dibao_roster.xlsx"):
        (folder / name).write_bytes((generated_batch / name).read_bytes())
    (tmp_path / "elsewhere").mkdir()
    return folder


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_link_out_of_the_landing_folder_is_refused(
    landing: Path, tmp_path: Path, specs: dict[str, SourceSpec], kind: str
) -> None:
    if kind == "file":
        secret = tmp_path / "elsewhere" / "secrets.csv"
        secret.write_bytes((landing / "registry_members.csv").read_bytes())
        (landing / "registry_members.csv").unlink()
        (landing / "registry_members.csv").symlink_to(secret)
    else:
        (landing / "archive").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    warehouse = connect_warehouse(f"sqlite:///{tmp_path / 'w.sqlite'}")
    link = "registry_members.csv" if kind == "file" else "archive"
    for source in ("registry", "dibao"):  # whichever source is read, the folder is refused
        with pytest.raises(DeliveryError, match=rf"b1/{link}: a symbolic link to a {kind} outside the landing folder"):
            ingest_source(specs[source], landing, "b1", warehouse)
    warehouse.engine.dispose()


def test_a_link_within_the_landing_folder_is_read(landing: Path, tmp_path: Path, specs: dict[str, SourceSpec]) -> None:
    (landing / "registry_members.csv").rename(landing / "export.data")
    (landing / "registry_members.csv").symlink_to("export.data")
    warehouse = connect_warehouse(f"sqlite:///{tmp_path / 'w.sqlite'}")
    assert ingest_source(specs["registry"], landing, "b1", warehouse).accepted > 0
    warehouse.engine.dispose()


@pytest.mark.parametrize("name", ["registry_members\n.csv", "registry_members\x01.csv", "registry_members\\x.csv"])
def test_a_delivered_file_name_holding_a_control_character_is_refused(
    landing: Path, tmp_path: Path, specs: dict[str, SourceSpec], name: str
) -> None:
    (landing / "registry_members.csv").rename(landing / name)
    warehouse = connect_warehouse(f"sqlite:///{tmp_path / 'w.sqlite'}")
    with pytest.raises(DeliveryError, match=r"holds a path separator, '\.\.' or a control character"):
        ingest_source(specs["registry"], landing, "b1", warehouse)
    warehouse.engine.dispose()


def _folder_of_someone_else(folder: Path) -> Path:
    (folder / ".ssh").mkdir(parents=True)
    (folder / ".ssh" / "id_ed25519").write_text("key")
    (folder / "notes.txt").write_text("mine")
    return folder


def test_a_folder_lookback_did_not_publish_is_never_replaced(tmp_path: Path) -> None:
    """``out`` pointed at a home folder: refused when the run is made, and again by the
    publishing step itself; the folder keeps everything."""
    home = _folder_of_someone_else(tmp_path / "home")
    with pytest.raises(NotReplaceable, match=rf"{home}: not empty and not a folder lookback published \(no manifest"):
        Run.create(batch="b1", out=home, warehouse="sqlite://")
    staging = staging_folder(home)
    (staging / "manifest.json").write_text("{}")
    with pytest.raises(NotReplaceable):
        swap_into_place(staging, home, marker=RUN_MARKER)
    assert sorted(path.name for path in home.iterdir()) == [".ssh", "notes.txt"]
    assert (home / ".ssh" / "id_ed25519").read_text() == "key"
    linked = tmp_path / "linked"
    linked.symlink_to(home, target_is_directory=True)
    with pytest.raises(NotReplaceable, match="symbolic link"):
        Run.create(batch="b1", out=linked, warehouse="sqlite://")


def test_an_empty_folder_or_an_earlier_run_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert Run.create(batch="b1", out=tmp_path / "empty", warehouse="sqlite://").out == tmp_path / "empty"
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / RUN_MARKER).write_text("{}")
    (earlier / "findings.csv").write_text("old")
    staging = staging_folder(earlier)
    (staging / RUN_MARKER).write_text("{}")
    swap_into_place(staging, earlier, marker=RUN_MARKER)
    assert sorted(path.name for path in earlier.iterdir()) == [RUN_MARKER]


# Values written to break SQL or a shell, in every text column of every source


def _payloads(canary: Path) -> tuple[str, ...]:
    """Values that would do something if any statement or shell took them as code: each
    that runs creates ``canary`` or drops or empties a table."""
    return (
        "'); DROP TABLE findings;--",
        "'); DROP TABLE finding_observations;--",
        f"$(touch {canary})",
        f"`touch {canary}`",
        f"x; touch {canary} #",
        "%s",
        "%(batch_id)s",
        "{0}",
        "{batch_id}",
        ":param",
        ":batch_id",
        "?",
        "\\'; DELETE FROM staging_registry; --",
        '" OR "1"="1',
        # All of them in one value, the shell's on a line of their own (a shell reads a line
        # whole, and one with an unclosed quote is not run at all).
        f"$(touch {canary}) `touch {canary}`; touch {canary}\n'); DROP TABLE findings;-- %s {{0}} :param ? \" OR 1=1",
    )


# The column types holding free text or ids; a code, a date, a number or a county that is a
# payload is a value problem like any wrong value (and a few fail a critical expectation).
TEXT_TYPES = frozenset({"text", "name", "place", "digits", "identity_number"})


def _inject(landing: Path, specs: dict[str, SourceSpec], payloads: Sequence[str]) -> list[tuple[str, int, str, str]]:
    """Add to every file source two records per delivered text column: copies of one of its
    records with a payload in that column, one cycling through the payloads, the other
    with the last (all of them in one). Return (source, source_row, header, payload) of each."""
    planted: list[tuple[str, int, str, str]] = []
    count = 0
    for source, spec in sorted(specs.items()):
        path = next(landing.glob(spec.delivered_file.pattern))
        delivered = open_delivery(path, spec)
        records = [record.values for record in delivered.records]
        header = list(delivered.header)
        added: list[list[str]] = []
        # Copies of household members, not of heads: a household keeps its one head.
        relation = (
            spec.column(spec.household.relation).headers[0] if spec.household and spec.household.relation else None
        )
        bases = [values for values in records if relation is None or values[header.index(relation)] != "户主"]
        for index, column in enumerate(spec.columns):
            labels = {normalise_label(text) for text in column.headers}
            at = next((at for at, text in enumerate(header) if normalise_label(text) in labels), None)
            if at is None or column.type not in TEXT_TYPES:
                continue
            for payload in (payloads[count % len(payloads)], payloads[-1]):
                record = list(bases[index % len(bases)])
                record += [""] * (len(header) - len(record))
                record[at] = payload
                added.append(record)
                planted.append((source, len(records) + len(added), header[at], payload))
            count += 1
        if delivered.format == "csv":
            encoding = detect_encoding(path)
            with path.open("a", encoding=encoding, newline="") as handle:
                csv.writer(handle, lineterminator="\r\n").writerows(added)
        else:
            _append_to_sheet(path, str(delivered.sheet_name), delivered.header_position + len(records), added)
    return planted


def _append_to_sheet(path: Path, title: str, last_row: int, rows: list[list[str]]) -> None:
    from openpyxl import load_workbook

    book = load_workbook(path)
    for number, row in enumerate(rows, start=last_row + 1):
        for at, value in enumerate(row):
            book[title].cell(row=number, column=at + 1, value=value or None)
    book.save(path)


def _files(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_values_built_to_break_sql_or_a_shell_are_data(
    tmp_path: Path, specs: dict[str, SourceSpec], backend: str
) -> None:
    """A 20-person batch with a payload in every delivered column of every file source runs
    through the whole pipeline on SQLite and on PostgreSQL: every table is still there,
    every payload is found verbatim (staged, a value problem's raw value, or a quarantined
    record's), nothing ran it (no canary), and nothing was written outside the run."""
    landing = tmp_path / "landing" / "b1"
    generate_batch(landing, persons=20, seed=3, noise="clean")
    canary = tmp_path / "pwned"
    file_specs = {name: spec for name, spec in specs.items() if spec.file is not None}
    planted = _inject(landing, file_specs, _payloads(canary))
    assert {source for source, *_ in planted} == set(file_specs)
    out = tmp_path / "runs" / "b1"
    out.parent.mkdir()
    before = _files(tmp_path)
    with _warehouse_url(backend, tmp_path) as url:
        outputs = steps.run_all(landing, out, AS_OF, url)
        with open_warehouse(url) as warehouse:
            present = set(inspect(warehouse.engine).get_table_names())
            assert set(warehouse.metadata.tables) <= present
            found = _stored_texts(warehouse)
    missing = [
        (source, row, header, payload)
        for source, row, header, payload in planted
        if payload not in found.get((source, row), set())
    ]
    assert not missing
    assert not canary.exists()
    # Nothing written but the run's folder, its work folder beside it and the SQLite warehouse.
    written = {path for path in _files(tmp_path) - before if not path.is_relative_to(out)}
    written -= {work_folder(out)} | {path for path in written if path.is_relative_to(work_folder(out))}
    assert {path.name for path in written} <= {"warehouse.sqlite", "warehouse.sqlite-wal", "warehouse.sqlite-shm"}
    assert (outputs.out / "quarantine.csv").exists()


def _warehouse_url(backend: str, tmp_path: Path) -> Any:
    from contextlib import contextmanager

    from tests.postgres import throwaway_database

    @contextmanager
    def url() -> Iterator[str]:
        if backend == "sqlite":
            yield f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
        else:
            yield from throwaway_database("lookback_hostile")

    return url()


def _stored_texts(warehouse: Warehouse) -> dict[tuple[str, int], set[str]]:
    """Every text the warehouse holds of each (source, source_row): staged values, value
    problems' raw values, quarantined and skipped records' cells."""
    found: dict[tuple[str, int], set[str]] = {}
    with warehouse.engine.connect() as connection:
        for source in warehouse.specs:
            for row in connection.execute(select(warehouse.staging(source))).mappings():
                key = (source, int(row["source_row"]))
                found.setdefault(key, set()).update(value for value in row.values() if isinstance(value, str))
        problems = warehouse.table("value_problems")
        for row in connection.execute(select(problems)).mappings():
            found.setdefault((row["source"], int(row["source_row"])), set()).add(row["raw_value"])
        for name in ("quarantine", "skipped_rows"):
            for row in connection.execute(select(warehouse.table(name))).mappings():
                found.setdefault((row["source"], int(row["source_row"])), set()).update(json.loads(row["raw_record"]))
    return found
