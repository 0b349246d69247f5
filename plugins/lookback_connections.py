"""Airflow connections as the SQLAlchemy URLs lookback reads a department's database with.

A source definition with a ``database:`` block names its connection by id; in Airflow the
id is an Airflow connection (Admin → Connections, ``airflow connections add``, a secrets
backend, or ``AIRFLOW_CONN_<ID>`` in JSON or URI form). :func:`airflow_connection_url`
is the resolver the ingest task hands to the domain::

    from lookback_connections import airflow_connection_url

    ingest_one(run, warehouse, source, connections=airflow_connection_url)

The connection type gives the SQLAlchemy dialect and driver (``postgres`` →
``postgresql+psycopg``, psycopg 3 being in the lock); an extra ``sqlalchemy_scheme`` (the
key Airflow's SQL hooks read) overrides it. Airflow masks the connection's password in
task logs; lookback never writes the URL anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import URL

from lookback.errors import ConfigError, ConnectionNotFound

# Airflow connection type → SQLAlchemy drivername.
DRIVERS: Mapping[str, str] = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mssql": "mssql+pymssql",
    "oracle": "oracle+oracledb",
    "sqlite": "sqlite",
}
# Extras passed on to the driver as URL query parameters (libpq's, for PostgreSQL).
_QUERY_EXTRAS = frozenset(
    {"sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "connect_timeout", "application_name", "options"}
)


def connection_url(
    conn_id: str,
    *,
    conn_type: str | None,
    host: str | None,
    login: str | None,
    password: str | None,
    schema: str | None,
    port: int | None,
    extra: Mapping[str, Any],
) -> URL:
    """The SQLAlchemy URL of an Airflow connection's fields (``schema`` is the database, as
    in Airflow's PostgreSQL connections)."""
    scheme = extra.get("sqlalchemy_scheme")
    drivername = scheme if isinstance(scheme, str) and scheme else DRIVERS.get((conn_type or "").lower())
    if drivername is None:
        raise ConfigError(
            f"Airflow connection {conn_id!r} has type {conn_type!r}, which lookback cannot read from: "
            f"use one of {', '.join(sorted(DRIVERS))}, or set the extra sqlalchemy_scheme (e.g. postgresql+psycopg)"
        )
    if drivername == "sqlite":  # a file: the connection's host is its path
        return URL.create("sqlite", database=host or schema or None)
    query = {key: str(value) for key, value in extra.items() if key in _QUERY_EXTRAS and value is not None}
    return URL.create(
        drivername,
        username=login or None,
        password=password or None,
        host=host or None,
        port=port or None,
        database=schema or None,
        query=query,
    )


def airflow_connection_url(conn_id: str) -> str:
    """The SQLAlchemy URL (with its password) of the Airflow connection ``conn_id``; raises
    :class:`~lookback.errors.ConnectionNotFound` when no such connection exists."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise ConnectionNotFound(
            f"Airflow connection {conn_id!r} does not exist: add it (Admin → Connections, "
            f"`airflow connections add {conn_id} ...`, or AIRFLOW_CONN_{conn_id.upper()})"
        ) from None
    url = connection_url(
        conn_id,
        conn_type=connection.conn_type,
        host=connection.host,
        login=connection.login,
        password=connection.password,
        schema=connection.schema,
        port=connection.port,
        extra=connection.extra_dejson,
    )
    return url.render_as_string(hide_password=False)
