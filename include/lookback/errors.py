"""Errors that reach people: each names the file, key, row or column at fault."""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

# Where a problem is in a settings document: keys and list positions, ``("columns", "sex", "codes")``.
KeyPath = tuple[str | int, ...]


class LookbackError(Exception):
    """Base class: an error the command line reports in one line, without a traceback."""


class ConfigError(LookbackError):
    """A source definition or other configuration file is wrong."""

    @classmethod
    def at(cls, path: Path, problems: Iterable[tuple[KeyPath, str]]) -> ConfigError:
        """One line per problem, each naming the file and the key: ``file: a.b[2].c: what is wrong``."""
        return cls("\n".join(f"{path}: {key_path(where)}: {message}" for where, message in problems))

    @classmethod
    def from_validation(cls, path: Path, model: type[BaseModel], error: ValidationError) -> ConfigError:
        """Pydantic's findings on a document validated as ``model``, in the words of :meth:`at`."""
        return cls.at(path, ((tuple(detail["loc"]), _describe(model, detail)) for detail in error.errors()))


class ConnectionNotFound(ConfigError, LookupError):
    """A source's database connection id that nothing resolves to a URL."""


class DeliveryError(LookbackError):
    """A delivered file cannot be read as its source definition says it should be."""


class QualityGateError(LookbackError):
    """A critical expectation failed: nothing of the batch is to be published."""


class PublishError(LookbackError, OSError):
    """A run's files could not be written (a full disk, a quota, a file system gone
    read-only): nothing of the run is published. Still an ``OSError``, with the ``errno``
    of the write that failed."""


class FanOutError(LookbackError):
    """A step of a stage split into tasks finds an earlier step's work missing, stale or
    another run's: run the earlier step (or the missing county tasks) again."""


def key_path(where: Sequence[str | int]) -> str:
    """``("comparisons", 0, "levels", 3, "m")`` as ``comparisons[0].levels[3].m``.

    Pydantic marks a problem with a mapping's key (rather than its value) by a ``[key]``
    after it; the key is then written like any other (``columns.Sex``, ``codes.1``).
    """
    text = ""
    for index, part in enumerate(where):
        if part == "[key]":
            continue
        names_a_key = index + 1 < len(where) and where[index + 1] == "[key]"
        if isinstance(part, int) and not names_a_key:
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


# What a value of the wrong type should have been, by pydantic's error type.
_EXPECTED = {
    "string_type": "text",
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
}
_BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("above", "gt"),
    "less_than_equal": ("at most", "le"),
    "less_than": ("below", "lt"),
}
_CONTAINERS = {"dict_type", "model_type", "model_attributes_type", "list_type", "tuple_type"}


def _describe(model: type[BaseModel], detail: ErrorDetails) -> str:
    kind, value, where = detail["type"], detail["input"], detail["loc"]
    if kind == "missing":
        return "is missing"
    if kind == "extra_forbidden":
        return _unknown_key(str(where[-1]), _keys_at(model, where[:-1]))
    if kind == "value_error":  # a check of ours, worded for people already
        return str(detail.get("ctx", {}).get("error", detail["msg"]))
    if kind in {"too_short", "string_too_short"}:
        return "must not be empty"
    if kind in _BOUNDS:
        words, name = _BOUNDS[kind]
        bound = detail.get("ctx", {}).get(name)
        return f"must be {words} {bound:g}, not {shown(value)}"
    if kind not in _EXPECTED:
        return detail["msg"]
    if value is None:
        return "is empty"
    if kind in _CONTAINERS or isinstance(value, list | tuple | dict):
        field = _field_at(model, where)
        expected = field.description if field is not None and field.description else _EXPECTED[kind]
        return f"must be {expected}, not {shown(value)}"
    message = f"{shown(value)} is not {_EXPECTED[kind]}"
    if kind == "string_type" and isinstance(value, bool):
        return f"{message} (YAML reads an unquoted yes, no, on, off, true or false as a boolean: quote it)"
    if kind == "string_type":
        return f"{message} (quote it)"
    return message


def shown(value: Any) -> str:
    """A value as it would be written in YAML (``'high'``, ``true``, ``1.5``), or what kind of
    thing it is (``a list``, ``a mapping``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def not_one_of(value: str, known: Sequence[str]) -> str:
    """``'jaro_winklr' is not one of exact, jaro_winkler, …; did you mean jaro_winkler?``"""
    close = difflib.get_close_matches(value, known, n=1)
    return f"{value!r} is not one of {', '.join(known)}" + (f"; did you mean {close[0]}?" if close else "")


def _unknown_key(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return "unknown key" + (f", did you mean {close[0]}?" if close else "") + f" (known: {', '.join(known)})"


def _unwrapped(annotation: Any) -> Any:
    """``X`` from ``Annotated[X, ...]`` and from ``X | None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in {Union, types.UnionType}:
            others = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(others) != 1:
                return annotation
            annotation = others[0]
        else:
            return annotation


def _walk(model: type[BaseModel], where: Sequence[str | int]) -> tuple[Any, FieldInfo | None]:
    """The type expected at ``where`` in a document of ``model``, and its field if it is one."""
    annotation: Any = model
    field: FieldInfo | None = None
    for part in where:
        annotation, field = _unwrapped(annotation), None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = _fields_by_key(annotation).get(str(part))
            if field is None:
                return None, None
            annotation = field.annotation
        elif get_origin(annotation) in {tuple, list}:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            return None, None
    return _unwrapped(annotation), field


def _field_at(model: type[BaseModel], where: Sequence[str | int]) -> FieldInfo | None:
    return _walk(model, where)[1]


def _keys_at(model: type[BaseModel], where: Sequence[str | int]) -> list[str]:
    annotation = _walk(model, where)[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(_fields_by_key(annotation))
    return []


def _fields_by_key(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """A model's fields by the key a document writes them with (its alias, where it has one:
    ``schema``, which pydantic keeps for itself as a field name)."""
    return {field.alias or name: field for name, field in model.model_fields.items()}
