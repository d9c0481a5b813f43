"""Is there a step at tau? Least squares of level + slope + step, from cumulative sums.

Every window's fit comes from prefix sums of y, i*y and y*y in O(1), so the tests for all
candidate changes of a 10,000-point series are a few vector operations, not hundreds of
separate least-squares solves.

- The local test fits a symmetric window around tau (as wide as the shorter neighbouring
  segment allows, at most ``reach`` points a side). A trend goes into the slope; a daily
  wave's curvature is symmetric about tau, so it cannot project onto the step.
- The segment test fits both whole segments with a common slope and judges the step against
  the long-run variance of the residuals (batch means), so slow drift widens the error bar.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["StepSums"]


def _sum_x(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Sum of the integers in [p, q) (the polynomial identity holds for negative bounds too)."""
    total: np.ndarray = (q * (q - 1) - p * (p - 1)) / 2.0
    return total


def _sum_xx(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Sum of the squares of the integers in [p, q)."""
    total: np.ndarray = ((q - 1) * q * (2 * q - 1) - (p - 1) * p * (2 * p - 1)) / 6.0
    return total


class StepSums:
    """Prefix sums of one series, answering step fits over any window."""

    def __init__(self, y: np.ndarray) -> None:
        self._y = y - np.median(y)  # centred, so the sums keep their precision
        i = np.arange(y.size, dtype=np.float64)
        self._c0 = np.concatenate(([0.0], np.cumsum(self._y)))
        self._c1 = np.concatenate(([0.0], np.cumsum(i * self._y)))
        self._c2 = np.concatenate(([0.0], np.cumsum(self._y * self._y)))

    def _fit(
        self, lo: np.ndarray, tau: np.ndarray, hi: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step, residual sum of squares, step's unit standard error and coefficients per window."""
        lo_f, tau_f, hi_f = (v.astype(np.float64) for v in (lo, tau, hi))
        n = hi_f - lo_f
        scale = np.maximum(
            1.0, n / 2.0
        )  # x in units of half the window keeps the system well conditioned
        p, q = lo_f - tau_f, hi_f - tau_f
        sx, sxx = _sum_x(p, q) / scale, _sum_xx(p, q) / scale**2
        sd, sdx = q, _sum_x(np.zeros_like(q), q) / scale
        sy = self._c0[hi] - self._c0[lo]
        sxy = ((self._c1[hi] - self._c1[lo]) - tau_f * sy) / scale
        sdy = self._c0[hi] - self._c0[tau]
        # Inverse of the symmetric 3x3 normal matrix [[n, sx, sd], [sx, sxx, sdx], [sd, sdx, sd]]
        # by cofactors: elementwise over all windows at once.
        c00, c11, c22 = sxx * sd - sdx * sdx, n * sd - sd * sd, n * sxx - sx * sx
        c01, c02, c12 = sd * sdx - sx * sd, sx * sdx - sxx * sd, sx * sd - n * sdx
        det = n * c00 + sx * c01 + sd * c02
        coef = (
            np.stack(
                [
                    c00 * sy + c01 * sxy + c02 * sdy,
                    c01 * sy + c11 * sxy + c12 * sdy,
                    c02 * sy + c12 * sxy + c22 * sdy,
                ]
            )
            / det
        )
        rss = np.maximum(
            0.0, (self._c2[hi] - self._c2[lo]) - (coef[0] * sy + coef[1] * sxy + coef[2] * sdy)
        )
        return coef[2], rss, np.sqrt(c22 / det), coef.T

    def local(self, bounds: np.ndarray, sigma: float, reach: int, inflate: float) -> np.ndarray:
        """Local step statistic at each inner bound (bounds = [0, cuts..., n])."""
        a, tau, b = bounds[:-2], bounds[1:-1], bounds[2:]
        half = np.minimum(np.minimum(tau - a, b - tau), reach)
        step, rss, unit_se, _ = self._fit(tau - half, tau, tau + half)
        spread = np.maximum(sigma, np.sqrt(rss / np.maximum(1, 2 * half - 3))) * inflate
        stat: np.ndarray = np.abs(step) / (spread * unit_se)
        return stat

    def _long_run_var(
        self, start: int, stop: int, tau: int, coef: np.ndarray, scale: float, blocks: int = 8
    ) -> float:
        """Per-point variance of a mean of the fit's residuals on [start, stop), from batch means."""
        size = max(4, (stop - start) // blocks)
        k = (stop - start) // size
        if k < 3:
            return 0.0
        edges = start + size * np.arange(k + 1)
        means = (self._c0[edges[1:]] - self._c0[edges[:-1]]) / size
        x_mid = (edges[:-1] + (size - 1) / 2.0 - tau) / scale  # the fit's x units (see _fit)
        fitted = coef[0] + coef[1] * x_mid + (coef[2] if start >= tau else 0.0)
        return float(size * np.var(means - fitted, ddof=1))

    def segment(self, a: int, tau: int, b: int, sigma: float) -> float:
        """Whole-segment step statistic at tau, with drift-aware standard errors."""
        lo, t, hi = (np.array([v]) for v in (a, tau, b))
        step, rss, unit_se, coef = self._fit(lo, t, hi)
        scale = max(1.0, (b - a) / 2.0)
        long_run = 0.5 * (
            self._long_run_var(a, tau, tau, coef[0], scale)
            + self._long_run_var(tau, b, tau, coef[0], scale)
        )
        spread = math.sqrt(max(sigma * sigma, long_run, float(rss[0]) / max(1, b - a - 3)))
        return float(abs(step[0]) / (spread * unit_se[0]))
