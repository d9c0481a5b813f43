"""The mergeable latency histogram behind every percentile the store reports.

Latencies are counted in fixed log-spaced bins: bin ``i`` holds values in
``(GAMMA**(i-1), GAMMA**i]`` milliseconds. A bin is reported as ``2 * GAMMA**i / (GAMMA + 1)``,
the point whose relative distance to both bin edges is equal, so any value in the bin is within
``RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)`` of it (DDSketch's argument). With ``GAMMA = 1.05``
that is 2.44 %. Bins are fixed, so histograms of any minutes, hours and keys merge by adding
counts per bin, which is what makes rollups over arbitrary windows exact up to that error.

Latencies at or below ``MIN_MS`` (1 microsecond) share ``ZERO_BIN`` and are reported as 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

__all__ = ["GAMMA", "MIN_MS", "RELATIVE_ERROR", "ZERO_BIN", "bin_of", "bin_value", "quantiles"]

GAMMA = 1.05
RELATIVE_ERROR = (GAMMA - 1.0) / (GAMMA + 1.0)
MIN_MS = 1e-3
ZERO_BIN = -(2**15)
_INV_LOG_GAMMA = 1.0 / math.log(GAMMA)
_MID = 2.0 / (GAMMA + 1.0)


def bin_of(latency_ms: float) -> int:
    """The bin holding ``latency_ms``."""
    if latency_ms <= MIN_MS:
        return ZERO_BIN
    return math.ceil(math.log(latency_ms) * _INV_LOG_GAMMA)


def bin_value(index: int) -> float:
    """The value reported for bin ``index`` (within RELATIVE_ERROR of anything in it)."""
    if index == ZERO_BIN:
        return 0.0
    return _MID * GAMMA**index


def quantiles(counts: Mapping[int, int], qs: Iterable[float]) -> list[float | None]:
    """Estimate the ``qs`` quantiles (0..1) of a histogram given as ``{bin: count}``.

    The q-quantile is the value of rank ``q * (n - 1)`` (0-based) in sorted order, the rank
    numpy's ``percentile`` interpolates from; ``None`` for an empty histogram.
    """
    qs = list(qs)
    total = sum(counts.values())
    if total <= 0:
        return [None] * len(qs)
    bins = sorted(b for b, c in counts.items() if c > 0)
    ranks = [q * (total - 1) for q in qs]
    out: list[float | None] = [None] * len(qs)
    order = sorted(range(len(qs)), key=ranks.__getitem__)
    seen = 0
    j = 0
    for b in bins:
        seen += counts[b]
        # The value of 0-based rank r lies in this bin when r < seen.
        while j < len(order) and ranks[order[j]] < seen:
            out[order[j]] = bin_value(b)
            j += 1
        if j == len(order):
            break
    while j < len(order):  # floating point slack at q == 1
        out[order[j]] = bin_value(bins[-1])
        j += 1
    return out
