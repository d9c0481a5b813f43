"""From a bucket series to incidents: which buckets are abnormal, merged into contiguous windows.

Continuous metrics (p95 latency, tokens and cost per call) go through the detectors of
``llmpulse.detection``: a bucket is flagged when ``detect_anomalies`` finds it spiking up, or
when it lies in a segment that ``detect_change_points`` starts with a step up.

Rates are counts in disguise, and a bucket with 1 error in 2 calls is weak evidence, so error
and branch rates are judged on their counts: a bucket is flagged when a binomial test against
the baseline rate (estimated from the unflagged buckets, refitted until stable) is
significant after a Bonferroni correction over every bucket tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from llmpulse.detection import detect_anomalies, detect_change_points

__all__ = [
    "Flags",
    "Incident",
    "binomial_p",
    "continuous_flags",
    "count_flags",
    "merge_flags",
    "stands_out",
]

_REFITS = 8
_WINDOWS = (1, 2, 4, 8, 16, 32)  # buckets pooled by the count scan
_FENCE_IQR = 3.0  # Tukey's "far out" fence: Q3 + 3 IQR
_TRIM = 0.25  # share of highest-rate buckets left out of the first baseline estimate


@dataclass(slots=True)
class Flags:
    """Per bucket: flagged or not, and the strongest evidence that flagged it."""

    flagged: np.ndarray  # bool
    score: np.ndarray  # robust z of an anomaly (NaN where none)
    confidence: np.ndarray  # 1 - p of a change point or a count test (NaN where none)
    baseline_rate: float | None = None  # count series: the rate the buckets were tested against

    @classmethod
    def empty(cls, n: int) -> Flags:
        """No bucket flagged."""
        return cls(np.zeros(n, dtype=bool), np.full(n, np.nan), np.full(n, np.nan))


@dataclass(frozen=True, slots=True)
class Incident:
    """Buckets ``first..last`` (inclusive) of a series, ``flagged`` of them flagged."""

    first: int
    last: int
    flagged: int

    def mask(self, n: int) -> np.ndarray:
        """Boolean mask of the incident's buckets in a series of length ``n``."""
        out = np.zeros(n, dtype=bool)
        out[self.first : self.last + 1] = True
        return out


def _transform_for(values: np.ndarray) -> str:
    """Latency, tokens and cost vary multiplicatively: log, unless some bucket is exactly 0."""
    finite = values[np.isfinite(values)]
    return "log" if finite.size and float(finite.min()) > 0 else "auto"


def continuous_flags(
    values: np.ndarray,
    times: np.ndarray,
    *,
    metric: str,
    threshold: float,
    min_size: int,
) -> Flags:
    """Buckets spiking up (anomalies) or sitting on a level entered by a step up (change points)."""
    n = values.size
    flags = Flags.empty(n)
    finite = np.isfinite(values)
    transform = _transform_for(values)
    for a in detect_anomalies(
        values,
        times,
        metric=metric,
        threshold=threshold,
        direction="up",
        transform=transform,
        min_size=min_size,
    ):
        flags.flagged[a.index] = True
        flags.score[a.index] = np.fmax(flags.score[a.index], a.score)
    changes = detect_change_points(
        values, times, metric=metric, transform=transform, min_size=min_size
    )
    ends = [c.index for c in changes[1:]] + [n] if changes else []
    for change, stop in zip(changes, ends, strict=True):
        if change.direction != "up":
            continue
        seg = np.zeros(n, dtype=bool)
        seg[change.index : stop] = True
        seg &= finite
        flags.flagged |= seg
        flags.confidence[seg] = np.fmax(flags.confidence[seg], change.confidence)
    return flags


def stands_out(inside: np.ndarray, outside: np.ndarray) -> bool:
    """Whether a short spike's level is beyond the far-out fence (Q3 + 3 IQR) of normal buckets.

    The anomaly detector measures spread by the median absolute deviation, which a series of
    mixed workloads fools: when most buckets hold only short calls, the MAD sees one mode and
    every bucket with a few long calls looks like a spike. The interquartile range sees both
    modes. Compared on the log scale when every value is positive (the metrics vary by ratios).
    """
    both = np.concatenate((inside, outside))
    if both.size and float(both.min()) > 0:
        inside, outside = np.log(inside), np.log(outside)
    q1, q3 = np.quantile(outside, [0.25, 0.75])
    return bool(np.median(inside) > q3 + _FENCE_IQR * (q3 - q1))


def binomial_p(
    hits: np.ndarray | int, trials: np.ndarray | int, rate: float, direction: Literal["up", "both"]
) -> np.ndarray:
    """p-value of seeing ``hits`` in ``trials`` at ``rate``: one-sided up, or two-sided."""
    k = np.asarray(hits, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    up = stats.binom.sf(k - 1, n, rate)
    if direction == "up":
        return np.asarray(up)
    down = stats.binom.cdf(k, n, rate)
    return np.asarray(np.minimum(1.0, 2.0 * np.minimum(up, down)))


def pooled_rate(hits: np.ndarray, trials: np.ndarray) -> float:
    """Rate of the pooled counts, shrunk a little so that zero errors is not a rate of exactly 0."""
    return float((hits.sum() + 0.5) / (trials.sum() + 1.0))


def _window_flags(
    hits: np.ndarray, trials: np.ndarray, p0: float, alpha: float, min_delta: float, direction: str
) -> tuple[np.ndarray, np.ndarray]:
    """Buckets inside a significant window of 1, 2, 4, ... buckets, and their best p-value.

    Pooling neighbours gives a few-call-per-bucket series the power one bucket lacks; the
    level is Bonferroni over every window tested. Inside a significant window only buckets
    that are off the baseline themselves are flagged, so an incident does not grow into the
    normal buckets its window straddles.
    """
    n = hits.size
    valid = trials > 0
    rate = np.divide(hits, trials, out=np.zeros(n), where=valid)
    off = (rate - p0) if direction == "up" else np.abs(rate - p0)
    sizes = [w for w in _WINDOWS if w == 1 or w <= int(valid.sum()) // 2]
    level = alpha / sum(n - w + 1 for w in sizes)
    c_hits = np.concatenate(([0.0], np.cumsum(hits)))
    c_trials = np.concatenate(([0.0], np.cumsum(trials)))
    flagged = np.zeros(n, dtype=bool)
    best = np.ones(n)
    for w in sizes:
        k = c_hits[w:] - c_hits[:-w]
        m = c_trials[w:] - c_trials[:-w]
        has = m > 0
        p = np.ones(k.size)
        p[has] = binomial_p(k[has], m[has], p0, direction)  # type: ignore[arg-type]
        w_rate = np.divide(k, m, out=np.zeros(k.size), where=has)
        w_off = (w_rate - p0) if direction == "up" else np.abs(w_rate - p0)
        for i in np.flatnonzero(has & (p < level) & (w_off >= min_delta)):
            inside = slice(int(i), int(i) + w)
            hit = valid[inside] & (off[inside] >= min_delta)
            flagged[inside] |= hit
            best[inside] = np.where(hit, np.minimum(best[inside], p[i]), best[inside])
    return flagged, best


def count_flags(
    hits: np.ndarray,
    trials: np.ndarray,
    *,
    alpha: float,
    min_delta: float,
    direction: Literal["up", "both"],
) -> Flags:
    """Buckets whose counts are significantly off the baseline rate, alone or with neighbours."""
    n = hits.size
    flags = Flags.empty(n)
    valid = trials > 0
    tested = int(valid.sum())
    if tested == 0:
        return flags
    rate = np.divide(hits, trials, out=np.zeros(n), where=valid)
    # Start from the rate of all but the highest-rate quarter of buckets, so a long incident
    # cannot raise the baseline enough to hide itself; the refits then use every normal bucket.
    order = np.argsort(-rate[valid], kind="stable")
    keep = np.flatnonzero(valid)[order[int(np.ceil(_TRIM * tested)) :]]
    p0 = pooled_rate(hits[keep], trials[keep])
    best = np.ones(n)
    for _ in range(_REFITS):
        new, best = _window_flags(hits, trials, p0, alpha, min_delta, direction)
        flags.baseline_rate = p0
        if np.array_equal(new, flags.flagged):
            break
        flags.flagged = new
        outside = valid & ~new
        if not outside.any():
            break
        p0 = pooled_rate(hits[outside], trials[outside])
    flags.confidence = np.where(flags.flagged, 1.0 - best, np.nan)
    return flags


def merge_flags(flags: np.ndarray, *, gap: int, min_flagged: int) -> list[Incident]:
    """Contiguous runs of flagged buckets (up to ``gap`` unflagged ones inside), long enough."""
    idx = np.flatnonzero(flags)
    if idx.size == 0:
        return []
    out = []
    first = prev = int(idx[0])
    count = 1
    for i in (int(x) for x in idx[1:]):
        if i - prev <= gap + 1:
            prev, count = i, count + 1
            continue
        out.append(Incident(first, prev, count))
        first = prev = i
        count = 1
    out.append(Incident(first, prev, count))
    return [inc for inc in out if inc.flagged >= min_flagged]
