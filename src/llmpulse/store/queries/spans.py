"""Raw spans: one trace, or a filtered page of spans in a time window."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, func, select

from llmpulse._rows import SPAN_COLUMNS
from llmpulse.schema import Span, SpanEvent
from llmpulse.store.models import SpanRow
from llmpulse.store.queries.rollups import SpanStats

__all__ = [
    "LIST_FILTERS",
    "RAW_GROUP_KEYS",
    "count_spans",
    "get_span",
    "get_trace",
    "list_spans",
    "raw_span_stats",
]

_S = SpanRow.__table__
_COLUMNS = [_S.c[c] for c in SPAN_COLUMNS if c != "latency_ms"]
_FIELDS = [c for c in SPAN_COLUMNS if c != "latency_ms"]
# Keyword filters of list_spans (exact match on the column of the same name).
LIST_FILTERS = (
    "kind", "model", "status", "name", "trace_id", "session_id", "user_id", "prompt_version",
    "provider", "service",
)  # fmt: skip


def _span(row: Any) -> Span:
    values = dict(zip(_FIELDS, row, strict=True))
    values["attributes"] = values["attributes"] or {}
    values["events"] = [
        SpanEvent(name=e["name"], time=e["time"], attributes=e.get("attributes") or {})
        for e in values["events"] or ()
    ]
    return Span(**values)


def get_trace(conn: Connection, trace_id: str) -> list[Span]:
    """Every stored span of the trace, in start order (empty if none)."""
    query = select(*_COLUMNS).where(_S.c.trace_id == trace_id).order_by(_S.c.start_time, _S.c.id)
    return [_span(r) for r in conn.execute(query)]


def get_span(conn: Connection, span_id: str) -> Span | None:
    """The span with this id, or ``None``."""
    row = conn.execute(select(*_COLUMNS).where(_S.c.span_id == span_id)).first()
    return None if row is None else _span(row)


def list_spans(
    conn: Connection,
    start: float,
    end: float,
    limit: int,
    offset: int,
    newest_first: bool,
    filters: dict[str, Any],
) -> list[Span]:
    """Spans that started in ``[start, end)`` and match every given filter."""
    if limit < 0 or offset < 0:
        raise ValueError(f"limit and offset must be >= 0, got limit={limit}, offset={offset}")
    clauses = _clauses(start, end, filters)
    order = (_S.c.start_time.desc(), _S.c.id.desc()) if newest_first else (_S.c.start_time, _S.c.id)
    query = select(*_COLUMNS).where(*clauses).order_by(*order).limit(limit).offset(offset)
    return [_span(r) for r in conn.execute(query)]


def _clauses(start: float, end: float, filters: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [_S.c.start_time >= start, _S.c.start_time < end]
    for key, value in filters.items():
        if key not in LIST_FILTERS:
            raise ValueError(
                f"cannot filter spans by {key!r}; choose from {', '.join(LIST_FILTERS)}"
            )
        if value is not None:
            clauses.append(_S.c[key] == value)
    return clauses


def count_spans(conn: Connection, start: float, end: float, filters: Mapping[str, Any]) -> int:
    """How many spans started in ``[start, end)`` and match every filter."""
    query = select(func.count()).select_from(_S).where(*_clauses(start, end, filters))
    return int(conn.execute(query).scalar_one())


# What raw-span aggregates may be grouped by (columns the rollups do not keep, like service).
RAW_GROUP_KEYS = ("service", "model", "name", "kind", "status", "prompt_version", "provider")


def raw_span_stats(
    conn: Connection,
    start: float,
    end: float,
    group_by: Sequence[str],
    filters: Mapping[str, Any],
) -> list[SpanStats]:
    """Aggregates of raw spans per group, computed by the database (one GROUP BY).

    For dimensions the rollups do not keep. Percentiles need the rollups' histograms, so they
    are ``None`` here; averages and sums are exact.
    """
    for key in group_by:
        if key not in RAW_GROUP_KEYS:
            raise ValueError(
                f"cannot group spans by {key!r}; choose from {', '.join(RAW_GROUP_KEYS)}"
            )
    keys = [_S.c[k] for k in group_by]
    errors = func.sum(case((_S.c.status == "error", 1), else_=0))
    ttft_avg = func.avg(_S.c.ttft_ms)

    def total(column: str) -> Any:
        return func.coalesce(func.sum(_S.c[column]), 0)

    query = (
        select(
            *keys,
            func.count(),
            errors,
            total("input_tokens"),
            total("output_tokens"),
            total("total_tokens"),
            total("cache_read_tokens"),
            total("cache_write_tokens"),
            total("reasoning_tokens"),
            func.sum(_S.c.cost_usd),
            func.count(_S.c.cost_usd),
            func.avg(_S.c.latency_ms),
            ttft_avg,
        )
        .where(*_clauses(start, end, filters))
        .group_by(*keys)
    )
    out = []
    n = len(keys)
    for row in conn.execute(query):
        calls, errs = int(row[n]), int(row[n + 1] or 0)
        tokens = [int(v) for v in row[n + 2 : n + 8]]
        cost, priced, latency, ttft = row[n + 8 :]
        out.append(
            SpanStats(
                group=dict(zip(group_by, row[:n], strict=True)),
                bucket_start=None,
                calls=calls,
                errors=errs,
                error_rate=errs / calls if calls else 0.0,
                input_tokens=tokens[0],
                output_tokens=tokens[1],
                total_tokens=tokens[2],
                cache_read_tokens=tokens[3],
                cache_write_tokens=tokens[4],
                reasoning_tokens=tokens[5],
                cost_usd=None if not priced else float(cost),
                priced_calls=int(priced),
                latency_ms_avg=float(latency or 0.0),
                p50_latency_ms=None,
                p95_latency_ms=None,
                p99_latency_ms=None,
                ttft_ms_avg=None if ttft is None else float(ttft),
            )
        )
    return out
