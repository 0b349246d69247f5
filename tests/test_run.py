"""A run's identity, built and checked once: defaults, refusals, and the warehouse it opens."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from lookback.errors import ConfigError, DeliveryError
from lookback.run import Run, open_warehouse


def test_a_run_takes_its_batch_from_the_landing_folder_and_its_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOKBACK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LOOKBACK_WAREHOUSE_URL", raising=False)
    run = Run.create(landing=tmp_path / "landing" / "2020-06", as_of="2020-06-30")
    assert (run.batch, run.run_id, run.as_of) == ("2020-06", "2020-06", date(2020, 6, 30))
    assert run.out == tmp_path / "data" / "runs" / "2020-06"
    assert run.warehouse_url == f"sqlite:///{tmp_path / 'data' / 'warehouse.sqlite'}"
    given = Run.create(batch="b1", run_id="r1", out=tmp_path / "out", warehouse="sqlite:///x.db")
    assert (given.batch, given.run_id, given.out, given.warehouse_url) == (
        "b1",
        "r1",
        tmp_path / "out",
        "sqlite:///x.db",
    )
    assert given.as_of is None and given.landing is None


@pytest.mark.parametrize(
    ("arguments", "error", "words"),
    [
        ({}, ConfigError, "needs a batch id or a landing folder"),
        ({"batch": "a b"}, DeliveryError, "batch id 'a b'"),
        ({"batch": "b1", "run_id": "../x"}, DeliveryError, "batch id '../x'"),
        ({"batch": "b1", "as_of": "30/06/2020"}, ConfigError, "as-of date '30/06/2020' is not a date"),
    ],
)
def test_a_bad_run_is_refused_in_words(arguments: dict[str, str], error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        Run.create(**arguments)


def test_a_stage_that_needs_a_date_or_a_landing_folder_says_so() -> None:
    run = Run.create(batch="b1", warehouse="sqlite:///x.db")
    with pytest.raises(ConfigError, match="run b1: no as-of date given"):
        run.needs_as_of()
    with pytest.raises(ConfigError, match="run b1: no landing folder given"):
        run.needs_landing()


def test_a_dag_runs_params_make_the_same_run_with_the_logical_date_as_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOKBACK_DATA_DIR", str(tmp_path))  # a DAG run's folders lie inside it
    params = {"landing": str(tmp_path / "2020-06"), "batch": None, "run_id": None, "out": None, "as_of": None}
    run = Run.from_params({**params, "warehouse": "sqlite:///x.db"}, date(2020, 7, 1))
    assert (run.batch, run.as_of) == ("2020-06", date(2020, 7, 1))
    dated = Run.from_params({**params, "as_of": "2020-06-30", "warehouse": "sqlite:///x.db"}, date(2020, 7, 1))
    assert dated.as_of == date(2020, 6, 30)


def test_a_sqlite_warehouse_inside_the_runs_folder_is_refused(tmp_path: Path) -> None:
    inside = Run.create(batch="b1", out=tmp_path / "out", warehouse=f"sqlite:///{tmp_path / 'out' / 'w.db'}")
    with pytest.raises(ConfigError, match="lies inside the run's folder"):
        inside.check_warehouse_outside()
    Run.create(batch="b1", out=tmp_path / "out", warehouse=f"sqlite:///{tmp_path / 'w.db'}").check_warehouse_outside()


def test_the_schema_is_checked_once_per_process_and_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lookback.warehouse import Warehouse

    checked: list[str] = []
    ensure = Warehouse.ensure_schema

    def counting(self: Warehouse) -> None:
        checked.append(self.url)
        ensure(self)

    monkeypatch.setattr(Warehouse, "ensure_schema", counting)
    first, second = f"sqlite:///{tmp_path / 'one.db'}", f"sqlite:///{tmp_path / 'two.db'}"
    for url in (first, first, second, first):
        with open_warehouse(url) as warehouse:
            assert "person_links" in warehouse.metadata.tables
    assert checked == [first, second]
