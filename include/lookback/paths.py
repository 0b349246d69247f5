"""Where configuration and data live.

Configuration (source YAML, SQL, the division table) sits beside the package under
``include/``; an installation may point elsewhere with ``LOOKBACK_INCLUDE_DIR``. Data
(the default SQLite warehouse, landing batches, run outputs) goes under ``./data`` of the
working directory unless ``LOOKBACK_DATA_DIR`` says otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

WAREHOUSE_URL_ENV = "LOOKBACK_WAREHOUSE_URL"


def include_dir() -> Path:
    """The ``include/`` folder holding sources/, sql/ and divisions/."""
    configured = os.environ.get("LOOKBACK_INCLUDE_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent.parent


def sources_dir() -> Path:
    return include_dir() / "sources"


def sql_dir() -> Path:
    return include_dir() / "sql"


def divisions_dir() -> Path:
    return include_dir() / "divisions"


def official_divisions_dir() -> Path:
    """The official division lists the division table is built from (``divisions/official/``)."""
    return divisions_dir() / "official"


def data_dir() -> Path:
    """Root for the default warehouse file and generated batches."""
    return Path(os.environ.get("LOOKBACK_DATA_DIR", "data")).resolve()


def default_warehouse_url() -> str:
    """``LOOKBACK_WAREHOUSE_URL`` if set, else a SQLite file under the data folder."""
    configured = os.environ.get(WAREHOUSE_URL_ENV)
    if configured:
        return configured
    return f"sqlite:///{data_dir() / 'warehouse.sqlite'}"
