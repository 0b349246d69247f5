"""Noise profiles: how often each quirk of real exports is applied when a batch is written.

Rates are probabilities per cell (identity numbers, names) or per row (whole-row damage).
The truth is never touched: noise changes only the written copy. ``clean`` writes every
value as it should be (the file formats still are what departments deliver: GB18030,
BOM, title rows, total line). ``typical`` is a careful county's export. ``hard`` is a
difficult one: at least 10% of rows carry a quirk and a few percent of identity numbers
are wrong (damaged, mistyped, or someone else's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

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
NAME_QUIRKS = ("homophone", "similar_shape", "traditional", "rare_character", "spaces")


def _frozen(values: dict[str, float]) -> Mapping[str, float]:
    return MappingProxyType(values)


@dataclass(frozen=True)
class NoiseProfile:
    name: str
    # quirk → rate per cell; lower_case_x is a rate per number ending in X
    identity: Mapping[str, float] = field(default_factory=lambda: _frozen({}))
    names: Mapping[str, float] = field(default_factory=lambda: _frozen({}))  # quirk → rate per cell
    blank_row: float = 0.0  # a blank line or empty sheet row inserted, per row
    duplicate_row: float = 0.0  # a row exported twice (not in the registry: there it is a finding)
    broken_row: float = 0.0  # a delimiter lost (CSV) or cells shifted right (XLSX)
    mixed_formats: bool = False  # dates, money and county names in every delivered form

    @property
    def identity_rate(self) -> float:
        """Share of identity cells written with a quirk (lower-case x aside)."""
        return sum(rate for quirk, rate in self.identity.items() if quirk != "lower_case_x")

    @property
    def damaging_identity_rate(self) -> float:
        return sum(rate for quirk, rate in self.identity.items() if quirk in DAMAGING_IDENTITY_QUIRKS)

    @property
    def name_rate(self) -> float:
        return sum(self.names.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "identity": dict(self.identity),
            "names": dict(self.names),
            "blank_row": self.blank_row,
            "duplicate_row": self.duplicate_row,
            "broken_row": self.broken_row,
            "mixed_formats": self.mixed_formats,
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
            blank_row=0.002,
            duplicate_row=0.002,
            broken_row=0.001,
            mixed_formats=True,
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
            blank_row=0.005,
            duplicate_row=0.005,
            broken_row=0.003,
            mixed_formats=True,
        ),
    }
)
