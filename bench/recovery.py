"""What recovery buys and costs: 2,000 chat calls with 30% injected faults, without and with it.

Both runs use the real openai client (its own retries off) against the local LLM simulator,
recorded by the llmpulse SDK, in the same process one after the other, with the same seeded
faults: 10% 429 (Retry-After 0.2 s), 12% 500, 3% HTML 502 pages, 5% context overflow, on top
of a log-normal latency (median 20 ms). Calls are 8-message conversations sent by 8 threads.

* without  ``client.chat.completions.create`` as is
* with     ``RecoveringClient`` (default policy, fallback gpt-4o → gpt-4o-mini, short backoff)

Latency is measured per call on the caller's side, waits included. The added latency compares
every call with recovery against the calls that succeeded without it (a failed call answers
fast but answers nothing, so it is no baseline); the same percentiles over all calls of both
runs are printed too.

Run: python bench/recovery.py [--calls 2000] [--threads 8]
Last line: one JSON object (success_rate_with, success_rate_without, added_latency_ms_p50, ...).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai

import llmpulse
from llmpulse.recovery import RecoveringClient, RecoveryPolicy, RetryPolicy
from llmpulse.simulator import Faults, LLMSimulator, SimulatorConfig
from llmpulse.testing import InMemoryExporter

FAULTS = Faults(
    latency_median_ms=20.0, latency_sigma=0.4,
    rate_limit_rate=0.10, retry_after_s=0.2,
    error_rate=0.12, html_error_rate=0.03, context_error_rate=0.05,
)  # fmt: skip
POLICY = RecoveryPolicy(
    fallback_models=("gpt-4o-mini",),
    server_error=RetryPolicy(max_retries=3, base_delay_s=0.05, max_delay_s=1.0),
    connection=RetryPolicy(max_retries=3, base_delay_s=0.05, max_delay_s=1.0),
)


def conversation(i: int) -> list[dict[str, str]]:
    """A support chat: system prompt, three earlier exchanges, and the new question."""
    chat = [{"role": "system", "content": "You are a concise support agent for an online shop."}]
    for turn in range(3):
        chat.append(
            {
                "role": "user",
                "content": f"Ticket {i}, question {turn}: my parcel {i * 7 + turn} is late.",
            }
        )
        chat.append(
            {
                "role": "assistant",
                "content": "Sorry about that; let me check the carrier status for you.",
            }
        )
    chat.append(
        {"role": "user", "content": f"Ticket {i}: can you refund the shipping fee instead?"}
    )
    return chat


def one_call(create: Any, i: int) -> tuple[bool, float]:
    started = time.perf_counter()
    try:
        create(model="gpt-4o", messages=conversation(i), max_tokens=64)
        ok = True
    except (openai.APIError, llmpulse.errors.LlmpulseError):
        ok = False
    return ok, (time.perf_counter() - started) * 1000.0


def run(create: Any, calls: int, threads: int) -> tuple[list[tuple[bool, float]], float]:
    """(success, latency ms) of each of ``calls`` calls, and the wall seconds they took."""
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda i: one_call(create, i), range(calls)))
    return results, time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def metric_totals(exporter: InMemoryExporter) -> dict[str, float]:
    out: Counter[str] = Counter()
    for p in exporter.points:
        if p.name.startswith("llmpulse_recovery"):
            key = p.name.removeprefix("llmpulse_recovery_")
            if "reason" in p.labels:
                key += f"{{{p.labels['reason']}}}"
            out[key] += p.value
    return dict(sorted(out.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    exporter = InMemoryExporter()
    llmpulse.init(exporter=exporter, instrument=("openai",))
    config = SimulatorConfig(seed=args.seed, faults=FAULTS)
    with (
        LLMSimulator(config) as sim,
        openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as raw,
    ):
        without, without_wall = run(raw.chat.completions.create, args.calls, args.threads)
        faults = Counter(r.fault for r in sim.requests)
        sim.reset()
        recovering = RecoveringClient(raw, POLICY)
        with_, with_wall = run(recovering.chat.completions.create, args.calls, args.threads)
        with_requests = len(sim.requests)
    llmpulse.flush(10.0)
    llmpulse.shutdown()
    report(args, without, without_wall, with_, with_wall, faults, with_requests, exporter)


def report(args: argparse.Namespace, without: list[tuple[bool, float]], without_wall: float,
           with_: list[tuple[bool, float]], with_wall: float, faults: Counter[str | None],
           with_requests: int, exporter: InMemoryExporter) -> None:  # fmt: skip
    injected = sum(n for fault, n in faults.items() if fault) / max(1, sum(faults.values()))
    rows = {
        "without, all calls": [ms for _, ms in without],
        "without, successes": [ms for ok, ms in without if ok],
        "with, all calls": [ms for _, ms in with_],
    }
    rates = {
        "without": sum(ok for ok, _ in without) / len(without),
        "with": sum(ok for ok, _ in with_) / len(with_),
    }
    print(
        f"{args.calls} calls per run, {args.threads} threads; injected fault share {injected:.1%}"
    )
    print(f"success without recovery {rates['without']:.2%} ({without_wall:.1f} s), "
          f"with recovery {rates['with']:.2%} ({with_wall:.1f} s, {with_requests} requests)")  # fmt: skip
    print(f"{'latency ms':20} {'p50':>8} {'p95':>8} {'p99':>8} {'mean':>8}")
    for name, ms in rows.items():
        print(
            f"{name:20} {pct(ms, 0.5):8.1f} {pct(ms, 0.95):8.1f} {pct(ms, 0.99):8.1f} {statistics.fmean(ms):8.1f}"
        )
    print("recovery metrics recorded:", json.dumps(metric_totals(exporter)))
    base, healed, every = (
        rows["without, successes"],
        rows["with, all calls"],
        rows["without, all calls"],
    )
    result = {
        "success_rate_with": round(rates["with"], 4),
        "success_rate_without": round(rates["without"], 4),
        "added_latency_ms_p50": round(pct(healed, 0.5) - pct(base, 0.5), 2),
        "added_latency_ms_p95": round(pct(healed, 0.95) - pct(base, 0.95), 2),
        "added_latency_ms_p99": round(pct(healed, 0.99) - pct(base, 0.99), 2),
        "added_latency_ms_mean": round(statistics.fmean(healed) - statistics.fmean(base), 2),
        "added_latency_ms_p50_vs_all_calls": round(pct(healed, 0.5) - pct(every, 0.5), 2),
        "calls": args.calls,
        "injected_fault_share": round(injected, 4),
        "requests_with_recovery": with_requests,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
