"""Span aggregates and branch counts over a window, read from rollups (never raw spans)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, literal_column, or_, select

from llmpulse.store._histogram import quantiles
from llmpulse.store.models import RollupHistogramRow, RollupKeyRow, RollupRow
from llmpulse.store.queries.window import Segment, minute_bounds, plan, plan_series

__all__ = ["GROUP_KEYS", "BranchCount", "Filter", "SpanStats", "branch_counts", "span_stats"]

# What aggregates can be grouped and filtered by.
GROUP_KEYS = ("model", "kind", "name", "prompt_version", "provider", "branch")

Filter = str | Sequence[str] | None

_R = RollupRow.__table__
_H = RollupHistogramRow.__table__
_K = RollupKeyRow.__table__
_SUMS = (
    "count", "errors", "input_tokens", "output_tokens", "total_tokens", "cache_read_tokens",
    "cache_write_tokens", "reasoning_tokens", "cost_usd", "priced_count", "latency_ms_sum",
    "ttft_ms_sum", "ttft_count",
)  # fmt: skip
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


def _bucket(table: Any, lo: int, step: int | None) -> ColumnElement[Any]:
    """The series bucket of a rollup row: ``lo + (bucket_start - lo) / step * step``.

    Integer division on both backends (bucket_start >= lo, so it floors). Rendered from
    integers we computed (never user text) so that SELECT and GROUP BY read identically.
    """
    lo, step = int(lo), int(step or 0)
    if not step:
        return literal_column(str(lo))
    return literal_column(f"({lo} + ({table.name}.bucket_start - {lo}) / {step} * {step})")


def _where(
    table: Any, segments: Sequence[Segment], filters: dict[str, Filter]
) -> ColumnElement[bool]:
    ranges = [
        and_(table.c.resolution == r, table.c.bucket_start >= a, table.c.bucket_start < b)
        for r, a, b in segments
    ]
    clauses: list[ColumnElement[bool]] = [or_(*ranges)]
    for key, value in filters.items():
        if key not in GROUP_KEYS:
            raise ValueError(f"cannot filter by {key!r}; choose from {', '.join(GROUP_KEYS)}")
        if value is None:
            continue
        if isinstance(value, str):
            clauses.append(_K.c[key] == value)
        else:
            clauses.append(_K.c[key].in_(list(value)))
    return and_(*clauses)


def _grouped(
    table: Any,
    segments: list[Segment],
    lo: int,
    step: int | None,
    group_by: tuple[str, ...],
    filters: dict[str, Filter],
    *columns: Any,
) -> Any:
    """SELECT bucket, group keys, *columns FROM table JOIN rollup_keys ... GROUP BY bucket, keys."""
    bucket = _bucket(table, lo, step).label("b")
    keys = [_K.c[k] for k in group_by]
    query = (
        select(bucket, *keys, *columns)
        .select_from(table.join(_K, _K.c.id == table.c.key_id))
        .where(_where(table, segments, filters))
    )
    return query.group_by(*([bucket] if step else []), *keys)


def _query(
    conn: Connection,
    segments: list[Segment],
    lo: int,
    step: int | None,
    group_by: tuple[str, ...],
    filters: dict[str, Filter],
) -> list[SpanStats]:
    if not segments:
        return []
    nkeys = 1 + len(group_by)
    hist = _grouped(
        _H, segments, lo, step, group_by, filters, _H.c.bin, func.sum(_H.c.count)
    ).group_by(_H.c.bin)
    bins: dict[tuple[Any, ...], dict[int, int]] = {}
    for row in conn.execute(hist):
        bins.setdefault(tuple(row[:nkeys]), {})[row[-2]] = int(row[-1])
    sums = _grouped(_R, segments, lo, step, group_by, filters, *(func.sum(_R.c[c]) for c in _SUMS))
    # An aggregate without GROUP BY returns one row of NULLs when nothing matched: skip it.
    out = [_stats(row, nkeys, group_by, step, bins) for row in conn.execute(sums) if row[nkeys]]
    out.sort(key=lambda s: (s.bucket_start or 0, -s.calls))
    return out


def _stats(
    row: Any,
    nkeys: int,
    group_by: tuple[str, ...],
    step: int | None,
    bins: dict[tuple[Any, ...], dict[int, int]],
) -> SpanStats:
    key = tuple(row[:nkeys])
    count, errors, inp, out, total, cr, cw, rs, cost, priced, lat, ttft, nttft = row[nkeys:]
    count = int(count or 0)
    p50, p95, p99 = quantiles(bins.get(key, {}), _QS)
    return SpanStats(
        group={k: (v or None) for k, v in zip(group_by, key[1:], strict=True)},
        bucket_start=int(key[0]) if step else None,
        calls=count,
        errors=int(errors or 0),
        error_rate=(int(errors or 0) / count) if count else 0.0,
        input_tokens=int(inp or 0),
        output_tokens=int(out or 0),
        total_tokens=int(total or 0),
        cache_read_tokens=int(cr or 0),
        cache_write_tokens=int(cw or 0),
        reasoning_tokens=int(rs or 0),
        cost_usd=float(cost) if priced else None,
        priced_calls=int(priced or 0),
        latency_ms_avg=float(lat or 0.0) / count if count else 0.0,
        p50_latency_ms=p50,
        p95_latency_ms=p95,
        p99_latency_ms=p99,
        ttft_ms_avg=float(ttft) / int(nttft) if nttft else None,
    )


def span_stats(
    conn: Connection, start: float, end: float, group_by: Sequence[str], filters: dict[str, Filter]
) -> list[SpanStats]:
    """Totals over the window, one row per group."""
    lo, hi = minute_bounds(start, end)
    return _query(conn, plan(lo, hi), lo, None, _check_group_by(group_by), filters)


def span_series(
    conn: Connection,
    start: float,
    end: float,
    step: int,
    group_by: Sequence[str],
    filters: dict[str, Filter],
) -> list[SpanStats]:
    """One row per (bucket of ``step`` seconds from the window's first minute, group) with spans."""
    lo, hi = minute_bounds(start, end)
    return _query(
        conn, plan_series(lo, hi, int(step)), lo, int(step), _check_group_by(group_by), filters
    )


def branch_counts(
    conn: Connection, start: float, end: float, step: int | None, name: Filter
) -> list[BranchCount]:
    """Counts per (bucket, branch span name, chosen branch) for ``kind='branch'`` spans."""
    lo, hi = minute_bounds(start, end)
    segments = plan_series(lo, hi, int(step)) if step else plan(lo, hi)
    if not segments:
        return []
    query = _grouped(
        _R,
        segments,
        lo,
        step,
        ("name", "branch"),
        {"kind": "branch", "name": name},
        func.sum(_R.c.count),
    )
    rows = [BranchCount(int(b), n, br or None, int(c)) for b, n, br, c in conn.execute(query)]
    rows.sort(key=lambda r: (r.bucket_start, r.name, r.branch or ""))
    return rows
