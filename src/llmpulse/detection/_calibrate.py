"""Calibration shared by the batch and streaming anomaly detectors.

A robust z-score alone assumes light-tailed, independent noise: on real telemetry (heavy tails,
bursts, counts that are mostly one value) a fixed "5.5 sigmas" fires every few hours. Here the
alarm threshold comes from the series' own history instead:

- ``residual_scale``: the noise scale of the residuals, the larger of the MAD and half the 90th
  percentile of absolute deviations (both normal-consistent), so a series whose residuals are
  mostly exactly 0 (zero-inflated counts, quantised CPU readings) is not given a scale of ~0;
- ``tail_threshold``: peaks over threshold (Pickands; as in SPOT, Siffer et al. KDD 2017): the
  absolute scores above their 98th percentile are fitted with a generalised Pareto
  distribution matched to the median and 80th percentile of the excesses (so the anomalies
  being looked for, at the very top, do not fatten the fitted tail), and the threshold is the
  score exceeded with probability ``q`` per point;
- ``alarm_threshold``: ``q`` from the user's words, "expected false alarms per day", and the
  sampling interval; never below the fixed floor, which is all that is used while the
  history is too short to see a tail;
- ``events``: consecutive points over the threshold are one event (one alarm).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_FALSE_ALARMS_PER_DAY",
    "DEFAULT_FLOOR",
    "Event",
    "alarm_threshold",
    "events",
    "extremal_index",
    "fit_gpd",
    "fits_tail",
    "points_per_day",
    "residual_scale",
    "short_tail_quantile",
    "split_budget",
    "tail_threshold",
]

DEFAULT_FALSE_ALARMS_PER_DAY = 0.2  # measured: docs/detection.md, "Choosing the default"
SUSTAINED_SHARE = 0.5  # of the false-alarm budget given to the sustained score
DEFAULT_FLOOR = 5.5  # robust z below which nothing is an anomaly, whatever the tail says
TAIL_QUANTILE = 0.98  # scores above this quantile are the tail that is fitted
SHORT_TAIL_QUANTILE = 0.9  # the lowest tail start short_tail_quantile uses
MIN_EXCESSES = 30  # fewer excesses than this: too little history to fit a tail
MAX_SHAPE = 0.5  # GPD shape bounds: beyond them the fit is noise, not tail
MIN_SHAPE = -0.5
_DAY_S = 86_400.0
_DEFAULT_INTERVAL_S = 300.0  # without timestamps a point is taken as a 5-minute sample
_Z90 = 1.6448536269514722  # 90th percentile of |N(0, 1)| is the 95th of N(0, 1)
_Z975 = 2.241402727604947  # 97.5th percentile of |N(0, 1)|
Q90_WEIGHT = 0.5  # chosen on the NAB halves (docs/detection.md); 1.0 mutes real spikes more


def residual_scale(r: np.ndarray) -> float:
    """Normal-consistent noise scale of residuals: max(MAD, Q90_WEIGHT x 90th percentile scale).

    For Gaussian noise the MAD wins (the 90th percentile scale equals it). When most residuals are exactly zero the MAD collapses
    while the 90th percentile still sees the spread of the rest; when even that is 0 (a flat
    series with spikes) the 97.5th percentile, and past that (a glitch) the mean absolute deviation
    is used, so the glitch is measured
    against something. 0 only for residuals that are all equal.
    """
    n = r.size
    if n == 0:
        return 0.0
    dev = np.abs(r - _order_stat(r, 0.5))
    # Order statistics by partition: this runs every REFRESH points of a stream.
    k50, k90 = (n - 1) // 2, int(0.9 * (n - 1))
    k975 = int(0.975 * (n - 1))
    part = np.partition(dev, (k50, k90, k975))
    scale = max(float(part[k50]) * 1.482602218505602, Q90_WEIGHT * float(part[k90]) / _Z90)
    if scale == 0:  # spikes on a flat line: the rarer they are, the wider the quantile used
        scale = float(part[k975]) / _Z975 or float(np.mean(dev)) * 1.2533141373155003
    return scale


def _order_stat(x: np.ndarray, p: float) -> float:
    """The order statistic at rank floor(p * (n - 1)) (a lower quantile; no interpolation)."""
    k = int(p * (x.size - 1))
    return float(np.partition(x, k)[k])


def _ratio(shape: float, p1: float, p2: float) -> float:
    """Q(p2) / Q(p1) of a generalised Pareto with this shape (the scale cancels)."""
    if abs(shape) < 1e-9:
        return math.log(1.0 - p2) / math.log(1.0 - p1)
    return float(((1.0 - p2) ** -shape - 1.0) / ((1.0 - p1) ** -shape - 1.0))


def fit_gpd(excesses: np.ndarray, p1: float = 0.5, p2: float = 0.8) -> tuple[float, float]:
    """(shape, scale) of a generalised Pareto matched to two quantiles of the excesses.

    Matching the median and the 80th percentile of the excesses (rather than moments) leaves
    the fit blind to the top 20 % of them, where the anomalies being looked for sit, without
    biasing it the way dropping them would. The shape is bounded to [MIN_SHAPE, MAX_SHAPE],
    where an estimate from a few dozen points still means something.
    """
    q1, q2 = (float(x) for x in np.quantile(excesses, (p1, p2)))
    if q1 <= 0 or q2 <= q1:
        return 0.0, max(q1, q2, 0.0) / -math.log(1.0 - p2)
    target = q2 / q1
    lo, hi = MIN_SHAPE, MAX_SHAPE
    if target <= _ratio(lo, p1, p2):
        shape = lo
    elif target >= _ratio(hi, p1, p2):
        shape = hi
    else:
        for _ in range(40):  # the ratio grows with the shape: bisect
            mid = 0.5 * (lo + hi)
            if _ratio(mid, p1, p2) < target:
                lo = mid
            else:
                hi = mid
        shape = 0.5 * (lo + hi)
    if abs(shape) < 1e-9:
        return 0.0, q1 / -math.log(1.0 - p1)
    return shape, q1 * shape / ((1.0 - p1) ** -shape - 1.0)


def extremal_index(over: np.ndarray) -> float:
    """Runs estimate of the extremal index: events (runs of consecutive True) per True point.

    1 when excesses come alone (independent scores); 1/k when they come in runs of k, as the
    scores of a moving average do. Dividing a per-point probability by it turns "points over
    the threshold" into "events over the threshold".
    """
    count = int(np.count_nonzero(over))
    if count == 0:
        return 1.0
    runs = int(np.count_nonzero(np.diff(over.astype(np.int8), prepend=np.int8(0)) == 1))
    return runs / count


def fits_tail(scores: np.ndarray, quantile: float = TAIL_QUANTILE) -> bool:
    """Whether ``tail_threshold`` would fit (or read) a tail here, without fitting it."""
    s = np.abs(scores[np.isfinite(scores)])
    n = s.size
    if n * (1.0 - quantile) < MIN_EXCESSES - 1e-9:
        return False
    u = _order_stat(s, quantile)
    if np.count_nonzero(s > u) >= MIN_EXCESSES:
        return True
    return bool(np.count_nonzero(s >= u) >= MIN_EXCESSES and u > 0)


def tail_threshold(
    scores: np.ndarray, q: float, *, clustered: bool = False, quantile: float = TAIL_QUANTILE
) -> float | None:
    """The absolute score exceeded with probability q per point, from the fitted tail.

    With ``clustered``, q is a probability per event instead: a run of consecutive points over
    the threshold counts once, so q is divided by the extremal index of the excesses (scores
    that move slowly, such as averages over several points, exceed in runs).
    ``quantile`` is where the tail starts (TAIL_QUANTILE; see ``short_tail_quantile``).
    None when there are too few points to see the tail (fewer than MIN_EXCESSES above the
    quantile); the caller then falls back to its floor.
    """
    s = np.abs(scores[np.isfinite(scores)])
    n = s.size
    if n * (1.0 - quantile) < MIN_EXCESSES - 1e-9:
        return None
    u = _order_stat(s, quantile)
    over = s > u
    exc = np.sort(s[over] - u)
    if exc.size < MIN_EXCESSES:
        # The quantile sits on a value many points share (spikes of one recurring height):
        # that height is normal for this series, so only what goes beyond it can alarm.
        if np.count_nonzero(s >= u) >= MIN_EXCESSES and u > 0:
            return float(np.nextafter(u, np.inf))
        return None
    if clustered:
        q = q / extremal_index(over)
    shape, scale = fit_gpd(exc)
    ratio = q * n / exc.size  # P(score > threshold | score > u)
    if ratio >= 1.0:
        return u
    if abs(shape) < 1e-9:
        return float(u - scale * math.log(ratio))
    return float(u + scale / shape * (ratio**-shape - 1.0))


def short_tail_quantile(n: int) -> float:
    """Where the tail starts for a score with no fallback rule: TAIL_QUANTILE once there are
    1,500 scores, before that lower (down to the 90th percentile, from 300 scores) so that
    MIN_EXCESSES points are always in the tail (peaks over a lower threshold: a less exact
    shape, but a calibrated level instead of none)."""
    if n <= 0:
        return TAIL_QUANTILE
    return min(TAIL_QUANTILE, max(SHORT_TAIL_QUANTILE, 1.0 - MIN_EXCESSES / n))


def split_budget(false_alarms_per_day: float | None) -> tuple[float | None, float | None]:
    """The false-alarm budget of a series shared by its two scores: (spikes, sustained).

    The user's "false alarms per day" is for the series, whatever raised the alarm; each score
    is calibrated to its share.
    """
    if false_alarms_per_day is None:
        return None, None
    sustained = SUSTAINED_SHARE * false_alarms_per_day
    return false_alarms_per_day - sustained, sustained


def points_per_day(interval: float | None) -> float:
    """Samples per day at the series' median interval (5-minute samples when unknown)."""
    step = interval if interval is not None and interval > 0 else _DEFAULT_INTERVAL_S
    return _DAY_S / step


def alarm_threshold(
    scores: np.ndarray,
    interval: float | None,
    false_alarms_per_day: float | None,
    floor: float,
    *,
    clustered: bool = False,
    quantile: float = TAIL_QUANTILE,
) -> float:
    """Absolute score that raises an alarm: the calibrated tail quantile, never below floor."""
    if false_alarms_per_day is None:
        return floor
    q = false_alarms_per_day / points_per_day(interval)
    fitted = tail_threshold(scores, q, clustered=clustered, quantile=quantile)
    return floor if fitted is None else max(floor, fitted)


@dataclass(frozen=True, slots=True)
class Event:
    """Consecutive points over the threshold: first, last (inclusive) and the strongest one."""

    first: int
    last: int
    peak: int


def events(hits: np.ndarray, strength: np.ndarray, hold: np.ndarray | None = None) -> list[Event]:
    """Runs of consecutive True in hits, each with the index of its largest |strength|.

    With ``hold`` (a mask that is True wherever hits is), an event starts at a hit and lasts
    while ``hold`` stays True (hysteresis: a score hovering around the threshold is one event,
    not many).
    """
    runs = hits if hold is None else hold | hits
    edges = np.diff(np.concatenate(([0], runs.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    out = []
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        if hold is not None:
            first = np.flatnonzero(hits[a:b])
            if first.size == 0:
                continue
            a += int(first[0])
        peak = a + int(np.argmax(np.abs(strength[a:b])))
        out.append(Event(a, b - 1, peak))
    return out
