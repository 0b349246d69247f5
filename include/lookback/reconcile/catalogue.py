"""The look-back rules as files: ``include/sql/rules/<CODE>.sql`` and ``<CODE>.yaml`` beside it.

Each SQL file is one SELECT over the batch's prepared tables (``lookback_persons``,
``lookback_households``, …) with bound parameters only (``:batch_id``, ``:as_of``,
``:run_id``), returning one row per finding with the columns in :data:`FINDING_COLUMNS`.
The YAML holds the rule's metadata: code, Chinese and English title, dimension, severity,
subject, responsible departments and seed items of the province's plan, and the sources
it reads: ``sources`` must all have been delivered in the batch for the rule to be
applied (a source not delivered is not "nothing there"), ``optional_sources`` are read
when delivered (a finding made from one of them cannot be checked by a run without it; a
rule with optional sources may return a ``made_from`` column naming, separated by ``;``,
sources its finding was made from beyond the rows it cites). The catalogue refuses a rule
set that does not match the contract's codes (``lookback.rules``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import yaml

from lookback.errors import ConfigError
from lookback.paths import sources_dir, sql_dir
from lookback.rules import RULE_CODES, RULE_SUBJECT_KINDS

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
_REQUIRED: Final = (
    "code",
    "title_zh",
    "title_en",
    "dimension",
    "dimension_zh",
    "severity",
    "subject",
    "responsible",
    "seed_items",
    "sources",
)
_OPTIONAL: Final = ("depends_on", "optional_sources")


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

    def missing_sources(self, delivered: Collection[str]) -> tuple[str, ...]:
        """The sources the rule needs that were not delivered (empty: the rule applies)."""
        return tuple(source for source in self.sources if source not in delivered)


def rules_dir() -> Path:
    return sql_dir() / "rules"


def _read_rule(yaml_path: Path) -> Rule:
    try:
        meta = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{yaml_path}: cannot be read: {error}") from error
    if not isinstance(meta, Mapping):
        raise ConfigError(f"{yaml_path}: expected a mapping of the rule's metadata")
    missing = [key for key in _REQUIRED if meta.get(key) in (None, "", [])]
    if missing:
        raise ConfigError(f"{yaml_path}: missing {', '.join(missing)}")
    unknown = sorted(set(meta) - {*_REQUIRED, *_OPTIONAL})
    if unknown:
        raise ConfigError(f"{yaml_path}: unknown key(s) {', '.join(unknown)}")
    code = str(meta["code"])
    if code != yaml_path.stem:
        raise ConfigError(f"{yaml_path}: code {code} does not match the file name")
    if meta["severity"] not in SEVERITIES:
        raise ConfigError(f"{yaml_path}: severity {meta['severity']!r} is not one of {', '.join(SEVERITIES)}")
    sql_path = yaml_path.with_suffix(".sql")
    if not sql_path.is_file():
        raise ConfigError(f"{yaml_path}: no {sql_path.name} beside it")
    sources = tuple(str(item) for item in _as_list(meta["sources"]))
    optional_sources = tuple(str(item) for item in _as_list(meta.get("optional_sources") or []))
    defined = defined_sources()
    for key, named in (("sources", sources), ("optional_sources", optional_sources)):
        unknown_sources = [source for source in named if source not in defined]
        if unknown_sources:
            raise ConfigError(
                f"{yaml_path}: {key}: unknown source(s) {', '.join(unknown_sources)} "
                f"(defined: {', '.join(sorted(defined))})"
            )
    both = sorted(set(sources) & set(optional_sources))
    if both:
        raise ConfigError(f"{yaml_path}: {', '.join(both)} both in sources and in optional_sources")
    return Rule(
        code=code,
        title_zh=str(meta["title_zh"]),
        title_en=str(meta["title_en"]),
        dimension=str(meta["dimension"]),
        dimension_zh=str(meta["dimension_zh"]),
        severity=str(meta["severity"]),
        subject=str(meta["subject"]),
        responsible=tuple(str(item) for item in _as_list(meta["responsible"])),
        seed_items=tuple(int(item) for item in _as_list(meta["seed_items"])),
        depends_on=tuple(str(item) for item in _as_list(meta.get("depends_on") or [])),
        sources=sources,
        optional_sources=optional_sources,
        sql=sql_path.read_text(encoding="utf-8"),
        path=sql_path,
    )


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def defined_sources() -> frozenset[str]:
    """The sources with a definition in ``include/sources/``."""
    return frozenset(path.stem for path in sources_dir().glob("*.yaml"))


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
        if rule.subject != RULE_SUBJECT_KINDS[rule.code]:
            raise ConfigError(f"{rule.path}: subject {rule.subject}, the contract says {RULE_SUBJECT_KINDS[rule.code]}")
        late = [code for code in rule.depends_on if code not in seen]
        if late:
            raise ConfigError(f"{rule.path}: depends on {', '.join(late)}, which must run before it")
        for code in rule.depends_on:
            lacking = [source for source in seen[code].sources if source not in rule.sources]
            if lacking:
                raise ConfigError(
                    f"{rule.path}: depends on {code}, which reads {', '.join(lacking)}: list it in sources too"
                )
        seen[rule.code] = rule


@lru_cache(maxsize=1)
def load_rules() -> tuple[Rule, ...]:
    """Every rule, in the contract's order (dependencies first)."""
    folder = rules_dir()
    found = {path.stem: _read_rule(path) for path in sorted(folder.glob("*.yaml"))}
    rules = tuple(found[code] for code in RULE_CODES if code in found) + tuple(
        found[code] for code in sorted(set(found) - set(RULE_CODES))
    )
    check_catalogue(rules)
    return rules


def rules_by_code() -> dict[str, Rule]:
    return {rule.code: rule for rule in load_rules()}
