"""The DAGs run end to end in Airflow (``dag.test()``): each source's ingest DAG, then the
reconciliation with its release approved, on a full batch, a batch without the optional
hukou export, a batch without the mandatory registry export, and a batch with a critical
defect, each its own test."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
SOURCE_NAMES = ("dibao", "housing", "hukou", "insurance", "registry")


def _airflow_env(home: Path, data: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "LOOKBACK_DATA_DIR": str(data),
    }
    env.pop("LOOKBACK_WAREHOUSE_URL", None)
    return env


def _run_dags(
    tmp_path: Path, runs: list[dict[str, Any]], extra_env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Make the runs with ``dag.test()`` in one fresh Airflow home and one process (Airflow's
    output in ``tmp_path / "airflow.log"``)."""
    home, data = tmp_path / "airflow", tmp_path  # a DAG run's landing and run folders lie in the data folder
    env = _airflow_env(home, data) | (extra_env or {})
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, check=True, timeout=300)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(runs), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "run_dags.py"), str(DAGS), str(plan)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    results = [json.loads(line[len("RESULT ") :]) for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(results) == len(runs), result.stdout[-3000:] + result.stderr[-5000:]
    (tmp_path / "airflow.log").write_text(result.stdout + result.stderr, encoding="utf-8")
    return results


def _assert_data_docs_render(index: Path) -> None:
    """Opened in headless Chromium, with no network, the report's index lists every suite
    in the tables its scripts build (the names are in the page's script data before that)."""

    from lookback.validate.docs import external_references
    from tests.browser import rendered_dom

    site = index.parent
    assert external_references(site) == []  # nothing to fetch from the Internet
    dom = rendered_dom(index)
    suites = sorted(path.name.removesuffix(".json") for path in (ROOT / "expectations").glob("*.json"))
    for name in suites:
        assert re.search(rf'<tr class="clickable-row"[^>]*><td[^>]*>{re.escape(name)}</td>', dom), name
    assert f"Showing 1 to {len(suites)} of {len(suites)} rows" in dom


def _plant_enrolment_year(folder: Path, year: str) -> None:
    """Write ``year`` into 参保年度 of the first data row of the insurance export."""
    path = folder / "insurance_enrolment.csv"
    lines = path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    header = lines[0].rstrip("\r\n").split(",")
    cells = lines[1].rstrip("\r\n").split(",")
    cells[header.index("参保年度")] = year
    lines[1] = ",".join(cells) + "\r\n"
    path.write_text("".join(lines), encoding="utf-8-sig")


@dataclass(frozen=True)
class DagRuns:
    """The DAGs' runs of four batches: per batch, each run's state and task states."""

    runs: dict[str, dict[str, dict[str, Any]]]  # batch → DAG id → its run
    out: Path  # the runs' published folders, one per batch
    warehouse: str
    log: str  # Airflow's output of every run


@pytest.fixture(scope="module")
def dag_runs(tmp_path_factory: pytest.TempPathFactory, generated_batch: Path) -> DagRuns:
    """In one Airflow home and one process (Airflow starts once, the slow part), the ingest
    DAGs and the reconciliation (its approval marked given) of: a full batch, a batch without
    the optional hukou export, a batch without the mandatory registry export (the
    reconciliation started by hand all the same), and a batch with a critical defect. The
    module's tests stay on one xdist worker (``--dist loadscope``), so the runs are made once."""
    tmp_path = tmp_path_factory.mktemp("dag")
    landing = tmp_path / "landing"
    full = landing / "full"
    shutil.copytree(generated_batch, full)
    no_hukou = landing / "no-hukou"
    shutil.copytree(generated_batch, no_hukou)
    (no_hukou / "hukou_cancellations.csv").unlink()
    no_registry = landing / "no-registry"
    shutil.copytree(generated_batch, no_registry)
    (no_registry / "registry_members.csv").unlink()
    defective = landing / "defective"
    shutil.copytree(generated_batch, defective)
    _plant_enrolment_year(defective, "1999")  # before the campaign: a critical expectation
    warehouse = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    out = tmp_path / "out"

    def plan(folder: Path) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = [
            {"dag_id": f"ingest_{source}", "conf": {"landing": str(folder), "warehouse": warehouse}}
            for source in SOURCE_NAMES
        ]
        conf = {
            "batch": folder.name,
            "landing": str(folder),
            "warehouse": warehouse,
            "out": str(out / folder.name),
            "as_of": "2020-06-30",
            "optional_grace_minutes": 0,
        }
        return [*runs, {"dag_id": "reconcile", "conf": conf, "mark_success_pattern": "approve_release"}]

    runs = plan(full) + plan(no_hukou) + plan(no_registry) + plan(defective)
    results = _run_dags(tmp_path, runs)
    by_batch: dict[str, dict[str, dict[str, Any]]] = {}
    for spec, result in zip(runs, results, strict=True):
        by_batch.setdefault(Path(spec["conf"]["landing"]).name, {})[spec["dag_id"]] = result
    log = (tmp_path / "airflow.log").read_text(encoding="utf-8")
    return DagRuns(by_batch, out, warehouse, log)


@pytest.mark.integration
@pytest.mark.slow
def test_a_full_batch_runs_every_task_and_publishes_the_look_back(dag_runs: DagRuns) -> None:
    runs, out = dag_runs.runs["full"], dag_runs.out / "full"
    assert {dag_id: run["state"] for dag_id, run in runs.items()} == dict.fromkeys(
        [*(f"ingest_{source}" for source in SOURCE_NAMES), "reconcile"], "success"
    )
    tasks = runs["reconcile"]["tasks"]
    assert {state for value in tasks.values() for state in (value if isinstance(value, list) else [value])} == {
        "success"
    }
    assert len(tasks["link_county"]) >= 1 and len(tasks["reconcile_county"]) == len(tasks["link_county"])
    summary = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
    assert summary["batch_id"] == "full"
    assert summary["balanced"] is True
    assert summary["run_id"] == "full"  # the look-back run of the batch, whichever Airflow run made it
    assert (out / "quarantine.csv").read_bytes().startswith(b"\xef\xbb\xbf")

    engine = create_engine(dag_runs.warehouse)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "select source, delivered, accepted + skipped + quarantined from ingest_accounting where batch_id = :b"
            ),
            {"b": "full"},
        ).all()
        staged = connection.execute(text("select count(*) from staging_registry where batch_id = 'full'")).scalar_one()
        # Every run gave its batch back: by its last task, or, failed, by the DAG's failure callback.
        held = connection.execute(text("select batch_id, label from batch_holds")).all()
    engine.dispose()
    assert held == []
    assert sorted(row[0] for row in rows) == ["dibao", "housing", "hukou", "insurance", "registry"]
    assert all(row[1] == row[2] > 0 for row in rows)
    assert staged == summary["sources"][-1]["accepted"]
    assert summary["linked_rows"] == sum(item["accepted"] for item in summary["sources"])
    assert (out / "person_links.csv").is_file()
    assert summary["quality"]["validated"] is True and summary["quality"]["critical_failed"] == 0
    assert set(summary["quality"]["stages"]) == {"standardise", "link", "publish"}
    assert (out / summary["quality"]["data_docs"]).is_file()
    assert (out / "quality_results.csv").is_file()
    # The look-back ran: findings, roster, census extract and county workbooks published.
    look_back = summary["look_back"]
    assert look_back["run_id"] == "full" and sum(look_back["findings_per_rule"].values()) > 0
    assert look_back["lifecycle"]["open"] == sum(look_back["findings_per_rule"].values())
    for name in ("lookback_findings.csv", "visit_roster.csv", "manifest.json"):
        assert (out / name).is_file(), name
    assert list((out / "census_extract").glob("census_extract_*.csv"))
    assert list((out / "counties").glob("*.xlsx"))
    _assert_data_docs_render(out / "data_docs" / "index.html")
    # What the tasks said, in Airflow's log.
    assert "every delivered row is accounted for" in dag_runs.log
    assert "quality, stage link, batch full:" in dag_runs.log
    assert "quality, stage publish, batch full:" in dag_runs.log
    assert "findings per rule and county" in dag_runs.log
    assert "optional source hukou joined batch full" in dag_runs.log
    # Progress in the task log of the look-back: rules done of all, time left.
    assert re.search(r"rule [A-Z_]+: \d+ findings \([0-9.]+ s\); \d+ of \d+ rules, about \d+ s left", dag_runs.log)
    # The release was approved: the extract went out, and the manifest says so.
    assert summary["census_extract"] == {"released": True, "reason": None}
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["census_extract"]["released"] is True and manifest["census_extract"]["persons"] > 0


@pytest.mark.integration
@pytest.mark.slow
def test_a_batch_without_the_optional_hukou_export_skips_its_ingest_and_publishes(dag_runs: DagRuns) -> None:
    runs, out = dag_runs.runs["no-hukou"], dag_runs.out / "no-hukou"
    assert runs["ingest_hukou"]["tasks"] == {"ingest": "skipped", "ingest_announce": "skipped"}
    assert {dag_id: run["state"] for dag_id, run in runs.items() if dag_id != "ingest_hukou"} == dict.fromkeys(
        ["ingest_dibao", "ingest_housing", "ingest_insurance", "ingest_registry", "reconcile"], "success"
    )
    # The reconciliation did not wait (no grace) and says the optional source did not join.
    assert "optional source hukou had not been staged within 0:00:00 for batch no-hukou" in dag_runs.log
    summary = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
    assert summary["batch_id"] == "no-hukou" and summary["balanced"] is True
    delivered = {item["source"]: item["status"] for item in summary["sources"]}
    assert delivered == {
        "dibao": "ingested",
        "housing": "ingested",
        "hukou": "not_delivered",
        "insurance": "ingested",
        "registry": "ingested",
    }
    assert summary["quality"]["critical_failed"] == 0
    assert (out / "lookback_findings.csv").is_file()


@pytest.mark.integration
@pytest.mark.slow
def test_a_batch_without_the_mandatory_registry_export_fails_at_its_ingest(dag_runs: DagRuns) -> None:
    runs = dag_runs.runs["no-registry"]
    assert runs["ingest_registry"]["state"] == "failed"
    # At once, not up for retry; nothing announced.
    assert runs["ingest_registry"]["tasks"] == {"ingest": "failed", "ingest_announce": "upstream_failed"}
    assert "mandatory source registry" in dag_runs.log
    # Started by hand all the same, the reconciliation stops at its first task.
    reconcile = runs["reconcile"]
    assert reconcile["state"] == "failed"
    assert reconcile["tasks"]["ingest_complete"] == "failed"
    assert reconcile["tasks"]["validate_standardise"] == "upstream_failed"
    assert reconcile["tasks"]["publish"] == "upstream_failed"
    assert "batch no-registry: mandatory source(s) not staged: registry" in dag_runs.log
    assert not (dag_runs.out / "no-registry").exists()  # nothing published
    # The failure callback named the batch, the stage and the reason for ops.
    alerts = [json.loads(line) for line in (dag_runs.out.parent / "alerts" / "failures.jsonl").open()]
    failed = {(alert["dag_id"], alert["task_id"], alert["batch"], alert["stage"]) for alert in alerts}
    assert ("ingest_registry", "ingest", "no-registry", "ingest") in failed
    assert ("reconcile", "ingest_complete", "no-registry", "ingest") in failed


@pytest.mark.integration
@pytest.mark.slow
def test_a_critical_defect_stops_the_batch_at_the_standardise_gate(dag_runs: DagRuns) -> None:
    """The quality gate stops the defective batch before linking; nothing is published, and
    the report shows what failed."""
    run = dag_runs.runs["defective"]["reconcile"]
    assert run["state"] == "failed"
    assert run["tasks"]["validate_standardise"] == "failed"  # at once, not up for retry
    for task in ("link_prepare", "link_merge", "reconcile_finish", "approve_release", "publish"):
        assert run["tasks"][task] == "upstream_failed", task
    assert not (dag_runs.out / "defective").exists()
    assert (dag_runs.out / ".defective.work" / "data_docs" / "index.html").is_file()
    assert "standardise.insurance: expect_column_values_to_be_between(year) failed on 1 of" in dag_runs.log


@pytest.mark.integration
@pytest.mark.slow
def test_great_expectations_info_noise_stays_out_of_the_log(dag_runs: DagRuns) -> None:
    assert "Skipping registering function" not in dag_runs.log


@pytest.mark.integration
@pytest.mark.slow
def test_the_county_tasks_link_and_find_what_one_whole_batch_task_does(dag_runs: DagRuns, tmp_path: Path) -> None:
    """The reconciliation DAG's county fan-out (a task per county, in their own processes)
    against the stages run whole in one process on the same batch."""
    from datetime import date

    from tests import steps

    tasks = dag_runs.runs["full"]["reconcile"]["tasks"]
    assert len(tasks["link_county"]) >= 3  # the generated batch's counties, and rows of none
    whole = f"sqlite:///{tmp_path / 'whole.sqlite'}"
    landing = dag_runs.out.parent / "landing" / "full"
    steps.ingest(landing, warehouse=whole)
    steps.link("full", whole)
    steps.reconcile("full", date(2020, 6, 30), whole)
    queries = {
        "links": "select source, source_row, person_id, household_key, match_method, match_score "
        "from person_links where batch_id = 'full' order by source, source_row",
        "findings": "select finding_id, rule_code, person_id, county_code, evidence, source_rows "
        "from finding_observations where run_id = 'full' order by finding_id",
        "extract": "select person_id, county_code from census_extract where run_id = 'full' order by person_id",
    }
    found: dict[str, dict[str, list[tuple[object, ...]]]] = {}
    for name, url in (("fan-out", dag_runs.warehouse), ("whole", whole)):
        engine = create_engine(url)
        with engine.connect() as connection:
            found[name] = {key: [tuple(row) for row in connection.execute(text(sql))] for key, sql in queries.items()}
        engine.dispose()
    assert len(found["whole"]["links"]) > 500 and len(found["whole"]["findings"]) > 10
    for key in queries:
        assert found["fan-out"][key] == found["whole"][key], key
