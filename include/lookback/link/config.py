"""Linkage settings (``include/linkage.yaml``), loaded into frozen dataclasses and validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lookback.errors import ConfigError
from lookback.paths import include_dir
from lookback.sources import read_yaml

FIELDS = frozenset(
    {
        "name",
        "identity_number",
        "sex",
        "birth_date",
        "county",
        "village",
        "household",
        "household_head",
        "relation",
        "year",
        "scheme",
        "programme",
    }
)
LEVELS = {
    "name": {"exact", "same_pinyin", "placeholder", "jaro_winkler", "one_character", "else"},
    "identity": {"exact", "check_character", "transposition", "one_digit", "first_digits", "else"},
    "birth_date": {"exact", "year_month", "else"},
    "sex": {"exact", "else"},
    "county": {"exact", "else"},
    "village": {"exact", "else"},
    "household": {"exact", "else"},
    "relation": {"exact", "else"},
    # The programme a row places its person in (poverty registry, allowance, none).
    "programme": {"exact", "else"},
    # The candidate's birth date against the household head's, given the row's relation to
    # the head: a son born before his father is someone else of the same name.
    "age_in_household": {"plausible", "else"},
}
BLOCKING_KEYS = frozenset(
    {
        "county",
        "name",
        "pinyin",
        "placeholder_head",
        "birth_date",
        "sex",
        "id_digits",
        "id_first14",
        "id_last4",
        "household",
    }
)


@dataclass(frozen=True)
class Level:
    level: str
    threshold: float = 0.0  # jaro_winkler
    digits: int = 0  # first_digits
    term_frequency: bool = False  # exact names: weight by how common the name is
    m: float | None = None  # a fixed m probability, where the data cannot teach it

    @property
    def label(self) -> str:
        if self.level == "jaro_winkler":
            return f"jaro_winkler>={self.threshold:g}"
        if self.level == "first_digits":
            return f"first_{self.digits}_digits"
        return self.level


@dataclass(frozen=True)
class Comparison:
    field: str
    levels: tuple[Level, ...]


@dataclass(frozen=True)
class BlockingRule:
    name: str
    keys: tuple[str, ...]


# What a person can hold only once besides its source: an enrolment is a scheme and a year.
ONE_PER_PERSON_KINDS = frozenset({"enrolment"})


@dataclass(frozen=True)
class OnePerPerson:
    """A person holds at most one row of ``source`` (per ``per``, when given)."""

    source: str
    per: str | None = None


@dataclass(frozen=True)
class LinkageSettings:
    sources: Mapping[str, Mapping[str, str]]
    blocking: tuple[BlockingRule, ...]
    comparisons: tuple[Comparison, ...]
    accept: float
    review: float
    margin: float
    random_pairs: int
    seed: int
    path: Path
    one_per_person: tuple[OnePerPerson, ...] = ()
    # Source code → programme; a source that states a programme places every row: an
    # unlisted or blank value is "none".
    programmes: Mapping[str, str] = field(default_factory=dict)


def _fail(path: Path, key: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {message}")


def parse_linkage_settings(document: Any, path: Path) -> LinkageSettings:
    if not isinstance(document, Mapping):
        raise _fail(path, "(top level)", "must be a mapping")
    sources_body = document.get("sources")
    if not isinstance(sources_body, Mapping) or not sources_body:
        raise _fail(path, "sources", "must map each source to its linkage fields")
    sources: dict[str, dict[str, str]] = {}
    for source, fields in sources_body.items():
        if not isinstance(fields, Mapping) or "name" not in fields or "identity_number" not in fields:
            raise _fail(path, f"sources.{source}", "must name at least the name and identity_number columns")
        unknown = sorted(set(fields) - FIELDS)
        if unknown:
            raise _fail(path, f"sources.{source}.{unknown[0]}", f"unknown field (known: {', '.join(sorted(FIELDS))})")
        sources[str(source)] = {str(key): str(value) for key, value in fields.items()}
    blocking = []
    for index, rule in enumerate(document.get("blocking") or []):
        keys = tuple(rule.get("keys") or ()) if isinstance(rule, Mapping) else ()
        if not keys or not set(keys) <= BLOCKING_KEYS:
            raise _fail(path, f"blocking[{index}].keys", f"must be a list of: {', '.join(sorted(BLOCKING_KEYS))}")
        blocking.append(BlockingRule(str(rule.get("name", "+".join(keys))), keys))
    if not blocking:
        raise _fail(path, "blocking", "needs at least one rule")
    comparisons = []
    for index, body in enumerate(document.get("comparisons") or []):
        field = body.get("field") if isinstance(body, Mapping) else None
        if field not in LEVELS:
            raise _fail(path, f"comparisons[{index}].field", f"must be one of {', '.join(sorted(LEVELS))}")
        levels = []
        for number, level in enumerate(body.get("levels") or []):
            kind = level.get("level") if isinstance(level, Mapping) else None
            if kind not in LEVELS[field]:
                raise _fail(
                    path,
                    f"comparisons[{index}].levels[{number}]",
                    f"{field} levels: {', '.join(sorted(LEVELS[field]))}",
                )
            levels.append(
                Level(
                    level=kind,
                    threshold=float(level.get("threshold", 0.0)),
                    digits=int(level.get("digits", 0)),
                    term_frequency=bool(level.get("term_frequency", False)),
                    m=float(level["m"]) if "m" in level else None,
                )
            )
        if not levels or levels[-1].level != "else":
            raise _fail(path, f"comparisons[{index}].levels", "must end with the else level")
        comparisons.append(Comparison(field, tuple(levels)))
    one_per_person = []
    for index, body in enumerate(document.get("one_per_person") or []):
        source = body.get("source") if isinstance(body, Mapping) else None
        per = body.get("per") if isinstance(body, Mapping) else None
        if source not in sources:
            raise _fail(path, f"one_per_person[{index}].source", f"must be one of {', '.join(sorted(sources))}")
        if per is not None and per not in ONE_PER_PERSON_KINDS:
            raise _fail(
                path, f"one_per_person[{index}].per", f"must be one of {', '.join(sorted(ONE_PER_PERSON_KINDS))}"
            )
        one_per_person.append(OnePerPerson(str(source), per))
    programmes = document.get("programmes") or {}
    if not isinstance(programmes, Mapping):
        raise _fail(path, "programmes", "must map source codes to programmes")
    thresholds = document.get("thresholds") or {}
    accept, review = float(thresholds.get("accept", 10.0)), float(thresholds.get("review", 4.0))
    if review > accept:
        raise _fail(path, "thresholds", "review must not be above accept")
    return LinkageSettings(
        sources=sources,
        blocking=tuple(blocking),
        comparisons=tuple(comparisons),
        accept=accept,
        review=review,
        margin=float(document.get("margin", 3.0)),
        random_pairs=int(document.get("random_pairs", 200_000)),
        seed=int(document.get("seed", 1)),
        path=path,
        one_per_person=tuple(one_per_person),
        programmes={str(code): str(programme) for code, programme in programmes.items()},
    )


def load_linkage_settings(path: Path | None = None) -> LinkageSettings:
    """Load and validate the linkage settings (default ``include/linkage.yaml``)."""
    settings_path = path or include_dir() / "linkage.yaml"
    return parse_linkage_settings(read_yaml(settings_path), settings_path)
