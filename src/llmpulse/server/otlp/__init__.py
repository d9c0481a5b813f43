"""OTLP/HTTP trace ingest: decode requests (protobuf or JSON) and map GenAI/OpenInference
attributes onto llmpulse's span columns. Pure: no I/O, no web framework (the router is
``llmpulse.server.routers.otlp``)."""

from __future__ import annotations

from llmpulse.server.otlp._decode import (
    DecodedBatch,
    OtlpDecodeError,
    decode_json,
    decode_protobuf,
    decode_request,
)
from llmpulse.server.otlp._mapping import (
    FLAG_CLAMPED,
    FLAG_TRUNCATED,
    Limits,
    RawSpan,
    SpanRejected,
    map_span,
    normalize_provider,
)

__all__ = [
    "FLAG_CLAMPED",
    "FLAG_TRUNCATED",
    "DecodedBatch",
    "Limits",
    "OtlpDecodeError",
    "RawSpan",
    "SpanRejected",
    "decode_json",
    "decode_protobuf",
    "decode_request",
    "map_span",
    "normalize_provider",
]
