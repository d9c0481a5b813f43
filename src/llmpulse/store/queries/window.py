"""Which rollup rows cover a window: hour rows for whole hours, minute rows for the edges.

Rollups are minute-precise. A window ``[start, end)`` covers every minute bucket it overlaps:
from ``start`` rounded down to the minute to ``end`` rounded up. Inside that, every whole hour
is read from one hour row per key and only the ragged edges (at most 59 minutes at each end)
from minute rows, so a 24 h or 7 day query reads a bounded number of rows, however many spans
there are.
"""

from __future__ import annotations

import math

__all__ = ["HOUR", "MINUTE", "Segment", "minute_bounds", "plan", "plan_series", "series_buckets"]

MINUTE = 60
HOUR = 3600

# (resolution, first bucket_start included, bucket_start bound excluded)
Segment = tuple[int, int, int]


def minute_bounds(start: float, end: float) -> tuple[int, int]:
    """``start`` rounded down and ``end`` rounded up to whole minutes (Unix seconds)."""
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ValueError(f"start and end must be finite Unix times, got {start!r} and {end!r}")
    if end < start:
        raise ValueError(f"end ({end}) is before start ({start})")
    lo = math.floor(start / MINUTE) * MINUTE
    hi = math.ceil(end / MINUTE) * MINUTE
    return lo, hi


def plan(lo: int, hi: int) -> list[Segment]:
    """Segments covering the minute-aligned ``[lo, hi)`` with as many hour rows as possible."""
    if hi <= lo:
        return []
    h0 = -(-lo // HOUR) * HOUR
    h1 = hi // HOUR * HOUR
    if h0 >= h1:
        return [(MINUTE, lo, hi)]
    segments: list[Segment] = []
    if lo < h0:
        segments.append((MINUTE, lo, h0))
    segments.append((HOUR, h0, h1))
    if h1 < hi:
        segments.append((MINUTE, h1, hi))
    return segments


def series_buckets(lo: int, hi: int, step: int) -> range:
    """Starts of the series buckets covering ``[lo, hi)``: multiples of ``step`` since the epoch.

    Aligned like Prometheus range queries, so an hourly chart has buckets on whole hours
    whatever "now" is; the first and last buckets are clipped to the window.
    """
    if step <= 0 or step % MINUTE:
        raise ValueError(
            f"step_seconds must be a positive whole number of minutes (a multiple of 60), got {step}"
        )
    return range(lo // step * step, hi, step)


def plan_series(lo: int, hi: int, step: int) -> list[Segment]:
    """Segments covering ``[lo, hi)`` such that no hour row straddles two series buckets."""
    buckets = series_buckets(lo, hi, step)
    if step < HOUR:
        return [(MINUTE, lo, hi)] if hi > lo else []
    segments: list[Segment] = []
    for b in buckets:
        for seg in plan(max(b, lo), min(b + step, hi)):
            if segments and segments[-1][0] == seg[0] and segments[-1][2] == seg[1]:
                segments[-1] = (seg[0], segments[-1][1], seg[2])
            else:
                segments.append(seg)
    return segments
