"""Bounding prompt and response text on the caller's thread, cheaply.

A 30 KB prompt must not sit in the export queue as 30 KB: text longer than
``max_content_chars`` is cut right away (the cut length is remembered, so the stored marker
still says how much was dropped), and the queue also has a byte budget so that a dead exporter
and huge prompts cannot grow memory without bound. Structured prompts (chat messages) are
copied shallowly and their size estimated from their text parts.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PartialText", "bounded", "text_size", "truncate"]

_ITEM_OVERHEAD = 64  # rough bytes per message / dict entry beyond its text


class PartialText(str):
    """Text whose tail was not kept by whoever collected it; ``dropped_chars`` says how much."""

    dropped_chars: int = 0


def truncate(text: str, limit: int, dropped: int = 0) -> str:
    """``text`` cut to ``limit`` characters plus a marker saying how much was cut."""
    total = len(text) + dropped
    if total <= limit:
        return text
    return f"{text[:limit]}…[truncated {total - limit} chars]"


def bounded(value: Any, limit: int) -> Any:
    """A copy of ``value`` safe to queue: long text cut to ``limit``, containers copied."""
    if isinstance(value, str):
        if len(value) <= limit:
            return value
        cut = PartialText(value[:limit])
        cut.dropped_chars = len(value) - limit + getattr(value, "dropped_chars", 0)
        return cut
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def text_size(value: Any) -> int:
    """Approximate bytes of text held by ``value`` (strings, chat messages, dicts of strings)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (list, tuple)):
        return sum(text_size(v) + _ITEM_OVERHEAD for v in value[:1000])
    if isinstance(value, dict):
        return sum(text_size(v) + _ITEM_OVERHEAD for v in list(value.values())[:1000])
    return 0
