"""Turning what the caller passed into a clean, time-ordered series, and undoing it afterwards.

Rules every detector shares (documented in docs/detection.md):
- a point is used only when its value (and its timestamp, when given) is finite; NaN and inf
  points are ignored, and reported indices still refer to the caller's positions;
- unsorted timestamps are sorted (stably); indices are mapped back to the caller's positions;
- negative values for a metric that cannot be negative (latency, cost, tokens, rates) are a
  DetectionInputError naming the metric and the first offending point.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmpulse.errors import DetectionInputError

from ._metrics import cannot_be_negative

__all__ = ["Series", "prepare"]

_MAX_MAGNITUDE = 1e100


@dataclass(frozen=True, slots=True)
class Series:
    """A cleaned series: finite values in time order, and where each came from."""

    values: np.ndarray  # float64, finite, time-ordered, original units
    times: np.ndarray | None  # seconds, same order as values; None when none were given
    positions: np.ndarray  # caller's index of each kept point
    interval: float | None  # median spacing of times in seconds (None without times)

    @property
    def n(self) -> int:
        """Number of usable points."""
        return int(self.values.size)

    def timestamp(self, i: int) -> float | None:
        """The timestamp of kept point i, or None when the caller gave no timestamps."""
        return None if self.times is None else float(self.times[i])


def _as_float_array(data: Any, what: str) -> np.ndarray:
    """A 1-D float64 array from a sequence of numbers, or a DetectionInputError saying why not."""
    if isinstance(data, (str, bytes)):
        raise DetectionInputError(f"{what} must be a sequence of numbers, not a string")
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DetectionInputError(
            f"{what} must be a sequence of numbers (int or float); could not convert: {exc}"
        ) from exc
    if arr.ndim != 1:
        raise DetectionInputError(f"{what} must be one-dimensional, got shape {arr.shape}")
    return arr


def _as_seconds(timestamps: Sequence[Any]) -> np.ndarray:
    """Timestamps as Unix seconds; datetimes are accepted (naive ones are taken as UTC)."""
    items = list(timestamps)
    if items and all(isinstance(t, _dt.datetime) for t in items):
        return np.array(
            [(t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)).timestamp() for t in items],
            dtype=np.float64,
        )
    return _as_float_array(items, "timestamps")


def _check_non_negative(values: np.ndarray, positions: np.ndarray, metric: str | None) -> None:
    """Negative values for a metric that cannot be negative mean the data is wrong, not odd."""
    if metric is None or not cannot_be_negative(metric):
        return
    bad = np.flatnonzero(values < 0)
    if bad.size:
        first = int(bad[0])
        raise DetectionInputError(
            f"metric {metric!r} cannot be negative, but {bad.size} value(s) are "
            f"(first at index {int(positions[first])}: {float(values[first])!r}); "
            "fix the recording, or pass metric=None to analyse the numbers as they are"
        )


def _check_magnitude(values: np.ndarray) -> None:
    """Numbers beyond 1e100 are a unit or recording bug, and would overflow squared sums."""
    big = np.flatnonzero(np.abs(values) > _MAX_MAGNITUDE)
    if big.size:
        raise DetectionInputError(
            f"values must be within +-{_MAX_MAGNITUDE:g}; got {float(values[big[0]])!r} at index "
            f"{int(big[0])}; rescale the series (e.g. to ms, tokens or USD)"
        )


def prepare(values: Any, timestamps: Any = None, *, metric: str | None = None) -> Series:
    """Validate, drop non-finite points, sort by time and remember the caller's positions."""
    v = _as_float_array(values, "values")
    _check_magnitude(np.where(np.isfinite(v), v, 0.0))
    positions = np.arange(v.size)
    if timestamps is None:
        keep = np.isfinite(v)
        v, positions = v[keep], positions[keep]
        _check_non_negative(v, positions, metric)
        return Series(values=v, times=None, positions=positions, interval=None)
    t = _as_seconds(timestamps)
    if t.size != v.size:
        raise DetectionInputError(
            f"values and timestamps must have the same length, got {v.size} values and "
            f"{t.size} timestamps"
        )
    keep = np.isfinite(v) & np.isfinite(t)
    v, t, positions = v[keep], t[keep], positions[keep]
    _check_non_negative(v, positions, metric)
    if t.size > 1 and np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        v, t, positions = v[order], t[order], positions[order]
    steps = np.diff(t)
    steps = steps[steps > 0]
    interval = float(np.median(steps)) if steps.size else None
    return Series(values=v, times=t, positions=positions, interval=interval)
