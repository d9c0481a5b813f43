"""Query speed: the 24 h overview (per model: calls, errors, p95 latency, tokens, cost) at 1M and
5M stored spans, read from rollups, so its cost does not grow with the number of spans.

    python bench/query.py [--small 1000000] [--large 5000000] [--repeat 60] [--db PATH]

Data: mixed spans (llm calls of 4 models x 3 names x 2 prompt versions, tools, chains, branch
decisions) spread evenly over 7 days, written through ``Store.write`` in large batches (the
same rows and rollups ingest produces). The overview is asked ``--repeat`` times with "now" at
different seconds of the last hour, so the window's ragged minute edges vary. The LAST line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import mixed_spans  # noqa: E402

from llmpulse.store import Store  # noqa: E402

DAY = 86400
WEEK = 7 * DAY
BATCH = 20_000


def fill(store: Store, n: int, start: float, end: float, seed: int) -> float:
    """Write ``n`` spans over ``[start, end)``; returns spans/s."""
    t0 = time.perf_counter()
    spans = mixed_spans(n, start, end, seed=seed, content=False)
    while chunk := list(itertools.islice(spans, BATCH)):
        result = store.write(spans=chunk)
        assert result.rejected == 0, result.reasons
    return n / (time.perf_counter() - t0)


def overview_ms(store: Store, end: float, repeat: int) -> list[float]:
    """Latencies (ms) of the 24 h per-model overview, "now" moving through the last hour."""
    times = []
    for i in range(repeat):
        now = end - 3600 + (i * 61.7) % 3600  # ragged edges, never the same window twice
        t0 = time.perf_counter()
        rows = store.span_stats(now - DAY, now, group_by=("model",))
        times.append((time.perf_counter() - t0) * 1000)
        assert rows and all(r.p95_latency_ms is not None for r in rows)
    return times


def week_chart_ms(store: Store, end: float, repeat: int) -> list[float]:
    """Latencies (ms) of a 7 day hourly series per model (a dashboard chart)."""
    times = []
    for i in range(repeat):
        now = end - (i * 61.7) % 3600
        t0 = time.perf_counter()
        store.span_series(now - WEEK, now, 3600, group_by=("model",))
        times.append((time.perf_counter() - t0) * 1000)
    return times


def p95(values: list[float]) -> float:
    """95th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(store: Store, end: float, repeat: int, label: str) -> dict[str, float]:
    """Print and return the overview and chart timings at the store's current size."""
    overview_ms(store, end, 3)  # warm the page cache as a running dashboard would
    ov = overview_ms(store, end, repeat)
    ch = week_chart_ms(store, end, max(5, repeat // 6))
    rows = store.health()["rows"]
    print(f"{label}: {rows['spans']:,} spans, {rows['rollups']:,} rollup rows")
    print(
        f"  24 h overview per model   p50 {statistics.median(ov):7.2f} ms   p95 {p95(ov):7.2f} ms"
    )
    print(
        f"  7 d hourly chart per model p50 {statistics.median(ch):7.2f} ms   p95 {p95(ch):7.2f} ms"
    )
    return {"p95": p95(ov), "p50": statistics.median(ov), "chart_p95": p95(ch)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument("--large", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--db", help="SQLite file to use (default: a temp file, deleted after)")
    args = parser.parse_args()
    end = float(int(time.time()) // 3600 * 3600 - 1234.5)  # "now": not on a minute boundary
    start = end - WEEK
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or f"{tmp}/query.db"
        with Store.open(f"sqlite:///{path}") as store:
            rate = fill(store, args.small, start, end, seed=1)
            print(f"wrote {args.small:,} spans over 7 days at {rate:,.0f} spans/s")
            small = measure(store, end, args.repeat, "1M")
            rate = fill(store, args.large - args.small, start, end, seed=2)
            print(f"wrote {args.large - args.small:,} more spans at {rate:,.0f} spans/s")
            large = measure(store, end, args.repeat, "5M")
            out["sqlite_bytes"] = store.health()["size_bytes"]
    out.update(
        p95_ms_1m=round(small["p95"], 3),
        p95_ms_5m=round(large["p95"], 3),
        p50_ms_1m=round(small["p50"], 3),
        p50_ms_5m=round(large["p50"], 3),
        ratio_5m_vs_1m=round(large["p95"] / small["p95"], 3),
        chart_7d_p95_ms_1m=round(small["chart_p95"], 3),
        chart_7d_p95_ms_5m=round(large["chart_p95"], 3),
    )
    print(f"5M vs 1M p95: {out['ratio_5m_vs_1m']:.2f}x (target <= 1.5x); target p95 <= 50 ms")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
