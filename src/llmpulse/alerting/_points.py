"""Metric points for rules, kept between ticks so each tick reads only what is new.

Counter rules (``increase``) need each series' last value *before* the window, which may be
hours old for a quiet counter (recovery records a point per event), and a breaker's state holds
from its last transition. Reading a day of raw points at every tick would cost more than all
rollup rules together (measured by bench/alerting.py), so :class:`PointHistory` keeps, per
metric name, the points of the widest window any rule asks for plus the last point of each
series before it (its anchor), and each tick reads only the points since the previous read,
overlapping by ``LATE_SECONDS`` for points that arrive late (batched or spooled exporters).
A point arriving later than that after its timestamp is not seen by rules (it still is by
queries); the first read of a name looks back ``ANCHOR_LOOKBACK_SECONDS`` for anchors.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ANCHOR_LOOKBACK_SECONDS", "LATE_SECONDS", "PointHistory", "Series"]

ANCHOR_LOOKBACK_SECONDS = 86400.0
LATE_SECONDS = 300.0

SeriesKey = tuple[tuple[str, str], ...]


@dataclass
class Series:
    """One label set's points: ``times``/``values`` in time order, and the anchor before them."""

    anchor: float | None = None
    anchor_time: float = float("-inf")
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def window(self, start: float) -> tuple[float | None, list[float]]:
        """The value before ``start`` (``None`` if unknown) and the values from ``start`` on."""
        i = bisect.bisect_left(self.times, start)
        before = self.values[i - 1] if i else self.anchor
        return before, self.values[i:]


@dataclass
class _Name:
    series: dict[SeriesKey, Series] = field(default_factory=dict)
    read_to: float | None = None
    seen: set[tuple[SeriesKey, float, float]] = field(default_factory=set)


class PointHistory:
    """Per metric name, the recent points of every series; ``read`` fetches from the store.

    ``read(name, start, end)`` returns the store's points of ``name`` in ``[start, end)``.
    """

    def __init__(self, read: Callable[[str, float, float], list[Any]]) -> None:
        self._read = read
        self._names: dict[str, _Name] = {}

    def series(self, name: str, start: float, now: float) -> dict[SeriesKey, Series]:
        """Every series of ``name`` with its points from ``start`` to ``now`` (and anchors)."""
        entry = self._names.setdefault(name, _Name())
        if entry.read_to is None:
            fresh = self._read(name, start - ANCHOR_LOOKBACK_SECONDS, now)
        elif now > entry.read_to - LATE_SECONDS:
            fresh = self._read(name, entry.read_to - LATE_SECONDS, now)
        else:
            fresh = []
        self._merge(entry, fresh)
        entry.read_to = max(now, entry.read_to or now)
        self._trim(entry, start)
        return entry.series

    def _merge(self, entry: _Name, points: list[Any]) -> None:
        for p in points:
            key: SeriesKey = tuple(sorted((p.labels or {}).items()))
            ident = (key, float(p.timestamp), float(p.value))
            if ident in entry.seen:
                continue  # read again in the overlap
            entry.seen.add(ident)
            s = entry.series.setdefault(key, Series())
            i = bisect.bisect_right(s.times, p.timestamp)
            s.times.insert(i, float(p.timestamp))
            s.values.insert(i, float(p.value))

    def _trim(self, entry: _Name, start: float) -> None:
        """Fold points older than the widest window into anchors (keep memory bounded)."""
        keep_from = start - LATE_SECONDS
        for s in entry.series.values():
            i = bisect.bisect_left(s.times, keep_from)
            if i:
                s.anchor, s.anchor_time = s.values[i - 1], s.times[i - 1]
                del s.times[:i], s.values[:i]
        entry.seen = {x for x in entry.seen if x[1] >= keep_from}
