"""County tasks: link and look-back run one group of counties at a time give the links and
findings the whole batch gives at once, and each task keeps to its own counties."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from lookback import pipeline
from lookback.counties import Counties, county_tasks
from lookback.generate.batch import generate_batch
from lookback.link import engine
from lookback.link.config import LinkageSettings, load_linkage_settings
from lookback.link.engine import LinkPlan, decide_counties, decision_units, gather_scores, plan_links, score_pairs
from lookback.link.load import load_records
from lookback.run import Run, open_warehouse
from tests import steps

pytestmark = pytest.mark.integration

AS_OF = date(2020, 6, 30)
BATCH = "counties"
COUNTIES = ("431230", "431224", "433130")
# Two named tasks; the third county (and any row of none) falls to the task of the others.
GROUPS = [["431224"], ["433130"]]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hard batch of three counties, ingested into a warehouse kept as a template."""
    root = tmp_path_factory.mktemp("counties")
    landing = root / "landing" / BATCH
    generate_batch(landing, persons=400, seed=11, counties=COUNTIES, noise="hard")
    template = root / "ingested.sqlite"
    steps.ingest(landing, warehouse=f"sqlite:///{template}")
    return template


def _run(template: Path, folder: Path, groups: list[list[str]] | None) -> str:
    folder.mkdir()
    url = f"sqlite:///{folder / 'warehouse.sqlite'}"
    shutil.copy(template, folder / "warehouse.sqlite")
    run = Run.create(batch=BATCH, as_of=AS_OF, warehouse=url)
    with open_warehouse(url) as warehouse:
        pipeline.link(run, warehouse, groups)
        pipeline.reconcile(run, warehouse, groups)
    return url


def _rows(url: str, table: str, *columns: str) -> list[tuple[Any, ...]]:
    with open_warehouse(url) as warehouse, warehouse.engine.connect() as connection:
        stored = warehouse.table(table)
        selected = [stored.c[name] for name in columns]
        return [tuple(row) for row in connection.execute(select(*selected).order_by(*selected))]


@pytest.fixture(scope="module")
def runs(ingested: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("runs")
    return _run(ingested, root / "whole", None), _run(ingested, root / "by_county", GROUPS)


LINK_COLUMNS = (
    "source",
    "source_row",
    "person_id",
    "household_key",
    "match_method",
    "match_score",
    "conflicting_identity",
    "identity_borrowed",
)
FINDING_COLUMNS = ("finding_id", "rule_code", "person_id", "household_key", "county_code", "evidence", "source_rows")


def test_county_tasks_link_as_the_whole_batch(runs: tuple[str, str]) -> None:
    whole, by_county = runs
    links = _rows(whole, "person_links", *LINK_COLUMNS)
    assert len(links) > 1500
    assert {row[4] for row in links} >= {"id_exact", "probabilistic"}
    assert _rows(by_county, "person_links", *LINK_COLUMNS) == links
    review = ("source_1", "source_row_1", "source_2", "source_row_2", "score")
    assert _rows(by_county, "match_review", *review) == _rows(whole, "match_review", *review)


def test_county_tasks_find_what_the_whole_batch_finds(runs: tuple[str, str]) -> None:
    whole, by_county = runs
    findings = _rows(whole, "finding_observations", *FINDING_COLUMNS)
    assert len({row[1] for row in findings}) >= 8  # many rules found something
    assert {row[4] for row in findings} == set(COUNTIES)
    assert _rows(by_county, "finding_observations", *FINDING_COLUMNS) == findings
    status = ("finding_id", "status", "first_seen_run", "last_seen_run")
    assert _rows(by_county, "findings", *status) == _rows(whole, "findings", *status)
    extract = ("person_id", "county_code")
    assert _rows(by_county, "census_extract", *extract) == _rows(whole, "census_extract", *extract)


def _planned(ingested: Path, tmp_path: Path) -> tuple[LinkPlan, LinkageSettings]:
    """The link's plan of the ingested batch (a copy of its warehouse) and the settings."""
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    shutil.copy(ingested, tmp_path / "warehouse.sqlite")
    settings = load_linkage_settings()
    with open_warehouse(url) as warehouse:
        records = load_records(warehouse, BATCH, settings)
    return plan_links(records, settings), settings


def test_each_county_task_scores_and_decides_its_own_rows(ingested: Path, tmp_path: Path) -> None:
    plan, settings = _planned(ingested, tmp_path)
    tasks = county_tasks(GROUPS)
    assert tasks[-1] == Counties(frozenset({"431224", "433130"}), others=True)
    parts = [score_pairs(plan, settings, task) for task in tasks]
    for task, part in zip(tasks, parts, strict=True):
        assert task is not None
        assert len(part.pair) > 0
        assert task.holds(plan.county[part.candidates.left]).all()
    # Every pair compared by one task; the decisive ones kept, each by one task.
    assert sum(part.compared for part in parts) == len(plan.left)
    kept = np.concatenate([part.pair for part in parts])
    assert len(np.unique(kept)) == len(kept) and 0 < len(kept) < len(plan.left)
    candidates = gather_scores(parts)
    units = decision_units(plan, candidates, settings)
    scopes = [decide_counties(plan, candidates, units, settings, task)[0] for task in tasks]
    assert (np.sum(scopes, axis=0) == 1).all()  # every row decided by one task
    for task, scope in zip(tasks, scopes, strict=True):
        assert task is not None
        # A task decides whole units: a row of another county only with a unit mostly its own.
        mostly_own = task.holds(plan.county[scope]).mean()
        assert mostly_own > 0.95, str(task)


def test_pairs_scored_in_chunks_and_worker_processes_are_scored_alike(
    ingested: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, settings = _planned(ingested, tmp_path)
    whole = score_pairs(plan, settings, workers=1)
    assert whole.compared == len(plan.left)
    monkeypatch.setattr(engine, "SCORE_CHUNK", len(plan.left) // 5 + 1)
    for workers in (1, 2, 3):
        for task in county_tasks(GROUPS):
            chunked = score_pairs(plan, settings, task, workers=workers)
            alone = score_pairs(plan, settings, task, workers=1)
            assert chunked.compared == alone.compared
            assert np.array_equal(chunked.pair, alone.pair)
        chunked = score_pairs(plan, settings, workers=workers)
        assert np.array_equal(chunked.pair, whole.pair)
        for name in ("left", "right", "weight", "levels", "vouched", "supported"):
            assert np.array_equal(getattr(chunked.candidates, name), getattr(whole.candidates, name)), name


def test_a_county_in_two_groups_is_refused() -> None:
    with pytest.raises(ValueError, match="named in two groups"):
        county_tasks([["431224"], ["431224", "433130"]])
    assert county_tasks(None) == [None]
