"""A yardstick for linkage: link rows on the normalised identity number alone, then score it.

    .venv/bin/python benchmarks/baseline_id_exact.py --persons 20000 --noise hard

Generates a batch, ingests it, gives every accepted row whose subject's identity number
is valid that number as its person, every other row a person of its own, writes
``person_links.csv`` and scores it with ``lookback evaluate``. What a real linker must beat,
above all on the hard pairs.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from lookback.evaluate import evaluate_run
from lookback.generate.batch import generate_batch
from lookback.pipeline import Run, ingest_all, open_warehouse
from lookback.report import format_evaluation
from lookback.run import connect_warehouse


def write_id_exact_links(warehouse_url: str, batch_id: str, out: Path) -> int:
    warehouse = connect_warehouse(warehouse_url)
    out.mkdir(parents=True, exist_ok=True)
    rows = 0
    try:
        with (out / "person_links.csv").open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["person_id", "source", "source_row", "household_key", "match_method", "match_score"])
            for source, spec in sorted(warehouse.specs.items()):
                table = warehouse.staging(source)
                number = table.c[spec.subject_identity_number]
                query = select(table.c.source_row, number).where(table.c.batch_id == batch_id)
                with warehouse.engine.connect() as connection:
                    for source_row, identity in connection.execute(query):
                        person = identity or f"{source}:{source_row}"
                        writer.writerow([person, source, source_row, "", "id_exact" if identity else "unmatched", ""])
                        rows += 1
    finally:
        warehouse.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--noise", default="hard")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lookback-bench-") as folder:
        root = Path(folder)
        landing = root / "landing" / "bench"
        summary = generate_batch(landing, persons=args.persons, seed=args.seed, noise=args.noise)
        warehouse = f"sqlite:///{root / 'warehouse.sqlite'}"
        with open_warehouse(warehouse) as store:
            ingest_all(Run.create(landing=landing, warehouse=warehouse), store)
        started = time.perf_counter()
        rows = write_id_exact_links(warehouse, "bench", root / "run")
        linked = time.perf_counter() - started
        print(f"{args.noise}: {summary.registry_persons:,} registry persons, {rows:,} rows linked in {linked:.1f} s")
        print(format_evaluation(evaluate_run(summary.truth, root / "run")))


if __name__ == "__main__":
    main()
