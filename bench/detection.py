"""How long detection takes on a 10,000-point series, next to a floor and a peer.

The series is what llmpulse watches: 10,000 five-minute p95 latencies (about 35 days), log-normal
noise, a daily cycle, two level changes and five spike bursts, with timestamps. Each detector
runs ``--repeat`` times after a warm-up; the median is reported.

* floor  a rolling z-score (window 30, k=3) in vectorised numpy: the least an anomaly detector
         can do (it knows nothing of cycles, levels or skew)
* peer   ruptures' PELT (l2 cost, the same penalty) on the first 1,000 points, next to llmpulse's
         change points on the same 1,000 points; PELT on all 10,000 points takes tens of seconds

* stream   ``StreamingDetector.update`` fed the same 10,000 points one at a time
           (``stream_us_per_point``), beside a floor: a plain-Python EWMA z-score update, the
           least a per-point detector does

Run: python bench/detection.py [--repeat 15]
Last line: one JSON object (anomalies_ms_10k, change_points_ms_10k, stream_us_per_point, floor
and peer timings, ratios, and what was found).

Quality, from the repository alone:
    python bench/detection.py --score [PATH]
scores the batch and streaming anomaly detectors and the change-point detector on labelled
series: by default the synthetic sample shipped in bench/data/detection_sample.jsonl (made by
``--make-sample`` from the seeded generator in tests/unit/detection/synthetic.py), or PATH, a
.jsonl file or a directory of .json files in the same shape ({"values", "timestamps",
"anomalies", "change_points", ...}). Anomaly events are matched within 1 point and change points
within 5 (the rules of the shared scorer); change points are also scored by covering (van den
Burg & Williams 2020). Last line: one JSON object.

Change points in hard noise:
    python bench/detection.py --noise
scores the change-point detector (F1 and covering, and how many changes it found against how
many there are) on seeded piecewise-constant series with heavy-tailed (Student t, 3 and 2
degrees of freedom) and autocorrelated (AR(1), phi 0.5 and 0.8) noise, 0-3 changes of 1.5-4
marginal standard deviations, 300-1,000 points: 36 series per noise kind, with covering of
"no change" beside it. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import ruptures
from numpy.lib.stride_tricks import sliding_window_view

from llmpulse.detection import (
    StreamingDetector,
    detect_anomalies,
    detect_anomalies_online,
    detect_change_points,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "bench" / "data" / "detection_sample.jsonl"
SAMPLE_SEED, SAMPLE_COUNT = 4242, 48  # a seed never used for tuning; 6 series of each kind

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


def ewma_floor(values: list[float]) -> None:
    """The per-point floor: an exponentially weighted mean/variance z-score in plain Python."""
    mean, var = values[0], 0.0
    for v in values:
        d = v - mean
        _ = d / math.sqrt(var) if var > 0 else 0.0
        mean += 0.05 * d
        var = 0.95 * (var + 0.05 * d * d)


def stream_us(values: np.ndarray, times: np.ndarray, repeat: int) -> tuple[float, float, int]:
    """Microseconds per point of StreamingDetector.update and of the floor; alarms found."""
    vals, ts = values.tolist(), times.tolist()
    runs, floor_runs, alarms = [], [], 0
    for _ in range(max(1, repeat // 3)):
        det = StreamingDetector()
        start = time.perf_counter()
        for v, t in zip(vals, ts, strict=True):
            det.update(v, t)
        runs.append((time.perf_counter() - start) / len(vals) * 1e6)
        start = time.perf_counter()
        ewma_floor(vals)
        floor_runs.append((time.perf_counter() - start) / len(vals) * 1e6)
    alarms = len(detect_anomalies_online(values, times))
    return statistics.median(runs), statistics.median(floor_runs), alarms


# -- quality from the repository alone ------------------------------------------------------


def _synthetic() -> Any:
    """The seeded generator and scoring rules of the unit tests (tests/unit/detection)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.unit.detection import synthetic

    return synthetic


def make_sample(path: Path) -> None:
    """Write the labelled synthetic sample (one JSON object per line, values to 6 digits)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for s in _synthetic().make_suite(SAMPLE_SEED, SAMPLE_COUNT):
            doc = {
                "name": s.name,
                "metric": s.metric,
                "interval_s": s.interval_s,
                "timestamps": s.timestamps,
                "values": [float(f"{v:.6g}") for v in s.values],
                "anomalies": s.anomalies,
                "change_points": s.change_points,
            }
            out.write(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {SAMPLE_COUNT} series to {path}")


def load_labelled(path: Path) -> list[Any]:
    """Labelled series from a .jsonl file or a directory of .json files."""
    syn = _synthetic()
    if path.is_dir():
        docs = [json.loads(p.read_text()) for p in sorted(path.glob("*.json"))]
    else:
        docs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [
        syn.Synthetic(
            name=d.get("name", str(i)),
            metric=d.get("metric", ""),
            interval_s=float(d.get("interval_s", 0.0)),
            timestamps=d["timestamps"],
            values=d["values"],
            anomalies=d.get("anomalies", []),
            change_points=d.get("change_points", []),
        )
        for i, d in enumerate(docs)
    ]


def covering(true_cps: list[int], pred_cps: list[int], n: int) -> float:
    """Covering of the true segmentation by the predicted one (van den Burg & Williams 2020).

    Each true segment counts by its length times its best Jaccard overlap with a predicted
    segment; 1 is a perfect segmentation, and it punishes over- and under-segmenting alike.
    """

    def segments(cps: list[int]) -> list[tuple[int, int]]:
        cuts = [0, *sorted(c for c in set(cps) if 0 < c < n), n]
        return list(itertools.pairwise(cuts))

    pred = segments(pred_cps)
    total = 0.0
    for a, b in segments(true_cps):
        best = 0.0
        for c, d in pred:
            inter = min(b, d) - max(a, c)
            if inter > 0:
                best = max(best, inter / (max(b, d) - min(a, c)))
        total += (b - a) * best
    return total / n


def score(path: Path) -> None:
    """Print anomaly P/R/F1 (batch and streaming) and change-point F1 and covering."""
    syn = _synthetic()
    series = load_labelled(path)
    out: dict[str, Any] = {"data": str(path), "series": len(series)}
    for name, fn in (("batch", detect_anomalies), ("stream", detect_anomalies_online)):
        start = time.perf_counter()
        preds = [[a.index for a in fn(s.values, s.timestamps)] for s in series]
        p, r, f1 = syn.score_anomalies(series, preds)
        secs = time.perf_counter() - start
        print(f"anomalies {name:6}  P={p:.3f} R={r:.3f} F1={f1:.3f}  ({secs:.1f} s)")
        out.update({f"anomaly_f1_{name}": round(f1, 3), f"anomaly_precision_{name}": round(p, 3),
                    f"anomaly_recall_{name}": round(r, 3)})  # fmt: skip
    cps = [[c.index for c in detect_change_points(s.values, s.timestamps)] for s in series]
    f1_cp = syn.score_change_points(series, cps)
    cover = float(
        np.mean(
            [covering(s.change_points, c, len(s.values)) for s, c in zip(series, cps, strict=True)]
        )
    )
    null = float(np.mean([covering(s.change_points, [], len(s.values)) for s in series]))
    print(f"change points     F1={f1_cp:.3f} covering={cover:.3f} (no change points: {null:.3f})")
    out.update({"change_point_f1": round(f1_cp, 3), "covering": round(cover, 3),
                "covering_null": round(null, 3)})  # fmt: skip
    print(json.dumps(out))


NOISE_DF = (None, 3, 2)  # normal, then Student t with 3 and 2 degrees of freedom
NOISE_PHI = (0.0, 0.5, 0.8)  # AR(1) coefficient


def noise_series(
    rng: np.random.Generator, n: int, df: int | None, phi: float, changes: int
) -> tuple[np.ndarray, list[int]]:
    """A level series with `changes` steps (30+ points apart) under AR(1) noise of t(df) shocks."""
    cps: list[int] = []
    while len(cps) < changes:
        c = int(rng.integers(30, n - 30))
        if all(abs(c - x) > 30 for x in cps):
            cps.append(c)
    cps.sort()
    shocks = rng.standard_normal(n) if df is None else rng.standard_t(df, n)
    noise = np.zeros(n)
    for i in range(n):
        noise[i] = (phi * noise[i - 1] if i else 0.0) + shocks[i]
    shock_var = 1.0 if df is None else (df / (df - 2) if df > 2 else 3.0)  # t(2): a nominal 3
    sd = math.sqrt(shock_var / (1 - phi * phi))
    level = np.zeros(n)
    for c in cps:
        level[c:] += rng.choice([-1.0, 1.0]) * rng.uniform(1.5, 4.0) * sd
    return 100.0 + level + noise, cps


def score_noise() -> None:
    """Change-point F1 and covering per noise kind (see the module docstring)."""
    syn = _synthetic()
    out: dict[str, Any] = {}
    f1s, covers = [], []
    for df, phi in itertools.product(NOISE_DF, NOISE_PHI):
        rng = np.random.default_rng([7, df or 0, int(10 * phi)])
        series, preds = [], []
        for _, n, k in itertools.product(range(3), (300, 600, 1_000), range(4)):
            values, cps = noise_series(rng, n, df, phi, k)
            times = 1_700_000_000.0 + FIVE_MIN * np.arange(n)
            series.append(syn.Synthetic("noise", "", FIVE_MIN, times.tolist(), values.tolist(),
                                        [], cps))  # fmt: skip
            preds.append([c.index for c in detect_change_points(values, times)])
        f1 = syn.score_change_points(series, preds)
        sizes = [len(s.values) for s in series]
        cover = float(np.mean([covering(s.change_points, c, m)
                               for s, c, m in zip(series, preds, sizes, strict=True)]))  # fmt: skip
        null = float(np.mean([covering(s.change_points, [], m)
                              for s, m in zip(series, sizes, strict=True)]))  # fmt: skip
        found, true = sum(map(len, preds)), sum(len(s.change_points) for s in series)
        name = f"{'normal' if df is None else f't{df}'}_ar{phi:g}"
        print(f"{name:10} F1={f1:.3f} covering={cover:.3f} (no change: {null:.3f}) "
              f"found {found} of {true}")  # fmt: skip
        out[name] = {"f1": round(f1, 3), "covering": round(cover, 3), "found": found, "true": true}
        f1s.append(f1)
        covers.append(cover)
    out["mean_f1"], out["mean_covering"] = (
        round(statistics.mean(f1s), 3),
        round(statistics.mean(covers), 3),
    )
    print(f"mean       F1={out['mean_f1']:.3f} covering={out['mean_covering']:.3f}")
    print(json.dumps(out))


def main() -> None:
    """Time every detector, print readable lines, then the JSON summary."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--score", nargs="?", const=str(SAMPLE), metavar="PATH",
                    help="score quality on labelled series instead of timing")  # fmt: skip
    ap.add_argument("--make-sample", action="store_true", help=f"regenerate {SAMPLE.name}")
    ap.add_argument("--noise", action="store_true",
                    help="score change points under heavy-tailed, autocorrelated noise")  # fmt: skip
    args = ap.parse_args()
    if args.noise:
        score_noise()
        return
    if args.make_sample:
        make_sample(SAMPLE)
        return
    if args.score:
        score(Path(args.score))
        return
    values, times = make_series()
    head_v, head_t = values[:1_000], times[:1_000]

    an_ms, anomalies = time_ms(lambda: detect_anomalies(values, times), args.repeat)
    cp_ms, changes = time_ms(lambda: detect_change_points(values, times), args.repeat)
    floor_ms, floor_flags = time_ms(lambda: rolling_zscore(values), args.repeat)
    cp1k_ms, _ = time_ms(lambda: detect_change_points(head_v, head_t), args.repeat)
    pelt1k_ms, _ = time_ms(lambda: pelt(head_v), max(3, args.repeat // 5))
    st_us, st_floor_us, st_alarms = stream_us(values, times, args.repeat)

    found_an = [a.index for a in anomalies]
    found_cp = [c.index for c in changes]
    print(f"series: {N} points, 5-minute p95 latency, daily cycle, changes at {list(CHANGES)}, "
          f"{len(BURSTS)} bursts ({sum(s for _, s in BURSTS)} points)")  # fmt: skip
    print(f"detect_anomalies      10k: {an_ms:7.2f} ms  ({len(found_an)} flagged)")
    print(f"rolling z-score floor 10k: {floor_ms:7.2f} ms  ({len(floor_flags)} flagged)")
    print(f"detect_change_points  10k: {cp_ms:7.2f} ms  (found {found_cp})")
    print(f"detect_change_points   1k: {cp1k_ms:7.2f} ms")
    print(f"ruptures PELT l2       1k: {pelt1k_ms:7.2f} ms")
    print(f"StreamingDetector.update : {st_us:7.2f} us/point  ({st_alarms} alarms)")
    print(f"EWMA z-score floor       : {st_floor_us:7.2f} us/point")
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
        "stream_us_per_point": round(st_us, 2),
        "stream_floor_us_per_point": round(st_floor_us, 2),
        "stream_vs_floor": round(st_us / st_floor_us, 2),
        "stream_alarms_10k": st_alarms,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
