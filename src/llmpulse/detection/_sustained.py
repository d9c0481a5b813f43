"""Sustained deviations: a series that leaves its recent normal and stays away.

The spike score measures each point against a short rolling median inside its level, so it
sees bursts of a few points and is blind, by design, to a level shift, a plateau, a daily
wave that stops, or a slow climb: after a few points these are the new "local normal". What
an operator wants to hear about is the start of such a change. The sustained score asks:
how far is the mean of the last ``SUSTAIN_POINTS`` points from the median of the
``BASELINE_POINTS`` before them? It uses the past only (the streaming detector computes the
same number as points arrive), on the transformed, de-seasonalised series with spikes clipped
(spikes are the spike score's job).

Its scale is the series' own: the deviation is divided by the robust spread of the
deviations (``residual_scale``), and the alarm level is the generalised-Pareto tail of those
scores at its share of the same "false alarms per day" (``split_budget``), fitted without the
runs of the top 2 % that last longer than ``LONG_RUN`` points and refitted once without the
events it finds (a shift is hundreds of points at the top of the tail it is judged by). The scores of a moving average exceed a
level in runs, so the tail is read per event (``clustered``: the extremal index turns points
into events). Without enough history to fit a tail, nothing alarms: a sustained deviation
has no natural number of sigmas. An event lasts until the score falls below ``RELEASE`` times
the threshold (hysteresis), so a shift whose score hovers around the threshold while the
baseline catches up is one alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ._calibrate import (
    _order_stat,
    points_per_day,
    residual_scale,
    short_tail_quantile,
    tail_threshold,
)

__all__ = [
    "BASELINE_POINTS",
    "RELEASE",
    "SUSTAIN_POINTS",
    "Sustained",
    "calibrate",
    "sustained_deviation",
    "sustained_scores",
]

SUSTAIN_POINTS = 12  # points averaged: an hour at 5-minute samples
BASELINE_POINTS = 289  # points of history before them (a day at 5-minute samples; odd)
LONG_RUN = 2 * SUSTAIN_POINTS  # runs over the tail level longer than this are deviations
RELEASE = 0.5  # an event lasts until the score falls below this fraction of the threshold


def sustained_deviation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(deviation, baseline): mean of the last SUSTAIN_POINTS minus the median before them.

    ``baseline[t]`` is the median of ``x[t - w - L + 1 : t - w + 1]`` (w = SUSTAIN_POINTS,
    L = BASELINE_POINTS); both are NaN for the first ``w + L - 1`` points, which have less
    history than that.
    """
    w, big = SUSTAIN_POINTS, BASELINE_POINTS
    n = x.size
    dev = np.full(n, np.nan)
    base = np.full(n, np.nan)
    start = w + big - 1
    if n <= start:
        return dev, base
    # Running sums of x minus its median: sums of raw values far from 0 (1e4 +- 1e-3) would
    # lose the digits the differences are made of.
    mid = float(np.median(x))
    sums = np.concatenate(([0.0], np.cumsum(x - mid)))
    mean = (sums[w:] - sums[:-w]) / w  # mean[k] = mean of x[k : k + w] - mid
    centred = ndimage.median_filter(x, size=big, mode="nearest")  # x[c - L//2 : c + L//2 + 1]
    t = np.arange(start, n)
    base[start:] = centred[t - w - big // 2]
    dev[start:] = mean[t - w + 1] - (base[start:] - mid)
    return dev, base


def calibrate(
    dev: np.ndarray, interval: float | None, false_alarms_per_day: float | None, floor: float
) -> tuple[float, float, float | None]:
    """(centre, scale, threshold) of finite deviations: the score is (dev - centre) / scale.

    The threshold is None (never alarm) when the deviations have no spread, calibration is
    off, or there are too few of them to fit a tail.
    """
    if dev.size == 0:
        return 0.0, 0.0, None
    centre = float(np.median(dev))
    scale = residual_scale(dev - centre)
    if scale == 0:
        return centre, 0.0, None
    if false_alarms_per_day is None:
        return centre, scale, None
    z = (dev - centre) / scale
    q = false_alarms_per_day / points_per_day(interval)
    tq = short_tail_quantile(z.size)
    fitted = tail_threshold(z, q, clustered=True, quantile=tq)
    if fitted is None:
        return centre, scale, None
    # The mean of SUSTAIN_POINTS independent points stays over a high level for about that
    # long; runs of the tail lasting over LONG_RUN points are the sustained deviations being
    # looked for, and fitting the tail with them would hide them: fit without them first.
    top = np.abs(z)
    keep = ~_long_runs(top > _order_stat(top, tq), LONG_RUN)
    if not keep.all():
        without = tail_threshold(
            z[keep], q, clustered=True, quantile=short_tail_quantile(int(keep.sum()))
        )
        fitted = fitted if without is None else without
    level = max(floor, fitted)
    # A sustained event is a run of up to hundreds of points: it fills the top of the very tail
    # it was found with and hides itself. Refit once without the events (as the spike baseline
    # is refitted without the first flags).
    calm = ~_event_points(top >= level, top >= RELEASE * level)
    if not calm.all():
        rest = z[calm]
        refitted = tail_threshold(rest, q, clustered=True, quantile=short_tail_quantile(rest.size))
        if refitted is not None:
            level = max(floor, refitted)
    return centre, scale, level


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, stops) of the runs of consecutive True in mask (stops exclusive)."""
    edges = np.diff(mask.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _long_runs(mask: np.ndarray, longer_than: int) -> np.ndarray:
    """The points of the runs of True in mask longer than ``longer_than`` points."""
    starts, stops = _runs(mask)
    long = stops - starts > longer_than
    marks = np.zeros(mask.size + 1, dtype=np.int64)
    np.add.at(marks, starts[long], 1)
    np.add.at(marks, stops[long], -1)
    return np.cumsum(marks[:-1]) > 0


def _event_points(hits: np.ndarray, hold: np.ndarray) -> np.ndarray:
    """The points of the events of ``events(hits, _, hold)``: first hit to the end of its run.

    Vectorised over the runs (the streaming detector calls this on every refit); only the
    few runs that contain a hit are visited.
    """
    starts, stops = _runs(hold | hits)
    out = np.zeros(hits.size, dtype=bool)
    if starts.size == 0:
        return out
    with_hit = np.add.reduceat(hits.astype(np.int64), starts) > 0
    for a, b in zip(starts[with_hit].tolist(), stops[with_hit].tolist(), strict=True):
        out[a + int(np.argmax(hits[a:b])) : b] = True
    return out


@dataclass(frozen=True, slots=True)
class Sustained:
    """Sustained-deviation scores of a series, the baseline they measure against, the alarm."""

    z: np.ndarray  # signed score per point (0 while there is too little history)
    baseline: np.ndarray  # median the deviation is measured from (NaN early on)
    threshold: float | None  # absolute score that alarms; None: too short to calibrate


def sustained_scores(
    x: np.ndarray, interval: float | None, false_alarms_per_day: float | None, floor: float
) -> Sustained:
    """Sustained-deviation scores of x and their calibrated alarm level (see the module doc)."""
    dev, base = sustained_deviation(x)
    valid = np.isfinite(dev)
    centre, scale, level = calibrate(dev[valid], interval, false_alarms_per_day, floor)
    z = np.zeros(x.size)
    if scale > 0:
        z[valid] = (dev[valid] - centre) / scale
    return Sustained(z, base, level)
