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
    mann_whitney_p,
    noise_sigma,
    robust_sigma,
    rolling_median,
    seasonal_component,
)
from ._segment import segment
from ._steps import StepSums
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
    max_p: float = 0.01  # the two levels around a change must differ at least this surely


@dataclass(frozen=True, slots=True)
class Levels:
    """The transformed series, its seasonal part, its cleaned form and where its level changes."""

    transform: Transform  # how y was made from the values
    y: np.ndarray  # transformed values
    season: np.ndarray  # daily profile of y (zeros when none was found)
    clean: np.ndarray  # y without the profile, spikes replaced by the local median
    sigma: float  # point-to-point noise of clean
    cuts: list[int]  # first index of each new level
    confidence: list[float]  # 1 - p of Mann-Whitney between the two levels around each cut


def _lag1_correlation(clean: np.ndarray) -> float:
    """Lag-1 autocorrelation of the noise, in [0, 0.8] (AR(1) view of short-range memory).

    For white noise the point-to-point noise equals the local spread; for noise that lingers
    (correlation rho > 0) differences are smaller than the spread, by sqrt(1 - rho).
    """
    resid = clean - rolling_median(clean, 15)
    spread = robust_sigma(resid)
    if spread == 0:
        return 0.0
    ratio = noise_sigma(resid) / spread
    return 0.0 if ratio >= 1.0 else min(0.8, 1.0 - ratio * ratio)


def _prune(clean: np.ndarray, cuts: list[int], sigma: float, opt: LevelOptions) -> list[int]:
    """Drop, weakest first, changes whose step is not clearly bigger than the noise.

    A change stays when its local step is >= min_stat standard errors, or when it is at least
    visible locally (>= 0.6 min_stat) and the whole segments differ by >= long_stat.
    """
    cuts = list(cuts)
    rho = _lag1_correlation(clean)
    # Standard errors of means grow by sqrt((1 + rho) / (1 - rho)) when points are correlated.
    inflate = math.sqrt((1.0 + rho) / (1.0 - rho))
    sums = StepSums(clean)
    memo: dict[tuple[int, int, int], float] = {}  # whole-segment tests are the costly ones
    while cuts:
        bounds = np.array([0, *cuts, clean.size])
        scores = sums.local(bounds, sigma, opt.reach, inflate)
        for i in np.flatnonzero((scores < opt.min_stat) & (scores >= 0.6 * opt.min_stat)):
            key = (int(bounds[i]), int(bounds[i + 1]), int(bounds[i + 2]))
            if key not in memo:
                memo[key] = opt.min_stat * sums.segment(*key, sigma) / opt.long_stat
            scores[i] = memo[key]
        weak = scores < opt.min_stat
        if not weak.any():
            break
        # Weakest first, several at a time: every weak cut weaker than both its neighbours
        # (such cuts are never adjacent, so removing one does not change the other's test).
        padded = np.concatenate(([np.inf], scores, [np.inf]))
        drop = weak & (scores <= padded[:-2]) & (scores < padded[2:])
        cuts = [c for c, d in zip(cuts, drop, strict=True) if not d]
    return cuts


def _confirm(
    clean: np.ndarray, cuts: list[int], max_p: float, inflate: float = 1.0
) -> tuple[list[int], list[float]]:
    """Drop, weakest first, changes whose two levels are not significantly different as wholes.

    The step tests look near the change; this asks the plain question about the two segments
    (Mann-Whitney, its variance widened by ``inflate`` for correlated noise), so a change is
    never reported between levels that are the same.
    """
    cuts = list(cuts)
    memo: dict[tuple[int, int, int], float] = {}
    while True:
        bounds = [0, *cuts, clean.size]
        p = []
        for a, tau, b in zip(bounds, bounds[1:], bounds[2:], strict=False):
            if (a, tau, b) not in memo:
                memo[(a, tau, b)] = mann_whitney_p(clean[a:tau], clean[tau:b], inflate)
            p.append(memo[(a, tau, b)])
        if not cuts or max(p) <= max_p:
            return cuts, [1.0 - x for x in p]
        del cuts[int(np.argmax(p))]


def find_levels(series: Series, opt: LevelOptions) -> Levels:
    """Run the change-point pipeline on a prepared series."""
    kind = choose_transform(series.values, opt.transform)
    y = kind.forward(series.values)
    season = seasonal_component(y, series.times, series.interval)
    season = np.zeros_like(y) if season is None else season
    clean = clip_spikes(y - season, opt.clip, 2 * opt.min_size + 1)
    sigma = noise_sigma(clean)
    if sigma > 0:
        # Never below counting noise, nor below what float precision can tell apart (a series
        # mixing 1e-300 and 1e99 would otherwise overflow squared sums).
        span = float(np.max(np.abs(clean - np.median(clean))))
        sigma = max(sigma, kind.noise_floor, 1e-9 * span)
    if sigma == 0 or series.n < 2 * opt.min_size:
        return Levels(kind, y, season, clean, sigma, [], [])
    penalty = opt.penalty if opt.penalty is not None else 3.0 * math.log(series.n)
    # Segment in units of the long-run noise, so correlated noise does not look like levels.
    rho = _lag1_correlation(clean)
    long_run = sigma * math.sqrt(1.0 + rho) / (1.0 - rho)
    cuts = segment((clean - np.median(clean)) / long_run, penalty, opt.min_size)
    # Mann-Whitney assumes independent points: with lag-1 correlation rho the rank sum varies
    # (1 + rho) / (1 - rho) times more (as for Mann-Kendall in _trend), or every wander of
    # correlated noise would be "significant".
    vif = (1.0 + rho) / (1.0 - rho)
    cuts, confidence = _confirm(clean, _prune(clean, cuts, sigma, opt), opt.max_p, vif)
    return Levels(kind, y, season, clean, sigma, cuts, confidence)
