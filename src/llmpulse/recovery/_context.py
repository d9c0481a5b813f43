"""Shrinking a conversation that overflowed the context window.

A reducer takes the messages and what is known about the overflow, and returns a smaller list
(never mutating the one it got), or None when it cannot shrink further. The default drops the
oldest turns first, then truncates the longest remaining messages, and never touches system
(or developer) messages.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["DropOldestThenTruncate", "Reducer", "ReductionInfo", "estimate_tokens"]

_CHARS_PER_TOKEN = 4
_PER_MESSAGE = 3
_KEPT_ROLES = ("system", "developer")
TRUNCATION_MARK = "\n[... truncated by llmpulse recovery ...]\n"


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] if isinstance(p, dict) and isinstance(p.get("text"), str) else
                         json.dumps(p, default=str) for p in content)  # fmt: skip
    return json.dumps(content, default=str)


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """About 4 characters a token plus framing per message: close enough to aim a reduction."""
    return 3 + sum(
        _PER_MESSAGE + math.ceil(len(_text(m.get("content"))) / _CHARS_PER_TOKEN) for m in messages
    )


@dataclass(frozen=True, slots=True)
class ReductionInfo:
    """What a reducer knows: the attempt, the error, and the token numbers it reported."""

    reduction: int  # 1 for the first reduction of this call
    error: BaseException
    context_window: int | None  # from the error message, when it says
    prompt_tokens: int | None  # tokens the provider counted, when it says
    estimated_tokens: int  # our estimate of the messages as they are
    target_tokens: int  # our estimate to get under


Reducer = Callable[[list[dict[str, Any]], ReductionInfo], "list[dict[str, Any]] | None"]


def target_tokens(
    estimated: int, window: int | None, counted: int | None, safety: float, reduction: int
) -> int:
    """Where to aim, in our own estimate's units."""
    if window and counted and counted > 0:
        # Scale by the provider's own count, so our estimate's error cancels out.
        return max(1, int(estimated * (window * safety) / counted))
    return max(1, int(estimated * 0.5**reduction))  # nothing stated: halve, then quarter...


class DropOldestThenTruncate:
    """The default reducer: drop the oldest turns, then truncate, keeping system messages."""

    def __init__(self, keep_last: int = 1) -> None:
        self.keep_last = max(1, keep_last)

    def __call__(
        self, messages: list[dict[str, Any]], info: ReductionInfo
    ) -> list[dict[str, Any]] | None:
        """A smaller copy of ``messages`` aimed at ``info.target_tokens``, or None if impossible."""
        kept = [m for m in messages if m.get("role") in _KEPT_ROLES]
        turns = [m for m in messages if m.get("role") not in _KEPT_ROLES]
        target = info.target_tokens
        while len(turns) > self.keep_last and estimate_tokens(kept + turns) > target:
            turns.pop(0)
            # A tool answer without the assistant call before it is rejected by the API.
            while len(turns) > self.keep_last and turns[0].get("role") == "tool":
                turns.pop(0)
        reduced = self._ordered(messages, kept, turns)
        if estimate_tokens(reduced) > target:
            reduced = self._truncate(reduced, target)
        if estimate_tokens(reduced) >= estimate_tokens(messages):
            return None
        return reduced

    @staticmethod
    def _ordered(original: list[dict[str, Any]], kept: list[dict[str, Any]],
                 turns: list[dict[str, Any]]) -> list[dict[str, Any]]:  # fmt: skip
        chosen = {id(m) for m in kept + turns}
        return [copy.copy(m) for m in original if id(m) in chosen]

    @staticmethod
    def _truncate(messages: list[dict[str, Any]], target: int) -> list[dict[str, Any]]:
        excess_chars = (estimate_tokens(messages) - target) * _CHARS_PER_TOKEN
        candidates = sorted((i for i, m in enumerate(messages) if m.get("role") not in _KEPT_ROLES
                             and isinstance(m.get("content"), str)),
                            key=lambda i: -len(messages[i]["content"]))  # fmt: skip
        for i in candidates:
            if excess_chars <= 0:
                break
            content: str = messages[i]["content"]
            keep = max(0, len(content) - excess_chars - len(TRUNCATION_MARK))
            if keep >= len(content) or len(content) <= len(TRUNCATION_MARK):
                continue  # cutting would not make it shorter
            # Keep the start and the end: instructions tend to sit at both.
            head, tail = (
                content[: keep // 2],
                content[len(content) - (keep - keep // 2) :] if keep else "",
            )
            messages[i] = {**messages[i], "content": head + TRUNCATION_MARK + tail}
            excess_chars -= len(content) - len(messages[i]["content"])
        return messages
