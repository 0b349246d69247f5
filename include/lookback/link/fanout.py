"""The link split into tasks that run in processes of their own (the orchestration maps the
county task over workers), and give what :func:`~lookback.link.stage.link_batch` gives.

1. :func:`prepare_links`: what the whole batch shares (:func:`~lookback.link.engine.plan_links`:
   the identity-number pass, the match weights and name frequencies, the candidate pairs
   of every blocking rule) computed once and saved in the run's work folder (``link/plan.pickle``),
   with a fingerprint of the staged rows and the settings it was made from.
2. :func:`link_counties`: one group of counties compares and weighs the candidate pairs of
   its own rows (:func:`~lookback.link.engine.score_pairs`; each pair is scored by the task
   of its second-pass row's county, once) and saves them (``link/parts/``); run again, it
   writes the same file.
3. :func:`merge_links`: every part gathered, the batch's decisions taken
   (:func:`~lookback.link.engine.decision_units`, :func:`~lookback.link.engine.decide_counties`),
   people's decisions applied, keys given, ``person_links`` and ``match_review`` written as
   the whole batch's link writes them; then the plan and the parts are removed: they hold
   the batch's identity numbers, which only the warehouse and the census extract keep.

The decisions are not split: the rows whose decisions depend on one another (a unit: one
household, one person of the first pass, the two rows of every pair strong enough to
matter) join up through the strong pairs into a unit of a large share of the batch (at
100,000 persons in two counties, one unit of 41 % of the rows, half in each county), so
that a county deciding alone would have to score nearly every pair of the batch first.

The work folder must be one the three steps all reach (one machine, or shared storage).
While they exist, the link's files are their owner's alone (folder 0700, files 0600).
The files are pickles (no pyarrow in the environment; the plan holds frames of Python
strings and arrays, which pickle writes and reads fastest): they are the run's own
intermediate files, read only by these steps, never anything delivered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import pickle
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from sqlalchemy import select

from lookback.counties import Counties, county_label
from lookback.errors import FanOutError
from lookback.link.config import LinkageSettings, load_linkage_settings
from lookback.link.decide import Candidates
from lookback.link.engine import (
    LinkPlan,
    Scored,
    decide_counties,
    decision_units,
    gather_scores,
    merge_decisions,
    plan_links,
    score_pairs,
)
from lookback.link.load import load_records
from lookback.link.pairs import PairTable
from lookback.link.stage import MERGE_STEPS, Clock, LinkSummary, record_decisions, store_links
from lookback.warehouse import Warehouse

log = logging.getLogger(__name__)

PLAN_FILE: Final = "plan.pickle"
PARTS_FOLDER: Final = "parts"


def link_folder(work: Path) -> Path:
    """Where the link's tasks keep their files in a run's work folder."""
    return work / "link"


@dataclass(frozen=True)
class SavedPlan:
    """The plan as saved: whose it is and what it was made from, and the plan without its
    table's caches."""

    batch_id: str
    run_id: str
    fingerprint: str
    plan: LinkPlan


@dataclass(frozen=True)
class SavedPart:
    """A county task's decisive scored pairs (their positions among the plan's pairs; the
    rows of each pair are the plan's), how many pairs it compared, and the plan they were
    scored with."""

    batch_id: str
    run_id: str
    fingerprint: str
    counties: tuple[str, ...]
    pair: np.ndarray
    weight: np.ndarray
    levels: np.ndarray
    vouched: np.ndarray | None
    supported: np.ndarray | None
    compared: int

    def scored(self, plan: LinkPlan) -> Scored:
        left, right = plan.left[self.pair].astype(np.int64), plan.right[self.pair].astype(np.int64)
        candidates = Candidates(left, right, self.weight, self.levels, vouched=self.vouched, supported=self.supported)
        return Scored(self.pair, candidates, self.compared)


def _canonical(value: Any) -> Any:
    """Settings as plain JSON values in one order whatever the process (sets sorted)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _canonical(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return sorted([str(key), _canonical(item)] for key, item in value.items())
    if isinstance(value, set | frozenset):
        return sorted((_canonical(item) for item in value), key=repr)
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def staged_fingerprint(warehouse: Warehouse, batch_id: str, settings: LinkageSettings) -> str:
    """A digest of what the link reads: every accepted row's content hash, source by
    source, and the linkage settings. Rows staged again, added or removed change it."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(_canonical(settings), ensure_ascii=False).encode())
    with warehouse.engine.connect() as connection:
        for source in sorted(settings.sources):
            if source not in warehouse.specs:
                continue
            table = warehouse.staging(source)
            rows = Warehouse.plain_rows(
                connection,
                select(table.c.source_row, table.c.row_hash)
                .where(table.c.batch_id == batch_id)
                .order_by(table.c.source_row),
            )
            digest.update(f"\n{source}\n".encode())
            digest.update("\n".join(f"{row}:{row_hash}" for row, row_hash in rows).encode())
    return digest.hexdigest()


def _write_atomically(path: Path, value: Any) -> int:
    """Pickle ``value`` to ``path`` whole or not at all (a task killed halfway leaves no
    half a file); its size in bytes."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            pickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path.stat().st_size


def _read(path: Path) -> Any:
    with path.open("rb") as file:
        # The run's own file, written by prepare_links or link_counties: never a delivery.
        return pickle.load(file)


def prepare_links(
    warehouse: Warehouse, batch_id: str, run_id: str, work: Path, settings: LinkageSettings | None = None
) -> dict[str, Any]:
    """Plan the batch's link once and save the plan (any parts of an earlier plan removed);
    returns counts: rows, candidate pairs, the plan file's bytes."""
    settings = settings or load_linkage_settings()
    clock = Clock(batch_id)
    fingerprint = staged_fingerprint(warehouse, batch_id, settings)
    records = load_records(warehouse, batch_id, settings)
    if records.empty:
        raise ValueError(f"batch {batch_id} has no accepted rows to link")
    clock.lap(f"read {len(records):,} rows")
    plan = plan_links(records, settings)
    clock.lap(f"planned: {len(plan.left):,} candidate pairs")
    folder = link_folder(work)
    parts = folder / PARTS_FOLDER
    if parts.exists():
        for stale in parts.glob("*.pickle"):
            stale.unlink()
    saved = SavedPlan(batch_id, run_id, fingerprint, dataclasses.replace(plan, table=PairTable(plan.work)))
    size = _write_atomically(folder / PLAN_FILE, saved)
    clock.lap(f"plan saved ({size / 2**20:,.1f} MiB)")
    return {
        "batch_id": batch_id,
        "rows": len(plan.records),
        "candidate_pairs": len(plan.left),
        "plan_bytes": size,
    }


def _load_plan(warehouse: Warehouse, batch_id: str, run_id: str, work: Path, settings: LinkageSettings) -> SavedPlan:
    """The saved plan, refused when it is missing, another batch's or run's, or stale."""
    path = link_folder(work) / PLAN_FILE
    if not path.exists():
        raise FanOutError(f"no link plan at {path}: run the link's prepare step for batch {batch_id} first")
    saved = _read(path)
    if not isinstance(saved, SavedPlan):
        raise FanOutError(f"{path} is not a link plan: run the link's prepare step again")
    if (saved.batch_id, saved.run_id) != (batch_id, run_id):
        raise FanOutError(
            f"{path} is the link plan of batch {saved.batch_id} run {saved.run_id}, not of batch {batch_id} "
            f"run {run_id}: run the link's prepare step again"
        )
    if staged_fingerprint(warehouse, batch_id, settings) != saved.fingerprint:
        raise FanOutError(
            f"{path} is stale: the staged rows of batch {batch_id} or the linkage settings changed since it was "
            "made; run the link's prepare step again"
        )
    return saved


def part_name(counties: Collection[str]) -> str:
    """The file of a group's part: its county codes (``none``: no county stated)."""
    codes = sorted(code or "none" for code in counties)
    name = "-".join(codes)
    if len(name) > 80:
        name = f"{codes[0]}-{len(codes)}-{hashlib.blake2b(name.encode(), digest_size=8).hexdigest()}"
    return f"{name}.pickle"


def link_counties(
    warehouse: Warehouse,
    batch_id: str,
    run_id: str,
    work: Path,
    counties: Collection[str],
    settings: LinkageSettings | None = None,
) -> dict[str, Any]:
    """Compare and weigh the candidate pairs of these counties' rows with the saved plan and
    save them (the same file however often it runs); returns the counties and pairs scored."""
    codes = sorted({str(code) for code in counties})
    if not codes:
        raise ValueError("a county task needs at least one county")
    settings = settings or load_linkage_settings()
    clock = Clock(batch_id)
    saved = _load_plan(warehouse, batch_id, run_id, work, settings)
    clock.lap("plan loaded")
    scored = score_pairs(saved.plan, settings, Counties(frozenset(codes)))
    found = scored.candidates
    part = SavedPart(
        batch_id,
        run_id,
        saved.fingerprint,
        tuple(codes),
        scored.pair,
        found.weight,
        found.levels,
        found.vouched,
        found.supported,
        scored.compared,
    )
    _write_atomically(link_folder(work) / PARTS_FOLDER / part_name(codes), part)
    clock.lap(
        f"{', '.join(county_label(code) for code in codes)}: {scored.compared:,} candidate pairs scored, "
        f"{len(scored.pair):,} decisive ones saved"
    )
    return {"counties": codes, "pairs_scored": scored.compared}


def merge_links(
    warehouse: Warehouse, batch_id: str, run_id: str, work: Path, settings: LinkageSettings | None = None
) -> LinkSummary:
    """Gather every county task's part and store the links as the whole batch's link does;
    refused, naming them, when counties have no part."""
    settings = settings or load_linkage_settings()
    kept = record_decisions(warehouse)
    if kept:
        log.info("%d decisions people made in match_review are kept", kept)
    clock = Clock(batch_id, MERGE_STEPS)
    saved = _load_plan(warehouse, batch_id, run_id, work, settings)
    folder = link_folder(work) / PARTS_FOLDER
    parts: list[SavedPart] = []
    decided_by: dict[str, Path] = {}
    for path in sorted(folder.glob("*.pickle")) if folder.exists() else []:
        part = _read(path)
        if not isinstance(part, SavedPart) or part.fingerprint != saved.fingerprint:
            raise FanOutError(f"{path} was not made with the current link plan: run its county task again")
        for code in part.counties:
            if code in decided_by:
                raise FanOutError(f"{county_label(code)} is decided in two parts, {decided_by[code]} and {path}")
            decided_by[code] = path
        parts.append(part)
    missing = [code for code in saved.plan.counties if code not in decided_by]
    if missing:
        raise FanOutError(
            f"link of batch {batch_id}: no county task's part for {', '.join(county_label(code) for code in missing)} "
            f"in {folder}: run those county tasks"
        )
    plan = saved.plan
    candidates = gather_scores([part.scored(plan) for part in parts])
    compared = sum(part.compared for part in parts)
    if compared != len(plan.left):
        raise FanOutError(
            f"link of batch {batch_id}: the parts in {folder} scored {compared:,} of the plan's "
            f"{len(plan.left):,} candidate pairs: run the link's county tasks again"
        )
    clock.lap(f"gathered {len(parts)} county parts: {compared:,} candidate pairs, {len(candidates.left):,} decisive")
    units = decision_units(plan, candidates, settings)
    result = merge_decisions(plan, settings, [decide_counties(plan, candidates, units, settings)])
    clock.lap("decided", "decided")
    summary = store_links(warehouse, batch_id, settings, result, clock)
    remove_link_files(work)
    return summary


def remove_link_files(work: Path) -> None:
    """Remove the plan and the county parts once the links are stored: they hold identity
    numbers in full. A county or merge task run again after that is refused, asking for the
    prepare step first."""
    folder = link_folder(work)
    for path in [folder / PLAN_FILE, *sorted((folder / PARTS_FOLDER).glob("*.pickle"))]:
        path.unlink(missing_ok=True)
    for empty in (folder / PARTS_FOLDER, folder):
        with contextlib.suppress(OSError):  # gone already, or holds something else: left as it is
            empty.rmdir()
