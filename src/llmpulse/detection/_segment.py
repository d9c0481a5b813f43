"""Penalised least-squares segmentation of a standardised series into constant-mean pieces.

Exact optimal partitioning (the problem PELT solves) over block boundaries: for short series a
block is one point, so the search is exact; for long ones the series is cut into at most
``max_blocks`` blocks, the optimum is found over their boundaries, and each change is then
refined to the exact point inside its block. That keeps 10,000 points to a few milliseconds
where a point-level search would be quadratic.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["segment"]


def _costs(
    c1: np.ndarray, c2: np.ndarray, starts: np.ndarray | int, stops: np.ndarray | int
) -> np.ndarray:
    """Squared-error cost of each [start, stop) around its own mean, from cumulative sums."""
    length = np.asarray(stops - starts, dtype=np.float64)
    s1 = c1[stops] - c1[starts]
    cost: np.ndarray = (c2[stops] - c2[starts]) - s1 * s1 / length
    return cost


def _optimal_partition(
    c1: np.ndarray, c2: np.ndarray, edges: np.ndarray, penalty: float, min_blocks: int
) -> list[int]:
    """Indices (into edges) of the optimal change positions under the penalty (PELT pruning)."""
    m = edges.size - 1
    best = np.full(m + 1, np.inf)
    best[0] = -penalty
    prev = np.zeros(m + 1, dtype=np.int64)
    # Cumulative sums at the block edges, so each step is a handful of vector operations.
    e1, e2, ef = c1[edges], c2[edges], edges.astype(np.float64)
    admissible = np.zeros(0, dtype=np.int64)
    for j in range(min_blocks, m + 1):
        if best[j - min_blocks] < np.inf:
            admissible = np.concatenate((admissible, [j - min_blocks]))
        if admissible.size == 0:
            continue
        s1 = e1[j] - e1[admissible]
        fit = best[admissible] + (e2[j] - e2[admissible]) - s1 * s1 / (ef[j] - ef[admissible])
        k = int(fit.argmin())
        best[j], prev[j] = fit[k] + penalty, admissible[k]
        # PELT: a start that is already worse than the optimum can never win later.
        admissible = admissible[fit <= best[j]]
    cuts, j = [], m
    while j > 0:
        j = int(prev[j])
        if j > 0:
            cuts.append(j)
    return sorted(cuts)


def _refine(
    c1: np.ndarray, c2: np.ndarray, cuts: list[int], n: int, radius: int, min_size: int
) -> list[int]:
    """Move each change to the exact point that best splits its two neighbouring segments."""
    out: list[int] = []
    bounds = [0, *cuts, n]
    for i in range(1, len(bounds) - 1):
        left, right = (out[-1] if out else 0), bounds[i + 1]
        lo = max(left + min_size, bounds[i] - radius)
        hi = min(right - min_size, bounds[i] + radius)
        if hi < lo:
            out.append(bounds[i])
            continue
        taus = np.arange(lo, hi + 1)
        cost = _costs(c1, c2, left, taus) + _costs(c1, c2, taus, right)
        out.append(int(taus[int(np.argmin(cost))]))
    return out


def segment(z: np.ndarray, penalty: float, min_size: int, max_blocks: int = 400) -> list[int]:
    """First indices of each new segment of z (excluding 0) minimising cost + penalty * count."""
    n = z.size
    if n < 2 * min_size:
        return []
    c1 = np.concatenate(([0.0], np.cumsum(z)))
    c2 = np.concatenate(([0.0], np.cumsum(z * z)))
    block = max(1, math.ceil(n / max_blocks))
    edges = np.unique(np.append(np.arange(0, n, block), n))
    min_blocks = max(1, math.ceil(min_size / block))
    cuts = [int(edges[j]) for j in _optimal_partition(c1, c2, edges, penalty, min_blocks)]
    if block == 1:
        return cuts
    return _refine(c1, c2, cuts, n, block, min_size)
