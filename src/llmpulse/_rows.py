"""The row contract between whoever records spans and the store: columns, rules and limits.

One place says what a stored span row is: the order of ``SPAN_COLUMNS`` (the store's insert
statement and every ready-made row follow it), the limits of each value, and when a row may be
written without further checks (``span_row``). The SDK builds the rows of the embedded store
with ``span_row``; the store checks incoming ``Span`` records with the same function and only
takes its slower, coercing path when it returns ``None``. Adding a column means adding it here
(``SPAN_COLUMNS`` and a trailing parameter of ``span_row``), in the table and in whoever fills
it; nobody else repeats the order or the rules.

It also says which text the SDK keeps: the caps every text field is cut to before it is queued
(with a marker saying how much was cut) and the repairs of values no database can store.

This is a leaf: it imports nothing from llmpulse.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = [
    "EMPTY_LIST",
    "EMPTY_OBJECT",
    "MAX_ATTRIBUTES_CHARS",
    "MAX_COUNT",
    "MAX_EVENTS",
    "MAX_EVENTS_CHARS",
    "MAX_ID_CHARS",
    "MAX_KIND_CHARS",
    "MAX_LABEL_CHARS",
    "MAX_MESSAGE_CHARS",
    "MAX_RUN_ID_CHARS",
    "MAX_RUN_KIND_CHARS",
    "MAX_RUN_STATUS_CHARS",
    "MAX_STATUS_CHARS",
    "POINT_COLUMNS",
    "RUN_COLUMNS",
    "SPAN_COLUMNS",
    "STATUSES",
    "clean_text",
    "finite",
    "span_row",
    "text_ok",
]

SPAN_COLUMNS = (
    "span_id", "trace_id", "parent_id", "name", "kind", "start_time", "end_time", "latency_ms",
    "status", "error_type", "error_message", "model", "provider", "prompt_version",
    "input_tokens", "output_tokens", "total_tokens", "cache_read_tokens", "cache_write_tokens",
    "reasoning_tokens", "cost_usd", "ttft_ms", "session_id", "user_id", "service", "input",
    "output", "attributes", "events",
)  # fmt: skip
POINT_COLUMNS = ("name", "value", "timestamp", "labels", "run_id", "step", "point_id")
RUN_COLUMNS = (
    "run_id", "name", "kind", "experiment", "model", "status", "started_at", "ended_at",
    "params", "metrics", "tags",
)  # fmt: skip

# -- what the store accepts ------------------------------------------------------------------
# A span's token count: 4.29 billion, far past any context window. Not BIGINT's 2**63 - 1:
# rollups sum counts, and 2**31 spans of this size still fit in one rollup row's BIGINT sum.
MAX_COUNT = 2**32 - 1
MAX_ID_CHARS = 64  # span_id, trace_id, parent_id
MAX_KIND_CHARS = 32
MAX_STATUS_CHARS = 16
MAX_RUN_ID_CHARS = 128  # also a metric point's run_id
MAX_RUN_KIND_CHARS = 64
MAX_RUN_STATUS_CHARS = 32
STATUSES = frozenset(("ok", "error"))
EMPTY_OBJECT = "{}"
EMPTY_LIST = "[]"

# -- what the SDK keeps of a record (cut, with a marker, before it is queued) ----------------
# Prompt and response are cut to the max_content_chars setting; everything else to these.
MAX_LABEL_CHARS = 1024  # name, model, provider, prompt_version, session/user id, error_type
MAX_MESSAGE_CHARS = 8192  # error_message (an exception's text)
MAX_ATTRIBUTES_CHARS = 65536  # a record's attributes as a whole (each value also cut)
MAX_EVENTS = 128  # events kept per span
MAX_EVENTS_CHARS = 65536  # a span's events as a whole

# Text no database stores as given: NUL (PostgreSQL refuses it) and lone UTF-16 surrogates
# (not encodable as UTF-8, so the driver refuses the whole statement).
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def text_ok(text: str) -> bool:
    """Whether ``text`` can be stored as it is (no NUL character, no lone surrogate)."""
    # isascii() is O(1) in CPython: the common ASCII text costs one NUL scan. Other text is
    # encoded once (a C loop, ~7x faster than a regular expression looking for surrogates).
    return "\x00" not in text and (text.isascii() or _encodes(text))


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean_text(text: str) -> str:
    """``text`` with every NUL character and lone surrogate replaced by U+FFFD."""
    return _BAD_TEXT.sub("\ufffd", text)


def finite(value: float) -> bool:
    """Whether a float is neither NaN nor infinite."""
    return math.isfinite(value)


def span_row(
    span_id: Any, trace_id: Any, parent_id: Any, name: Any, kind: Any, start_time: Any,
    end_time: Any, status: Any, error_type: Any, error_message: Any, model: Any, provider: Any,
    prompt_version: Any, input_tokens: Any, output_tokens: Any, total_tokens: Any,
    cache_read_tokens: Any, cache_write_tokens: Any, reasoning_tokens: Any, cost_usd: Any,
    ttft_ms: Any, session_id: Any, user_id: Any, service: Any, input: Any, output: Any,
    attributes: Any, events: Any,
) -> tuple[Any, ...] | None:  # fmt: skip
    """The ``SPAN_COLUMNS`` row of these values, or ``None`` unless each is storable as it is.

    Storable as it is: every value has its exact type (``str``, ``int``, ``float``, or
    ``None`` where the column allows it), ids, kind and status within their limits, status
    'ok' or 'error', times finite, counts in 0..``MAX_COUNT``, cost and ttft finite and >= 0,
    no text with a NUL character or a lone surrogate. ``attributes`` and ``events`` are their
    JSON text already (the caller encodes them). ``latency_ms`` is derived from the times.
    The parameters are the columns in their order; a new column is a new trailing parameter.
    """
    if not (
        type(span_id) is str and type(trace_id) is str and type(name) is str
        and type(kind) is str and type(status) is str
        and type(start_time) is float and type(end_time) is float
        and 0 < len(span_id) <= MAX_ID_CHARS and 0 < len(trace_id) <= MAX_ID_CHARS and name
        and 0 < len(kind) <= MAX_KIND_CHARS and (status == "ok" or status == "error")
        and start_time - start_time == 0.0 and end_time - end_time == 0.0  # nan, inf fail
        and (parent_id is None or (type(parent_id) is str and len(parent_id) <= MAX_ID_CHARS))
        and type(attributes) is str and type(events) is str
    ):  # fmt: skip
        return None
    for t in (
        span_id, trace_id, parent_id, name, kind, error_type, error_message, model, provider,
        prompt_version, session_id, user_id, service, input, output, attributes, events,
    ):  # fmt: skip
        if t is not None and (
            type(t) is not str or "\x00" in t or not (t.isascii() or _encodes(t))
        ):
            return None
    for n in (
        input_tokens, output_tokens, total_tokens, cache_read_tokens, cache_write_tokens,
        reasoning_tokens,
    ):  # fmt: skip
        if n is not None and (type(n) is not int or n < 0 or n > MAX_COUNT):
            return None
    if (
        cost_usd is not None
        and not (type(cost_usd) is float and cost_usd >= 0.0 and cost_usd - cost_usd == 0.0)
    ) or (
        ttft_ms is not None
        and not (type(ttft_ms) is float and ttft_ms >= 0.0 and ttft_ms - ttft_ms == 0.0)
    ):
        return None
    if "\\u0000" in attributes or "\\u0000" in events:  # JSON's NUL: jsonb refuses it
        return None
    return (
        span_id, trace_id, parent_id, name, kind, start_time, end_time,
        (end_time - start_time) * 1000.0 if end_time > start_time else 0.0, status,
        error_type, error_message, model, provider, prompt_version, input_tokens,
        output_tokens, total_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
        cost_usd, ttft_ms, session_id, user_id, service, input, output, attributes, events,
    )  # fmt: skip
