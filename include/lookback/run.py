"""A run's identity: which batch, which look-back run, as of when, from which landing folder,
into which run folder and warehouse. Built and validated once per DAG task or command, then
handed to every stage as it is."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from lookback.errors import ConfigError
from lookback.ingest.load import check_batch_id
from lookback.paths import data_dir, default_warehouse_url, inside_data_dir
from lookback.publish.replace import RUN_MARKER, check_replaceable
from lookback.sources import load_source_specs
from lookback.warehouse import Warehouse


@dataclass(frozen=True)
class Run:
    """One look-back run of one batch. ``run_id`` defaults to the batch id (running a batch
    again replaces its run), ``out`` to ``data/runs/<batch>``, the warehouse to
    ``$LOOKBACK_WAREHOUSE_URL`` or the SQLite file under ``data/``."""

    batch: str
    run_id: str
    out: Path
    warehouse_url: str
    landing: Path | None = None
    as_of: date | None = None  # the look-back's reference date (reading and linking need none)

    @classmethod
    def create(
        cls,
        *,
        as_of: date | str | None = None,
        landing: Path | str | None = None,
        batch: str | None = None,
        run_id: str | None = None,
        out: Path | str | None = None,
        warehouse: str | None = None,
    ) -> Run:
        """The run of ``batch`` (default: the landing folder's name), every value checked."""
        landing_dir = Path(landing) if landing is not None else None
        if batch:
            batch_id = check_batch_id(batch)
        elif landing_dir is not None:
            batch_id = check_batch_id(landing_dir.resolve().name)
        else:
            raise ConfigError("a run needs a batch id or a landing folder (landing/<batch>/)")
        run_folder = Path(out) if out else data_dir() / "runs" / batch_id
        check_replaceable(run_folder, RUN_MARKER)
        return cls(
            batch=batch_id,
            run_id=check_batch_id(run_id or batch_id),
            as_of=_as_date(as_of) if as_of is not None else None,
            out=run_folder,
            warehouse_url=warehouse or default_warehouse_url(),
            landing=landing_dir,
        )

    @classmethod
    def from_params(cls, params: Mapping[str, Any], logical_date: date) -> Run:
        """The run a DAG run's params describe (``as_of`` defaults to the run's logical date).
        Whoever may trigger a DAG sets its params: the landing and run folders they name must
        lie inside ``LOOKBACK_DATA_DIR`` (a relative path is taken from there). A ``warehouse``
        URL carrying a password is refused: a DAG run's params are stored with the run and
        shown to everyone who may read it; the password belongs in ``$LOOKBACK_WAREHOUSE_URL``
        or an Airflow connection."""
        check_no_password(params.get("warehouse"), "the DAG run's param 'warehouse'")
        landing, out = params.get("landing"), params.get("out")
        return cls.create(
            as_of=params.get("as_of") or logical_date,
            landing=inside_data_dir(landing, "landing folder") if landing else None,
            batch=params.get("batch"),
            run_id=params.get("run_id"),
            out=inside_data_dir(out, "run folder (out)") if out else None,
            warehouse=params.get("warehouse"),
        )

    def needs_as_of(self) -> date:
        """The reference date, which validating, looking back and publishing need."""
        if self.as_of is None:
            raise ConfigError(f"run {self.run_id}: no as-of date given")
        return self.as_of

    def needs_landing(self) -> Path:
        """The landing folder, which reading the exports and publishing need."""
        if self.landing is None:
            raise ConfigError(f"run {self.run_id}: no landing folder given")
        return self.landing

    def check_warehouse_outside(self) -> None:
        """Refuse a SQLite warehouse inside the run's folder: publishing replaces that folder
        as a whole, and the warehouse would go with it (found only after a full run, when
        the row accounting is read back)."""
        url = make_url(self.warehouse_url)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return
        database = Path(url.database).resolve()
        if database.is_relative_to(self.out.resolve()):
            raise ConfigError(
                f"the warehouse {database} lies inside the run's folder {self.out}, which publishing replaces "
                "as a whole: put the warehouse elsewhere"
            )


# A URL's user information with a password: ``scheme://user:password@host``.
URL_WITH_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#@]*:[^/?#@]*@")


def check_no_password(url: str | None, what: str) -> None:
    """Refuse a URL that carries a password (the message does not repeat it)."""
    if url and URL_WITH_PASSWORD.match(url):
        raise ConfigError(
            f"{what} carries a password; give the warehouse's password through $LOOKBACK_WAREHOUSE_URL "
            "or an Airflow connection, never in a run's params"
        )


def _as_date(value: date | str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"as-of date {value!r} is not a date of the form YYYY-MM-DD") from None


# Warehouses whose schema this process has checked (by URL): each is checked once.
_CHECKED: set[str] = set()


def connect_warehouse(url: str | None = None) -> Warehouse:
    """The warehouse at ``url`` (default: ``LOOKBACK_WAREHOUSE_URL`` or the SQLite file), its
    schema ensured the first time this process opens it. The caller disposes of it; prefer
    :func:`open_warehouse`, which does."""
    warehouse = Warehouse(url or default_warehouse_url(), load_source_specs())
    if warehouse.url not in _CHECKED:
        try:
            warehouse.ensure_schema()
        except BaseException:
            warehouse.dispose()
            raise
        _CHECKED.add(warehouse.url)
    return warehouse


@contextmanager
def open_warehouse(url: str | None = None) -> Iterator[Warehouse]:
    """The warehouse at ``url`` (see :func:`connect_warehouse`), disposed on leaving."""
    warehouse = connect_warehouse(url)
    try:
        yield warehouse
    finally:
        warehouse.dispose()
