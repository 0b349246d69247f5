"""What ops are told when something goes wrong: a failed task names the batch, the stage and
the reason (identity numbers masked) in the log and in ``alerts/failures.jsonl``; a
reconciliation past its deadline is told the same way."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from lookback_dags import deadline_missed, on_failure

NUMBER = "431224198703151238"


def _alerts(data: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (data / "alerts" / "failures.jsonl").read_text(encoding="utf-8").splitlines()]


def test_a_failed_task_names_batch_stage_and_reason_with_numbers_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LOOKBACK_DATA_DIR", str(tmp_path))
    ti = SimpleNamespace(task_id="link_county", dag_id="reconcile", run_id="manual__1", map_index=3)
    context = {
        "ti": ti,
        "params": {"batch": "2020-06", "landing": None},
        "logical_date": None,
        "exception": ValueError(f"row 12, column 身份证号: {NUMBER} is someone else's"),
    }
    with caplog.at_level(logging.ERROR):
        on_failure(context)
    (alert,) = _alerts(tmp_path)
    assert alert["batch"] == "2020-06" and alert["stage"] == "link" and alert["task_id"] == "link_county"
    assert alert["map_index"] == 3 and alert["dag_id"] == "reconcile"
    assert NUMBER not in json.dumps(alert) and NUMBER not in caplog.text
    assert "row 12, column 身份证号" in str(alert["reason"])
    assert "lookback: batch 2020-06, stage link (link_county) failed" in caplog.text


def test_a_run_whose_params_are_broken_still_alerts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKBACK_DATA_DIR", str(tmp_path))
    ti = SimpleNamespace(task_id="ingest", dag_id="ingest_registry", run_id="manual__2", map_index=-1)
    on_failure({"ti": ti, "params": {"batch": "../not a batch"}, "exception": RuntimeError("disk full")})
    (alert,) = _alerts(tmp_path)
    assert alert["batch"] == "?" and alert["reason"] == "disk full"


def test_a_missed_deadline_is_alerted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKBACK_DATA_DIR", str(tmp_path))
    context = {"dag_run": {"dag_id": "reconcile", "dag_run_id": "asset_triggered__x", "partition_key": "2020-06"}}
    asyncio.run(deadline_missed(context=context, within="4:00:00"))
    (alert,) = _alerts(tmp_path)
    assert alert["stage"] == "deadline" and alert["batch"] == "2020-06"
    assert alert["reason"] == "not finished within 4:00:00 of being queued"
