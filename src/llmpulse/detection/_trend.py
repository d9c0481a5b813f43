"""analyze_trend: the slope of a series per day, its significance, and a summary in plain words.

The slope is Theil–Sen (median of pairwise slopes), so a few spikes do not tilt it. The test is
Mann–Kendall (Kendall's tau against time), with its variance widened by the lag-1
autocorrelation of the detrended series (effective sample size), because telemetry points that
follow each other are rarely independent and a naive test finds "trends" in every wave.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from llmpulse.errors import DetectionInputError

from ._metrics import higher_is_better_for
from ._prepare import Series, prepare
from ._types import TrendDirection, TrendResult

__all__ = ["analyze_trend"]

_DAY_S = 86_400.0
_MAX_PAIRS_POINTS = 600  # Theil–Sen is quadratic: thin longer series evenly before it


def _theil_sen(days: np.ndarray, values: np.ndarray) -> float:
    """Median pairwise slope, on an even thinning of long series."""
    if days.size > _MAX_PAIRS_POINTS:
        pick = np.linspace(0, days.size - 1, _MAX_PAIRS_POINTS).round().astype(np.int64)
        days, values = days[pick], values[pick]
    i, j = np.triu_indices(days.size, 1)
    dx = days[j] - days[i]
    apart = dx > 0  # points at the same instant say nothing about a slope
    if not apart.any():
        return 0.0
    return float(np.median((values[j] - values[i])[apart] / dx[apart]))


def _mann_kendall_p(days: np.ndarray, values: np.ndarray, slope: float) -> float:
    """Two-sided Mann–Kendall p-value, corrected for lag-1 autocorrelation of the residuals."""
    tau = stats.kendalltau(days, values)
    if not np.isfinite(tau.pvalue):
        return 1.0
    resid = values - slope * days
    resid = resid - resid.mean()
    denom = float(resid @ resid)
    rho = float(resid[1:] @ resid[:-1]) / denom if denom > 0 else 0.0
    rho = min(max(rho, 0.0), 0.95)
    # z from the naive p, shrunk by sqrt(n_eff / n) with n_eff = n (1 - rho) / (1 + rho).
    z = stats.norm.isf(tau.pvalue / 2.0) * math.sqrt((1.0 - rho) / (1.0 + rho))
    return float(min(1.0, 2.0 * stats.norm.sf(z)))


def _summary(
    name: str, slope: float, pct: float | None, p: float, significant: bool, worsening: bool | None
) -> str:
    """One sentence a person can read in an alert."""
    per_day = f"{slope:+.4g} per day" + ("" if pct is None else f" ({pct:+.2f}%/day)")
    if not significant:
        return f"{name}: no significant trend ({per_day}, p={p:.2g})"
    verb = "rising" if slope > 0 else "falling"
    judgement = (
        "" if worsening is None else " - getting worse" if worsening else " - getting better"
    )
    return f"{name} is {verb} by {per_day}, p={p:.2g}{judgement}"


def _slope_and_p(days: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Theil-Sen slope per day and its autocorrelation-aware Mann-Kendall p-value."""
    slope = _theil_sen(days, values)
    return slope, _mann_kendall_p(days, values, slope)


def _days(series: Series) -> np.ndarray:
    """Days since the first point, or a DetectionInputError when there is no time to speak of."""
    if series.n < 3:
        raise DetectionInputError(f"analyze_trend needs at least 3 finite points, got {series.n}")
    assert series.times is not None  # prepare keeps the timestamps it was given
    days: np.ndarray = (series.times - series.times[0]) / _DAY_S
    if days[-1] <= 0:
        raise DetectionInputError("all timestamps are equal: a trend needs points spread over time")
    return days


def analyze_trend(
    values: Any,
    timestamps: Any,
    *,
    metric: str | None = None,
    higher_is_better: bool | None = None,
    alpha: float = 0.05,
) -> TrendResult:
    """Slope per day of values over timestamps (Unix seconds), whether it is significant, and why it matters."""
    if timestamps is None:
        raise DetectionInputError(
            "analyze_trend needs timestamps (Unix seconds) to express the slope per day"
        )
    if not 0.0 < alpha < 1.0:
        raise DetectionInputError(f"alpha must be between 0 and 1, e.g. 0.05; got {alpha!r}")
    series = prepare(values, timestamps, metric=metric)
    days = _days(series)
    v = series.values
    slope, p = (0.0, 1.0) if np.ptp(v) == 0 else _slope_and_p(days, v)
    significant = p < alpha and slope != 0
    direction: TrendDirection = ("up" if slope > 0 else "down") if significant else "flat"
    hib = higher_is_better if higher_is_better is not None else higher_is_better_for(metric)
    worsening = None if hib is None or not significant else (slope < 0) == hib
    level = float(np.median(v))
    pct = None if level == 0 else slope / abs(level) * 100.0
    return TrendResult(
        slope_per_day=slope,
        change_pct_per_day=pct,
        p_value=p,
        significant=significant,
        direction=direction,
        worsening=worsening,
        n_points=series.n,
        summary=_summary(metric or "metric", slope, pct, p, significant, worsening),
    )
