"""Find identity numbers (居民身份证号码) wherever a test can read text: logs, API answers,
published files, web pages.

A number is found in any of the forms it takes on its way through code: plain, in full-width
digits, with spaces, tabs or dashes inside, JSON-escaped (``\\u0031``, ``\\t``), URL-encoded
(``%31``, ``%EF%BC%91``), as HTML character references (``&#49;``), at the start of a
20- or 22-character disability certificate number, in a workbook (an ``.xlsx`` is a zip of
XML parts: each part is read). Two kinds of hit:

- ``identity_number``: 18 characters with a known province code, a possible birth date and
  the right check character (GB 11643-1999);
- ``identity_like``: a run of at least 15 digits holding a province code and a possible
  birth date where an 18-character (or old 15-digit) number has them: a number with a wrong
  check character, or an old 15-digit one.

Masked forms (``431224********1234``) and ordinary numbers (dates, amounts, 12-digit
division codes, 11-digit phone numbers) are not hits. A hit says where it is (name, line,
column) and shows the number masked; nothing here ever returns or prints the number itself.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

IDENTITY_NUMBER = "identity_number"
IDENTITY_LIKE = "identity_like"

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
# The mainland's province-level codes: 11-15, 21-23, 31-37, 41-46, 50-54, 61-65.
_PROVINCES = frozenset(
    str(code)
    for code in (*range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47), *range(50, 55), *range(61, 66))
)

# One digit as it may be written: plain or full-width, URL-encoded (ASCII or the UTF-8 of a
# full-width digit), JSON-escaped (any number of backslashes), or an HTML character reference.
_DIGIT = (
    r"(?:[0-9\uff10-\uff19]"
    r"|%3[0-9]|%EF%BC%9[0-9]"
    r"|\\+u003[0-9]|\\+uff1[0-9]"
    r"|&\#(?:4[89]|5[0-7]);|&\#x0*3[0-9];|&\#(?:6528[0-9]|6529[0-7]);|&\#x0*ff1[0-9];)"
)
# The check character X in the same forms.
_X = r"(?:[Xx\uff38\uff58]|%58|%78|%EF%BC%B8|\\+u0058|\\+u0078|&\#(?:88|120);|&\#x0*(?:58|78);)"
# What may stand between two digits of one number: a space, tab, no-break or ideographic
# space, a dash, and their escaped or encoded forms (a URL's ``+`` is a space).
_SEPARATOR = (
    r"(?:[ \t\u00a0\u3000\-\u2010\u2011\u2012\u2013\u2014\uff0d]"
    r"|%20|%09|%2D|%C2%A0|%E3%80%80|\+"
    r"|\\+t|\\+u0020|\\+u0009|\\+u002d|\\+u00a0|\\+u3000"
    r"|&nbsp;|&\#(?:32|9|45|160);|&\#x0*(?:20|9|2d|a0);)"
)
# At most two separators between digits: wider gaps are columns of a table, not one number.
_RUN = re.compile(rf"{_DIGIT}(?:{_SEPARATOR}{{0,2}}{_DIGIT}){{14,}}(?:{_SEPARATOR}{{0,2}}{_X})?", re.IGNORECASE)
_TOKEN = re.compile(rf"(?P<digit>{_DIGIT})|(?P<x>{_X})|{_SEPARATOR}", re.IGNORECASE)
# A digit and a decimal point just before a run: the run is the fraction of a number
# (``took 0.342615800101221 s``), which a log prints with as many digits as a number has.
_FRACTION = re.compile(r"[0-9]\.")
_HEX = frozenset("0123456789abcdefABCDEF")
_HASH_LENGTH = 16
# A UUID in its usual form, its five groups of hexadecimal digits joined by dashes.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_UUID_LENGTH = 36
_NUMERIC_REFERENCE = re.compile(r"&#(x?)0*([0-9a-f]+);", re.IGNORECASE)


@dataclass(frozen=True)
class Hit:
    """One identity number found: where (``where``, 1-based ``line`` and ``column``), of what
    kind, and the number masked as county files show it (the first 6 and last 4 kept)."""

    where: str
    line: int
    column: int
    kind: str
    masked: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}:{self.column}: {self.kind} {self.masked}"


def _digit_value(token: str) -> str:
    """The digit one ``_DIGIT`` token stands for."""
    if len(token) == 1:
        return str(int(token))  # int() reads full-width digits too
    lowered = token.lower()
    if lowered.startswith("%ef%bc%9"):
        return lowered[-1]
    if lowered.startswith("%3"):
        return lowered[-1]
    if lowered.startswith("\\"):
        return chr(int(lowered[-4:], 16)) if lowered[-4:-1] == "003" else str(int(chr(int(lowered[-4:], 16))))
    reference = _NUMERIC_REFERENCE.fullmatch(token)
    assert reference is not None, "a _DIGIT token is a digit, an escape or a reference"
    code = int(reference.group(2), 16 if reference.group(1) else 10)
    return str(int(chr(code)))


def _groups(run: str) -> list[str]:
    """The digits (and a final ``X``) of one run, separators and encodings gone, in the groups
    the separators make."""
    groups = [""]
    position = 0
    while position < len(run):
        token = _TOKEN.match(run, position)
        assert token is not None and token.end() > position, "a run is made of digits, separators and an X"
        if token.group("digit"):
            groups[-1] += _digit_value(token.group("digit"))
        elif token.group("x"):
            groups[-1] += "X"
        elif groups[-1]:
            groups.append("")
        position = token.end()
    return [group for group in groups if group]


def _born(year: int, month: int, day: int) -> bool:
    try:
        born = date(year, month, day)
    except ValueError:
        return False
    return born.year >= 1880 and born <= date.today()


def _check_character(first_17: str) -> str:
    return _CHECK[sum(int(digit) * weight for digit, weight in zip(first_17, _WEIGHTS, strict=True)) % 11]


def _windows(groups: list[str]) -> Iterator[str]:
    """The 18-character stretches of a run a number may fill: any inside one group of digits,
    and any that starts where a group starts (a number written in parts, a disability
    certificate's suffix after it). One that starts inside a group and goes on past a
    separator is the tail of one code and the head of another, never a number."""
    characters = "".join(groups)
    start = 0
    for group in groups:
        for offset in range(max(1, len(group) - 17)):
            if offset == 0 or offset + 18 <= len(group):
                window = characters[start + offset : start + offset + 18]
                if len(window) == 18:
                    yield window
        start += len(group)


def classify(groups: list[str]) -> str | None:
    """What a run of digits (and a final X), in its groups, is: ``identity_number``,
    ``identity_like`` or None."""
    like = False
    for window in _windows(groups):
        if window[:2] not in _PROVINCES or not window[:17].isdigit():
            continue
        if not _born(int(window[6:10]), int(window[10:12]), int(window[12:14])):
            continue
        if _check_character(window[:17]) == window[17]:
            return IDENTITY_NUMBER
        like = True
    if like:
        return IDENTITY_LIKE
    old = "".join(groups)
    # An old 15-digit number: YYMMDD after the division code.
    if len(old) == 15 and old.isdigit() and old[:2] in _PROVINCES:
        return IDENTITY_LIKE if _born(1900 + int(old[6:8]), int(old[8:10]), int(old[10:12])) else None
    return None


def mask(characters: str) -> str:
    """The first 6 and last 4 characters kept, the rest asterisks."""
    return characters[:6] + "*" * max(0, len(characters) - 10) + characters[-4:]


def _in_hash(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` lies in a hexadecimal digest (16 characters or more, with a
    letter: the workbooks' 校验码, an MD5, SHA or a UUID written without dashes), as files and
    logs print them: about one 32-character digest in 65, and one 16-character 校验码 in 800,
    holds fifteen digits in a row, some of which read as an old number."""
    while start > 0 and text[start - 1] in _HEX:
        start -= 1
    while end < len(text) and text[end] in _HEX:
        end += 1
    token = text[start:end]
    return len(token) >= _HASH_LENGTH and not token.isdigit() and all(character in _HEX for character in token)


def _in_uuid(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` lies in a UUID written with its dashes (Great Expectations'
    files give every asset, suite, expectation and result one): the scanner reads digits across
    a dash, and about one random UUID in 25,000 (4 of 100,000) then reads as an old number
    (``a4301029-0010-4123-b…``); a run's Great Expectations project holds thousands."""
    window = max(0, start - _UUID_LENGTH)
    return any(
        found.start() <= start and end <= found.end()
        for found in _UUID.finditer(text, window, min(len(text), end + _UUID_LENGTH))
    )


def scan_text(text: str, where: str = "<text>") -> list[Hit]:
    """Every identity number in ``text``, as hits located in it."""
    hits = []
    for run in _RUN.finditer(text):
        if _FRACTION.fullmatch(text, max(0, run.start() - 2), run.start()):
            continue  # the digits after a decimal point: a duration or a ratio, never a number
        if _in_hash(text, run.start(), run.end()) or _in_uuid(text, run.start(), run.end()):
            continue
        groups = _groups(run.group(0))
        kind = classify(groups)
        if kind is None:
            continue
        line = text.count("\n", 0, run.start()) + 1
        column = run.start() - (text.rfind("\n", 0, run.start()) + 1) + 1
        hits.append(Hit(where, line, column, kind, mask("".join(groups))))
    return hits


def scan_value(value: object, where: str) -> list[Hit]:
    """Every identity number in a JSON-like value (an XCom, an API answer), read as its JSON
    text and as its strings one by one (a string's own escapes decoded)."""
    if isinstance(value, str):
        return scan_text(value, where)
    return scan_text(json.dumps(value, ensure_ascii=False, default=str), where)


def scan_bytes(data: bytes, where: str) -> list[Hit]:
    """Every identity number in a file's bytes: a zip (a workbook) part by part, text as
    UTF-8 (or GB 18030 when it is not UTF-8)."""
    if data[:4] == b"PK\x03\x04":
        import io

        hits = []
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                hits += scan_bytes(archive.read(member), f"{where}!{member}")
        return hits
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gb18030", errors="replace")
    return scan_text(text, where)


def scan_file(path: Path, where: str | None = None) -> list[Hit]:
    return scan_bytes(path.read_bytes(), where or str(path))


def scan_files(paths: Iterable[Path], root: Path | None = None) -> list[Hit]:
    """Every hit in every file, each named relative to ``root`` when given."""
    hits = []
    for path in paths:
        hits += scan_file(path, str(path.relative_to(root)) if root else str(path))
    return hits


def files_under(folder: Path) -> Iterator[Path]:
    """Every regular file under ``folder``, in path order."""
    return (path for path in sorted(folder.rglob("*")) if path.is_file() and not path.is_symlink())


def report(hits: Iterable[Hit], limit: int = 30) -> str:
    """Hits as lines for a failure message (masked), at most ``limit`` of them."""
    listed = list(hits)
    lines = [str(hit) for hit in listed[:limit]]
    if len(listed) > limit:
        lines.append(f"… and {len(listed) - limit} more")
    return "\n".join(lines)
