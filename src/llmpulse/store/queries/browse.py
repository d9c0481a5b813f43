"""Pages of raw records for the API: spans, traces, one trace's spans, runs, metric points.

Every page is keyset-paged: the caller passes the sort key of the last row it has (``after``)
and gets the rows strictly after it, so page N costs what page 1 costs, whatever the table's
size (an OFFSET would read and drop every earlier row). Filters are exact matches on named
columns, always bound as parameters; a filter name outside the allowed set is a ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, or_, select

from llmpulse.schema import MetricPoint, Run
from llmpulse.schema import Span as SpanRecord
from llmpulse.store._traces import TRACE_COLUMNS
from llmpulse.store._validate import POINT_COLUMNS, RUN_COLUMNS
from llmpulse.store.models import MetricPointRow, RunRow, SpanRow, TraceRow
from llmpulse.store.queries.records import _run
from llmpulse.store.queries.spans import _COLUMNS, LIST_FILTERS, _span

__all__ = [
    "RUN_FILTERS",
    "SPAN_FILTERS",
    "TraceTotals",
    "point_page",
    "run_page",
    "span_page",
    "trace_page",
    "trace_span_page",
    "trace_summary",
]

_S = SpanRow.__table__
_R = RunRow.__table__
_P = MetricPointRow.__table__
_T = TraceRow.__table__

SPAN_FILTERS = LIST_FILTERS
RUN_FILTERS = ("kind", "status", "model", "experiment")


@dataclass(frozen=True, slots=True)
class TraceTotals:
    """One trace: its root span's name and service, its time span and totals over all its spans.

    What ``llmpulse traces list`` and ``GET /api/v1/traces`` show (one query for both).
    """

    trace_id: str
    name: str | None
    service: str | None
    start_time: float
    end_time: float
    spans: int
    errors: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float | None

    @property
    def latency_ms(self) -> float:
        """From the first span's start to the last span's end, in milliseconds."""
        return max(0.0, (self.end_time - self.start_time) * 1000.0)


def _filters(table: Any, allowed: Sequence[str], filters: Mapping[str, Any]) -> list[Any]:
    clauses: list[ColumnElement[bool]] = []
    for key, value in filters.items():
        if key not in allowed:
            raise ValueError(f"cannot filter by {key!r}; choose from {', '.join(allowed)}")
        if value is not None:
            clauses.append(table.c[key] == value)
    return clauses


def _after(columns: Sequence[Any], after: Sequence[Any] | None, descending: bool) -> list[Any]:
    """Rows strictly after the key ``after`` in (columns...) order."""
    if after is None:
        return []
    if len(after) != len(columns):
        raise ValueError("cursor does not match this listing")
    ors = []
    for i, column in enumerate(columns):
        equal = [columns[j] == after[j] for j in range(i)]
        beyond = column < after[i] if descending else column > after[i]
        ors.append(and_(*equal, beyond))
    return [or_(*ors)]


def span_page(
    conn: Connection,
    start: float,
    end: float,
    filters: Mapping[str, Any],
    after: Sequence[Any] | None,
    limit: int,
    newest_first: bool,
) -> list[tuple[SpanRecord, tuple[float, int]]]:
    """Spans started in ``[start, end)`` matching the filters, each with its sort key."""
    keys = (_S.c.start_time, _S.c.id)
    clauses = [_S.c.start_time >= start, _S.c.start_time < end]
    clauses += _filters(_S, SPAN_FILTERS, filters) + _after(keys, after, newest_first)
    order = [k.desc() for k in keys] if newest_first else list(keys)
    query = select(*_COLUMNS, _S.c.id).where(*clauses).order_by(*order).limit(limit)
    return [(_span(r[:-1]), (r.start_time, r.id)) for r in conn.execute(query)]


def trace_span_page(
    conn: Connection,
    trace_id: str,
    after: Sequence[Any] | None,
    limit: int,
    parent_id: str | None = None,
    roots_only: bool = False,
) -> list[tuple[SpanRecord, tuple[float, int]]]:
    """Spans of one trace in start order (one index range per page), optionally one level."""
    keys = (_S.c.start_time, _S.c.id)
    clauses = [_S.c.trace_id == trace_id, *_after(keys, after, False)]
    if parent_id is not None:
        clauses.append(_S.c.parent_id == parent_id)
    if roots_only:
        clauses.append(_S.c.parent_id.is_(None))
    query = select(*_COLUMNS, _S.c.id).where(*clauses).order_by(*keys).limit(limit)
    return [(_span(r[:-1]), (r.start_time, r.id)) for r in conn.execute(query)]


def _trace_columns() -> list[Any]:
    return [_T.c[c] for c in TRACE_COLUMNS]


def _summaries(conn: Connection, rows: list[Any]) -> list[TraceTotals]:
    """Attach each trace's root span (the earliest span without a parent) name and service."""
    ids = [r.trace_id for r in rows]
    roots: dict[str, tuple[str, str | None]] = {}
    if ids:
        query = (
            select(_S.c.trace_id, _S.c.name, _S.c.service)
            .where(_S.c.trace_id.in_(ids), _S.c.parent_id.is_(None))
            .order_by(_S.c.start_time.desc(), _S.c.id.desc())
        )
        for trace_id, name, service in conn.execute(query):
            roots[trace_id] = (name, service)  # the earliest root wins (written last)
    out = []
    for r in rows:
        name, service = roots.get(r.trace_id, (None, None))
        out.append(_summary(r, name, service, r.cost_usd))
    return out


def _summary(r: Any, name: str | None, service: str | None, cost: Any) -> TraceTotals:
    """A ``traces`` row with its root's name and service, and a cost (the row's own or one
    summed from the spans)."""
    return TraceTotals(
        trace_id=r.trace_id,
        name=name,
        service=service,
        start_time=float(r.start_time),
        end_time=float(r.end_time),
        spans=int(r.spans),
        errors=int(r.errors or 0),
        input_tokens=int(r.input_tokens),
        output_tokens=int(r.output_tokens),
        total_tokens=int(r.total_tokens),
        cost_usd=None if cost is None else float(cost),
    )


def trace_page(
    conn: Connection,
    start: float,
    end: float,
    filters: Mapping[str, Any],
    after: Sequence[Any] | None,
    limit: int,
    *,
    min_latency_ms: float | None = None,
    min_cost_usd: float | None = None,
) -> list[TraceTotals]:
    """Traces with a span in ``[start, end)`` matching the filters, newest first.

    A trace matches when any of its spans in the window matches every filter; its totals are
    over all its spans, and ``min_latency_ms`` / ``min_cost_usd`` keep the traces whose whole
    duration (first start to last end) or total cost reaches them (a trace without any priced
    span has no cost and never reaches a minimum cost). Keyed by (first span's start, trace_id).

    The totals are the ``traces`` rows ingest keeps (store/_traces.py), read newest first by
    the index of first starts, which also holds the end and the cost that minimums check: a
    page reads the traces it returns and those a minimum skips, never a grouping of spans.
    With span filters, the window's matching spans name the candidate traces instead. Without
    them, the traces that began before the window and have a span in it come last, found by
    their last span's start and checked against the spans by one index probe each.
    """
    span_clauses = _filters(_S, SPAN_FILTERS, filters)
    keys = (_T.c.start_time, _T.c.trace_id)
    common = _after(keys, after, True)
    if min_latency_ms is not None:
        common.append((_T.c.end_time - _T.c.start_time) * 1000.0 >= min_latency_ms)
    if min_cost_usd is not None:
        common.append(_T.c.cost_usd >= min_cost_usd)
    order = [k.desc() for k in keys]
    in_window = [_S.c.start_time >= start, _S.c.start_time < end]
    if span_clauses:
        matching = select(_S.c.trace_id).where(*in_window, *span_clauses)
        query = select(*_trace_columns()).where(_T.c.trace_id.in_(matching), *common)
        return _summaries(conn, list(conn.execute(query.order_by(*order).limit(limit))))
    began_inside = (
        select(*_trace_columns())
        .where(_T.c.start_time >= start, _T.c.start_time < end, *common)
        .order_by(*order)
        .limit(limit)
    )
    rows = list(conn.execute(began_inside))
    if len(rows) < limit:
        rows += _began_before(conn, start, end, common, order, limit - len(rows))
    return _summaries(conn, rows)


def _began_before(
    conn: Connection, start: float, end: float, common: list[Any], order: list[Any], limit: int
) -> list[Any]:
    """Traces begun before ``start`` with a span in the window, after the others.

    Their ids first, from the last-start index alone (``start_time + 0`` keeps SQLite from
    walking the first-start index below the window instead: that is every older trace);
    usually few, the traces running across the window's start.
    """
    straddling = select(_T.c.trace_id).where(_T.c.last_start >= start, _T.c.start_time + 0 < start)
    ids = list(conn.execute(straddling).scalars())
    if not ids:
        return []
    has_span = (
        select(_S.c.id)
        .where(_S.c.trace_id == _T.c.trace_id, _S.c.start_time >= start, _S.c.start_time < end)
        .limit(1)
        .exists()
    )
    query = select(*_trace_columns()).where(_T.c.trace_id.in_(ids), has_span, *common)
    return list(conn.execute(query.order_by(*order).limit(limit)))


def trace_summary(conn: Connection, trace_id: str) -> TraceTotals | None:
    """Totals of one trace, or ``None`` when no span of it is stored."""
    rows = list(conn.execute(select(*_trace_columns()).where(_T.c.trace_id == trace_id)))
    return _summaries(conn, rows)[0] if rows else None


def run_page(
    conn: Connection,
    filters: Mapping[str, Any],
    after: Sequence[Any] | None,
    limit: int,
    newest_first: bool,
) -> list[tuple[Run, tuple[float, str]]]:
    """Runs matching the filters (kind, status, model, experiment), by start time."""
    keys = (_R.c.started_at, _R.c.run_id)
    clauses = _filters(_R, RUN_FILTERS, filters) + _after(keys, after, newest_first)
    order = [k.desc() for k in keys] if newest_first else list(keys)
    query = select(*(_R.c[c] for c in RUN_COLUMNS)).where(*clauses).order_by(*order).limit(limit)
    return [(_run(r), (r.started_at, r.run_id)) for r in conn.execute(query)]


def point_page(
    conn: Connection,
    name: str | None,
    run_id: str | None,
    start: float | None,
    end: float | None,
    after: Sequence[Any] | None,
    limit: int,
) -> list[tuple[MetricPoint, tuple[float, int]]]:
    """Metric points (of one name and/or one run, in an optional window), oldest first."""
    keys = (_P.c.timestamp, _P.c.id)
    clauses: list[Any] = _after(keys, after, False)
    if name is not None:
        clauses.append(_P.c.name == name)
    if run_id is not None:
        clauses.append(_P.c.run_id == run_id)
    if start is not None:
        clauses.append(_P.c.timestamp >= start)
    if end is not None:
        clauses.append(_P.c.timestamp < end)
    query = (
        select(*(_P.c[c] for c in POINT_COLUMNS), _P.c.id)
        .where(*clauses)
        .order_by(*keys)
        .limit(limit)
    )
    return [
        (
            MetricPoint(name=r.name, value=r.value, timestamp=r.timestamp, labels=r.labels or {},
                        run_id=r.run_id, step=r.step, point_id=r.point_id),
            (r.timestamp, r.id),
        )
        for r in conn.execute(query)
    ]  # fmt: skip
