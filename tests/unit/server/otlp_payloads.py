"""OTLP requests for tests, built with the real opentelemetry-proto messages.

``request(...)`` makes an ``ExportTraceServiceRequest``; ``as_json`` encodes it the way
OTLP/JSON says (hex ids, integer enums, lowerCamelCase), which protobuf's own JSON printer
does not do for ids.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


def any_value(value: Any) -> AnyValue:
    """The AnyValue of a Python value."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    if isinstance(value, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(key_values(value))
        return out
    raise TypeError(type(value))


def key_values(attributes: dict[str, Any]) -> list[KeyValue]:
    """KeyValue list of a dict."""
    return [KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()]


def span(
    name: str = "chat gpt-4o",
    *,
    span_id: int = 1,
    parent: int | None = None,
    trace_id: bytes = TRACE,
    attributes: dict[str, Any] | None = None,
    start_ns: int = START_NS,
    duration_ms: int = 250,
    error: str | None = None,
    kind: int = PbSpan.SPAN_KIND_CLIENT,
    events: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
) -> PbSpan:
    """One protobuf span."""
    pb = PbSpan(
        trace_id=trace_id,
        span_id=span_id.to_bytes(8, "big"),
        parent_span_id=b"" if parent is None else parent.to_bytes(8, "big"),
        name=name,
        kind=kind,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=start_ns + duration_ms * 1_000_000,
    )
    pb.attributes.extend(key_values(attributes or {}))
    for event_name, event_attrs in events:
        event = pb.events.add(name=event_name, time_unix_nano=start_ns + 1000)
        event.attributes.extend(key_values(event_attrs))
    if error is not None:
        pb.status.code = 2
        pb.status.message = error
    return pb


def request(
    *spans: PbSpan, service: str = "checkout", resource: dict[str, Any] | None = None
) -> ExportTraceServiceRequest:
    """A request holding ``spans`` under one resource and one scope."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(key_values({"service.name": service, **(resource or {})}))
    ss = rs.scope_spans.add()
    ss.scope.name = "test.instrumentation"
    ss.scope.version = "1.2.3"
    ss.spans.extend(spans)
    return req


def as_json(req: ExportTraceServiceRequest) -> dict[str, Any]:
    """OTLP/JSON of a request: protobuf's JSON with every id rewritten as hex."""
    doc = json_format.MessageToDict(req, use_integers_for_enums=True)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                for node in [sp, *sp.get("links", [])]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in node:
                            node[key] = base64.b64decode(node[key]).hex()
    return doc


def json_body(req: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON bytes of a request."""
    return json.dumps(as_json(req)).encode()
