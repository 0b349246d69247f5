"""Match weights: m and u per comparison level, name frequencies, and the weights a candidate
gains or loses from the person it would join."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from lookback.link.comparisons import FACT_FIELDS, compare_pairs
from lookback.link.config import LinkageSettings
from lookback.link.levels import Comparison
from lookback.link.pairs import PairTable, has_value
from lookback.link.persons import first_pass_roots

log = logging.getLogger(__name__)


def estimate_weights(
    records: pd.DataFrame, cluster: np.ndarray, settings: LinkageSettings, table: PairTable | None = None
) -> list[np.ndarray]:
    """Match weight per comparison level: log2(m/u), m from deterministic links, u from random
    pairs (``table``: the records' per-row arrays, kept for the comparisons to come)."""
    table = PairTable(records) if table is None else table
    rng = np.random.default_rng(settings.seed)
    n = len(records)
    sample = min(settings.random_pairs, max(n * 4, 1000))
    left = rng.integers(0, n, sample)
    right = rng.integers(0, n, sample)
    keep = (left != right) & ~((cluster[left] == cluster[right]) & (cluster[left] >= 0))
    u_levels = compare_pairs(records, left[keep], right[keep], settings.comparisons, table)
    # Linked pairs: consecutive rows of each deterministic cluster.
    order = np.argsort(cluster, kind="stable")
    ordered = cluster[order]
    same = (ordered[1:] == ordered[:-1]) & (ordered[1:] >= 0)
    m_left, m_right = order[:-1][same], order[1:][same]
    if len(m_left) > settings.random_pairs:
        pick = rng.choice(len(m_left), settings.random_pairs, replace=False)
        m_left, m_right = m_left[pick], m_right[pick]
    m_levels = compare_pairs(records, m_left, m_right, settings.comparisons, table)
    weights = []
    for position, comparison in enumerate(settings.comparisons):
        count = len(comparison.levels)
        m_counts = np.bincount(m_levels[:, position][m_levels[:, position] >= 0], minlength=count).astype(float)
        u_counts = np.bincount(u_levels[:, position][u_levels[:, position] >= 0], minlength=count).astype(float)
        m = (m_counts + 0.5) / (m_counts.sum() + 0.5 * count)
        u = (u_counts + 0.5) / (u_counts.sum() + 0.5 * count)
        for index, level in enumerate(comparison.levels):
            if level.m is not None:
                m[index] = level.m
        weights.append(np.log2(m / u))
    return weights


def term_frequency_adjustment(
    records: pd.DataFrame,
    left: np.ndarray,
    levels: np.ndarray,
    comparisons: Sequence[Comparison],
    table: PairTable | None = None,
) -> np.ndarray:
    """For names agreeing exactly, or in their pinyin: log2(u_average / u_value), so that 王伟
    agreeing counts less than 粟晓蓉 agreeing, and 李芳 for 理芳 (lifang) less than a rare
    homophone. The frequencies are of all ``records`` (kept in ``table`` when given, for the
    next pairs of the same records)."""
    table = PairTable(records) if table is None else table
    adjustment = np.zeros(len(left))
    for position, comparison in enumerate(comparisons):
        if comparison.field != "name":
            continue
        for index, level in enumerate(comparison.levels):
            if not level.term_frequency:
                continue
            column = level.frequency_column or comparison.spec.column
            frequency, distinct = table.derived(f"frequency:{column}", partial(_frequencies, records[column]))
            hit = levels[:, position] == index
            adjustment[hit] += np.log2((1.0 / distinct) / frequency[left[hit]])
    return adjustment


def _frequencies(values: pd.Series) -> tuple[np.ndarray, int]:
    """Per row, how often its value occurs among all rows; and how many values there are."""
    return values.map(values.value_counts(normalize=True)).to_numpy(), values.nunique() or 1


def supported_pairs(
    records: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    levels: np.ndarray,
    level_weights: Sequence[np.ndarray],
    settings: LinkageSettings,
) -> np.ndarray:
    """Pairs that agree on something beyond the name and where a person lives (``support`` in
    the settings): the others are put to people (a hukou death with no usable number and a
    namesake of the county), however strong the name."""
    if settings.support is None:
        return np.ones(len(left), dtype=bool)
    # Per level, whether its weight is for the pair (a field saying nothing, -1, is not).
    agrees = {
        comparison.field: np.append(level_weights[position] > 0, False)[levels[:, position]]
        for position, comparison in enumerate(settings.comparisons)
    }

    def any_of(fields: Iterable[str]) -> np.ndarray:
        found = np.zeros(len(left), dtype=bool)
        for name in fields:
            if name in agrees:
                found |= agrees[name]
        return found

    supported = any_of(settings.support.any_of)
    sources = records["source"].to_numpy(dtype=object)
    for source, fields in settings.support.by_source.items():
        of_source = sources == source
        involved = of_source[left] | of_source[right]
        supported = np.where(involved, any_of(fields), supported)
    return supported


@dataclass(frozen=True)
class SeldomTwice:
    """Sources a household seldom holds two rows of (an appraisal repeated). Per source and
    kind of household (``registry``, ``head``: an allowance household), the weights (bits)
    of the candidate's household holding another row of the source already (``held``) and
    of its holding none (``none``); each row's household code (-1: none) and each code's kind."""

    held: Mapping[tuple[str, int], float]
    none: Mapping[tuple[str, int], float]
    household: np.ndarray
    kind_of_household: np.ndarray

    def weights(self, pairs: pd.DataFrame, roots: np.ndarray, sources: np.ndarray) -> np.ndarray:
        """The weight each pair (``left_root``, ``target``) gains or loses: where the left
        person holds a row of such a source and the target is of a household, by whether
        that household holds another."""
        added = np.zeros(len(pairs))
        units = _units(roots, self.household)
        left_root, target = pairs["left_root"].to_numpy(), pairs["target"].to_numpy()
        of_household = units[target] < len(self.kind_of_household)
        kinds = np.where(of_household, self.kind_of_household[np.where(of_household, units[target], 0)], -1)
        for source in {source for source, _kind in self.held}:
            holds = np.zeros(len(roots), dtype=bool)
            holds[roots[sources == source]] = True
            holders = np.flatnonzero(holds)
            per_unit = pd.Series(units[holders]).value_counts()
            in_unit = pd.Series(units[target]).map(per_unit).fillna(0).to_numpy(copy=True)  # written to below
            # The left person's own row does not count for its own household.
            in_unit -= holds[left_root] & (units[left_root] == units[target])
            for kind in np.unique(kinds[holds[left_root] & (kinds >= 0)]).tolist():
                if (source, kind) not in self.held:
                    continue  # no household of the kind holds one: nothing was learnt
                weighed = holds[left_root] & (kinds == kind)
                added[weighed] += np.where(in_unit[weighed] > 0, self.held[(source, kind)], self.none[(source, kind)])
        return added


def _units(roots: np.ndarray, household: np.ndarray) -> np.ndarray:
    """Per person (root), the household its rows name (any of them), else itself past the
    household codes."""
    unit = len(roots) + np.arange(len(roots), dtype=np.int64)
    housed = np.flatnonzero(household >= 0)
    unit[roots[housed]] = household[housed]
    return unit


def seldom_twice(work: pd.DataFrame, cluster: np.ndarray, sources: Iterable[str]) -> SeldomTwice:
    """How often a household holding a row of each source holds a second (m of ``held``),
    against how often a household of the kind holds one at all (its u), among the
    households of the persons the first pass linked."""
    household, keys = pd.factorize(work["household"], use_na_sentinel=True)
    household = household.astype(np.int64)
    kind_names, kind_of_key = np.unique([str(key).split(":", 1)[0] for key in keys], return_inverse=True)
    kind_of_key = np.asarray(kind_of_key, dtype=np.int64)
    linked = cluster >= 0
    roots = first_pass_roots(cluster)
    units = _units(roots, household)
    households_of_kind = np.bincount(kind_of_key, minlength=len(kind_names))
    held: dict[tuple[str, int], float] = {}
    none: dict[tuple[str, int], float] = {}
    for source in sources:
        # Rows alike but for what the linkage does not read (an appraisal repeated, its date
        # aside) are two rows here.
        rows = (work["source"] == source).to_numpy() & linked
        counts = pd.Series(units[roots[rows]]).value_counts()
        counts = counts[counts.index < len(keys)]  # households, not persons of none
        for code, total in enumerate(households_of_kind.tolist()):
            of_kind = counts[kind_of_key[counts.index.to_numpy()] == code]
            if of_kind.empty:
                continue
            twice = (int((of_kind >= 2).sum()) + 0.5) / (len(of_kind) + 1)
            holding = (len(of_kind) + 0.5) / (total + 1)
            held[(source, code)] = math.log2(twice / holding)
            none[(source, code)] = math.log2((1 - twice) / (1 - holding))
            log.info(
                "%s households holding a %s row: %.1f%%, a second of them %.1f%% (%+.1f bits held, %+.1f none)",
                kind_names[code],
                source,
                100 * holding,
                100 * twice,
                held[(source, code)],
                none[(source, code)],
            )
    return SeldomTwice(held, none, household, kind_of_key)


@dataclass(frozen=True)
class PersonFacts:
    """What a person's rows say alike of the person (a birth date, a sex), to weigh the pairs
    whose two rows could not be compared on it: an enrolment of one birth date is not taken
    into a person through its allowance row, which states none, when the person's registry
    number gives another. Per fact: the comparison's position, its level weights, and each
    row's value (None where the row states none, or only what a damaged number's digits give)."""

    comparisons: tuple[Comparison, ...]
    positions: tuple[int, ...]
    tables: tuple[np.ndarray, ...]
    values: tuple[np.ndarray, ...]

    def weights(self, pairs: pd.DataFrame, roots: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """The weight each pair (``left_root``, ``target``) gains or loses by comparing the two
        persons as they now stand on each fact its own rows left uncompared."""
        added = np.zeros(len(pairs))
        left_root, target = pairs["left_root"].to_numpy(), pairs["target"].to_numpy()
        uncompared_pairs = pairs["pair"].to_numpy()
        if not len(pairs):
            return added
        # Only the rows of the persons the pairs name are read: a round of decisions costs
        # what its pairs cost, not what every row does.
        named = np.zeros(len(roots), dtype=bool)
        named[left_root] = True
        named[target] = True
        rows = np.flatnonzero(named[roots])
        for comparison, position, table, values in zip(
            self.comparisons, self.positions, self.tables, self.values, strict=True
        ):
            stated = rows[has_value(values[rows])]
            by_person = pd.Series(values[stated]).groupby(roots[stated])
            agreed = by_person.first()[by_person.nunique() == 1]
            of_person = np.full(len(roots), None, dtype=object)
            of_person[agreed.index.to_numpy()] = agreed.to_numpy()
            a, b = of_person[left_root], of_person[target]
            weighed = np.flatnonzero((levels[uncompared_pairs, position] < 0) & has_value(a) & has_value(b))
            added[weighed] += table[comparison.compare_values(a[weighed], b[weighed])]
        return added


def person_facts(
    work: pd.DataFrame, alone: np.ndarray, settings: LinkageSettings, level_weights: Sequence[np.ndarray]
) -> PersonFacts:
    """The facts of :class:`PersonFacts` that the settings compare, from the second pass's
    view: as a row states them, or as its number gives them where another row corroborates
    the number (an ``alone`` number may be someone else's; a damaged one's digits may be anyone's)."""
    found = [
        (comparison, position, level_weights[position])
        for position, comparison in enumerate(settings.comparisons)
        if comparison.field in FACT_FIELDS
    ]
    from_digits = work["birth_from_digits"].to_numpy(dtype=bool)
    values = []
    for comparison, _position, _table in found:
        column = work[comparison.field].to_numpy(dtype=object).copy()
        stated = work[f"{comparison.field.removesuffix('_date')}_stated"].to_numpy(dtype=object)
        column[alone] = stated[alone]
        if comparison.field == "birth_date":
            column[from_digits] = None
        values.append(column)
    comparisons, positions, tables = zip(*found, strict=True) if found else ((), (), ())
    return PersonFacts(tuple(comparisons), tuple(positions), tuple(tables), tuple(values))
