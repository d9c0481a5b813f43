"""Durations as people write them: ``90s``, ``30m``, ``6h``, ``7d``, ``2w``.

A leaf (standard library and ``errors`` only): the checks and the command line share it.
"""

from __future__ import annotations

import re

from llmpulse.errors import ConfigError

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds in ``text`` (a number and a unit: s, m, h, d or w); ``ConfigError`` otherwise."""
    match = _PATTERN.match(str(text))
    if not match:
        raise ConfigError(
            f"{text!r} is not a duration: write a number and a unit (s, m, h, d, w), like 30m, 6h or 7d"
        )
    seconds = float(match[1]) * _UNITS[match[2].lower()]
    if seconds <= 0:
        raise ConfigError(f"{text!r} is not a duration: it must be longer than zero")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact form of ``seconds`` (``300`` → ``5m``; ``5400`` → ``90m``)."""
    for unit in ("w", "d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"
