"""Alert evaluation speed: one engine tick over 1,000 rules with 5M spans stored.

    python bench/alerting.py [--spans 5000000] [--rules 1000] [--ticks 40] [--db PATH]
                             [--detection-share 0.02] [--refresh apart|runner] [--interval 2]

Data: the mixed spans of bench/query.py (llm calls of 4 models x 3 names x 2 prompt versions,
tools, chains, branch decisions) spread evenly over 7 days, plus recovery counters and system
gauges as metric points. Rules: threshold rules over every rollup metric (latency avg/p95/p99,
error rate, tokens, cost, requests, token quota), windows 5m/15m/1h/1d, with and without a
per-model split and model/name/prompt-version filters, plus absence rules and metric-point rules
(retries, breaker open, CPU), and detection rules (``--detection-share`` of them, 2 % by default:
``llmpulse.checks`` spikes, jumps and shifts over 1h/1d windows against 1d/3d baselines);
thresholds spread so that some fire, some are pending and some resolve as "now" moves.
Detection rules with the same window and baseline share one run of the checks, so their cost
follows the distinct (window, baseline) pairs, not their number; as under ``AlertRunner``, the
checks are re-run outside the tick when their findings are 1-5 minutes old: with ``--refresh
apart`` after the tick and timed apart; with ``--refresh runner`` by ``AlertRunner`` itself, as
under ``llmpulse serve``, concurrently with the ticks it drives every ``--interval`` seconds
(the clock still moving 30 s a tick, so a refresh overlaps more ticks than at a real 30 s
interval). Either way each tick is marked by whether it overlapped (or, apart, followed) a
refresh, and the two groups are reported apart. A tick is ``AlertEngine.tick``: take the
evaluator lease, read the rules, evaluate each, apply the lifecycle and queue notifications in
one transaction.

Beside it, the floor: the same tick's distinct rollup questions asked straight to the store
(``Store.span_stats`` once per distinct window/split/filter; and apart, ``check_traffic`` once
per distinct detection window and baseline), i.e. what the rules cost with no engine at all; and the per-rule budget monitoring systems promise (< 10 ms per rule check).
The LAST line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from query import fill, p95  # noqa: E402

from llmpulse.alerting import AlertEngine, AlertRunner, Rule, RuleSet, TickReport, parse_rule  # noqa: E402
from llmpulse.checks import check_traffic  # noqa: E402
from llmpulse.schema import MetricPoint  # noqa: E402
from llmpulse.store import Store  # noqa: E402

DAY = 86400
WEEK = 7 * DAY
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "llama-3.1-70b")
NAMES = ("chat", "summarize", "classify")
WINDOWS = ("5m", "15m", "1h", "1d")
# level metrics -> (low, high) range their warning thresholds are drawn from
LEVELS = {
    "latency_avg_ms": (800, 1600),
    "latency_p95_ms": (1900, 4000),
    "latency_p99_ms": (2800, 6000),
    "error_rate": (0.02, 0.08),
}
# count metrics -> per-minute rate of all llm calls (filled in from the data by ``rates``)
COUNTS = ("tokens", "cost_usd", "requests", "token_quota")


def rates(store: Store, end: float) -> dict[str, float]:
    """Per-minute totals of llm calls over the last day (to scale count thresholds)."""
    [row] = store.span_stats(end - DAY, end, kind="llm")
    minutes = DAY / 60
    return {"tokens": row.total_tokens / minutes, "cost_usd": (row.cost_usd or 0) / minutes,
            "requests": row.calls / minutes, "token_quota": row.total_tokens / minutes}  # fmt: skip


def _threshold_rule(rng: random.Random, rate: dict[str, float]) -> dict[str, object]:
    metric = rng.choice([*LEVELS, *COUNTS])
    window = rng.choice(WINDOWS)
    doc: dict[str, object] = {
        "metric": metric,
        "window": window,
        "for": rng.choice([0, "1m", "5m"]),
    }
    filters: dict[str, object] = {}
    share = 1.0
    if rng.random() < 0.6:
        doc["by"] = ["model"]
        share /= len(MODELS)
    if rng.random() < 0.3:
        filters["model"] = rng.choice(MODELS)
        share = min(share, 1 / len(MODELS))
    if rng.random() < 0.2:
        filters["name"] = rng.choice(NAMES)
        share /= len(NAMES)
    if rng.random() < 0.1:
        filters["prompt_version"] = rng.choice(("v1", "v2"))
        share /= 2
    doc["filters"] = filters
    if metric in LEVELS:
        warning = rng.uniform(*LEVELS[metric])
    else:
        expected = rate[metric] * {"5m": 5, "15m": 15, "1h": 60, "1d": 1440}[window] * share
        warning = expected * rng.uniform(0.9, 4.0)  # a few fire: a busy, not a burning, system
        if metric == "token_quota":
            doc["quota"], warning = warning / 0.8, 0.8
    doc["warning"] = warning
    doc["critical"] = warning * rng.uniform(1.2, 2.0) if metric != "token_quota" else 0.95
    return doc


DETECTION_CHECKS = ("latency_spike", "token_spike", "cost_spike", "error_rate_jump",
                    "branch_shift")  # fmt: skip


def _detection_rule(rng: random.Random) -> dict[str, object]:
    doc: dict[str, object] = {
        "type": "detection", "checks": rng.sample(DETECTION_CHECKS, rng.randint(1, 3)),
        "window": rng.choice(("1h", "1d")), "baseline": rng.choice(("1d", "3d")),
        "min_confidence": rng.choice((0.0, 0.9)),
    }  # fmt: skip
    if rng.random() < 0.3:
        doc["filters"] = {"model": rng.choice(MODELS)}
    return doc


def make_rules(
    n: int, rate: dict[str, float], seed: int = 7, detection_share: float = 0.02
) -> list[Rule]:
    """``n`` varied rules (deterministic for a given data set)."""
    rng = random.Random(seed)
    rules = []
    for i in range(n):
        roll = rng.random()
        if roll < detection_share:
            doc = _detection_rule(rng)
        elif roll < detection_share + 0.05:
            doc = {"type": "absence", "filters": {"model": rng.choice(MODELS)},
                   "window": rng.choice(WINDOWS)}  # fmt: skip
        elif roll < detection_share + 0.10:
            doc = rng.choice([
                {"metric": "retries", "by": ["model"], "warning": rng.randint(5, 400)},
                {"metric": "breaker_open", "by": ["model"], "condition": ">=", "critical": 1},
                {"metric": "point", "point": {"name": "system_cpu_percent"}, "by": ["host"],
                 "warning": rng.randint(50, 95)},
            ])  # fmt: skip
            doc["window"] = rng.choice(WINDOWS)
        else:
            doc = _threshold_rule(rng, rate)
        rules.append(parse_rule({"name": f"r{seed}-{i:04d}", **doc}, source="code"))
    return rules


def points(end: float, n_hosts: int = 4) -> list[MetricPoint]:
    """A day of recovery counters and CPU gauges (one point a minute per series)."""
    out = []
    for m, model in enumerate(MODELS):
        total = 0.0
        for t in range(int(end - DAY), int(end), 60):
            total += (t // 60 + m) % 3 == 0
            out.append(MetricPoint("llmpulse_recovery_retries_total", total, t,
                                   {"model": model, "instance": "h:1"}))  # fmt: skip
        out.append(MetricPoint("llmpulse_circuit_state", 2.0 if m == 1 else 0.0, end - 600,
                               {"model": model}))  # fmt: skip
    for h in range(n_hosts):
        out += [MetricPoint("system_cpu_percent", 40.0 + 50 * ((t // 60 + h) % 7 == 0), t,
                            {"host": f"h{h}"}) for t in range(int(end - DAY), int(end), 60)]  # fmt: skip
    return out


def floor_ms(store: Store, rules: list[Rule], now: float) -> tuple[float, float]:
    """The distinct rollup questions of one tick asked straight to the store, and one run of
    the checks per distinct detection window/baseline (ms each)."""
    asks = {
        (r.window_s, r.by, tuple(sorted(r.filters.items())))
        for r in rules
        if r.type == "absence" or (r.metric is not None and r.point_name is None)
    }
    detections = {(r.window_s, r.baseline_s) for r in rules if r.type == "detection"}
    t0 = time.perf_counter()
    for window, by, filters in asks:
        store.span_stats(now - window, now, group_by=by, **dict(filters))
    t1 = time.perf_counter()
    for window, baseline in detections:
        check_traffic(store, now - window, now, baseline_start=now - window - baseline)
    return (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000


def _split(times: list[float], overlapped: list[bool]) -> dict[str, object]:
    """Ticks that overlapped (or, timed apart, followed) a checks refresh against the others."""
    on = [t for t, o in zip(times, overlapped, strict=True) if o]
    off = [t for t, o in zip(times, overlapped, strict=True) if not o]
    return {
        "n": len(on), "p50": round(statistics.median(on), 1) if on else None,
        "max": round(max(on), 1) if on else None, "others_n": len(off),
        "others_p50": round(statistics.median(off), 1) if off else None,
        "others_p95": round(p95(off), 1) if off else None,
        "others_max": round(max(off), 1) if off else None,
        "slowest": [(round(t, 1), o) for t, o in sorted(zip(times, overlapped,
                                                          strict=True), reverse=True)[:4]],
    }  # fmt: skip


def run_apart(engine: AlertEngine, store: Store, rules: list[Rule], clock: list[float],
              ticks: int) -> tuple[list, list, list, list, list, list]:  # fmt: skip
    """Tick, then refresh the aged checks, then the floors, one after the other."""
    times, floors, checks, refreshes, reports, after = [], [], [], [], [], []
    refreshed = False
    for _ in range(ticks):
        clock[0] += 30.0
        t0 = time.perf_counter()
        report = engine.tick()
        times.append((time.perf_counter() - t0) * 1000)
        after.append(refreshed)  # the tick right after a refresh (a GC, a cold cache?)
        t1 = time.perf_counter()
        refreshed = bool(engine.refresh_checks())
        if refreshed:
            refreshes.append((time.perf_counter() - t1) * 1000)
        rollup_floor, checks_floor = floor_ms(store, rules, clock[0])
        floors.append(rollup_floor)
        checks.append(checks_floor)
        reports.append(report)
    return times, floors, checks, refreshes, reports, after


def run_runner(engine: AlertEngine, store: Store, rules: list[Rule], clock: list[float],
               ticks: int, interval: float) -> tuple[list, list, list, list, list, list]:  # fmt: skip
    """Ticks driven by ``AlertRunner`` every ``interval`` s (the clock moving 30 s a tick) while
    its checks refresh runs as it does under ``serve``; the floors measured before, apart."""
    floors, checks = [], []
    for _ in range(3):
        rollup_floor, checks_floor = floor_ms(store, rules, clock[0])
        floors.append(rollup_floor)
        checks.append(checks_floor)
    spans: list[tuple[float, float]] = []  # refreshes, start and end (perf_counter)
    ticked: list[tuple[float, float, TickReport]] = []
    done = threading.Event()
    tick, refresh = engine.tick, engine.refresh_checks

    def timed_tick(now: float | None = None) -> TickReport:
        if len(ticked) >= ticks:
            done.set()
            return TickReport(clock[0], evaluated=False)
        clock[0] += 30.0
        t0 = time.perf_counter()
        report = tick()
        ticked.append((t0, time.perf_counter(), report))
        return report

    def timed_refresh() -> int:
        t0 = time.perf_counter()
        ran = refresh()
        if ran:
            spans.append((t0, time.perf_counter()))
        return ran

    engine.tick = timed_tick  # type: ignore[method-assign]
    engine.refresh_checks = timed_refresh  # type: ignore[method-assign]
    runner = AlertRunner(engine, None, interval_seconds=interval)
    runner.start()
    try:
        done.wait()
    finally:
        runner.stop(timeout=120)
    times = [(t1 - t0) * 1000 for t0, t1, _ in ticked]
    overlapped = [any(a < t1 and t0 < b for a, b in spans) for t0, t1, _ in ticked]
    refreshes = [(b - a) * 1000 for a, b in spans]
    return times, floors, checks, refreshes, [r for _, _, r in ticked], overlapped


def main() -> None:
    """Fill (or reuse) the store, then time ``--ticks`` engine ticks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=5_000_000)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=40)
    parser.add_argument("--db", help="SQLite file to fill (kept; reused when it has the spans)")
    parser.add_argument("--detection-share", type=float, default=0.02,
                        help="share of the rules that are detection rules")  # fmt: skip
    parser.add_argument("--refresh", choices=("apart", "runner"), default="apart",
                        help="apart: the checks refresh timed after the tick, alone; runner: "
                        "ticks and refreshes run by AlertRunner, concurrently, as under serve")  # fmt: skip
    parser.add_argument("--interval", type=float, default=2.0,
                        help="seconds between ticks with --refresh runner")  # fmt: skip
    args = parser.parse_args()
    path = Path(args.db) if args.db else Path(tempfile.mkdtemp()) / "alerting.db"
    end = 1_800_000_000.0
    store = Store.open(f"sqlite:///{path}")
    have = store.health()["rows"].get("spans", 0)
    if have != args.spans:
        if have:
            sys.exit(f"{path} holds {have} spans, not {args.spans}: pass another --db")
        rate = fill(store, args.spans, end - WEEK, end, seed=1)
        store.write(points=points(end))
        print(f"filled {args.spans:,} spans at {rate:,.0f} spans/s into {path}")
    rules = make_rules(args.rules, rates(store, end), detection_share=args.detection_share)
    n_detection = sum(r.type == "detection" for r in rules)
    clock = [end - 3600.0]
    engine = AlertEngine(store, RuleSet(), rules=rules, clock=lambda: clock[0], owner="bench")
    # As under AlertRunner: ticks serve aged check findings, refreshed outside the tick (timed
    # apart below, or, with --refresh runner, concurrently by the runner itself).
    engine.background_checks = True
    engine.tick()  # warm the page cache, as a running server would be
    if args.refresh == "apart":
        times, floors, checks, refreshes, reports, overlapped = run_apart(
            engine, store, rules, clock, args.ticks
        )
    else:
        times, floors, checks, refreshes, reports, overlapped = run_runner(
            engine, store, rules, clock, args.ticks, args.interval
        )
    for report in reports:
        assert report.evaluated and not report.failed, report.failed
    store.close()
    p50, tick_p95 = statistics.median(times), p95(times)
    floor, checks_ms = statistics.median(floors), statistics.median(checks)
    fired = sum(r.fired for r in reports)
    split = _split(times, overlapped)
    with_refresh = "after" if args.refresh == "apart" else "overlapping"
    print(f"{args.rules} rules over {args.spans:,} spans: tick p50 {p50:.1f} ms, p95 "
          f"{tick_p95:.1f} ms (target <= 200 ms); {tick_p95 / args.rules:.3f} ms per rule "
          f"(peer budget 10 ms); distinct rollup questions asked directly: {floor:.1f} ms "
          f"(engine / floor = {p50 / floor:.2f}x); firing at the end "
          f"{reports[-1].firing}, fired {fired}, resolved {sum(r.resolved for r in reports)}; "
          f"{n_detection} detection rules: their checks once take {checks_ms:.1f} ms, rerun "
          f"outside the tick every 1-5 min ({len(refreshes)} refreshes, "
          f"{max(refreshes, default=0):.1f} ms max, refresh {args.refresh}); slowest tick "
          f"{max(times):.1f} ms; ticks {with_refresh} a refresh: {split['n']}, p50 "
          f"{split['p50']} ms, max {split['max']} ms; the others: {split['others_n']}, p50 "
          f"{split['others_p50']} ms, p95 {split['others_p95']} ms, max {split['others_max']} "
          f"ms; slowest (ms, {with_refresh} a refresh): {split['slowest']}")  # fmt: skip
    print(json.dumps({
        "rules": args.rules, "spans": args.spans, "tick_ms_p50": round(p50, 2),
        "tick_ms_p95": round(tick_p95, 2), "ms_per_rule_p95": round(tick_p95 / args.rules, 4),
        "floor_ms_p50": round(floor, 2), "firing": reports[-1].firing,
        "detection_rules": n_detection, "checks_floor_ms_p50": round(checks_ms, 2),
        "tick_ms_max": round(max(times), 2),
        "checks_refresh_ms_max": round(max(refreshes, default=0.0), 2),
        "refresh": args.refresh, "ticks_with_refresh": split,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
