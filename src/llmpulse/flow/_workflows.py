"""What the workflow pages and API ask besides the flow itself: which workflows ran, how each
decision's routes shared the traffic over time, and which nodes are slowest and dearest.

The first two read the rollups only (branch spans counted per minute or hour); the node ranking
takes calls, errors and p95 from the rollups (every call in the window) and the cost of what
ran under each node (its model and tool calls) from the spans of the latest runs, read run by
run through the trace index (``Store.workflow_node_samples``), so its cost is bounded by the
number of runs sampled, never by the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from llmpulse.flow._view import END_NODE, flow_view

__all__ = [
    "DEFAULT_SAMPLED_RUNS",
    "BranchShares",
    "NodeRank",
    "RouteSeries",
    "WorkflowSummary",
    "branch_shares",
    "list_workflows",
    "node_ranking",
]

DEFAULT_SAMPLED_RUNS = 200


@dataclass(frozen=True, slots=True)
class WorkflowSummary:
    """A workflow that decided something in the window: how often, at how many points."""

    name: str
    decisions: int
    decision_points: int
    nodes: int


@dataclass(frozen=True, slots=True)
class RouteSeries:
    """One route of one decision per bucket: how often it was taken, its share of the decision
    (``None`` in a bucket where the decision was not made)."""

    source: str
    target: str
    counts: list[int]
    shares: list[float | None]


@dataclass(frozen=True, slots=True)
class BranchShares:
    """Every route of a workflow per bucket of ``step`` seconds starting at ``buckets``."""

    workflow: str
    step: int
    buckets: list[int] = field(default_factory=list)
    routes: list[RouteSeries] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NodeRank:
    """A node's traffic (rollups: calls, errors, p95, own cost over the window) and, from the
    sampled runs, the cost of each execution with everything under it."""

    name: str
    calls: int
    errors: int
    error_rate: float
    p95_latency_ms: float | None
    cost_usd: float | None
    sampled_calls: int
    sampled_cost_usd: float | None
    cost_per_call_usd: float | None


def list_workflows(store: Any, start: float, end: float) -> list[WorkflowSummary]:
    """Workflows with a branch decision in ``[start, end)``, busiest first (from rollups)."""
    points: dict[str, set[str]] = {}
    nodes: dict[str, set[str]] = {}
    decisions: dict[str, int] = {}
    for row in store.branch_counts(start, end):
        if not isinstance(row.name, str) or ":" not in row.name:
            continue
        workflow, _, source = row.name.rpartition(":")
        if not workflow:
            continue
        points.setdefault(workflow, set()).add(source)
        found = nodes.setdefault(workflow, set())
        found.add(source)
        if row.branch is not None:
            found.add(str(row.branch))
        decisions[workflow] = decisions.get(workflow, 0) + row.count
    return sorted(
        (WorkflowSummary(w, decisions[w], len(points[w]), len(nodes[w])) for w in decisions),
        key=lambda s: (-s.decisions, s.name),
    )


def branch_shares(store: Any, workflow: str, start: float, end: float, step: int) -> BranchShares:
    """Each route's count and share of its decision per bucket of ``step`` seconds.

    Raises ``ValueError`` when the workflow decided nothing in the window.
    """
    prefix = f"{workflow}:"
    # One read of the window's branch rollups (filtering by name would scan the same range).
    rows = [
        r
        for r in store.branch_counts(start, end, step_seconds=step)
        if isinstance(r.name, str) and r.name.startswith(prefix)
    ]
    if not rows:
        raise ValueError(f"workflow {workflow!r} recorded no branch decision in the window")
    first = int(start // step * step)
    buckets = list(range(first, int(math.ceil(end / step) * step), step))
    index = {b: i for i, b in enumerate(buckets)}
    counts: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        i = index.get(int(row.bucket_start))
        if i is None or row.branch is None:
            continue
        key = (row.name[len(workflow) + 1 :], str(row.branch))
        counts.setdefault(key, [0] * len(buckets))[i] += row.count
    totals: dict[str, list[int]] = {}
    for (source, _), series in counts.items():
        total = totals.setdefault(source, [0] * len(buckets))
        for i, n in enumerate(series):
            total[i] += n
    routes = [
        RouteSeries(
            source, target, series,
            [round(n / t, 4) if t else None for n, t in zip(series, totals[source], strict=True)],
        )
        for (source, target), series in sorted(counts.items())
    ]  # fmt: skip
    return BranchShares(workflow, step, buckets, routes)


def node_ranking(
    store: Any, workflow: str, start: float, end: float, runs: int = DEFAULT_SAMPLED_RUNS
) -> tuple[list[NodeRank], int]:
    """The workflow's nodes with their traffic and sampled cost, and how many runs were read.

    Raises ``ValueError`` when the workflow decided nothing in the window.
    """
    view = flow_view(store, workflow, start, end)
    samples, n_runs = store.workflow_node_samples(workflow, start, end, runs=runs)
    out = []
    for node in view.nodes:
        if node.name == END_NODE:
            continue
        steps = samples.get(node.name, [])
        priced = [s.cost_usd for s in steps if s.cost_usd is not None]
        total = round(sum(priced), 8) if priced else None
        out.append(
            NodeRank(
                node.name, node.calls, node.errors, node.error_rate, node.p95_latency_ms,
                node.cost_usd, len(steps), total,
                round(total / len(steps), 8) if total is not None and steps else None,
            )
        )  # fmt: skip
    return out, n_runs
