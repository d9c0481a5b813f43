"""How long the application thread spends per recorded LLM call, next to its peers.

Four ways to record the same call (model, input/output tokens, latency), each timed call by
call with ``perf_counter_ns`` in the same process, interleaved round by round so they share
the machine's noise:

* floor       a Python function appending the same fields to a ``collections.deque``
* llmpulse    ``llmpulse.record_llm_call`` with its export thread draining (as in reality)
* otel        an OpenTelemetry SDK span with ``BatchSpanProcessor`` (exporter discards)
* prometheus  ``prometheus_client`` histogram + token counters

Between rounds the loop sleeps briefly (an application does other work between LLM calls),
which gives every background thread the chance to drain, as it would in production.

Run: python bench/sdk_overhead.py [--rounds 200] [--per-round 1000]
Last line: one JSON object (llmpulse_p50_us, llmpulse_p99_us, floor_p50_us, otel_p50_us,
prometheus_p50_us, plus ratios).
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from collections.abc import Callable
from time import perf_counter_ns

import llmpulse

MODEL, IN_TOK, OUT_TOK, LAT_MS = "gpt-4o-mini", 812, 154, 640.0


class CountingExporter:
    """Discards batches after counting them (the store's cost is not the caller's)."""

    def __init__(self) -> None:
        self.records = 0

    def export(self, batch: list) -> None:
        self.records += len(batch)

    def shutdown(self) -> None:
        pass


def make_floor() -> tuple[Callable[..., None], Callable[[], None]]:
    """The floor: a function with the same call shape that only appends to a deque."""
    ring: collections.deque = collections.deque()

    def floor_record(model, *, input_tokens=None, output_tokens=None, latency_ms=None):  # noqa: ANN001, ANN202
        ring.append((model, input_tokens, output_tokens, latency_ms))

    def trim() -> None:
        if len(ring) > 100_000:
            ring.clear()

    return floor_record, trim


def make_otel():  # noqa: ANN201
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class NullSpanExporter(SpanExporter):
        def export(self, spans):  # noqa: ANN001, ANN202
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NullSpanExporter()))
    return provider, provider.get_tracer("bench")


def make_prometheus():  # noqa: ANN201
    from prometheus_client import CollectorRegistry, Counter, Histogram

    registry = CollectorRegistry()
    latency = Histogram("llm_latency_seconds", "LLM call latency", ["model"], registry=registry)
    tokens = Counter("llm_tokens", "LLM tokens", ["model", "type"], registry=registry)
    return latency, tokens


def timed(fn: Callable[[], None], n: int, out: list[int]) -> None:
    for _ in range(n):
        t0 = perf_counter_ns()
        fn()
        out.append(perf_counter_ns() - t0)


def pct(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--per-round", type=int, default=1000)
    parser.add_argument("--pause-ms", type=float, default=2.0, help="sleep between rounds")
    args = parser.parse_args()

    exporter = CountingExporter()
    client = llmpulse.init(exporter=exporter, instrument=(), queue_size=100_000)
    floor_record, floor_trim = make_floor()
    provider, tracer = make_otel()
    latency, tokens = make_prometheus()
    record = llmpulse.record_llm_call
    attrs = {"gen_ai.request.model": MODEL, "gen_ai.usage.input_tokens": IN_TOK,
             "gen_ai.usage.output_tokens": OUT_TOK, "llm.latency_ms": LAT_MS}  # fmt: skip

    def do_floor() -> None:
        floor_record(MODEL, input_tokens=IN_TOK, output_tokens=OUT_TOK, latency_ms=LAT_MS)

    def do_llmpulse() -> None:
        record(MODEL, input_tokens=IN_TOK, output_tokens=OUT_TOK, latency_ms=LAT_MS)

    def do_otel() -> None:
        tracer.start_span("chat gpt-4o-mini", attributes=attrs).end()

    def do_prometheus() -> None:
        latency.labels(MODEL).observe(LAT_MS / 1000.0)
        tokens.labels(MODEL, "input").inc(IN_TOK)
        tokens.labels(MODEL, "output").inc(OUT_TOK)

    methods = {
        "floor": do_floor,
        "llmpulse": do_llmpulse,
        "otel": do_otel,
        "prometheus": do_prometheus,
    }
    samples: dict[str, list[int]] = {name: [] for name in methods}
    for fn in methods.values():  # warm-up (specialisation, lazy imports, threads started)
        timed(fn, 2000, [])
    client.flush(30)
    for _ in range(args.rounds):
        for name, fn in methods.items():
            timed(fn, args.per_round, samples[name])
        floor_trim()
        time.sleep(args.pause_ms / 1000.0)
    flushed = client.flush(60)
    stats = client.stats()
    provider.shutdown()

    n = args.rounds * args.per_round
    print(f"{n} timed calls per method, {args.rounds} rounds of {args.per_round}, "
          f"{args.pause_ms} ms pause between rounds")  # fmt: skip
    print(f"{'method':<12}{'p50 µs':>10}{'p99 µs':>10}{'mean µs':>10}")
    result: dict[str, float] = {}
    for name, values in samples.items():
        p50, p99 = pct(values, 0.50), pct(values, 0.99)
        print(f"{name:<12}{p50:>10.3f}{p99:>10.3f}{sum(values) / len(values) / 1000:>10.3f}")
        result[f"{name}_p50_us"] = round(p50, 3)
        result[f"{name}_p99_us"] = round(p99, 3)
    ratio_floor = result["llmpulse_p50_us"] / result["floor_p50_us"]
    ratio_otel = result["llmpulse_p50_us"] / result["otel_p50_us"]
    print(f"llmpulse p50 = {ratio_floor:.2f}x the floor (target <= 3), "
          f"{ratio_otel:.3f}x an OTel span (target <= 0.2)")  # fmt: skip
    print(f"llmpulse export thread: flushed={flushed} recorded={stats.recorded} "
          f"exported={stats.exported} dropped={stats.dropped_total} {stats.dropped}")  # fmt: skip
    llmpulse.shutdown(5)
    summary = {
        "llmpulse_p50_us": result["llmpulse_p50_us"],
        "llmpulse_p99_us": result["llmpulse_p99_us"],
        "floor_p50_us": result["floor_p50_us"],
        "otel_p50_us": result["otel_p50_us"],
        "prometheus_p50_us": result["prometheus_p50_us"],
        "floor_p99_us": result["floor_p99_us"],
        "otel_p99_us": result["otel_p99_us"],
        "prometheus_p99_us": result["prometheus_p99_us"],
        "llmpulse_vs_floor": round(ratio_floor, 3),
        "llmpulse_vs_otel": round(ratio_otel, 4),
        "llmpulse_dropped": stats.dropped_total,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
