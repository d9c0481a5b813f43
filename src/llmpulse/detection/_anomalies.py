"""detect_anomalies and anomaly_scores: points far outside the series' normal behaviour.

The baseline is robust and local: after the variance-stabilising transform and removal of the
daily profile, a rolling median computed separately inside each level found by the
change-point pipeline (so a level shift re-baselines instead of flagging every point after
it), recomputed once with the first-pass outliers replaced. A point's score is its distance
from that baseline in robust noise units (``residual_scale``). The alarm threshold is
calibrated on the series' own tail of scores to a target number of false alarms per day
(``_calibrate``), never below ``threshold``; consecutive points over it are one event.
The sustained score (``_sustained``) finds what lasts: its events are dated at the level
change the segmentation found just before them, when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from llmpulse.errors import DetectionInputError

from ._calibrate import (
    DEFAULT_FALSE_ALARMS_PER_DAY,
    DEFAULT_FLOOR,
    Event,
    alarm_threshold,
    events,
    residual_scale,
    split_budget,
)
from ._changepoints import level_options
from ._levels import Levels, find_levels
from ._prepare import Series, prepare
from ._robust import rolling_median
from ._sustained import RELEASE, SUSTAIN_POINTS, Sustained, sustained_scores
from ._types import Anomaly, AnomalyKind, AnomalyScores

__all__ = ["anomaly_scores", "detect_anomalies"]

_MIN_POINTS = 8


def _baseline(
    base: np.ndarray, cuts: list[int], window: int, threshold: float, floor: float
) -> tuple[np.ndarray, float]:
    """Rolling median per level, refitted once without the points it would flag; and the noise."""
    bounds = list(zip([0, *cuts], [*cuts, base.size], strict=True))
    med = rolling_median(base, window, bounds)
    sigma = max(floor, residual_scale(base - med))
    if sigma == 0:
        return med, 0.0
    wild = np.abs(base - med) > threshold * sigma
    if wild.any():
        med = rolling_median(np.where(wild, med, base), window, bounds)
        # A flat series with one glitch has no spread left once the glitch is out: keep the
        # first estimate then, so the glitch is still measured against something.
        sigma = max(floor, residual_scale((base - med)[~wild])) or sigma
    return med, sigma


@dataclass(frozen=True, slots=True)
class _Scored:
    """A prepared series, its levels, baseline and per-point scores (transformed units)."""

    series: Series
    levels: Levels | None
    med: np.ndarray
    z: np.ndarray
    threshold: float
    sustained: Sustained | None = None


def _validate(
    threshold: float, window: int, direction: str, false_alarms_per_day: float | None
) -> None:
    if not threshold > 0:
        raise DetectionInputError(f"threshold must be > 0, got {threshold!r}")
    if isinstance(window, bool) or not isinstance(window, int) or window < 3:
        raise DetectionInputError(f"window must be an integer >= 3, got {window!r}")
    if direction not in ("both", "up", "down"):
        raise DetectionInputError(f"direction must be 'both', 'up' or 'down', got {direction!r}")
    if false_alarms_per_day is not None and not (
        isinstance(false_alarms_per_day, (int, float)) and 0 < false_alarms_per_day < 1e6
    ):
        raise DetectionInputError(
            "false_alarms_per_day must be a number > 0 (or None for the fixed threshold), "
            f"got {false_alarms_per_day!r}"
        )


def _score(
    values: Any,
    timestamps: Any,
    *,
    metric: str | None,
    threshold: float,
    window: int,
    transform: str,
    min_size: int,
    false_alarms_per_day: float | None,
) -> _Scored:
    opt = level_options(transform=transform, min_size=min_size, penalty=None, sensitivity=1.0)
    series = prepare(values, timestamps, metric=metric)
    empty = np.zeros(series.n)
    if series.n < _MIN_POINTS:
        return _Scored(series, None, empty, empty, threshold)
    levels = find_levels(series, opt)
    base = levels.y - levels.season
    med, sigma = _baseline(base, levels.cuts, window | 1, threshold, levels.transform.noise_floor)
    if sigma == 0:
        return _Scored(series, levels, med, empty, threshold)
    z = (base - med) / sigma
    spikes, sustained = split_budget(false_alarms_per_day)
    level = alarm_threshold(z, series.interval, spikes, threshold)
    slow = sustained_scores(levels.clean, series.interval, sustained, threshold)
    return _Scored(series, levels, med, z, level, slow)


def anomaly_scores(
    values: Any,
    timestamps: Any = None,
    *,
    metric: str | None = None,
    threshold: float = DEFAULT_FLOOR,
    false_alarms_per_day: float | None = DEFAULT_FALSE_ALARMS_PER_DAY,
    window: int = 15,
    transform: str = "auto",
    min_size: int = 8,
) -> AnomalyScores:
    """The signed anomaly score of every point and this series' alarm threshold.

    The same model and options as ``detect_anomalies``: a point alarms when
    ``abs(score) >= threshold`` of the result. Ignored points (NaN, inf) score NaN.
    """
    _validate(threshold, window, "both", false_alarms_per_day)
    scored = _score(
        values,
        timestamps,
        metric=metric,
        threshold=threshold,
        window=window,
        transform=transform,
        min_size=min_size,
        false_alarms_per_day=false_alarms_per_day,
    )
    size = np.asarray(values, dtype=np.float64).size
    out = np.full(size, np.nan)
    out[scored.series.positions] = scored.z
    slow = np.full(size, np.nan)
    slow[scored.series.positions] = 0.0 if scored.sustained is None else scored.sustained.z
    level = None if scored.sustained is None else scored.sustained.threshold
    return AnomalyScores(
        scores=out.tolist(),
        threshold=float(scored.threshold),
        sustained=slow.tolist(),
        sustained_threshold=level,
    )


def detect_anomalies(
    values: Any,
    timestamps: Any = None,
    *,
    metric: str | None = None,
    threshold: float = DEFAULT_FLOOR,
    false_alarms_per_day: float | None = DEFAULT_FALSE_ALARMS_PER_DAY,
    window: int = 15,
    direction: Literal["both", "up", "down"] = "both",
    transform: str = "auto",
    min_size: int = 8,
) -> list[Anomaly]:
    """Anomaly events: runs of points whose score passes the series' calibrated threshold.

    ``false_alarms_per_day`` is how many alarms a day the series' normal behaviour may raise
    (the threshold is fitted to its own tail); ``threshold`` is the least robust z that can
    alarm (and the whole rule when ``false_alarms_per_day=None``).
    """
    _validate(threshold, window, direction, false_alarms_per_day)
    scored = _score(
        values,
        timestamps,
        metric=metric,
        threshold=threshold,
        window=window,
        transform=transform,
        min_size=min_size,
        false_alarms_per_day=false_alarms_per_day,
    )
    levels, slow = scored.levels, scored.sustained
    if levels is None:
        return []
    spikes = events(_keep(scored.z, scored.threshold, direction), scored.z)
    out = [_anomaly(scored, ev, scored.z, scored.med, scored.threshold, "spike") for ev in spikes]
    if slow is not None and slow.threshold is not None:
        # A sustained event that starts inside a spike event is that event, seen twice.
        covered = np.zeros(scored.z.size, dtype=bool)
        for ev in spikes:
            covered[ev.first : ev.last + 1] = True
        start = _keep(slow.z, slow.threshold, direction)
        hold = _keep(slow.z, RELEASE * slow.threshold, direction)
        for found in events(start, slow.z, hold):
            ev = _anchor(found, levels.cuts)
            if not covered[ev.first]:
                out.append(
                    _anomaly(
                        scored, ev, slow.z, slow.baseline, slow.threshold, "sustained", found.first
                    )
                )
    return sorted(out, key=lambda a: a.index)


def _anchor(ev: Event, cuts: list[int]) -> Event:
    """A sustained event begins where the level changed, when a change was found just before.

    The mean of the last SUSTAIN_POINTS passes the threshold a few points after a step; the
    change-point pipeline, which sees both sides, knows the step's first point.
    """
    near = [c for c in cuts if ev.first - 2 * SUSTAIN_POINTS <= c <= ev.first]
    return ev if not near else Event(near[-1], ev.last, ev.peak)


def _keep(z: np.ndarray, level: float, direction: str) -> np.ndarray:
    """Points whose score alarms in the wanted direction."""
    hits: np.ndarray = np.abs(z) >= level
    if direction == "up":
        hits &= z > 0
    elif direction == "down":
        hits &= z < 0
    return hits


def _anomaly(
    scored: _Scored,
    ev: Event,
    z: np.ndarray,
    baseline: np.ndarray,
    level: float,
    kind: AnomalyKind,
    at: int | None = None,
) -> Anomaly:
    """The Anomaly record of one event of a score series (original units and positions).

    ``expected`` is the baseline at point ``at`` (default: the event's first point).
    """
    series, levels = scored.series, scored.levels
    assert levels is not None
    i = ev.first
    j = i if at is None else at
    return Anomaly(
        index=int(series.positions[i]),
        value=float(series.values[i]),
        expected=float(levels.transform.inverse(baseline[j] + levels.season[j])),
        score=float(abs(z[ev.peak])),
        direction="up" if z[ev.peak] > 0 else "down",
        timestamp=series.timestamp(i),
        length=ev.last - ev.first + 1,
        threshold=float(level),
        kind=kind,
    )
