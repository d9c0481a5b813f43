"""Helpers the client instrumentations (openai, anthropic, litellm) share."""

from __future__ import annotations

from typing import Any

__all__ = ["TextCollector", "chars", "parsed", "text_or_none"]


class TextCollector:
    """Streamed response text, kept up to the content limit (the rest is only counted)."""

    def __init__(self, config: Any) -> None:
        self.keep = not config.redact
        self.limit = config.max_content_chars + 1
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def add(self, text: str) -> None:
        if not self.keep:
            return
        room = self.limit - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))

    def value(self) -> Any:
        if not self.parts:
            return None
        from llmpulse.sdk._content import PartialText

        text = PartialText("".join(self.parts))
        text.dropped_chars = self.dropped
        return text


def chars(value: Any) -> int:
    """Characters of text in messages, content parts or an answer (tool calls not counted)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        if value.get("type") not in (None, "text"):
            return 0
        return chars(value.get("content")) + chars(value.get("text"))
    if isinstance(value, (list, tuple)):
        return sum(chars(v) for v in value)
    return 0


def parsed(result: Any) -> Any:
    """What ``with_raw_response`` wraps (the SDKs cache it, so the caller gets the same object).

    openai's is a ``LegacyAPIResponse``; anthropic 2's an ``APIResponse``, which is parsed only
    once its body was read: a ``with_streaming_response`` body belongs to the caller.
    """
    name = type(result).__name__
    if name != "LegacyAPIResponse" and not (
        name == "APIResponse"
        and getattr(getattr(result, "http_response", None), "is_closed", False)
    ):
        return result
    try:
        return result.parse()
    except Exception:
        return result


def text_or_none(value: Any) -> str | None:
    """``value`` if it is a non-empty string, else ``None``."""
    return value if isinstance(value, str) and value else None
