"""Response bodies shared by several routers: spans, traces, runs, metric points, span stats.

Times are Unix seconds (float) as in the store and the SDK; costs are USD.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import BaseModel

from llmpulse.schema import MetricPoint, Run, Span
from llmpulse.store import SpanStats, TraceTotals

__all__ = ["PointOut", "RunOut", "SpanOut", "StatsOut", "TraceOut"]


class EventOut(BaseModel):
    """Something that happened at one instant inside a span."""

    name: str
    time: float
    attributes: dict[str, Any]


class SpanOut(BaseModel):
    """One stored span."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    start_time: float
    end_time: float
    latency_ms: float
    status: str
    error_type: str | None
    error_message: str | None
    model: str | None
    provider: str | None
    prompt_version: str | None
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    reasoning_tokens: int | None
    cost_usd: float | None
    ttft_ms: float | None
    session_id: str | None
    user_id: str | None
    service: str | None
    input: str | None
    output: str | None
    attributes: dict[str, Any]
    events: list[EventOut]

    @classmethod
    def of(cls, span: Span) -> SpanOut:
        """The body of a stored span."""
        return cls(**asdict(span), latency_ms=span.latency_ms)


class TraceOut(BaseModel):
    """One trace: its root span's name and service, its time span, totals over its spans."""

    trace_id: str
    name: str | None
    service: str | None
    start_time: float
    end_time: float
    duration_ms: float
    spans: int
    errors: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float | None

    @classmethod
    def of(cls, trace: TraceTotals) -> TraceOut:
        """The body of a trace summary."""
        return cls(**asdict(trace), duration_ms=trace.latency_ms)


class RunOut(BaseModel):
    """An experiment or benchmark run with its summary metrics."""

    run_id: str
    name: str
    kind: str
    experiment: str | None
    model: str | None
    status: str
    started_at: float
    ended_at: float | None
    params: dict[str, Any]
    metrics: dict[str, float | None]
    tags: dict[str, str]

    @classmethod
    def of(cls, run: Run) -> RunOut:
        """The body of a stored run."""
        return cls(**asdict(run))


class PointOut(BaseModel):
    """One metric point."""

    name: str
    value: float | None
    timestamp: float
    labels: dict[str, str]
    run_id: str | None
    step: int | None

    @classmethod
    def of(cls, point: MetricPoint) -> PointOut:
        """The body of a stored point (a non-finite value, which JSON cannot carry, is null)."""
        out = asdict(point)
        if out["value"] != out["value"] or out["value"] in (float("inf"), float("-inf")):
            out["value"] = None
        return cls(**out)


class StatsOut(BaseModel):
    """Aggregates of the spans of one group (and one bucket, in a series), from the rollups.

    Latency percentiles come from mergeable histograms (within 2.44 % of the exact value);
    ``cost_usd`` is null when no span of the group had a known price.
    """

    group: dict[str, str | None]
    bucket_start: int | None
    calls: int
    errors: int
    error_rate: float
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_usd: float | None
    priced_calls: int
    latency_ms_avg: float
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    p99_latency_ms: float | None
    ttft_ms_avg: float | None

    @classmethod
    def of(cls, stats: SpanStats) -> StatsOut:
        """The body of one rollup aggregate."""
        return cls(**asdict(stats))
