"""What the LangChain/LangGraph handler adds to a graph's and a chain's run time.

A 20-node linear LangGraph graph of trivial nodes, and a LangChain chain of 10 trivial
runnables, each run N times plain and N times with llmpulse's handler in
``config={"callbacks": [...]}``, interleaved in rounds in one process so both see the same
machine. Trivial nodes are the worst case: the handler's cost is compared to LangGraph's own
per-node work and nothing else (a real node calls a model and takes milliseconds).

The peer is langchain-core's own ``BaseTracer`` machinery as LangSmith and Langfuse use it:
a ``langchain_core.tracers.base.BaseTracer`` that keeps every run tree and discards it,
measured the same way when ``--peer`` is on (default). Two floors are measured beside it: a
handler whose callbacks do nothing (what LangChain and LangGraph cost merely because a handler
is there), and one that opens and ends a bare llmpulse span per run and records nothing else
(the least any span-per-node recorder costs).

The machine this runs on is shared and its load moves whole seconds of wall time between
rounds, so besides the ratio of the totals the median of the per-round ratios is printed
(each round runs every variant back to back, in an order that alternates).

Spans go to an exporter that discards them on the export thread (the store's cost is not the
caller's). The variants that record spans flush at the end of each round, inside its time: the
export thread's conversion competes with the caller for the interpreter lock, and charged to
the round that caused it, it cannot land in another variant's. Besides wall time, the process
CPU of both threads per round, and the garbage collector's passes per variant, are printed.

Run: python bench/langgraph_overhead.py [--runs 1000] [--rounds 50]
Last line: one JSON object with plain_s, instrumented_s, overhead_ratio (the graph), and the
chain's and the peer's figures beside them.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import statistics
import time
from collections.abc import Callable
from typing import Any, TypedDict

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableLambda
from langchain_core.tracers.base import BaseTracer
from langgraph.graph import END, START, StateGraph

import llmpulse
from llmpulse.sdk.instrumentation.langchain import CallbackHandler


class State(TypedDict):
    n: int


class DiscardingExporter:
    """Counts records and drops them."""

    def __init__(self) -> None:
        self.records = 0

    def export(self, batch: list[Any]) -> None:
        self.records += len(batch)

    def shutdown(self) -> None:
        pass


class NoopHandler(BaseCallbackHandler):
    """A handler whose callbacks do nothing: LangChain's own cost of having a handler."""

    run_inline = True


class BareSpanHandler(BaseCallbackHandler):
    """One llmpulse span per run, with no attributes, state or parent bookkeeping."""

    run_inline = True

    def __init__(self) -> None:
        self.spans: dict[Any, Any] = {}

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: Any, **kwargs: Any) -> None:
        span = llmpulse.span(kwargs.get("name") or "run")
        span.__enter__()
        self.spans[run_id] = span

    def on_chain_end(self, outputs: Any, *, run_id: Any, **kwargs: Any) -> None:
        self.spans.pop(run_id).__exit__(None, None, None)


class DiscardingTracer(BaseTracer):
    """langchain-core's tracer base (what LangSmith's tracer builds on), persisting nothing."""

    def _persist_run(self, run: Any) -> None:
        pass


def build_graph(nodes: int) -> Any:
    """``nodes`` trivial nodes in a line."""
    graph = StateGraph(State)
    names = [f"n{i}" for i in range(nodes)]
    for name in names:
        graph.add_node(name, lambda s: {"n": s["n"] + 1})
    graph.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        graph.add_edge(a, b)
    graph.add_edge(names[-1], END)
    return graph.compile(name="bench")


def build_chain(steps: int) -> Any:
    """``steps`` trivial runnables in a sequence."""
    chain: Any = RunnableLambda(lambda x: x + 1)
    for _ in range(steps - 1):
        chain = chain | RunnableLambda(lambda x: x + 1)
    return chain


class GcClock:
    """Collections of the cyclic garbage collector and the time they took, by variant: what a
    recorder's records cost besides its callbacks (a record waiting in the export queue counts
    toward the collector's next pass as any new object does)."""

    def __init__(self) -> None:
        self.variant = ""
        self.seconds: dict[str, float] = {}
        self.passes: dict[str, list[int]] = {}
        self._start = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            return
        v = self.variant
        self.seconds[v] = self.seconds.get(v, 0.0) + time.perf_counter() - self._start
        self.passes.setdefault(v, [0, 0, 0])[info["generation"]] += 1

    def close(self) -> None:
        gc.callbacks.remove(self._on_gc)


def timed(fn: Callable[[], Any], runs: int, flush: bool, cpu: list[float]) -> float:
    """Wall seconds for ``runs`` calls of ``fn`` (and, with ``flush``, the export of every
    span they recorded, so the export thread's work lands in the round that caused it);
    the process CPU seconds (both threads) appended to ``cpu``."""
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(runs):
        fn()
    if flush:
        llmpulse.flush(60)
    cpu.append(time.process_time() - cpu_start)
    return time.perf_counter() - start


def measure(
    runnable: Any, payload: Any, runs: int, rounds: int, peer: bool, clock: GcClock,
    cpu: dict[str, list[float]],
) -> dict[str, list[float]]:  # fmt: skip
    """Seconds per round for ``runs`` runs of each variant, over interleaved rounds (the
    collector's passes counted by variant on ``clock``, process CPU seconds per round in
    ``cpu``)."""
    handler = CallbackHandler()
    variants: dict[str, Any] = {
        "plain": None,
        "llmpulse": {"callbacks": [handler]},
        "noop": {"callbacks": [NoopHandler()]},
        "span": {"callbacks": [BareSpanHandler()]},
    }
    if peer:
        variants["peer"] = {"callbacks": [DiscardingTracer()]}
    per_round = max(1, runs // rounds)
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants)
    for i in range(rounds):
        for name in order if i % 2 == 0 else reversed(order):
            cfg = variants[name]
            clock.variant = name
            times[name].append(
                timed(
                    lambda cfg=cfg: runnable.invoke(payload, config=cfg),
                    per_round,
                    name in ("llmpulse", "span"),  # the variants that record spans
                    cpu.setdefault(name, []),
                )
            )
    assert handler.open_runs == 0 and handler.errors == 0
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--no-peer", dest="peer", action="store_false")
    args = parser.parse_args()

    exporter = DiscardingExporter()
    llmpulse.init(exporter=exporter, instrument=(), queue_size=1_000_000)
    graph_gc, chain_gc = GcClock(), GcClock()
    graph_cpu: dict[str, list[float]] = {}
    chain_cpu: dict[str, list[float]] = {}
    graph = measure(
        build_graph(args.nodes), {"n": 0}, args.runs, args.rounds, args.peer, graph_gc, graph_cpu
    )
    graph_gc.close()
    chain = measure(
        build_chain(args.steps), 0, args.runs, args.rounds, args.peer, chain_gc, chain_cpu
    )
    chain_gc.close()
    llmpulse.shutdown()
    stats = llmpulse.get_client().stats()

    def ratio(t: dict[str, list[float]], key: str) -> float:
        plain = sum(t["plain"])
        return round(sum(t[key]) / plain, 3) if plain and key in t else 0.0

    def median_ratio(t: dict[str, list[float]], key: str) -> float:
        if key not in t:
            return 0.0
        return round(
            statistics.median(a / b for a, b in zip(t[key], t["plain"], strict=True) if b), 3
        )

    print(
        f"{args.runs} runs each, {args.rounds} interleaved rounds; spans exported: {exporter.records}"
    )
    for label, t in (("graph", graph), ("chain", chain)):
        parts = [f"plain {sum(t['plain']):.3f} s"]
        for key, name in (("llmpulse", "llmpulse"), ("noop", "floor: no-op handler"),
                          ("span", "floor: bare span per run"), ("peer", "peer BaseTracer")):  # fmt: skip
            if key in t:
                parts.append(
                    f"{name} {sum(t[key]):.3f} s ({ratio(t, key):.3f}x, "
                    f"median round {median_ratio(t, key):.3f}x)"
                )
        print(f"{label}: " + "; ".join(parts))
    # What the handler adds per node, in absolute terms, to set against what a real node
    # takes (a model call: hundreds of milliseconds).
    node_runs = max(1, args.rounds * max(1, args.runs // args.rounds) * args.nodes)
    added_us = (sum(graph["llmpulse"]) - sum(graph["plain"])) / node_runs * 1e6
    plain_us = sum(graph["plain"]) / node_runs * 1e6
    print(
        f"graph: llmpulse adds {added_us:.1f} us per node; plain LangGraph takes {plain_us:.1f} us per node"
    )
    for label, clock in (("graph", graph_gc), ("chain", chain_gc)):
        print(
            f"{label}: garbage collector passes (young, middle, full) and time: "
            + "; ".join(
                f"{name} {clock.passes.get(name, [0, 0, 0])} {clock.seconds.get(name, 0.0) * 1e3:.0f} ms"
                for name in ("plain", "llmpulse", "noop", "span", "peer")
                if name in graph
            )
        )
    for label, cpu in (("graph", graph_cpu), ("chain", chain_cpu)):
        print(
            f"{label}: process CPU (both threads), ratio to plain, total / median round: "
            + "; ".join(
                f"{name} {ratio(cpu, name):.3f} / {median_ratio(cpu, name):.3f}"
                for name in ("llmpulse", "noop", "span", "peer")
                if name in cpu
            )
        )
    print(f"dropped: {dict(stats.dropped)}")
    summary = {
        "plain_s": round(sum(graph["plain"]), 4),
        "instrumented_s": round(sum(graph["llmpulse"]), 4),
        "overhead_ratio": ratio(graph, "llmpulse"),
        "overhead_ratio_median_round": median_ratio(graph, "llmpulse"),
        "floor_noop_ratio": ratio(graph, "noop"),
        "floor_noop_ratio_median_round": median_ratio(graph, "noop"),
        "floor_span_ratio": ratio(graph, "span"),
        "floor_span_ratio_median_round": median_ratio(graph, "span"),
        "added_us_per_node": round(added_us, 2),
        "plain_us_per_node": round(plain_us, 2),
        "peer_s": round(sum(graph.get("peer", [0.0])), 4),
        "peer_ratio": ratio(graph, "peer"),
        "chain_plain_s": round(sum(chain["plain"]), 4),
        "chain_instrumented_s": round(sum(chain["llmpulse"]), 4),
        "chain_overhead_ratio": ratio(chain, "llmpulse"),
        "chain_overhead_ratio_median_round": median_ratio(chain, "llmpulse"),
        "chain_floor_noop_ratio": ratio(chain, "noop"),
        "chain_peer_ratio": ratio(chain, "peer"),
        "overhead_ratio_cpu": ratio(graph_cpu, "llmpulse"),
        "overhead_ratio_cpu_median_round": median_ratio(graph_cpu, "llmpulse"),
        "chain_overhead_ratio_cpu": ratio(chain_cpu, "llmpulse"),
        "gc_ms": round(graph_gc.seconds.get("llmpulse", 0.0) * 1e3, 1),
        "gc_plain_ms": round(graph_gc.seconds.get("plain", 0.0) * 1e3, 1),
        "spans_exported": exporter.records,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
