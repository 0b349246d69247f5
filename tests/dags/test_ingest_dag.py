"""The ingest DAG: it parses cheaply, has the expected shape, and runs end to end in Airflow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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
        f"spec = importlib.util.spec_from_file_location('dag', {str(DAGS / 'lookback_ingest.py')!r})\n"
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
    dag = bag.dags["lookback_ingest"]
    sources = ["dibao", "housing", "hukou", "insurance", "registry"]
    gates = ["validate_standardise", "validate_link", "validate_publish"]
    assert sorted(dag.task_ids) == sorted([f"ingest_{s}" for s in sources] + ["link", "look_back", "publish", *gates])
    assert dag.get_task("validate_standardise").upstream_task_ids == {f"ingest_{s}" for s in sources}
    assert dag.get_task("link").upstream_task_ids == {"validate_standardise"}
    assert dag.get_task("validate_link").upstream_task_ids == {"link"}
    assert dag.get_task("look_back").upstream_task_ids == {"validate_link"}
    assert dag.get_task("validate_publish").upstream_task_ids == {"look_back"}
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

    from lookback.quality.docs import external_references
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


@pytest.mark.integration
@pytest.mark.slow
def test_ingest_dag_end_to_end(tmp_path: Path, generated_batch: Path) -> None:
    """Four runs in Airflow: a full batch, a batch without the optional hukou export, a
    batch without the mandatory registry export, and a batch with a critical defect."""
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

    full_run, no_hukou_run, no_registry_run, defective_run = _run_dag(
        tmp_path, [conf(full), conf(no_hukou), conf(no_registry), conf(defective)]
    )

    assert full_run["state"] == "success"
    assert set(full_run["tasks"].values()) == {"success"}
    summary = json.loads((out / "full" / "run_summary.json").read_text(encoding="utf-8"))
    assert summary["batch_id"] == "full"
    assert summary["balanced"] is True
    assert summary["run_id"] == "full"  # the look-back run of the batch, whichever Airflow run made it
    assert (out / "full" / "quarantine.csv").read_bytes().startswith(b"\xef\xbb\xbf")

    engine = create_engine(warehouse)
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
    assert (out / "full" / "person_links.csv").is_file()
    assert summary["quality"]["validated"] is True and summary["quality"]["critical_failed"] == 0
    assert set(summary["quality"]["stages"]) == {"standardise", "link", "publish"}
    assert (out / "full" / summary["quality"]["data_docs"]).is_file()
    assert (out / "full" / "quality_results.csv").is_file()
    # The look-back ran: findings, roster, census extract and county workbooks published.
    look_back = summary["look_back"]
    assert look_back["run_id"] == "full" and sum(look_back["findings_per_rule"].values()) > 0
    assert look_back["lifecycle"]["open"] == sum(look_back["findings_per_rule"].values())
    for name in ("lookback_findings.csv", "visit_roster.csv", "manifest.json"):
        assert (out / "full" / name).is_file(), name
    assert list((out / "full" / "census_extract").glob("census_extract_*.csv"))
    assert list((out / "full" / "counties").glob("*.xlsx"))
    _assert_data_docs_render(out / "full" / "data_docs" / "index.html")

    assert no_hukou_run["state"] == "success"
    assert no_hukou_run["tasks"]["ingest_hukou"] == "skipped"
    assert no_hukou_run["tasks"]["publish"] == "success"

    assert no_registry_run["state"] == "failed"
    assert no_registry_run["tasks"]["ingest_registry"] == "failed"  # at once, not up for retry
    assert no_registry_run["tasks"]["ingest_insurance"] == "success"
    assert no_registry_run["tasks"]["validate_standardise"] == "upstream_failed"
    assert no_registry_run["tasks"]["link"] == "upstream_failed"
    assert no_registry_run["tasks"]["publish"] == "upstream_failed"

    # The quality gate stops the defective batch before linking; nothing is published, and
    # the report shows what failed.
    assert defective_run["state"] == "failed"
    assert defective_run["tasks"]["validate_standardise"] == "failed"
    assert defective_run["tasks"]["link"] == "upstream_failed"
    assert defective_run["tasks"]["publish"] == "upstream_failed"
    assert defective_run["tasks"]["look_back"] == "upstream_failed"
    assert not (out / "defective").exists()
    assert (out / ".defective.work" / "data_docs" / "index.html").is_file()

    log = (tmp_path / "airflow.log").read_text(encoding="utf-8")
    assert "mandatory source registry" in log
    assert "every delivered row is accounted for" in log
    assert "standardise.insurance: expect_column_values_to_be_between(year) failed on 1 of" in log
    assert "quality, stage link, batch full:" in log
    assert "quality, stage publish, batch full:" in log
    assert "findings per rule and county" in log
    assert "Skipping registering function" not in log  # Great Expectations' INFO noise stays out
