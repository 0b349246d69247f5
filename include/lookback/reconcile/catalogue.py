"""The look-back rules as files: ``include/sql/rules/<CODE>.sql`` and ``<CODE>.yaml`` beside it.

Each SQL file is one SELECT over the batch's prepared tables (``lookback_persons``,
``lookback_households``, …) with bound parameters only (``:batch_id``, ``:as_of``,
``:run_id``), returning one row per finding with the columns in :data:`FINDING_COLUMNS`.
The YAML holds the rule's metadata: code, Chinese and English title, dimension, severity,
subject, responsible departments and seed items of the province's plan. The catalogue
refuses a rule set that does not match the contract's codes (``lookback.rules``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import yaml

from lookback.errors import ConfigError
from lookback.paths import sql_dir
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
)


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
    sql: str
    path: Path

    @property
    def responsible_text(self) -> str:
        return "、".join(self.responsible)


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
    unknown = sorted(set(meta) - {*_REQUIRED, "depends_on"})
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
        sql=sql_path.read_text(encoding="utf-8"),
        path=sql_path,
    )


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def check_catalogue(rules: Sequence[Rule]) -> None:
    """The rule set must be the contract's: every code once, the subject the spec names,
    and a rule that reads others' findings run after them."""
    codes = [rule.code for rule in rules]
    if sorted(codes) != sorted(RULE_CODES):
        missing = sorted(set(RULE_CODES) - set(codes))
        extra = sorted(set(codes) - set(RULE_CODES))
        raise ConfigError(
            f"{rules_dir()}: the rules do not match the contract (missing: {', '.join(missing) or 'none'}; "
            f"unknown: {', '.join(extra) or 'none'})"
        )
    seen: set[str] = set()
    for rule in rules:
        if rule.subject != RULE_SUBJECT_KINDS[rule.code]:
            raise ConfigError(f"{rule.path}: subject {rule.subject}, the contract says {RULE_SUBJECT_KINDS[rule.code]}")
        late = [code for code in rule.depends_on if code not in seen]
        if late:
            raise ConfigError(f"{rule.path}: depends on {', '.join(late)}, which must run before it")
        seen.add(rule.code)


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
