"""Span aggregates and branch counts over a window, read from rollups (never raw spans)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Connection, and_, literal_column, or_, select

from llmpulse.store._histogram import group_quantiles
from llmpulse.store._rollup import SUM_COLUMNS
from llmpulse.store.models import RollupKeyRow, RollupRow
from llmpulse.store.queries.window import Segment, minute_bounds, plan, plan_series

__all__ = ["GROUP_KEYS", "BranchCount", "Filter", "SpanStats", "branch_counts", "span_stats"]

# What aggregates can be grouped and filtered by.
GROUP_KEYS = ("model", "kind", "name", "prompt_version", "provider", "branch")

Filter = str | Sequence[str] | None

_R = RollupRow.__table__
_K = RollupKeyRow.__table__
_KEY_PARTS = ("kind", "name", "model", "provider", "prompt_version", "branch")
_QS = (0.5, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class SpanStats:
    """Aggregates of the spans of one group (and one time bucket, for series).

    ``group`` maps each ``group_by`` key to its value (``None`` where spans had none).
    ``cost_usd`` is ``None`` when no span in the group had a known price. Latency percentiles
    come from summed log-spaced histograms, within 2.44 % of the exact value.
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


@dataclass(frozen=True, slots=True)
class BranchCount:
    """How often branch ``name`` went ``branch`` in the bucket starting at ``bucket_start``."""

    bucket_start: int
    name: str
    branch: str | None
    count: int


def _check_group_by(group_by: Sequence[str]) -> tuple[str, ...]:
    if isinstance(group_by, str):
        group_by = (group_by,)
    for key in group_by:
        if key not in GROUP_KEYS:
            raise ValueError(f"cannot group by {key!r}; choose from {', '.join(GROUP_KEYS)}")
    return tuple(group_by)


def _bucket(table: Any, step: int | None) -> ColumnElement[Any]:
    """The series bucket of a rollup row: ``bucket_start / step * step`` (epoch-aligned).

    Integer division on both backends. Rendered from an integer we computed (never user
    text); without a step every row falls in one bucket, 0.
    """
    step = int(step or 0)
    if not step:
        return literal_column("0")
    return literal_column(f"({table.name}.bucket_start / {step} * {step})")


def _keys(conn: Connection, filters: dict[str, Filter]) -> dict[int, tuple[str, ...]]:
    """Rollup keys matching the filters: ``{key_id: (kind, name, model, provider, prompt_version, branch)}``."""
    clauses: list[ColumnElement[bool]] = []
    for key, value in filters.items():
        if key not in GROUP_KEYS:
            raise ValueError(f"cannot filter by {key!r}; choose from {', '.join(GROUP_KEYS)}")
        if value is None:
            continue
        clauses.append(_K.c[key] == value if isinstance(value, str) else _K.c[key].in_(list(value)))
    query = select(_K.c.id, *(_K.c[c] for c in _KEY_PARTS)).where(*clauses)
    return {int(row[0]): tuple(row[1:]) for row in conn.execute(query)}


def _rows(
    conn: Connection,
    segments: Sequence[Segment],
    step: int | None,
    key_ids: list[int] | None,
    columns: Sequence[Any],
) -> Sequence[Any]:
    """Rollup rows of the segments: ``(series bucket, key_id, *columns)``."""
    ranges = [
        and_(_R.c.resolution == r, _R.c.bucket_start >= a, _R.c.bucket_start < b)
        for r, a, b in segments
    ]
    query = select(_bucket(_R, step), _R.c.key_id, *columns).where(or_(*ranges))
    if key_ids is not None:
        query = query.where(_R.c.key_id.in_(key_ids))
    return conn.execute(query).all()


_ROW_COLUMNS = [*(_R.c[c] for c in SUM_COLUMNS), _R.c.hist_lo, _R.c.hist]
_N_SUMS = len(SUM_COLUMNS)


def _query(
    conn: Connection,
    segments: list[Segment],
    step: int | None,
    group_by: tuple[str, ...],
    filters: dict[str, Filter],
) -> list[SpanStats]:
    """Stats per (series bucket, group) of the rollup rows in ``segments``."""
    keys = _keys(conn, filters) if segments else {}
    if not keys:
        return []
    filtered = any(v is not None for v in filters.values())
    rows = _rows(conn, segments, step, list(keys) if filtered else None, _ROW_COLUMNS)
    if not rows:
        return []
    parts = [_KEY_PARTS.index(k) for k in group_by]
    group_of = {kid: tuple(key[i] for i in parts) for kid, key in keys.items()}
    groups: dict[tuple[Any, ...], int] = {}
    index = np.fromiter(
        (groups.setdefault((row[0], *group_of[row[1]]), len(groups)) for row in rows),
        dtype=np.int64,
        count=len(rows),
    )
    sums = np.zeros((len(groups), _N_SUMS))
    np.add.at(sums, index, np.array([row[2 : 2 + _N_SUMS] for row in rows], dtype=np.float64))
    pct = _percentiles(rows, index, len(groups), binary=conn.dialect.name != "postgresql")
    sum_rows, pct_rows = sums.tolist(), pct.tolist()
    out = [_stats(g, sum_rows[i], pct_rows[i], group_by, step) for g, i in groups.items()]
    out.sort(key=lambda s: (s.bucket_start or 0, -s.calls))
    return out


def _percentiles(rows: Sequence[Any], index: np.ndarray, n_groups: int, binary: bool) -> np.ndarray:
    """p50/p95/p99 per group from the rows' dense histograms (last two columns)."""
    los = np.fromiter((row[-2] for row in rows), dtype=np.int64, count=len(rows))
    if binary:
        blobs = [row[-1] for row in rows]
        lengths = np.fromiter((len(b) >> 3 for b in blobs), dtype=np.int64, count=len(rows))
        counts = np.frombuffer(b"".join(blobs), dtype="<i8").astype(np.float64)
    else:
        lengths = np.fromiter((len(row[-1]) for row in rows), dtype=np.int64, count=len(rows))
        counts = np.fromiter(
            itertools.chain.from_iterable(row[-1] for row in rows), dtype=np.float64
        )
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    bins = np.repeat(los, lengths) + (np.arange(len(counts)) - starts)
    return group_quantiles(np.repeat(index, lengths), bins, counts, n_groups, _QS)


def _stats(
    group: tuple[Any, ...],
    sums: list[float],
    pct: list[float],
    group_by: tuple[str, ...],
    step: int | None,
) -> SpanStats:
    count, errors, inp, out, total, cr, cw, rs, cost, priced, lat, ttft, nttft = sums
    count, errors, priced, nttft = int(count), int(errors), int(priced), int(nttft)
    p50, p95, p99 = (None if math.isnan(v) else float(v) for v in pct)
    return SpanStats(
        group={k: (v or None) for k, v in zip(group_by, group[1:], strict=True)},
        bucket_start=int(group[0]) if step else None,
        calls=count,
        errors=errors,
        error_rate=errors / count if count else 0.0,
        input_tokens=int(inp),
        output_tokens=int(out),
        total_tokens=int(total),
        cache_read_tokens=int(cr),
        cache_write_tokens=int(cw),
        reasoning_tokens=int(rs),
        cost_usd=float(cost) if priced else None,
        priced_calls=priced,
        latency_ms_avg=float(lat) / count if count else 0.0,
        p50_latency_ms=p50,
        p95_latency_ms=p95,
        p99_latency_ms=p99,
        ttft_ms_avg=float(ttft) / nttft if nttft else None,
    )


def span_stats(
    conn: Connection, start: float, end: float, group_by: Sequence[str], filters: dict[str, Filter]
) -> list[SpanStats]:
    """Totals over the window, one row per group."""
    lo, hi = minute_bounds(start, end)
    return _query(conn, plan(lo, hi), None, _check_group_by(group_by), filters)


def span_series(
    conn: Connection,
    start: float,
    end: float,
    step: int,
    group_by: Sequence[str],
    filters: dict[str, Filter],
) -> list[SpanStats]:
    """One row per (bucket, group) with spans; buckets are multiples of ``step`` since the epoch."""
    lo, hi = minute_bounds(start, end)
    return _query(
        conn, plan_series(lo, hi, int(step)), int(step), _check_group_by(group_by), filters
    )


def branch_counts(
    conn: Connection, start: float, end: float, step: int | None, name: Filter
) -> list[BranchCount]:
    """Counts per (bucket, branch span name, chosen branch) for ``kind='branch'`` spans."""
    lo, hi = minute_bounds(start, end)
    segments = plan_series(lo, hi, int(step)) if step else plan(lo, hi)
    keys = _keys(conn, {"kind": "branch", "name": name}) if segments else {}
    if not keys:
        return []
    totals: dict[tuple[int, str, str], int] = {}
    for bucket, key_id, count in _rows(conn, segments, step, list(keys), [_R.c.count]):
        _, span_name, _, _, _, branch = keys[key_id]
        k = (int(bucket) if step else lo, span_name, branch)
        totals[k] = totals.get(k, 0) + int(count)
    rows = [BranchCount(b, n, br or None, c) for (b, n, br), c in totals.items()]
    rows.sort(key=lambda r: (r.bucket_start, r.name, r.branch or ""))
    return rows
