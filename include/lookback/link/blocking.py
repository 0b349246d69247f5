"""Blocking: the candidate pairs of the second pass, rows agreeing on every key of some rule."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from lookback.link.config import LinkageSettings
from lookback.link.persons import first_pass_roots
from lookback.standardise.names import name_slots

log = logging.getLogger(__name__)


def _key_codes(records: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each blocking key column as integer codes (-1: no key), equal where the keys are equal:
    rules join on integers, not on strings hashed again for every rule. The keys made here
    are let go once coded, one column at a time (at a million persons, each column of new
    strings holds hundreds of megabytes)."""
    codes = {
        column: _codes(records[column]) for column in ("county", "name", "pinyin", "birth_date", "sex", "household")
    }
    # The first two characters and the length (in characters, a pinyin syllable or ``?`` one)
    # of every name, and the given name of a name of three or more; on the side of the row
    # being decided, only of a name with a placeholder or a row with no number to block on:
    # 罗国* and 罗国na meet 罗国娜, 由霞金 (a look-alike typed) meets 田霞金 — pairs the name
    # and pinyin keys miss — and no other row pays for it.
    # Each key of a name is made once per distinct name, then given to its rows by the name's code.
    names, distinct = pd.factorize(records["name"].to_numpy(dtype=object), use_na_sentinel=True)
    slots_of = [name_slots(name) if isinstance(name, str) else () for name in distinct.tolist()]

    def of_rows(keys: list[str | None]) -> np.ndarray:
        per_name: np.ndarray = np.append(_codes(keys), -1)[names]
        return per_name

    codes["placeholder_head"] = of_rows(
        ["".join(slots[:2]) + f":{len(slots)}" if slots else None for slots in slots_of]
    )
    codes["given_name"] = of_rows(
        ["".join(slots[1:]) + f":{len(slots)}" if len(slots) >= 3 else None for slots in slots_of]
    )
    # The first and last characters of a name of three or more: 张金兰 meets 张全兰, a look-alike
    # typed for the middle character.
    codes["name_ends"] = of_rows(
        [slots[0] + slots[-1] + f":{len(slots)}" if len(slots) >= 3 else None for slots in slots_of]
    )
    # The surname and the length (see _surname_length_pairs): 肖* meets 肖生, which the first
    # two characters of a name of two miss.
    codes["surname_length"] = of_rows([slots[0] + f":{len(slots)}" if len(slots) >= 2 else None for slots in slots_of])
    del slots_of
    digits = records["id_digits"].fillna("")
    lengths = digits.str.len()
    codes["id_digits"] = _codes(digits.where(lengths > 0))
    codes["id_first14"] = _codes(digits.where(lengths >= 14).str[:14])
    codes["id_last4"] = _codes(digits.where(lengths.isin([15, 18])).str[-4:])
    return codes


def _codes(values: Any) -> np.ndarray:
    codes: np.ndarray = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)[0]
    return codes


def _surname_length_pairs(
    left_key: np.ndarray, left_row: np.ndarray, key: np.ndarray, records: pd.DataFrame, persons: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs on the surname and length, where one of the two names has a placeholder: a row
    of the second pass (with a placeholder, or with neither number nor birth date) meets the
    rows of persons holding no row of its source: 肖* of the registry (a blank number) meets
    the enrolment 肖生 of a person not registered, not the enrolments of every registered 肖.
    ``left_key`` and ``left_row``: the rule's combined key of the rows of the second pass
    (-1: no key); ``key``: every row's."""
    placeholder = records["placeholder"].to_numpy(dtype=bool)
    sources = records["source"].to_numpy(dtype=object)
    keyed = left_key >= 0
    left_key, left_row = left_key[keyed], left_row[keyed]
    left_source = sources[left_row]
    lefts, rights = [], []
    for source in sorted(set(left_source.tolist())):
        holds = np.zeros(len(records), dtype=bool)
        holds[persons[sources == source]] = True
        right_row = np.flatnonzero(~holds[persons] & (key >= 0))
        mine = np.flatnonzero(left_source == source)
        # Only pairs of which a name has a placeholder: a left row with one meets every right
        # row, a left row without only the right rows with one (not every 肖 of two characters).
        wild = placeholder[left_row[mine]]
        marked = right_row[placeholder[right_row]]
        at_l, row_r = _equal_key_pairs(left_key[mine[wild]], mine[wild], key[right_row], right_row)
        tame_l, tame_r = _equal_key_pairs(left_key[mine[~wild]], mine[~wild], key[marked], marked)
        # As one join gives them: in the left rows' order, each left row's right rows in theirs.
        at_l, row_r = np.concatenate([at_l, tame_l]), np.concatenate([row_r, tame_r])
        order = np.argsort(at_l, kind="stable")
        lefts.append(left_row[at_l[order]])
        rights.append(row_r[order])
    if not lefts:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(lefts), np.concatenate(rights)


def _equal_key_pairs(
    left_key: np.ndarray, left_row: np.ndarray, right_key: np.ndarray, right_row: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of a left and a right row of one key (keys: non-negative integers): in the
    left rows' order, each left row's right rows in theirs. A sorted join on the integer
    codes: only the pairs are allocated, not the hash tables and frames of a merge (at a
    million persons, gigabytes)."""
    order = np.argsort(right_key, kind="stable")
    sorted_keys = right_key[order]
    start = np.searchsorted(sorted_keys, left_key, side="left")
    counts = np.searchsorted(sorted_keys, left_key, side="right") - start
    ends = np.cumsum(counts)
    # The k-th pair of a left row is that row's start plus k in the sorted right rows.
    offsets = np.repeat(start - (ends - counts), counts) + np.arange(int(ends[-1]) if len(ends) else 0)
    return np.repeat(left_row, counts), right_row[order[offsets]]


def candidate_pairs(
    records: pd.DataFrame, unresolved: np.ndarray, settings: LinkageSettings, cluster: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Pairs (left always a row of the second pass) agreeing on every key of some blocking
    rule (``cluster``: the persons of the first pass, for the rule on surname and length)."""
    # Each key column as integer codes (-1: none), a rule's columns as one combined code.
    codes = _key_codes(records)
    rows = np.arange(len(records))
    numberless = ((codes["id_digits"] < 0) & records["birth_date"].isna().to_numpy())[unresolved]
    placeholder = records["placeholder"].to_numpy(dtype=bool)[unresolved]
    # On the side of the row being decided, some keys only for some rows (see _key_codes).
    left_only = {
        "placeholder_head": placeholder | numberless,
        "given_name": numberless,
        "name_ends": numberless,
        "surname_length": placeholder | numberless,
    }
    # Each pair as one number, its lower row times the rows plus its higher: the pairs of
    # every rule, each kept once where it was first found.
    found: list[np.ndarray] = []
    counts: dict[str, int] = {}
    n = len(records)
    for rule in settings.blocking:
        columns = list(rule.keys)
        key = _combined(codes, columns)
        left_key = key[unresolved].copy()
        for column in columns:
            if column in left_only:
                left_key[~left_only[column]] = -1
        if "surname_length" in columns:
            # The persons of the first pass; a row of the second pass is a person of its own.
            persons = first_pass_roots(np.where(unresolved, -1, -1 if cluster is None else cluster))
            row_l, row_r = _surname_length_pairs(left_key, rows[unresolved], key, records, persons)
        else:
            keyed = left_key >= 0
            row_l, row_r = _equal_key_pairs(left_key[keyed], rows[unresolved][keyed], key[key >= 0], rows[key >= 0])
        apart = row_l != row_r
        row_l, row_r = row_l[apart], row_r[apart]
        counts[rule.name] = len(row_l)
        log.info("blocking rule %s: %s candidate pairs", rule.name, f"{len(row_l):,}")
        found.append(np.minimum(row_l, row_r).astype(np.int64) * n + np.maximum(row_l, row_r))
        del row_l, row_r
    pairs = first_found(found)
    left = pairs // n
    np.remainder(pairs, n, out=pairs)
    return left, pairs, counts


def first_found(found: list[np.ndarray]) -> np.ndarray:
    """The pairs (as numbers) of every rule, each once where it was first found: in the
    rules' order, a rule's own in its order. Rule by rule, against the sorted pairs kept so
    far (emptying ``found`` as it goes): all rules' pairs at once, sorted, held some 40 bytes
    per pair found (at a million persons, several gigabytes); this holds the pairs kept twice."""
    kept: list[np.ndarray] = []
    seen = np.empty(0, dtype=np.int64)
    while found:
        pairs = found.pop(0)
        _, first = np.unique(pairs, return_index=True)
        pairs = pairs[np.sort(first)]
        if len(seen) and len(pairs):
            at = np.minimum(np.searchsorted(seen, pairs), len(seen) - 1)
            pairs = pairs[seen[at] != pairs]
        kept.append(pairs)
        if found:
            # Two sorted runs: the stable sort merges them.
            seen = np.sort(np.concatenate([seen, np.sort(pairs)]), kind="stable")
    del seen
    return np.concatenate(kept) if kept else np.empty(0, dtype=np.int64)


def _combined(codes: dict[str, np.ndarray], columns: list[str]) -> np.ndarray:
    """One integer code per row for the values of ``columns`` together (-1 where any is missing)."""
    combined = codes[columns[0]].astype(np.int64)
    for column in columns[1:]:
        code = codes[column]
        missing = (combined < 0) | (code < 0)
        combined = combined * (int(code.max(initial=0)) + 1) + code
        combined[missing] = -1
        combined = np.where(missing, -1, pd.factorize(combined)[0])  # compact again: no overflow
    return combined
