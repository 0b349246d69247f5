"""Typed columns: what each column type becomes in staging, and the converter that gets it there.

Every column type of a source definition expands to one or more staging columns (an
identity number keeps its cleaned delivered text, validity, problem, birth date and sex
beside the number). :func:`standardise_values` applies the converters to one delivered
record and returns the staging values together with the problems found, each problem
naming the column; nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import compress, repeat
from operator import itemgetter
from typing import Any

from lookback.sources import DATE, ColumnSpec, SourceSpec, normalise_label
from lookback.standardise.codes import PROBLEM_WORDS as CODE_PROBLEM_WORDS
from lookback.standardise.codes import normalise_code
from lookback.standardise.dates import parse_date, parse_year, parse_year_month, plain_days
from lookback.standardise.identity import (
    PROBLEM_WORDS,
    mask_identity_number,
    normalise_identity_number,
    valid_as_typed,
    valid_once_cleaned,
)
from lookback.standardise.names import normalise_name
from lookback.standardise.numbers import parse_integer, parse_money
from lookback.standardise.places import CountyResolver, place_key

# Staging column kinds, mapped to SQL types by the warehouse.

Value = str | int | bool | date | Decimal | None


@dataclass(frozen=True)
class ValueProblem:
    """A value that could not be standardised, or a required one that is missing."""

    column: str  # canonical column
    header: str  # the delivered header
    problem: str  # e.g. identity_number:bad_check_character, code:unknown_value, missing_value
    message: str  # words for people; identity numbers masked
    raw_value: str  # the delivered text, kept in the warehouse only


# The values of a column's staging columns, in the order of ColumnSpec.staging_columns;
# the problem code; its words.
Converted = tuple[tuple[Value, ...], str | None, str]


def _text(column: ColumnSpec, raw: str, _: CountyResolver) -> Converted:
    return (raw.strip() or None,), None, ""


def _name(column: ColumnSpec, raw: str, _: CountyResolver) -> Converted:
    name = normalise_name(raw)
    return (name.name, raw or None, name.pinyin, name.has_placeholder), None, ""


# An identity number's staging values, in the order _identity gives them (and
# Standardiser._identity_numbers for the valid numbers it checks at once).
_IDENTITY_VALUES = ("number", "cleaned", "status", "problem", "birth_date", "sex")
_IDENTITY_BIRTH_DATE = _IDENTITY_VALUES.index("birth_date")


def _identity(column: ColumnSpec, raw: str, _: CountyResolver, *, text_cell: bool = False) -> Converted:
    found = normalise_identity_number(raw, text_cell=text_cell)
    values = (found.number, found.cleaned or None, found.status, found.problem, found.birth_date, found.sex)
    if found.problem and found.problem != "blank":
        return values, f"identity_number:{found.problem}", PROBLEM_WORDS[found.problem]
    return values, None, ""


def _code(column: ColumnSpec, raw: str, _: CountyResolver) -> Converted:
    label = raw.strip()
    if not label:
        return (None, None), None, ""
    code = column.code_for(label)
    if code is None:
        known = "、".join(delivered for delivered, _code in column.codes)
        return (code, label), "code:unknown_value", f"不在代码表中 (not one of: {known})"
    return (code, label), None, ""


def _code_list(column: ColumnSpec, raw: str, _: CountyResolver) -> Converted:
    label = raw.strip()
    if not label:
        return (None, None), None, ""
    parts = [part for part in normalise_label(label).replace("，", ",").replace("、", ",").split(",") if part]
    codes = [column.code_for(part) for part in parts]
    order = [code for _label, code in column.codes]
    known_codes = sorted({code for code in codes if code}, key=order.index)
    values = (",".join(known_codes) or None, label)
    unknown = [part for part, code in zip(parts, codes, strict=True) if code is None]
    if unknown:
        return values, "code:unknown_value", f"不在代码表中: {'、'.join(unknown)}"
    return values, None, ""


_DATE_PROBLEM_WORDS = {
    "impossible_date": "不存在的日期 (no such day in the calendar)",
    "excel_serial_out_of_range": "Excel 日期序号超出 1900–2099 年 (an Excel serial outside 1900-2099)",
    "excel_serial_1900_02_29": "Excel 日期序号 60 即不存在的 1900年2月29日 (serial 60: 29 February 1900 never was)",
}


def _date(column: ColumnSpec, raw: str, _: CountyResolver) -> Converted:
    parsed = parse_year_month(raw) if column.type == "year_month" else parse_date(raw)
    if parsed.problem:
        words = _DATE_PROBLEM_WORDS.get(parsed.problem, "无法识别的日期 (not a date in any known format)")
        return (None,), f"date:{parsed.problem}", words
    return (parsed.value,), None, ""


_RANGE_PROBLEM_WORDS = {
    "year_out_of_range": "年份不在 1900–2100 年之间 (a year outside 1900-2100)",
    "integer_out_of_range": "整数超出可存储范围 (a whole number too large to hold)",
    "amount_out_of_range": "金额达到或超过一万亿元 (an amount of a trillion yuan or more)",
}


def _parsed(
    parser: Callable[[str], tuple[Any, str | None]], words: str
) -> Callable[[ColumnSpec, str, CountyResolver], Converted]:
    def convert(column: ColumnSpec, raw: str, _: CountyResolver) -> Converted:
        value, problem = parser(raw)
        if problem:
            return (None,), f"{column.type}:{problem}", _RANGE_PROBLEM_WORDS.get(problem, words)
        return (value,), None, ""

    return convert


def _county(column: ColumnSpec, raw: str, resolver: CountyResolver) -> Converted:
    label = raw.strip()
    result = resolver.resolve(label)
    values = (result.county_code, label or None)
    if result.problem:
        return values, f"county:{result.problem}", "无法对应到县级区划代码 (no single county in the division table)"
    return values, None, ""


def _place(column: ColumnSpec, raw: str, _: CountyResolver) -> Converted:
    text = raw.strip() or None
    return (text, place_key(text)), None, ""


def _digits(column: ColumnSpec, raw: str, _: CountyResolver) -> Converted:
    found = normalise_code(raw, column.length)
    values = (found.value, found.cleaned or None, found.problem)
    if found.problem:
        return values, f"digits:{found.problem}", CODE_PROBLEM_WORDS[found.problem]
    return values, None, ""


CONVERTERS: Mapping[str, Callable[[ColumnSpec, str, CountyResolver], Converted]] = {
    "text": _text,
    "name": _name,
    "identity_number": _identity,
    "code": _code,
    "code_list": _code_list,
    "date": _date,
    "year_month": _date,
    "year": _parsed(parse_year, "无法识别的年份 (not a year)"),
    "integer": _parsed(parse_integer, "无法识别的整数 (not a whole number)"),
    "money": _parsed(parse_money, "无法识别的金额 (not an amount)"),
    "county": _county,
    "digits": _digits,
    "place": _place,
}


def _standardise_cell(
    column: ColumnSpec, raw: str, resolver: CountyResolver, text_cells: bool
) -> tuple[tuple[Value, ...], ValueProblem | None]:
    """One delivered text of a column: its staging values (in the order of its staging
    columns) and its problem, if any."""
    if column.type == "identity_number":
        converted, problem, words = _identity(column, raw, resolver, text_cell=text_cells)
    else:
        converted, problem, words = CONVERTERS[column.type](column, raw, resolver)
    if problem:
        shown = mask_identity_number(raw.strip()) if column.type == "identity_number" else raw.strip()
        return converted, ValueProblem(column.name, column.headers[0], problem, f"{words}: {shown!r}", raw)
    if column.required and not raw.strip():
        return converted, ValueProblem(
            column.name, column.headers[0], "missing_value", "必填项为空 (required value is blank)", raw
        )
    return converted, None


def standardise_values(
    spec: SourceSpec, delivered: Mapping[str, str], resolver: CountyResolver
) -> tuple[dict[str, Value], list[ValueProblem]]:
    """Convert one record's delivered texts (keyed by canonical column) to staging values."""
    values: dict[str, Value] = {}
    problems: list[ValueProblem] = []
    # A spreadsheet's number cell reaches here in the form Excel shows (4.31224E+17), so an
    # 18-digit text from a workbook was typed in a text cell and cannot have lost digits.
    text_cells = spec.text_cells
    for column in spec.columns:
        converted, problem = _standardise_cell(column, delivered.get(column.name, ""), resolver, text_cells)
        names = [name for name, _kind in column.staging_columns()]
        values.update(zip(names, converted, strict=True))
        if problem is not None:
            problems.append(problem)
    return values, problems


class Standardiser:
    """:func:`standardise_values` for the many records of one source, column by column.
    Each column's conversion depends on the delivered text alone, and texts repeat
    (counties, codes, dates, names, the head's identity number on every member's row), so
    each distinct text is converted once; a column's remembered texts are forgotten when
    they pass ``cache_size``, a column of identity numbers' after each chunk (it repeats
    little beyond a chunk). The texts a
    chunk brings new to a column are converted together: in a column of identity numbers,
    those that are valid numbers, as typed or once cleaned, are checked all at once
    (:meth:`_identity_numbers`), the others one by one.

    ``bind`` maps a staging column to what turns its value into the one the warehouse
    stores (a date into SQLite's text): applied once per distinct text rather than once
    per value, and to a date once per distinct day."""

    def __init__(
        self,
        spec: SourceSpec,
        resolver: CountyResolver,
        cache_size: int = 200_000,
        bind: Mapping[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        self.spec = spec
        self.resolver = resolver
        self.cache_size = cache_size
        self.text_cells = spec.text_cells
        self.columns = spec.columns
        staging = [column.staging_columns() for column in spec.columns]
        self._column_names = [tuple(name for name, _kind in columns) for columns in staging]
        # The staging columns, in the order of the values :meth:`convert` gives.
        self.names: tuple[str, ...] = tuple(name for names in self._column_names for name in names)
        bind = bind or {}
        # Per column, where in its values a bound one is and what binds it; a date is bound
        # once per day (birth dates repeat in columns whose texts do not).
        self._binds = [
            [
                (position, _PerValue(bind[name]) if kind == DATE else bind[name])
                for position, (name, kind) in enumerate(columns)
                if name in bind
            ]
            for columns in staging
        ]
        # Per column, whether its texts are remembered for one chunk only: an identity
        # number's recur little beyond the rows of its household, which come together, and
        # its valid texts are converted all at once again at little cost.
        self._per_chunk = [column.type == "identity_number" for column in spec.columns]
        # Per column, the staging values of the texts remembered, and those of them that have a problem.
        self._seen: list[dict[str, tuple[Any, ...]]] = [{} for _ in spec.columns]
        self._problems: list[dict[str, ValueProblem]] = [{} for _ in spec.columns]

    def _convert(self, index: int, raw: str) -> tuple[tuple[Any, ...], ValueProblem | None]:
        values, problem = _standardise_cell(self.columns[index], raw, self.resolver, self.text_cells)
        binds = self._binds[index]
        if binds:
            bound = list(values)
            for position, bind in binds:
                bound[position] = bind(bound[position])
            values = tuple(bound)
        return values, problem

    def _convert_new(self, index: int, raws: list[str]) -> tuple[dict[str, tuple[Any, ...]], dict[str, ValueProblem]]:
        """The staging values of texts of a column met for the first time, and the problems
        of those that have one."""
        converted: dict[str, tuple[Any, ...]] = {}
        if self.columns[index].type == "identity_number":
            converted = self._identity_numbers(index, raws)
            raws = [raw for raw in raws if raw not in converted]
        elif self.columns[index].type == "date":
            converted = self._plain_dates(index, raws)
            raws = [raw for raw in raws if raw not in converted]
        problems: dict[str, ValueProblem] = {}
        for raw in raws:
            converted[raw], problem = self._convert(index, raw)
            if problem is not None:
                problems[raw] = problem
        return converted, problems

    def _identity_numbers(self, index: int, raws: list[str]) -> dict[str, tuple[Any, ...]]:
        """The staging values of the texts of a column of identity numbers that are valid
        numbers, found all at once: first those typed as they should be
        (:func:`~lookback.standardise.identity.valid_as_typed`), then among the others those
        valid once cleaned (:func:`~lookback.standardise.identity.valid_once_cleaned`). The
        texts left (not valid, or in a form neither knows) are converted one by one, as any
        column's texts."""
        binds = dict(self._binds[index])
        bind_birth = binds.pop(_IDENTITY_BIRTH_DATE, None)
        if binds:  # values other than the birth date bound: one by one
            return {}
        texts, numbers, born, sexes = valid_as_typed(raws, text_cell=self.text_cells)
        found = set(texts)
        cleaned = valid_once_cleaned([raw for raw in raws if raw not in found], text_cell=self.text_cells)
        others, cleaned_numbers, cleaned_texts, cleaned_born, cleaned_sexes = cleaned
        born = born + cleaned_born
        bound: Sequence[Any] = born
        if isinstance(bind_birth, _PerValue):
            bound = bind_birth.many(born)
        elif bind_birth is not None:
            bound = list(map(bind_birth, born))
        values = zip(
            numbers + cleaned_numbers,
            numbers + cleaned_texts,  # a number valid as typed is its cleaned text
            repeat("valid"),
            repeat(None),
            bound,
            sexes + cleaned_sexes,
        )
        return dict(zip(texts + others, values, strict=True))

    def _plain_dates(self, index: int, raws: list[str]) -> dict[str, tuple[Any, ...]]:
        """The staging values of the texts of a date column written plainly
        (:func:`~lookback.standardise.dates.plain_days`): a day, without a problem (such a
        text is not blank, so not a missing required value), bound as the column binds it.
        The others are converted one by one, as any column's texts."""
        days = plain_days(raws)
        binds = self._binds[index]
        if not binds:
            return {raw: (day,) for raw, day in days.items()}
        ((_position, bind),) = binds
        return {raw: (bind(day),) for raw, day in days.items()}

    def convert(self, texts: Sequence[Sequence[str]]) -> tuple[list[Sequence[Any]], list[tuple[int, ValueProblem]]]:
        """Many records' staging values, column by column.

        ``texts`` holds, for each of the source's columns in order, the delivered texts of
        the records (empty for a column not delivered). Gives the values of each column of
        :attr:`names` in record order, and the problems with the index of their record, in
        record order and within a record in column order (as :func:`standardise_values`
        lists them)."""
        count = len(texts[0]) if texts else 0
        values: list[Sequence[Any]] = []
        found: list[tuple[int, int, ValueProblem]] = []
        for index, column in enumerate(texts):
            distinct = dict.fromkeys(column)
            if self._per_chunk[index]:  # remembered for this chunk only
                seen, with_problem = self._convert_new(index, list(distinct))
            elif new := [raw for raw in distinct if raw not in self._seen[index]]:
                seen, with_problem = self._seen[index], self._problems[index]
                if len(seen) + len(new) > self.cache_size:  # forget the texts this chunk does not hold
                    seen = self._seen[index] = {raw: seen[raw] for raw in distinct if raw in seen}
                    with_problem = self._problems[index] = {
                        raw: with_problem[raw] for raw in distinct if raw in with_problem
                    }
                converted, problems = self._convert_new(index, new)
                seen.update(converted)
                with_problem.update(problems)
            else:
                seen, with_problem = self._seen[index], self._problems[index]
            if count:
                values.extend(zip(*map(seen.__getitem__, column), strict=True))
            else:
                values.extend(() for _name in self._column_names[index])
            if with_problem and not with_problem.keys().isdisjoint(distinct):
                # Only the records with a problem are visited one by one.
                for row in compress(range(count), map(with_problem.__contains__, column)):
                    found.append((row, index, with_problem[column[row]]))
        found.sort(key=itemgetter(0, 1))
        return values, [(row, problem) for row, _index, problem in found]


class _PerValue:
    """``bind`` applied once per distinct value (of a kind whose equal values bind alike)."""

    def __init__(self, bind: Callable[[Any], Any]) -> None:
        self.bind = bind
        self.bound: dict[Any, Any] = {}

    def __call__(self, value: Any) -> Any:
        bound = self.bound
        if value not in bound:
            bound[value] = self.bind(value)
        return bound[value]

    def many(self, values: Sequence[Any]) -> list[Any]:
        bound = self.bound
        for value in set(values).difference(bound):
            bound[value] = self.bind(value)
        return list(map(bound.__getitem__, values))
