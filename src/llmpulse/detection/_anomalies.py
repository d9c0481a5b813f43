"""detect_anomalies: points far outside the series' normal behaviour.

The baseline is robust and local: after the variance-stabilising transform and removal of the
daily profile, a rolling median computed separately inside each level found by the
change-point pipeline (so a level shift re-baselines instead of flagging every point after
it), recomputed once with the first-pass outliers replaced. A point is anomalous when it is
more than ``threshold`` robust standard deviations (median absolute deviation of the
residuals) away from that baseline.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from llmpulse.errors import DetectionInputError

from ._changepoints import level_options
from ._levels import Levels, find_levels
from ._prepare import Series, prepare
from ._robust import robust_sigma, rolling_median
from ._types import Anomaly

__all__ = ["detect_anomalies"]

_MIN_POINTS = 8


def _baseline(
    base: np.ndarray, cuts: list[int], window: int, threshold: float, floor: float
) -> tuple[np.ndarray, float]:
    """Rolling median per level, refitted once without the points it would flag; and the noise."""
    bounds = list(zip([0, *cuts], [*cuts, base.size], strict=True))
    med = rolling_median(base, window, bounds)
    sigma = max(floor, robust_sigma(base - med))
    if sigma == 0:
        return med, 0.0
    wild = np.abs(base - med) > threshold * sigma
    if wild.any():
        med = rolling_median(np.where(wild, med, base), window, bounds)
        # A flat series with one glitch has no spread left once the glitch is out: keep the
        # first estimate then, so the glitch is still measured against something.
        sigma = max(floor, robust_sigma((base - med)[~wild])) or sigma
    return med, sigma


def _records(
    series: Series, levels: Levels, med: np.ndarray, z: np.ndarray, hits: np.ndarray
) -> list[Anomaly]:
    """Anomaly records in the caller's units and positions, in time order."""
    expected = levels.transform.inverse(med[hits] + levels.season[hits])
    out = []
    for i, exp in zip(np.flatnonzero(hits), np.atleast_1d(expected), strict=True):
        out.append(
            Anomaly(
                index=int(series.positions[i]),
                value=float(series.values[i]),
                expected=float(exp),
                score=float(abs(z[i])),
                direction="up" if z[i] > 0 else "down",
                timestamp=series.timestamp(int(i)),
            )
        )
    return out


def detect_anomalies(
    values: Any,
    timestamps: Any = None,
    *,
    metric: str | None = None,
    threshold: float = 5.5,
    window: int = 15,
    direction: Literal["both", "up", "down"] = "both",
    transform: str = "auto",
    min_size: int = 8,
) -> list[Anomaly]:
    """Points more than `threshold` robust standard deviations from their local baseline."""
    if not threshold > 0:
        raise DetectionInputError(f"threshold must be > 0, got {threshold!r}")
    if isinstance(window, bool) or not isinstance(window, int) or window < 3:
        raise DetectionInputError(f"window must be an integer >= 3, got {window!r}")
    if direction not in ("both", "up", "down"):
        raise DetectionInputError(f"direction must be 'both', 'up' or 'down', got {direction!r}")
    opt = level_options(transform=transform, min_size=min_size, penalty=None, sensitivity=1.0)
    series = prepare(values, timestamps, metric=metric)
    if series.n < _MIN_POINTS:
        return []
    levels = find_levels(series, opt)
    base = levels.y - levels.season
    med, sigma = _baseline(base, levels.cuts, window | 1, threshold, levels.transform.noise_floor)
    if sigma == 0:
        return []
    z = (base - med) / sigma
    hits = np.abs(z) >= threshold
    if direction == "up":
        hits &= z > 0
    elif direction == "down":
        hits &= z < 0
    return _records(series, levels, med, z, hits)
