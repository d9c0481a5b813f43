"""``POST /api/v1/ingest``: batches of spans, metric points and runs from the SDK (scope ``ingest``).

The body is JSON ``{"spans": [...], "metric_points": [...], "runs": [...]}`` (each list
optional), fields as in ``llmpulse.schema`` with times in Unix seconds, optionally gzip-encoded
(``Content-Encoding: gzip``). The answer is 200 with counts only after the batch committed.

* The ingest gate is taken before the body is read: past its queue the request gets 503 with
  Retry-After without costing memory.
* The body limit (``max_body_bytes``) applies to the bytes read and again to the bytes after
  decompression (a gzip bomb stops at the limit): 413.
* A batch is all or nothing: an invalid record is 422 naming it (``spans[3].start_time``) and
  nothing of the batch is written.
* A span whose ``span_id`` is already stored is skipped and counted as a duplicate, so a client
  that retries after a lost answer stores each span once.
"""

from __future__ import annotations

import zlib
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from llmpulse._rows import MAX_COUNT
from llmpulse.errors import RecordRejectedError
from llmpulse.schema import MetricPoint, Run, Span, SpanEvent
from llmpulse.server.deps import INGEST, ServerState, get_state
from llmpulse.server.metrics import ServerMetrics, metrics_of
from llmpulse.server.native_decode import Decoder
from llmpulse.server.problems import Problem, validation_problem

__all__ = ["OPENAPI_MODELS", "IngestBatch", "IngestResult", "read_body", "router"]

router = APIRouter(prefix="/api/v1", tags=["ingest"])

Count = Field(default=None, ge=0, le=MAX_COUNT)


class _Strict(BaseModel):
    # strict: a JSON true is not a number and 1 is not text; unknown fields are refused.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class EventIn(_Strict):
    """Something that happened at one instant inside a span."""

    name: str = Field(min_length=1)
    time: float
    attributes: dict[str, Any] = Field(default_factory=dict)


class SpanIn(_Strict):
    """A span as ``llmpulse.schema.Span``: times in Unix seconds, tokens as providers bill them."""

    trace_id: str = Field(min_length=1, max_length=64)
    span_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1)
    start_time: float
    end_time: float
    kind: str = Field(default="span", min_length=1, max_length=32)
    parent_id: str | None = Field(default=None, max_length=64)
    status: Literal["ok", "error"] = "ok"
    error_type: str | None = None
    error_message: str | None = None
    model: str | None = None
    provider: str | None = None
    prompt_version: str | None = None
    input_tokens: int | None = Count
    output_tokens: int | None = Count
    total_tokens: int | None = Count
    cache_read_tokens: int | None = Count
    cache_write_tokens: int | None = Count
    reasoning_tokens: int | None = Count
    cost_usd: float | None = Field(default=None, ge=0)
    ttft_ms: float | None = Field(default=None, ge=0)
    session_id: str | None = None
    user_id: str | None = None
    service: str | None = None
    input: str | None = None
    output: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    events: list[EventIn] = Field(default_factory=list)


class MetricPointIn(_Strict):
    """One value of a named series, optionally of a run and a step."""

    name: str = Field(min_length=1)
    value: float
    timestamp: float
    labels: dict[str, str] = Field(default_factory=dict)
    run_id: str | None = Field(default=None, min_length=1, max_length=128)
    step: int | None = Count
    point_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Idempotency key: a point whose point_id is stored already is not stored "
        "again (a batch resent after a lost answer). The SDK sets a random one.",
    )


class RunIn(_Strict):
    """An experiment or benchmark run (upserted by ``run_id``: its last state wins)."""

    run_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1)
    started_at: float
    kind: str = Field(default="experiment", min_length=1, max_length=64)
    experiment: str | None = None
    model: str | None = None
    status: Literal["running", "finished", "failed"] = "running"
    ended_at: float | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)


class IngestBatch(_Strict):
    """One batch: any of spans, metric points and runs."""

    spans: list[SpanIn] = Field(default_factory=list)
    metric_points: list[MetricPointIn] = Field(default_factory=list)
    runs: list[RunIn] = Field(default_factory=list)


class IngestResult(BaseModel):
    """What was committed: new records per kind, and spans and points already stored."""

    spans: int
    metric_points: int
    runs: int
    duplicates: int = Field(description="spans skipped: their span_id was stored already")
    duplicate_metric_points: int = Field(
        default=0, description="metric points skipped: their point_id was stored already"
    )
    rejected: dict[str, int] = Field(default_factory=dict)


# Valid bodies become records without building the models above (the models check the rest).
_DECODER = Decoder(IngestBatch, SpanIn, EventIn, MetricPointIn, RunIn)

# Models the OpenAPI document lists although no route parameter declares them (the body is
# read by hand, for gzip and the size limit).
OPENAPI_MODELS = [IngestBatch]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, gunzipped when ``Content-Encoding: gzip``; 413 past ``limit`` bytes
    (read or decompressed), 415 for another encoding, 400 for a corrupt gzip stream."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        raise Problem(415, f"Content-Encoding {encoding!r} is not supported; use gzip or none",
                      kind="unsupported-encoding")  # fmt: skip
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
    chunks: list[bytes] = []
    size = raw = 0
    try:
        async for chunk in request.stream():
            raw += len(chunk)
            if raw > limit:
                raise _too_large(limit)
            data = chunk if inflater is None else _inflate(inflater, chunk, limit - size, limit)
            size += len(data)
            if size > limit:
                raise _too_large(limit)
            chunks.append(data)
        if inflater is not None:
            chunks.append(_finish(inflater, limit - size, limit))
    except zlib.error as exc:
        raise Problem(400, f"the body is not valid gzip: {exc}", kind="bad-encoding") from None
    return b"".join(chunks)


def _inflate(inflater: Any, chunk: bytes, room: int, limit: int) -> bytes:
    """Inflate at most ``room + 1`` bytes: a gzip bomb stops at the limit, never past it."""
    data: bytes = inflater.decompress(chunk, room + 1)
    if inflater.unconsumed_tail or len(data) > room:
        raise _too_large(limit)
    return data


def _finish(inflater: Any, room: int, limit: int) -> bytes:
    """The rest of the stream; a stream that ends early is corrupt."""
    tail: bytes = inflater.flush()
    if len(tail) > room:
        raise _too_large(limit)
    if not inflater.eof:
        raise zlib.error("truncated gzip stream")
    return tail


def _too_large(limit: int) -> Problem:
    return Problem(413, f"the body is larger than {limit} bytes (after decompression); "
                   "send smaller batches", kind="too-large", limit_bytes=limit)  # fmt: skip


def _records(batch: IngestBatch) -> tuple[list[Span], list[MetricPoint], list[Run]]:
    spans = []
    for s in batch.spans:
        fields = dict(s)
        fields["events"] = [SpanEvent(e.name, e.time, e.attributes) for e in s.events]
        spans.append(Span(**fields))
    points = [MetricPoint(**dict(p)) for p in batch.metric_points]
    runs = [Run(**dict(r)) for r in batch.runs]
    return spans, points, runs


def _check_content_type(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise Problem(415, f"Content-Type must be application/json, got {media or 'none'!r}",
                      kind="unsupported-media-type")  # fmt: skip


@router.post(
    "/ingest",
    response_model=IngestResult,
    dependencies=[Depends(INGEST)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestBatch"}}},
        }
    },
)  # fmt: skip
async def ingest(request: Request, state: ServerState = Depends(get_state)) -> IngestResult:
    """Store a batch of spans, metric points and runs; answers after the commit."""
    _check_content_type(request)
    async with state.gate.slot():
        body = await read_body(request, state.settings.max_body_bytes)
        records = _DECODER.decode(body)
        if records is None:  # not plainly valid: pydantic decides, and words its errors
            try:
                batch = IngestBatch.model_validate_json(body)
            except ValidationError as exc:
                errors = exc.errors(include_url=False, include_input=False)
                bad_json = any(e["type"] == "json_invalid" for e in errors)
                raise validation_problem(errors, status=400 if bad_json else 422) from None
            records = _records(batch)
            del batch
        del body
        spans, points, runs = records
        try:
            result = await run_in_threadpool(
                _write, state, spans, points, runs, metrics_of(request.app)
            )
        except RecordRejectedError as exc:
            raise Problem(422, str(exc), kind="validation", title="Request is not valid",
                          errors=[{"field": exc.where, "msg": exc.reason}]) from None  # fmt: skip
    return result


def _write(
    state: ServerState,
    spans: list[Span],
    points: list[MetricPoint],
    runs: list[Run],
    metrics: ServerMetrics,
) -> IngestResult:
    state.prices.price(spans)
    written = state.store.write(spans, points, runs, all_or_nothing=True)
    metrics.record_ingest("native", spans, written)
    return IngestResult(
        spans=written.spans,
        metric_points=written.points,
        runs=written.runs,
        duplicates=written.duplicates,
        duplicate_metric_points=written.point_duplicates,
        rejected=dict(written.reasons),
    )
