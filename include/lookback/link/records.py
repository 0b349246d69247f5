"""Linkage records: one frame of every source's rows in linkage field names, with the birth
date and sex each row is compared on."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from lookback.link.deterministic import COMPATIBLE, compatible
from lookback.standardise.dates import parse_date
from lookback.standardise.identity import number_ending_in_zeros
from lookback.warehouse import shared_strings

log = logging.getLogger(__name__)


def or_none(values: pd.Series, keep: Any) -> pd.Series:
    """``values`` as Python objects, None where ``keep`` is false (pandas would store NaN)."""
    kept = values.to_numpy(dtype=object).copy()
    kept[~np.asarray(keep, dtype=bool)] = None
    return pd.Series(kept, index=values.index, dtype=object)


def _digits(text: Any) -> str:
    """Identity text usable for comparison: digits (and a final X), certificate suffix dropped."""
    if not isinstance(text, str) or not text or "E" in text or "." in text:
        return ""
    if len(text) in (20, 22):
        text = text[:18]
    return text if re.fullmatch(r"\d{5,17}[\dX]?", text) else ""


def prepare_records(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One frame of linkage records from per-source frames already in linkage field names.


    Each source frame has ``source_row`` and any of: name, pinyin, placeholder, id (valid
    number), id_text (cleaned delivered text), id_birth_date, id_sex, sex, birth_date,
    county, village, household, household_head.
    """
    parts = []
    for source, frame in frames.items():
        empty = pd.Series([None] * len(frame), index=frame.index, dtype=object)

        def column(name: str, frame: pd.DataFrame = frame, empty: pd.Series = empty) -> pd.Series:
            return frame.get(name, empty)

        part = pd.DataFrame(
            {
                "source": pd.Series(source, index=frame.index, dtype=object),
                "source_row": frame["source_row"].astype(int),
            }
        )
        for name in ("name", "pinyin", "id", "county", "village", "programme"):
            part[name] = column(name)
        part["placeholder"] = [
            bool(value) if value == value and value is not None else False for value in column("placeholder")
        ]
        ids = or_none(part["id"], part["id"].notna())
        part["id_digits"] = _objects(
            [
                valid if isinstance(valid, str) else _digits(raw)
                for valid, raw in zip(ids, column("id_text"), strict=True)
            ],
            part.index,
        )
        part["birth_stated"] = _each_distinct(column("birth_date"), _date_key)
        part["id_birth"] = _each_distinct(column("id_birth_date"), _date_key)
        part["sex_stated"] = _each_distinct(column("sex"), _text)
        part["id_sex"] = _each_distinct(column("id_sex"), _text)
        part["relation"] = _each_distinct(column("relation"), _nonempty_text)
        part["schooling"] = _each_distinct(column("schooling"), _nonempty_text)
        # An enrolment (scheme and year): a person has one per scheme and year.
        part["enrolment"] = [
            f"{scheme}:{int(year)}" if isinstance(scheme, str) and year == year and year is not None else None
            for scheme, year in zip(column("scheme"), column("year"), strict=True)
        ]
        part["head_birth"] = _each_distinct(column("household_head"), _birth_digits_of_number)
        if "household" in frame:
            prefix, values = source, frame["household"]
        else:
            prefix, values = "head", column("household_head")
        part["household"] = _each_distinct(values, functools.partial(_household_key, prefix))
        parts.append(part)
    records = pd.concat(parts, ignore_index=True)
    for name in (
        "name",
        "pinyin",
        "id",
        "county",
        "village",
        "household",
        "birth_stated",
        "id_birth",
        "sex_stated",
        "id_sex",
    ):
        records[name] = or_none(records[name], records[name].notna())
    corroborate_numbers_ending_in_zeros(records)
    derive_birth_and_sex(records, np.zeros(len(records), dtype=bool))
    _head_births(records)
    for name in records.columns:
        if records[name].dtype == object:
            records[name] = shared_values(records[name])
    return records


def shared_values(values: pd.Series, pool: dict[Any, Any] | None = None) -> pd.Series:
    """``values`` with equal strings one object (``pool``: the objects to share, across the
    chunks of one column): read from the warehouse, each row held its own copy of its county,
    village, birth date (at a million persons, gigabytes)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if pool is None and len(uniques) == len(values):
        return values
    shared = shared_strings(values.to_numpy(dtype=object), codes, uniques, pool)
    return pd.Series(shared, index=values.index, dtype=object)


def corroborate_numbers_ending_in_zeros(records: pd.DataFrame) -> None:
    """Take as valid a number ending in ``000`` that passes every check when another
    department delivered the same 18 digits for a name that fits: Excel's damage does not
    repeat alike in two departments' systems, while a real number (one in 1,100 ends in 000)
    does. Uncorroborated, it stays suspect (no number)."""
    texts = records["id_digits"].to_numpy(dtype=object)
    found = {text: number_ending_in_zeros(text) for text in set(texts[records["id"].isna().to_numpy()]) if text}
    suspects = {text: number for text, number in found.items() if number is not None}
    if not suspects:
        return
    digits = records["id"].where(records["id"].notna(), records["id_digits"]).to_numpy(dtype=object)
    frame = pd.DataFrame(
        {
            "row": np.arange(len(records)),
            "digits": digits,
            "source": records["source"],
            "name": records["name"],
            "pinyin": records["pinyin"],
        }
    )
    frame = frame[frame["digits"].isin(list(suspects))]
    corroborated: list[int] = []
    for _digits, group in frame.groupby("digits", sort=False):
        if group["source"].nunique() < 2:
            continue
        names, pinyin = group["name"].to_numpy(dtype=object), group["pinyin"].to_numpy(dtype=object)
        sources = group["source"].to_numpy(dtype=object)
        for k, row in enumerate(group["row"].to_numpy()):
            if any(
                sources[other] != sources[k]
                and isinstance(names[k], str)
                and isinstance(names[other], str)
                and compatible(names[k], pinyin[k], names[other], pinyin[other]) == COMPATIBLE
                for other in range(len(group))
            ):
                corroborated.append(int(row))
    if not corroborated:
        return
    numbers = [suspects[texts[row]] for row in corroborated]
    records.loc[corroborated, "id"] = [number.number for number in numbers]
    records.loc[corroborated, "id_digits"] = [number.number for number in numbers]
    records.loc[corroborated, "id_birth"] = [_date_key(number.birth_date) for number in numbers]
    records.loc[corroborated, "id_sex"] = [number.sex for number in numbers]
    log.info("%s numbers ending in 000 corroborated by another department", f"{len(corroborated):,}")


def _head_births(records: pd.DataFrame) -> None:
    """A registry row's head birth date: that of its household's head row (by its valid number)."""
    heads = records[(records["relation"] == "head") & records["household"].notna() & records["id_birth"].notna()]
    by_household = heads.drop_duplicates("household").set_index("household")["id_birth"]
    known = records["household"].map(by_household).tolist()
    records["head_birth"] = _objects(
        [
            a if a else (b if isinstance(b, str) else None)
            for a, b in zip(records["head_birth"].tolist(), known, strict=True)
        ],
        records.index,
    )


def derive_birth_and_sex(records: pd.DataFrame, foreign: np.ndarray) -> None:
    """Birth date and sex for comparison: from the row's valid number unless it is someone
    else's; else as stated in the row."""
    away_rows = np.asarray(foreign, dtype=bool).tolist()  # plain lists: read row by row
    id_birth = [None if away else value for away, value in zip(away_rows, records["id_birth"].tolist(), strict=True)]
    id_sex = [None if away else value for away, value in zip(away_rows, records["id_sex"].tolist(), strict=True)]
    # Else the birth date that the surviving digits of an invalid number still give (a wrong
    # check character, digits lost to Excel's zeros, often a transposition): compare_pairs
    # leaves it out where the two numbers nearly agree, so one fault is not counted twice.
    # Read only for rows with neither of the others (most rows have a valid number).
    stated = records["birth_stated"].tolist()
    digits = records["id_digits"].tolist()
    digits_birth = [
        None if a or b or away else _birth_in_digits(text)
        for a, b, away, text in zip(id_birth, stated, away_rows, digits, strict=True)
    ]
    births = [a or b or c for a, b, c in zip(id_birth, stated, digits_birth, strict=True)]
    records["birth_date"] = _objects(births, records.index)
    records["birth_from_digits"] = [
        not a and not b and c is not None for a, b, c in zip(id_birth, stated, digits_birth, strict=True)
    ]
    records["sex"] = _objects(
        [a or b for a, b in zip(id_sex, records["sex_stated"].tolist(), strict=True)], records.index
    )


def _birth_in_digits(digits: Any) -> str | None:
    """``YYYYMMDD`` from the birth-date digits of an 18-digit text, when they are a date."""
    if not isinstance(digits, str) or len(digits) != 18:
        return None
    return _date_digits(digits[6:14])


@functools.cache
def _date_digits(key: str) -> str | None:
    """``key`` when its eight digits are a date (birth dates repeat: each is checked once)."""
    parsed = parse_date(key) if key.isdigit() and "1900" <= key[:4] <= "2099" else None
    return key if parsed is not None and parsed.value is not None else None


def _each_distinct(values: pd.Series, convert: Callable[[Any], Any]) -> list[Any]:
    """``convert`` of each value (of None for a missing one), called once per distinct value:
    the columns repeat (birth dates, sexes, relations, households' keys)."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
    converted = [convert(value) for value in uniques.tolist()]
    converted.append(convert(None))  # code -1: missing
    table = np.empty(len(converted), dtype=object)
    table[:] = converted
    result: list[Any] = table[codes].tolist()
    return result


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _nonempty_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _birth_digits_of_number(value: Any) -> str | None:
    """The birth-date digits of an 18-character number (a household head's)."""
    return value[6:14] if isinstance(value, str) and len(value) == 18 else None


def _household_key(prefix: str, value: Any) -> str | None:
    return f"{prefix}:{value}" if isinstance(value, str) and value else None


def _objects(values: list[Any], index: pd.Index) -> pd.Series:
    """A column of Python objects, None for missing (pandas would otherwise store NaN in strings)."""
    return pd.Series(values, index=index, dtype=object)


def _date_key(value: Any) -> str | None:
    if isinstance(value, date):
        return _day_key(value)
    if isinstance(value, str) and value:
        parsed = parse_date(value)
        return parsed.value.strftime("%Y%m%d") if parsed.value else None
    return None


@functools.cache
def _day_key(day: date) -> str:
    return day.strftime("%Y%m%d")


def same_written_number(records: pd.DataFrame, twin_of: np.ndarray, unresolved: np.ndarray) -> np.ndarray:
    """``twin_of`` with rows of the second pass of one name carrying the same 18 digits (a
    number that is not valid, with a wrong check character kept from row to row, or one set
    aside as someone else's: a child listed twice under a parent's number) made twins of the
    first of them: they are one person, decided once."""
    if not {"id_digits", "name"} <= set(records.columns):
        return twin_of
    digits = records["id_digits"].to_numpy(dtype=object)
    names = records["name"].to_numpy(dtype=object)
    written = unresolved & pd.notna(names) & (records["id_digits"].str.len() == 18).to_numpy()
    twin_of = twin_of.copy()
    if not written.any():
        return twin_of
    frame = pd.DataFrame({"row": np.flatnonzero(written), "digits": digits[written], "name": names[written]})
    frame = frame[twin_of[frame["row"].to_numpy()] == frame["row"].to_numpy()]  # not already a twin
    first = frame.groupby(["digits", "name"], sort=False)["row"].transform("min").to_numpy()
    twin_of[frame["row"].to_numpy()] = first
    return twin_of


# What a row says about its person; two rows of one source saying the same are one row
# delivered twice.
_CONTENT_COLUMNS = (
    "source",
    "name",
    "id_digits",
    "birth_stated",
    "sex_stated",
    "county",
    "village",
    "household",
    "relation",
    "enrolment",
)


def duplicate_of(records: pd.DataFrame) -> np.ndarray:
    """Per row, the first row with the same content (itself when it has no twin); a missing
    value and an empty text are the same content.

    Each column is numbered by its distinct values and the numbers combined column by column
    into one number per distinct content, renumbered after each column so that it stays below
    the row count: grouping the rows by ten object columns at once cost 1.2 s at 100,000
    persons, the numbering 0.75 s."""
    content = np.zeros(len(records), dtype=np.int64)
    for column in (column for column in _CONTENT_COLUMNS if column in records):
        codes, uniques = pd.factorize(records[column].to_numpy(dtype=object), use_na_sentinel=True)
        empty = np.flatnonzero(np.asarray(uniques, dtype=object) == "")
        codes = np.where(codes < 0, empty[0] if len(empty) else len(uniques), codes).astype(np.int64)
        content, _ = pd.factorize(content * (len(uniques) + 1) + codes)
    _, first_rows = np.unique(content, return_index=True)
    return first_rows[content].astype(np.int64)
