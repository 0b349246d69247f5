"""SQL statements kept as files in ``include/sql/``, one statement per file, bound parameters only."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import TextClause, text

from lookback.errors import ConfigError
from lookback.paths import sql_dir


@lru_cache(maxsize=128)
def load_sql(name: str) -> TextClause:
    """The statement in ``include/sql/<name>.sql``."""
    path = sql_dir() / f"{name}.sql"
    try:
        return text(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror}") from error
