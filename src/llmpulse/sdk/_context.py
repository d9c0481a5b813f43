"""The current span (a ContextVar), trace and span ids, and the sampling decision.

Ids are kept as ints on the caller's thread (cheap to make) and turned into the hex strings of
the W3C trace-context format on the export thread.

Ids are made so that stored spans land next to each other in the database's indexes: a B-tree
fed random keys touches a different page for every row, which halves SQLite's insert rate and
multiplies what each commit writes. So a trace id is Unix milliseconds (top 48 bits, like
UUIDv7 or AWS X-Ray ids) over 80 random bits; sampling reads only the low 64, which stay
random (W3C trace-context level 2 asks for random low 56). A span id is a per-process counter
started at a random 64-bit point: unique within the process by construction, and two
processes collide only if their ranges overlap, far less likely than a birthday collision of
random ids. A forked child starts its own counter (``random`` reseeds itself there first).
"""

from __future__ import annotations

import itertools
import os
import random
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmpulse.sdk._spans import SpanHandle

__all__ = [
    "call_defaults",
    "current",
    "current_span",
    "new_span_id",
    "new_trace_id",
    "sample_threshold",
    "span_hex",
    "trace_hex",
    "trace_sampled",
]

# The span that new spans and llm calls are parented to, per thread and per asyncio task.
current_span: ContextVar[SpanHandle | None] = ContextVar("llmpulse_current_span", default=None)


def current() -> SpanHandle | None:
    """The span new spans and llm calls nest under here: the current span, or the span an
    integration says is current inside it (``SpanHandle._inner``: a LangGraph graph run, whose
    node runs leave the context variable alone, names the node running in this context)."""
    span = current_span.get()
    if span is not None and span._inner is not None:
        return span._inner(span)
    return span


# Fields that llm calls recorded inside ``llmpulse.using(...)`` take unless they set their own.
call_defaults: ContextVar[dict[str, Any] | None] = ContextVar(
    "llmpulse_call_defaults", default=None
)

_getrandbits = random.getrandbits
_time_ns = time.time_ns
_LOW64 = (1 << 64) - 1
_span_ids = itertools.count(_getrandbits(64))


def new_trace_id() -> int:
    """A non-zero 128-bit trace id: Unix milliseconds in the top 48 bits, 80 random bits below."""
    return (_time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF) << 80 | _getrandbits(80) or 1


def new_span_id() -> int:
    """A non-zero 64-bit span id, the next of this process's counter (``next`` is atomic)."""
    return next(_span_ids) & _LOW64 or 1


def new_point_id() -> str:
    """A metric point's idempotency key: 128 random bits in hex (``random`` reseeds on fork)."""
    return f"{_getrandbits(128):032x}"


def _restart_span_ids() -> None:
    global _span_ids
    _span_ids = itertools.count(_getrandbits(64))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_span_ids)


def trace_hex(trace_id: int) -> str:
    """The 32-hex-digit form of a trace id."""
    return f"{trace_id:032x}"


def span_hex(span_id: int) -> str:
    """The 16-hex-digit form of a span id."""
    return f"{span_id:016x}"


def sample_threshold(rate: float) -> int:
    """The bound under which a trace id's low 64 bits mean "keep" (``rate`` of all ids)."""
    if rate >= 1.0:
        return 1 << 64
    return int(max(0.0, rate) * (1 << 64))


def trace_sampled(trace_id: int, threshold: int) -> bool:
    """Whether a trace is kept; a pure function of its id, so every span of it agrees."""
    return (trace_id & _LOW64) < threshold


def describe(value: Any) -> str:
    """A short, safe description of a value for log messages."""
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not break logging
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."
