"""Finding the levels of a series: the change-point pipeline shared by both detectors.

1. Variance-stabilising transform (log, arcsine-sqrt, sqrt; see _transform).
2. Remove the daily profile when the series covers enough days to see it.
3. Replace isolated spikes by the local median, so anomalies cannot fake a level.
4. Penalised least-squares segmentation (exact optimal partitioning, _segment) in units of
   the point-to-point noise: generous, it proposes candidates.
5. Keep a candidate only when its step is significant, weakest first: either it stands out
   from a local line fitted through both sides (so trends and daily waves do not count), or it
   is visible locally and the two whole segments differ beyond their own slow drift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._prepare import Series
from ._robust import (
    clip_spikes,
    noise_sigma,
    robust_sigma,
    rolling_median,
    seasonal_component,
)
from ._segment import segment
from ._transform import Transform, choose_transform

__all__ = ["LevelOptions", "Levels", "find_levels"]


@dataclass(frozen=True, slots=True)
class LevelOptions:
    """Tuning of the change-point pipeline; the defaults are what docs/detection.md measures."""

    transform: str = "auto"
    min_size: int = 8  # points: shorter excursions are anomalies, not levels
    penalty: float | None = None  # segmentation penalty in noise units; default 3 * log(n)
    min_stat: float = 4.0  # local step, in standard errors, that alone proves a change
    long_stat: float = 5.0  # whole-segment step that proves a change visible locally
    reach: int = 50  # points a side for the local line
    clip: float = 4.0  # robust z beyond which a point is a spike to ignore


@dataclass(frozen=True, slots=True)
class Levels:
    """The transformed series, its seasonal part, its cleaned form and where its level changes."""

    transform: Transform  # how y was made from the values
    y: np.ndarray  # transformed values
    season: np.ndarray  # daily profile of y (zeros when none was found)
    clean: np.ndarray  # y without the profile, spikes replaced by the local median
    sigma: float  # point-to-point noise of clean
    cuts: list[int]  # first index of each new level


def _autocorrelation_inflation(clean: np.ndarray) -> float:
    """How much short-range autocorrelation widens the error of a mean (AR(1) approximation).

    For white noise the point-to-point noise equals the local spread; for noise that lingers
    (lag-1 correlation rho > 0) differences are smaller, by sqrt(1 - rho).
    """
    resid = clean - rolling_median(clean, 15)
    spread = robust_sigma(resid)
    if spread == 0:
        return 1.0
    rho = min(0.8, max(0.0, 1.0 - (noise_sigma(resid) / spread) ** 2))
    return math.sqrt((1.0 + rho) / (1.0 - rho))


def _step_fit(seg: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray, float]:
    """Least squares of seg on level + slope + step at x = 0: (step, residual, step's unit se)."""
    design = np.column_stack((np.ones_like(x), x / max(1.0, float(x.size)), (x >= 0).astype(np.float64)))
    coef, *_ = np.linalg.lstsq(design, seg, rcond=None)
    unit_se = math.sqrt(float(np.linalg.inv(design.T @ design)[2, 2]))
    return float(coef[2]), seg - design @ coef, unit_se


def _local_stat(clean: np.ndarray, a: int, tau: int, b: int, sigma: float, reach: int, inflate: float) -> float:
    """The jump at tau in standard errors, with a line fitted through a symmetric window.

    A trend goes into the slope; a daily wave's curvature is symmetric about tau, so it cannot
    project onto the step. The window is as wide as the shorter neighbouring segment allows.
    """
    half = min(tau - a, b - tau, reach)
    step, resid, unit_se = _step_fit(clean[tau - half: tau + half], np.arange(-half, half, dtype=np.float64))
    spread = max(sigma, math.sqrt(float(resid @ resid) / max(1, 2 * half - 3))) * inflate
    return abs(step) / (spread * unit_se)


def _long_run_var(resid: np.ndarray, blocks: int = 8) -> float:
    """Per-point variance of a mean of resid, from batch means: slow waves make it bigger."""
    size = max(4, resid.size // blocks)
    k = resid.size // size
    if k < 3:
        return 0.0
    means = resid[: k * size].reshape(k, size).mean(axis=1)
    return float(size * np.var(means, ddof=1))


def _segment_stat(clean: np.ndarray, a: int, tau: int, b: int, sigma: float) -> float:
    """The step at tau fitted over both whole segments (with a common trend), in drift-aware se."""
    step, resid, unit_se = _step_fit(clean[a:b], np.arange(a - tau, b - tau, dtype=np.float64))
    split = tau - a
    long_run = 0.5 * (_long_run_var(resid[:split]) + _long_run_var(resid[split:]))
    spread = math.sqrt(max(sigma * sigma, long_run, float(resid @ resid) / max(1, b - a - 3)))
    return abs(step) / (spread * unit_se)


def _evidence(clean: np.ndarray, bounds: list[int], i: int, sigma: float, inflate: float, opt: LevelOptions) -> float:
    """Evidence for the change at bounds[i], scaled so that >= opt.min_stat means keep it."""
    a, tau, b = bounds[i - 1], bounds[i], bounds[i + 1]
    local = _local_stat(clean, a, tau, b, sigma, opt.reach, inflate)
    if local >= opt.min_stat or local < 0.6 * opt.min_stat:
        return local
    # Locally visible but not decisive: let the whole segments decide.
    return opt.min_stat * _segment_stat(clean, a, tau, b, sigma) / opt.long_stat


def _prune(clean: np.ndarray, cuts: list[int], sigma: float, opt: LevelOptions) -> list[int]:
    """Drop, weakest first, changes whose step is not clearly bigger than the noise."""
    cuts = list(cuts)
    inflate = _autocorrelation_inflation(clean)
    memo: dict[tuple[int, int, int], float] = {}  # removing a cut only changes its neighbours
    while cuts:
        bounds = [0, *cuts, clean.size]
        scores = []
        for i in range(1, len(bounds) - 1):
            key = (bounds[i - 1], bounds[i], bounds[i + 1])
            if key not in memo:
                memo[key] = _evidence(clean, bounds, i, sigma, inflate, opt)
            scores.append(memo[key])
        worst = int(np.argmin(scores))
        if scores[worst] >= opt.min_stat:
            break
        del cuts[worst]
    return cuts


def find_levels(series: Series, opt: LevelOptions) -> Levels:
    """Run the change-point pipeline on a prepared series."""
    kind = choose_transform(series.values, opt.transform)
    y = kind.forward(series.values)
    season = seasonal_component(y, series.times, series.interval)
    season = np.zeros_like(y) if season is None else season
    clean = clip_spikes(y - season, opt.clip)
    sigma = noise_sigma(clean)
    if sigma > 0:
        sigma = max(sigma, kind.noise_floor)
    if sigma == 0 or series.n < 2 * opt.min_size:
        return Levels(kind, y, season, clean, sigma, [])
    penalty = opt.penalty if opt.penalty is not None else 3.0 * math.log(series.n)
    cuts = segment((clean - np.median(clean)) / sigma, penalty, opt.min_size)
    return Levels(kind, y, season, clean, sigma, _prune(clean, cuts, sigma, opt))
