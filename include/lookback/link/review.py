"""What people are shown of a pair and what they decide: ``explain`` in words, and the
decisions filled into a ``match_review.csv`` read back for the next link run."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sqlalchemy import or_, select

from lookback.errors import LookbackError
from lookback.link.comparisons import compare_pairs, counted_once
from lookback.link.config import LinkageSettings, load_linkage_settings
from lookback.link.decide import summed_weights, verdict
from lookback.link.engine import explain_levels
from lookback.link.load import load_records
from lookback.link.view import second_pass_view
from lookback.link.weights import term_frequency_adjustment
from lookback.warehouse import Warehouse


def explain_pair(
    warehouse: Warehouse,
    batch_id: str,
    first: tuple[str, int],
    second: tuple[str, int],
    settings: LinkageSettings | None = None,
) -> str:
    """The comparison levels and weights of two rows, in words, with the total, what the
    weight alone would decide, and what the run decided."""
    settings = settings or load_linkage_settings()
    records = load_records(warehouse, batch_id, settings)
    positions = []
    for source, row in (first, second):
        found = records.index[(records["source"] == source) & (records["source_row"] == row)]
        if len(found) == 0:
            raise LookupError(f"{source}:{row} is not an accepted row of batch {batch_id}")
        positions.append(int(found[0]))
    table = warehouse.table("link_weights")
    with warehouse.engine.connect() as connection:
        stored = connection.execute(
            select(table.c.field, table.c.level, table.c.weight).where(table.c.batch_id == batch_id)
        ).all()
        links = warehouse.table("person_links")
        linked = {
            (row.source, row.source_row): row
            for row in connection.execute(
                select(links.c.source, links.c.source_row, links.c.person_id, links.c.match_method).where(
                    links.c.batch_id == batch_id,
                    or_(
                        (links.c.source == first[0]) & (links.c.source_row == first[1]),
                        (links.c.source == second[0]) & (links.c.source_row == second[1]),
                    ),
                )
            )
        }
    if not stored:
        raise LookupError(f"batch {batch_id} has not been linked")
    weights: dict[str, dict[str, float]] = {}
    for field, level, weight in stored:
        weights.setdefault(field, {})[level] = weight
    # Compared as the second pass compares: someone else's number set aside, households joined.
    view, _cluster, _foreign = second_pass_view(records)
    left, right = np.array([positions[0]]), np.array([positions[1]])
    levels = compare_pairs(view, left, right, settings.comparisons)
    counted_once(levels, settings.comparisons)
    frequency = float(term_frequency_adjustment(view, left, levels, settings.comparisons)[0])
    tables = [
        np.array([weights[comparison.field][level.label] for level in comparison.levels])
        for comparison in settings.comparisons
    ]
    total = float(summed_weights(levels, tables)[0]) + frequency
    levels = levels[0]
    decision = {
        "accept": f"accept if it beats the best candidate of another person by {settings.margin:g}",
        "review": "review",
        "reject": "reject",
    }[verdict(total, settings)]
    lines = [f"{first[0]}:{first[1]} ~ {second[0]}:{second[1]} in batch {batch_id}"]
    lines += [f"  {part}" for part in explain_levels(levels, settings, weights).split("; ")]
    if frequency:
        holders = int((view["name"] == view["name"].iat[positions[0]]).sum())
        lines.append(
            f"  name frequency: the name is on {holders:,} of {len(view):,} rows ({frequency:+.1f}; "
            f"{'rarer' if frequency > 0 else 'commoner'} than the average name)"
        )
    lines.append(
        f"  total match weight {total:+.1f} → {decision} (accept ≥ {settings.accept:g}, review ≥ {settings.review:g})"
    )
    one, other = linked.get(first), linked.get(second)
    if one is not None and other is not None:
        outcome = "the same person" if one.person_id == other.person_id else "two persons"
        methods = f"{first[0]}:{first[1]} {one.match_method}, {second[0]}:{second[1]} {other.match_method}"
        lines.append(f"  this run: {outcome} ({methods})")
    return "\n".join(lines)


DECISION_WORDS = {"same": "same", "different": "different", "同一人": "same", "不同人": "different"}


def import_decisions(warehouse: Warehouse, batch_id: str, path: Path) -> int:
    """Read the decisions people filled into a ``match_review.csv`` of the batch into the
    warehouse; the next link run applies them. Returns how many were read."""
    review = warehouse.table("match_review")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise LookbackError(f"{path}: cannot be read: {error.strerror}") from error
    needed = {"source_1", "source_row_1", "source_2", "source_row_2", "decision"}
    if rows and not needed <= set(rows[0]):
        raise LookbackError(f"{path}: not a match_review file (needs columns {', '.join(sorted(needed))})")
    updates = []
    for line, row in enumerate(rows, start=2):
        word = (row.get("decision") or "").strip()
        if not word:
            continue
        decision = DECISION_WORDS.get(word.lower())
        if decision is None:
            known = " / ".join(DECISION_WORDS)
            raise LookbackError(f"{path}: line {line}: decision {word!r} is not one of {known}")
        updates.append(
            (row["source_1"], int(row["source_row_1"]), row["source_2"], int(row["source_row_2"]), decision, line)
        )
    with warehouse.engine.begin() as connection:
        for source_1, row_1, source_2, row_2, decision, line in updates:
            changed = connection.execute(
                review.update()
                .where(
                    review.c.batch_id == batch_id,
                    review.c.source_1 == source_1,
                    review.c.source_row_1 == row_1,
                    review.c.source_2 == source_2,
                    review.c.source_row_2 == row_2,
                )
                .values(decision=decision)
            ).rowcount
            if changed != 1:
                raise LookbackError(
                    f"{path}: line {line}: {source_1}:{row_1} ~ {source_2}:{row_2} is not a pair of batch {batch_id}"
                )
    return len(updates)
