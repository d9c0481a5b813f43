"""Durations as people write them; the parser lives in the leaf ``llmpulse._duration`` so the
read commands (``llmpulse stats``, ``traces``, ``export``) use it without the detection extra."""

from __future__ import annotations

from llmpulse._duration import format_duration, parse_duration

__all__ = ["format_duration", "parse_duration"]
