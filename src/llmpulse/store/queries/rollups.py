"""Span aggregates and branch counts over a window, read from rollups (never raw spans)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, select

from llmpulse.store._histogram import group_quantiles
from llmpulse.store._rollup import SUM_COLUMNS
from llmpulse.store.models import RollupKeyRow
from llmpulse.store.queries._scan import Scan, counts, scan
from llmpulse.store.queries.window import Segment, minute_bounds, plan, plan_series

if TYPE_CHECKING:
    import numpy as np
else:  # imported on first use: ingest never needs it (_lazy_numpy.py)
    from llmpulse.store._lazy_numpy import np

__all__ = [
    "GROUP_KEYS",
    "BranchCount",
    "Filter",
    "SpanStats",
    "WindowRollups",
    "branch_counts",
    "span_stats",
]

# What aggregates can be grouped and filtered by.
GROUP_KEYS = ("model", "kind", "name", "prompt_version", "provider", "branch")

Filter = str | Sequence[str] | None

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
    ids = list(keys) if any(v is not None for v in filters.values()) else None
    return _group(keys, scan(conn, segments, step, ids), step, group_by)


def _group(
    keys: dict[int, tuple[str, ...]], result: Scan, step: int | None, group_by: tuple[str, ...]
) -> list[SpanStats]:
    """Stats per (series bucket, group) of the rows of ``result`` whose key is in ``keys``."""
    if not len(result.key_ids) or not keys:
        return []
    # Group of each row, vectorized: key -> group of keys via a lookup table, then (bucket, group).
    parts = [_KEY_PARTS.index(k) for k in group_by]
    key_groups: dict[tuple[str, ...], int] = {}
    lut = np.full(max(max(keys), int(result.key_ids.max())) + 1, -1, dtype=np.int64)
    for kid, key in keys.items():
        lut[kid] = key_groups.setdefault(tuple(key[i] for i in parts), len(key_groups))
    n_kg = len(key_groups)
    kg = lut[result.key_ids]
    # A key committed after the keys were read (-1 here) is left out: it is newer than this read.
    code = np.where(kg >= 0, result.buckets * n_kg + kg, -1)
    codes, row_group = np.unique(code, return_inverse=True)
    names = list(key_groups)
    groups = {
        (int(c // n_kg), *names[int(c % n_kg)]): i for i, c in enumerate(codes.tolist()) if c >= 0
    }
    if not groups:
        return []
    sums = np.zeros((len(codes), len(SUM_COLUMNS)))
    np.add.at(sums, row_group, result.sums)
    pct = group_quantiles(
        row_group[result.entry_row], result.entry_bin, result.entry_count, len(codes), _QS
    )
    sum_list, pct_list = sums.tolist(), pct.tolist()
    out = [_stats(g, sum_list[i], pct_list[i], group_by, step) for g, i in groups.items()]
    out.sort(key=lambda s: (s.bucket_start or 0, -s.calls))
    return out


def _per_key(raw: Scan) -> Scan:
    """The rows of a whole-window scan summed per key (histograms merged bin by bin).

    Every later grouping then works on one row per key instead of one per (minute, key), which
    is what makes hundreds of groupings of one window cheap.
    """
    if not len(raw.key_ids):
        return raw
    keys, row_key = np.unique(raw.key_ids, return_inverse=True)
    sums = np.zeros((len(keys), raw.sums.shape[1]))
    np.add.at(sums, row_key, raw.sums)
    out = Scan([], True)
    out.buckets = np.zeros(len(keys), dtype=np.int64)
    out.key_ids = keys
    out.sums = sums
    if len(raw.entry_count):
        bmin = int(raw.entry_bin.min())
        nb = int(raw.entry_bin.max()) - bmin + 1
        codes, inverse = np.unique(row_key[raw.entry_row] * nb + (raw.entry_bin - bmin),
                                   return_inverse=True)  # fmt: skip
        out.entry_row = (codes // nb).astype(raw.entry_row.dtype)
        out.entry_bin = (codes % nb + bmin).astype(raw.entry_bin.dtype)
        out.entry_count = np.bincount(inverse, weights=raw.entry_count).astype(np.float64)
    return out


class WindowRollups:
    """Every rollup row of one window, read once, then aggregated any number of ways.

    For callers that ask many questions of the same window (the alert engine evaluates
    hundreds of rules per tick over a few windows): one range scan, then each
    ``stats(group_by, filters)`` is numpy work over the rows already read.
    """

    def __init__(self, conn: Connection, start: float, end: float) -> None:
        lo, hi = minute_bounds(start, end)
        segments = plan(lo, hi)
        self._keys = _keys(conn, {}) if segments else {}
        raw = scan(conn, segments, None, None) if self._keys else Scan([], True)
        self._scan = _per_key(raw)

    def stats(self, group_by: Sequence[str], filters: dict[str, Filter]) -> list[SpanStats]:
        """What ``span_stats`` would answer for this window, ``group_by`` and ``filters``."""
        group = _check_group_by(group_by)
        keys = self._keys
        for key, value in filters.items():
            if key not in GROUP_KEYS:
                raise ValueError(f"cannot filter by {key!r}; choose from {', '.join(GROUP_KEYS)}")
            if value is None:
                continue
            i = _KEY_PARTS.index(key)
            wanted = {value} if isinstance(value, str) else set(value)
            keys = {k: parts for k, parts in keys.items() if parts[i] in wanted}
        return _group(keys, self._scan, None, group)


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
    for bucket, key_id, count in counts(conn, segments, step, list(keys)):
        _, span_name, _, _, _, branch = keys[key_id]
        k = (bucket if step else lo, span_name, branch)
        totals[k] = totals.get(k, 0) + count
    rows = [BranchCount(b, n, br or None, c) for (b, n, br), c in totals.items()]
    rows.sort(key=lambda r: (r.bucket_start, r.name, r.branch or ""))
    return rows
