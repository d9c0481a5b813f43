"""Soak: 200,000 llm calls with 30 KB prompts; memory must level off after warm-up.

Each call carries its own 30 KB prompt (a fresh string) and a 2 KB response. The SDK cuts text
to ``max_content_chars`` before queueing it and bounds the queue by count and by text bytes, so
resident memory should stop growing once the queue and the interpreter's pools are warm.
Records go to a counting exporter by default (the SDK's own memory is what is soaked; every
record is still fully converted into a Span); ``--database-url`` soaks the real store instead
(mind the disk: each span keeps up to max_content_chars of prompt).

Then the stalled phase: the exporter stops answering, and for every kind of text a record can
carry (prompt, response, chat messages, attribute, error message, session id, span attribute,
span event, exception message, metric label) ``--stalled-calls`` records each carry a fresh
1 MiB value. Every text is cut at its cap and counts against the queue's byte budget
(``--budget-mb``, passed as ``max_queue_bytes``), so resident memory may not grow by more than
the budget for any field: ``rss_growth_mb`` is the largest growth seen, ``budget_mb`` the bound.

Run: python bench/soak.py [--spans 200000] [--database-url sqlite:///soak.db]
Last line: JSON with rss_mb_start, rss_mb_end, rss_growth_after_warmup_mb, rss_growth_mb,
budget_mb (and rss_growth_mb_by_field).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

import llmpulse

PROMPT_CHARS = 30_000
RESPONSE_CHARS = 2_000


def rss_mb() -> float:
    """Resident set size of this process in MiB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux
        import psutil

        return psutil.Process().memory_info().rss / 2**20


class CountingExporter:
    """Counts spans and the text they carry, then lets them go."""

    def __init__(self) -> None:
        self.spans = 0
        self.text_chars = 0

    def export(self, batch: list) -> None:
        self.spans += len(batch)
        self.text_chars += sum(len(s.input or "") + len(s.output or "") for s in batch)

    def shutdown(self) -> None:
        pass


class StalledExporter:
    """Answers nothing while ``stalled``: each export waits at the gate (a hung database)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()

    def export(self, batch: list) -> None:
        self.gate.wait(600)

    def shutdown(self) -> None:
        self.gate.set()


MIB = 1 << 20


def _fields() -> dict[str, Callable[[str], None]]:
    def llm(**fields: Any) -> None:
        llmpulse.record_llm_call("gpt-4o-mini", input_tokens=10, output_tokens=2, **fields)

    def exception(big: str) -> None:
        try:
            with llmpulse.span("step", kind="tool"):
                raise ValueError(big)
        except ValueError:
            pass

    def event(big: str) -> None:
        with llmpulse.span("step", kind="chain") as s:
            s.add_event("retry", detail=big)

    def span_attribute(big: str) -> None:
        with llmpulse.span("step", kind="chain", blob=big):
            pass

    return {
        "prompt": lambda big: llm(input=big),
        "response": lambda big: llm(output=big),
        "chat_messages": lambda big: llm(input=[{"role": "user", "content": big}] * 2),
        "attribute": lambda big: llm(attributes={"blob": big}),
        "error_message": lambda big: llm(status="error", error_message=big),
        "session_id": lambda big: llm(session_id=big),
        "span_attribute": span_attribute,
        "span_event": event,
        "exception_message": exception,
        "metric_label": lambda big: llmpulse.record_metric("loss", 0.5, labels={"big": big}),
    }


def stalled_phase(calls: int, budget_mb: float) -> dict[str, float]:
    """RSS growth (MiB) per text field while the exporter is stalled; see the module doc."""
    growth: dict[str, float] = {}
    for field, record in _fields().items():
        exporter = StalledExporter()
        client = llmpulse.init(
            exporter=exporter, instrument=(), max_queue_bytes=int(budget_mb * MIB)
        )
        record("warm-up")
        client.flush(30)
        exporter.gate.clear()
        gc.collect()
        before = rss_mb()
        for i in range(calls):
            record(chr(0x41 + i % 26) * MIB)  # a fresh 1 MiB string the caller lets go of
        gc.collect()
        growth[field] = round(rss_mb() - before, 1)
        stats = client.stats()
        held = client._batcher.queued_bytes / MIB  # what the SDK counts against the budget
        print(
            f"stalled {field:<18} rss +{growth[field]:6.1f} MiB (budget {budget_mb:g}, "
            f"counted {held:5.1f})  "
            f"queued {stats.queue_depth:>4}  in flight {stats.in_flight:>4}  "
            f"dropped {stats.dropped_total}"
        )
        exporter.gate.set()
        llmpulse.shutdown(30)
        gc.collect()
    return growth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--every", type=int, default=20_000, help="print RSS every N spans")
    parser.add_argument(
        "--warmup", type=int, default=40_000, help="spans before growth is measured"
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--stalled-calls", type=int, default=300, help="1 MiB records per field, exporter stalled"
    )
    parser.add_argument(
        "--budget-mb", type=float, default=32.0, help="max_queue_bytes of the stalled phase"
    )
    # An application waits on its LLM calls; 100 ms per 1000 calls still means 10,000 calls/s.
    # Smaller pauses overload the export thread: records are then dropped (and counted), and
    # memory stays bounded all the same (by queue_size and max_queue_bytes).
    parser.add_argument(
        "--pause-ms", type=float, default=100.0, help="sleep per 1000 calls (app work)"
    )
    args = parser.parse_args()

    exporter = None if args.database_url else CountingExporter()
    client = llmpulse.init(args.database_url, exporter=exporter, instrument=())
    base = "The quick brown fox jumps over the lazy dog. " * (PROMPT_CHARS // 45 + 50)
    response = "r" * RESPONSE_CHARS
    gc.collect()
    start_rss, warm_rss = rss_mb(), None
    print(f"start: rss {start_rss:.1f} MiB, max_content_chars={client.config.max_content_chars}")
    t0 = time.perf_counter()
    for i in range(1, args.spans + 1):
        offset = i % 997
        prompt = base[offset : offset + PROMPT_CHARS]  # a fresh 30 KB string per call
        llmpulse.record_llm_call(
            "gpt-4o-mini", input_tokens=7500, output_tokens=500, latency_ms=900.0,
            input=prompt, output=response, session_id=f"s{i % 100}",
        )  # fmt: skip
        if i % 1000 == 0:
            time.sleep(args.pause_ms / 1000.0)
        if i % args.every == 0:
            stats = client.stats()
            rss = rss_mb()
            if i == args.warmup:
                warm_rss = rss
            print(
                f"{i:>8} spans  rss {rss:8.1f} MiB  queue {stats.queue_depth:>6}  exported {stats.exported:>8}  dropped {stats.dropped_total}"
            )
    flushed = client.flush(120)
    elapsed = time.perf_counter() - t0
    stats = client.stats()
    end_rss = rss_mb()
    warm_rss = end_rss if warm_rss is None else warm_rss
    print(f"done in {elapsed:.1f} s, flushed={flushed}: recorded {stats.recorded}, exported {stats.exported}, "
          f"dropped {stats.dropped_total} {stats.dropped}")  # fmt: skip
    if exporter is not None:
        print(
            f"average stored text per span: {exporter.text_chars / max(1, exporter.spans):.0f} chars"
        )
    print(
        f"rss: start {start_rss:.1f} MiB, after warm-up ({args.warmup} spans) {warm_rss:.1f} MiB, end {end_rss:.1f} MiB"
    )
    llmpulse.shutdown(10)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"peak rss {peak:.1f} MiB")
    growth = stalled_phase(args.stalled_calls, args.budget_mb)
    worst = max(growth.values())
    print(
        f"stalled exporter: largest growth {worst:.1f} MiB for a budget of {args.budget_mb:g} MiB"
        f" ({'bounded' if worst <= args.budget_mb else 'OVER BUDGET'})"
    )
    print(
        json.dumps(
            {
                "rss_mb_start": round(start_rss, 1),
                "rss_mb_peak": round(peak, 1),
                "rss_mb_warm": round(warm_rss, 1),
                "rss_mb_end": round(end_rss, 1),
                "rss_growth_after_warmup_mb": round(end_rss - warm_rss, 1),
                "spans": args.spans,
                "exported": stats.exported,
                "dropped": stats.dropped_total,
                "seconds": round(elapsed, 1),
                "rss_growth_mb": worst,
                "budget_mb": args.budget_mb,
                "rss_growth_mb_by_field": growth,
            }
        )
    )


if __name__ == "__main__":
    main()
