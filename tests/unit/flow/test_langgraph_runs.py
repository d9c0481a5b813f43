"""A real LangGraph agent (ChatOpenAI at the simulator, the LangChain handler, recorded into
SQLite) read back as a workflow: its run, the path it took through the loop, each step costed
with its model call, and its flow drawn with the self-loop."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest.importorskip("langgraph", reason="langgraph is not installed (extra: langgraph)")
pytest.importorskip("langchain_openai", reason="langchain-openai is not installed (extra: dev)")

from langchain_openai import ChatOpenAI

import llmpulse
from llmpulse.flow import flow_view, to_svg
from llmpulse.sdk.instrumentation.langchain import CallbackHandler
from llmpulse.simulator import LLMSimulator
from llmpulse.store import Store
from llmpulse.testing import reset_sdk
from tests.unit.sdk.test_langgraph import _agent


@pytest.fixture(scope="module")
def sim_seed() -> int:
    """This module's simulator seed."""
    return 21


class TestLangGraphAsAWorkflow:
    def test_run_path_costs_and_flow(self, sim: LLMSimulator, tmp_path: Path) -> None:
        """draft loops once then goes to the review subgraph: one run of "support" whose path
        is draft, draft, review; each draft step carries its ChatOpenAI call's cost and tokens;
        the subgraph's own nodes are not steps of "support"; the flow shows the self-loop."""
        url = f"sqlite:///{tmp_path / 'graph.db'}"
        reset_sdk()
        llmpulse.init(url, instrument=("openai",))
        try:
            chat = ChatOpenAI(model="gpt-4o-mini", base_url=sim.base_url, api_key="sim",
                              max_retries=0)  # fmt: skip
            _agent(chat).invoke({"question": "refund?"}, config={"callbacks": [CallbackHandler()]})
        finally:
            llmpulse.shutdown()
            reset_sdk()
        with Store.open(url) as store:
            [(run, _)] = store.workflow_runs("support", 0, time.time() + 60)
            assert run.outcome == "ok" and run.name == "support"
            assert run.path == ("draft", "draft", "review")
            llm = store.list_spans(0, time.time() + 60, kind="llm")
            assert len(llm) == 2 and all(s.cost_usd for s in llm)
            assert run.cost_usd == pytest.approx(sum(s.cost_usd or 0 for s in llm))
            got = store.workflow_run("support", run.trace_id)
            assert got is not None
            assert [s.node for s in got.steps] == ["draft", "draft", "review"]
            by_start = sorted(llm, key=lambda s: s.start_time)
            assert [s.cost_usd for s in got.steps[:2]] == [
                pytest.approx(by_start[0].cost_usd), pytest.approx(by_start[1].cost_usd),
            ]  # fmt: skip
            assert [s.total_tokens for s in got.steps[:2]] == [s.total_tokens for s in by_start]
            assert got.steps[2].cost_usd is None  # the review subgraph called no model
            assert [(d.source, d.target, d.condition) for d in got.decisions] == [
                ("draft", "draft", "route"), ("draft", "review", "route"),
            ]  # fmt: skip
            view = flow_view(store, "support", 0, time.time() + 60)
        assert {(e.source, e.target, e.count, e.share) for e in view.edges} == {
            ("draft", "draft", 1, 0.5), ("draft", "review", 1, 0.5),
        }  # fmt: skip
        root = ET.fromstring(to_svg(view))
        shown = {"".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")}
        assert {"1 (50%)", "2 calls · 0.0% errors"} <= shown
        paths = [p.get("d") or "" for p in root.iter("{http://www.w3.org/2000/svg}path")]
        assert sum(1 for d in paths if d.startswith("M") and " C" in d) == 2  # both routes drawn
