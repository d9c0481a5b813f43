"""The recording SDK: client, context propagation, export queue, exporters, instrumentation.

The supported surface is re-exported by ``llmpulse`` itself; this package holds the parts.
"""

from __future__ import annotations

from llmpulse.sdk._client import Client
from llmpulse.sdk._observe import observe
from llmpulse.sdk._spans import NoopSpan, SpanHandle
from llmpulse.sdk._state import (
    flush,
    get_client,
    get_current_span,
    init,
    record_llm_call,
    record_metric,
    shutdown,
    span,
    stats,
    using,
)
from llmpulse.sdk._stats import DROP_REASONS, SdkStats
from llmpulse.sdk.exporters import Exporter

__all__ = [
    "DROP_REASONS",
    "Client",
    "Exporter",
    "NoopSpan",
    "SdkStats",
    "SpanHandle",
    "flush",
    "get_client",
    "get_current_span",
    "init",
    "observe",
    "record_llm_call",
    "record_metric",
    "shutdown",
    "span",
    "stats",
    "using",
]
