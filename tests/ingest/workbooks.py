"""Workbooks as other tools write them: several sheets, and stored dimensions that lie."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

_DIMENSION = re.compile(rb'<dimension ref="[^"]*"\s*/>')


def write_workbook(path: Path, sheets: Mapping[str, Sequence[Sequence[object]]]) -> None:
    """One sheet per entry, in the order given, each row appended as given (ragged rows stay ragged)."""
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.worksheets[0])
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
    workbook.save(path)


def set_stored_dimension(path: Path, ref: str) -> None:
    """Rewrite every sheet's ``<dimension>`` element to ``ref``, as a tool that never updates
    it leaves it (``A1:C3`` over a sheet of 500 rows)."""
    rewritten = path.with_name(path.name + ".dimension")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.startswith("xl/worksheets/sheet"):
                data, replaced = _DIMENSION.subn(f'<dimension ref="{ref}"/>'.encode(), data)
                assert replaced == 1, f"{info.filename}: no <dimension> element to rewrite"
            target.writestr(info, data)
    rewritten.replace(path)
