"""The flow view as SVG: valid XML carrying every number, escaped names, the same bytes each time."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET

from llmpulse.flow import FlowEdge, FlowNode, FlowView, to_svg
from llmpulse.flow._layout import layered_layout

SVG = "{http://www.w3.org/2000/svg}"
XSS = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def support_view() -> FlowView:
    """classify routes 7 runs to answer and 3 to refund; refund failed once; agent loops."""
    nodes = [
        FlowNode("classify", 10, 0, 0.0, 120.0, 0.0123),
        FlowNode("answer", 7, 0, 0.0, 800.0, None),
        FlowNode("refund", 3, 1, 0.3333, 2500.0, 0.5),
        FlowNode("__end__"),
    ]
    edges = [
        FlowEdge("classify", "answer", 7, 0.7),
        FlowEdge("classify", "refund", 3, 0.3),
        FlowEdge("answer", "__end__", 7, 1.0),
        FlowEdge("refund", "__end__", 2, 0.6667),
        FlowEdge("refund", "classify", 1, 0.3333),
    ]
    return FlowView("support", 1_700_000_000.0, 1_700_003_600.0, nodes, edges)


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


class TestSvg:
    def test_parses_as_xml_and_carries_the_numbers(self) -> None:
        """Each node shows calls, error rate, p95 and cost; each route its count and share."""
        root = ET.fromstring(to_svg(support_view()))
        assert root.tag == f"{SVG}svg"
        shown = texts(root)
        assert "10 calls · 0.0% errors" in shown
        assert "p95 120 ms · $0.0123" in shown
        assert "3 calls · 33.3% errors" in shown and "p95 2,500 ms · $0.5000" in shown
        assert "p95 800 ms" in shown  # no cost known: no cost shown
        assert {"7 (70%)", "3 (30%)", "7 (100%)", "2 (67%)", "1 (33%)"} <= set(shown)
        assert "END" in shown
        assert shown[0] == "support · 2023-11-14 22:13 – 2023-11-14 23:13 UTC"

    def test_failing_nodes_are_highlighted(self) -> None:
        """A node with errors has a red border and a red error line; the others do not."""
        root = ET.fromstring(to_svg(support_view()))
        groups = {
            g.find(f"{SVG}title").text: g  # type: ignore[union-attr]
            for g in root.iter(f"{SVG}g")
            if "node" in g.get("class", "").split()
        }
        assert groups["refund"].get("class") == "node failing"
        assert groups["refund"].find(f"{SVG}rect").get("stroke") == "#c62828"  # type: ignore[union-attr]
        assert groups["classify"].get("class") == "node"
        assert groups["classify"].find(f"{SVG}rect").get("stroke") != "#c62828"  # type: ignore[union-attr]

    def test_layers_follow_the_routes_and_loops_go_back(self) -> None:
        """classify sits above answer and refund, which sit above the end; refund→classify
        loops back (drawn on the right, not as a layer)."""
        layout = layered_layout(
            ["classify", "answer", "refund", "__end__"],
            [(e.source, e.target, e.count) for e in support_view().edges],
        )
        assert layout.layers == [["classify"], ["answer", "refund"], ["__end__"]]
        assert layout.back_edges == frozenset({("refund", "classify")})

    def test_a_graph_that_is_all_cycle_still_lays_out(self) -> None:
        """agent ⇄ tools with no entry: the busiest node goes first, one edge loops back."""
        layout = layered_layout(["agent", "tools"], [("agent", "tools", 5), ("tools", "agent", 4)])
        assert layout.layers == [["agent"], ["tools"]]
        assert layout.back_edges == frozenset({("tools", "agent")})

    def test_node_names_are_text_never_markup(self) -> None:
        """A name carrying markup and characters XML cannot hold is escaped: no element from it,
        the whole name in the tooltip, the picture still parses."""
        name = XSS + "\x00\x1b\ud800"
        view = FlowView(
            "w<b>", 0.0, 60.0,
            [FlowNode(name, 2, 1, 0.5, 10.0, None), FlowNode("b", 2, 0, 0.0, 5.0, None)],
            [FlowEdge(name, "b", 2, 1.0)],
        )  # fmt: skip
        svg = to_svg(view)
        root = ET.fromstring(svg)
        tags = {el.tag for el in root.iter()}
        assert tags <= {
            f"{SVG}{t}" for t in ("svg", "title", "defs", "marker", "path", "rect", "text", "g")
        }
        titles = ["".join(t.itertext()) for t in root.iter(f"{SVG}title")]
        assert XSS + "\ufffd\ufffd\ufffd" in titles
        assert any(t.startswith("<script>alert(1)</script>") for t in texts(root))
        assert "<script" not in svg and "onerror=alert" in svg  # the text, escaped

    def test_the_same_view_gives_the_same_bytes(self) -> None:
        """No clock and no random ids: input order does not change the output either."""
        view = support_view()
        shuffled = support_view()
        rng = random.Random(7)
        rng.shuffle(shuffled.nodes)
        rng.shuffle(shuffled.edges)
        assert to_svg(view) == to_svg(shuffled) == to_svg(support_view())
