"""The rectification DAG: a county's returned workbook read in Airflow (``dag.test()``), and
the task's handling of a return the trigger took: filed under ``read/`` once read, under
``refused/`` with the reasons beside it when a row is wrong."""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import openpyxl
import pytest
from sqlalchemy import create_engine, text

from tests import steps
from tests.dags.test_lookback_dag import DAGS, _run_dags

pytestmark = pytest.mark.integration

AS_OF = date(2020, 6, 30)


def _dag_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lookback_rectification", DAGS / "lookback_rectification.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _answered(workbook: Path, target: Path, state: str, note: str = "", deadline: str = "2020-07-31") -> str:
    """The workbook with its first finding answered; that finding's id."""
    book = openpyxl.load_workbook(workbook)
    for sheet in book.worksheets:
        header = [cell.value for cell in sheet[2]]
        if "问题编号" in header and sheet.max_row >= 3:
            column = {caption: index + 1 for index, caption in enumerate(header)}
            sheet.cell(3, column["整改措施"]).value = "已入户核实"
            sheet.cell(3, column["完成时限"]).value = deadline
            sheet.cell(3, column["整改情况"]).value = state
            sheet.cell(3, column["情况说明"]).value = note or None
            target.parent.mkdir(parents=True, exist_ok=True)
            book.save(target)
            return str(sheet.cell(3, column["问题编号"]).value)
    raise AssertionError("no finding to answer")


@dataclass(frozen=True)
class Published:
    root: Path
    warehouse: str
    workbook: Path


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, generated_batch: Path) -> Published:
    root = tmp_path_factory.mktemp("rectification-dag")
    landing = root / "landing" / "b1"
    shutil.copytree(generated_batch, landing)
    warehouse = f"sqlite:///{root / 'warehouse.sqlite'}"
    steps.run_all(landing, root / "runs" / "b1", AS_OF, warehouse)
    return Published(root, warehouse, sorted((root / "runs" / "b1" / "counties").glob("*.xlsx"))[0])


def _reports(url: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(text("select * from rectification_reports"))]
    engine.dispose()
    return rows


@pytest.mark.slow
def test_the_rectification_dag_reads_a_returned_workbook(published: Published, tmp_path: Path) -> None:
    returned = tmp_path / "returned.xlsx"
    finding = _answered(published.workbook, returned, "已整改")
    conf = {"file": str(returned), "returned_by": "县扶贫办", "warehouse": published.warehouse}
    (result,) = _run_dags(tmp_path, [{"dag_id": "rectification", "conf": conf}])
    assert result == {"dag_id": "rectification", "state": "success", "tasks": {"rectification_read": "success"}}
    assert [(row["finding_id"], row["state"]) for row in _reports(published.warehouse)] == [(finding, "fixed")]


class _Event:
    def __init__(self, payload: dict[str, str]) -> None:
        self.extra = {"payload": payload}


def _taken(root: Path, office: str, source: Path) -> dict[str, str]:
    """A return as the trigger leaves it: moved into its office's reading/ folder."""
    taken = root / "returns" / office / "reading" / f"20201202T000000-{source.name}"
    taken.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, taken)
    return {"file": str(taken), "returned_by": office, "name": source.name}


def test_a_taken_return_is_filed_as_read_or_refused_with_its_reasons(
    published: Published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("LOOKBACK_DATA_DIR", str(tmp_path))  # the returns folder is in the data folder

    module = _dag_module()
    params = {"file": None, "returned_by": None, "warehouse": published.warehouse}

    good = tmp_path / "good.xlsx"
    _answered(published.workbook, good, "整改中", deadline="2020-09-30")
    payload = _taken(tmp_path, "通道县扶贫办", good)
    summary = module._read({"params": params, "triggering_asset_events": {"returned": [_Event(payload)]}})
    assert summary["returned_by"] == "通道县扶贫办" and summary["answers"] == 1 and not summary["already_read"]
    assert (tmp_path / "returns" / "通道县扶贫办" / "read" / Path(payload["file"]).name).exists()
    assert not Path(payload["file"]).exists()

    bad = tmp_path / "bad.xlsx"
    _answered(published.workbook, bad, "无法整改")  # without the reason
    payload = _taken(tmp_path, "通道县扶贫办", bad)
    before = _reports(published.warehouse)
    with pytest.raises(AirflowFailException, match="无法整改 needs the reason"):
        module._read({"params": params, "triggering_asset_events": {"returned": [_Event(payload)]}})
    refused = tmp_path / "returns" / "通道县扶贫办" / "refused" / Path(payload["file"]).name
    assert refused.exists()
    reasons = refused.with_name(refused.name + ".errors.txt").read_text(encoding="utf-8")
    assert "row 3" in reasons and "nothing was stored" in reasons
    assert _reports(published.warehouse) == before


@pytest.mark.slow
def test_the_sample_dag_draws_and_publishes_and_a_returned_list_is_read(
    published: Published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spot check in Airflow: the sample DAG draws and publishes the lists; the
    inspectors' filled-in list, returned like a county workbook, is read as results."""
    out = tmp_path / "samples" / "spot"
    conf = {"run_id": "b1", "per_county": 3, "seed": 9, "sample_id": "spot", "out": str(out)}
    conf["warehouse"] = published.warehouse
    (result,) = _run_dags(tmp_path, [{"dag_id": "sample", "conf": conf}])
    assert result == {"dag_id": "sample", "state": "success", "tasks": {"sample_draw": "success"}}
    lists = sorted(out.glob("*.xlsx"))
    assert lists and (out / "sample.csv").exists()

    book = openpyxl.load_workbook(lists[0])
    sheet = book.worksheets[0]
    header = [cell.value for cell in sheet[2]]
    sheet.cell(3, header.index("核查结果（相符/不相符）") + 1).value = "相符"
    filled = tmp_path / "filled.xlsx"
    book.save(filled)
    payload = _taken(tmp_path, "省核查组", filled)
    monkeypatch.setenv("LOOKBACK_DATA_DIR", str(tmp_path))  # the returns folder is in the data folder
    params = {"file": None, "returned_by": None, "warehouse": published.warehouse}
    summary = _dag_module()._read({"params": params, "triggering_asset_events": {"returned": [_Event(payload)]}})
    assert summary["sample_id"] == "spot" and summary["households"] == 1 and summary["returned_by"] == "省核查组"
    assert (tmp_path / "returns" / "省核查组" / "read" / Path(payload["file"]).name).exists()
