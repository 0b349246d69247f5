"""A registry export written by hand, as the poverty alleviation office delivers it."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

from lookback.sources import load_source_specs

PLAUSIBLE = {"县市区": "溆浦县", "乡镇": "龙潭镇", "行政村": "茶溪村", "贫困户属性": "一般贫困户", "脱贫标志": "未脱贫"}


def write_registry(folder: Path, rows: list[Mapping[str, str]]) -> None:
    """``registry_members.csv`` in ``folder``: each row's values by header, the rest plausible."""
    spec = load_source_specs()["registry"]
    header = [column.headers[0] for column in spec.columns]
    folder.mkdir(parents=True)
    with (folder / "registry_members.csv").open("w", encoding="gb18030", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            values = PLAUSIBLE | dict(row)
            writer.writerow([values.get(column, "") for column in header])
