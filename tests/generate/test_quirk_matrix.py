"""The quirk matrix: every quirk of real exports, in every column where it can physically occur.

The matrix is written out below by hand from ``docs/inputs.md`` (the column
tables and "What real exports look like"), not read from the generator's tables: one case
per (source, delivered header, written form), so a missing cell names itself. Each cell is
looked for in the delivered file itself (the CSV text, or the XLSX cells with their types)
wherever the text shows it; the truth's per-cell record (``rows.csv`` ``quirks``) is read
only for what the text cannot show: a homophone or a look-alike character, someone else's
or a parent's number, which mistyping broke a check character, the other reading of a rare
character.

The batch is the ``hard`` profile with every per-cell rate raised, over a population edited
so that even the smallest export (hukou: a fifth of the other residents cancelled) and the
rarest columns (停发日期, minority names, surnames with special readings) hold enough rows
for every cell to show. The profile's own rates are checked in ``test_batch.py``; this test
checks that nothing is left out.
"""

from __future__ import annotations

import csv
import random
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest

from lookback.generate.batch import _build_population, _exports, _write_exports
from lookback.generate.exports import Export, RowTruth
from lookback.generate.people import Household, Person
from lookback.generate.profiles import PROFILES

AS_OF = date(2020, 6, 30)
SEED = 2020
COUNTIES = ("431230", "431224", "433130")  # 通道侗族自治县, 溆浦县, 龙山县

MATRIX_PROFILE = replace(
    PROFILES["hard"],
    name="hard, every per-cell rate raised",
    identity=MappingProxyType(
        {
            "disability_certificate": 0.05,
            "lower_case_x": 0.5,
            "full_width": 0.05,
            "padded": 0.16,
            "fifteen_digits": 0.05,
            "wrong_check_character": 0.05,
            "transposed": 0.05,
            "blank": 0.05,
            "excel_scientific": 0.05,
            "excel_zeros": 0.05,
            "someone_elses": 0.05,
            "parent_number": 0.3,
        }
    ),
    names=MappingProxyType(
        {"homophone": 0.12, "similar_shape": 0.12, "traditional": 0.1, "rare_character": 0.1, "spaces": 0.2}
    ),
    codes=MappingProxyType({"padded": 0.2, "full_width": 0.08, "excel_scientific": 0.08, "excel_zeros": 0.08}),
    dot_variant=0.9,
    rare_character_persons=0.3,
    rare_forms=MappingProxyType(
        {
            "keep": 0.1,
            "question_mark": 0.18,
            "asterisk": 0.18,
            "pinyin_lower": 0.18,
            "pinyin_upper": 0.18,
            "pinyin_title": 0.18,
        }
    ),
    formats=0.95,
    blank_row=0.03,
    duplicate_row=0.03,
    broken_row=0.03,
)

ENCODINGS = {"registry": "gb18030", "insurance": "utf-8-sig", "housing": "gb18030", "hukou": "utf-8"}
FILES = {
    "registry": "registry_members.csv",
    "dibao": "dibao_roster.xlsx",
    "insurance": "insurance_enrolment.csv",
    "housing": "housing_safety.csv",
    "hukou": "hukou_cancellations.csv",
}
SPECIAL_SURNAMES = {
    "曾": "增",
    "单": "善",
    "解": "谢",
    "仇": "求球",
    "区": "欧",
    "朴": "瓢",
    "查": "渣",
    "覃": "秦琴",
}  # surname → the characters of its spoken reading
MINORITY_NAMES = ("热依拉·艾力", "古丽·依明", "努尔·吐尔逊")
RARE_EXAMPLES = "玥堃喆昇赟珺琎犇淼垚甦翀祎旻炜"  # sources.md and the examples


def _edit_population(households: list[Household]) -> None:
    """More rows where the exports are small: deaths (hukou), stopped allowances (停发日期),
    minority names with a middle dot, and surnames with special readings."""
    rng = random.Random(SEED)
    for household in households:
        if household.dibao_category and rng.random() < 0.3:
            household.dibao_status = "停发"
        for person in household.members:
            if household.kind == "other" and not person.died_on and rng.random() < 0.2:
                person.died_on = AS_OF - timedelta(days=rng.randrange(10, 300))
            draw = rng.random()
            if draw < 0.05:
                person.name = rng.choice(MINORITY_NAMES)
            elif draw < 0.15:
                person.name = rng.choice(list(SPECIAL_SURNAMES)) + person.name[1:]


Cell = str | int | float | datetime


@dataclass
class Delivery:
    """One delivered file as read back: header, records below it, title rows above it."""

    source: str
    header: list[str]
    records: list[list[Cell]]  # every record below the header, cells as delivered ("" when empty)
    title_rows: int
    truths: list[RowTruth]

    def whole(self) -> list[tuple[int, list[Cell]]]:
        """(source_row, record) of the records about someone with the header's width: not
        broken, not blank, not a total line, not a note in an otherwise empty row."""
        width = len(self.header)
        return [
            (number, record)
            for number, record in enumerate(self.records, start=1)
            if len(record) == width
            and any(cell != "" for cell in record[:-1])
            and not str(next(cell for cell in record if cell != "")).startswith("合计")
        ]

    def column(self, header: str) -> list[tuple[int, list[Cell], Cell]]:
        index = self.header.index(header)
        return [(number, record, record[index]) for number, record in self.whole()]

    def values(self, header: str) -> list[Cell]:
        return [value for _number, _record, value in self.column(header)]


def _read_csv(path: Path, source: str) -> tuple[list[str], list[list[Cell]], int]:
    with path.open(encoding=ENCODINGS[source], newline="") as handle:
        rows: list[list[str]] = list(csv.reader(handle))
    return rows[0], [list(row) for row in rows[1:]], 0


def _as_cell(value: object) -> Cell:
    """A sheet cell as read: text, a number, a date cell, or "" when empty."""
    if value is None:
        return ""
    assert isinstance(value, str | int | float | datetime), repr(value)
    return value


def _read_xlsx(path: Path) -> tuple[list[str], list[list[Cell]], int]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True)
    rows = [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]
    workbook.close()
    at = next(index for index, row in enumerate(rows) if row and row[0] == "区县")  # sources.md: find the header
    header = [str(cell) for cell in rows[at] if cell is not None]
    records = [[_as_cell(cell) for cell in row] for row in rows[at + 1 :]]
    for record in records:  # the width the header has, unless a value stands beyond it
        while len(record) > len(header) and record[-1] == "":
            record.pop()
        record.extend([""] * (len(header) - len(record)))
    return header, records, at


@dataclass
class MatrixBatch:
    deliveries: dict[str, Delivery]
    people: dict[str, Person]  # the true state, by person key


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> MatrixBatch:
    folder = tmp_path_factory.mktemp("matrix") / "landing"
    households, _planted = _build_population(
        4000, SEED, AS_OF, COUNTIES, rare_characters=MATRIX_PROFILE.rare_character_persons
    )
    _edit_population(households)
    exports: list[Export] = _exports(households, MATRIX_PROFILE, AS_OF, SEED, SEED)[0]
    _write_exports(folder, exports, households, AS_OF)
    deliveries: dict[str, Delivery] = {}
    for export in exports:
        path = folder / FILES[export.source]
        header, records, titles = _read_xlsx(path) if path.suffix == ".xlsx" else _read_csv(path, export.source)
        assert len(records) == len(export.truths), export.source  # a record for every row of the truth
        deliveries[export.source] = Delivery(export.source, header, records, titles, export.truths)
    people = {person.key: person for household in households for person in household.members}
    return MatrixBatch(deliveries, people)


@pytest.fixture(scope="module")
def delivered(batch: MatrixBatch) -> dict[str, Delivery]:
    return batch.deliveries


# --- what a form looks like in the text ----------------------------------------------------
Check = Callable[[Delivery, str], bool]


def _text(predicate: Callable[[str], bool]) -> Check:
    """Some text cell of the column satisfies ``predicate``."""
    return lambda delivery, header: any(isinstance(v, str) and predicate(v) for v in delivery.values(header))


def _cell(predicate: Callable[[Cell], bool]) -> Check:
    """Some cell of the column (of any type) satisfies ``predicate``."""
    return lambda delivery, header: any(predicate(v) for v in delivery.values(header))


def _recorded(form: str) -> Check:
    """The truth records ``form`` for a cell of this column (for what the text cannot show)."""

    def check(delivery: Delivery, header: str) -> bool:
        column = COLUMN_NAMES[(delivery.source, header)]
        return any(f"{column}:{form}" in truth.quirks.split(";") for truth in delivery.truths)

    return check


def _blank_among_filled(subject_header: str) -> Check:
    """A blank cell in a row whose subject column is filled (not a blank or total line)."""

    def check(delivery: Delivery, header: str) -> bool:
        subject = delivery.header.index(subject_header)
        return any(value == "" and record[subject] != "" for _n, record, value in delivery.column(header))

    return check


def _is_digits(value: str, length: int) -> bool:
    return len(value) == length and value.isdigit()


def _scientific(value: str) -> bool:
    return re.fullmatch(r"\d\.\d+E\+\d+", value) is not None


def _zeros_beside_intact(delivery: Delivery, header: str) -> bool:
    """A 户编号 whose last digits became 000 while another row keeps its first 15 digits
    with other digits after them: the text itself shows the damage."""
    values = [v for v in delivery.values(header) if isinstance(v, str) and v.isdigit() and len(v) > 15]
    intact = {v[:15] for v in values if not v.endswith("000")}
    return any(v.endswith("000") and v[:15] in intact for v in values)


def _subsidy_blank(delivery: Delivery, header: str) -> bool:
    """A renovated unsafe house (a subsidy was paid) with its 补助资金 blank."""
    level, status = delivery.header.index("房屋鉴定等级"), delivery.header.index("改造状态")
    return any(
        value == "" and record[level] in {"C", "D"} and record[status] in {"已竣工", "已验收"}
        for _n, record, value in delivery.column(header)
    )


# Traditional forms of characters common in the province's names (劉, 陳 in sources.md).
TRADITIONAL = "劉陳張楊黃羅鄧譚吳龍賀蔣藍偉靜麗強軍豔傑濤華蘭剛紅國輝雲鳳"


def _traditional(value: str) -> bool:
    return any(character in TRADITIONAL for character in value)


def _xlsx_number(value: Cell) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


HAN = "[\u3400-\u9fff]"
PROTECTIONS: dict[str, Check] = {
    "apostrophe": _text(lambda v: v.startswith("'")),
    "tab": _text(lambda v: v.startswith("\t")),
    "literal backslash-t": _text(lambda v: v.startswith("\\t")),
    "spaces": _text(lambda v: " " in v.strip("\t") or v.startswith(" ")),
    "full-width digits": _text(lambda v: re.search("[０-９]", v) is not None),
}
IDENTITY_FORMS: dict[str, Check] = {
    **PROTECTIONS,
    "lower-case x": _text(lambda v: re.fullmatch(r"\d{17}x", v) is not None),
    "disability certificate (20 or 22 characters)": _text(lambda v: len(v) in (20, 22) and v[:17].isdigit()),
    "15 digits": _text(lambda v: _is_digits(v, 15)),
    "Excel scientific (4.31224E+17)": _text(_scientific),
    "wrong check character": _recorded("wrong_check_character"),
    "two digits transposed": _recorded("transposed"),
    "someone else's number": _recorded("someone_elses"),
}
CSV_EXCEL_ZEROS: Check = _text(lambda v: _is_digits(v, 18) and v.endswith("000"))
XLSX_NUMBER: Check = _cell(_xlsx_number)
NAME_FORMS: dict[str, Check] = {
    "homophone": _recorded("homophone"),
    "similar shape": _recorded("similar_shape"),
    "traditional characters": _text(_traditional),
    "rare character kept": _text(lambda v: any(character in v for character in RARE_EXAMPLES)),
    "rare character as ?": _text(lambda v: "?" in v),
    "rare character as *": _text(lambda v: "*" in v),
    "rare character as lower-case pinyin": _text(lambda v: re.search(HAN + "[a-z]{2,}", v) is not None),
    "rare character as upper-case pinyin": _text(lambda v: re.search("[A-Z]{2,}", v) is not None),
    "rare character as title-case pinyin": _text(lambda v: re.search("[A-Z][a-z]+", v) is not None),
    "rare character in its other reading": _recorded("rare_other_reading"),
    "stray space": _text(lambda v: " " in v),
    "full-width space": _text(lambda v: "\u3000" in v),
    "middle dot U+00B7": _text(lambda v: "\u00b7" in v),
    "middle dot U+30FB": _text(lambda v: "\u30fb" in v),
    "bullet •": _text(lambda v: "\u2022" in v),
    "full stop .": _text(lambda v: re.search(HAN + r"\." + HAN, v) is not None),
    "full-width full stop ．": _text(lambda v: "\uff0e" in v),
}
DATE_FORMS: dict[str, Check] = {
    "YYYY-MM-DD": _text(lambda v: re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) is not None),
    "YYYY/M/D": _text(lambda v: re.fullmatch(r"\d{4}/\d{1,2}/\d{1,2}", v) is not None),
    "YYYYMMDD": _text(lambda v: re.fullmatch(r"\d{8}", v) is not None),
    "YYYY年M月D日": _text(lambda v: re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日", v) is not None),
    "Excel serial number": _text(lambda v: re.fullmatch(r"\d{5}", v) is not None),
    "datetime with a time part": _text(lambda v: re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", v) is not None),
}
XLSX_DATE_FORMS: dict[str, Check] = {
    **DATE_FORMS,
    "Excel serial number": _cell(lambda v: isinstance(v, int) and 10000 <= v <= 99999),
    "native date cell": _cell(lambda v: isinstance(v, datetime)),
}
MONTH_FORMS: dict[str, Check] = {
    "2018-07": _text(lambda v: re.fullmatch(r"\d{4}-\d{2}", v) is not None),
    "201807": _text(lambda v: re.fullmatch(r"\d{6}", v) is not None),
    "2018年7月": _text(lambda v: re.fullmatch(r"\d{4}年\d{1,2}月", v) is not None),
    "native date cell": _cell(lambda v: isinstance(v, datetime)),
}
COUNTY_FULL = ("通道侗族自治县", "溆浦县", "龙山县")
COUNTY_SHORT = ("通道县", "通道", "溆浦", "龙山")
PREFECTURES = ("怀化市", "湘西土家族苗族自治州")
COUNTY_FORMS: dict[str, Check] = {
    "full name": _cell(lambda v: v in COUNTY_FULL),
    "short name": _cell(lambda v: v in COUNTY_SHORT),
    "with its prefecture": _text(lambda v: v.startswith(PREFECTURES) and v.endswith(COUNTY_FULL)),
    "6-digit code": _cell(lambda v: _is_digits(str(v), 6)),
}
PLACE_FORMS: dict[str, Check] = {
    "full name": _text(lambda v: v.endswith(("市", "州", "镇", "乡", "街道", "村"))),
    "short name": _text(lambda v: bool(v) and not v.endswith(("市", "州", "镇", "乡", "街道", "村", "场"))),
}
NUMBER_FORMS: dict[str, Check] = {
    "decimals": _text(lambda v: re.fullmatch(r"\d+\.\d+", v) is not None),
    "元 suffix": _text(lambda v: v.endswith("元")),
    "-": _text(lambda v: v == "-"),
}
THOUSANDS: Check = _text(lambda v: re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", v) is not None)

# Headers holding a canonical column the truth's per-cell record names.
COLUMN_NAMES = {
    ("registry", "证件号码"): "identity_number",
    ("dibao", "户主身份证号"): "head_identity_number",
    ("dibao", "成员身份证号"): "identity_number",
    ("insurance", "公民身份号码"): "identity_number",
    ("housing", "户主身份证号"): "head_identity_number",
    ("hukou", "公民身份号码"): "identity_number",
    ("registry", "姓名"): "name",
    ("dibao", "户主姓名"): "head_name",
    ("dibao", "成员姓名"): "name",
    ("insurance", "姓名"): "name",
    ("housing", "户主姓名"): "head_name",
    ("hukou", "姓名"): "name",
}
# The name column beside each identity column (a blank number is told from a blank line by it).
NAME_BESIDE = {
    ("registry", "证件号码"): "姓名",
    ("dibao", "户主身份证号"): "户主姓名",
    ("dibao", "成员身份证号"): "成员姓名",
    ("insurance", "公民身份号码"): "姓名",
    ("housing", "户主身份证号"): "户主姓名",
    ("hukou", "公民身份号码"): "姓名",
}

# --- the matrix ----------------------------------------------------------------------------
IDENTITY_COLUMNS = list(NAME_BESIDE)
NAME_COLUMNS = [key for key, column in COLUMN_NAMES.items() if column.endswith("name")]
# Every other long digit code: 户编号 (18 digits), 村代码 (12), 联系电话 (11), and county codes (6).
CODE_COLUMNS = [
    ("registry", "户编号"),
    ("registry", "村代码"),
    ("registry", "联系电话"),
    ("registry", "县市区"),
    ("dibao", "区县"),
    ("insurance", "参保地行政区划"),
    ("housing", "县（市、区）"),
    ("hukou", "户籍地行政区划代码"),
]
DATE_COLUMNS = [
    ("dibao", "停发日期"),
    ("insurance", "出生日期"),
    ("housing", "鉴定日期"),
    ("housing", "竣工日期"),
    ("hukou", "注销日期"),
]
COUNTY_COLUMNS = [
    ("registry", "县市区"),
    ("dibao", "区县"),
    ("insurance", "参保地行政区划"),
    ("housing", "县（市、区）"),
    ("hukou", "户籍地行政区划代码"),
]
PLACE_COLUMNS = [
    ("registry", "市州"),
    ("registry", "乡镇"),
    ("registry", "行政村"),
    ("dibao", "乡镇"),
    ("dibao", "村（社区）"),
    ("housing", "乡镇"),
    ("housing", "村"),
]
AMOUNT_COLUMNS = [("dibao", "月保障金（元）"), ("insurance", "个人缴费金额（元）"), ("housing", "补助资金（元）")]
COUNT_COLUMNS = [("dibao", "保障人数"), ("housing", "家庭人口数")]


def _identity_cells() -> list[tuple[str, str, str, Check]]:
    cells = []
    for source, header in IDENTITY_COLUMNS:
        forms = dict(IDENTITY_FORMS)
        forms["blank"] = _blank_among_filled(NAME_BESIDE[(source, header)])
        if source == "dibao":  # Excel's 15 digits: in a sheet, a number cell
            forms["number cell (digits past the 15th lost)"] = XLSX_NUMBER
        else:
            forms["last three digits 000"] = CSV_EXCEL_ZEROS
        if header != "户主身份证号" or source == "housing":  # the roster's head is no child
            forms["a parent's number for a child"] = _recorded("parent_number")
        cells += [(source, header, form, check) for form, check in forms.items()]
    return cells


def _code_cells() -> list[tuple[str, str, str, Check]]:
    cells = []
    for source, header in CODE_COLUMNS:
        forms = dict(PROTECTIONS)
        if source == "dibao":
            forms["number cell"] = XLSX_NUMBER
        if header in {"户编号", "村代码"}:  # 12 digits or more: Excel shows 4.31224E+11
            forms["Excel scientific"] = _text(_scientific)
        if header == "户编号":  # more than 15 digits
            forms["last digits 000"] = _zeros_beside_intact
        cells += [(source, header, form, check) for form, check in forms.items()]
    return cells


def _format_cells() -> list[tuple[str, str, str, Check]]:
    cells = []
    for source, header in DATE_COLUMNS:
        forms = XLSX_DATE_FORMS if source == "dibao" else DATE_FORMS
        cells += [(source, header, form, check) for form, check in forms.items()]
    cells += [("dibao", "享受起始年月", form, check) for form, check in MONTH_FORMS.items()]
    for source, header in COUNTY_COLUMNS:
        cells += [(source, header, form, check) for form, check in COUNTY_FORMS.items()]
    for source, header in PLACE_COLUMNS:
        cells += [(source, header, form, check) for form, check in PLACE_FORMS.items()]
    for source, header in AMOUNT_COLUMNS:
        forms = dict(NUMBER_FORMS)
        forms["blank"] = _subsidy_blank if header == "补助资金（元）" else _text(lambda v: v == "")
        if header != "个人缴费金额（元）":  # 280 yuan at most: no thousands to separate
            forms["thousands separator"] = THOUSANDS
        if source == "dibao":
            forms["number cell"] = XLSX_NUMBER
        cells += [(source, header, form, check) for form, check in forms.items()]
    for source, header in COUNT_COLUMNS:
        forms = {"decimals": NUMBER_FORMS["decimals"], "-": NUMBER_FORMS["-"], "blank": _text(lambda v: v == "")}
        cells += [(source, header, form, check) for form, check in forms.items()]
    return cells


MATRIX = [
    *_identity_cells(),
    *[(source, header, form, check) for source, header in NAME_COLUMNS for form, check in NAME_FORMS.items()],
    *_code_cells(),
    *_format_cells(),
]


@pytest.mark.parametrize(
    ("source", "header", "form", "check"), MATRIX, ids=[f"{s}-{h}-{f}" for s, h, f, _check in MATRIX]
)
def test_quirk_occurs(delivered: dict[str, Delivery], source: str, header: str, form: str, check: Check) -> None:
    assert check(delivered[source], header), f"{source} {header}: no cell written as {form}"


# --- whole rows ----------------------------------------------------------------------------
def _duplicated(delivery: Delivery) -> bool:
    seen: set[tuple[str, ...]] = set()
    for record in delivery.records:
        key = tuple(str(cell) for cell in record)
        if any(cell != "" for cell in record) and key in seen:
            return True
        seen.add(key)
    return False


def _total_at_bottom(delivery: Delivery) -> bool:
    last = next(str(cell) for cell in delivery.records[-1] if cell != "")
    return last.startswith("合计")


ROW_FORMS: dict[str, Callable[[Delivery], bool]] = {
    "duplicated row": _duplicated,
    "total line at the bottom": _total_at_bottom,
}
CSV_ROW_FORMS: dict[str, Callable[[Delivery], bool]] = {
    "empty line": lambda d: any(record == [] for record in d.records),
    "line of bare commas": lambda d: any(len(r) == len(d.header) and all(c == "" for c in r) for r in d.records),
    "a delimiter missing": lambda d: any(len(record) == len(d.header) - 1 for record in d.records),
}
XLSX_ROW_FORMS: dict[str, Callable[[Delivery], bool]] = {
    "empty sheet row": lambda d: any(all(cell == "" for cell in record) for record in d.records),
    "cells shifted right": lambda d: any(len(record) > len(d.header) for record in d.records),
    "title rows above the header": lambda d: d.title_rows >= 1,
}
ROW_MATRIX = [
    (source, form, check)
    for source in FILES
    for form, check in {**ROW_FORMS, **(XLSX_ROW_FORMS if source == "dibao" else CSV_ROW_FORMS)}.items()
]


@pytest.mark.parametrize(("source", "form", "check"), ROW_MATRIX, ids=[f"{s}-{f}" for s, f, _check in ROW_MATRIX])
def test_row_quirk_occurs(
    delivered: dict[str, Delivery], source: str, form: str, check: Callable[[Delivery], bool]
) -> None:
    assert check(delivered[source]), f"{source}: no {form}"


# --- names: special readings, and one person written differently by each department ----------
@pytest.mark.parametrize("surname", list(SPECIAL_SURNAMES))
def test_surnames_with_special_readings_are_typed_as_heard(batch: MatrixBatch, surname: str) -> None:
    """曾 typed 增, 单 typed 善, …: in some subject's name column, in any source."""
    heard = SPECIAL_SURNAMES[surname]
    for (source, header), column in COLUMN_NAMES.items():
        if column != "name" and (source, header) != ("housing", "户主姓名"):
            continue
        delivery = batch.deliveries[source]
        for number, _record, value in delivery.column(header):
            person = batch.people.get(delivery.truths[number - 1].person_key)
            if person and person.name.startswith(surname) and isinstance(value, str) and value[:1] in heard:
                return
    pytest.fail(f"{surname} never typed as {heard}")


def test_each_department_writes_a_rare_character_its_own_way(delivered: dict[str, Delivery]) -> None:
    """Within a department every row of a person writes the rare character the same way;
    across departments the same person is written differently (李玥, 李?, 李YUE)."""
    forms: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for source, delivery in delivered.items():
        column = "head_name" if source == "housing" else "name"
        for truth in delivery.truths:
            if truth.row_kind not in {"data", "duplicate"}:
                continue
            items = sorted(
                quirk
                for quirk in truth.quirks.split(";")
                if quirk.startswith(f"{column}:rare_") and quirk != f"{column}:rare_character"
            )
            forms[truth.person_key][source].add(";".join(item.split(":")[1] for item in items) or "kept")
    rare = {key: by_source for key, by_source in forms.items() if any(seen != {"kept"} for seen in by_source.values())}
    inconsistent = [
        (key, source) for key, by_source in rare.items() for source, seen in by_source.items() if len(seen) > 1
    ]
    assert inconsistent == []
    varied = [key for key, by_source in rare.items() if len({min(seen) for seen in by_source.values()}) >= 3]
    assert varied, "nobody written three ways by three departments"
