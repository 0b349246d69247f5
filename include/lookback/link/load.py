"""Read the staging tables of a batch into linkage records."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Connection, Select, literal, select

from lookback.link.config import LinkageSettings
from lookback.link.records import prepare_records, shared_values
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
            frame = _read(connection, query.order_by(table.c.source_row))
        if "programme" in frame:
            frame["programme"] = frame["programme"].map(settings.programmes).fillna("none")
        frames[source] = frame
    return frames


# Rows read at a time: the whole table's rows as Python tuples would cost more than the frame.
CHUNK_ROWS = 100_000


def _read(connection: Connection, query: Select[Any]) -> pd.DataFrame:
    """The query's rows, chunk by chunk, strings as Python objects (the linkage reads them
    value by value; pandas' string arrays hand out each value through several calls), equal
    strings shared as one object."""
    pools: dict[str, dict[Any, Any]] = {}
    chunks = []
    for chunk in pd.read_sql(query, connection, chunksize=CHUNK_ROWS):
        for name, dtype in chunk.dtypes.items():
            if isinstance(dtype, pd.StringDtype) or dtype is np.dtype(object):
                chunk[name] = shared_values(chunk[name].astype(object), pools.setdefault(str(name), {}))
        chunks.append(chunk)
    if not chunks:
        return pd.read_sql(query, connection)
    return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]


def load_records(warehouse: Warehouse, batch_id: str, settings: LinkageSettings) -> pd.DataFrame:
    return prepare_records(staging_frames(warehouse, batch_id, settings))
