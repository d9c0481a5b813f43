"""Plain data (YAML) → the config dataclasses, with errors that name the key and the fix."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any

from llmpulse._config_file import FieldError
from llmpulse.errors import ConfigError

__all__ = ["build"]


def _where(path: str) -> str:
    return f"'{path}'" if path else "the top level"


def _fail(path: str, message: str) -> FieldError:
    return FieldError(f"checks config: {_where(path)} {message}", path, message)


def _duration_or_number(value: Any, path: str) -> float:
    """A number, or a duration string like ``5m`` (for keys counted in seconds)."""
    if isinstance(value, str):
        from llmpulse.checks._duration import parse_duration

        try:
            return parse_duration(value)
        except ConfigError as exc:
            raise _fail(path, str(exc)) from None
    return value  # type: ignore[no-any-return]


def _scalar(kind: type, value: Any, path: str) -> Any:
    """Check one scalar against its declared type; ints are accepted where floats are."""
    if kind is bool:
        if not isinstance(value, bool):
            raise _fail(path, f"must be true or false, got {value!r}")
        return value
    if kind in (int, float):
        if path.endswith("bucket_seconds"):
            value = _duration_or_number(value, path)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(path, f"must be a number, got {value!r}")
        if kind is int:
            if value != int(value):
                raise _fail(path, f"must be a whole number, got {value!r}")
            return int(value)
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise _fail(path, f"must be a string, got {value!r}")
        return value
    raise AssertionError(f"unsupported config type {kind}")  # pragma: no cover


def _convert(hint: Any, value: Any, path: str) -> Any:
    """Convert ``value`` to the type ``hint`` names (optional, tuple, mapping, dataclass, scalar)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else _convert(args[0], value, path)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise _fail(path, f"must be a list, got {value!r}")
        return tuple(_scalar(str, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, Mapping):
            raise _fail(path, f"must be a mapping of name to settings, got {value!r}")
        inner = typing.get_args(hint)[1]
        return {str(k): _convert(inner, v, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return build(hint, value, path)
    return _scalar(hint, value, path)


def build(cls: Any, data: Any, path: str) -> Any:
    """An instance of dataclass ``cls`` from a mapping; unknown keys are errors with a suggestion."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise _fail(path, f"must be a mapping of settings, got {type(data).__name__}: {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        sub = f"{path}.{key}" if path else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" — did you mean '{close[0]}'?" if close else ""
            raise _fail(sub, f"is not a setting{hint} (valid here: {', '.join(names)})")
        kwargs[key] = _convert(hints[key], value, sub)
    try:
        return cls(**kwargs)
    except FieldError:
        raise
    except ConfigError as exc:
        # The dataclass names the field; add where in the file it sits.
        message = str(exc).removeprefix("checks config: ")
        raise FieldError(f"checks config: in {_where(path)}: {message}", path, message) from None
