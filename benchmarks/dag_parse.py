"""How long Airflow takes to parse ``dags/`` (the DAG processor does it every few seconds).

    .venv/bin/python benchmarks/dag_parse.py --repeat 5

Each repeat is a fresh process (nothing cached from an earlier parse) that imports Airflow,
then loads the folder into a ``DagBag`` as the DAG processor does; it prints, per file, the
load time Airflow itself records (``dagbag_stats``) and the DAGs and tasks found, and the
median over the repeats. Airflow's own import is timed apart: it is not the DAG files' cost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys, time
started = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
imported = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
parsed = time.perf_counter()
print(json.dumps({
    "airflow_import": imported - started,
    "parse": parsed - imported,
    "files": {str(stat.file): {"seconds": stat.duration.total_seconds(), "dags": stat.dag_num, "tasks": stat.task_num}
              for stat in bag.dagbag_stats},
    "errors": {str(key): str(value) for key, value in bag.import_errors.items()},
}))
"""


def parse_once(dags: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="lookback-parse-") as home:
        environment = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        environment |= {
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "PYTHONPATH": str(ROOT / "plugins"),
        }
        result = subprocess.run(
            [sys.executable, "-c", PROBE, str(dags)], env=environment, capture_output=True, text=True, check=True
        )
    measured: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dags", type=Path, default=ROOT / "dags")
    args = parser.parse_args()
    runs = [parse_once(args.dags) for _ in range(args.repeat)]
    if runs[0]["errors"]:
        raise SystemExit(f"import errors: {runs[0]['errors']}")
    files: dict[str, dict[str, float]] = runs[0]["files"]  # type: ignore[assignment]
    for name, found in sorted(files.items()):
        times = [run["files"][name]["seconds"] for run in runs]  # type: ignore[index]
        print(
            f"{name:32} {found['dags']:>2.0f} DAGs {found['tasks']:>3.0f} tasks  "
            f"median {statistics.median(times) * 1000:6.0f} ms  "
            f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})"
        )
    parse = [float(run["parse"]) for run in runs]  # type: ignore[arg-type]
    imported = [float(run["airflow_import"]) for run in runs]  # type: ignore[arg-type]
    print(f"whole folder: median {statistics.median(parse) * 1000:.0f} ms over {len(runs)} fresh processes")
    print(f"Airflow's own import (not the DAG files'): median {statistics.median(imported):.1f} s")


if __name__ == "__main__":
    main()
