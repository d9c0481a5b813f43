"""``POST /v1/traces``: OTLP/HTTP trace ingest, protobuf or JSON, as the OTLP spec says.

* The response uses the request's encoding (``application/x-protobuf`` or ``application/json``;
  parameters such as ``charset`` are ignored).
* 200 means committed: the spans are in the store before the answer leaves. Spans that could
  not be stored are counted in ``partial_success.rejected_spans`` with an English message,
  and the client must not retry them. An empty request succeeds.
* A span already stored (a client re-sending after a network error) is not stored twice and
  not reported as rejected: it is there.
* Errors carry a ``google.rpc.Status`` body, never problem+json: 400 for a body that is not an
  ``ExportTraceServiceRequest`` (never retried), 401/403 for the key, 413 for a body over
  ``max_body_bytes`` after decompression (``gzip``), 415 for another content type or
  encoding, 503 with ``Retry-After`` when ingest is at capacity or the store is
  unreachable (the statuses OTLP clients retry). The store's error is logged; the client gets
  native ingest's detail, which never says where the database is.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from google.protobuf import json_format  # type: ignore[import-untyped, unused-ignore]
from google.rpc import status_pb2  # type: ignore[import-untyped, unused-ignore]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.concurrency import run_in_threadpool

from llmpulse.errors import StoreError, StoreUnavailableError
from llmpulse.server.deps import INGEST, ServerState, get_state
from llmpulse.server.metrics import metrics_of
from llmpulse.server.otlp import DecodedBatch, OtlpDecodeError, decode_request
from llmpulse.server.problems import Problem, store_unavailable_detail
from llmpulse.server.routers.ingest import read_body

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["otlp"])

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_SOURCE = "otlp"
_READ_CHUNK = 64 * 1024
_MAX_ERROR_MESSAGE = 2048  # keeps every answer far below the spec's 4 MiB
# google.rpc.Code of each HTTP status this route answers with.
_GRPC_CODE = {400: 3, 401: 16, 403: 7, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}

_STATUS_SCHEMA = {
    "type": "object",
    "description": "google.rpc.Status (in the request's encoding)",
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"},
                   "details": {"type": "array", "items": {"type": "object"}}},
}  # fmt: skip
_ERROR = {
    "content": {JSON: {"schema": _STATUS_SCHEMA},
                PROTOBUF: {"schema": {"type": "string", "format": "binary"}}},
}  # fmt: skip
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "ExportTraceServiceResponse: committed; partial_success counts spans "
        "that were not stored",
        "content": {
            JSON: {"schema": {"type": "object", "properties": {"partialSuccess": {
                "type": "object", "properties": {"rejectedSpans": {"type": "string"},
                                                 "errorMessage": {"type": "string"}}}}}},
            PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
        },
    },
    **{status: {"description": why, **_ERROR} for status, why in (
        (400, "Not an ExportTraceServiceRequest"), (401, "Missing or invalid API key"),
        (403, "The key lacks the ingest scope"), (413, "Body too large after decompression"),
        (415, "Unsupported content type or encoding"),
        (503, "At capacity or store unreachable; retry after Retry-After seconds"),
    )},
}  # fmt: skip
_REQUEST_BODY = {
    "required": False,
    "content": {
        PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
        JSON: {"schema": {"type": "object", "description": "OTLP/JSON ExportTraceServiceRequest"}},
    },
}


class _Answer(Exception):
    """End the request with a google.rpc.Status of this HTTP status."""

    def __init__(
        self, status: int, message: str, outcome: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.outcome = outcome
        self.headers = headers or {}


@router.post(
    "/traces",
    summary="OTLP/HTTP trace export",
    response_class=Response,
    responses=_RESPONSES,
    openapi_extra={"x-llmpulse-scope": "ingest", "requestBody": _REQUEST_BODY},
)
async def export_traces(request: Request) -> Response:
    """Store the spans of an ``ExportTraceServiceRequest`` (protobuf or OTLP/JSON)."""
    encoding = _media_type(request.headers.get("content-type"))
    as_json = encoding != PROTOBUF  # errors before the type is known are answered in JSON
    metrics = metrics_of(request.app)
    try:
        if encoding not in (PROTOBUF, JSON):
            raise _Answer(415, f"Content-Type must be {PROTOBUF} or {JSON}, got "
                          f"{request.headers.get('content-type')!r}", "unsupported")  # fmt: skip
        state = get_state(request)
        await _authorize(request)
        try:
            async with state.gate.slot():
                body = await _read(request, state.settings.max_body_bytes)
                batch, result = await run_in_threadpool(_store, state, body, as_json)
        except Problem as exc:  # the gate is full
            raise _Answer(exc.status, str(exc.detail), "overloaded", dict(exc.headers)) from None
        metrics.record_ingest(
            _SOURCE, batch.spans, result, invalid=batch.rejected, duplicates=batch.duplicates
        )
    except _Answer as answer:
        metrics.request(_SOURCE, answer.outcome)
        return _status(answer, as_json)
    return _success(batch, result, as_json)


_OUTCOME_OF = {400: "invalid", 413: "too_large", 415: "unsupported"}


async def _read(request: Request, limit: int) -> bytes:
    """The body, gunzipped, within ``limit`` (native ingest's reader, answered as Status)."""
    try:
        return await read_body(request, limit)
    except Problem as exc:
        raise _Answer(exc.status, str(exc.detail), _OUTCOME_OF.get(exc.status, "invalid")) from None


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


async def _authorize(request: Request) -> None:
    """The ingest scope's key check, answered as google.rpc.Status instead of problem+json."""
    header = request.headers.get("authorization")
    credentials = None
    if header:
        scheme, _, token = header.partition(" ")
        credentials = HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
    try:
        await run_in_threadpool(INGEST, request, credentials)
    except Problem as exc:
        raise _Answer(exc.status, str(exc.detail), "unauthorized", dict(exc.headers)) from None
    except StoreUnavailableError as exc:  # the key lookup could not reach the store
        raise _unavailable(get_state(request), exc) from None


def _store(state: ServerState, body: bytes, as_json: bool) -> tuple[DecodedBatch, Any]:
    """Decode and write in one trip to the thread pool (each trip costs a thread switch)."""
    batch = _decode(state, body, as_json)
    return batch, _write(state, batch)


def _decode(state: ServerState, body: bytes, as_json: bool) -> DecodedBatch:
    try:
        return decode_request(body, as_json, state.prices.table())
    except OtlpDecodeError as exc:
        raise _Answer(400, str(exc), "invalid") from None


def _write(state: ServerState, batch: DecodedBatch) -> Any:
    if not batch.spans:
        return None
    try:
        return state.store.write(spans=batch.spans)
    except StoreUnavailableError as exc:
        raise _unavailable(state, exc) from None
    except StoreError as exc:
        # Its text names the database (URL, SQL): the log keeps it, the client is told to retry.
        log.warning("OTLP spans not stored: %s", exc)
        raise _Answer(503, "the spans could not be stored; retry later", "unavailable",
                      {"Retry-After": str(state.settings.retry_after_seconds)}) from None  # fmt: skip


def _unavailable(state: ServerState, exc: StoreUnavailableError) -> _Answer:
    """The store cannot be used: 503 with native ingest's detail (no URL) as a Status."""
    return _Answer(503, store_unavailable_detail(exc), "unavailable",
                   {"Retry-After": str(state.settings.retry_after_seconds)})  # fmt: skip


def _success(batch: DecodedBatch, result: Any, as_json: bool) -> Response:
    reasons = list(batch.reasons)
    rejected = batch.rejected
    store_reasons = dict(getattr(result, "reasons", {}) or {})
    store_reasons.pop("duplicate span_id", None)  # already stored: not a loss
    if store_reasons:
        rejected += sum(store_reasons.values())
        reasons += [f"{n} span(s) refused by the store: {why}" for why, n in store_reasons.items()]
    message = ExportTraceServiceResponse()
    if rejected:
        message.partial_success.rejected_spans = rejected
        text = f"{rejected} span(s) rejected: " + "; ".join(reasons)
        message.partial_success.error_message = text[:_MAX_ERROR_MESSAGE]
    return _encoded(message, 200, as_json)


def _status(answer: _Answer, as_json: bool) -> Response:
    message = status_pb2.Status(
        code=_GRPC_CODE.get(answer.status, 2), message=answer.message[:_MAX_ERROR_MESSAGE]
    )
    return _encoded(message, answer.status, as_json, answer.headers)


def _encoded(
    message: Any, status: int, as_json: bool, headers: dict[str, str] | None = None
) -> Response:
    if as_json:
        body = json_format.MessageToJson(message, indent=None).encode()
        return Response(body, status_code=status, media_type=JSON, headers=headers)
    return Response(
        message.SerializeToString(), status_code=status, media_type=PROTOBUF, headers=headers
    )
