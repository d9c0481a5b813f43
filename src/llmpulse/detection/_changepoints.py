"""detect_change_points: where a series settles on a new, persistent level."""

from __future__ import annotations

from typing import Any

import numpy as np

from llmpulse.errors import DetectionInputError

from ._levels import LevelOptions, Levels, find_levels
from ._prepare import Series, prepare
from ._types import ChangePoint

__all__ = ["detect_change_points", "level_options"]


def level_options(
    *, transform: str, min_size: int, penalty: float | None, sensitivity: float
) -> LevelOptions:
    """Validated pipeline options; sensitivity > 1 finds smaller changes, < 1 only bigger ones."""
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 3:
        raise DetectionInputError(f"min_size must be an integer >= 3, got {min_size!r}")
    if not sensitivity > 0:
        raise DetectionInputError(f"sensitivity must be > 0, got {sensitivity!r}")
    if penalty is not None and not penalty > 0:
        raise DetectionInputError(f"penalty must be > 0 (or None for 3*log(n)), got {penalty!r}")
    base = LevelOptions()
    return LevelOptions(
        transform=transform,
        min_size=min_size,
        penalty=penalty,
        min_stat=base.min_stat / sensitivity,
        long_stat=base.long_stat / sensitivity,
    )


def _describe(series: Series, levels: Levels) -> list[ChangePoint]:
    """ChangePoint records for the cuts, in the caller's units and positions."""
    out = []
    bounds = [0, *levels.cuts, series.n]
    for i in range(1, len(bounds) - 1):
        a, tau, b = bounds[i - 1], bounds[i], bounds[i + 1]
        before = float(np.median(series.values[a:tau]))
        after = float(np.median(series.values[tau:b]))
        out.append(
            ChangePoint(
                index=int(series.positions[tau]),
                before=before,
                after=after,
                change_pct=None if before == 0 else (after - before) / abs(before) * 100.0,
                confidence=levels.confidence[i - 1],
                direction="up" if after >= before else "down",
                timestamp=series.timestamp(tau),
            )
        )
    return out


def detect_change_points(
    values: Any,
    timestamps: Any = None,
    *,
    metric: str | None = None,
    transform: str = "auto",
    min_size: int = 8,
    penalty: float | None = None,
    sensitivity: float = 1.0,
) -> list[ChangePoint]:
    """Find where the series moves to a new persistent level; [] when it never does."""
    opt = level_options(
        transform=transform, min_size=min_size, penalty=penalty, sensitivity=sensitivity
    )
    series = prepare(values, timestamps, metric=metric)
    if series.n < 2 * opt.min_size:
        return []
    return _describe(series, find_levels(series, opt))
