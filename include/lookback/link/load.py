"""Read the staging tables of a batch into linkage records."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, literal, select

from lookback.link.config import LinkageSettings
from lookback.link.records import prepare_records
from lookback.warehouse import Warehouse


def staging_frames(warehouse: Warehouse, batch_id: str, settings: LinkageSettings) -> dict[str, pd.DataFrame]:
    """Per source, the staging columns the linkage uses, under linkage field names."""
    frames: dict[str, pd.DataFrame] = {}
    for source, fields in settings.sources.items():
        if source not in warehouse.specs:
            continue
        table = warehouse.staging(source)
        wanted: dict[str, ColumnElement[Any]] = {"source_row": table.c.source_row}
        for field, column in fields.items():
            # ``=value``: a constant, e.g. the housing row's person is the head of the household
            if field == "name":
                wanted |= {
                    "name": table.c[column],
                    "pinyin": table.c[f"{column}_pinyin"],
                    "placeholder": table.c[f"{column}_placeholder"],
                }
            elif field == "identity_number":
                wanted |= {
                    "id": table.c[column],
                    "id_text": table.c[f"{column}_raw"],
                    "id_birth_date": table.c[f"{column}_birth_date"],
                    "id_sex": table.c[f"{column}_sex"],
                }
            elif column.startswith("="):
                wanted[field] = literal(column[1:])  # the same for every row of the source
            else:
                wanted[field] = table.c[column]
        query = select(*(column.label(name) for name, column in wanted.items())).where(table.c.batch_id == batch_id)
        with warehouse.engine.connect() as connection:
            frame = pd.read_sql(query.order_by(table.c.source_row), connection)
        # Python objects, as the linkage reads them value by value (pandas' string arrays
        # hand out each value through several calls).
        frame = frame.astype(
            {name: object for name, dtype in frame.dtypes.items() if isinstance(dtype, pd.StringDtype)}
        )
        if "programme" in frame:
            frame["programme"] = frame["programme"].map(settings.programmes).fillna("none")
        frames[source] = frame
    return frames


def load_records(warehouse: Warehouse, batch_id: str, settings: LinkageSettings) -> pd.DataFrame:
    return prepare_records(staging_frames(warehouse, batch_id, settings))
