"""Raw spans: one trace, or a filtered page of spans in a time window."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, select

from llmpulse.schema import Span, SpanEvent
from llmpulse.store._validate import SPAN_COLUMNS
from llmpulse.store.models import SpanRow

__all__ = ["LIST_FILTERS", "get_span", "get_trace", "list_spans"]

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
    clauses: list[ColumnElement[bool]] = [_S.c.start_time >= start, _S.c.start_time < end]
    for key, value in filters.items():
        if key not in LIST_FILTERS:
            raise ValueError(
                f"cannot filter spans by {key!r}; choose from {', '.join(LIST_FILTERS)}"
            )
        if value is not None:
            clauses.append(_S.c[key] == value)
    order = (_S.c.start_time.desc(), _S.c.id.desc()) if newest_first else (_S.c.start_time, _S.c.id)
    query = select(*_COLUMNS).where(*clauses).order_by(*order).limit(limit).offset(offset)
    return [_span(r) for r in conn.execute(query)]
