"""What every xlsx this project writes shares: one fixed time, so that the same input
gives the same bytes; and how a workbook people filled in and returned is opened.

Workbooks are written with XlsxWriter, which gives every zip member one fixed time of its
own; they carry :data:`WORKBOOK_TIME` as their creation (and modification) date. Those
that come back (a county's answers, the inspectors' results, review decisions) say whose
they are in custom properties (:func:`custom_properties`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from lookback.errors import LookbackError

# A fixed timestamp for workbook properties.
WORKBOOK_TIME = datetime(2020, 6, 1, 8, 0, 0)


def open_returned(path: Path, *, read_only: bool = False) -> Any:
    """A returned workbook, opened with openpyxl; :class:`LookbackError` when it is not one."""
    from openpyxl import load_workbook

    try:
        return load_workbook(path, read_only=read_only)
    except Exception as error:  # any reason the file is not a workbook
        raise LookbackError(f"{path}: not a readable workbook ({error})") from error


def custom_properties(book: Any) -> dict[str, Any]:
    """A workbook's custom document properties, name → value."""
    return {prop.name: getattr(prop, "value", None) for prop in book.custom_doc_props.props}
