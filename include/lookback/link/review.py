"""What people are shown of a pair and what they decide: ``explain`` in words, and the
decisions filled into a ``match_review.csv`` read back for the next link run."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import or_, select

from lookback.errors import LookbackError
from lookback.link.comparisons import compare_pairs, counted_once
from lookback.link.config import LinkageSettings, load_linkage_settings
from lookback.link.decide import summed_weights, verdict
from lookback.link.engine import weighed_levels
from lookback.link.load import load_records
from lookback.link.view import second_pass_view
from lookback.link.weights import term_frequency_adjustment
from lookback.link.words import FIELD_WORDS, FREQUENCY_WORDS, MISSING_WORDS, level_words
from lookback.standardise.identity import HOUSEHOLD_NUMBER_WORD, mask_identity_number, mask_identity_numbers_in
from lookback.warehouse import Warehouse
from lookback.xlsx import open_returned


def _side_name(name: str, side: int) -> str:
    """A column of one row of a pair: ``name_1``; ``identity_1_masked`` as the table names it."""
    if name == "identity_masked":
        return f"identity_{side}_masked"
    return f"{name}_{side}"


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
    decision, decision_zh = {
        "accept": (
            f"accept if it beats the best candidate of another person by {settings.margin:g}",
            f"判为同一人（须比其他候选人高出 {settings.margin:g}）",
        ),
        "review": ("review", "交人工复核"),
        "reject": ("reject", "判为不同人"),
    }[verdict(total, settings)]
    lines = [
        f"{first[0]}:{first[1]} ~ {second[0]}:{second[1]} in batch {batch_id}"
        f"（批次 {batch_id}：{first[0]} 第 {first[1]} 行 ~ {second[0]} 第 {second[1]} 行）"
    ]
    for comparison, level, weight in weighed_levels(levels, settings, weights):
        field = f"{FIELD_WORDS.get(comparison.field, comparison.field)} {comparison.field}"
        said = (
            f"{MISSING_WORDS} missing (0)" if level is None else f"{level_words(level)} {level.label} ({weight:+.1f})"
        )
        lines.append(f"  {field}: {said}")
    if frequency:
        holders = int((view["name"] == view["name"].iat[positions[0]]).sum())
        lines.append(
            f"  {FREQUENCY_WORDS} name frequency: the name is on {holders:,} of {len(view):,} rows ({frequency:+.1f}; "
            f"{'rarer' if frequency > 0 else 'commoner'} than the average name；"
            f"{'比一般姓名少见' if frequency > 0 else '比一般姓名常见'}，{holders:,} / {len(view):,} 行同名)"
        )
    lines.append(
        f"  总匹配分 total match weight {total:+.1f} → {decision_zh}，{decision} "
        f"(accept ≥ {settings.accept:g}, review ≥ {settings.review:g})"
    )
    one, other = linked.get(first), linked.get(second)
    if one is not None and other is not None:
        same = one.person_id == other.person_id
        outcome = "the same person" if same else "two persons"
        methods = f"{first[0]}:{first[1]} {one.match_method}, {second[0]}:{second[1]} {other.match_method}"
        lines.append(f"  本次运行 this run: {'同一人' if same else '两人'}，{outcome} ({methods})")
    return "\n".join(lines)


DECISION_WORDS = {"same": "same", "different": "different", "同一人": "same", "不同人": "different"}

# The review file's columns: the names ``decide`` reads them by (``match_review.csv``'s
# header, the contract's), and the Chinese caption the workbook for county staff shows above
# each (``姓名1`` over ``name_1``).
_SIDE_COLUMNS = (
    ("source", "来源{}"),
    ("source_label", "来源名称{}"),
    ("source_row", "行号{}"),
    ("name", "姓名{}"),
    ("identity_masked", "证件号码{}（脱敏）"),
    ("county", "县市区{}"),
    ("village", "行政村{}"),
    ("household", "户{}"),
    ("relation", "与户主关系{}"),
    ("age", "年龄{}"),
)
REVIEW_COLUMNS: tuple[tuple[str, str], ...] = (
    *((_side_name(name, 1), caption.format(1)) for name, caption in _SIDE_COLUMNS),
    *((_side_name(name, 2), caption.format(2)) for name, caption in _SIDE_COLUMNS),
    ("score", "匹配分"),
    ("explanation_zh", "比对说明"),
    ("explanation", "比对说明（英文）"),
    ("decision", "判定（同一人/不同人）"),
)
REVIEW_FIELDS = tuple(name for name, _ in REVIEW_COLUMNS)
# The workbook's header cells: the Chinese caption, the column's name below it.
REVIEW_CAPTIONS = tuple(f"{caption}\n{name}" for name, caption in REVIEW_COLUMNS)


def review_key(header: str) -> str:
    """The column a review file's header cell names: its last word (``姓名1`` over
    ``name_1`` in the workbook → ``name_1``; the CSV file has the name alone)."""
    words = header.split()
    return words[-1] if words else ""


def review_file_rows(rows: Iterable[Mapping[str, Any]], as_of: date | None) -> Iterator[list[Any]]:
    """The review file's rows (in :data:`REVIEW_COLUMNS` order) from ``match_review`` rows:
    each side's source named, its county by name, its household in words (a number in it
    masked, a registry 户编号 kept), its relation in the registry's words and its age at
    ``as_of``; never a birth date, which beside a masked number would give it away."""
    from lookback.sources import load_source_specs
    from lookback.standardise.places import county_resolver

    specs = load_source_specs()
    titles = {name: spec.title for name, spec in specs.items()}
    relations: dict[str, str] = {}
    for spec in specs.values():  # a relation code in the words of the sources that deliver it
        read_from = dict(spec.linkage).get("relation")
        for column in spec.columns:
            if column.name == read_from:
                for label, code in column.codes:
                    relations.setdefault(code, label)
    counties = county_resolver()
    for row in rows:
        cells: dict[str, Any] = {
            "score": round(float(row["score"]), 2),
            "explanation_zh": row.get("explanation_zh"),
            "explanation": row["explanation"],
            "decision": row.get("decision"),
        }
        for side in (1, 2):
            source = str(row[f"source_{side}"])
            county = row.get(f"county_{side}")
            cells |= {
                _side_name("source", side): source,
                _side_name("source_label", side): titles.get(source, source),
                _side_name("source_row", side): row[f"source_row_{side}"],
                _side_name("name", side): row[f"name_{side}"],
                _side_name("identity_masked", side): row[f"identity_{side}_masked"],
                _side_name("county", side): (counties.name_of(str(county)) or county) if county else None,
                _side_name("village", side): row.get(f"village_{side}"),
                _side_name("household", side): household_words(row.get(f"household_{side}")),
                _side_name("relation", side): relations.get(
                    str(row.get(f"relation_{side}")), row.get(f"relation_{side}")
                ),
                _side_name("age", side): _age(row.get(f"birth_date_{side}"), as_of),
            }
        yield [cells[name] for name, _ in REVIEW_COLUMNS]


def _workbook_cells(path: Path) -> list[list[str]]:
    """The review workbook's first sheet as text, its header row first (the title above it
    left out)."""
    book = open_returned(path, read_only=True)
    try:
        rows = [
            ["" if value is None else str(value) for value in values]
            for values in book.worksheets[0].iter_rows(values_only=True)
        ]
    finally:
        book.close()
    start = next((index for index, cells in enumerate(rows) if "decision" in map(review_key, cells)), len(rows))
    return rows[start:]


def household_words(anchor: str | None) -> str | None:
    """A household as the linkage knows it, in words: ``registry:<户编号>`` as 户编号 <户编号>,
    ``head:<number>`` as 户主证件号码 with the number masked; anything else with every
    identity-like run masked."""
    if not anchor:
        return None
    kind, _, rest = anchor.partition(":")
    if kind == "registry":
        return f"{HOUSEHOLD_NUMBER_WORD}{rest}"
    if kind == "head":
        return f"户主证件号码 {mask_identity_number(rest)}"
    return mask_identity_numbers_in(anchor)


def _age(birth: Any, as_of: date | None) -> int | None:
    if birth is None or as_of is None:
        return None
    born = birth if isinstance(birth, date) else date.fromisoformat(str(birth))
    return as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))


def import_decisions(warehouse: Warehouse, batch_id: str, path: Path) -> int:
    """Read the decisions people filled into a ``match_review.csv`` of the batch into the
    warehouse; the next link run applies them. Returns how many were read. The file's
    columns are found by their names (the last word of each header cell), so a file of
    the earlier, English-only form is read too."""
    review = warehouse.table("match_review")
    try:
        if path.suffix.lower() == ".xlsx":
            table = _workbook_cells(path)
        else:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                table = list(csv.reader(handle))
    except OSError as error:
        raise LookbackError(f"{path}: cannot be read: {error.strerror}") from error
    header = [review_key(cell) for cell in (table[0] if table else [])]
    rows = [dict(zip(header, cells, strict=False)) for cells in table[1:]]
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
