"""Whoever may trigger a DAG sets its params (and may post an asset event with a forged
payload): the paths among them must lie inside ``LOOKBACK_DATA_DIR``, ids must be ids, and
no output folder lookback did not publish is ever replaced. The triggers never take a
symbolic link for a delivery or a return."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from lookback.errors import ConfigError, LookbackError
from lookback.publish.replace import NotReplaceable
from lookback_dags import current_run
from lookback_triggers import oldest_flag, oldest_return
from tests.dags.test_lookback_dag import DAGS


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data folder, a folder beside it (outside), and a home folder inside neither."""
    folder = tmp_path / "data"
    (folder / "landing" / "b1").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("key")
    monkeypatch.setenv("LOOKBACK_DATA_DIR", str(folder))
    monkeypatch.setenv("HOME", str(home))
    return folder


def _context(**params: Any) -> dict[str, Any]:
    return {"params": {"batch": None, "landing": None, "out": None, "as_of": "2020-06-30", **params}}


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("landing", "/etc"),
        ("landing", "../outside"),
        ("landing", "landing/../../outside"),
        ("landing", "~"),
        ("out", "~"),
        ("out", "/tmp"),
        ("out", ".."),
        ("out", "."),  # the data folder itself
        ("out", "runs/b1\n"),
    ],
)
def test_a_path_param_outside_the_data_folder_is_refused(data: Path, param: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"{param}\)? .*(outside the data folder|not a usable path)"):
        current_run(_context(batch="b1", **{param: value}))


def test_a_relative_path_param_is_taken_from_the_data_folder(data: Path) -> None:
    run = current_run(_context(landing="landing/b1", out="runs/b1"))
    assert (run.batch, run.landing, run.out) == ("b1", data / "landing" / "b1", data / "runs" / "b1")


def test_a_link_in_the_data_folder_that_leads_out_of_it_is_refused(data: Path) -> None:
    (data / "landing" / "b2").symlink_to(data.parent / "outside", target_is_directory=True)
    with pytest.raises(ConfigError, match=r"landing/b2' resolves to .*/outside, outside the data folder"):
        current_run(_context(landing=str(data / "landing" / "b2")))
    # The landing trigger does not take a flag there (nor a flag that is itself a link).
    (data.parent / "outside" / "registry.ready").touch()
    (data / "landing" / "b1" / "dibao.ready").symlink_to(data.parent / "outside" / "registry.ready")
    assert oldest_flag(data / "landing", "registry") is None
    assert oldest_flag(data / "landing", "dibao") is None
    (data / "landing" / "b1" / "hukou.ready").touch()
    assert oldest_flag(data / "landing", "hukou") == data / "landing" / "b1" / "hukou.ready"


def test_no_param_makes_a_run_replace_a_folder_it_did_not_publish(data: Path) -> None:
    """A home folder: outside the data folder, refused; inside it, refused as not a run's;
    the landing zone and its batches alike. Nothing is removed."""
    inside_home = data / "home"
    (inside_home / ".ssh").mkdir(parents=True)
    (inside_home / ".ssh" / "id_ed25519").write_text("key")
    (data / "landing" / "b1" / "registry_members.csv").write_text("delivered")
    for out in ("home", "landing", "landing/b1"):
        with pytest.raises(NotReplaceable, match="not empty and not a folder lookback published"):
            current_run(_context(batch="b1", out=out))
    assert (inside_home / ".ssh" / "id_ed25519").read_text() == "key"
    assert (data / "landing" / "b1" / "registry_members.csv").read_text() == "delivered"
    assert (Path.home() / ".ssh" / "id_ed25519").read_text() == "key"


@pytest.mark.parametrize("batch", ["b1\n", "../b1", "b1/..", "a\\b", "a\x00b"])
def test_a_batch_param_or_partition_that_is_not_an_id_is_refused(data: Path, batch: str) -> None:
    with pytest.raises(LookbackError, match="batch id"):
        current_run(_context(batch=batch))
    context = _context() | {"dag_run": SimpleNamespace(partition_key=batch)}
    with pytest.raises(LookbackError, match="batch id"):
        current_run(context)


def _dag_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, DAGS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Event:
    def __init__(self, payload: dict[str, str]) -> None:
        self.extra = {"payload": payload}


def test_the_rectification_dag_reads_no_file_outside_the_data_folder(data: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    read = _dag_module("lookback_rectification")._read
    secret = data.parent / "outside" / "secret.xlsx"
    secret.write_bytes(b"PK")
    for name in (str(secret), "../outside/secret.xlsx", "/etc/passwd"):
        params = {"file": name, "returned_by": "县扶贫办", "warehouse": f"sqlite:///{data / 'w.sqlite'}"}
        with pytest.raises(AirflowFailException, match=r"returned workbook \(file\) .*outside the data folder"):
            read({"params": params})
    # A forged asset event, as the REST API lets one be posted, is held to the same.
    forged = {"file": str(secret), "returned_by": "县扶贫办", "name": "secret.xlsx"}
    empty: dict[str, str | None] = {"file": None, "returned_by": None, "warehouse": f"sqlite:///{data / 'w.sqlite'}"}
    with pytest.raises(AirflowFailException, match="outside the data folder"):
        read({"params": empty, "triggering_asset_events": {"returned": [_Event(forged)]}})
    assert secret.read_bytes() == b"PK"


def test_the_sample_dag_writes_no_folder_outside_the_data_folder_or_over_another(data: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    draw = _dag_module("lookback_sample")._draw
    params = {"run_id": "b1", "seed": 1, "confidence": 0.95, "margin": 0.05, "warehouse": "sqlite://"}
    with pytest.raises(AirflowFailException, match=r"sample folder \(out\) .*outside the data folder"):
        draw(params | {"out": str(Path.home())})
    with pytest.raises(AirflowFailException, match=r"not empty and not a folder lookback published \(no sample\.csv"):
        draw(params | {"out": "landing"})
    with pytest.raises(AirflowFailException, match=r"sample id '\.\./\.\./home'"):
        draw(params | {"sample_id": "../../home"})


def test_a_returned_link_is_refused_not_read(data: Path) -> None:
    returns = data / "returns"
    (returns / "县扶贫办").mkdir(parents=True)
    secret = data.parent / "outside" / "secret.xlsx"
    secret.write_bytes(b"PK")
    (returns / "县扶贫办" / "431224 溆浦县.xlsx").symlink_to(secret)
    (returns / "linked office").symlink_to(data.parent / "outside", target_is_directory=True)
    assert oldest_return(returns, settle=0, now=1e12) is None
    refused = returns / "县扶贫办" / "refused" / "431224 溆浦县.xlsx"
    assert refused.is_symlink()  # the link moved aside, what it names untouched
    assert "a symbolic link, not a workbook: refused" in refused.with_name(refused.name + ".errors.txt").read_text()
    assert secret.read_bytes() == b"PK" and (data.parent / "outside" / "secret.xlsx").exists()


def test_a_return_whose_name_holds_a_line_break_is_refused(data: Path) -> None:
    office = data / "returns" / "县扶贫办"
    office.mkdir(parents=True)
    (office / "431224\nforged log line.xlsx").write_bytes(b"PK")
    assert oldest_return(data / "returns", settle=0, now=1e12) is None
    refused = office / "refused" / "431224_forged log line.xlsx"
    assert refused.read_bytes() == b"PK"
    assert "holds a control character" in refused.with_name(refused.name + ".errors.txt").read_text()
