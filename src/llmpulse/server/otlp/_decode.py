"""OTLP/HTTP trace requests (protobuf or JSON) into llmpulse ``Span`` records.

Both encodings end in the same ``ExportTraceServiceRequest`` message and the same mapping, so
a span sent as JSON is stored exactly like the same span sent as protobuf.

OTLP/JSON is not protobuf's canonical JSON, which is the trap peers fell into: ``traceId``,
``spanId`` and ``parentSpanId`` are hex (case-insensitive), where ``json_format.Parse`` reads
bytes as base64 and turns a 32-character trace id into 24 bytes. So the ids are rewritten to
base64 before the message is parsed, and an id that is not hex (a base64 id, say) fails the
request with a message that names it. Unknown fields are ignored, as the spec requires; enum
values may be integers (the spec) or names (accepted, as protobuf's parser does).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format  # type: ignore[import-untyped, unused-ignore]
from google.protobuf.message import DecodeError  # type: ignore[import-untyped, unused-ignore]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmpulse.pricing import PriceTable
from llmpulse.schema import Span, SpanEvent
from llmpulse.server.otlp._mapping import (
    DEFAULT_LIMITS,
    Limits,
    RawSpan,
    SharedAttributes,
    SpanRejected,
    map_span,
    shared_attributes,
)

__all__ = ["DecodedBatch", "OtlpDecodeError", "decode_json", "decode_protobuf", "decode_request"]

_MAX_REASONS = 5  # distinct rejection messages echoed back in partial_success.error_message


class OtlpDecodeError(ValueError):
    """The request body is not a valid ``ExportTraceServiceRequest``: answer 400, never retried."""


@dataclass(slots=True)
class DecodedBatch:
    """The spans of one request that can be stored, and what was rejected and why."""

    spans: list[Span] = field(default_factory=list)
    rejected: int = 0
    duplicates: int = 0  # the same (trace_id, span_id) twice in this request: kept once
    reasons: list[str] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        """Count one rejected span, remembering the first few distinct reasons."""
        self.rejected += 1
        if len(self.reasons) < _MAX_REASONS and reason not in self.reasons:
            self.reasons.append(reason)


def decode_protobuf(
    body: bytes, prices: PriceTable | None, limits: Limits = DEFAULT_LIMITS
) -> DecodedBatch:
    """Spans of a binary protobuf ``ExportTraceServiceRequest``."""
    try:
        request = ExportTraceServiceRequest.FromString(body)
    except DecodeError as exc:
        raise OtlpDecodeError(f"body is not a protobuf ExportTraceServiceRequest: {exc}") from exc
    return _spans_of(request, prices, limits)


def decode_json(
    body: bytes, prices: PriceTable | None, limits: Limits = DEFAULT_LIMITS
) -> DecodedBatch:
    """Spans of an OTLP/JSON ``ExportTraceServiceRequest`` (hex ids, unknown fields ignored)."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OtlpDecodeError(f"body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise OtlpDecodeError(
            f"body must be a JSON object (ExportTraceServiceRequest), got {type(document).__name__}"
        )
    _ids_to_base64(document)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise OtlpDecodeError(f"body is not an OTLP/JSON ExportTraceServiceRequest: {exc}") from exc
    return _spans_of(request, prices, limits)


def decode_request(
    body: bytes, json_encoded: bool, prices: PriceTable | None, limits: Limits = DEFAULT_LIMITS
) -> DecodedBatch:
    """Spans of a request body in either encoding."""
    if json_encoded:
        return decode_json(body, prices, limits)
    return decode_protobuf(body, prices, limits)


# -- OTLP/JSON ids ------------------------------------------------------------------------------


def _list(node: dict[str, Any], camel: str, snake: str) -> list[Any]:
    value = node.get(camel, node.get(snake))
    return value if isinstance(value, list) else []


def _ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite every span and link id from OTLP's hex to the base64 protobuf's parser reads."""
    for resource_spans in _list(document, "resourceSpans", "resource_spans"):
        if not isinstance(resource_spans, dict):
            continue
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
            if not isinstance(scope_spans, dict):
                continue
            for span in _list(scope_spans, "spans", "spans"):
                if not isinstance(span, dict):
                    continue
                _hex_fields(span)
                for link in _list(span, "links", "links"):
                    if isinstance(link, dict):
                        _hex_fields(link)


_ID_FIELDS = (
    ("traceId", "trace_id"),
    ("spanId", "span_id"),
    ("parentSpanId", "parent_span_id"),
)


def _hex_fields(node: dict[str, Any]) -> None:
    for camel, snake in _ID_FIELDS:
        for key in (camel, snake):
            value = node.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise OtlpDecodeError(f"{camel} must be a hex string, got {type(value).__name__}")
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raise OtlpDecodeError(
                    f"{camel} {value[:48]!r} is not hex: OTLP/JSON encodes ids as hex "
                    "(base64 is the protobuf JSON mapping, which OTLP does not use)"
                ) from None
            node[key] = base64.b64encode(raw).decode("ascii")


# -- message to spans ---------------------------------------------------------------------------


def _spans_of(
    request: ExportTraceServiceRequest, prices: PriceTable | None, limits: Limits
) -> DecodedBatch:
    batch = DecodedBatch()
    seen: set[tuple[str, str]] = set()
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service = resource.pop("service.name", None)
        service = service if type(service) is str and service else None
        for scope_spans in resource_spans.scope_spans:
            extra: dict[str, Any] = {}
            if resource:
                extra["otel.resource"] = resource
            if scope_spans.scope.name:
                extra["otel.scope.name"] = scope_spans.scope.name
            if scope_spans.scope.version:
                extra["otel.scope.version"] = scope_spans.scope.version
            # Resource and scope are the same for every span of the scope: cleaned once.
            shared = shared_attributes(extra, limits) if extra else None
            for pb in scope_spans.spans:
                raw = _raw(pb, service, shared)
                try:
                    span = map_span(raw, prices, limits)
                except SpanRejected as exc:
                    batch.reject(str(exc))
                    continue
                key = (span.trace_id, span.span_id)
                if key in seen:
                    batch.duplicates += 1
                    continue
                seen.add(key)
                batch.spans.append(span)
    return batch


def _raw(pb: Any, service: str | None, shared: SharedAttributes | None) -> RawSpan:
    extra: dict[str, Any] = {}
    if pb.links:
        extra["otel.links"] = [
            {
                "trace_id": link.trace_id.hex(),
                "span_id": link.span_id.hex(),
                "attributes": _attributes(link.attributes),
            }
            for link in pb.links
        ]
    if pb.trace_state:
        extra["otel.trace_state"] = pb.trace_state
    if pb.dropped_attributes_count:
        extra["otel.dropped_attributes_count"] = pb.dropped_attributes_count
    events = (
        [SpanEvent(e.name, e.time_unix_nano / 1e9, _attributes(e.attributes)) for e in pb.events]
        if pb.events
        else []
    )
    status = pb.status
    return RawSpan(
        pb.trace_id,
        pb.span_id,
        pb.parent_span_id,
        pb.name,
        pb.kind,
        pb.start_time_unix_nano,
        pb.end_time_unix_nano,
        _attributes(pb.attributes),
        events,
        status.code,
        status.message,
        service,
        extra,
        shared,
    )


_SCALARS = frozenset(("string_value", "int_value", "double_value", "bool_value"))


def _attributes(key_values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    scalars = _SCALARS
    for kv in key_values:
        value = kv.value
        which = value.WhichOneof("value")
        out[kv.key] = getattr(value, which) if which in scalars else _value(value)
    return out


def _value(any_value: Any) -> Any:
    which = any_value.WhichOneof("value")
    if which == "string_value":
        return any_value.string_value
    if which == "int_value":
        return any_value.int_value
    if which == "double_value":
        return any_value.double_value
    if which == "bool_value":
        return any_value.bool_value
    if which == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in any_value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(any_value.bytes_value).decode("ascii")
    return None  # unset, or a string table index (profiles only), which spans never use
