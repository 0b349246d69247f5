"""The ops view and the REST API under load: many clients at once on loopback.

    .venv/bin/python benchmarks/ops_view_load.py --clients 50 --seconds 30

Starts the Airflow stack of the tests (scheduler, DAG processor, triggerer, API server on a
PostgreSQL metadata database of its own, a PostgreSQL warehouse), runs one batch through
``lookback run`` into its warehouse so that the ops view has a run to show, then lets
``--clients`` threads, each logged in as ``ops`` (viewer), request in turn the ops view's
JSON summary, its page, the run's page and the REST API's list of DAG runs, as fast as the
answers come, for ``--seconds`` (at most ``--max-requests`` in all). Prints the requests
answered, per second, the latency's p50, p95, p99 and maximum per route and overall, and
every status that is not 200; appends a line to ``benchmarks/results/ops_view_load.csv``.
Needs the PostgreSQL server of the tests (``LOOKBACK_TEST_POSTGRES_URL``).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.airflow_stack import AirflowClient, running_stack  # noqa: E402
from tests.postgres import throwaway_database  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "ops_view_load.csv"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def load(
    client: AirflowClient, routes: list[str], seconds: float, max_requests: int, clients: int
) -> dict[str, object]:
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: Counter[tuple[str, int]] = Counter()
    lock = threading.Lock()
    budget = [max_requests]
    stop_at = time.monotonic() + seconds
    start = threading.Barrier(clients)

    def one_client(number: int) -> None:
        start.wait()
        turn = number
        while time.monotonic() < stop_at:
            with lock:
                if budget[0] <= 0:
                    return
                budget[0] -= 1
            route = routes[turn % len(routes)]
            turn += 1
            began = time.perf_counter()
            status = client.request("GET", route).status
            took = time.perf_counter() - began
            with lock:
                latencies[route].append(took)
                statuses[(route, status)] += 1

    began = time.perf_counter()
    threads = [threading.Thread(target=one_client, args=(number,)) for number in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    every = [value for values in latencies.values() for value in values]
    return {"latencies": latencies, "statuses": statuses, "elapsed": elapsed, "all": every}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--persons", type=int, default=300, help="registry persons of the batch shown")
    args = parser.parse_args()

    from lookback.generate.batch import generate_batch

    with tempfile.TemporaryDirectory(prefix="ops-view-load-") as scratch:
        folder = Path(scratch)
        database, warehouse = throwaway_database("lookback_load_airflow"), throwaway_database("lookback_load_wh")
        database_url, warehouse_url = next(database), next(warehouse)
        try:
            with running_stack(folder / "stack", database_url, warehouse_url=warehouse_url) as stack:
                batch = folder / "landing" / "load-batch"
                generate_batch(batch, persons=args.persons, seed=5)
                environment = {**os.environ, "LOOKBACK_DATA_DIR": str(stack.data_dir)}
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "lookback.cli",
                        "-q",
                        "run",
                        "--landing",
                        str(batch),
                        "--as-of",
                        "2020-06-30",
                        "--warehouse",
                        warehouse_url,
                        "--out",
                        str(stack.data_dir / "runs" / batch.name),
                    ],
                    check=True,
                    env=environment,
                    stdout=subprocess.DEVNULL,
                )
                client = stack.client("ops")
                routes = [
                    "/lookback/api/summary",
                    "/lookback/",
                    f"/lookback/runs/{batch.name}",
                    "/api/v2/dags/~/dagRuns?limit=20",
                ]
                for route in routes:  # each answers before the clock starts
                    client.request("GET", route).expect(200)
                result = load(client, routes, args.seconds, args.max_requests, args.clients)
        finally:
            database.close()
            warehouse.close()

    latencies: dict[str, list[float]] = result["latencies"]  # type: ignore[assignment]
    statuses: Counter[tuple[str, int]] = result["statuses"]  # type: ignore[assignment]
    every: list[float] = result["all"]  # type: ignore[assignment]
    elapsed = float(result["elapsed"])  # type: ignore[arg-type]
    print(f"{args.clients} clients, {elapsed:.1f} s: {len(every):,} requests, {len(every) / elapsed:.1f}/s")
    print(f"{'route':<36} {'requests':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for route, values in [*sorted(latencies.items()), ("all", every)]:
        p50, p95, p99 = (percentile(values, share) * 1000 for share in (0.5, 0.95, 0.99))
        print(f"{route:<36} {len(values):>9,} {p50:>8.0f} {p95:>8.0f} {p99:>8.0f} {max(values) * 1000:>8.0f}")
    failed = {key: count for key, count in statuses.items() if key[1] != 200}
    print("statuses other than 200:", failed or "none")
    new = not RESULTS.exists()
    with RESULTS.open("a", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        if new:
            writer.writerow(
                ["at", "clients", "seconds", "requests", "per_second", "p50_ms", "p95_ms", "p99_ms", "errors"]
            )
        writer.writerow(
            [
                datetime.now(UTC).isoformat(timespec="seconds"),
                args.clients,
                f"{elapsed:.1f}",
                len(every),
                f"{len(every) / elapsed:.1f}",
                f"{percentile(every, 0.5) * 1000:.0f}",
                f"{percentile(every, 0.95) * 1000:.0f}",
                f"{percentile(every, 0.99) * 1000:.0f}",
                sum(failed.values()),
            ]
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
