"""What every xlsx this project writes shares: one fixed time, so that the same input
gives the same bytes; and how a workbook people filled in and returned is opened.

Workbooks are written with XlsxWriter, which gives every zip member one fixed time of its
own; they carry :data:`WORKBOOK_TIME` as their creation (and modification) date. Those
that come back (a county's answers, the inspectors' results, review decisions) say whose
they are in custom properties (:func:`custom_properties`).

A workbook is a zip archive, and one from outside may be built to inflate to gigabytes
from a few kilobytes (a "zip bomb"). Before any reader opens one, :func:`check_archive`
measures it against :class:`ArchiveLimits`: first what its zip directory declares (the
number of members, their unpacked size and compression ratio), then what its members
really inflate to, streamed and stopped at the limit, since a directory can lie.
"""

from __future__ import annotations

import copy
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lookback.errors import LookbackError

# A fixed timestamp for workbook properties.
WORKBOOK_TIME = datetime(2020, 6, 1, 8, 0, 0)

MIB = 1 << 20
# Members smaller than this are not held to the compression ratio: a small part (styles,
# an empty sheet) may compress far better than any data does, and cannot inflate to much.
RATIO_FLOOR = MIB
_CHUNK = 1 << 16


@dataclass(frozen=True)
class ArchiveLimits:
    """How large a workbook may unpack: ``unpacked_mb`` in all, no member (above
    :data:`RATIO_FLOOR`) compressed more than ``compression_ratio`` to one, at most
    ``entries`` members. A source sets them in its ``file:`` block (``max_unpacked_mb``,
    ``max_compression_ratio``, ``max_entries``)."""

    unpacked_mb: int = 1024
    compression_ratio: float = 100.0
    entries: int = 10_000

    @property
    def unpacked_bytes(self) -> int:
        return self.unpacked_mb * MIB


def check_archive(path: Path, limits: ArchiveLimits, error: type[LookbackError] = LookbackError) -> None:
    """Raise ``error`` naming the file unless the workbook at ``path`` keeps to ``limits``
    (a file that is no zip archive at all is left to the reader to refuse): its zip
    directory is checked first, then every member is inflated (streamed, nothing
    kept) and stopped as soon as the total passes the limit or a member inflates to more
    than its directory entry declares."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return  # no archive to inflate: the reader says what the file is not
    with archive:
        members = archive.infolist()
        _check_directory(path, members, limits, error)
        total = 0
        for member in members:
            total = _inflate(archive, member, path, total, limits, error)


def _check_directory(
    path: Path, members: list[zipfile.ZipInfo], limits: ArchiveLimits, error: type[LookbackError]
) -> None:
    """What the zip directory declares, against the limits."""
    if len(members) > limits.entries:
        raise error(
            f"{path.name}: refused: the workbook holds {len(members):,} zip members, more than "
            f"max_entries {limits.entries:,}"
        )
    declared = sum(member.file_size for member in members)
    if declared > limits.unpacked_bytes:
        raise error(
            f"{path.name}: refused before reading: it declares {declared / MIB:,.0f} MB unpacked, more than "
            f"max_unpacked_mb {limits.unpacked_mb:,} (a zip bomb, or set the source's file.max_unpacked_mb)"
        )
    for member in members:
        if member.file_size > RATIO_FLOOR and member.file_size > limits.compression_ratio * max(
            member.compress_size, 1
        ):
            ratio = member.file_size / max(member.compress_size, 1)
            raise error(
                f"{path.name}: refused before reading: member {member.filename!r} is compressed {ratio:,.0f} to 1, "
                f"more than max_compression_ratio {limits.compression_ratio:g} (a zip bomb, or set the source's "
                "file.max_compression_ratio)"
            )


def _inflate(
    archive: zipfile.ZipFile,
    member: zipfile.ZipInfo,
    path: Path,
    total: int,
    limits: ArchiveLimits,
    error: type[LookbackError],
) -> int:
    """Inflate one member from its raw bytes (not trusting its declared size), counting what
    it gives; the running total of the archive's unpacked bytes."""
    if member.is_dir() or (member.compress_size == 0 and member.file_size == 0):
        return total
    if member.flag_bits & 0x1:
        raise error(f"{path.name}: refused: member {member.filename!r} is encrypted")
    if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise error(f"{path.name}: refused: member {member.filename!r} uses a compression no workbook uses")
    raw = copy.copy(member)  # read as stored: the member's compressed bytes as they are
    raw.compress_type, raw.file_size = zipfile.ZIP_STORED, member.compress_size
    raw.CRC = None  # type: ignore[assignment]  # their checksum is checked below, on what they inflate to
    inflater = zlib.decompressobj(-zlib.MAX_WBITS) if member.compress_type == zipfile.ZIP_DEFLATED else None
    size, crc = 0, 0
    cap = min(limits.unpacked_bytes - total, member.file_size)

    def count(data: bytes) -> None:
        nonlocal size, crc
        size += len(data)
        if size > cap:
            raise error(
                f"{path.name}: refused: member {member.filename!r} inflates to more than "
                + (
                    f"its zip directory declares ({member.file_size:,} bytes)"
                    if cap == member.file_size
                    else f"max_unpacked_mb {limits.unpacked_mb:,} allows"
                )
            )
        crc = zlib.crc32(data, crc)

    try:
        with archive.open(raw) as stream:
            while chunk := stream.read(_CHUNK):
                if inflater is None:
                    count(chunk)
                    continue
                data = inflater.decompress(chunk, _CHUNK)
                count(data)
                while inflater.unconsumed_tail:
                    count(inflater.decompress(inflater.unconsumed_tail, _CHUNK))
        if inflater is not None:
            count(inflater.flush())
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as problem:
        raise error(f"{path.name}: not a readable xlsx workbook (member {member.filename!r}: {problem})") from None
    if size != member.file_size or crc != member.CRC:
        raise error(f"{path.name}: refused: member {member.filename!r} does not match its zip directory entry")
    return total + size


def open_returned(path: Path, *, read_only: bool = False, limits: ArchiveLimits | None = None) -> Any:
    """A returned workbook, opened with openpyxl once :func:`check_archive` passed it;
    :class:`LookbackError` when it is not one."""
    from openpyxl import load_workbook

    check_archive(path, limits or ArchiveLimits())
    try:
        return load_workbook(path, read_only=read_only)
    except Exception as error:  # any reason the file is not a workbook
        raise LookbackError(f"{path}: not a readable workbook ({error})") from error


def custom_properties(book: Any) -> dict[str, Any]:
    """A workbook's custom document properties, name → value."""
    return {prop.name: getattr(prop, "value", None) for prop in book.custom_doc_props.props}
