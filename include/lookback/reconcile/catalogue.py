"""The look-back rules as files: ``include/sql/reconcile/rules/<CODE>.sql`` and ``<CODE>.yaml`` beside it.

Each SQL file is one SELECT over the batch's prepared tables (``reconcile_persons``,
``reconcile_households``, …) with bound parameters only (``:batch_id``, ``:as_of``,
``:run_id``), returning one row per finding with the columns in :data:`FINDING_COLUMNS`.
The YAML holds the rule's metadata: code, Chinese and English title, dimension, severity,
subject, responsible departments and seed items of the province's plan, and the sources
it reads: ``sources`` must all have been delivered in the batch for the rule to be
applied (a source not delivered is not "nothing there"), ``optional_sources`` are read
when delivered (a finding made from one of them cannot be checked by a run without it; a
rule with optional sources may return a ``made_from`` column naming, separated by ``;``,
sources its finding was made from beyond the rows it cites). The metadata is validated on
load like every settings file (unknown keys refused, no type coerced, each problem one
line naming the file and the key). The catalogue refuses a rule set that does not match
the contract's codes (``lookback.rules``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Final

from pydantic import Field

from lookback.errors import ConfigError, KeyPath
from lookback.paths import sources_dir
from lookback.rules import RULE_CODES, RULE_SUBJECT_KINDS
from lookback.settings import SettingsModel, Text, YamlList, one_of, read_yaml, refuse, validate_settings
from lookback.sql import sql_folder

# What every rule's SELECT returns, one row per finding.
FINDING_COLUMNS: Final = (
    "subject_key",  # person_id or household_key: with the rule code, the finding's identity
    "person_id",
    "household_key",
    "county_code",
    "township",
    "village",
    "subject_name",
    "identity_number",  # in full: masked before it is stored
    "evidence",
    "source_rows",
)
SEVERITIES: Final = ("high", "medium", "low")


@dataclass(frozen=True)
class Rule:
    code: str
    title_zh: str
    title_en: str
    dimension: str
    dimension_zh: str
    severity: str
    subject: str
    responsible: tuple[str, ...]
    seed_items: tuple[int, ...]
    depends_on: tuple[str, ...]
    sources: tuple[str, ...]  # every one delivered, or the rule is not applied
    optional_sources: tuple[str, ...]  # read when delivered
    sql: str
    path: Path

    @property
    def responsible_text(self) -> str:
        return "、".join(self.responsible)

    @property
    def reads_findings(self) -> bool:
        """Whether the rule reads other rules' findings of the run (``depends_on``): in the
        county fan-out it runs once, after every county task, since a household's members
        may have their findings in another county's task."""
        return bool(self.depends_on)

    def missing_sources(self, delivered: Collection[str]) -> tuple[str, ...]:
        """The sources the rule needs that were not delivered (empty: the rule applies)."""
        return tuple(source for source in self.sources if source not in delivered)


def rules_dir() -> Path:
    return sql_folder("reconcile/rules")


class _RuleMetadata(SettingsModel):
    """``<CODE>.yaml``, as written."""

    code: Text
    title_zh: Text
    title_en: Text
    dimension: Text
    dimension_zh: Text
    severity: Annotated[str, one_of(SEVERITIES)]
    subject: Annotated[str, one_of(frozenset(RULE_SUBJECT_KINDS.values()))]
    responsible: Annotated[YamlList[Text], Field(min_length=1, description="a list of departments, e.g. [民政]")]
    seed_items: Annotated[
        YamlList[Annotated[int, Field(ge=1)]],
        Field(min_length=1, description="a list of the plan's item numbers, e.g. [18, 22]"),
    ]
    depends_on: Annotated[YamlList[Text], Field(description="a list of rule codes")] = ()
    sources: Annotated[YamlList[Text], Field(min_length=1, description="a list of sources, e.g. [registry]")]
    optional_sources: Annotated[YamlList[Text], Field(description="a list of sources")] = ()


def defined_sources() -> frozenset[str]:
    """The sources with a definition in ``include/sources/``."""
    return frozenset(path.stem for path in sources_dir().glob("*.yaml"))


def _read_rule(yaml_path: Path) -> Rule:
    meta = validate_settings(_RuleMetadata, read_yaml(yaml_path), yaml_path)
    problems: list[tuple[KeyPath, str]] = []
    if meta.code != yaml_path.stem:
        problems.append((("code",), f"{meta.code!r} does not match the file name; it must be {yaml_path.stem}"))
    defined = defined_sources()
    for key, named in (("sources", meta.sources), ("optional_sources", meta.optional_sources)):
        for index, source in enumerate(named):
            if source not in defined:
                problems.append(((key, index), f"unknown source {source!r} (defined: {', '.join(sorted(defined))})"))
            elif key == "optional_sources" and source in meta.sources:
                problems.append(((key, index), f"{source} is in sources already"))
    refuse(yaml_path, problems)
    sql_path = yaml_path.with_suffix(".sql")
    if not sql_path.is_file():
        raise ConfigError(f"{yaml_path}: no {sql_path.name} beside it")
    return Rule(**dict(meta), sql=sql_path.read_text(encoding="utf-8"), path=sql_path)


def check_catalogue(rules: Sequence[Rule]) -> None:
    """The rule set must be the contract's: every code once, the subject the spec names,
    and a rule that reads others' findings run after them and needs their sources."""
    codes = [rule.code for rule in rules]
    if sorted(codes) != sorted(RULE_CODES):
        missing = sorted(set(RULE_CODES) - set(codes))
        extra = sorted(set(codes) - set(RULE_CODES))
        raise ConfigError(
            f"{rules_dir()}: the rules do not match the contract (missing: {', '.join(missing) or 'none'}; "
            f"unknown: {', '.join(extra) or 'none'})"
        )
    seen: dict[str, Rule] = {}
    for rule in rules:
        metadata = rule.path.with_suffix(".yaml")
        problems: list[tuple[KeyPath, str]] = []
        if rule.subject != RULE_SUBJECT_KINDS[rule.code]:
            problems.append((("subject",), f"{rule.subject}, the contract says {RULE_SUBJECT_KINDS[rule.code]}"))
        for index, code in enumerate(rule.depends_on):
            if code not in RULE_SUBJECT_KINDS:
                problems.append((("depends_on", index), f"{code!r} is not a rule of the contract (lookback.rules)"))
            elif code not in seen:
                problems.append((("depends_on", index), f"{code} must run before {rule.code}, and does not"))
            else:
                lacking = [source for source in seen[code].sources if source not in rule.sources]
                if lacking:
                    problems.append(
                        (("sources",), f"{rule.code} depends on {code}, which reads {', '.join(lacking)}: list it too")
                    )
        refuse(metadata, problems)
        seen[rule.code] = rule


@lru_cache(maxsize=1)
def load_rules() -> tuple[Rule, ...]:
    """Every rule, in the contract's order (dependencies first)."""
    folder = rules_dir()
    found: dict[str, Rule] = {}
    broken: list[str] = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            found[path.stem] = _read_rule(path)
        except ConfigError as error:  # every broken rule file at once, not the first only
            broken.append(str(error))
    if broken:
        raise ConfigError("\n".join(broken))
    rules = tuple(found[code] for code in RULE_CODES if code in found) + tuple(
        found[code] for code in sorted(set(found) - set(RULE_CODES))
    )
    check_catalogue(rules)
    return rules


def rules_by_code() -> dict[str, Rule]:
    return {rule.code: rule for rule in load_rules()}
