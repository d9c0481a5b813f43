"""How long detection takes on a 10,000-point series, next to a floor and a peer.

The series is what llmpulse watches: 10,000 five-minute p95 latencies (about 35 days), log-normal
noise, a daily cycle, two level changes and five spike bursts, with timestamps. Each detector
runs ``--repeat`` times after a warm-up; the median is reported.

* floor  a rolling z-score (window 30, k=3) in vectorised numpy: the least an anomaly detector
         can do (it knows nothing of cycles, levels or skew)
* peer   ruptures' PELT (l2 cost, the same penalty) on the first 1,000 points, next to llmpulse's
         change points on the same 1,000 points; PELT on all 10,000 points takes tens of seconds

Run: python bench/detection.py [--repeat 15]
Last line: one JSON object (anomalies_ms_10k, change_points_ms_10k, floor and peer timings,
ratios, and what was found).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import ruptures
from numpy.lib.stride_tricks import sliding_window_view

from llmpulse.detection import detect_anomalies, detect_change_points

N = 10_000
FIVE_MIN = 300.0
CHANGES = (3_000, 7_000)
BURSTS = ((500, 1), (2_200, 3), (4_800, 2), (6_100, 1), (9_000, 3))


def make_series(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """10,000 five-minute p95 latencies with a daily cycle, two level changes and five bursts."""
    rng = np.random.default_rng(seed)
    times = 1_700_000_000.0 + FIVE_MIN * np.arange(N)
    log = math.log(2400.0) + 0.06 * rng.standard_normal(N)
    log += 0.08 * np.sin(2 * np.pi * (times % 86_400) / 86_400)
    log[CHANGES[0] :] += 0.25
    log[CHANGES[1] :] -= 0.18
    for start, size in BURSTS:
        log[start : start + size] += math.log(4.0)
    return np.exp(log), times


def rolling_zscore(values: np.ndarray, window: int = 30, k: float = 3.0) -> list[int]:
    """The floor: points more than k standard deviations from the trailing window's mean."""
    win = sliding_window_view(values[:-1], window)
    mean, std = win.mean(axis=1), win.std(axis=1)
    z = np.abs(values[window:] - mean) / np.where(std > 0, std, np.inf)
    return (np.flatnonzero(z > k) + window).tolist()


def pelt(values: np.ndarray) -> list[int]:
    """The peer: ruptures PELT with l2 cost on log values, penalty 3 log(n) noise^2."""
    y = np.log(values)
    noise = float(np.median(np.abs(np.diff(y) - np.median(np.diff(y))))) * 1.4826 / math.sqrt(2)
    algo = ruptures.Pelt(model="l2", min_size=8, jump=1).fit(y)
    return algo.predict(pen=3.0 * math.log(y.size) * noise * noise)[:-1]


def time_ms(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of fn in milliseconds over `repeat` runs after one warm-up, and its result."""
    result = fn()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(runs), result


def main() -> None:
    """Time every detector, print readable lines, then the JSON summary."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    values, times = make_series()
    head_v, head_t = values[:1_000], times[:1_000]

    an_ms, anomalies = time_ms(lambda: detect_anomalies(values, times), args.repeat)
    cp_ms, changes = time_ms(lambda: detect_change_points(values, times), args.repeat)
    floor_ms, floor_flags = time_ms(lambda: rolling_zscore(values), args.repeat)
    cp1k_ms, _ = time_ms(lambda: detect_change_points(head_v, head_t), args.repeat)
    pelt1k_ms, _ = time_ms(lambda: pelt(head_v), max(3, args.repeat // 5))

    found_an = [a.index for a in anomalies]
    found_cp = [c.index for c in changes]
    print(f"series: {N} points, 5-minute p95 latency, daily cycle, changes at {list(CHANGES)}, "
          f"{len(BURSTS)} bursts ({sum(s for _, s in BURSTS)} points)")  # fmt: skip
    print(f"detect_anomalies      10k: {an_ms:7.2f} ms  ({len(found_an)} flagged)")
    print(f"rolling z-score floor 10k: {floor_ms:7.2f} ms  ({len(floor_flags)} flagged)")
    print(f"detect_change_points  10k: {cp_ms:7.2f} ms  (found {found_cp})")
    print(f"detect_change_points   1k: {cp1k_ms:7.2f} ms")
    print(f"ruptures PELT l2       1k: {pelt1k_ms:7.2f} ms")
    summary = {
        "anomalies_ms_10k": round(an_ms, 2),
        "change_points_ms_10k": round(cp_ms, 2),
        "floor_rolling_zscore_ms_10k": round(floor_ms, 2),
        "anomalies_vs_floor": round(an_ms / floor_ms, 2),
        "change_points_ms_1k": round(cp1k_ms, 2),
        "ruptures_pelt_ms_1k": round(pelt1k_ms, 2),
        "change_points_vs_pelt_1k": round(cp1k_ms / pelt1k_ms, 4),
        "anomalies_found_10k": len(found_an),
        "floor_flags_10k": len(floor_flags),
        "change_points_found_10k": found_cp,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
