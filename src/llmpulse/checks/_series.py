"""Per-group bucket series read from the store's rollups, at a step chosen from the data.

The step starts from the finest rung of a ladder that keeps the checked span under
``max_points`` buckets, then each group coarsens until its buckets hold
``min_calls_per_bucket`` calls on average (a p95 over two calls says little), as long as the
series keeps ``min_points`` buckets. Empty buckets are kept as zero-call buckets, so every
series is a regular grid.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmpulse.checks._reader import StoreReader

__all__ = [
    "LADDER",
    "CountSeries",
    "Grid",
    "StatSeries",
    "branch_series",
    "choose_step",
    "data_extent",
    "span_series_by_group",
]

LADDER = (60, 120, 180, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_PROBE_STEP = 3600


@dataclass(frozen=True, slots=True)
class Grid:
    """A regular grid of buckets of ``step`` seconds covering ``[lo, hi)``, for one subject."""

    subject: dict[str, str | None]
    step: int
    starts: np.ndarray  # aligned bucket starts (multiples of step since the epoch)
    lo: float
    hi: float

    def bucket_start(self, i: int) -> float:
        """Start of bucket ``i``, clipped to the series."""
        return max(float(self.starts[i]), self.lo)

    def bucket_end(self, i: int) -> float:
        """End of bucket ``i``, clipped to the series."""
        return min(float(self.starts[i]) + self.step, self.hi)


@dataclass(frozen=True, slots=True)
class StatSeries(Grid):
    """One group's span aggregates per bucket: ``rows[i]`` is ``None`` for an empty bucket."""

    rows: list[Any]


@dataclass(frozen=True, slots=True)
class CountSeries(Grid):
    """Hits out of trials per bucket (errors of calls, one way of all branch decisions)."""

    hits: np.ndarray
    trials: np.ndarray


def choose_step(span_seconds: float, max_points: int) -> int:
    """The finest ladder step that keeps ``span_seconds`` within ``max_points`` buckets."""
    for step in LADDER:
        if span_seconds / step <= max_points:
            return step
    return LADDER[-1]


def _coarsen(step: int, calls: float, active_seconds: float, span: float, cfg: Any) -> int:
    """The first step from ``step`` up whose buckets hold enough calls, keeping enough points."""
    if cfg.bucket_seconds is not None:
        return int(cfg.bucket_seconds)
    rate = calls / max(active_seconds, 1.0)  # calls per second while there is traffic
    best = step
    for candidate in (s for s in LADDER if s >= step):
        if span / candidate < cfg.min_points:
            break  # coarser still would leave too few buckets to judge
        best = candidate
        if rate * candidate >= cfg.min_calls_per_bucket:
            break
    return best


def data_extent(store: StoreReader, lo: float, hi: float) -> tuple[float, float] | None:
    """The part of ``[lo, hi)`` that holds spans (to the hour), or None when none do."""
    rows = store.span_series(lo, hi, _PROBE_STEP)
    active = [r.bucket_start for r in rows if r.calls > 0 and r.bucket_start is not None]
    if not active:
        return None
    return max(lo, float(min(active))), min(hi, float(max(active) + _PROBE_STEP))


def _grid(lo: float, hi: float, step: int) -> np.ndarray:
    first = math.floor(lo / step) * step
    return np.arange(first, hi, step, dtype=np.float64)


def _key_filter(subject: dict[str, str | None]) -> dict[str, str]:
    # '' selects spans that have no value for the key (see Store.span_stats).
    return {k: ("" if v is None else v) for k, v in subject.items()}


def span_series_by_group(
    store: StoreReader,
    lo: float,
    hi: float,
    group_by: Sequence[str],
    filters: dict[str, Any],
    cfg: Any,
) -> list[StatSeries]:
    """One ``StatSeries`` per group of spans matching ``filters`` in ``[lo, hi)``."""
    span = hi - lo
    base = int(cfg.bucket_seconds or choose_step(span, cfg.max_points))
    rows = store.span_series(lo, hi, base, group_by=tuple(group_by), **filters)
    by_group: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for r in rows:
        by_group[tuple(r.group.get(k) for k in group_by)].append(r)
    out = []
    for key, group_rows in sorted(by_group.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        subject = dict(zip(group_by, key, strict=True))
        active = [r for r in group_rows if r.calls > 0]
        step = _coarsen(base, sum(r.calls for r in active), len(active) * base, span, cfg)
        if step != base:
            group_rows = store.span_series(lo, hi, step, **{**filters, **_key_filter(subject)})
        starts = _grid(lo, hi, step)
        at = {int(r.bucket_start): r for r in group_rows}
        out.append(StatSeries(subject, step, starts, lo, hi, [at.get(int(t)) for t in starts]))
    return out


def branch_series(store: StoreReader, lo: float, hi: float, cfg: Any) -> list[CountSeries]:
    """One ``CountSeries`` per (branch span name, branch): how often it went that way.

    A decision with two ways yields one series (its rarer way): the other is its complement.
    """
    span = hi - lo
    base = int(cfg.bucket_seconds or choose_step(span, cfg.max_points))
    counts = store.branch_counts(lo, hi, step_seconds=base)
    names: dict[str, list[Any]] = defaultdict(list)
    for c in counts:
        names[c.name].append(c)
    out: list[CountSeries] = []
    for name in sorted(names):
        rows = names[name]
        buckets = {c.bucket_start for c in rows}
        step = _coarsen(base, sum(c.count for c in rows), len(buckets) * base, span, cfg)
        if step != base:
            rows = store.branch_counts(lo, hi, step_seconds=step, name=name)
        out.extend(_branch_counts(name, rows, lo, hi, step))
    return out


def _branch_counts(
    name: str, rows: list[Any], lo: float, hi: float, step: int
) -> list[CountSeries]:
    starts = _grid(lo, hi, step)
    index = {int(t): i for i, t in enumerate(starts)}
    per_branch: dict[str | None, np.ndarray] = defaultdict(lambda: np.zeros(starts.size))
    for c in rows:
        i = index.get(int(c.bucket_start))
        if i is not None:
            per_branch[c.branch][i] += c.count
    if len(per_branch) < 2:
        return []  # a decision that always goes one way has no rate to shift
    totals = np.zeros(starts.size)
    for counts in per_branch.values():
        totals += counts
    ranked = sorted(per_branch, key=lambda b: (per_branch[b].sum(), str(b)))
    chosen = ranked[:1] if len(ranked) == 2 else ranked
    return [
        CountSeries({"name": name, "branch": b}, step, starts, lo, hi, per_branch[b], totals)
        for b in chosen
    ]
