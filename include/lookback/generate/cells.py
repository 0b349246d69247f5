"""The cells of an export: each true value written as a department's system writes it, with
the quirks the noise profile draws (identity numbers, names, long digit codes, counties,
places, dates, months, amounts, counts), each quirk applied recorded for the row's truth."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import date

from lookback.generate import noise
from lookback.generate.draws import Draws
from lookback.generate.people import Household, Person, rare_character_index
from lookback.generate.profiles import NoiseProfile
from lookback.generate.writers import Cell
from lookback.sources import SourceSpec
from lookback.standardise.places import load_division_table, short_names

CHILD_RELATIONS = frozenset({"之子", "之女"})
# How a county is written: its full name, a short name (通道县, 通道), with its prefecture
# in front (怀化市通道侗族自治县), or its 6-digit code.
COUNTY_FORMS = ("full_name", "short_name", "prefixed_name", "code")
AMOUNT_FORMS = ("plain", *noise.NUMBER_FORMS)
XLSX_AMOUNT_FORMS = (*AMOUNT_FORMS, "numeric_cell")
COUNT_FORMS = ("plain", *noise.COUNT_FORMS)


class _Rates:
    """Quirks and their rates per cell, in the profile's order, and a draw at or beyond which
    none applies (above their sum by more than the rounding of subtracting them one by one)."""

    def __init__(self, rates: Mapping[str, float]) -> None:
        self.items = tuple(rates.items())
        self.beyond = sum(rate for _, rate in self.items) * (1 + 1e-9) + 1e-12

    def quirk(self, draw: float) -> str:
        """The quirk a draw below ``beyond`` falls on (callers answer "none" beyond it)."""
        for quirk, rate in self.items:
            if draw < rate:
                return quirk
            draw -= rate
        return "none"


class CellWriter:
    """Writes one cell of an export from a true value, with the quirks the noise profile draws
    (each one applied recorded in the row's ``applied`` list)."""

    def __init__(
        self,
        specs: dict[str, SourceSpec],
        households: list[Household],
        profile: NoiseProfile,
        as_of: date,
        batch_seed: int,
        population_seed: int,
    ) -> None:
        self.specs = specs
        self.households = households
        self.profile = profile
        self.as_of = as_of
        self.batch_seed = batch_seed
        self.rng = Draws(batch_seed)
        self.population_seed = population_seed
        self.people = [person for household in households for person in household.members]
        self.by_household = {household.key: household for household in households}
        self._identity_rates = _Rates(profile.per_cell_identity())
        self._parent_number_rate = profile.identity.get("parent_number", 0.0)
        self._lower_case_x_rate = profile.identity.get("lower_case_x", 0.0)
        self._name_rates = _Rates(profile.names)
        self._code_rates = _Rates(profile.codes)
        self._rare_forms: dict[tuple[str, str], tuple[str, str]] = {}
        self._short_names: dict[str, list[str]] = {}
        self._shorter_places: dict[str, list[str]] = {}
        self._prefectures = {d.code: d.name for d in load_division_table() if d.level == "prefecture"}
        # Per date, place or number cell: written in a form drawn from all it comes in.
        self._formats = profile.formats
        # Texts of amounts by value and form: a few values, written millions of times.
        self._money_texts: dict[tuple[float, str], str] = {}

    # --- values ---------------------------------------------------------------------
    def identity(self, person: Person, rng: random.Random) -> tuple[str, str]:
        """(written number, quirk) for a row about ``person``."""
        draw, rates = rng.random(), self._identity_rates
        quirk = "none" if draw >= rates.beyond else rates.quirk(draw)
        number = person.identity_number
        if quirk == "none":
            if person.relation in CHILD_RELATIONS and rng.random() < self._parent_number_rate:
                parent = self.by_household[person.household_key].head
                if parent is not person:
                    return parent.identity_number, "parent_number"
            if number.endswith("X") and rng.random() < self._lower_case_x_rate:
                return number[:-1] + "x", "lower_case_x"
            return number, quirk
        if quirk == "someone_elses":
            other = rng.choice(self.people)
            return (other.identity_number, quirk) if other is not person else (number, "none")
        written = noise.damage_identity(number, quirk, rng)
        if written == number:  # the quirk cannot apply (no 15-digit form after 1999): pad instead
            return noise.damage_identity(number, "padded", rng), "padded"
        return written, quirk

    def identity_cell(
        self, column: str, person: Person, rng: random.Random, applied: list[str], xlsx: bool = False
    ) -> tuple[Cell, str, str]:
        """(cell, written number, quirk) for an identity column about ``person``."""
        number, quirk = self.identity(person, rng)
        return self.written_identity(column, number, quirk, applied, xlsx), number, quirk

    @staticmethod
    def written_identity(column: str, number: str, quirk: str, applied: list[str], xlsx: bool = False) -> Cell:
        """The cell of a number written with ``quirk``; its form goes into ``applied``."""
        if quirk == "none":
            return number
        form = noise.padding_form(number) if quirk == "padded" else quirk
        cell: Cell = number
        if xlsx and quirk == "excel_zeros":
            # A number cell: Excel shows the damage, the reader must see it.
            cell, form = float(number), "numeric_cell"
        applied.append(f"{column}:{form}")
        return cell

    def _rare_form(self, source: str, person: Person, character: str) -> tuple[str, str]:
        """How ``source`` writes the person's rare character, and in which reading: drawn once
        per department and person (the registry's way persists from batch to batch)."""
        key = (source, person.key)
        found = self._rare_forms.get(key)
        if found is None:
            seed = self.population_seed if source == "registry" else self.batch_seed
            rng = random.Random(f"{seed}:{source}:{person.key}:rare")
            form = rng.choices(list(self.profile.rare_forms), list(self.profile.rare_forms.values()))[0]
            readings = noise.readings(character)
            reading = readings[0]
            if len(readings) > 1 and rng.random() < 0.5:
                reading = rng.choice(readings[1:])  # the clerk typed the other reading
            found = self._rare_forms[key] = (form, reading)
        return found

    def name(self, column: str, person: Person, source: str, rng: random.Random, applied: list[str]) -> tuple[str, str]:
        """(written name, quirk) for a name column about ``person``."""
        written = person.name
        rare = rare_character_index(written)
        if rare is not None:
            form, reading = self._rare_form(source, person, written[rare])
            if form != "keep":
                written = noise.write_rare_character(written, rare, form, reading)
                applied.append(f"{column}:rare_{form}")
                if form.startswith("pinyin") and reading != noise.readings(person.name[rare])[0]:
                    applied.append(f"{column}:rare_other_reading")
        quirk = "none"
        if "·" in written and rng.random() < self.profile.dot_variant:
            dot = rng.choice(noise.DOT_VARIANTS)
            written, quirk = written.replace("·", dot), "dot_variant"
            applied.append(f"{column}:{noise.DOT_FORMS[dot]}")
        draw, rates = rng.random(), self._name_rates
        if draw < rates.beyond and (drawn := rates.quirk(draw)) != "none":
            changed = noise.NAME_QUIRKS[drawn](written, rng)
            if changed == written:  # no character of the name has a homophone or look-alike listed
                drawn, changed = "spaces", noise.name_spaces(written, rng)
            written, quirk = changed, drawn
            applied.append(f"{column}:{noise.spaces_form(written) if drawn == 'spaces' else drawn}")
        return written, quirk

    def code(self, column: str, digits: str, rng: random.Random, applied: list[str], xlsx: bool = False) -> Cell:
        """A long digit code (户编号, 村代码, a county code, a phone number) with the
        protections and damage of identity numbers."""
        draw, rates = rng.random(), self._code_rates
        if draw >= rates.beyond:
            return digits
        quirk = rates.quirk(draw)
        if quirk == "none" or not digits:
            return digits
        written: Cell | None
        if quirk == "padded":
            written, form = noise.pad_code(digits, rng)
        elif quirk == "full_width":
            written, form = noise.code_full_width(digits), quirk
        elif xlsx:  # Excel kept the code as a number
            written, form = noise.code_number_cell(digits), "numeric_cell"
        elif quirk == "excel_scientific":
            written, form = noise.code_excel_scientific(digits), quirk
        else:
            written, form = noise.code_excel_zeros(digits), quirk
        if written is None:  # too short for this damage
            return digits
        applied.append(f"{column}:{form}")
        return written

    def prefecture_of(self, household: Household) -> str:
        return self._prefectures.get(household.county_code[:4], "")

    def county(
        self,
        column: str,
        household: Household,
        rng: random.Random,
        applied: list[str],
        *,
        code_column: bool = False,
        xlsx: bool = False,
    ) -> Cell:
        """A county as a name column (full name usual) or a code column (code usual) holds it."""
        usual = "code" if code_column else "full_name"
        form = rng.choice(COUNTY_FORMS) if rng.random() < self._formats else usual
        if form != usual:
            applied.append(f"{column}:{form}")
        if form == "code":
            return self.code(column, household.county_code, rng, applied, xlsx)
        if form == "short_name":
            names = self._short_names.get(household.county_name)
            if names is None:
                names = self._short_names[household.county_name] = short_names(household.county_name)
            return rng.choice(names[1:] or [household.county_name])
        if form == "prefixed_name":
            return self.prefecture_of(household) + household.county_name
        return household.county_name

    def place(self, column: str, full_name: str, rng: random.Random, applied: list[str]) -> str:
        """A prefecture, township or village: its full name, or a short one (怀化, 牙屯堡, 青石)."""
        if rng.random() >= self._formats or rng.random() < 0.5:
            return full_name
        shorter = self._shorter_places.get(full_name)
        if shorter is None:
            shorter = [name for name in short_names(full_name)[1:] if name != full_name]
            stem = noise.short_place(full_name)
            if stem and stem not in shorter:
                shorter.append(stem)
            self._shorter_places[full_name] = shorter
        if not shorter:
            return full_name
        applied.append(f"{column}:short_name")
        return rng.choice(shorter)

    def a_date(
        self,
        column: str,
        value: date | None,
        rng: random.Random,
        applied: list[str],
        *,
        usual: str = "iso",
        xlsx: bool = False,
    ) -> Cell:
        if value is None:
            return ""
        style = usual
        if rng.random() < self._formats:
            style = rng.choice(noise.XLSX_DATE_STYLES if xlsx else noise.DATE_STYLES)
        if style != usual:
            applied.append(f"{column}:{style}")
        return noise.date_cell(value, style) if xlsx else noise.format_date(value, style)

    def month(self, column: str, value: date, rng: random.Random, applied: list[str], xlsx: bool = False) -> Cell:
        style = "iso"
        if rng.random() < self._formats:
            style = rng.choice(noise.XLSX_MONTH_STYLES if xlsx else noise.MONTH_STYLES)
        if style == "iso":
            return noise.format_month(value, style)
        applied.append(f"{column}:{style}")
        return noise.date_cell(value, style) if style == "native_date" else noise.format_month(value, style)

    def money(
        self, column: str, amount: float | None, rng: random.Random, applied: list[str], xlsx: bool = False
    ) -> Cell:
        if amount is None:  # nothing to pay: blank, or a dash
            if rng.random() < self._formats and rng.random() < 0.5:
                applied.append(f"{column}:dash")
                return "-"
            return ""
        style = rng.choice(XLSX_AMOUNT_FORMS if xlsx else AMOUNT_FORMS) if rng.random() < self._formats else "plain"
        if style == "thousands" and amount < 1000:
            style = "decimals"  # no separator to show below a thousand
        if style != "plain":
            applied.append(f"{column}:{style}")
            if style == "numeric_cell":
                return int(amount) if amount.is_integer() else amount
        key = (amount, style)
        text = self._money_texts.get(key)
        if text is None:
            text = self._money_texts[key] = noise.format_money(amount, style)
        return text

    def count(self, column: str, value: int, rng: random.Random, applied: list[str], xlsx: bool = False) -> Cell:
        style = rng.choice(COUNT_FORMS) if rng.random() < self._formats else "plain"
        if style == "plain":
            return value if xlsx else str(value)
        applied.append(f"{column}:{style}")
        return noise.format_count(value, style)

    # --- rows -----------------------------------------------------------------------
