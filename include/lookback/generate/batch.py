"""A landing batch of all five exports, written in their delivered formats, with its truth.

:func:`generate_batch` builds (or, with ``evolve_from``, reads back and moves on) a
population, plants the look-back findings, writes the five exports damaged by the noise
profile, and writes the truth into a folder of its own: who every row is, and every
finding a perfect pipeline would make. The same arguments give the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from lookback import collector
from lookback.errors import LookbackError
from lookback.generate.draws import Draws
from lookback.generate.exports import Export, ExportBuilder, identities_of, mark_hard_rows, sheet_titles
from lookback.generate.identities import Identity
from lookback.generate.people import Household, PopulationBuilder, give_rare_characters
from lookback.generate.plant import PLANT_RATES, Planted, plant_findings, settle
from lookback.generate.profiles import PROFILES, NoiseProfile
from lookback.generate.truth import TrueFinding, read_population, true_findings, write_truth
from lookback.generate.writers import write_csv, write_xlsx
from lookback.rules import RULE_CODES
from lookback.sources import load_source_specs
from lookback.standardise.places import county_resolver

GENERATOR_VERSION = 1
DEFAULT_COUNTIES = ("431230", "431224", "433130")  # 通道侗族自治县, 溆浦县, 龙山县
DEFAULT_AS_OF = date(2020, 6, 30)
FILE_NAMES = {
    "registry": "registry_members.csv",
    "dibao": "dibao_roster.xlsx",
    "insurance": "insurance_enrolment.csv",
    "housing": "housing_safety.csv",
    "hukou": "hukou_cancellations.csv",
}
OUTSIDE_SHARE = 0.06  # allowance households outside the registry, per registry household
OTHER_PERSONS = 1.4  # other rural residents (insurance only), per registry person
NEW_FINDINGS_SCALE = 0.25  # an evolved batch plants new findings at this share of the first rates


@dataclass(frozen=True)
class BatchSummary:
    folder: Path
    truth: Path
    households: int
    registry_persons: int
    rows: dict[str, int]
    findings: dict[str, int]
    fixed: int = 0


def default_truth_folder(out: Path) -> Path:
    """``landing/<batch>`` → ``truth/<batch>`` beside the landing zone; else ``<batch>.truth``."""
    out = out.resolve()
    if out.parent.name == "landing":
        return out.parent.parent / "truth" / out.name
    return out.with_name(out.name + ".truth")


def _build_population(
    persons: int, seed: int, as_of: date, counties: Sequence[str], rare_characters: float = 0.0
) -> tuple[list[Household], list[Planted]]:
    """The population and its planted findings; ``rare_characters`` of the people get a rare
    character in their given name (drawn apart, so the rest of the population is the same
    whatever the share)."""
    builder = PopulationBuilder(county_resolver(), list(counties), seed, as_of)
    registry = _households_of(builder, "registry", persons)
    outside = [builder.household("outside") for _ in range(max(1, round(len(registry) * OUTSIDE_SHARE)))]
    others = _households_of(builder, "other", round(persons * OTHER_PERSONS))
    households = registry + outside + others
    give_rare_characters(households, rare_characters, random.Random(f"{seed}:rare"))
    settle(households, as_of, Draws(f"{seed}:settle"))
    planted = plant_findings(households, as_of, Draws(f"{seed}:plant"))
    return households, planted


def _households_of(builder: PopulationBuilder, kind: str, persons: int) -> list[Household]:
    """Households of one kind until they hold at least ``persons`` people."""
    households: list[Household] = []
    count = 0
    while count < persons:
        households.append(builder.household(kind))
        count += len(households[-1].members)
    return households


def _outside_planted(households: Sequence[Household]) -> list[Planted]:
    return [
        Planted("DIBAO_OUTSIDE_REGISTRY", "dibao_household", h.key)
        for h in households
        if h.kind == "outside" and h.dibao_status == "正常" and h.dibao_category in {"农村低保", "农村特困（分散供养）"}
    ]


def _profile(noise: str | NoiseProfile) -> NoiseProfile:
    if isinstance(noise, NoiseProfile):
        return noise
    if noise not in PROFILES:
        raise LookbackError(f"unknown noise profile {noise!r} (known: {', '.join(PROFILES)})")
    return PROFILES[noise]


def _exports(
    households: list[Household],
    noise: str | NoiseProfile,
    as_of: date,
    batch_seed: int,
    population_seed: int,
    out: Path | None = None,
) -> tuple[list[Export], dict[str, Identity]]:
    """The five exports, and what the normaliser finds in their identity numbers. With
    ``out``, each export is written there as its records are made (their ``records`` stay
    empty); else :func:`_write_exports` writes them."""
    builder = ExportBuilder(load_source_specs(), households, _profile(noise), as_of, batch_seed, population_seed)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        builder.delivery_paths = {source: out / name for source, name in FILE_NAMES.items()}
    exports = [builder.registry(), builder.dibao(), builder.insurance(), builder.housing(), builder.hukou()]
    identities = identities_of(exports)
    mark_hard_rows(exports, identities=identities)
    return exports, identities


def _write_exports(out: Path, exports: Sequence[Export], households: Sequence[Household], as_of: date) -> None:
    specs = load_source_specs()
    out.mkdir(parents=True, exist_ok=True)
    for export in exports:
        spec = specs[export.source]
        path = out / FILE_NAMES[export.source]
        if spec.delivered_file.format == "csv":
            write_csv(path, spec, export.records)
            continue
        records = [record for record in export.records if isinstance(record, list)]
        write_xlsx(path, spec, records, title_rows=sheet_titles(households, as_of)[: export.title_rows])


def generate_batch(
    out: Path,
    persons: int = 120,
    seed: int = 1,
    as_of: date | None = None,
    counties: Sequence[str] = DEFAULT_COUNTIES,
    noise: str | NoiseProfile = "typical",
    truth: Path | None = None,
    evolve_from: Path | None = None,
    fix_fraction: float = 0.5,
) -> BatchSummary:
    """Write one landing batch into ``out`` and its truth into ``truth``.

    With ``evolve_from`` (an earlier batch's truth folder, or its landing folder when the
    truth is in the default place), the same population moves on: ``fix_fraction`` of
    the planted findings are fixed and new ones are planted.
    """
    with collector.paused():
        return _generate_batch(out, persons, seed, as_of, counties, noise, truth, evolve_from, fix_fraction)


def _generate_batch(
    out: Path,
    persons: int,
    seed: int,
    as_of: date | None,
    counties: Sequence[str],
    noise: str | NoiseProfile,
    truth: Path | None,
    evolve_from: Path | None,
    fix_fraction: float,
) -> BatchSummary:
    profile = _profile(noise)
    if not 0.0 <= fix_fraction <= 1.0:
        raise LookbackError(f"--fix-fraction must be between 0 and 1, not {fix_fraction}")
    truth_folder = (truth or default_truth_folder(out)).resolve()
    if truth_folder == out.resolve() or out.resolve() in truth_folder.parents:
        raise LookbackError(f"{truth_folder}: the truth must not be inside the landing folder {out}")
    fixed = 0
    if evolve_from is not None:
        earlier = evolve_from if (evolve_from / "manifest.json").is_file() else default_truth_folder(evolve_from)
        manifest, households = read_population(earlier)
        population_seed = int(manifest["population_seed"])
        as_of = as_of or date.fromisoformat(manifest["as_of"]) + timedelta(days=91)
        rng = random.Random(f"{seed}:evolve")
        fixed = fix_findings(households, _read_planted(earlier), fix_fraction, as_of, rng)
        planted = plant_findings(households, as_of, rng, scale=NEW_FINDINGS_SCALE)
        counties = manifest["counties"]
    else:
        as_of = as_of or DEFAULT_AS_OF
        population_seed = seed
        households, planted = _build_population(persons, seed, as_of, counties, profile.rare_character_persons)
        manifest = {}
    planted += _outside_planted(households)

    exports, identities = _exports(households, profile, as_of, seed, population_seed, out)
    findings = true_findings(households, exports, as_of, planted, identities)
    del identities
    rows = {export.source: len(export.truths) for export in exports}
    by_rule = {rule: sum(1 for f in findings if f.rule_code == rule) for rule in RULE_CODES}
    registry_persons = len({t.person_key for t in exports[0].truths if t.person_key})
    write_truth(
        truth_folder,
        {
            "generator_version": GENERATOR_VERSION,
            "batch": out.name,
            "seed": seed,
            "population_seed": population_seed,
            "persons_requested": persons if evolve_from is None else manifest.get("persons_requested"),
            "registry_persons": registry_persons,
            "households": len(households),
            "as_of": as_of.isoformat(),
            "counties": list(counties),
            "noise_profile": profile.as_dict(),
            "plant_rates": dict(PLANT_RATES)
            if evolve_from is None
            else {rule: rate * NEW_FINDINGS_SCALE for rule, rate in PLANT_RATES.items()},
            "evolved_from": str(evolve_from) if evolve_from else None,
            "fix_fraction": fix_fraction if evolve_from else None,
            "fixed_findings": fixed,
            "rows": rows,
            "findings": by_rule,
            "files": FILE_NAMES,
        },
        households,
        exports,
        findings,
    )
    return BatchSummary(
        folder=out,
        truth=truth_folder,
        households=len(households),
        registry_persons=registry_persons,
        rows=rows,
        findings=by_rule,
        fixed=fixed,
    )


def _read_planted(truth: Path) -> list[TrueFinding]:
    import csv

    with (truth / "findings.csv").open(encoding="utf-8", newline="") as handle:
        return [
            TrueFinding(row["rule_code"], row["subject_kind"], row["subject_key"], row["planted"] == "true")
            for row in csv.DictReader(handle)
            if row["planted"] == "true"
        ]


def fix_findings(
    households: list[Household], planted: Sequence[TrueFinding], fraction: float, as_of: date, rng: random.Random
) -> int:
    """Fix a share of the planted findings the way counties fix them; returns how many."""
    people = {person.key: person for household in households for person in household.members}
    by_key = {household.key: household for household in households}
    chosen = rng.sample(list(planted), round(len(planted) * fraction))
    fixed = 0
    for finding in chosen:
        person = people.get(finding.subject_key)
        household = by_key.get(finding.subject_key)
        if _fix(finding.rule_code, person, household, by_key, as_of):
            fixed += 1
    return fixed


def _fix(rule: str, person: Any, household: Household | None, by_key: dict[str, Household], as_of: date) -> bool:
    if person is not None:
        if rule in {"ID_INVALID", "ID_CONFLICT"} and person.registry_identity_noise not in {"none", "fixed"}:
            person.registry_identity_noise, person.registry_identity_written = "fixed", ""
        elif rule == "DUPLICATE_PERSON":
            person.duplicate = ""
        elif rule == "DECEASED_LISTED":
            by_key[person.household_key].members.remove(person)
        elif rule in {"MED_NOT_INSURED", "MED_CLAIM_MISMATCH"}:
            person.insurance, person.claims_insured = "paid", "是"
        elif rule == "MED_NOT_SUBSIDISED":
            person.subsidy = "建档立卡贫困人口"
        elif rule == "EDU_OUT_OF_SCHOOL":
            person.schooling = "小学" if person.age(as_of) < 12 else "初中"
        else:
            return False
        return True
    if household is None:
        return False
    if rule == "HOUSING_UNSAFE":
        household.renovation_status, household.claims_unsafe_house = "已竣工", "否"
    elif rule == "HOUSING_NOT_APPRAISED":
        household.housing_level, household.appraisal_date, household.claims_unsafe_house = "B", as_of, "否"
    elif rule == "HOUSING_CLAIM_MISMATCH":
        household.claims_unsafe_house = "否" if household.housing_safe else "是"
    elif rule == "DIBAO_CATEGORY_MISMATCH":
        exited = household.poverty_status.startswith("已脱贫")
        if household.dibao_category and household.dibao_status == "正常":
            dibao = household.dibao_category == "农村低保"
            household.poverty_category = ("低保" if dibao else "特困供养") + ("脱贫户" if exited else "贫困户")
        else:
            household.poverty_category = "一般脱贫户" if exited else "一般贫困户"
    elif rule == "NO_SAFETY_NET":
        household.dibao_category, household.dibao_status, household.poverty_category = "农村低保", "正常", "低保贫困户"
        household.dibao_start = date(as_of.year, as_of.month, 1)
    elif rule == "DIBAO_OUTSIDE_REGISTRY":
        household.kind = "registry"
        household.registry_number = f"{household.village_code}{int(household.key[1:]):06d}"
        household.poverty_status, household.cause = "未脱贫", "因病"
        household.poverty_category = "低保贫困户" if household.dibao_category == "农村低保" else "特困供养贫困户"
        for member in household.members:
            member.claims_insured = "是" if member.insurance == "paid" else "否"
            member.subsidy = "建档立卡贫困人口" if member.scheme == "城乡居民基本医疗保险" else ""
    else:
        return False
    return True
