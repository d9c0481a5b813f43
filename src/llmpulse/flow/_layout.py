"""A layered layout of a flow graph (Sugiyama-style, small and deterministic).

Workflows are small (tens of nodes) and loop (an agent goes back to its model node), so the
layout is the classic recipe cut to what such graphs need, with no dependency:

1. break cycles: a depth-first walk from the entry nodes (those nothing routes to, else the
   busiest) marks the edges that go back to a node still on the walk's stack;
2. layers: the longest path from an entry over the remaining (acyclic) edges;
3. order within a layer: the mean position of a node's predecessors (two sweeps down, one up),
   ties by name, so the same view always gives the same picture.

Positions are in abstract units (layer, slot); the SVG writer turns them into pixels.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

__all__ = ["Layout", "layered_layout"]


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each node goes: ``layers`` top to bottom, each a left-to-right list of names;
    ``back_edges`` are the (source, target) pairs that loop back up."""

    layers: list[list[str]]
    back_edges: frozenset[tuple[str, str]]

    def position(self) -> dict[str, tuple[int, int]]:
        """Each node's (layer, slot)."""
        return {n: (i, j) for i, layer in enumerate(self.layers) for j, n in enumerate(layer)}


def layered_layout(nodes: list[str], edges: list[tuple[str, str, int]]) -> Layout:
    """Lay out ``nodes`` joined by ``edges`` (source, target, weight) in layers."""
    names = sorted(set(nodes) | {s for s, _, _ in edges} | {t for _, t, _ in edges})
    succ: dict[str, list[str]] = defaultdict(list)
    inbound: dict[str, int] = defaultdict(int)
    outflow: dict[str, int] = defaultdict(int)
    for s, t, w in sorted(edges):
        if s != t:
            succ[s].append(t)
            inbound[t] += 1
        outflow[s] += w
    back = _back_edges(names, succ, inbound, outflow)
    layer = _longest_path(names, succ, back)
    rows: dict[int, list[str]] = defaultdict(list)
    for name in names:
        rows[layer[name]].append(name)
    layers = [rows[i] for i in range(max(rows) + 1)] if rows else []
    forward = [(s, t) for s, t, _ in edges if s != t and (s, t) not in back]
    _order(layers, forward)
    loops = {(s, t) for s, t, _ in edges if s == t}
    return Layout([layer for layer in layers if layer], frozenset(back | loops))


def _back_edges(
    names: list[str],
    succ: dict[str, list[str]],
    inbound: dict[str, int],
    outflow: dict[str, int],
) -> set[tuple[str, str]]:
    entries = [n for n in names if not inbound[n]]
    # A graph that is all cycle has no entry: start from the busiest node.
    rest = sorted(names, key=lambda n: (-outflow[n], n))
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for root in entries + rest:
        if root in state:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(succ[child])))
    return back


def _longest_path(
    names: list[str], succ: dict[str, list[str]], back: set[tuple[str, str]]
) -> dict[str, int]:
    indegree = {n: 0 for n in names}
    for s in names:
        for t in succ[s]:
            if (s, t) not in back:
                indegree[t] += 1
    layer = dict.fromkeys(names, 0)
    ready = [n for n in names if not indegree[n]]
    while ready:
        node = ready.pop(0)
        for t in succ[node]:
            if (node, t) in back:
                continue
            layer[t] = max(layer[t], layer[node] + 1)
            indegree[t] -= 1
            if not indegree[t]:
                ready.append(t)
    return layer


def _order(layers: list[list[str]], forward: list[tuple[str, str]]) -> None:
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    for s, t in forward:
        preds[t].append(s)
        succs[s].append(t)

    def sweep(rows: list[list[str]], neighbours: dict[str, list[str]]) -> None:
        for i in range(1, len(rows)):
            slot = {n: j for j, n in enumerate(rows[i - 1])}

            def key(name: str, slot: dict[str, int] = slot) -> tuple[float, str]:
                near = [slot[p] for p in neighbours[name] if p in slot]
                return (sum(near) / len(near) if near else float("inf"), name)

            rows[i].sort(key=key)

    for _ in range(2):
        sweep(layers, preds)
        reversed_layers = layers[::-1]
        sweep(reversed_layers, succs)
    sweep(layers, preds)
