"""The flow view of a workflow: its nodes and routes with their traffic, as data, Mermaid and SVG.

Built from the store's per-minute rollups (never a scan of raw spans): branch spans named
``"<workflow>:<from node>"`` (what ``llmpulse.record_branch`` and the LangGraph recording write)
give the edges and how often each was taken; span rollups by name give each node's calls,
error rate, p95 latency and cost.

>>> from llmpulse.flow import flow_view, to_mermaid
>>> # view = flow_view(store, "support", start, end); print(to_mermaid(view))
>>> # open("support.svg", "w").write(to_svg(view))
"""

from __future__ import annotations

from llmpulse.flow._mermaid import to_mermaid
from llmpulse.flow._svg import to_svg
from llmpulse.flow._view import FlowEdge, FlowNode, FlowView, flow_view
from llmpulse.flow._workflows import (
    DEFAULT_SAMPLED_RUNS,
    BranchShares,
    NodeRank,
    RouteSeries,
    WorkflowSummary,
    branch_shares,
    list_workflows,
    node_ranking,
)

__all__ = [
    "DEFAULT_SAMPLED_RUNS",
    "BranchShares",
    "FlowEdge",
    "FlowNode",
    "FlowView",
    "NodeRank",
    "RouteSeries",
    "WorkflowSummary",
    "branch_shares",
    "flow_view",
    "list_workflows",
    "node_ranking",
    "to_mermaid",
    "to_svg",
]
