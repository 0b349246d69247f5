"""Plain-text tables for the terminal and task logs (never personal data)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

ACCOUNTING_COLUMNS = (
    "source",
    "status",
    "file_name",
    "encoding",
    "delivered",
    "accepted",
    "skipped",
    "quarantined",
    "value_problems",
)


def _width(text: str) -> int:
    """Display width: CJK characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(character) in "WF" else 1 for character in text)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    cells = [[("" if row.get(column) is None else str(row.get(column))) for column in columns] for row in rows]
    widths = [max([_width(column)] + [_width(line[i]) for line in cells]) for i, column in enumerate(columns)]

    def render(values: Sequence[str]) -> str:
        return "  ".join(
            value + " " * (width - _width(value)) for value, width in zip(values, widths, strict=True)
        ).rstrip()

    lines = [render(list(columns)), render(["-" * width for width in widths])]
    lines += [render(line) for line in cells]
    return "\n".join(lines)


def format_accounting(rows: Sequence[Mapping[str, Any]]) -> str:
    """The per-source accounting table with a verdict line: delivered = accepted + skipped + quarantined."""
    table = format_table(rows, ACCOUNTING_COLUMNS)
    unbalanced = [
        row["source"] for row in rows if row["delivered"] != row["accepted"] + row["skipped"] + row["quarantined"]
    ]
    delivered = sum(int(row["delivered"]) for row in rows)
    if unbalanced:
        verdict = f"NOT BALANCED for {', '.join(unbalanced)}: rows are missing"
    else:
        verdict = f"every delivered row is accounted for: {delivered:,} delivered = accepted + skipped + quarantined"
    return f"{table}\n{verdict}"
