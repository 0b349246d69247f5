"""SQL statements kept as files in ``include/sql/<stage>/``, one statement per file, bound
parameters only, all read through this module.

``load_sql("<stage>/<name>")`` is the statement in ``include/sql/<stage>/<name>.sql``;
``statement_names`` lists a folder's statements in file-name order (the look-back's
preparation runs them in that order); ``bind`` makes a statement of SQL text read with
other files (a rule's SQL, read beside its metadata by the rule catalogue from
``sql_folder``). A statement with an ``:as_of`` parameter binds it as a date (a string on
SQLite, a date on PostgreSQL).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from sqlalchemy import Date, TextClause, bindparam, text

from lookback.errors import ConfigError
from lookback.paths import sql_dir


def sql_folder(folder: str) -> Path:
    """The folder ``include/sql/<folder>/``."""
    return sql_dir() / folder


@lru_cache(maxsize=64)
def bind(sql: str) -> TextClause:
    """A SQL text as a statement, the as-of date bound as a date."""
    clause = text(sql)
    if "as_of" in clause._bindparams:
        clause = clause.bindparams(bindparam("as_of", type_=Date))
    return clause


@lru_cache(maxsize=128)
def load_sql(name: str) -> TextClause:
    """The statement in ``include/sql/<name>.sql`` (``name``: ``<stage>/<statement>``)."""
    path = sql_dir() / f"{name}.sql"
    try:
        return bind(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror}") from error


def statement_names(folder: str) -> tuple[str, ...]:
    """The names, for :func:`load_sql`, of the statements in ``include/sql/<folder>/``, in
    file-name order."""
    return tuple(f"{folder}/{path.stem}" for path in sorted(sql_folder(folder).glob("*.sql")))
