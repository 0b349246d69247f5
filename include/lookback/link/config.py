"""Linkage settings (``include/linkage.yaml``), validated on load into frozen dataclasses.

The file's shape is declared as pydantic models below (unknown keys refused, no type
coerced: ``accept: high`` is not a number, ``treshold:`` not ``threshold:``), then what
one key says about another is checked: the levels a field allows, a threshold for every
jaro_winkler level, ``review`` not above ``accept``. Each problem is one line naming the
file and the key path. The models mirror the file; :class:`LinkageSettings` and its parts,
which the engine uses, are built from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from lookback.errors import ConfigError, KeyPath, not_one_of
from lookback.link.levels import FIELDS as COMPARED_FIELDS
from lookback.link.levels import Comparison, make_level
from lookback.paths import include_dir
from lookback.settings import SettingsModel, Text, YamlList, one_of, read_yaml, refuse, validate_settings
from lookback.sources import SourceSpec, load_source_specs

# The fields a comparison may read, and the kinds of level each takes.
LEVELS = {name: spec.kinds for name, spec in COMPARED_FIELDS.items()}
BLOCKING_KEYS = frozenset(
    {
        "county",
        "name",
        "pinyin",
        "placeholder_head",
        "given_name",
        "name_ends",
        "surname_length",
        "birth_date",
        "sex",
        "id_digits",
        "id_first14",
        "id_last4",
        "household",
    }
)


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
class Support:
    """What a pair must agree on besides the name, county and sex to be accepted rather than
    put to people: any comparison of ``any_of`` at a level of positive weight; for a pair with
    a row of a source in ``by_source``, any of that source's list instead."""

    any_of: tuple[str, ...]
    by_source: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


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
    # Sources a household seldom holds two rows of (an appraisal repeated): a candidate is
    # weighed by whether its household holds one already (see ``SeldomTwice``).
    seldom_twice: tuple[str, ...] = ()
    # Source code → programme; a source that states a programme places every row: an
    # unlisted or blank value is "none".
    programmes: Mapping[str, str] = field(default_factory=dict)
    support: Support | None = None  # None: the weights alone decide


def _similarity(value: float) -> float:
    if not 0 < value <= 1:
        raise ValueError(f"{value:g} is not a similarity above 0 and at most 1")
    return value


def _probability(value: float) -> float:
    if not 0 < value <= 1:
        raise ValueError(f"{value:g} is not a probability above 0 and at most 1")
    return value


class _SourceFields(SettingsModel):
    """The staging column each canonical linkage field of a source is read from; ``=value``
    is a constant (the person of a housing row is the head of its household: ``=head``)."""

    name: Text
    identity_number: Text
    sex: Text | None = None
    birth_date: Text | None = None
    county: Text | None = None
    village: Text | None = None
    household: Text | None = None
    household_head: Text | None = None
    relation: Text | None = None
    year: Text | None = None
    scheme: Text | None = None
    programme: Text | None = None
    schooling: Text | None = None  # a pupil's school stage (the registry's 在校生状况)


# The canonical linkage fields a source may offer.
FIELDS = frozenset(_SourceFields.model_fields)


class _Level(SettingsModel):
    level: Text
    threshold: Annotated[float, AfterValidator(_similarity)] | None = None  # jaro_winkler only
    digits: Annotated[int, Field(ge=1)] | None = None  # first_digits only
    term_frequency: bool = False
    m: Annotated[float, AfterValidator(_probability)] | None = None


class _Comparison(SettingsModel):
    field: Annotated[str, one_of(LEVELS)]
    levels: Annotated[YamlList[_Level], Field(min_length=1)]


class _Blocking(SettingsModel):
    name: Text | None = None  # the keys joined by + when not given
    keys: Annotated[YamlList[Annotated[str, one_of(BLOCKING_KEYS)]], Field(min_length=1)]


class _OnePerPerson(SettingsModel):
    source: Text
    per: Annotated[str, one_of(ONE_PER_PERSON_KINDS)] | None = None


class _Thresholds(SettingsModel):
    accept: float = 10.0
    review: float = 4.0


class _Support(SettingsModel):
    any_of: Annotated[YamlList[Annotated[str, one_of(LEVELS)]], Field(min_length=1)]
    by_source: dict[str, Annotated[YamlList[Annotated[str, one_of(LEVELS)]], Field(min_length=1)]] = Field(
        default_factory=dict
    )


class _Linkage(SettingsModel):
    # The product's sources declare their linkage fields in their own YAML (``linkage:``);
    # a settings file for another data set (FEBRL) names its sources here.
    sources: (
        Annotated[
            dict[str, _SourceFields], Field(min_length=1, description="a mapping of each source to its linkage fields")
        ]
        | None
    ) = None
    programmes: dict[str, str] = Field(default_factory=dict, description="a mapping of source code to programme")
    blocking: Annotated[YamlList[_Blocking], Field(min_length=1)]
    comparisons: Annotated[YamlList[_Comparison], Field(min_length=1)]
    one_per_person: YamlList[_OnePerPerson] = ()
    seldom_twice: YamlList[str] = ()
    support: _Support | None = None
    thresholds: _Thresholds = _Thresholds()
    margin: Annotated[float, Field(ge=0)] = 3.0
    random_pairs: Annotated[int, Field(ge=1)] = 200_000
    seed: int = 1


# The keys only one kind of level takes, and that kind needs: without its threshold a
# jaro_winkler level would match every pair.
_LEVEL_PARAMETERS = (("threshold", "jaro_winkler", "a threshold", "0.9"), ("digits", "first_digits", "digits", "15"))


def _level_problems(where: KeyPath, comparison: str, level: _Level, last: bool) -> list[tuple[KeyPath, str]]:
    problems: list[tuple[KeyPath, str]] = []
    allowed = LEVELS[comparison]
    if level.level not in allowed:
        problems.append(((*where, "level"), not_one_of(level.level, sorted(allowed))))
        return problems
    if level.level == "else" and not last:
        problems.append(((*where, "level"), "else must be the last level: the levels after it are never reached"))
    for key, kind, what, example in _LEVEL_PARAMETERS:
        given = getattr(level, key) is not None
        if level.level == kind and not given:
            problems.append(((*where, key), f"is missing: a {kind} level needs {what}, e.g. {key}: {example}"))
        elif level.level != kind and given:
            problems.append(((*where, key), f"only {kind} levels take {what}, not {level.level}"))
    if level.term_frequency and comparison != "name":
        problems.append(
            ((*where, "term_frequency"), f"only the name comparison takes term_frequency, not {comparison}")
        )
    return problems


class _SourceLinkage(SettingsModel):
    """A source YAML's ``linkage:`` section."""

    linkage: _SourceFields


def _linked_sources(document: _Linkage, specs: Mapping[str, SourceSpec] | None) -> dict[str, dict[str, str]]:
    """Each linked source's fields: from the settings file when it names them, else from each
    source YAML's ``linkage:`` section (a mistake there names that file)."""
    if document.sources is not None:
        return {source: fields.model_dump(exclude_none=True) for source, fields in document.sources.items()}
    found: dict[str, dict[str, str]] = {}
    specs = specs if specs is not None else load_source_specs()
    for spec in sorted(specs.values(), key=lambda spec: spec.order_key):
        source = spec.source
        if spec.linkage:
            checked = validate_settings(_SourceLinkage, {"linkage": dict(spec.linkage)}, spec.path)
            found[source] = checked.linkage.model_dump(exclude_none=True)
    if not found:
        raise ConfigError("no source declares its linkage fields (a linkage: section in include/sources/*.yaml)")
    return found


def _problems(document: _Linkage, linked: Mapping[str, Any]) -> list[tuple[KeyPath, str]]:
    """What the shape cannot say: one key checked against another."""
    problems: list[tuple[KeyPath, str]] = []
    for index, comparison in enumerate(document.comparisons):
        levels = comparison.levels
        for number, level in enumerate(levels):
            where: KeyPath = ("comparisons", index, "levels", number)
            problems += _level_problems(where, comparison.field, level, last=number == len(levels) - 1)
        if levels[-1].level != "else":
            problems.append((("comparisons", index, "levels"), "must end with the else level"))
    for index, rule in enumerate(document.one_per_person):
        if rule.source not in linked:
            known = ", ".join(sorted(linked))
            problems.append(
                (("one_per_person", index, "source"), f"{rule.source!r} is not one of the sources: {known}")
            )
    for index, source in enumerate(document.seldom_twice):
        if source not in linked:
            known = ", ".join(sorted(linked))
            problems.append((("seldom_twice", index), f"{source!r} is not one of the sources: {known}"))
    compared = {comparison.field for comparison in document.comparisons}
    if document.support is not None:
        for key, named in (
            ("any_of", document.support.any_of),
            *((f"by_source.{source}", fields) for source, fields in document.support.by_source.items()),
        ):
            for index, name in enumerate(named):
                if name not in compared:
                    problems.append(((*("support", *key.split(".")), index), f"{name!r} is not a comparison here"))
        for source in document.support.by_source:
            if source not in linked:
                problems.append((("support", "by_source", source), f"{source!r} is not one of the sources"))
    accept, review = document.thresholds.accept, document.thresholds.review
    if review > accept:
        problems.append((("thresholds", "review"), f"must not be above accept ({review:g} > {accept:g})"))
    return problems


def parse_linkage_settings(document: Any, path: Path, specs: Mapping[str, SourceSpec] | None = None) -> LinkageSettings:
    """Validate one loaded linkage YAML document and build its :class:`LinkageSettings`; the
    sources' linkage fields come from ``specs`` (default: include/sources) unless it names them."""
    linkage = validate_settings(_Linkage, document, path)
    linked = _linked_sources(linkage, specs)
    refuse(path, _problems(linkage, linked))
    return LinkageSettings(
        sources=linked,
        blocking=tuple(BlockingRule(rule.name or "+".join(rule.keys), rule.keys) for rule in linkage.blocking),
        comparisons=tuple(
            Comparison(
                comparison.field,
                tuple(
                    make_level(
                        level.level,
                        m=level.m,
                        term_frequency=level.term_frequency,
                        **{key: value for key in ("threshold", "digits") if (value := getattr(level, key)) is not None},
                    )
                    for level in comparison.levels
                ),
            )
            for comparison in linkage.comparisons
        ),
        accept=linkage.thresholds.accept,
        review=linkage.thresholds.review,
        margin=linkage.margin,
        random_pairs=linkage.random_pairs,
        seed=linkage.seed,
        path=path,
        one_per_person=tuple(OnePerPerson(rule.source, rule.per) for rule in linkage.one_per_person),
        seldom_twice=tuple(linkage.seldom_twice),
        programmes=dict(linkage.programmes),
        support=Support(linkage.support.any_of, dict(linkage.support.by_source))
        if linkage.support is not None
        else None,
    )


def load_linkage_settings(path: Path | None = None) -> LinkageSettings:
    """Load and validate the linkage settings (default ``include/linkage.yaml``)."""
    settings_path = path or include_dir() / "linkage.yaml"
    return parse_linkage_settings(read_yaml(settings_path), settings_path)
