"""From a bucket series to incidents: which buckets are abnormal, merged into contiguous windows.

Continuous metrics (p95 latency, tokens and cost per call) go through the detectors of
``llmpulse.detection``: a bucket is flagged when it is part of an event ``detect_anomalies``
finds spiking up (the alarm level calibrated on the series' own tail, never below the
configured threshold), or
when it lies in a segment that ``detect_change_points`` starts with a step up.

Rates are counts in disguise, and a bucket with 1 error in 2 calls is weak evidence, so error
and branch rates are judged on their counts: windows of 1, 2, 4, ... buckets are tested
against the baseline rate with a binomial test, Bonferroni-corrected over the windows that
could be reported; inside significant windows the likeliest abnormal interval is flagged.
The baseline rate starts as the median rate of a few long blocks and is refitted on the
unflagged buckets until the flags stop changing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special, stats

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
_MAX_SCAN = 1500  # longest stretch the quadratic interval scan looks into
_BLOCKS = 8  # blocks whose median rate is the first baseline estimate


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
    kept = np.flatnonzero(finite)
    for a in detect_anomalies(
        values,
        times,
        metric=metric,
        threshold=threshold,
        direction="up",
        transform=transform,
        min_size=min_size,
    ):
        # One anomaly is one event of `length` consecutive usable buckets: flag them all.
        start = int(np.searchsorted(kept, a.index))
        event = kept[start : start + a.length]
        flags.flagged[event] = True
        flags.score[event] = np.fmax(flags.score[event], a.score)
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


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of True in ``mask``."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(
        zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True)
    )


def _likeliest_interval(
    hits: np.ndarray, trials: np.ndarray, p0: float, up: bool
) -> tuple[int, int]:
    """``[a, b)`` whose counts are likeliest to come from a rate other than ``p0`` (Kulldorff's
    scan statistic): normal buckets at the edges of a window only lower it, so they fall off."""
    if hits.size > _MAX_SCAN:
        return 0, hits.size
    ck = np.concatenate(([0.0], np.cumsum(hits)))
    cn = np.concatenate(([0.0], np.cumsum(trials)))
    k = ck[None, :] - ck[:, None]  # [a, b] -> counts of buckets a..b-1
    m = cn[None, :] - cn[:, None]
    ok = np.triu(np.ones_like(m, dtype=bool), 1) & (m > 0)
    r = np.divide(k, m, out=np.full_like(m, p0), where=ok)
    llr = special.xlogy(k, r / p0) + special.xlogy(m - k, (1.0 - r) / (1.0 - p0))
    llr[~ok | ((r > p0) != up)] = -np.inf
    a, b = np.unravel_index(int(np.argmax(llr)), llr.shape)
    return int(a), int(b)


def _window_flags(
    hits: np.ndarray,
    trials: np.ndarray,
    p0: float,
    alpha: float,
    min_delta: float,
    direction: str,
    reported: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Buckets of the likeliest abnormal interval in each run of significant windows.

    Windows of 1, 2, 4, ... buckets are tested, because pooling neighbours gives a series with
    a few calls per bucket the power a single bucket lacks; the level is Bonferroni over every
    window that can be reported (that meets a ``reported`` bucket): the history before the
    checked window only estimates the baseline. Returns the flags and, per flagged bucket, the
    best window p-value.
    """
    n = hits.size
    valid = trials > 0
    sizes = [w for w in _WINDOWS if w == 1 or w <= int(valid.sum()) // 2]
    c_rep = np.concatenate(([0], np.cumsum(reported)))
    level = alpha / max(1, sum(int(np.count_nonzero(c_rep[w:] - c_rep[:-w])) for w in sizes))
    c_hits = np.concatenate(([0.0], np.cumsum(hits)))
    c_trials = np.concatenate(([0.0], np.cumsum(trials)))
    union = np.zeros(n, dtype=bool)
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
            union[i : i + w] = True
            best[i : i + w] = np.minimum(best[i : i + w], p[i])
    flagged = np.zeros(n, dtype=bool)
    for s, e in _runs(union):
        up = direction == "up" or hits[s:e].sum() / max(trials[s:e].sum(), 1.0) > p0
        a, b = _likeliest_interval(hits[s:e], trials[s:e], p0, up)
        flagged[s + a : s + b] = valid[s + a : s + b]
    return flagged, np.where(flagged, best, 1.0)


def count_flags(
    hits: np.ndarray,
    trials: np.ndarray,
    *,
    alpha: float,
    min_delta: float,
    direction: Literal["up", "both"],
    reported: np.ndarray | None = None,
) -> Flags:
    """Buckets whose counts are significantly off the baseline rate, alone or with neighbours.

    ``reported`` marks the buckets of the checked window (default: all); the false-alarm
    budget ``alpha`` is spent on the windows that meet them.
    """
    n = hits.size
    reported = np.ones(n, dtype=bool) if reported is None else reported
    flags = Flags.empty(n)
    valid = trials > 0
    tested = int(valid.sum())
    if tested == 0:
        return flags
    # Start from the median rate of a few long blocks: an incident covering less than half of
    # them cannot raise it (no masking), and sparse errors still count (no swamping, which a
    # start from the quietest buckets would cause: every bucket with an error looks abnormal).
    blocks = np.array_split(np.flatnonzero(valid), min(_BLOCKS, max(1, tested // 4)))
    p0 = float(np.median([pooled_rate(hits[b], trials[b]) for b in blocks]))
    best = np.ones(n)
    for _ in range(_REFITS):
        new, best = _window_flags(hits, trials, p0, alpha, min_delta, direction, reported)
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


def merge_flags(flags: np.ndarray, usable: np.ndarray, *, gap: int, min_run: int) -> list[Incident]:
    """Runs of flagged buckets joined across up to ``gap`` unflagged ones, each kept only when
    it holds ``min_run`` flagged buckets in a row (two lone outliers close together are noise,
    not an incident). Buckets without a value (too few calls) neither break nor join a run."""
    rank = np.cumsum(usable) - 1  # position among the buckets that have a value
    idx = np.flatnonzero(flags & usable)
    if idx.size == 0:
        return []
    groups: list[list[int]] = [[int(idx[0])]]
    for i in (int(x) for x in idx[1:]):
        if rank[i] - rank[groups[-1][-1]] <= gap + 1:
            groups[-1].append(i)
        else:
            groups.append([i])
    out = []
    for g in groups:
        run = best = 1
        for a, b in itertools.pairwise(g):
            run = run + 1 if rank[b] == rank[a] + 1 else 1
            best = max(best, run)
        if best >= min_run:
            out.append(Incident(g[0], g[-1], len(g)))
    return out
