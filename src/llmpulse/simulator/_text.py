"""Token estimates for prompts and plausible, seeded answer text."""

from __future__ import annotations

import json
import math
import random
from typing import Any

__all__ = ["estimate_input_tokens", "estimate_prompt_tokens", "generate_words", "message_text"]

# Close to OpenAI's accounting for chat models: each message costs a few tokens of framing,
# and every request is primed with the assistant's reply header.
_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_NAME = 1
_REPLY_PRIMING = 3
_CHARS_PER_TOKEN = 4
_IMAGE_TOKENS = 85  # a low-detail image

_WORDS = (  # noqa: SIM905 - a word list reads better as one string
    "the system model response request pipeline latency token cost trace span metric data "
    "value result answer question context window prompt user team service query update "
    "version release feature change support issue error retry policy limit budget window "
    "report summary analysis review step process stage batch job task queue worker run "
    "evaluation benchmark quality accuracy signal baseline threshold alert dashboard "
    "is are was can will should may could would often usually also then however therefore "
    "because while when where which that this these those each every many most some "
    "first second next last new clear simple careful reliable fast small large useful "
    "important recent current stable expected measured observed overall typical "
    "and or but so of in on for with by from to at as into over under between across "
    "we you it they one two three several more less better higher lower steady"
).split()
_STARTERS = (
    "In short,",
    "Overall,",
    "Here is the gist:",
    "To answer directly,",
    "Put simply,",
    "Based on the context,",
    "In practice,",
    "As a first step,",
)


def message_text(content: Any) -> tuple[str, int]:
    """The text of a message's content and the extra tokens of its non-text parts (images)."""
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    if isinstance(content, list):
        texts: list[str] = []
        extra = 0
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, dict) and part.get("type") in ("image_url", "input_image"):
                extra += _IMAGE_TOKENS
            else:
                texts.append(json.dumps(part, default=str))
        return "\n".join(texts), extra
    return json.dumps(content, default=str), 0


def _text_tokens(text: str) -> int:
    return math.ceil(len(text) / _CHARS_PER_TOKEN) if text else 0


def estimate_prompt_tokens(messages: list[dict[str, Any]], tools: Any = None) -> int:
    """Prompt tokens of a chat request: about 4 characters a token, plus per-message framing."""
    total = _REPLY_PRIMING
    for message in messages:
        text, extra = message_text(message.get("content"))
        total += _TOKENS_PER_MESSAGE + _text_tokens(text) + extra
        if message.get("name"):
            total += _TOKENS_PER_NAME + _text_tokens(str(message["name"]))
        if message.get("tool_calls"):
            total += _text_tokens(json.dumps(message["tool_calls"], default=str))
    if tools:
        total += _text_tokens(json.dumps(tools, default=str))
    return total


def estimate_input_tokens(item: str | list[int]) -> int:
    """Tokens of one embeddings input: a text as chat counts message text (about 4 characters a
    token, with no message framing), a token array as its length."""
    return _text_tokens(item) if isinstance(item, str) else len(item)


def _topic(messages: list[dict[str, Any]]) -> list[str]:
    """A few words of the last user message, so answers look like they relate to it."""
    for message in reversed(messages):
        if message.get("role") == "user":
            text, _ = message_text(message.get("content"))
            words = [w.strip(".,;:!?\"'()[]{}").lower() for w in text.split()]
            return [w for w in words if w.isalpha() and len(w) > 3][:3]
    return []


def generate_words(rng: random.Random, n_tokens: int, messages: list[dict[str, Any]]) -> list[str]:
    """``n_tokens`` pieces of plausible text (one piece = one token), joined they read as prose."""
    pieces: list[str] = []
    topic = _topic(messages)
    sentence_left = 0
    while len(pieces) < n_tokens:
        if sentence_left == 0:
            sentence_left = rng.randint(6, 18)
            if not pieces:
                pieces.append(rng.choice(_STARTERS))
                if topic and len(pieces) < n_tokens:
                    pieces.append(" " + " ".join(topic))
                continue
            word = rng.choice(_WORDS).capitalize()
        else:
            word = rng.choice(_WORDS)
        sentence_left -= 1
        end = "." if sentence_left == 0 else ("," if rng.random() < 0.08 else "")
        pieces.append(" " + word + end)
    pieces = pieces[:n_tokens]
    if pieces and not pieces[-1].endswith("."):
        pieces[-1] += "."
    return pieces
