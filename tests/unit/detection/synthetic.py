"""Seeded generator of labelled LLM-telemetry series, and the scoring rules of the shared scorer.

The kinds mirror what llmpulse watches: log-normal latencies (p50, p95), tokens per request,
cost per hour, binomial error and branch rates, benchmark accuracy and tokens/s throughput,
sampled every 5 minutes or every hour, some with a daily cycle, a slow trend or mildly
autocorrelated noise, with 0-2 level changes and 0-4 anomaly bursts of 1-3 points.
Magnitudes are drawn from ranges (not copied from any labelled file) so the defaults are
checked on data they were not tuned on.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "KINDS",
    "Synthetic",
    "make_series",
    "make_suite",
    "score_anomalies",
    "score_change_points",
]

DAY_S = 86_400.0
MARGIN = 5  # a predicted change point within 5 points of a true one finds it


@dataclass(frozen=True)
class _Kind:
    level: tuple[float, float]  # typical level range (original units)
    noise: tuple[float, float]  # log-sd (multiplicative kinds) or trials per point (rates)
    spike: str  # "up" or "down": which way this metric's anomalies go
    rate: bool = False


KINDS: dict[str, _Kind] = {
    "latency_p50_ms": _Kind((500.0, 1500.0), (0.04, 0.12), "up"),
    "latency_p95_ms": _Kind((1500.0, 4000.0), (0.04, 0.13), "up"),
    "tokens_per_request": _Kind((300.0, 1200.0), (0.04, 0.13), "up"),
    "cost_usd_per_hour": _Kind((1.0, 8.0), (0.04, 0.09), "up"),
    "tokens_per_second": _Kind((25.0, 80.0), (0.015, 0.035), "down"),
    "error_rate": _Kind((0.005, 0.04), (300.0, 800.0), "up", rate=True),
    "branch_rate": _Kind((0.1, 0.4), (300.0, 600.0), "up", rate=True),
    "benchmark_accuracy": _Kind((0.6, 0.9), (300.0, 1500.0), "down", rate=True),
}


@dataclass
class Synthetic:
    """One labelled series, in the shape of the shared data set."""

    name: str
    metric: str
    interval_s: float
    timestamps: list[float]
    values: list[float]
    anomalies: list[int] = field(default_factory=list)
    change_points: list[int] = field(default_factory=list)


def _place_changes(rng: np.random.Generator, n: int) -> list[int]:
    """0-2 change points, away from the ends and from each other."""
    count = int(rng.choice([0, 1, 1, 2]))
    for _ in range(100):
        cps = sorted(int(c) for c in rng.integers(15, n - 15, size=count))
        if all(b - a >= 15 for a, b in itertools.pairwise(cps)):
            return cps
    return []


def _place_bursts(rng: np.random.Generator, n: int, cps: list[int]) -> list[list[int]]:
    """0-4 bursts of 1-3 consecutive points, apart from each other and from change points."""
    bursts: list[list[int]] = []
    for _ in range(int(rng.integers(0, 5))):
        size = int(rng.integers(1, 4))
        for _try in range(50):
            start = int(rng.integers(2, n - size - 2))
            pts = list(range(start, start + size))
            far_cp = all(abs(p - c) > 4 for p in pts for c in cps)
            far_b = all(abs(p - q) > 4 for b in bursts for q in b for p in pts)
            if far_cp and far_b:
                bursts.append(pts)
                break
    return bursts


def _steps(
    rng: np.random.Generator, metric: str, level: float, sd: float, count: int
) -> list[float]:
    """Sizes of the level changes in transformed units (log, or arcsine-sqrt for rates)."""
    sizes = []
    if metric == "benchmark_accuracy":
        p = level
        for _ in range(count):
            q = float(np.clip(p + rng.choice([-1.0, 1.0]) * rng.uniform(0.03, 0.25), 0.3, 0.97))
            sizes.append(math.asin(math.sqrt(q)) - math.asin(math.sqrt(p)))
            p = q
    elif KINDS[metric].rate:
        p = level
        for _ in range(count):
            q = min(
                0.6,
                p * math.exp(rng.choice([-1.0, 1.0]) * rng.uniform(math.log(1.4), math.log(3.0))),
            )
            sizes.append(math.asin(math.sqrt(q)) - math.asin(math.sqrt(p)))
            p = q
    else:
        for _ in range(count):
            size = min(math.log(3.0), math.exp(rng.uniform(math.log(2.5), math.log(25.0))) * sd)
            sizes.append(size * rng.choice([-1.0, 1.0]))
    return sizes


def _latent(
    rng: np.random.Generator,
    n: int,
    interval: float,
    t0: float,
    sd: float,
    cps: list[int],
    steps: list[float],
) -> np.ndarray:
    """The level in transformed units around 0: steps, a daily cycle, a trend, AR noise."""
    t = t0 + interval * np.arange(n)
    x = np.zeros(n)
    for c, size in zip(cps, steps, strict=True):
        x[c:] += size
    if rng.random() < 0.4:
        x += (
            rng.uniform(0.5, 3.0)
            * sd
            * np.sin(2 * np.pi * (t % DAY_S) / DAY_S + rng.uniform(0, 2 * np.pi))
        )
    if rng.random() < 0.3:
        x += rng.uniform(-4.0, 4.0) * sd * np.linspace(0.0, 1.0, n)
    phi = rng.uniform(0.0, 0.3)
    e = rng.standard_normal(n)
    for i in range(1, n):
        e[i] = phi * e[i - 1] + math.sqrt(1 - phi * phi) * e[i]
    return x + sd * e


def make_series(rng: np.random.Generator, metric: str, name: str = "") -> Synthetic:
    """One seeded series of the given metric kind."""
    kind = KINDS[metric]
    interval = float(rng.choice([300.0, 3600.0]))
    n = int(rng.choice([96, 144, 200, 288, 400]))
    t0 = 1_700_000_000.0 - 1_700_000_000.0 % interval
    cps = _place_changes(rng, n)
    bursts = _place_bursts(rng, n, cps)
    level = rng.uniform(*kind.level)
    if kind.rate:
        trials = int(rng.uniform(*kind.noise))
        # Binomial counting noise on top of a little extra variation of the true rate.
        sd = 0.25 / math.sqrt(trials)
        x = _latent(rng, n, interval, t0, sd, cps, _steps(rng, metric, level, sd, len(cps)))
        p = np.sin(np.clip(math.asin(math.sqrt(level)) + x, 0.0, np.pi / 2)) ** 2
        values = rng.binomial(trials, p) / trials
    else:
        sd = rng.uniform(*kind.noise)
        values = np.exp(
            math.log(level)
            + _latent(rng, n, interval, t0, sd, cps, _steps(rng, metric, level, sd, len(cps)))
        )
    for burst in bursts:
        for i in burst:
            values[i] = _spike(rng, metric, float(values[i]))
    return Synthetic(
        name=name or metric,
        metric=metric,
        interval_s=interval,
        timestamps=(t0 + interval * np.arange(n)).tolist(),
        values=[float(v) for v in values],
        anomalies=[i for b in bursts for i in b],
        change_points=cps,
    )


def _spike(rng: np.random.Generator, metric: str, value: float) -> float:
    """An anomalous value: far outside the noise, in the direction this metric breaks."""
    if metric == "error_rate":
        return min(1.0, value + rng.uniform(0.05, 0.25))
    if metric == "branch_rate":
        return float(rng.uniform(0.6, 1.0))
    if metric == "benchmark_accuracy":
        return max(0.0, value - rng.uniform(0.15, 0.35))
    if KINDS[metric].spike == "down":
        return value * rng.uniform(0.5, 0.75)
    return value * rng.uniform(2.5, 8.0)


def make_suite(seed: int, count: int) -> list[Synthetic]:
    """`count` series cycling through every kind, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    kinds = list(KINDS)
    return [
        make_series(rng, kinds[i % len(kinds)], f"syn_{kinds[i % len(kinds)]}_{i:03d}")
        for i in range(count)
    ]


def _events(points: list[int]) -> list[list[int]]:
    """Consecutive labelled points form one event."""
    out: list[list[int]] = []
    for p in sorted(points):
        if out and p == out[-1][-1] + 1:
            out[-1].append(p)
        else:
            out.append([p])
    return out


def score_anomalies(
    series: list[Synthetic], predictions: list[list[int]]
) -> tuple[float, float, float]:
    """Pooled event precision, recall and F1, with the shared scorer's rules."""
    tp_ev = n_ev = fp = tp_pred = 0
    for s, pred in zip(series, predictions, strict=True):
        evs = _events(s.anomalies)
        n_ev += len(evs)
        tp_ev += sum(1 for e in evs if any(e[0] - 1 <= p <= e[-1] + 1 for p in pred))
        for p in pred:
            if any(e[0] - 1 <= p <= e[-1] + 1 for e in evs):
                tp_pred += 1
            elif not any(abs(p - c) <= 3 for c in s.change_points):
                fp += 1
    prec = tp_pred / (tp_pred + fp) if tp_pred + fp else 0.0
    rec = tp_ev / n_ev if n_ev else 1.0
    return prec, rec, (0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec))


def score_change_points(series: list[Synthetic], predictions: list[list[int]]) -> float:
    """Mean per-series F1 of change points matched within MARGIN points."""
    scores = []
    for s, pred in zip(series, predictions, strict=True):
        true = s.change_points
        if not true and not pred:
            scores.append(1.0)
            continue
        used: set[int] = set()
        for t in true:
            near = [j for j, p in enumerate(pred) if j not in used and abs(p - t) <= MARGIN]
            if near:
                used.add(min(near, key=lambda j: abs(pred[j] - t)))
        prec = len(used) / len(pred) if pred else 0.0
        rec = len(used) / len(true) if true else 0.0
        scores.append(0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec))
    return float(np.mean(scores))
