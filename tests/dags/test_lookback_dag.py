"""The ingest DAG: it parses cheaply, has the expected shape, and runs end to end in Airflow:
a full batch, a batch without the optional hukou export, a batch without the mandatory
registry export, and a batch with a critical defect, each its own test."""

from __future__ import annotations

import json
import os
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


def test_dag_file_parses_without_heavy_imports(tmp_path: Path) -> None:
    """Parsing the DAG (as the DAG processor does, often) must not load readers, pandas or GX."""
    probe = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('dag', {str(DAGS / 'lookback.py')!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "heavy = sorted(m for m in ('openpyxl', 'opencc', 'pypinyin', 'great_expectations', 'lookback.ingest')"
        " if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    env = _airflow_env(tmp_path / "airflow", tmp_path / "data")
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr


def test_dag_shape() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    dag = bag.dags["lookback"]
    sources = ["dibao", "housing", "hukou", "insurance", "registry"]
    gates = ["validate_standardise", "validate_link", "validate_publish"]
    assert sorted(dag.task_ids) == sorted([f"ingest_{s}" for s in sources] + ["link", "reconcile", "publish", *gates])
    assert dag.get_task("validate_standardise").upstream_task_ids == {f"ingest_{s}" for s in sources}
    assert dag.get_task("link").upstream_task_ids == {"validate_standardise"}
    assert dag.get_task("validate_link").upstream_task_ids == {"link"}
    assert dag.get_task("reconcile").upstream_task_ids == {"validate_link"}
    assert dag.get_task("validate_publish").upstream_task_ids == {"reconcile"}
    assert dag.get_task("publish").upstream_task_ids == {"validate_publish"}
    assert set(dag.params.keys()) == {"landing", "batch", "warehouse", "out", "as_of", "run_id"}


def _run_dag(tmp_path: Path, confs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    home, data = tmp_path / "airflow", tmp_path / "data"
    env = _airflow_env(home, data)
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, check=True, timeout=300)
    conf_files = []
    for index, conf in enumerate(confs):
        path = tmp_path / f"conf{index}.json"
        path.write_text(json.dumps(conf), encoding="utf-8")
        conf_files.append(str(path))
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("run_dag.py")), str(DAGS), *conf_files],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    results = [json.loads(line[len("RESULT ") :]) for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(results) == len(confs), result.stdout[-3000:] + result.stderr[-5000:]
    (tmp_path / "airflow.log").write_text(result.stdout + result.stderr, encoding="utf-8")
    return results


def _assert_data_docs_render(index: Path) -> None:
    """Opened in headless Chromium, with no network, the report's index lists every suite
    in the tables its scripts build (the names are in the page's script data before that)."""
    import re

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
    """The four runs of the DAG, by landing folder name, with what they left behind."""

    runs: dict[str, dict[str, Any]]  # run state and every task's state
    out: Path  # the runs' published folders, one per batch
    warehouse: str
    log: str  # Airflow's output of the four runs


@pytest.fixture(scope="module")
def dag_runs(tmp_path_factory: pytest.TempPathFactory, generated_batch: Path) -> DagRuns:
    """Four runs in one Airflow home and one process (Airflow starts once, the slow part):
    a full batch, a batch without the optional hukou export, a batch without the mandatory
    registry export, and a batch with a critical defect. The module's tests stay on one
    xdist worker (``--dist loadscope``), so the runs are made once."""
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

    def conf(folder: Path) -> dict[str, Any]:
        return {"landing": str(folder), "warehouse": warehouse, "out": str(out / folder.name), "as_of": "2020-06-30"}

    folders = [full, no_hukou, no_registry, defective]
    results = _run_dag(tmp_path, [conf(folder) for folder in folders])
    log = (tmp_path / "airflow.log").read_text(encoding="utf-8")
    return DagRuns({folder.name: result for folder, result in zip(folders, results, strict=True)}, out, warehouse, log)


@pytest.mark.integration
@pytest.mark.slow
def test_a_full_batch_runs_every_task_and_publishes_the_look_back(dag_runs: DagRuns) -> None:
    run, out = dag_runs.runs["full"], dag_runs.out / "full"
    assert run["state"] == "success"
    assert set(run["tasks"].values()) == {"success"}
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
    engine.dispose()
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


@pytest.mark.integration
@pytest.mark.slow
def test_a_batch_without_the_optional_hukou_export_skips_its_ingest_and_publishes(dag_runs: DagRuns) -> None:
    run, out = dag_runs.runs["no-hukou"], dag_runs.out / "no-hukou"
    assert run["state"] == "success"
    assert run["tasks"]["ingest_hukou"] == "skipped"
    assert {task: state for task, state in run["tasks"].items() if state != "success"} == {"ingest_hukou": "skipped"}
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
    run = dag_runs.runs["no-registry"]
    assert run["state"] == "failed"
    assert run["tasks"]["ingest_registry"] == "failed"  # at once, not up for retry
    assert run["tasks"]["ingest_insurance"] == "success"
    assert run["tasks"]["validate_standardise"] == "upstream_failed"
    assert run["tasks"]["link"] == "upstream_failed"
    assert run["tasks"]["publish"] == "upstream_failed"
    assert not (dag_runs.out / "no-registry").exists()  # nothing published
    assert "mandatory source registry" in dag_runs.log


@pytest.mark.integration
@pytest.mark.slow
def test_a_critical_defect_stops_the_batch_at_the_standardise_gate(dag_runs: DagRuns) -> None:
    """The quality gate stops the defective batch before linking; nothing is published, and
    the report shows what failed."""
    run = dag_runs.runs["defective"]
    assert run["state"] == "failed"
    assert run["tasks"]["validate_standardise"] == "failed"
    assert run["tasks"]["link"] == "upstream_failed"
    assert run["tasks"]["publish"] == "upstream_failed"
    assert run["tasks"]["reconcile"] == "upstream_failed"
    assert not (dag_runs.out / "defective").exists()
    assert (dag_runs.out / ".defective.work" / "data_docs" / "index.html").is_file()
    assert "standardise.insurance: expect_column_values_to_be_between(year) failed on 1 of" in dag_runs.log


@pytest.mark.integration
@pytest.mark.slow
def test_great_expectations_info_noise_stays_out_of_the_log(dag_runs: DagRuns) -> None:
    assert "Skipping registering function" not in dag_runs.log
