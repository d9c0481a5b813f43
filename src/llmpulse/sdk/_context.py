"""The current span (a ContextVar), trace and span ids, and the sampling decision.

Ids are kept as ints on the caller's thread (cheap to make) and turned into the hex strings of
the W3C trace-context format on the export thread. ``random`` reseeds itself in a forked
child, so parent and child never hand out the same ids.
"""

from __future__ import annotations

import random
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmpulse.sdk._spans import SpanHandle

__all__ = [
    "call_defaults",
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

# Fields that llm calls recorded inside ``llmpulse.using(...)`` take unless they set their own.
call_defaults: ContextVar[dict[str, Any] | None] = ContextVar("llmpulse_call_defaults", default=None)

_getrandbits = random.getrandbits
_LOW64 = (1 << 64) - 1


def new_trace_id() -> int:
    """A random non-zero 128-bit trace id."""
    return _getrandbits(128) or 1


def new_span_id() -> int:
    """A random non-zero 64-bit span id."""
    return _getrandbits(64) or 1


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
