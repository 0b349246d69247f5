"""The scale curve: the whole pipeline, stage by stage, on hard batches of growing size.

    .venv/bin/python benchmarks/scale_curve.py --sizes 10000,100000,1000000 --folder /tmp/scale
    make bench-env && .venv/bin/python benchmarks/scale_curve.py --sizes 100000 --folder /tmp/scale --splink

For each size, a batch of that many registry persons (the other sources in proportion,
noise profile ``hard``, one county per 50,000 persons, about a real county's size; kept in
--folder and reused) is run through every stage of ``lookback run`` in a fresh process of
its own, on a SQLite warehouse begun afresh: ingest
(with standardisation), the three quality gates, link, reconcile and publish. Each stage's
wall time, CPU time (the better figure on a busy machine), rows per second (delivered rows)
and peak memory (each stage's own, and the whole run's on the line ``total``) are written to
``benchmarks/results/scale_curve.csv`` (one line per size and stage, with the machine
described) and printed as a table. A stage grows no faster than n log n when its time at
ten times the rows is at most twelve times its time; the table gives that ratio. The link's
parts follow, from its own log of each step, not counted in the total: ``link_read`` (the
staged rows read into linkage records), ``link_linkage`` (the records linked: each one's
cluster) and ``link_store`` (links, keys and review written).

With ``--splink``, splink's linkage of the same linkage records (as
``benchmarks/link_versus_splink.py`` configures it) is timed afterwards in a process of its
own, on the warehouse the run left: stage ``splink_link``, not counted in the total (for
sizes up to ``--splink-up-to``, 100,000 unless told: at a million persons splink held more
than 14 GiB and had not finished after 13 minutes on this machine). splink is timed from
the same linkage records to each one's cluster, what ``link_linkage`` times of lookback's. That
process runs in ``.venv-bench`` (``make bench-env``), the stages in the environment ``make
install`` makes: splink brings pyarrow, and with pyarrow installed pandas keeps strings in
Arrow arrays, so lookback's own stages would be measured on other code paths than those it
runs on.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.util
import itertools
import json
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "scale_curve.csv"
AS_OF = date(2020, 6, 30)
STAGES = (
    "ingest",
    "validate_standardise",
    "link",
    "validate_link",
    "reconcile",
    "validate_publish",
    "publish",
)
# The link's parts, from its own log of each step (not counted in the total): reading the
# staged rows into linkage records, linking them (what splink's linkage is timed for: the
# records in memory to each one's cluster) and storing the links, keys and review.
LINK_PARTS = ("link_read", "link_linkage", "link_store")
FIELDS = ("persons", "delivered_rows", "stage", "seconds", "cpu_seconds", "rows_per_second", "peak_rss_mib", "machine")


def machine() -> str:
    """The machine in a few words: cores, memory, processor, Python."""
    with Path("/proc/meminfo").open(encoding="utf-8") as handle:
        total_kib = int(handle.readline().split()[1])
    return (
        f"{os.cpu_count()} cores, {total_kib / 2**20:.0f} GiB, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )


class LinkLaps(logging.Handler):
    """The seconds of each step the link logs as it goes (its ``LAP_MESSAGE``): reading,
    linking, then the steps of storing."""

    def __init__(self) -> None:
        from lookback.link.stage import LAP_MESSAGE

        super().__init__(logging.INFO)
        self.message = LAP_MESSAGE
        self.parts = dict.fromkeys(LINK_PARTS, 0.0)

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg != self.message:
            return
        step, seconds = str(record.args[1]), float(record.args[2])  # type: ignore[index]
        part = "link_read" if step.startswith("read ") else "link_linkage" if step == "linked" else "link_store"
        self.parts[part] += seconds


def run_stages(landing: Path, folder: Path) -> dict[str, object]:
    """Every stage of the pipeline on one batch, timed (in this process: called in a child)."""
    from lookback.pipeline import Run, ingest_all, link, open_warehouse, publish, reconcile, validate

    laps = LinkLaps()
    link_log = logging.getLogger("lookback.link.stage")
    link_log.addHandler(laps)
    link_log.setLevel(logging.INFO)

    warehouse_file = folder / "warehouse.sqlite"
    for path in folder.glob("warehouse.sqlite*"):
        path.unlink()
    run = Run.create(landing=landing, out=folder / "run", as_of=AS_OF, warehouse=f"sqlite:///{warehouse_file}")
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    peaks: dict[str, float] = {}
    with open_warehouse(run.warehouse_url) as warehouse:
        steps = {
            "ingest": lambda: ingest_all(run, warehouse),
            "validate_standardise": lambda: validate(run, warehouse, "standardise"),
            "link": lambda: link(run, warehouse),
            "validate_link": lambda: validate(run, warehouse, "link"),
            "reconcile": lambda: reconcile(run, warehouse),
            "validate_publish": lambda: validate(run, warehouse, "publish"),
            "publish": lambda: publish(run, warehouse),
        }
        delivered = 0
        for stage in STAGES:
            _reset_peak()
            started, started_cpu = time.perf_counter(), _cpu_with_workers()
            with TreeMemory() as tree:
                result = steps[stage]()
            seconds[stage] = time.perf_counter() - started
            cpu[stage] = _cpu_with_workers() - started_cpu
            peaks[stage] = max(_stage_peak(), tree.peak_mib)
            print(
                f"{stage}: {seconds[stage]:.1f} s, {cpu[stage]:.1f} CPU s, peak {peaks[stage]:.0f} MiB", file=sys.stderr
            )
            if stage == "ingest":
                delivered = sum(item.delivered for item in result)
            if stage == "link":  # which rules' pairs grow faster than the rows
                pairs = ", ".join(f"{rule} {count:,}" for rule, count in result.candidate_pairs.items())
                print(f"  candidate pairs per blocking rule: {pairs}", file=sys.stderr)
    return {
        "delivered": delivered,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "stage_peaks": peaks,
        "link_parts": laps.parts,
    }


def _cpu_with_workers() -> float:
    """CPU seconds of this process and of its worker processes that have ended (the stages
    that use worker processes, ingest, the link's scoring and publish, wait for them)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class TreeMemory:
    """The largest memory this process and its worker processes held together, sampled every
    20 ms while a stage runs: this process's resident pages and each worker's private ones (a
    forked worker's pages still shared with this process are counted once, in this process)."""

    def __init__(self) -> None:
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            me, *workers = _tree(os.getpid())
            held = _rss_kib(me) + sum(_private_kib(pid) for pid in workers)
            self.peak_mib = max(self.peak_mib, held / 1024)


def _tree(pid: int) -> list[int]:
    """A process and its descendants (Linux: each thread's children in /proc)."""
    found, waiting = [], [pid]
    while waiting:
        current = waiting.pop()
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                waiting.extend(int(child) for child in children.read_text(encoding="ascii").split())
    return found


def _rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _private_kib(pid: int) -> int:
    """A process's pages no other process shares (Linux: smaps_rollup)."""
    with contextlib.suppress(OSError):
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="ascii").splitlines()
        return sum(int(line.split()[1]) for line in lines if line.startswith(("Private_Clean:", "Private_Dirty:")))
    return 0


def _reset_peak() -> None:
    """Start the process's peak memory afresh (Linux: ``5`` into clear_refs resets VmHWM)."""
    with contextlib.suppress(OSError):  # not Linux, or not allowed: a stage's peak is then the run's so far
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")


def _stage_peak() -> float:
    """The process's peak memory (MiB) since the last reset: VmHWM, else ru_maxrss (which
    the reset resets too: the run's peak is the largest stage's)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Registry persons per county: Hunan's 7.7 million in some 120 counties. A province grows
# by its counties, not by denser ones: namesakes meet as often as in a real county only when
# a batch's counties are about that size (a million persons in three counties gives each
# block ten times the pairs a real county's has), and a stage's growth per 10x is then the
# growth of its work, not of the counties' density. 50,000 divides 100,000 and a million
# alike: two counties and twenty of the same size (with 62,500, two of 50,000 and sixteen
# of 62,500 made the million's counties denser, and the link's candidate pairs grew 12.4x).
COUNTY_SIZE = 50_000


def counties_for(persons: int) -> tuple[str, ...]:
    """One county per COUNTY_SIZE persons (at least one): the generator's own counties while
    they suffice, then current counties (县) of the division table spread over it."""
    from lookback.generate.batch import DEFAULT_COUNTIES
    from lookback.paths import divisions_dir

    wanted = max(1, -(-persons // COUNTY_SIZE))
    if wanted <= len(DEFAULT_COUNTIES):
        return DEFAULT_COUNTIES[:wanted]
    with (divisions_dir() / "hunan.csv").open(encoding="utf-8") as handle:
        divisions = list(csv.DictReader(handle))
    counties = [
        row["code"]
        for row in divisions
        if row["level"] == "county" and row["status"] == "current" and row["name"].endswith("县")
    ]
    if len(counties) < wanted:
        raise ValueError(f"{persons:,} persons want {wanted} counties; the division table has {len(counties)}")
    return tuple(counties[:: len(counties) // wanted][:wanted])


def time_splink(folder: Path) -> dict[str, object]:
    """splink's linkage of the batch's linkage records, timed (in this process: called in a child)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from link_versus_splink import run_splink

    from lookback.link.config import load_linkage_settings
    from lookback.link.load import load_records
    from lookback.run import open_warehouse

    with open_warehouse(f"sqlite:///{folder / 'warehouse.sqlite'}") as warehouse:
        batch = warehouse_batch(warehouse)
        records = load_records(warehouse, batch, load_linkage_settings())
    started = time.perf_counter()
    run_splink(records)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": {"splink_link": seconds}, "peak_rss_mib": peak, "rows": len(records)}


def warehouse_batch(warehouse: Any) -> str:
    """The one batch the scale run ingested."""
    from sqlalchemy import select

    accounting = warehouse.table("ingest_accounting")
    with warehouse.engine.connect() as connection:
        return str(connection.execute(select(accounting.c.batch_id).distinct()).scalar_one())


BENCH_PYTHON = Path(__file__).resolve().parent.parent / ".venv-bench" / "bin" / "python"


def measure(persons: int, seed: int, folder: Path, splink: bool = False) -> dict[str, object]:
    """Generate the batch once, then run the stages in a child process; its timings."""
    counties = counties_for(persons)
    landing = folder / f"landing/p{persons}-{len(counties)}c"  # a kept batch is of these counties
    if not landing.is_dir():
        started = time.perf_counter()
        # In a process of its own: what the generator held (4.5 GiB at two million persons)
        # would stay with this process, out of the page cache the stages read the warehouse through.
        subprocess.run(
            [
                *(sys.executable, "-m", "lookback.cli", "--quiet", "generate", "--out", str(landing)),
                *("--persons", str(persons), "--seed", str(seed), "--noise", "hard", "--counties", ",".join(counties)),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"{persons:,} persons generated in {time.perf_counter() - started:.0f} s", flush=True)
    work = folder / f"work/p{persons}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    child = subprocess.run(
        [sys.executable, __file__, "--child", str(landing), str(work)],
        check=True,
        stdout=subprocess.PIPE,  # the timings; each stage's line as it ends goes to stderr
        text=True,
    )
    measured: dict[str, object] = json.loads(child.stdout.strip().splitlines()[-1])
    if splink:
        child = subprocess.run(
            [str(BENCH_PYTHON), __file__, "--splink-child", str(work)], check=True, capture_output=True, text=True
        )
        timed = json.loads(child.stdout.strip().splitlines()[-1])
        measured["splink"] = timed
    return measured


def result_row(
    persons: int, delivered: int, stage: str, spent: float, spent_cpu: float | None, peak: float | None
) -> dict[str, object]:
    """One line of the results: a stage's (or part's) seconds, rows per second and peak."""
    return {
        "persons": persons,
        "delivered_rows": delivered,
        "stage": stage,
        "seconds": f"{spent:.1f}",
        "cpu_seconds": "" if spent_cpu is None else f"{spent_cpu:.1f}",
        "rows_per_second": f"{delivered / spent:.0f}" if spent else "",
        "peak_rss_mib": "" if peak is None else f"{peak:.0f}",
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(run_stages(Path(sys.argv[2]), Path(sys.argv[3]))))
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--splink-child":
        print(json.dumps(time_splink(Path(sys.argv[2]))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="registry persons per batch, comma-separated")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--folder", type=Path, required=True, help="where the batches are kept between runs")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--splink", action="store_true", help="also time splink's linkage of the same rows")
    parser.add_argument(
        "--splink-up-to",
        type=int,
        default=100_000,
        help="with --splink, the largest size splink links (default 100,000: at a million persons "
        "it held up to 14 GiB and had not finished after 13 minutes)",
    )
    args = parser.parse_args()
    if args.splink and not BENCH_PYTHON.is_file():
        parser.error(f"--splink needs splink's environment {BENCH_PYTHON.parent.parent}: run `make bench-env` first")
    if importlib.util.find_spec("pyarrow") is not None:
        parser.error(
            f"{sys.executable} has pyarrow, which `make install` does not install: the stages would be measured "
            "on pandas' Arrow strings. Run `make install` (splink's environment is .venv-bench)"
        )
    described = machine()
    rows: list[dict[str, object]] = []
    for persons in (int(size) for size in args.sizes.split(",")):
        measured = measure(persons, args.seed, args.folder, args.splink and persons <= args.splink_up_to)
        delivered = int(measured["delivered"])  # type: ignore[call-overload]
        seconds: dict[str, float] = measured["seconds"]  # type: ignore[assignment]
        cpu: dict[str, float] = measured["cpu_seconds"]  # type: ignore[assignment]
        peaks: dict[str, float] = measured["stage_peaks"]  # type: ignore[assignment]
        parts: dict[str, float] = measured["link_parts"]  # type: ignore[assignment]
        splink: dict[str, Any] | None = measured.get("splink")  # type: ignore[assignment]
        timed: list[tuple[str, float, float | None, float | None]] = [
            *((stage, seconds[stage], cpu[stage], peaks[stage]) for stage in STAGES),
            ("total", sum(seconds.values()), sum(cpu.values()), max(peaks.values())),
            *((part, parts[part], None, None) for part in LINK_PARTS),
        ]
        if splink is not None:
            timed.append(("splink_link", splink["seconds"]["splink_link"], None, splink["peak_rss_mib"]))
        rows.extend(result_row(persons, delivered, *line) | {"machine": described} for line in timed)
        if splink is not None:
            spent = splink["seconds"]["splink_link"]
            print(
                f"  splink's linkage of the same {splink['rows']:,} rows: {spent:.0f} s; "
                f"lookback's, from the same records: {parts['link_linkage']:.0f} s",
                flush=True,
            )
        print(f"{persons:,} persons, {delivered:,} rows: {sum(seconds.values()):.0f} s", flush=True)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with args.results.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    sizes = sorted({int(str(row["persons"])) for row in rows})
    print(f"\n{'stage':<22}" + "".join(f"{size:>12,}" for size in sizes) + "   growth per 10x")
    for stage in (*STAGES, "total", *LINK_PARTS, "splink_link"):
        times = [
            float(str(row["seconds"]))
            for size in sizes
            for row in rows
            if row["persons"] == size and row["stage"] == stage
        ]
        growth = " ".join(f"{later / earlier:.1f}x" for earlier, later in itertools.pairwise(times) if earlier)
        print(f"{stage:<22}" + "".join(f"{value:>11.1f}s" for value in times) + f"   {growth}")
    print(f"results in {args.results} ({described})")


if __name__ == "__main__":
    main()
