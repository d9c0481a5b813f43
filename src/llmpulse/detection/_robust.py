"""Robust building blocks: noise scale, rolling medians, spike clipping, the daily profile."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

__all__ = [
    "clip_spikes",
    "mann_whitney_p",
    "noise_sigma",
    "robust_sigma",
    "rolling_median",
    "seasonal_component",
]

_DAY_S = 86_400.0


def robust_sigma(x: np.ndarray) -> float:
    """Standard deviation estimated from the median absolute deviation, robust to outliers.

    When more than half the points are equal (a rate that is mostly 0 with the odd single
    error) the MAD is 0; then the spread of wider central intervals is used, so that an
    occasional 1-count blip is normal rather than infinitely anomalous. 0 only for a truly
    constant series.
    """
    if x.size == 0:
        return 0.0
    center = np.median(x)
    dev = np.abs(x - center)
    mad = float(np.median(dev)) * 1.4826
    if mad > 0:
        return mad
    # Normal-consistent scale from the 80 % and 95 % central intervals.
    for lo, hi, z_width in ((10.0, 90.0, 2.5631), (2.5, 97.5, 3.9199)):
        q_lo, q_hi = np.percentile(x, [lo, hi])
        if q_hi > q_lo:
            return float(q_hi - q_lo) / z_width
    return float(np.mean(dev)) * 1.2533


def noise_sigma(y: np.ndarray) -> float:
    """Point-to-point noise scale from first differences: blind to level shifts and trends."""
    if y.size < 3:
        return 0.0
    return robust_sigma(np.diff(y)) / math.sqrt(2.0)


def rolling_median(
    y: np.ndarray, window: int, bounds: list[tuple[int, int]] | None = None
) -> np.ndarray:
    """Centred rolling median, computed separately inside each (start, stop) segment.

    Edges mirror the segment (not repeat its end point), so a spike on the first point does not
    hide itself; segments shorter than the window use the largest odd window that fits.
    """
    out = np.empty_like(y)
    for start, stop in bounds or [(0, y.size)]:
        seg = y[start:stop]
        w = min(window, seg.size if seg.size % 2 else seg.size - 1)
        if w < 3:
            out[start:stop] = np.median(seg)
            continue
        out[start:stop] = ndimage.median_filter(seg, size=w, mode="mirror")
    return out


def clip_spikes(y: np.ndarray, k: float = 4.0, window: int = 7) -> np.ndarray:
    """Replace isolated spikes (beyond k robust sd of the local residual) by the local median."""
    med = rolling_median(y, window)
    resid = y - med
    sig = robust_sigma(resid)
    if sig == 0:
        return med
    return np.where(np.abs(resid) > k * sig, med, y)


def mann_whitney_p(x: np.ndarray, y: np.ndarray, inflate: float = 1.0) -> float:
    """Two-sided Mann-Whitney U p-value (normal approximation with tie correction).

    The same test as scipy.stats.mannwhitneyu for the sample sizes used here (>= 8 a side),
    without its per-call overhead, which dominates when many candidate changes are checked.
    ``inflate`` multiplies the statistic's variance (autocorrelated points: (1 + rho) / (1 - rho)).
    """
    n1, n2 = x.size, y.size
    n = n1 + n2
    _, inverse, counts = np.unique(np.concatenate((x, y)), return_inverse=True, return_counts=True)
    # Average rank of each distinct value: ties share the mean of the ranks they span.
    rank_of = np.cumsum(counts) - 0.5 * (counts - 1)
    u = float(rank_of[inverse[:n1]].sum()) - n1 * (n1 + 1) / 2.0
    ties = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    if var <= 0:
        return 1.0
    z = max(0.0, abs(u - n1 * n2 / 2.0) - 0.5) / math.sqrt(var * inflate)
    return math.erfc(z / math.sqrt(2.0))


def seasonal_period(times: np.ndarray | None, interval: float | None, n: int) -> int | None:
    """Points per day when the series covers at least three whole days, else None."""
    if times is None or interval is None or interval <= 0:
        return None
    period = round(_DAY_S / interval)
    if period < 4 or abs(period * interval - _DAY_S) > 0.01 * _DAY_S:
        return None
    if n < 3 * period or (times[-1] - times[0]) < 3 * _DAY_S - interval:
        return None
    return period


def _group_medians(x: np.ndarray, group: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Median of x within each group 0..groups-1 (0 for empty groups), and the group sizes."""
    order = np.lexsort((x, group))
    counts = np.bincount(group, minlength=groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    present = counts > 0
    lo = starts[present] + (counts[present] - 1) // 2
    hi = starts[present] + counts[present] // 2
    sorted_x = x[order]
    out = np.zeros(groups)
    out[present] = 0.5 * (sorted_x[lo] + sorted_x[hi])
    return out, counts


def seasonal_component(
    y: np.ndarray, times: np.ndarray | None, interval: float | None
) -> np.ndarray | None:
    """The daily profile of y (median by time of day of the detrended series), when it is real.

    Returns None when the series is too short to see a day repeat, or the profile is not
    clearly stronger than what noise alone would draw (so no noise is added by removing it).
    """
    period = seasonal_period(times, interval, y.size)
    if period is None or times is None or interval is None:
        return None
    slot = np.round((times % _DAY_S) / interval).astype(np.int64) % period
    # Spikes out first: two anomalies at the same hour on two of four days would otherwise
    # become part of "normal". Detrend with a one-day median so level shifts and trends do
    # not leak into the profile.
    calm = clip_spikes(y)
    detrended = calm - rolling_median(calm, period + 1 - period % 2)
    raw, counts = _group_medians(detrended, slot, period)
    # Daily cycles are smooth: averaging neighbouring slots (1-2-1) cuts the profile's noise.
    profile = 0.25 * np.roll(raw, 1) + 0.5 * raw + 0.25 * np.roll(raw, -1)
    profile -= np.median(profile)
    noise = robust_sigma(detrended - profile[slot])
    days = max(1.0, float(np.median(counts[counts > 0])))
    # Each slot is a median of `days` noisy points (noise ~1.25*sigma/sqrt(days)), smoothed
    # 1-2-1 (x0.61): keep the profile only when it is clearly bigger than that.
    if noise > 0 and np.std(profile) < 2.0 * 0.61 * 1.25 * noise / np.sqrt(days):
        return None
    return profile[slot]
