"""Retention: delete raw spans and metric points after N days, rollups after M days.

The per-trace totals follow the spans (a trace's row goes with its last span, and is
recomputed when the cutoff falls inside it). Deletes go in small chunks, each its own short transaction, so that a cleanup of millions of
rows never holds the write lock for long and writers keep flowing in between.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, select

from llmpulse.store._traces import drop_expired
from llmpulse.store.models import MetricPointRow, RollupRow, SpanRow

__all__ = ["DEFAULT_CHUNK_ROWS", "CleanupResult", "cleanup", "expired"]

DEFAULT_CHUNK_ROWS = 5000
_ROLLUP_CHUNK_SECONDS = 3600  # rollups are deleted one hour of buckets per transaction

WriteTx = Callable[[], AbstractContextManager[Connection]]


@dataclass(frozen=True, slots=True)
class CleanupResult:
    """Rows deleted by ``Store.cleanup``, per table."""

    spans: int = 0
    metric_points: int = 0
    rollups: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict (for JSON output)."""
        return {
            "spans": self.spans,
            "metric_points": self.metric_points,
            "rollups": self.rollups,
        }


def _delete_by_id(
    write_tx: WriteTx, table: object, time_column: str, cutoff: float, chunk: int
) -> int:
    t = table.__table__  # type: ignore[attr-defined]
    total = 0
    while True:
        ids = select(t.c.id).where(t.c[time_column] < cutoff).limit(chunk).scalar_subquery()
        with write_tx() as conn:
            deleted = conn.execute(delete(t).where(t.c.id.in_(ids))).rowcount
        total += deleted
        if deleted < chunk:
            return total


def _fix_traces(write_tx: WriteTx, cutoff: float, chunk: int) -> None:
    """Per-trace totals after the spans went: rows of emptied traces deleted, cut ones redone."""
    more = True
    while more:
        with write_tx() as conn:
            _, more = drop_expired(conn, cutoff, chunk)


def _delete_rollups(write_tx: WriteTx, table: object, cutoff: int) -> int:
    t = table.__table__  # type: ignore[attr-defined]
    total = 0
    while True:
        with write_tx() as conn:
            oldest = conn.execute(select(func.min(t.c.bucket_start))).scalar()
            if oldest is None or oldest >= cutoff:
                return total
            bound = min(
                cutoff,
                int(oldest) // _ROLLUP_CHUNK_SECONDS * _ROLLUP_CHUNK_SECONDS
                + _ROLLUP_CHUNK_SECONDS,
            )
            total += conn.execute(delete(t).where(t.c.bucket_start < bound)).rowcount


def _rollup_bound(rollup_cutoff: float) -> int:
    """A rollup bucket goes only when all of it is older than the cutoff."""
    return int(rollup_cutoff) // 3600 * 3600


def expired(conn: Connection, raw_cutoff: float, rollup_cutoff: float) -> CleanupResult:
    """How many rows ``cleanup`` with these cutoffs would delete now (nothing is deleted)."""

    def older(table: object, column: str, cutoff: float) -> int:
        t = table.__table__  # type: ignore[attr-defined]
        query = select(func.count()).select_from(t).where(t.c[column] < cutoff)
        return int(conn.execute(query).scalar_one())

    return CleanupResult(
        spans=older(SpanRow, "start_time", raw_cutoff),
        metric_points=older(MetricPointRow, "timestamp", raw_cutoff),
        rollups=older(RollupRow, "bucket_start", _rollup_bound(rollup_cutoff)),
    )


def cleanup(
    write_tx: WriteTx, raw_cutoff: float, rollup_cutoff: float, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> CleanupResult:
    """Delete raw rows older than ``raw_cutoff`` and rollup rows older than ``rollup_cutoff``."""
    rollup_bound = _rollup_bound(rollup_cutoff)
    spans = _delete_by_id(write_tx, SpanRow, "start_time", raw_cutoff, chunk_rows)
    _fix_traces(write_tx, raw_cutoff, chunk_rows)
    return CleanupResult(
        spans=spans,
        metric_points=_delete_by_id(write_tx, MetricPointRow, "timestamp", raw_cutoff, chunk_rows),
        rollups=_delete_rollups(write_tx, RollupRow, rollup_bound),
    )
