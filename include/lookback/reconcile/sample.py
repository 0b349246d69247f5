"""The province's spot check (抽样核查) of the counties' self-checks.

The plan asks the province to verify, by strict sampling, that what the counties recorded
matches what is on the ground. :func:`draw_sample` draws households from a run's visit
roster, county by county:

- **size**: a fixed number per county, or the size that estimates a share within
  ``margin`` at ``confidence`` (95 % and ±5 points by default): ``n0 = z² p(1-p) / e²`` with
  ``p = 0.5`` (the largest), corrected for the county's finite number of households
  (``n = n0 / (1 + (n0 - 1) / N)``);
- **strata**: the visit category crossed with whether open findings remain (a household
  with items to check, one without); the size is shared among them in proportion to their
  households, every stratum getting at least one;
- **reproducible**: each county's draw comes from the sample's seed and the county's code
  alone (numpy's PCG64 seeded with both), households in key order: the same seed gives the
  same households, whatever other counties the roster holds. The seed, sizes and strata
  are recorded (``samples``, ``sample_households``).

The sample is published as print-ready lists like the visit lists, with empty columns for
the inspector (核查日期, 核查结果 相符 / 不相符, 不相符事项, 核查人签字). Returned, filled in,
:func:`read_sample_results` reads them back (every row validated, all or nothing), and
:func:`sample_estimates` reports per county the share of households whose records do not
match reality, with its Wilson interval (scipy's ``binomtest``).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
from sqlalchemy import Connection, delete, func, select

from lookback.errors import LookbackError
from lookback.paths import is_safe_name
from lookback.standardise.dates import cell_date
from lookback.warehouse import Warehouse, rows_as_dicts
from lookback.xlsx import custom_properties, open_returned

log = logging.getLogger(__name__)

DEFAULT_CONFIDENCE: Final = 0.95
DEFAULT_MARGIN: Final = 0.05
# What the inspector fills in, per household.
CHECKED_ON, RESULT, ITEMS, INSPECTOR = "核查日期", "核查结果（相符/不相符）", "不相符事项", "核查人签字"
INSPECTOR_HEADERS: Final = (CHECKED_ON, RESULT, ITEMS, INSPECTOR)
RESULT_WORDS: Final[Mapping[str, int]] = {"相符": 1, "不相符": 0}
KEY_HEADER: Final = "户编号（系统）"
SAMPLE_PROPERTY: Final = "lookback_sample_id"
COUNTY_PROPERTY: Final = "lookback_county"


def sample_size(households: int, confidence: float = DEFAULT_CONFIDENCE, margin: float = DEFAULT_MARGIN) -> int:
    """How many of ``households`` to draw to estimate a share within ``margin`` at
    ``confidence`` (p = 0.5, finite population corrected); never more than there are."""
    from scipy.stats import norm

    if not 0 < confidence < 1 or not 0 < margin < 1:
        raise LookbackError(f"confidence {confidence} and margin {margin} must each be between 0 and 1")
    if households <= 0:
        return 0
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    first = z * z * 0.25 / (margin * margin)
    return min(households, math.ceil(first / (1 + (first - 1) / households)))


def allocate(size: int, strata: Mapping[str, int]) -> dict[str, int]:
    """``size`` shared among the non-empty ``strata`` (name → households) in proportion to
    their households, each at least one and at most all of its own (largest remainders
    first, then by name)."""
    names = sorted(name for name, households in strata.items() if households > 0)
    total = sum(strata[name] for name in names)
    size = min(max(size, len(names)), total)
    shares = dict.fromkeys(names, 1)
    rest = size - len(names)
    quotas = {name: rest * strata[name] / total for name in names} if total else {}
    for name in names:
        shares[name] += min(int(quotas[name]), strata[name] - shares[name])
    left = size - sum(shares.values())
    order = sorted(names, key=lambda name: (-(quotas[name] - int(quotas[name])), name))
    while left > 0:
        for name in order:
            if left and shares[name] < strata[name]:
                shares[name] += 1
                left -= 1
    return shares


def _stratum(row: Mapping[str, Any]) -> str:
    return f"{row['visit_category']}|{'open' if int(row['open_findings'] or 0) else 'clear'}"


def county_rng(seed: int, county: str) -> np.random.Generator:
    """The draw's random numbers for one county: from the seed and the county's code alone."""
    code = int(county) if county.isdigit() else sum(county.encode("utf-8"))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, code])))


@dataclass(frozen=True)
class Drawn:
    """A sample drawn: its id and, per county, the households drawn and in the roster."""

    sample_id: str
    run_id: str
    seed: int
    per_county: dict[str, tuple[int, int]]  # county → (drawn, households)


def draw_sample(
    warehouse: Warehouse,
    run_id: str,
    *,
    seed: int,
    per_county: int | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    margin: float = DEFAULT_MARGIN,
    sample_id: str | None = None,
) -> Drawn:
    """Draw a stratified sample of each county's households from ``run_id``'s visit roster
    and record it (drawing the same sample id again replaces it, results included)."""
    if per_county is not None and per_county < 1:
        raise LookbackError(f"--per-county {per_county}: at least one household per county")
    sample_id = sample_id or f"{run_id}-s{seed}"
    if not is_safe_name(sample_id):  # it names the lists' folder (samples/<sample id>)
        raise LookbackError(
            f"sample id {sample_id!r}: use letters, digits, '.', '_' or '-' (at most 64, starting with a "
            "letter or digit, no '..')"
        )
    roster = warehouse.table("visit_roster")
    with warehouse.engine.begin() as connection:
        households = rows_as_dicts(
            connection.execute(
                select(
                    roster.c.household_key,
                    roster.c.county_code,
                    roster.c.visit_category,
                    roster.c.open_findings,
                    roster.c.route_order,
                ).where(roster.c.run_id == run_id)
            )
        )
        if not households:
            raise LookbackError(f"run {run_id} has no visit roster: run its look-back first")
        by_county: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in households:
            by_county[str(row["county_code"] or "")].append(row)
        drawn_rows: list[dict[str, Any]] = []
        summary: dict[str, tuple[int, int]] = {}
        for county in sorted(by_county):
            rows = sorted(by_county[county], key=lambda row: str(row["household_key"]))
            strata: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for row in rows:
                strata[_stratum(row)].append(row)
            size = per_county if per_county is not None else sample_size(len(rows), confidence, margin)
            shares = allocate(size, {name: len(members) for name, members in strata.items()})
            rng = county_rng(seed, county)
            chosen = []
            for name in sorted(shares):
                members = strata[name]
                picks = sorted(rng.choice(len(members), size=shares[name], replace=False).tolist())
                chosen += [(members[index], name, len(members)) for index in picks]
            chosen.sort(key=lambda item: int(item[0]["route_order"]))  # numbered as the inspector goes
            for position, (row, name, stratum_households) in enumerate(chosen, start=1):
                drawn_rows.append(
                    {
                        "sample_id": sample_id,
                        "household_key": row["household_key"],
                        "county_code": county,
                        "stratum": name,
                        "stratum_households": stratum_households,
                        "position": position,
                    }
                )
            summary[county] = (len(chosen), len(rows))
        for name in ("sample_results", "sample_households", "samples"):
            table = warehouse.table(name)
            connection.execute(delete(table).where(table.c.sample_id == sample_id))
        connection.execute(
            warehouse.table("samples")
            .insert()
            .values(
                sample_id=sample_id,
                run_id=run_id,
                seed=seed,
                confidence=confidence,
                margin=margin,
                per_county=per_county,
                drawn_at=datetime.now(UTC),
                households=len(drawn_rows),
            )
        )
        Warehouse.insert_records(connection, warehouse.table("sample_households"), drawn_rows)
    log.info(
        "sample %s: %d households of %d counties drawn from run %s", sample_id, len(drawn_rows), len(summary), run_id
    )
    return Drawn(sample_id, run_id, seed, summary)


def sample_of(connection: Connection, warehouse: Warehouse, sample_id: str) -> dict[str, Any]:
    samples = warehouse.table("samples")
    row = connection.execute(select(samples).where(samples.c.sample_id == sample_id)).mappings().one_or_none()
    if row is None:
        raise LookbackError(f"no sample {sample_id} has been drawn")
    return dict(row)


# Reading the inspectors' results back


@dataclass(frozen=True)
class ResultsRead:
    sample_id: str
    county: str
    households: int


def read_sample_results(warehouse: Warehouse, path: Path, returned_by: str) -> ResultsRead:
    """Read a returned sample list: every household row with a 核查结果 is validated (a
    household of the sample and of the list's county, 相符 or 不相符, 不相符事项 given when
    不相符, a date that is a date), then all are stored, or none: the error names every
    wrong row by sheet and row."""
    if not returned_by.strip():
        raise LookbackError(f"{path}: say who returned it")
    book = open_returned(path)
    properties = custom_properties(book)
    sample_id, county = properties.get(SAMPLE_PROPERTY), properties.get(COUNTY_PROPERTY)
    if not sample_id or county is None:
        raise LookbackError(f"{path}: not a sample list published by lookback (its properties name no sample)")
    drawn_table = warehouse.table("sample_households")
    with warehouse.engine.begin() as connection:
        sample_of(connection, warehouse, str(sample_id))
        drawn = {
            str(row.household_key): str(row.county_code)
            for row in connection.execute(select(drawn_table).where(drawn_table.c.sample_id == sample_id))
        }
        problems: list[str] = []
        results: dict[str, dict[str, Any]] = {}
        for sheet in book.worksheets:
            header = [str(cell.value) if cell.value is not None else "" for cell in sheet[2]]
            if KEY_HEADER not in header or RESULT not in header:
                continue
            for number, values in enumerate(sheet.iter_rows(min_row=3, values_only=True), start=3):
                cells = dict(zip(header, values, strict=False))
                where = f"sheet {sheet.title}, row {number}"
                key = str(cells.get(KEY_HEADER) or "").strip()
                word = str(cells.get(RESULT) or "").strip()
                if not word:
                    continue  # not visited yet
                if drawn.get(key) != county:
                    problems.append(
                        f"{where}: household {key or '(none)'} is not in sample {sample_id} for county {county}"
                    )
                    continue
                if word not in RESULT_WORDS:
                    problems.append(f"{where}: {RESULT} {word!r} is not one of {' / '.join(RESULT_WORDS)}")
                    continue
                items = str(cells.get(ITEMS) or "").strip() or None
                if not RESULT_WORDS[word] and not items:
                    problems.append(f"{where}: 不相符 needs what did not match in {ITEMS}")
                    continue
                checked_on = cell_date(cells.get(CHECKED_ON))
                if isinstance(checked_on, str):
                    problems.append(f"{where}: {CHECKED_ON} {checked_on!r} is not a date")
                    continue
                if key in results:
                    problems.append(f"{where}: household {key} is reported twice")
                    continue
                results[key] = {
                    "sample_id": sample_id,
                    "household_key": key,
                    "matches": RESULT_WORDS[word],
                    "items": items,
                    "checked_on": checked_on,
                    "inspector": str(cells.get(INSPECTOR) or "").strip() or None,
                    "returned_by": returned_by.strip(),
                    "read_at": datetime.now(UTC),
                }
        if problems:
            raise LookbackError(
                f"{path}: {len(problems)} row(s) cannot be read; nothing was stored:\n  " + "\n  ".join(problems[:50])
            )
        table = warehouse.table("sample_results")
        if results:
            connection.execute(
                delete(table).where(table.c.sample_id == sample_id, table.c.household_key.in_(sorted(results)))
            )
            Warehouse.insert_records(connection, table, list(results.values()))
    log.info("%s: %d households of sample %s, county %s", path.name, len(results), sample_id, county)
    return ResultsRead(str(sample_id), str(county), len(results))


def is_sample_list(path: Path) -> bool:
    """Whether a returned workbook is a sample list (else a county workbook)."""
    try:
        book = open_returned(path, read_only=True)
    except LookbackError:  # not a workbook at all: the reader that takes it says so
        return False
    try:
        return SAMPLE_PROPERTY in custom_properties(book)
    finally:
        book.close()


# Estimates


@dataclass(frozen=True)
class CountyEstimate:
    """Per county: households drawn and checked, those not as recorded, the share and its
    Wilson interval at the sample's confidence (None until a household is checked)."""

    county_code: str
    drawn: int
    checked: int
    not_matching: int
    share: float | None
    low: float | None
    high: float | None


def wilson_interval(successes: int, trials: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval of ``successes`` in ``trials`` (scipy's binomtest)."""
    from scipy.stats import binomtest

    interval = binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def sample_estimates(warehouse: Warehouse, sample_id: str) -> list[CountyEstimate]:
    """Per county of the sample, the estimated share of households whose records do not
    match reality, from the households checked so far."""
    drawn_table, results = warehouse.table("sample_households"), warehouse.table("sample_results")
    with warehouse.engine.connect() as connection:
        sample = sample_of(connection, warehouse, sample_id)
        drawn: dict[str, int] = dict(
            connection.execute(
                select(drawn_table.c.county_code, func.count())
                .where(drawn_table.c.sample_id == sample_id)
                .group_by(drawn_table.c.county_code)
            ).all()
        )
        checked: dict[str, list[int]] = defaultdict(list)
        for county, matches in connection.execute(
            select(drawn_table.c.county_code, results.c.matches)
            .join(
                results,
                (results.c.sample_id == drawn_table.c.sample_id)
                & (results.c.household_key == drawn_table.c.household_key),
            )
            .where(drawn_table.c.sample_id == sample_id)
        ):
            checked[str(county)].append(int(matches))
    estimates = []
    for county in sorted(drawn):
        seen = checked.get(county, [])
        wrong = sum(1 for matches in seen if not matches)
        share = low = high = None
        if seen:
            share = wrong / len(seen)
            low, high = wilson_interval(wrong, len(seen), float(sample["confidence"]))
        estimates.append(CountyEstimate(str(county), int(drawn[county]), len(seen), wrong, share, low, high))
    return estimates


def estimate_lines(estimates: Sequence[CountyEstimate], confidence: float) -> list[str]:
    """The estimates as a table to print."""
    from lookback.report import display_width
    from lookback.standardise.places import county_resolver

    lines = [
        f"county                     drawn  checked  not as recorded  share   {confidence:.0%} interval (Wilson)",
    ]
    for item in estimates:
        name = county_resolver().name_of(item.county_code) or ""
        label = f"{item.county_code} {name}".strip()
        if item.share is None or item.low is None or item.high is None:
            interval = "not checked yet"
            share = "-"
        else:
            interval = f"{item.low:6.1%} – {item.high:6.1%}"
            share = f"{item.share:6.1%}"
        padding = " " * max(0, 26 - display_width(label))
        lines.append(
            f"{label}{padding} {item.drawn:>5}  {item.checked:>7}  {item.not_matching:>15}  {share:>6}  {interval}"
        )
    return lines
