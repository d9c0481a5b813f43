"""A workflow's nodes and edges with their traffic over a window, from the store's rollups."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["FlowEdge", "FlowNode", "FlowView", "flow_view"]

# The node LangGraph routes to when a run is over.
END_NODE = "__end__"


@dataclass(slots=True)
class FlowNode:
    """One node: its executions (spans named after it) over the window.

    ``cost_usd`` is what the node's own spans cost (``None`` when none was priced: a node's
    model calls are spans of their own, named after the model client).
    """

    name: str
    calls: int = 0
    errors: int = 0
    error_rate: float = 0.0
    p95_latency_ms: float | None = None
    cost_usd: float | None = None


@dataclass(slots=True)
class FlowEdge:
    """One route of a decision: how often it was taken, and its share of that decision."""

    source: str
    target: str
    count: int
    share: float


@dataclass(slots=True)
class FlowView:
    """A workflow's flow over ``[start, end)``."""

    workflow: str
    start: float
    end: float
    nodes: list[FlowNode] = field(default_factory=list)
    edges: list[FlowEdge] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The view as plain JSON-ready data."""
        return {
            "workflow": self.workflow,
            "start": self.start,
            "end": self.end,
            "nodes": [
                {
                    "name": n.name, "calls": n.calls, "errors": n.errors,
                    "error_rate": n.error_rate, "p95_latency_ms": n.p95_latency_ms,
                    "cost_usd": n.cost_usd,
                }
                for n in self.nodes
            ],
            "edges": [
                {"source": e.source, "target": e.target, "count": e.count, "share": e.share}
                for e in self.edges
            ],
        }  # fmt: skip


def flow_view(store: Any, workflow: str, start: float, end: float) -> FlowView:
    """The flow of ``workflow`` in ``[start, end)`` from ``store`` (its rollups only).

    Raises ``ValueError`` when the workflow recorded no branch decision in the window.
    """
    prefix = f"{workflow}:"
    counts: dict[tuple[str, str], int] = {}
    seen: set[str] = set()  # the workflows that did decide, to name them when this one did not
    for row in store.branch_counts(start, end):
        if not isinstance(row.name, str) or row.branch is None:
            continue
        if row.name.startswith(prefix):
            key = (row.name[len(prefix) :], str(row.branch))
            counts[key] = counts.get(key, 0) + row.count
        elif ":" in row.name:
            seen.add(row.name.split(":", 1)[0])
    if not counts:
        others = (
            f"workflows that did: {', '.join(sorted(seen))}"
            if seen
            else "no workflow did (record_branch() or a LangGraph conditional edge records them)"
        )
        raise ValueError(
            f"workflow {workflow!r} recorded no branch decision in the window; {others}"
        )
    totals: dict[str, int] = {}
    for (source, _), n in counts.items():
        totals[source] = totals.get(source, 0) + n
    edges = [
        FlowEdge(source, target, n, round(n / totals[source], 4))
        for (source, target), n in sorted(counts.items())
    ]
    names = sorted({e.source for e in edges} | {e.target for e in edges})
    stats = {
        s.group.get("name"): s
        for s in store.span_stats(start, end, group_by=("name",), name=names)
        if s.group.get("name") is not None
    }
    nodes = []
    for name in names:
        s = stats.get(name)
        if s is None:
            nodes.append(FlowNode(name))
            continue
        nodes.append(
            FlowNode(name, s.calls, s.errors, round(s.error_rate, 4), s.p95_latency_ms, s.cost_usd)
        )
    return FlowView(workflow, start, end, nodes, edges)
