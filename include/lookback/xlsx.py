"""What every xlsx this project writes shares: one fixed time, so that the same input
gives the same bytes.

Workbooks written with XlsxWriter carry :data:`WORKBOOK_TIME` as their creation (and
modification) date, and XlsxWriter gives every zip member one fixed time of its own.
openpyxl stamps the workbook's "modified" property with the time of saving, and the zip
members with the time of writing: a workbook it writes gets :data:`WORKBOOK_TIME` in its
properties before saving, and :func:`fix_zip_timestamps` rewrites the rest afterwards.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from datetime import datetime
from pathlib import Path

# A fixed timestamp for workbook properties and zip members.
WORKBOOK_TIME = datetime(2020, 6, 1, 8, 0, 0)

_CORE_PROPERTIES = "docProps/core.xml"
_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*")


def fix_zip_timestamps(path: Path) -> None:
    """Give every member of the xlsx zip, and the workbook's "modified" property (which
    openpyxl sets at save), one fixed time: the same input, the same bytes.

    Members are copied one at a time into a sibling file that then replaces ``path``, so a
    large worksheet is never held in memory whole.
    """
    stamp = WORKBOOK_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    rewritten = path.with_name(f".{path.name}.timestamps")
    try:
        with (
            zipfile.ZipFile(path) as source,
            zipfile.ZipFile(rewritten, "w", compression=zipfile.ZIP_DEFLATED) as target,
        ):
            for info in source.infolist():
                fixed = zipfile.ZipInfo(info.filename, date_time=WORKBOOK_TIME.timetuple()[:6])
                fixed.compress_type = zipfile.ZIP_DEFLATED
                fixed.external_attr = info.external_attr
                if info.filename == _CORE_PROPERTIES:
                    target.writestr(fixed, _MODIFIED.sub(rb"\g<1>" + stamp, source.read(info)))
                else:
                    fixed.file_size = info.file_size
                    with source.open(info) as data, target.open(fixed, "w") as out:
                        shutil.copyfileobj(data, out, 1024 * 1024)
        rewritten.replace(path)
    finally:
        rewritten.unlink(missing_ok=True)
