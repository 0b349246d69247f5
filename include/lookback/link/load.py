"""Read the staging tables of a batch into linkage records."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select

from lookback.link.config import LinkageSettings
from lookback.link.engine import prepare_records
from lookback.warehouse import Warehouse


def staging_frames(warehouse: Warehouse, batch_id: str, settings: LinkageSettings) -> dict[str, pd.DataFrame]:
    """Per source, the staging columns the linkage uses, under linkage field names."""
    frames: dict[str, pd.DataFrame] = {}
    for source, fields in settings.sources.items():
        if source not in warehouse.specs:
            continue
        table = warehouse.staging(source)
        wanted = {"source_row": table.c.source_row}
        for field, column in fields.items():
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
            else:
                wanted[field] = table.c[column]
        query = select(*(column.label(name) for name, column in wanted.items())).where(table.c.batch_id == batch_id)
        with warehouse.engine.connect() as connection:
            frames[source] = pd.read_sql(query.order_by(table.c.source_row), connection)
    return frames


def load_records(warehouse: Warehouse, batch_id: str, settings: LinkageSettings) -> pd.DataFrame:
    return prepare_records(staging_frames(warehouse, batch_id, settings))
