"""What every xlsx this project writes shares: one fixed time, so that the same input
gives the same bytes.

Workbooks are written with XlsxWriter, which gives every zip member one fixed time of its
own; they carry :data:`WORKBOOK_TIME` as their creation (and modification) date.
"""

from __future__ import annotations

from datetime import datetime

# A fixed timestamp for workbook properties.
WORKBOOK_TIME = datetime(2020, 6, 1, 8, 0, 0)
