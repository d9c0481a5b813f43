"""A flow view as Mermaid ``flowchart`` text (GitHub, GitLab and most wikis draw it)."""

from __future__ import annotations

import re

from llmpulse.flow._view import END_NODE, FlowNode, FlowView

__all__ = ["to_mermaid"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def to_mermaid(view: FlowView) -> str:
    """Mermaid text: one box per node (calls, error rate, p95, cost), one arrow per route
    labelled with its count and share; nodes with errors are drawn red."""
    ids = {
        node.name: f"n{i}_{_UNSAFE.sub('_', node.name)[:40]}" for i, node in enumerate(view.nodes)
    }
    lines = ["flowchart TD"]
    for node in view.nodes:
        lines.append(f'    {ids[node.name]}["{_label(node)}"]')
    for edge in view.edges:
        label = f"{edge.count} ({edge.share * 100:.0f}%)"
        lines.append(f'    {ids[edge.source]} -->|"{label}"| {ids[edge.target]}')
    failing = [ids[n.name] for n in view.nodes if n.errors]
    if failing:
        lines.append("    classDef failing stroke:#d33,stroke-width:2px")
        lines.append(f"    class {','.join(failing)} failing")
    return "\n".join(lines) + "\n"


def _label(node: FlowNode) -> str:
    name = _escape(node.name)
    if node.name == END_NODE:
        return "END"
    if not node.calls:
        return name
    parts = [f"{node.calls} calls", f"{node.error_rate * 100:.1f}% errors"]
    if node.p95_latency_ms is not None:
        parts.append(f"p95 {node.p95_latency_ms:.0f} ms")
    if node.cost_usd is not None:
        parts.append(f"${node.cost_usd:.4f}")
    return f"{name}<br/>{' · '.join(parts)}"


def _escape(text: str) -> str:
    """Mermaid labels are quoted: quotes and angle brackets become entities."""
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )
