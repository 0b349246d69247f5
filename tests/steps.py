"""The pipeline's stages as tests call them: one call per stage, each building its run and
opening (and disposing of) the warehouse, as a DAG task does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from lookback import pipeline
from lookback.ingest.load import SourceAccounting
from lookback.link.stage import LinkSummary
from lookback.publish.run_files import RunOutputs
from lookback.reconcile.stage import ReconcileSummary
from lookback.run import Run, open_warehouse
from lookback.validate.stage import QualityReport


def ingest(
    landing: Path, *, warehouse: str, batch: str | None = None, sources: Sequence[str] | None = None
) -> list[SourceAccounting]:
    run = Run.create(landing=landing, batch=batch, warehouse=warehouse)
    with open_warehouse(warehouse) as store:
        return pipeline.ingest_all(run, store, sources)


def link(batch: str, warehouse: str) -> LinkSummary:
    with open_warehouse(warehouse) as store:
        return pipeline.link(Run.create(batch=batch, warehouse=warehouse), store)


def validate(stage: str, batch: str, out: Path, as_of: date, warehouse: str) -> QualityReport:
    run = Run.create(batch=batch, out=out, as_of=as_of, warehouse=warehouse)
    with open_warehouse(warehouse) as store:
        return pipeline.validate(run, store, stage)


def reconcile(batch: str, as_of: date, warehouse: str) -> ReconcileSummary:
    with open_warehouse(warehouse) as store:
        return pipeline.reconcile(Run.create(batch=batch, as_of=as_of, warehouse=warehouse), store)


def publish(landing: Path, out: Path, as_of: date, warehouse: str, *, batch: str, run_id: str) -> RunOutputs:
    run = Run.create(landing=landing, batch=batch, run_id=run_id, out=out, as_of=as_of, warehouse=warehouse)
    with open_warehouse(warehouse) as store:
        return pipeline.publish(run, store)


def run_all(landing: Path, out: Path, as_of: date, warehouse: str, batch: str | None = None) -> RunOutputs:
    run = Run.create(landing=landing, batch=batch, out=out, as_of=as_of, warehouse=warehouse)
    return pipeline.run_pipeline(run)[1]


def finding_history(finding_id: str, warehouse: str) -> list[dict[str, Any]]:
    with open_warehouse(warehouse) as store:
        return pipeline.finding_history(store, finding_id)
