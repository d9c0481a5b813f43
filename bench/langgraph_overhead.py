"""What the LangChain/LangGraph handler adds to a graph's and a chain's run time.

A 20-node linear LangGraph graph of trivial nodes, and a LangChain chain of 10 trivial
runnables, each run N times plain and N times with llmpulse's handler in
``config={"callbacks": [...]}``, interleaved in rounds in one process so both see the same
machine. Trivial nodes are the worst case: the handler's cost is compared to LangGraph's own
per-node work and nothing else (a real node calls a model and takes milliseconds).

The peer is langchain-core's own ``BaseTracer`` machinery as LangSmith and Langfuse use it:
a ``langchain_core.tracers.base.BaseTracer`` that keeps every run tree and discards it,
measured the same way when ``--peer`` is on (default).

Spans go to an exporter that discards them on the export thread (the store's cost is not the
caller's).

Run: python bench/langgraph_overhead.py [--runs 1000] [--rounds 10]
Last line: one JSON object with plain_s, instrumented_s, overhead_ratio (the graph), and the
chain's and the peer's figures beside them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable
from typing import Any, TypedDict

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


def timed(fn: Callable[[], Any], runs: int) -> float:
    start = time.perf_counter()
    for _ in range(runs):
        fn()
    return time.perf_counter() - start


def measure(runnable: Any, payload: Any, runs: int, rounds: int, peer: bool) -> dict[str, float]:
    """Seconds for ``runs`` runs plain, with llmpulse, and with the peer, over interleaved rounds."""
    totals = {"plain": 0.0, "llmpulse": 0.0, "peer": 0.0}
    handler = CallbackHandler()
    per_round = max(1, runs // rounds)
    cfg: Any = {"callbacks": [handler]}
    cfg_peer: Any = {"callbacks": [DiscardingTracer()]}
    for _ in range(rounds):
        totals["plain"] += timed(lambda: runnable.invoke(payload), per_round)
        totals["llmpulse"] += timed(lambda: runnable.invoke(payload, config=cfg), per_round)
        if peer:
            totals["peer"] += timed(lambda: runnable.invoke(payload, config=cfg_peer), per_round)
    assert handler.open_runs == 0 and handler.errors == 0
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--no-peer", dest="peer", action="store_false")
    args = parser.parse_args()

    exporter = DiscardingExporter()
    llmpulse.init(exporter=exporter, instrument=(), queue_size=1_000_000)
    graph = measure(build_graph(args.nodes), {"n": 0}, args.runs, args.rounds, args.peer)
    chain = measure(build_chain(args.steps), 0, args.runs, args.rounds, args.peer)
    llmpulse.shutdown()
    stats = llmpulse.get_client().stats()

    def ratio(t: dict[str, float], key: str) -> float:
        return round(t[key] / t["plain"], 3) if t["plain"] else 0.0

    print(
        f"{args.runs} runs each, {args.rounds} interleaved rounds; spans exported: {exporter.records}"
    )
    for label, t in (("graph", graph), ("chain", chain)):
        print(
            f"{label}: plain {t['plain']:.3f} s, llmpulse {t['llmpulse']:.3f} s "
            f"({ratio(t, 'llmpulse'):.3f}x), peer BaseTracer {t['peer']:.3f} s ({ratio(t, 'peer'):.3f}x)"
        )
    print(f"dropped: {dict(stats.dropped)}")
    summary = {
        "plain_s": round(graph["plain"], 4),
        "instrumented_s": round(graph["llmpulse"], 4),
        "overhead_ratio": ratio(graph, "llmpulse"),
        "peer_s": round(graph["peer"], 4),
        "peer_ratio": ratio(graph, "peer"),
        "chain_plain_s": round(chain["plain"], 4),
        "chain_instrumented_s": round(chain["llmpulse"], 4),
        "chain_overhead_ratio": ratio(chain, "llmpulse"),
        "chain_peer_ratio": ratio(chain, "peer"),
        "spans_exported": exporter.records,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
