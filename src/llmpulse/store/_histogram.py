"""The mergeable latency histogram behind every percentile the store reports.

Latencies are counted in fixed log-spaced bins: bin ``i`` holds values in
``(GAMMA**(i-1), GAMMA**i]`` milliseconds. A bin is reported as ``2 * GAMMA**i / (GAMMA + 1)``,
the point whose relative distance to both bin edges is equal, so any value in the bin is within
``RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)`` of it (DDSketch's argument). With ``GAMMA = 1.05``
that is 2.44 %. Bins are fixed, so histograms of any minutes, hours and keys merge by adding
counts bin by bin, which is what makes percentiles over arbitrary windows exact up to that error.

Latencies at or below ``MIN_MS`` (1 microsecond) share ``ZERO_BIN`` and are reported as 0;
latencies above ``MAX_MS`` (about 115 days) are counted in the last bin.

A rollup row stores its histogram densely: ``hist_lo`` (the first bin) and the counts of bins
``hist_lo, hist_lo + 1, ...`` as an array (little-endian int64 bytes on SQLite, ``bigint[]`` on
PostgreSQL). Adding two such arrays is ``hist_add``; the database calls the same operation as
``llmpulse_hist_add`` when an upsert meets an existing row.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Iterable, Mapping, Sequence
from operator import add
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
else:  # imported on first use: ingest never needs it (_lazy_numpy.py)
    from llmpulse.store._lazy_numpy import np

__all__ = [
    "GAMMA",
    "MAX_BIN",
    "MAX_MS",
    "MIN_MS",
    "RELATIVE_ERROR",
    "ZERO_BIN",
    "bin_of",
    "bin_value",
    "dense",
    "group_quantiles",
    "hist_add_bytes",
    "quantiles",
    "to_bytes",
]

GAMMA = 1.05
RELATIVE_ERROR = (GAMMA - 1.0) / (GAMMA + 1.0)
MIN_MS = 1e-3
MAX_MS = 1e10
_INV_LOG_GAMMA = 1.0 / math.log(GAMMA)
ZERO_BIN = math.ceil(math.log(MIN_MS) * _INV_LOG_GAMMA) - 1
MAX_BIN = math.ceil(math.log(MAX_MS) * _INV_LOG_GAMMA)
_MID = 2.0 / (GAMMA + 1.0)
_BIG_ENDIAN = sys.byteorder == "big"


def bin_of(latency_ms: float) -> int:
    """The bin holding ``latency_ms``."""
    if latency_ms <= MIN_MS:
        return ZERO_BIN
    return min(MAX_BIN, math.ceil(math.log(latency_ms) * _INV_LOG_GAMMA))


def bin_value(index: int) -> float:
    """The value reported for bin ``index`` (within RELATIVE_ERROR of anything in it)."""
    if index <= ZERO_BIN:
        return 0.0
    return _MID * GAMMA**index


def dense(counts: Mapping[int, int]) -> tuple[int, list[int]]:
    """``{bin: count}`` as ``(first bin, counts of consecutive bins)``."""
    lo, hi = min(counts), max(counts)
    out = [0] * (hi - lo + 1)
    for b, n in counts.items():
        out[b - lo] = n
    return lo, out


def to_bytes(counts: Sequence[int]) -> bytes:
    """Dense counts as the SQLite representation (little-endian int64)."""
    packed = array("q", counts)  # cheaper than numpy for arrays this small
    if _BIG_ENDIAN:
        packed.byteswap()
    return packed.tobytes()


def hist_add_bytes(
    lo1: int | None, a: bytes | None, lo2: int | None, b: bytes | None
) -> bytes | None:
    """Sum of two dense histograms in the SQLite representation (the SQL ``llmpulse_hist_add``).

    The result starts at ``min(lo1, lo2)``. Used by SQLite as a user function inside upserts.
    """
    if a is None or lo1 is None:
        return b
    if b is None or lo2 is None:
        return a
    x, y = _counts(a), _counts(b)
    lo = min(lo1, lo2)
    size = max(lo1 + len(x), lo2 + len(y)) - lo
    # Both padded with zeros to [lo, lo + size), then added bin by bin (in C, by map).
    x = _zeros(lo1 - lo) + x + _zeros(size - (lo1 - lo) - len(x))
    y = _zeros(lo2 - lo) + y + _zeros(size - (lo2 - lo) - len(y))
    return to_bytes(array("q", map(add, x, y)))


def _counts(data: bytes) -> array[int]:
    counts = array("q")
    counts.frombytes(data)
    if _BIG_ENDIAN:
        counts.byteswap()
    return counts


def _zeros(n: int) -> array[int]:
    return array("q", bytes(8 * n))


def quantiles(counts: Mapping[int, int], qs: Iterable[float]) -> list[float | None]:
    """Estimate the ``qs`` quantiles (0..1) of a histogram given as ``{bin: count}``.

    The q-quantile is the value of rank ``q * (n - 1)`` (0-based) in sorted order, the rank
    numpy's ``percentile`` interpolates from; ``None`` for an empty histogram.
    """
    qs = list(qs)
    bins = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    weights = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
    values = group_quantiles(np.zeros(len(bins), dtype=np.int64), bins, weights, 1, qs)[0]
    return [None if math.isnan(v) else float(v) for v in values]


_DENSE_LIMIT = 2_000_000  # cells of a (groups x bins) matrix worth allocating


def group_quantiles(
    groups: np.ndarray, bins: np.ndarray, counts: np.ndarray, n_groups: int, qs: Sequence[float]
) -> np.ndarray:
    """Quantiles of many histograms at once, from entries (group, bin, count) in any order.

    Returns shape (n_groups, len(qs)), NaN for a group without counts. Entries of one
    (group, bin) add up. Same rank rule as ``quantiles``.
    """
    out = np.full((n_groups, len(qs)), np.nan)
    if len(counts) == 0:
        return out
    bmin = int(bins.min())
    nb = int(bins.max()) - bmin + 1
    code = groups.astype(np.int64) * nb + (bins - bmin)
    if n_groups * nb <= _DENSE_LIMIT:
        weights = np.bincount(code, weights=counts, minlength=n_groups * nb)
        codes = np.arange(n_groups * nb)
    else:  # long series: only the (group, bin) pairs that occur
        codes, inverse = np.unique(code, return_inverse=True)
        weights = np.bincount(inverse, weights=counts)
    owner = codes // nb
    cum = np.cumsum(weights)
    ids = np.arange(n_groups)
    first = np.searchsorted(owner, ids, side="left")
    last = np.searchsorted(owner, ids, side="right")
    base = np.where(first > 0, cum[first - 1], 0.0)
    total = np.where(last > first, cum[np.maximum(last - 1, 0)] - base, 0.0)
    for j, q in enumerate(qs):
        # The value of 0-based rank r lies in the first bin whose cumulative count exceeds r.
        pos = np.minimum(np.searchsorted(cum, base + q * (total - 1), side="right"), len(cum) - 1)
        bin_ids = (codes[pos] % nb + bmin).astype(np.float64)
        values = np.where(bin_ids <= ZERO_BIN, 0.0, _MID * np.power(GAMMA, bin_ids))
        out[:, j] = np.where(total > 0, values, np.nan)
    return out
