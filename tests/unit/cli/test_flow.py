"""The flow view (nodes and routes with traffic from the rollups) and `llmpulse flow`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import llmpulse
from llmpulse.cli.main import app
from llmpulse.flow import FlowEdge, flow_view, to_mermaid
from llmpulse.store import Store
from llmpulse.testing import reset_sdk


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A SQLite database holding 10 runs of a 'support' workflow: classify routes 7 runs to
    answer and 3 to refund; refund fails once; every run ends."""
    url = f"sqlite:///{tmp_path / 'flow.db'}"
    reset_sdk()
    llmpulse.init(url, instrument=())
    for i in range(10):
        with llmpulse.span("support", kind="chain"):
            with llmpulse.span("classify", kind="chain"):
                to = "refund" if i < 3 else "answer"
                llmpulse.record_branch("support", "classify", to, condition="intent")
            try:
                with llmpulse.span(to, kind="chain"):
                    if i == 0:
                        raise RuntimeError("refund api down")
            except RuntimeError:
                pass
            llmpulse.record_branch("support", to, "__end__")
    llmpulse.shutdown()
    reset_sdk()
    return url


class TestFlowView:
    def test_nodes_and_edges(self, db: str) -> None:
        """Edges count each route and its share of the decision; nodes carry calls and errors."""
        with Store.open(db) as store:
            view = flow_view(store, "support", 0, time.time() + 60)
        assert view.edges == [
            FlowEdge("answer", "__end__", 7, 1.0),
            FlowEdge("classify", "answer", 7, 0.7),
            FlowEdge("classify", "refund", 3, 0.3),
            FlowEdge("refund", "__end__", 3, 1.0),
        ]
        nodes = {n.name: n for n in view.nodes}
        assert sorted(nodes) == ["__end__", "answer", "classify", "refund"]
        assert (nodes["classify"].calls, nodes["classify"].errors) == (10, 0)
        assert (nodes["refund"].calls, nodes["refund"].errors) == (3, 1)
        assert nodes["refund"].error_rate == pytest.approx(1 / 3, abs=1e-4)
        assert nodes["answer"].p95_latency_ms is not None
        assert nodes["__end__"].calls == 0

    def test_unknown_workflow_is_a_clear_error(self, db: str) -> None:
        """A workflow with no branch decision in the window is a ValueError naming it."""
        with Store.open(db) as store, pytest.raises(ValueError, match="'billing'") as err:
            flow_view(store, "billing", 0, time.time() + 60)
        assert str(err.value).endswith("workflows that did: support")

    def test_a_window_without_decisions_says_none_did(self, db: str) -> None:
        """With no decision at all in the window, the error says so and how decisions are
        recorded (there is no workflow to suggest)."""
        with Store.open(db) as store, pytest.raises(ValueError, match="no workflow did") as err:
            flow_view(store, "support", 0, 60)
        assert "record_branch()" in str(err.value)

    def test_mermaid(self, db: str) -> None:
        """Mermaid: a box per node with its numbers, an arrow per route with count and share."""
        with Store.open(db) as store:
            text = to_mermaid(flow_view(store, "support", 0, time.time() + 60))
        lines = text.splitlines()
        assert lines[0] == "flowchart TD"
        assert '    n2_classify -->|"7 (70%)"| n1_answer' in lines
        assert '    n2_classify -->|"3 (30%)"| n3_refund' in lines
        assert '    n0___end__["END"]' in lines
        assert any(
            line.startswith('    n3_refund["refund<br/>3 calls · 33.3% errors') for line in lines
        )
        assert lines[-1] == "    class n3_refund failing"


class TestFlowCommand:
    def test_mermaid_and_json(self, db: str) -> None:
        """`llmpulse flow NAME` prints Mermaid, `--format json` the same view as data."""
        runner = CliRunner()
        out = runner.invoke(app, ["flow", "support", "--database-url", db, "--window", "1h"])
        assert out.exit_code == 0, out.output
        assert out.output.startswith("flowchart TD\n") and '-->|"3 (30%)"|' in out.output
        out = runner.invoke(app, ["flow", "support", "--database-url", db, "--format", "json"])
        assert out.exit_code == 0, out.output
        data = json.loads(out.output)
        assert data["workflow"] == "support"
        assert {(e["source"], e["target"], e["count"]) for e in data["edges"]} == {
            ("classify", "answer", 7), ("classify", "refund", 3),
            ("answer", "__end__", 7), ("refund", "__end__", 3),
        }  # fmt: skip

    def test_svg_to_a_file(self, db: str, tmp_path: Path) -> None:
        """`--format svg -o FILE` writes a picture of the same view (it parses and shows the
        routes' counts and shares); nothing goes to standard output."""
        import xml.etree.ElementTree as ET

        target = tmp_path / "support.svg"
        args = ["flow", "support", "--database-url", db, "--format", "svg", "-o", str(target)]
        out = CliRunner().invoke(app, args)
        assert out.exit_code == 0, out.output
        assert out.output == ""
        root = ET.parse(target).getroot()
        shown = {"".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")}
        assert {"7 (70%)", "3 (30%)", "10 calls · 0.0% errors", "3 calls · 33.3% errors"} <= shown

    def test_a_model_name_instead_of_a_workflow(self, db: str) -> None:
        """`llmpulse flow gpt-4o` (a model, not a workflow) is one line naming the workflows
        there are, exit 1, no traceback."""
        out = CliRunner().invoke(app, ["flow", "gpt-4o", "--database-url", db])
        assert out.exit_code == 1 and "Traceback" not in out.output
        assert "'gpt-4o'" in out.output and "workflows that did: support" in out.output

    def test_unwritable_output_is_one_line(self, db: str, tmp_path: Path) -> None:
        """An output path that cannot be written is named, without a traceback."""
        bad = tmp_path / "missing" / "x.svg"
        out = CliRunner().invoke(
            app, ["flow", "support", "--database-url", db, "--format", "svg", "-o", str(bad)]
        )
        assert out.exit_code == 1 and "Traceback" not in out.output
        assert "cannot write" in out.output and "x.svg" in out.output

    def test_unknown_workflow_exits_with_one_line(self, db: str) -> None:
        """No traceback: one line naming the workflow, exit code 1."""
        out = CliRunner().invoke(app, ["flow", "nope", "--database-url", db])
        assert out.exit_code == 1 and "Traceback" not in out.output
        assert "'nope'" in out.output
