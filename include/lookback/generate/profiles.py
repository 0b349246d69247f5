"""Noise profiles: how often each quirk of real exports is applied when a batch is written.

Every quirk is applied in every column where it can physically occur: identity-number
quirks in every identity column (the allowance roster's head column too), name quirks in
every name column, the protections and Excel damage of identity numbers in every long
digit code (户编号, 村代码, county codes, phone numbers), every date form in every date
column, every place form in every place column, every number form in every amount and
count, and the whole-row problems in every source.

Rates are probabilities per cell (identity numbers, names, codes, dates, places, numbers)
or per row (whole-row damage). The truth is never touched: noise changes only the written
copy. ``clean`` writes every value as it should be (the file formats still are what
departments deliver: GB18030, BOM, title rows, the allowance sheet's total line).
``typical`` is a careful county's export. ``hard`` is a difficult one: at least 10% of
rows carry a quirk and a few percent of identity numbers are wrong (damaged, mistyped, or
someone else's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from lookback.generate import noise

# Identity-number quirks. Harmless ones leave a number that normalises to the right one;
# damaging ones leave it invalid, missing, or valid but someone else's.
HARMLESS_IDENTITY_QUIRKS = ("disability_certificate", "lower_case_x", "full_width", "padded", "fifteen_digits")
DAMAGING_IDENTITY_QUIRKS = (
    "wrong_check_character",
    "transposed",
    "blank",
    "excel_scientific",
    "excel_zeros",
    "someone_elses",
)
# Rates that are not per cell: lower_case_x per number ending in X, parent_number per cell
# about a child (the child written with a parent's number).
CONDITIONAL_IDENTITY_QUIRKS = ("lower_case_x", "parent_number")
NAME_QUIRKS = tuple(noise.NAME_QUIRKS)
# Long digit codes other than identity numbers: the same protections and the same damage.
CODE_QUIRKS = ("padded", "full_width", "excel_scientific", "excel_zeros")
# How a department's system writes a character it cannot type.
RARE_FORMS = ("keep", "question_mark", "asterisk", "pinyin_lower", "pinyin_upper", "pinyin_title")


def _frozen(values: dict[str, float]) -> Mapping[str, float]:
    return MappingProxyType(values)


@dataclass(frozen=True)
class NoiseProfile:
    name: str
    # quirk → rate per identity cell (see CONDITIONAL_IDENTITY_QUIRKS for the two exceptions)
    identity: Mapping[str, float] = field(default_factory=lambda: _frozen({}))
    names: Mapping[str, float] = field(default_factory=lambda: _frozen({}))  # quirk → rate per name cell
    codes: Mapping[str, float] = field(default_factory=lambda: _frozen({}))  # quirk → rate per code cell
    dot_variant: float = 0.0  # per cell of a minority name: a look-alike of the middle dot
    # Share of people whose true name holds a rare character (part of the population: it
    # persists into evolved batches), and how each department writes it (weights, drawn
    # once per department and person).
    rare_character_persons: float = 0.0
    rare_forms: Mapping[str, float] = field(default_factory=lambda: _frozen({"keep": 1.0}))
    formats: float = 0.0  # per date, month, place, amount or count cell: another of its delivered forms
    blank_row: float = 0.0  # a blank line or empty sheet row inserted, per row
    duplicate_row: float = 0.0  # a row exported twice (in the registry that is a finding too)
    broken_row: float = 0.0  # a delimiter lost (CSV) or cells shifted right (XLSX)
    total_line: float = 0.0  # per CSV source and batch: a 合计 line at the bottom (the sheet always has one)
    title_rows: tuple[int, ...] = (2,)  # how many title rows the allowance sheet may have above its header

    def __post_init__(self) -> None:
        known = {
            "identity": (*HARMLESS_IDENTITY_QUIRKS, *DAMAGING_IDENTITY_QUIRKS, *CONDITIONAL_IDENTITY_QUIRKS),
            "names": NAME_QUIRKS,
            "codes": CODE_QUIRKS,
            "rare_forms": RARE_FORMS,
        }
        for rates, quirks in known.items():
            unknown = sorted(set(getattr(self, rates)) - set(quirks))
            if unknown:
                raise ValueError(f"noise profile {self.name}: {rates}: unknown quirks {', '.join(unknown)}")

    @property
    def identity_rate(self) -> float:
        """Share of identity cells written with a quirk (lower-case x and a parent's number aside)."""
        return sum(rate for quirk, rate in self.identity.items() if quirk not in CONDITIONAL_IDENTITY_QUIRKS)

    @property
    def damaging_identity_rate(self) -> float:
        return sum(rate for quirk, rate in self.identity.items() if quirk in DAMAGING_IDENTITY_QUIRKS)

    @property
    def name_rate(self) -> float:
        return sum(self.names.values())

    @property
    def mixed_formats(self) -> bool:
        return self.formats > 0

    def per_cell_identity(self) -> dict[str, float]:
        return {quirk: rate for quirk, rate in self.identity.items() if quirk not in CONDITIONAL_IDENTITY_QUIRKS}

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "identity": dict(self.identity),
            "names": dict(self.names),
            "codes": dict(self.codes),
            "dot_variant": self.dot_variant,
            "rare_character_persons": self.rare_character_persons,
            "rare_forms": dict(self.rare_forms),
            "formats": self.formats,
            "blank_row": self.blank_row,
            "duplicate_row": self.duplicate_row,
            "broken_row": self.broken_row,
            "total_line": self.total_line,
            "title_rows": list(self.title_rows),
        }


PROFILES: Mapping[str, NoiseProfile] = MappingProxyType(
    {
        "clean": NoiseProfile(name="clean"),
        "typical": NoiseProfile(
            name="typical",
            identity=_frozen(
                {
                    "disability_certificate": 0.004,
                    "lower_case_x": 0.1,
                    "full_width": 0.006,
                    "padded": 0.012,
                    "fifteen_digits": 0.004,
                    "wrong_check_character": 0.003,
                    "transposed": 0.003,
                    "blank": 0.004,
                    "excel_scientific": 0.002,
                    "excel_zeros": 0.002,
                    "someone_elses": 0.0,
                    "parent_number": 0.002,
                }
            ),
            names=_frozen(
                {
                    "homophone": 0.006,
                    "similar_shape": 0.003,
                    "traditional": 0.008,
                    "rare_character": 0.004,
                    "spaces": 0.01,
                }
            ),
            codes=_frozen({"padded": 0.012, "full_width": 0.006, "excel_scientific": 0.002, "excel_zeros": 0.002}),
            dot_variant=0.2,
            rare_character_persons=0.005,
            rare_forms=_frozen(
                {
                    "keep": 0.8,
                    "question_mark": 0.05,
                    "asterisk": 0.03,
                    "pinyin_lower": 0.06,
                    "pinyin_upper": 0.03,
                    "pinyin_title": 0.03,
                }
            ),
            formats=0.3,
            blank_row=0.002,
            duplicate_row=0.002,
            broken_row=0.001,
            total_line=0.5,
        ),
        "hard": NoiseProfile(
            name="hard",
            identity=_frozen(
                {
                    "disability_certificate": 0.012,
                    "lower_case_x": 0.25,
                    "full_width": 0.02,
                    "padded": 0.04,
                    "fifteen_digits": 0.015,
                    "wrong_check_character": 0.01,
                    "transposed": 0.01,
                    "blank": 0.008,
                    "excel_scientific": 0.006,
                    "excel_zeros": 0.004,
                    "someone_elses": 0.005,
                    "parent_number": 0.005,
                }
            ),
            names=_frozen(
                {
                    "homophone": 0.025,
                    "similar_shape": 0.01,
                    "traditional": 0.025,
                    "rare_character": 0.015,
                    "spaces": 0.03,
                }
            ),
            codes=_frozen({"padded": 0.04, "full_width": 0.02, "excel_scientific": 0.006, "excel_zeros": 0.004}),
            dot_variant=0.5,
            rare_character_persons=0.015,
            rare_forms=_frozen(
                {
                    "keep": 0.3,
                    "question_mark": 0.15,
                    "asterisk": 0.1,
                    "pinyin_lower": 0.2,
                    "pinyin_upper": 0.15,
                    "pinyin_title": 0.1,
                }
            ),
            formats=0.8,
            blank_row=0.005,
            duplicate_row=0.005,
            broken_row=0.003,
            total_line=1.0,
            title_rows=(1, 2),
        ),
    }
)
