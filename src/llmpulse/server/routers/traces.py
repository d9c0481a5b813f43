"""``/api/v1/traces`` and ``/api/v1/spans``: find traces and spans, walk one trace's span tree.

Every listing is cursor-paged (see llmpulse.server.pagination). A trace's spans come in pages
in start order (one index range per page), with ``parent_id`` on each so a client builds the
tree as pages arrive, or asks for one level at a time (``?roots=true``, ``?parent_id=``): a
trace of 30,000 spans costs what its first page costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Path, Query

from llmpulse.schema import SpanKind, SpanStatus
from llmpulse.server.deps import READ, get_store
from llmpulse.server.pagination import (
    Order,
    Page,
    TimeWindow,
    decode_cursor,
    page_of,
    time_window,
)
from llmpulse.server.problems import Problem
from llmpulse.server.schemas import SpanOut, TraceOut
from llmpulse.store import Store

__all__ = ["SpanFilters", "router", "span_filters"]

router = APIRouter(prefix="/api/v1", tags=["traces"], dependencies=[Depends(READ)])

_TEXT = 512  # longest filter value accepted


@dataclass(frozen=True, slots=True)
class SpanFilters:
    """Exact-match filters on spans (``None``: any)."""

    values: dict[str, Any]


def span_filters(
    name: str | None = Query(None, max_length=_TEXT, description="Span name."),
    kind: SpanKind | None = Query(None, description="Span kind."),
    status: SpanStatus | None = Query(None, description="ok or error."),
    model: str | None = Query(None, max_length=_TEXT),
    provider: str | None = Query(None, max_length=_TEXT),
    prompt_version: str | None = Query(None, max_length=_TEXT),
    session_id: str | None = Query(None, max_length=_TEXT),
    user_id: str | None = Query(None, max_length=_TEXT),
    service: str | None = Query(None, max_length=_TEXT),
) -> SpanFilters:
    """Dependency: the span filters of a request."""
    values: dict[str, Any] = {
        "name": name,
        "kind": kind.value if kind else None,
        "status": status.value if status else None,
        "model": model,
        "provider": provider,
        "prompt_version": prompt_version,
        "session_id": session_id,
        "user_id": user_id,
        "service": service,
    }
    return SpanFilters({k: v for k, v in values.items() if v is not None})


@router.get("/traces", response_model=Page[TraceOut])
def list_traces(
    window: TimeWindow = Depends(time_window),
    filters: SpanFilters = Depends(span_filters),
    min_latency_ms: float | None = Query(
        None,
        ge=0,
        allow_inf_nan=False,
        description="Only traces lasting at least this long (first span's start to last end).",
    ),
    min_cost_usd: float | None = Query(
        None, ge=0, allow_inf_nan=False, description="Only traces costing at least this much."
    ),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=1024),
    store: Store = Depends(get_store),
) -> Page[TraceOut]:
    """Traces with a span in the window matching every filter, newest first; the minimums are
    on the whole trace (its duration, its total cost)."""
    after = decode_cursor("traces", cursor, (float, str))
    traces = store.trace_page(
        window.start, window.end, filters=filters.values, after=after, limit=limit + 1,
        min_latency_ms=min_latency_ms, min_cost_usd=min_cost_usd,
    )  # fmt: skip
    rows = [(TraceOut.of(t), (t.start_time, t.trace_id)) for t in traces]
    return page_of("traces", rows, limit)


@router.get("/traces/{trace_id}", response_model=TraceOut)
def get_trace(
    trace_id: str = Path(max_length=64),
    store: Store = Depends(get_store),
) -> TraceOut:
    """One trace's totals; its spans are at ``/traces/{trace_id}/spans``."""
    summary = store.trace_summary(trace_id)
    if summary is None:
        raise Problem(404, f"no trace {trace_id!r}", kind="not-found")
    return TraceOut.of(summary)


@router.get("/traces/{trace_id}/spans", response_model=Page[SpanOut])
def trace_spans(
    trace_id: str = Path(max_length=64),
    limit: int = Query(500, ge=1, le=1000),
    cursor: str | None = Query(None, max_length=1024),
    parent_id: str | None = Query(None, max_length=64, description="Only this span's children."),
    roots: bool = Query(False, description="Only spans without a parent."),
    store: Store = Depends(get_store),
) -> Page[SpanOut]:
    """A page of one trace's spans in start order (all of them, one span's children, or roots)."""
    if roots and parent_id is not None:
        raise Problem(422, "pass either roots=true or parent_id, not both", kind="validation")
    listing = f"trace-spans:{trace_id}"
    after = decode_cursor(listing, cursor, (float, int))
    spans = store.trace_span_page(
        trace_id, after=after, limit=limit + 1, parent_id=parent_id, roots_only=roots
    )
    if not spans and after is None and store.trace_summary(trace_id) is None:
        raise Problem(404, f"no trace {trace_id!r}", kind="not-found")
    return page_of(listing, [(SpanOut.of(s), key) for s, key in spans], limit)


@router.get("/spans", response_model=Page[SpanOut])
def list_spans(
    window: TimeWindow = Depends(time_window),
    filters: SpanFilters = Depends(span_filters),
    trace_id: str | None = Query(None, max_length=64),
    order: Order = Query(Order.desc),
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = Query(None, max_length=1024),
    store: Store = Depends(get_store),
) -> Page[SpanOut]:
    """Spans started in the window matching every filter, newest first by default."""
    values = dict(filters.values)
    if trace_id is not None:
        values["trace_id"] = trace_id
    listing = f"spans:{order.value}"
    after = decode_cursor(listing, cursor, (float, int))
    spans = store.span_page(
        window.start, window.end, filters=values, after=after, limit=limit + 1,
        newest_first=order is Order.desc,
    )  # fmt: skip
    return page_of(listing, [(SpanOut.of(s), key) for s, key in spans], limit)


@router.get("/spans/{span_id}", response_model=SpanOut)
def get_span(
    span_id: str = Path(max_length=64),
    store: Store = Depends(get_store),
) -> SpanOut:
    """One span."""
    span = store.get_span(span_id)
    if span is None:
        raise Problem(404, f"no span {span_id!r}", kind="not-found")
    return SpanOut.of(span)
