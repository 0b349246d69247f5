"""Link and look-back split into tasks that run in processes of their own (a prepare step,
one task per group of counties, a last step): the same links, review pairs, keys, findings
and census extract as the whole batch at once, whatever the grouping, a retried county task
changing nothing, and a last step that refuses to run without every county's work."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from lookback import pipeline
from lookback.errors import FanOutError
from lookback.generate.batch import generate_batch
from lookback.link.fanout import PARTS_FOLDER, link_folder, part_name
from lookback.publish.run_files import work_folder
from lookback.run import Run, open_warehouse
from tests import steps

pytestmark = pytest.mark.integration

AS_OF = date(2020, 6, 30)
BATCH = "fanout"
COUNTIES = ("431230", "431224", "433130")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hard batch of three counties."""
    folder = tmp_path_factory.mktemp("fanout") / "landing" / BATCH
    generate_batch(folder, persons=400, seed=23, counties=COUNTIES, noise="hard")
    return folder


@pytest.fixture(scope="module")
def ingested(landing: Path) -> Path:
    """The batch ingested into a warehouse kept as a template."""
    template = landing.parents[1] / "ingested.sqlite"
    steps.ingest(landing, warehouse=f"sqlite:///{template}")
    return template


@dataclass(frozen=True)
class Copy:
    """A copy of the ingested warehouse and a run of its own."""

    url: str
    run: Run

    @property
    def params(self) -> dict[str, Any]:
        return {
            "batch": BATCH,
            "as_of": AS_OF.isoformat(),
            "out": str(self.run.out),
            "warehouse": self.url,
        }


def _copy(template: Path, folder: Path) -> Copy:
    folder.mkdir()
    shutil.copy(template, folder / "warehouse.sqlite")
    url = f"sqlite:///{folder / 'warehouse.sqlite'}"
    return Copy(url, Run.create(batch=BATCH, as_of=AS_OF, warehouse=url, out=folder / "run"))


def _in_a_process(step: str, copy: Copy, **extra: Any) -> Any:
    """Run one step in a fresh Python process, as a worker runs a task; its JSON result."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.fanout_step", step, json.dumps(copy.params | extra)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"{step} failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rows(url: str, table: str, *columns: str) -> list[tuple[Any, ...]]:
    with open_warehouse(url) as warehouse, warehouse.engine.connect() as connection:
        stored = warehouse.table(table)
        selected = [stored.c[name] for name in columns] or list(stored.c)
        return [tuple(row) for row in connection.execute(select(*selected).order_by(*selected))]


@dataclass(frozen=True)
class Runs:
    whole: str
    apart: str
    groups: list[dict[str, Any]]
    part_bytes: tuple[bytes, bytes]  # a county task's file, first run and retried
    retried_findings: tuple[int, int]
    county_results: list[dict[str, Any]]  # what each look-back county task returned


@pytest.fixture(scope="module")
def runs(ingested: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("runs")
    whole = _copy(ingested, root / "whole")
    with open_warehouse(whole.url) as warehouse:
        pipeline.link(whole.run, warehouse)
        pipeline.reconcile(whole.run, warehouse)

    apart = _copy(ingested, root / "apart")
    groups = _in_a_process("county_groups", apart)
    _in_a_process("link_prepare", apart)
    part = link_folder(work_folder(apart.run.out)) / PARTS_FOLDER / part_name(groups[0]["counties"])
    for group in groups:
        _in_a_process("link_county", apart, counties=group["counties"])
    first = part.read_bytes()
    _in_a_process("link_county", apart, counties=groups[0]["counties"])  # a retry
    retried = part.read_bytes()
    _in_a_process("link_merge", apart)
    # The plan and the parts hold identity numbers: gone once the links are stored.
    assert not list(link_folder(work_folder(apart.run.out)).rglob("*.pickle"))
    _in_a_process("reconcile_prepare", apart)
    found = [_in_a_process("reconcile_county", apart, counties=group["counties"]) for group in groups]
    again = _in_a_process("reconcile_county", apart, counties=groups[0]["counties"])  # a retry
    _in_a_process("reconcile_finish", apart)
    return Runs(whole.url, apart.url, groups, (first, retried), (found[0]["findings"], again["findings"]), found)


def test_one_group_per_county_with_the_rows_of_none(runs: Runs, ingested: Path, tmp_path: Path) -> None:
    assert [group["counties"][-1] for group in runs.groups] == sorted(COUNTIES)
    # Every row states its county here: "" (findings of no county) rides with one group.
    assert sum(group["counties"].count("") for group in runs.groups) == 1
    assert all(group["label"].startswith(group["counties"][-1] + " ") for group in runs.groups)
    assert "通道侗族自治县" in {group["label"].split(" ")[1] for group in runs.groups}
    accepted = len(_rows(runs.whole, "person_links", "source", "source_row"))
    assert sum(group["rows"] for group in runs.groups) == accepted
    copy = _copy(ingested, tmp_path / "groups")
    with open_warehouse(copy.url) as warehouse:
        two = pipeline.county_groups(copy.run, warehouse, max_tasks=2)
        one = pipeline.county_groups(copy.run, warehouse, max_tasks=1)
    assert len(two) == 2 and sorted(code for group in two for code in group["counties"]) == ["", *sorted(COUNTIES)]
    assert one == [{"counties": ["", *sorted(COUNTIES)], "label": one[0]["label"], "rows": accepted}]
    assert one[0]["label"].endswith("and 2 more")


LINK_COLUMNS = (
    "source",
    "source_row",
    "person_id",
    "household_key",
    "match_method",
    "match_score",
    "conflicting_identity",
    "identity_number",
    "identity_borrowed",
)
REVIEW_COLUMNS = ("source_1", "source_row_1", "source_2", "source_row_2", "score", "explanation")


def test_link_apart_links_as_the_whole_batch(runs: Runs) -> None:
    links = _rows(runs.whole, "person_links", *LINK_COLUMNS)
    assert len(links) > 1500
    assert {row[4] for row in links} >= {"id_exact", "probabilistic"}
    assert _rows(runs.apart, "person_links", *LINK_COLUMNS) == links
    # A batch this small puts few pairs or none to people; the 100,000-person comparison in
    # benchmarks/ holds hundreds.
    review = _rows(runs.whole, "match_review", *REVIEW_COLUMNS)
    assert _rows(runs.apart, "match_review", *REVIEW_COLUMNS) == review
    for crosswalk in ("person_crosswalk", "household_crosswalk"):
        assert _rows(runs.apart, crosswalk, "anchor", "key") == _rows(runs.whole, crosswalk, "anchor", "key")


def test_look_back_apart_finds_what_the_whole_batch_finds(runs: Runs) -> None:
    columns = ("finding_id", "rule_code", "person_id", "county_code", "evidence", "source_rows", "execution")
    observations = _rows(runs.whole, "finding_observations", *columns)
    assert len({row[1] for row in observations}) >= 8
    assert {row[3] for row in observations} == set(COUNTIES)
    assert _rows(runs.apart, "finding_observations", *columns) == observations
    status = ("finding_id", "status", "first_seen_run", "last_seen_run", "evidence")
    assert _rows(runs.apart, "findings", *status) == _rows(runs.whole, "findings", *status)
    extract = _rows(runs.whole, "census_extract")
    assert len(extract) > 300
    assert _rows(runs.apart, "census_extract") == extract
    roster = ("household_key", "visit_category", "open_findings", "finding_codes", "route_order")
    assert _rows(runs.apart, "visit_roster", *roster) == _rows(runs.whole, "visit_roster", *roster)


def test_the_rules_on_findings_run_once_after_every_county_task(runs: Runs) -> None:
    """RELAPSE_RISK reads the run's MED_NOT_INSURED and HOUSING_UNSAFE findings of a
    household's members, who may be another county's: no county task applies it, the last
    step does, over the whole batch, and finds what the whole batch finds."""
    assert all("RELAPSE_RISK" not in result["per_rule"] for result in runs.county_results)
    assert all("MED_NOT_INSURED" in result["per_rule"] for result in runs.county_results)
    relapse = [row for row in _rows(runs.apart, "finding_observations", "rule_code") if row[0] == "RELAPSE_RISK"]
    assert len(relapse) > 0
    assert relapse == [
        row for row in _rows(runs.whole, "finding_observations", "rule_code") if row[0] == "RELAPSE_RISK"
    ]


def test_a_county_task_retried_changes_nothing(runs: Runs) -> None:
    first, again = runs.part_bytes
    assert len(first) > 1000 and again == first
    found, found_again = runs.retried_findings
    assert found > 0 and found_again == found  # and the observations above are the whole batch's


def test_any_grouping_links_as_the_whole_batch(runs: Runs, ingested: Path, tmp_path: Path) -> None:
    copy = _copy(ingested, tmp_path / "two")
    with open_warehouse(copy.url) as warehouse:
        groups = pipeline.county_groups(copy.run, warehouse, max_tasks=2)
        planned = pipeline.link_prepare(copy.run, warehouse)
        scored = [pipeline.link_county(copy.run, warehouse, group["counties"]) for group in groups]
        pipeline.link_merge(copy.run, warehouse)
    assert len(groups) == 2
    # Each candidate pair is scored by one task: that of its second-pass row's county.
    assert all(part["pairs_scored"] > 0 for part in scored)
    assert sum(part["pairs_scored"] for part in scored) == planned["candidate_pairs"]
    assert _rows(copy.url, "person_links", *LINK_COLUMNS) == _rows(runs.whole, "person_links", *LINK_COLUMNS)
    assert _rows(copy.url, "match_review", *REVIEW_COLUMNS) == _rows(runs.whole, "match_review", *REVIEW_COLUMNS)


def test_the_last_steps_refuse_without_every_county(ingested: Path, tmp_path: Path) -> None:
    copy = _copy(ingested, tmp_path / "missing")
    with open_warehouse(copy.url) as warehouse:
        groups = pipeline.county_groups(copy.run, warehouse)
        with pytest.raises(FanOutError, match="no link plan"):
            pipeline.link_county(copy.run, warehouse, groups[0]["counties"])
        pipeline.link_prepare(copy.run, warehouse)
        for group in groups[1:]:
            pipeline.link_county(copy.run, warehouse, group["counties"])
        with pytest.raises(FanOutError, match=re.escape(f"no county task's part for {groups[0]['label']}")):
            pipeline.link_merge(copy.run, warehouse)
        pipeline.link_county(copy.run, warehouse, groups[0]["counties"])
        pipeline.link_merge(copy.run, warehouse)
        # Planned again, the parts of the earlier plan are gone: every county task runs again.
        pipeline.link_prepare(copy.run, warehouse)
        with pytest.raises(FanOutError, match=re.escape(f"no county task's part for {groups[0]['label']}, ")):
            pipeline.link_merge(copy.run, warehouse)

        with pytest.raises(FanOutError, match="has not been prepared"):
            pipeline.reconcile_county(copy.run, warehouse, groups[0]["counties"])
        pipeline.reconcile_prepare(copy.run, warehouse)
        for group in groups[:-1]:
            pipeline.reconcile_county(copy.run, warehouse, group["counties"])
        with pytest.raises(FanOutError, match=re.escape(f"no finished county task for {groups[-1]['label']}")):
            pipeline.reconcile_finish(copy.run, warehouse)
        # Prepared again (the run's next execution), the tasks done before count no more.
        pipeline.reconcile_prepare(copy.run, warehouse)
        pipeline.reconcile_county(copy.run, warehouse, groups[-1]["counties"])
        with pytest.raises(FanOutError, match=re.escape(f"no finished county task for {groups[0]['label']}")):
            pipeline.reconcile_finish(copy.run, warehouse)


def test_a_plan_of_another_run_or_stale_is_refused(ingested: Path, tmp_path: Path) -> None:
    copy = _copy(ingested, tmp_path / "stale")
    other = Run.create(batch=BATCH, run_id="another", as_of=AS_OF, warehouse=copy.url, out=copy.run.out)
    with open_warehouse(copy.url) as warehouse:
        counties = pipeline.county_groups(copy.run, warehouse)[0]["counties"]
        pipeline.link_prepare(copy.run, warehouse)
        with pytest.raises(FanOutError, match="is the link plan of batch fanout run fanout, not of batch fanout run"):
            pipeline.link_county(other, warehouse, counties)
        pipeline.link_county(copy.run, warehouse, counties)
        registry = warehouse.staging("registry")
        with warehouse.engine.begin() as connection:  # the registry's first row staged again, changed
            connection.execute(
                update(registry).where(registry.c.source_row == 1, registry.c.batch_id == BATCH).values(row_hash="0")
            )
        with pytest.raises(FanOutError, match="is stale: the staged rows of batch fanout"):
            pipeline.link_county(copy.run, warehouse, counties)
        with pytest.raises(FanOutError, match="is stale: the staged rows of batch fanout"):
            pipeline.link_merge(copy.run, warehouse)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    from tests.postgres import throwaway_database

    yield from throwaway_database("lookback_fanout")


@pytest.mark.postgres
def test_county_tasks_at_once_on_postgresql(runs: Runs, landing: Path, postgres_url: str, tmp_path: Path) -> None:
    """The county tasks of each stage started together, each in its own process and
    transaction, on the PostgreSQL warehouse: what the whole batch at once gives."""
    steps.ingest(landing, warehouse=postgres_url)
    copy = Copy(postgres_url, Run.create(batch=BATCH, as_of=AS_OF, warehouse=postgres_url, out=tmp_path / "run"))
    groups = _in_a_process("county_groups", copy)
    for first, county, last in (
        ("link_prepare", "link_county", "link_merge"),
        ("reconcile_prepare", "reconcile_county", "reconcile_finish"),
    ):
        _in_a_process(first, copy)
        started = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.fanout_step",
                    county,
                    json.dumps(copy.params | {"counties": group["counties"]}),
                ],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for group in groups
        ]
        for process in started:
            _, errors = process.communicate()
            assert process.returncode == 0, f"{county} failed:\n{errors[-3000:]}"
        _in_a_process(last, copy)
    assert _rows(postgres_url, "person_links", *LINK_COLUMNS) == _rows(runs.whole, "person_links", *LINK_COLUMNS)
    columns = ("finding_id", "rule_code", "person_id", "county_code", "evidence", "source_rows", "execution")
    found = _rows(runs.whole, "finding_observations", *columns)
    assert _rows(postgres_url, "finding_observations", *columns) == found
    extract = ("person_id", "household_key", "county_code", "name")
    assert _rows(postgres_url, "census_extract", *extract) == _rows(runs.whole, "census_extract", *extract)
