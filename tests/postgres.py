"""Throw-away PostgreSQL databases for tests, on the server named by ``LOOKBACK_TEST_POSTGRES_URL``.

Without a reachable server a test is skipped with the reason, except when ``CI=true``, where
that is a failure. The server's own database (``test`` by default) is only used to create and
drop the throw-away ones, never written to.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

POSTGRES_URL = os.environ.get("LOOKBACK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def reachable_engine(url: str = POSTGRES_URL) -> Engine:
    """An autocommit engine on ``url``, once the server answers; else the test is skipped
    (failed when ``CI=true``) with the reason."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except OperationalError as error:
        engine.dispose()
        message = f"PostgreSQL not reachable at {make_url(url).render_as_string(hide_password=True)}: {error.orig}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (required when CI=true)")
        pytest.skip(message)
    return engine


def throwaway_database(prefix: str, template: str | None = None) -> Generator[str]:
    """Create a database named ``<prefix>_<random>`` (a copy of the database ``template``,
    when given), yield its URL, and drop it afterwards."""
    admin_url = make_url(POSTGRES_URL)
    admin = reachable_engine(POSTGRES_URL)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    # Identifiers cannot be bound parameters: quote the generated names with the dialect's preparer.
    quoted = admin.dialect.identifier_preparer.quote(name)
    copied = f" template {admin.dialect.identifier_preparer.quote(template)}" if template else ""
    with admin.connect() as connection:
        connection.execute(text(f"create database {quoted}{copied}"))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"drop database if exists {quoted} with (force)"))
        admin.dispose()
