"""A flow view as a self-contained SVG picture, drawn here (no graphviz binary, no font files).

One box per node with its calls, error rate, p95 latency and cost (red border and error line
when a call failed), one arrow per route labelled with its count and share (its width grows
with the share), routes that loop back drawn as curves on the right. The layout is
``_layout.layered_layout``.

Node names are user data (a LangGraph node can be called anything, markup included), so every
piece of text goes through ``_text``: XML-escaped, characters XML cannot hold replaced, long
names cut (the full name stays in the box's ``<title>`` tooltip). The document has no script,
no external reference and no style sheet, so it is safe as an ``<img src>`` and as a file; the
same view always gives the same bytes (no clock, no random ids).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from llmpulse.flow._layout import layered_layout
from llmpulse.flow._view import END_NODE, FlowEdge, FlowNode, FlowView

__all__ = ["to_svg"]

_NODE_H = 62
_LAYER_GAP = 70  # vertical room between layers, for the route labels
_SLOT_GAP = 40
_MARGIN = 20
_HEADER = 34
_CHAR_W = 6.6  # width of one character at 12 px sans-serif, rounded up
_CAPTION_CHAR_W = 7.8  # and at 14 px bold (the caption)
_MIN_W, _MAX_W = 150, 300
_NAME_CHARS = 40  # longer names are cut in the box (the tooltip keeps the whole name)
_LOOP_STEP = 26  # how far right each loop-back route swings past the widest layer
_LABEL_W = 70  # room right of the loops for the label of the outermost
_FAIL = "#c62828"
_INK = "#1d2330"
_MUTED = "#5a6478"
# XML 1.0 cannot hold most control characters, nor lone surrogates: they become U+FFFD.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def to_svg(view: FlowView) -> str:
    """The view as an SVG document (UTF-8 text)."""
    nodes = {n.name: n for n in sorted(view.nodes, key=lambda n: n.name)}
    layout = layered_layout(
        [n.name for n in view.nodes], [(e.source, e.target, e.count) for e in view.edges]
    )
    lines = {name: _lines(nodes.get(name, FlowNode(name))) for name in nodes}
    width_of = {name: _box_width(text) for name, text in lines.items()}
    row_widths = [
        sum(width_of[n] for n in layer) + _SLOT_GAP * (len(layer) - 1) for layer in layout.layers
    ]
    inner = max([*row_widths, 240, len(_caption(view)) * _CAPTION_CHAR_W])
    boxes: dict[str, tuple[float, float, float]] = {}  # name -> x, y, width
    for i, layer in enumerate(layout.layers):
        x = _MARGIN + (inner - row_widths[i]) / 2
        y = _MARGIN + _HEADER + i * (_NODE_H + _LAYER_GAP)
        for name in layer:
            boxes[name] = (x, y, width_of[name])
            x += width_of[name] + _SLOT_GAP
    loops = sorted(layout.back_edges)
    width = _MARGIN * 2 + inner + (len(loops) + 1) * _LOOP_STEP + _LABEL_W
    height = (
        _MARGIN * 2 + _HEADER + max(1, len(layout.layers)) * (_NODE_H + _LAYER_GAP) - _LAYER_GAP
    )
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12" '
        'role="img">',
        f"<title>{_text(_caption(view))}</title>",
        "<defs>"
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" '
        'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{_MUTED}"/></marker>'
        "</defs>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="{_MARGIN}" y="{_MARGIN + 14}" font-size="14" font-weight="bold" '
        f'fill="{_INK}">{_text(_caption(view))}</text>',
    ]
    right = _MARGIN + inner
    for edge in sorted(view.edges, key=lambda e: (e.source, e.target)):
        if edge.source in boxes and edge.target in boxes:
            back = (edge.source, edge.target) in layout.back_edges
            swing = (
                right + (loops.index((edge.source, edge.target)) + 1) * _LOOP_STEP if back else 0
            )
            out.append(_edge(edge, boxes[edge.source], boxes[edge.target], swing))
    for name, (bx, by, bw) in sorted(boxes.items(), key=lambda item: (item[1][1], item[1][0])):
        out.append(_node(nodes.get(name, FlowNode(name)), lines[name], bx, by, bw))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _caption(view: FlowView) -> str:
    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M")

    return f"{view.workflow} · {iso(view.start)} – {iso(view.end)} UTC"


def _lines(node: FlowNode) -> list[str]:
    """The box's text: name, then calls and errors, then p95 and cost."""
    name = "END" if node.name == END_NODE else _cut(node.name)
    if not node.calls:
        return [name]
    stats = f"{node.calls:,} calls · {node.error_rate * 100:.1f}% errors"
    extra = []
    if node.p95_latency_ms is not None:
        extra.append(f"p95 {node.p95_latency_ms:,.0f} ms")
    if node.cost_usd is not None:
        extra.append(f"${node.cost_usd:.4f}")
    return [name, stats, " · ".join(extra)] if extra else [name, stats]


def _box_width(lines: list[str]) -> float:
    longest = max(len(line) for line in lines)
    return float(min(_MAX_W, max(_MIN_W, longest * _CHAR_W + 20)))


def _node(node: FlowNode, lines: list[str], x: float, y: float, w: float) -> str:
    failing = node.errors > 0
    stroke = _FAIL if failing else "#6ea8fe"
    fill = "#fdecea" if failing else ("#eef4ff" if node.calls else "#f5f6f8")
    parts = [
        f'<g class="node{" failing" if failing else ""}">',
        f"<title>{_text(node.name)}</title>",
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{_NODE_H}" rx="6" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="{2 if failing else 1.2}"/>',
    ]
    cx = x + w / 2
    baseline = y + (_NODE_H - 16 * len(lines)) / 2 + 12
    for i, line in enumerate(lines):
        weight = ' font-weight="bold"' if i == 0 else ""
        color = _FAIL if failing and i == 1 else (_INK if i == 0 else _MUTED)
        parts.append(
            f'<text x="{cx:.1f}" y="{baseline + 16 * i:.1f}" text-anchor="middle" '
            f'fill="{color}"{weight}>{_text(line)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def _edge(
    edge: FlowEdge,
    source: tuple[float, float, float],
    target: tuple[float, float, float],
    swing: float,
) -> str:
    sx, sy, sw = source
    tx, ty, tw = target
    stroke = f"{1 + 4 * edge.share:.1f}"
    label = f"{edge.count:,} ({edge.share * 100:.0f}%)"
    if swing:  # back up (or to itself): out of the source's right side, round, into the target's
        x1, y1 = sx + sw, sy + _NODE_H / 2
        x2, y2 = tx + tw, ty + _NODE_H / 2
        if edge.source == edge.target:  # a loop on one node: out low, back in high, close by
            y1, y2 = sy + _NODE_H * 0.7, sy + _NODE_H * 0.3
            swing = x1 + _LOOP_STEP + 10
        d = f"M{x1:.1f},{y1:.1f} C{swing:.1f},{y1:.1f} {swing:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        lx, ly, anchor = swing + 4, (y1 + y2) / 2 + 4, "start"
    else:
        x1, y1 = sx + sw / 2, sy + _NODE_H
        x2, y2 = tx + tw / 2, ty
        mid = (y1 + y2) / 2
        d = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{mid:.1f} {x2:.1f},{mid:.1f} {x2:.1f},{y2:.1f}"
        lx, ly, anchor = (x1 + x2) / 2 + 4, mid + 4, "start"
    return (
        f'<g class="edge"><title>{_text(edge.source)} → {_text(edge.target)}: {label}</title>'
        f'<path d="{d}" fill="none" stroke="{_MUTED}" stroke-width="{stroke}" '
        f'marker-end="url(#arrow)"/>'
        f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" fill="{_INK}" '
        f'font-size="11" stroke="#ffffff" stroke-width="3" paint-order="stroke">{label}</text></g>'
    )


def _cut(name: str) -> str:
    return name if len(name) <= _NAME_CHARS else name[: _NAME_CHARS - 1] + "…"


def _text(value: str) -> str:
    """``value`` as XML character data or attribute text: escaped, XML-safe characters only."""
    clean = _NOT_XML.sub("\ufffd", value)
    return (
        clean.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )
