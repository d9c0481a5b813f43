"""Metric points and runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Connection, select

from llmpulse._rows import POINT_COLUMNS, RUN_COLUMNS
from llmpulse.schema import MetricPoint, Run
from llmpulse.store.models import MetricPointRow, RunRow

__all__ = ["get_run", "list_runs", "metric_names", "metric_series"]

_P = MetricPointRow.__table__
_RUN = RunRow.__table__


def metric_series(
    conn: Connection,
    name: str,
    start: float,
    end: float,
    labels: Mapping[str, str] | None,
    run_id: str | None,
) -> list[MetricPoint]:
    """Points of metric ``name`` with ``timestamp`` in ``[start, end)``, oldest first.

    ``labels`` keeps the points whose labels include every given pair; ``run_id`` those of
    one run.
    """
    clauses: list[ColumnElement[bool]] = [
        _P.c.name == name,
        _P.c.timestamp >= start,
        _P.c.timestamp < end,
    ]
    if run_id is not None:
        clauses.append(_P.c.run_id == run_id)
    for key, value in (labels or {}).items():
        clauses.append(_P.c.labels[key].as_string() == str(value))
    query = (
        select(*(_P.c[c] for c in POINT_COLUMNS)).where(*clauses).order_by(_P.c.timestamp, _P.c.id)
    )
    return [
        MetricPoint(name=n, value=v, timestamp=t, labels=lb or {}, run_id=r, step=s, point_id=p)
        for n, v, t, lb, r, s, p in conn.execute(query)
    ]


def metric_names(conn: Connection, start: float, end: float) -> list[str]:
    """Names of the metrics with at least one point in ``[start, end)``, sorted."""
    query = (
        select(_P.c.name)
        .where(_P.c.timestamp >= start, _P.c.timestamp < end)
        .distinct()
        .order_by(_P.c.name)
    )
    return list(conn.scalars(query))


def _run(row: Any) -> Run:
    values = dict(zip(RUN_COLUMNS, row, strict=True))
    for key in ("params", "metrics", "tags"):
        values[key] = values[key] or {}
    return Run(**values)


def get_run(conn: Connection, run_id: str) -> Run | None:
    """The run with this id, or ``None``."""
    row = conn.execute(
        select(*(_RUN.c[c] for c in RUN_COLUMNS)).where(_RUN.c.run_id == run_id)
    ).first()
    return None if row is None else _run(row)


def list_runs(
    conn: Connection,
    kind: str | None,
    experiment: str | None,
    model: str | None,
    since: float | None,
    until: float | None,
    limit: int | None,
) -> list[Run]:
    """Runs matching every given filter, oldest ``started_at`` first."""
    clauses: list[ColumnElement[bool]] = []
    for column, value in (("kind", kind), ("experiment", experiment), ("model", model)):
        if value is not None:
            clauses.append(_RUN.c[column] == value)
    if since is not None:
        clauses.append(_RUN.c.started_at >= since)
    if until is not None:
        clauses.append(_RUN.c.started_at < until)
    query = (
        select(*(_RUN.c[c] for c in RUN_COLUMNS))
        .where(*clauses)
        .order_by(_RUN.c.started_at, _RUN.c.run_id)
    )
    if limit is not None:
        query = query.limit(limit)
    return [_run(r) for r in conn.execute(query)]
