"""Blocking: the candidate pairs of the second pass, rows agreeing on every key of some rule."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from lookback.link.config import LinkageSettings
from lookback.link.persons import first_pass_roots
from lookback.standardise.names import name_slots

log = logging.getLogger(__name__)


def _blocking_keys(records: pd.DataFrame) -> pd.DataFrame:
    keys = pd.DataFrame(index=records.index)
    keys["county"] = records["county"]
    keys["name"] = records["name"]
    keys["pinyin"] = records["pinyin"]
    keys["birth_date"] = records["birth_date"]
    keys["sex"] = records["sex"]
    keys["household"] = records["household"]
    # The first two characters and the length (in characters, a pinyin syllable or ``?`` one)
    # of every name, and the given name of a name of three or more; on the side of the row
    # being decided, only of a name with a placeholder or a row with no number to block on:
    # 罗国* and 罗国na meet 罗国娜, 由霞金 (a look-alike typed) meets 田霞金 — pairs the name
    # and pinyin keys miss — and no other row pays for it.
    slots_of = [name_slots(name) if isinstance(name, str) else () for name in records["name"]]
    keys["placeholder_head"] = ["".join(slots[:2]) + f":{len(slots)}" if slots else None for slots in slots_of]
    keys["given_name"] = ["".join(slots[1:]) + f":{len(slots)}" if len(slots) >= 3 else None for slots in slots_of]
    # The first and last characters of a name of three or more: 张金兰 meets 张全兰, a look-alike
    # typed for the middle character.
    keys["name_ends"] = [slots[0] + slots[-1] + f":{len(slots)}" if len(slots) >= 3 else None for slots in slots_of]
    # The surname and the length (see _surname_length_pairs): 肖* meets 肖生, which the first
    # two characters of a name of two miss.
    keys["surname_length"] = [slots[0] + f":{len(slots)}" if len(slots) >= 2 else None for slots in slots_of]
    digits = records["id_digits"].fillna("")
    keys["id_digits"] = digits.where(digits.str.len() > 0)
    keys["id_first14"] = digits.where(digits.str.len() >= 14).str[:14]
    keys["id_last4"] = digits.where(digits.str.len().isin([15, 18])).str[-4:]
    return keys


def _surname_length_pairs(
    left_keys: pd.DataFrame, keys: pd.DataFrame, records: pd.DataFrame, persons: np.ndarray
) -> pd.DataFrame:
    """Pairs on the surname and length, where one of the two names has a placeholder: a row
    of the second pass (with a placeholder, or with neither number nor birth date) meets the
    rows of persons holding no row of its source: 肖* of the registry (a blank number) meets
    the enrolment 肖生 of a person not registered, not the enrolments of every registered 肖.
    ``left_keys`` and ``keys`` hold the rule's combined ``key`` (-1: no key) and the ``row``."""
    placeholder = records["placeholder"].to_numpy(dtype=bool)
    sources = records["source"].to_numpy(dtype=object)
    lhs = left_keys[left_keys["key"] >= 0]
    found = []
    for source, group in lhs.groupby(sources[lhs["row"].to_numpy()], sort=True):
        holds = np.zeros(len(records), dtype=bool)
        holds[persons[sources == source]] = True
        rhs = keys[~holds[persons] & (keys["key"].to_numpy() >= 0)]
        pairs = group.merge(rhs, on="key", suffixes=("_l", "_r"))[["row_l", "row_r"]]
        either = placeholder[pairs["row_l"].to_numpy()] | placeholder[pairs["row_r"].to_numpy()]
        found.append(pairs[either])
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame({"row_l": [], "row_r": []}, dtype=np.int64)


def candidate_pairs(
    records: pd.DataFrame, unresolved: np.ndarray, settings: LinkageSettings, cluster: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Pairs (left always a row of the second pass) agreeing on every key of some blocking
    rule (``cluster``: the persons of the first pass, for the rule on surname and length)."""
    keys = _blocking_keys(records)
    # Each key column as integer codes (-1: none), a rule's columns as one combined code:
    # joining on integers, not on strings hashed again for every rule.
    codes = {column: pd.factorize(keys[column], use_na_sentinel=True)[0] for column in keys.columns}
    rows = np.arange(len(records))
    numberless = (keys["id_digits"].isna().to_numpy() & records["birth_date"].isna().to_numpy())[unresolved]
    placeholder = records["placeholder"].to_numpy(dtype=bool)[unresolved]
    # On the side of the row being decided, some keys only for some rows (see _blocking_keys).
    left_only = {
        "placeholder_head": placeholder | numberless,
        "given_name": numberless,
        "name_ends": numberless,
        "surname_length": placeholder | numberless,
    }
    found: list[pd.DataFrame] = []
    counts: dict[str, int] = {}
    for rule in settings.blocking:
        columns = list(rule.keys)
        key = _combined(codes, columns)
        left_key = key[unresolved].copy()
        for column in columns:
            if column in left_only:
                left_key[~left_only[column]] = -1
        left_keys = pd.DataFrame({"key": left_key, "row": rows[unresolved]})
        if "surname_length" in columns:
            # The persons of the first pass; a row of the second pass is a person of its own.
            persons = first_pass_roots(np.where(unresolved, -1, -1 if cluster is None else cluster))
            pairs = _surname_length_pairs(left_keys, pd.DataFrame({"key": key, "row": rows}), records, persons)
        else:
            lhs = left_keys[left_key >= 0]
            rhs = pd.DataFrame({"key": key[key >= 0], "row": rows[key >= 0]})
            pairs = lhs.merge(rhs, on="key", suffixes=("_l", "_r"))[["row_l", "row_r"]]
        pairs = pairs[pairs["row_l"] != pairs["row_r"]]
        counts[rule.name] = len(pairs)
        log.info("blocking rule %s: %s candidate pairs", rule.name, f"{len(pairs):,}")
        found.append(pairs)
    if not found:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), counts
    pairs = pd.concat(found, ignore_index=True)
    low = np.minimum(pairs["row_l"].to_numpy(), pairs["row_r"].to_numpy())
    high = np.maximum(pairs["row_l"].to_numpy(), pairs["row_r"].to_numpy())
    unique = pd.DataFrame({"a": low, "b": high}).drop_duplicates()
    return unique["a"].to_numpy(), unique["b"].to_numpy(), counts


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
