"""The link split into tasks against the whole link, each step in a process of its own as
a worker runs it: wall and CPU seconds and peak memory (``/usr/bin/time -v``) per step, the
plan's and the parts' sizes, and whether person_links and match_review are the same.

    .venv/bin/lookback generate --out /tmp/fo/landing/b --persons 100000 --seed 2020 --noise hard \\
        --counties 431224,431230
    .venv/bin/lookback ingest --landing /tmp/fo/landing/b --warehouse sqlite:////tmp/fo/base.sqlite
    .venv/bin/python benchmarks/fanout_link.py --warehouse /tmp/fo/base.sqlite --batch b --folder /tmp/fo/bench

The ingested warehouse is copied twice (whole, apart) and never written.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lookback.run import open_warehouse

STEP = """
import json, sys
from lookback import pipeline
from lookback.run import Run, open_warehouse
step, batch, out, url, counties = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
run = Run.create(batch=batch, out=out, warehouse=url)
with open_warehouse(url) as warehouse:
    function = getattr(pipeline, step)
    result = function(run, warehouse, counties) if counties is not None else function(run, warehouse)
print(json.dumps(result.as_dict() if hasattr(result, "as_dict") else result, ensure_ascii=False))
"""


def timed(step: str, batch: str, out: Path, url: str, counties: list[str] | None = None) -> dict[str, Any]:
    """Run a pipeline step in a new process under ``/usr/bin/time -v``: its result and costs."""
    done = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-c", STEP, step, batch, str(out), url, json.dumps(counties)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{step} failed:\n{done.stderr[-3000:]}")

    def measured(label: str) -> str:
        found = re.search(rf"{re.escape(label)}: (.+)", done.stderr)
        return found.group(1).strip() if found else ""

    wall = measured("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")
    return {
        "step": step if counties is None else f"{step} {','.join(counties)}",
        "wall_s": sum(float(part) * 60**power for power, part in enumerate(reversed(wall))),
        "cpu_s": float(measured("User time (seconds)")) + float(measured("System time (seconds)")),
        "peak_mib": int(measured("Maximum resident set size (kbytes)")) / 1024,
        "result": json.loads(done.stdout.strip().splitlines()[-1]),
    }


def rows(url: str, table: str, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    with open_warehouse(url) as warehouse, warehouse.engine.connect() as connection:
        stored = warehouse.table(table)
        selected = [stored.c[name] for name in columns]
        return [tuple(row) for row in connection.execute(select(*selected).order_by(*selected))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", type=Path, required=True, help="an ingested SQLite warehouse (not written)")
    parser.add_argument("--batch", required=True)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--max-tasks", type=int, default=1024)
    args = parser.parse_args()
    shutil.rmtree(args.folder, ignore_errors=True)
    urls = {}
    for name in ("whole", "apart"):
        (args.folder / name).mkdir(parents=True)
        shutil.copy(args.warehouse, args.folder / name / "warehouse.sqlite")
        urls[name] = f"sqlite:///{args.folder / name / 'warehouse.sqlite'}"
    measures = [timed("link", args.batch, args.folder / "whole" / "run", urls["whole"])]
    out = args.folder / "apart" / "run"
    with open_warehouse(urls["apart"]) as warehouse:
        from lookback import pipeline
        from lookback.run import Run

        groups = pipeline.county_groups(Run.create(batch=args.batch, out=out), warehouse, args.max_tasks)
    measures.append(timed("link_prepare", args.batch, out, urls["apart"]))
    measures += [timed("link_county", args.batch, out, urls["apart"], group["counties"]) for group in groups]
    measures.append(timed("link_merge", args.batch, out, urls["apart"]))
    for measure in measures:
        print(
            f"{measure['step']:<32} wall {measure['wall_s']:7.1f} s  cpu {measure['cpu_s']:7.1f} s  "
            f"peak {measure['peak_mib']:8,.0f} MiB  {measure['result'] if 'rows' not in measure['result'] else ''}"
        )
    work = out.parent / f".{out.name}.work" / "link"
    for path in sorted(work.rglob("*.pickle")):
        print(f"{path.relative_to(work)}: {path.stat().st_size / 2**20:,.1f} MiB")
    links = ("source", "source_row", "person_id", "household_key", "match_method", "match_score", "identity_borrowed")
    review = ("source_1", "source_row_1", "source_2", "source_row_2", "score", "explanation")
    for table, columns in (("person_links", links), ("match_review", review)):
        whole, apart = rows(urls["whole"], table, columns), rows(urls["apart"], table, columns)
        print(f"{table}: {len(whole):,} rows whole, {'the same' if whole == apart else 'DIFFERENT'} apart")
    (args.folder / "measures.json").write_text(json.dumps(measures, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
