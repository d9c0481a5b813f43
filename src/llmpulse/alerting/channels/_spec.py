"""Reading a channel's spec: typed fields, unknown fields refused, secrets from env or files.

A secret field ``F`` (an SMTP password, a Slack or Discord URL, a signing secret) comes from
exactly one of:

- ``F: value`` — inline; ``${VAR}`` inside it is replaced by the environment variable ``VAR``;
- ``F_env: VAR`` — the environment variable ``VAR``;
- ``F_file: /run/secrets/x`` — the file's content, surrounding whitespace stripped.

The value is held in a :class:`Secret`, whose ``str``/``repr`` is ``***``: only the code that
sends reads it, through ``reveal()``; ``describe()`` shows where it came from, not what it is.
Every error names the field (a ``FieldError``), and never the secret's value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from llmpulse._config_file import FieldError
from llmpulse._duration import parse_duration
from llmpulse.errors import ConfigError

__all__ = ["Secret", "Spec"]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _bad(field: str, detail: str) -> FieldError:
    return FieldError(f"{field}: {detail}", field, detail)


class Secret:
    """A secret value that does not print itself; ``source`` says where it came from."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        """The value itself, for the code that sends; never log it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret(***, source={self.source!r})"

    def __str__(self) -> str:
        return "***"


def _expand(value: str, field: str) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match[1]
        if name not in os.environ:
            raise _bad(field, f"environment variable {name} is not set")
        return os.environ[name]

    return _VAR.sub(sub, value)


class Spec:
    """Typed access to one channel's spec; ``fields`` are the keys it may hold.

    Secret fields may also appear as ``<field>_env`` and ``<field>_file``.
    """

    def __init__(
        self,
        spec: Mapping[str, Any],
        fields: Iterable[str],
        secrets: Iterable[str] = (),
    ) -> None:
        secrets = set(secrets)
        allowed = {"type", *fields, *secrets}
        allowed |= {f"{s}_env" for s in secrets} | {f"{s}_file" for s in secrets}
        for key in spec:
            if key not in allowed:
                raise _bad(str(key), f"unknown field (allowed: {', '.join(sorted(allowed))})")
        self._spec = spec

    def has(self, field: str) -> bool:
        """Whether ``field`` was given (and is not null)."""
        return self._spec.get(field) is not None

    def text(self, field: str, default: str | None = None, *, required: bool = False) -> str | None:
        """A string field; ``${VAR}`` is expanded."""
        value = self._spec.get(field)
        if value is None:
            if required:
                raise _bad(field, "required")
            return default
        if not isinstance(value, str) or not value.strip():
            raise _bad(field, f"must be a non-empty string, got {type(value).__name__}")
        return _expand(value, field)

    def required_text(self, field: str) -> str:
        """A string field that must be present."""
        value = self.text(field, required=True)
        assert value is not None
        return value

    def flag(self, field: str, default: bool) -> bool:
        """A true/false field."""
        value = self._spec.get(field)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise _bad(field, f"must be true or false, got {value!r}")
        return value

    def integer(self, field: str, default: int, *, lo: int, hi: int) -> int:
        """An integer field within ``[lo, hi]``."""
        value = self._spec.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise _bad(field, f"must be an integer from {lo} to {hi}, got {value!r}")
        return value

    def seconds(self, field: str, default: float, *, hi: float) -> float:
        """A duration: seconds as a number, or text like ``10s``, ``5m``."""
        value = self._spec.get(field)
        if value is None:
            return default
        if isinstance(value, bool):
            raise _bad(field, f"must be a duration (10s, 5m) or seconds, got {value!r}")
        try:
            seconds = float(value) if isinstance(value, (int, float)) else parse_duration(value)
        except ConfigError as exc:
            raise _bad(field, str(exc)) from None
        if not 0 < seconds <= hi:
            raise _bad(field, f"must be more than 0 and at most {hi:g} seconds, got {value!r}")
        return seconds

    def text_list(self, field: str, *, required: bool = False) -> list[str]:
        """A string or a list of strings."""
        value = self._spec.get(field)
        if value is None:
            if required:
                raise _bad(field, "required")
            return []
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise _bad(field, "must be a string or a non-empty list of strings")
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item.strip():
                raise _bad(f"{field}[{i}]", "must be a non-empty string")
            out.append(_expand(item.strip(), field))
        return out

    def labels(self, field: str) -> dict[str, str]:
        """A mapping of strings to strings."""
        value = self._spec.get(field)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise _bad(field, "must be a mapping of names to strings")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise _bad(f"{field}.{k}", "names and values must be strings")
            out[k] = _expand(v, f"{field}.{k}")
        return out

    def secret(self, field: str, *, required: bool = False) -> Secret | None:
        """A secret from ``field``, ``field_env`` or ``field_file`` (exactly one of them)."""
        given = [
            k for k in (field, f"{field}_env", f"{field}_file") if self._spec.get(k) is not None
        ]
        if len(given) > 1:
            raise _bad(field, f"give only one of {', '.join(given)}")
        if not given:
            if required:
                raise _bad(field, f"required (or {field}_env: VAR, or {field}_file: PATH)")
            return None
        key = given[0]
        raw = self._spec[key]
        if not isinstance(raw, str) or not raw.strip():
            raise _bad(key, "must be a non-empty string")
        if key.endswith("_env"):
            if raw not in os.environ or not os.environ[raw].strip():
                raise _bad(key, f"environment variable {raw} is not set or empty")
            return Secret(os.environ[raw].strip(), f"env {raw}")
        if key.endswith("_file"):
            try:
                text = Path(raw).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeError) as exc:
                raise _bad(key, f"cannot read {raw}: {type(exc).__name__}") from None
            if not text:
                raise _bad(key, f"{raw} is empty")
            return Secret(text, f"file {raw}")
        source = "env " + ", ".join(_VAR.findall(raw)) if _VAR.search(raw) else "inline"
        return Secret(_expand(raw, field), source)
