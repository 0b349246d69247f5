"""What every settings loader shares: YAML read strictly (a key written twice is an error),
documents validated as pydantic models that refuse unknown keys and never coerce a type,
and every problem reported as one line naming the file and the key path."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Strict, StringConstraints, ValidationError

from lookback.errors import ConfigError, KeyPath, not_one_of


class SettingsModel(BaseModel):
    """The shape of a settings document: unknown keys are refused, a value of the wrong type
    is never converted (``"yes"`` is not true, ``"10"`` not a number), and nothing changes
    once loaded."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


_Model = TypeVar("_Model", bound=SettingsModel)
_Item = TypeVar("_Item")
# A YAML list, held as a tuple: strict validation would take nothing but a tuple, which YAML
# never gives; the items stay strictly checked.
YamlList = Annotated[tuple[_Item, ...], Strict(False)]
# Text that says something: an empty string is as good as a missing key.
Text = Annotated[str, StringConstraints(min_length=1)]


def one_of(options: Iterable[str]) -> AfterValidator:
    """A validator of text that must be one of ``options`` (listed in their order, or sorted)."""
    listed = tuple(options) if isinstance(options, tuple | list) else tuple(sorted(options))

    def check(value: str) -> str:
        if value not in listed:
            raise ValueError(not_one_of(value, listed))
        return value

    return AfterValidator(check)


def validate_settings(model: type[_Model], document: Any, path: Path) -> _Model:
    """``document`` (a loaded YAML file) as ``model``, or a :class:`ConfigError` with one
    line per problem naming ``path`` and the key."""
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise ConfigError.from_validation(path, model, error) from None


def refuse(path: Path, problems: list[tuple[KeyPath, str]]) -> None:
    """Raise the problems found beyond the shape (one key against another), if any."""
    if problems:
        raise ConfigError.at(path, problems)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key written twice in one mapping is an error:
    PyYAML would keep the second silently (a second ``sex:`` column replacing the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # PyYAML's own error follows
            if key in first_line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} written twice (first on line {first_line[key]})", key_node.start_mark
                )
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """A configuration file's document; unreadable or malformed files fail naming the file."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # a SafeLoader
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
