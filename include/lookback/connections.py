"""Connection ids resolved to SQLAlchemy URLs, for sources read from a department's database.

A source definition names a connection by id (``database.connection``), never by URL: the
URL holds a password, and where it comes from depends on who runs the pipeline. The
domain takes a *resolver*, a function from connection id to SQLAlchemy URL (or a mapping,
which stands for one):

* in Airflow, ``plugins/lookback_connections.py`` resolves the id as an Airflow connection;
* outside Airflow (the command line, tests), :func:`environment_connections` reads the URL
  from the environment variable ``LOOKBACK_CONNECTION_<ID>``: the id upper-cased, every
  character other than a letter or digit written ``_`` (``civil_affairs`` →
  ``LOOKBACK_CONNECTION_CIVIL_AFFAIRS``), e.g.
  ``postgresql+psycopg://reader:secret@db.example/civil``.

A resolver that does not know an id raises :class:`~lookback.errors.ConnectionNotFound`
(or any ``LookupError``), with words that say where it looked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

from lookback.errors import ConnectionNotFound

CONNECTION_ENV_PREFIX = "LOOKBACK_CONNECTION_"

# A connection id to the SQLAlchemy URL of its database.
ConnectionResolver = Callable[[str], str]
Connections = ConnectionResolver | Mapping[str, str]


def connection_env_name(connection: str) -> str:
    """``LOOKBACK_CONNECTION_CIVIL_AFFAIRS`` for ``civil_affairs``."""
    return CONNECTION_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", connection).upper()


def environment_connections(environ: Mapping[str, str] | None = None) -> ConnectionResolver:
    """A resolver reading ``LOOKBACK_CONNECTION_<ID>`` from ``environ`` (default: the
    process's environment, read when a connection is resolved)."""

    def resolve(connection: str) -> str:
        variables = os.environ if environ is None else environ
        name = connection_env_name(connection)
        url = variables.get(name, "").strip()
        if not url:
            raise ConnectionNotFound(f"connection {connection!r} is not defined: set {name} to its SQLAlchemy URL")
        return url

    return resolve


def as_resolver(connections: Connections | None) -> ConnectionResolver:
    """A resolver from what a caller gave: a resolver, a mapping of id to URL, or nothing
    (the environment)."""
    if connections is None:
        return environment_connections()
    if isinstance(connections, Mapping):
        known = connections

        def from_mapping(connection: str) -> str:
            if connection not in known:
                raise ConnectionNotFound(
                    f"connection {connection!r} is not defined (given: {', '.join(sorted(known)) or 'none'})"
                )
            return known[connection]

        return from_mapping
    return connections
