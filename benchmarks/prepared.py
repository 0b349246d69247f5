"""A generated and ingested batch kept in a folder, shared by the linkage benchmarks, so that
repeated runs time the linkage and not the setup."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lookback.generate.batch import generate_batch
from lookback.pipeline import Run, ingest_all, open_warehouse

BATCH = "bench"


def add_batch_arguments(parser: argparse.ArgumentParser, persons: int) -> None:
    parser.add_argument("--persons", type=int, default=persons)
    parser.add_argument("--noise", default="hard")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--folder", type=Path, required=True, help="where the batch is kept between runs")


def prepared_batch(args: argparse.Namespace) -> tuple[Path, str]:
    """The landing folder and warehouse URL of the batch, generating and ingesting it once."""
    landing = args.folder / "landing" / BATCH
    url = f"sqlite:///{args.folder / 'warehouse.sqlite'}"
    if not (args.folder / "warehouse.sqlite").exists():
        started = time.perf_counter()
        generate_batch(landing, persons=args.persons, seed=args.seed, noise=args.noise)
        print(f"generated in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        with open_warehouse(url) as warehouse:
            ingest_all(Run.create(landing=landing, warehouse=url), warehouse)
        print(f"ingested in {time.perf_counter() - started:.0f} s")
    return landing, url
