"""LangGraph runs through the LangChain handler: nodes, routes, subgraphs, interrupts, retries."""

from __future__ import annotations

import contextlib
import contextvars
import gc
import itertools
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any, TypedDict

import pytest

pytest.importorskip("langgraph", reason="langgraph is not installed (extra: langgraph)")
pytest.importorskip("langchain_openai", reason="langchain-openai is not installed (extra: dev)")

from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, RetryPolicy, Send, interrupt

import llmpulse
from llmpulse.pricing import default_price_table
from llmpulse.schema import BRANCH_ATTRIBUTE, Span
from llmpulse.sdk.instrumentation.langchain import CallbackHandler
from llmpulse.simulator import LLMSimulator
from llmpulse.testing import InMemoryExporter

pytestmark = pytest.mark.instrument("openai")


class State(TypedDict, total=False):
    question: str
    attempts: int
    answer: str


@pytest.fixture(scope="module")
def sim_seed() -> int:
    """This module's simulator seed."""
    return 12


@pytest.fixture
def chat(sim: LLMSimulator) -> Iterator[ChatOpenAI]:
    """ChatOpenAI at the simulator."""
    yield ChatOpenAI(model="gpt-4o-mini", base_url=sim.base_url, api_key="sim", max_retries=0)


def _tree(exporter: InMemoryExporter) -> list[tuple[int, Span]]:
    """Every span with its depth, in start order."""
    assert llmpulse.flush(10)
    spans = sorted(exporter.spans, key=lambda s: (s.start_time, s.kind == "branch"))
    by_id = {s.span_id: s for s in spans}
    out = []
    for span in spans:
        depth, parent = 0, span.parent_id
        while parent is not None:
            depth, parent = depth + 1, by_id[parent].parent_id
        out.append((depth, span))
    return out


def _agent(chat: ChatOpenAI) -> Any:
    """draft (an LLM call) loops on itself once through a conditional edge, then a subgraph."""

    def draft(state: State) -> State:
        answer = chat.invoke(state["question"]).content
        return {"answer": str(answer), "attempts": state.get("attempts", 0) + 1}

    def route(state: State) -> str:
        return "draft" if state["attempts"] < 2 else "review"

    def check(state: State) -> State:
        return {"answer": state["answer"].upper()}

    review = StateGraph(State)
    review.add_node("check", check)
    review.add_edge(START, "check")
    review.add_edge("check", END)
    graph = StateGraph(State)
    graph.add_node("draft", draft)
    graph.add_node("review", review.compile(name="review_graph"))
    graph.add_edge(START, "draft")
    graph.add_conditional_edges("draft", route, ["draft", "review"])
    graph.add_edge("review", END)
    return graph.compile(name="support")


class TestAgentGraph:
    def test_nodes_routes_loop_and_subgraph(
        self, recorded: InMemoryExporter, chat: ChatOpenAI, sim: LLMSimulator
    ) -> None:
        """One span per node execution, the router's choice as a branch, the subgraph nested."""
        handler = CallbackHandler()
        result = _agent(chat).invoke({"question": "refund?"}, config={"callbacks": [handler]})
        tree = _tree(recorded)
        assert [(d, s.name, s.kind) for d, s in tree] == [
            (0, "support", "chain"),
            (1, "draft", "chain"),
            (2, "ChatOpenAI", "llm"),
            (2, "route", "chain"),
            (2, "support:draft", "branch"),
            (1, "draft", "chain"),
            (2, "ChatOpenAI", "llm"),
            (2, "route", "chain"),
            (2, "support:draft", "branch"),
            (1, "review", "chain"),
            (2, "review_graph", "chain"),
            (3, "check", "chain"),
        ]
        spans = [s for _, s in tree]
        root, draft1, llm1, _route1, branch1, draft2, llm2, route2, branch2, review, sub, check = (
            spans
        )
        assert {s.trace_id for s in spans} == {root.trace_id} and all(
            s.status == "ok" for s in spans
        )
        # Nodes: workflow, node name, superstep, state keys and size, no state values.
        assert [(s.attributes["langgraph.node"], s.attributes["langgraph.step"]) for s in
                (draft1, draft2, review, check)] == [("draft", 1), ("draft", 2), ("review", 3), ("check", 1)]  # fmt: skip
        assert [s.attributes["llmpulse.workflow"] for s in (root, draft1, review, sub, check)] == [
            "support", "support", "support", "review_graph", "review_graph",
        ]  # fmt: skip
        assert draft1.attributes["langgraph.state.keys"] == "question"
        assert draft1.attributes["langgraph.state.size"] == len('{"question": "refund?"}')
        assert draft2.attributes["langgraph.state.keys"] == "question,attempts,answer"
        assert draft1.attributes["langgraph.update.keys"] == "answer,attempts"
        assert all(s.input is None and s.output is None for s in (root, draft1, review, check))
        # Branch decisions: the route taken at the conditional edge, under the deciding node.
        assert [b.attributes[BRANCH_ATTRIBUTE] for b in (branch1, branch2)] == ["draft", "review"]
        assert branch1.parent_id == draft1.span_id and branch2.parent_id == draft2.span_id
        assert branch1.attributes == {
            "llmpulse.workflow": "support", "llmpulse.branch.from": "draft",
            "llmpulse.branch.condition": "route", BRANCH_ATTRIBUTE: "draft",
        }  # fmt: skip
        assert route2.attributes["langgraph.routes"] == ["review"]
        # The model calls: counted once, tokens as the simulator billed them, priced.
        assert len(sim.requests) == 2
        for span, request in zip((llm1, llm2), sim.requests, strict=True):
            assert (span.input_tokens, span.output_tokens) == (
                request.prompt_tokens, request.completion_tokens,
            )  # fmt: skip
            assert span.cost_usd == default_price_table().cost(
                "gpt-4o-mini", span.input_tokens, span.output_tokens
            )
        assert check.parent_id == sub.span_id and sub.parent_id == review.span_id
        assert result["attempts"] == 2 and handler.open_runs == 0 and handler.errors == 0

    def test_state_values_only_when_allowed(
        self, recorded: InMemoryExporter, chat: ChatOpenAI
    ) -> None:
        """capture_state=True keeps node inputs and updates, and the graph's input and output."""
        handler = CallbackHandler(capture_state=True)
        _agent(chat).invoke({"question": "refund?"}, config={"callbacks": [handler]})
        spans = [s for _, s in _tree(recorded)]
        root, draft1 = spans[0], spans[1]
        assert root.input == '{"question": "refund?"}' and '"attempts": 2' in root.output
        assert draft1.input == '{"question": "refund?"}' and '"attempts": 1' in draft1.output

    def test_redaction_wins_over_capture_state(self, chat: ChatOpenAI) -> None:
        """With redact=True no state value is kept even when capture_state=True."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=(), redact=True)
        handler = CallbackHandler(capture_state=True)
        _agent(chat).invoke({"question": "secret"}, config={"callbacks": [handler]})
        assert llmpulse.flush(10)
        assert all(s.input is None and s.output is None for s in exporter.spans)
        assert all("secret" not in str(s.attributes) for s in exporter.spans)


class TestControlFlow:
    def test_send_and_command_routes(self, recorded: InMemoryExporter) -> None:
        """A router returning Send objects and a node returning Command(goto=...) are branches."""

        def fan_out(state: State) -> list[Send]:
            return [Send("work", {"question": "a"}), Send("work", {"question": "b"})]

        def plan(state: State) -> Command[Any]:
            return Command(goto="finish", update={"answer": "planned"})

        graph = StateGraph(State)
        graph.add_node("start", lambda s: {"attempts": 0})
        graph.add_node("work", lambda s: {})
        graph.add_node("plan", plan)
        graph.add_node("finish", lambda s: {"answer": "done"})
        graph.add_edge(START, "start")
        graph.add_conditional_edges("start", fan_out, ["work"])
        graph.add_edge("work", "plan")
        graph.add_edge("finish", END)
        app = graph.compile(name="fan")
        app.invoke({"question": "q"}, config={"callbacks": [CallbackHandler()]})
        branches = [s for _, s in _tree(recorded) if s.kind == "branch"]
        assert [(b.name, b.attributes[BRANCH_ATTRIBUTE], b.attributes["llmpulse.branch.condition"])
                for b in branches] == [
            ("fan:start", "work", "fan_out"), ("fan:start", "work", "fan_out"),
            ("fan:plan", "finish", "Command.goto"),
        ]  # fmt: skip

    def test_interrupt_is_not_an_error_and_resume_links_by_thread(
        self, recorded: InMemoryExporter
    ) -> None:
        """interrupt() is an event on an OK node span; the resume is a new trace, same thread."""

        def approve(state: State) -> State:
            decision = interrupt({"question": "approve refund?"})
            return {"answer": str(decision)}

        graph = StateGraph(State)
        graph.add_node("approve", approve)
        graph.add_edge(START, "approve")
        graph.add_edge("approve", END)
        app = graph.compile(name="refunds", checkpointer=InMemorySaver())
        config: Any = {"callbacks": [CallbackHandler()], "configurable": {"thread_id": "t-9"}}
        app.invoke({"question": "refund?"}, config=config)
        result = app.invoke(Command(resume="yes"), config=config)
        assert result["answer"] == "yes"
        spans = [s for _, s in _tree(recorded)]
        roots = [s for s in spans if s.parent_id is None]
        assert [r.name for r in roots] == ["refunds", "refunds"]
        assert len({r.trace_id for r in roots}) == 2
        assert {r.session_id for r in roots} == {"t-9"}
        first, second = (s for s in spans if s.name == "approve")
        assert first.status == "ok" and first.attributes["langgraph.interrupted"] is True
        (event,) = first.events
        assert event.name == "interrupt" and "approve refund?" in str(event.attributes["values"])
        assert second.status == "ok" and "langgraph.interrupted" not in second.attributes
        assert all(s.status == "ok" for s in spans)

    def test_retried_node(self, recorded: InMemoryExporter) -> None:
        """A node retried by its RetryPolicy: the failed attempt is an ERROR, the next is attempt 2."""
        calls = {"n": 0}

        def flaky(state: State) -> State:
            calls["n"] += 1
            if calls["n"] == 1:
                raise ConnectionError("upstream reset")
            return {"answer": "ok"}

        graph = StateGraph(State)
        graph.add_node(
            "flaky",
            flaky,
            retry_policy=RetryPolicy(max_attempts=2, initial_interval=0.01, jitter=False),
        )
        graph.add_edge(START, "flaky")
        graph.add_edge("flaky", END)
        graph.compile(name="retrying").invoke(
            {"question": "q"}, config={"callbacks": [CallbackHandler()]}
        )
        nodes = [s for _, s in _tree(recorded) if s.name == "flaky"]
        assert [(s.status, s.error_type) for s in nodes] == [
            ("error", "ConnectionError"),
            ("ok", None),
        ]
        assert "langgraph.attempt" not in nodes[0].attributes
        assert nodes[1].attributes["langgraph.attempt"] == 2


class TestMoreShapes:
    def test_router_on_start(self, recorded: InMemoryExporter) -> None:
        """A conditional edge from START routes from LangGraph's __start__ node."""
        graph = StateGraph(State)
        graph.add_node("a", lambda s: {"answer": "a"})
        graph.add_node("b", lambda s: {"answer": "b"})
        graph.add_conditional_edges(START, lambda s: "b" if s["attempts"] else "a", ["a", "b"])
        graph.add_edge("a", END)
        graph.add_edge("b", END)
        graph.compile(name="entry").invoke(
            {"attempts": 1}, config={"callbacks": [CallbackHandler()]}
        )
        (branch,) = [s for _, s in _tree(recorded) if s.kind == "branch"]
        assert (branch.name, branch.attributes[BRANCH_ATTRIBUTE]) == ("entry:__start__", "b")

    def test_command_to_parent_is_not_an_error(self, recorded: InMemoryExporter) -> None:
        """Command(graph=PARENT) bubbles up through the subgraph: no span of it is ERROR."""

        def inner(state: State) -> Command[Any]:
            return Command(graph=Command.PARENT, goto="done", update={"attempts": 5})

        sub = StateGraph(State)
        sub.add_node("inner", inner)
        sub.add_edge(START, "inner")
        graph = StateGraph(State)
        graph.add_node("sub", sub.compile(name="subgraph"), destinations=("done",))
        graph.add_node("done", lambda s: {"answer": "done"})
        graph.add_edge(START, "sub")
        graph.add_edge("done", END)
        out = graph.compile(name="parent").invoke(
            {"attempts": 0}, config={"callbacks": [CallbackHandler()]}
        )
        assert out["answer"] == "done"
        spans = {s.name: s for _, s in _tree(recorded)}
        assert all(s.status == "ok" for s in spans.values())
        assert spans["inner"].attributes["langgraph.bubble_up"] is True

    def test_tool_node_error_with_structured_input(self, recorded: InMemoryExporter) -> None:
        """A ToolNode tool that fails (handled into an error ToolMessage) is an ERROR tool span
        whose input is the structured arguments."""
        from langchain_core.messages import AIMessage
        from langchain_core.tools import tool
        from langgraph.graph import MessagesState
        from langgraph.prebuilt import ToolNode

        @tool
        def lookup(order_id: int) -> str:
            """Look an order up."""
            raise ValueError("no such order")

        graph = StateGraph(MessagesState)
        graph.add_node("tools", ToolNode([lookup], handle_tool_errors=True))
        graph.add_edge(START, "tools")
        call = {"name": "lookup", "args": {"order_id": 7}, "id": "c1"}
        out = graph.compile(name="tools").invoke(
            {"messages": [AIMessage("", tool_calls=[call])]},
            config={"callbacks": [CallbackHandler()]},
        )
        assert out["messages"][-1].status == "error"
        (span,) = [s for _, s in _tree(recorded) if s.kind == "tool"]
        assert (span.name, span.status, span.error_type) == ("lookup", "error", "ValueError")
        assert span.input == '{"order_id": 7}'

    async def test_current_span_inside_an_async_node(self, recorded: InMemoryExporter) -> None:
        """Under ainvoke, the current span inside an async node is that node's span."""
        seen: list[str | None] = []

        async def node(state: State) -> State:
            seen.append(llmpulse.get_current_span().span_id)
            return {"answer": "x"}

        graph = StateGraph(State)
        graph.add_node("work", node)
        graph.add_edge(START, "work")
        await graph.compile(name="aio").ainvoke(
            {"attempts": 0}, config={"callbacks": [CallbackHandler()]}
        )
        spans = {s.name: s for _, s in _tree(recorded)}
        assert seen == [spans["work"].span_id]
        assert spans["work"].parent_id == spans["aio"].span_id


class TestCurrentSpanInsideNodes:
    """A node's span is recorded without being made the current span (the cost LangGraph pays
    per node): the graph run names the node running in each context when code there asks."""

    def test_what_a_node_sets_on_the_current_span_lands_on_its_span(
        self, recorded: InMemoryExporter
    ) -> None:
        """Attributes and a nested span set inside a node belong to that node's span; after
        the nested span ends the node is current again, and after the graph nothing is."""
        seen: list[str | None] = []

        def work(state: State) -> State:
            current = llmpulse.get_current_span()
            current.set_attribute("app.ticket", 42)
            seen.append(current.span_id)
            with llmpulse.span("inner", kind="tool") as inner:
                seen.append(llmpulse.get_current_span().span_id)
                inner.set_attribute("app.step", "lookup")
            seen.append(llmpulse.get_current_span().span_id)
            return {"answer": "done"}

        graph = StateGraph(State)
        graph.add_node("work", work)
        graph.add_edge(START, "work")
        graph.compile(name="tickets").invoke(
            {"question": "q"}, config={"callbacks": [CallbackHandler()]}
        )
        assert llmpulse.get_current_span().span_id is None  # nothing left current
        spans = {s.name: s for _, s in _tree(recorded)}
        assert sorted(spans) == ["inner", "tickets", "work"]
        work_span, inner = spans["work"], spans["inner"]
        assert seen == [work_span.span_id, inner.span_id, work_span.span_id]
        assert inner.parent_id == work_span.span_id
        assert work_span.parent_id == spans["tickets"].span_id
        assert work_span.attributes["app.ticket"] == 42
        assert work_span.attributes["langgraph.node"] == "work"
        assert work_span.attributes["langgraph.update.keys"] == "answer"
        assert work_span.start_time <= inner.start_time <= inner.end_time <= work_span.end_time

    def test_parallel_nodes_each_nest_their_own_spans(self, recorded: InMemoryExporter) -> None:
        """Two nodes of one superstep run on LangGraph's thread pool: a span opened in each
        nests under its own node, never under its sibling."""
        barrier = threading.Barrier(2, timeout=10)

        def make(name: str) -> Any:
            def node(state: State) -> State:
                with llmpulse.span(f"{name}.inner"):
                    barrier.wait()  # both nodes are inside their spans at once
                return {}

            return node

        graph = StateGraph(State)
        graph.add_node("left", make("left"))
        graph.add_node("right", make("right"))
        graph.add_edge(START, "left")
        graph.add_edge(START, "right")
        graph.compile(name="fan").invoke(
            {"question": "q"}, config={"callbacks": [CallbackHandler()]}
        )
        spans = {s.name: s for _, s in _tree(recorded)}
        assert spans["left.inner"].parent_id == spans["left"].span_id
        assert spans["right.inner"].parent_id == spans["right"].span_id
        assert (
            spans["left"].attributes["langgraph.step"]
            == spans["right"].attributes["langgraph.step"]
        )

    def test_a_node_that_fails_after_asking_keeps_what_it_set(
        self, recorded: InMemoryExporter
    ) -> None:
        """A node whose span was asked for and which then raises: one span, failed, with the
        attribute set before the error and the node's own attributes."""

        def broken(state: State) -> State:
            llmpulse.get_current_span().set_attribute("app.before", True)
            raise ValueError("no answer")

        graph = StateGraph(State)
        graph.add_node("broken", broken)
        graph.add_edge(START, "broken")
        handler = CallbackHandler()
        with pytest.raises(ValueError, match="no answer"):
            graph.compile(name="fails").invoke({"question": "q"}, config={"callbacks": [handler]})
        nodes = [s for _, s in _tree(recorded) if s.name == "broken"]
        assert len(nodes) == 1
        (node,) = nodes
        assert (node.status, node.error_type) == ("error", "ValueError")
        assert node.attributes["app.before"] is True
        assert node.attributes["langgraph.node"] == "broken"
        assert handler.open_runs == 0 and handler.errors == 0

    def test_node_runs_that_never_end_are_evicted_like_any_run(
        self, recorded: InMemoryExporter
    ) -> None:
        """Node runs count in max_open_runs: past it the oldest are ended as evicted, a node
        run with its node's attributes."""
        handler = CallbackHandler(max_open_runs=10)
        graph_id = uuid.uuid4()

        def never_ending_runs() -> None:  # in a context of its own: they stay current there
            handler.on_chain_start({}, {"question": "q"}, run_id=graph_id, name="g")
            for step in range(1, 6):  # five node runs that never end
                handler.on_chain_start(
                    {}, {"question": "q"}, run_id=uuid.uuid4(), parent_run_id=graph_id,
                    name="n", tags=[f"graph:step:{step}"],
                    metadata={"langgraph_node": "n", "langgraph_step": step},
                )  # fmt: skip
            for _ in range(10):  # later runs push the graph and its nodes out
                handler.on_chain_start({}, {}, run_id=uuid.uuid4(), name="later")

        contextvars.copy_context().run(never_ending_runs)
        assert handler.open_runs == 10 and handler.evicted_runs == 6 and handler.errors == 0
        assert llmpulse.flush(10)
        spans = {(s.name, s.attributes.get("langgraph.step")): s for s in recorded.spans}
        assert sorted(spans, key=str) == sorted(
            [("g", None)] + [("n", step) for step in range(1, 6)], key=str
        )
        assert all(s.attributes["llmpulse.evicted"] is True for s in spans.values())
        graph_span = spans[("g", None)]
        assert all(
            s.parent_id == graph_span.span_id and s.attributes["llmpulse.workflow"] == "g"
            for key, s in spans.items()
            if key[0] == "n"
        )


class TestNodeAttributesReadLater:
    """A node's attributes are made on the export thread from what its start and end kept."""

    def test_a_node_changing_its_input_in_place_does_not_change_what_was_recorded(
        self, recorded: InMemoryExporter
    ) -> None:
        """The input state's keys and size are those the node started with, though the node
        changes that dict before the record is read."""

        def careless(state: State) -> State:
            state["answer"] = "x" * 500  # in place: LangGraph's guide says not to, some do
            return {"attempts": 1}

        graph = StateGraph(State)
        graph.add_node("careless", careless)
        graph.add_edge(START, "careless")
        graph.compile(name="inplace").invoke(
            {"question": "q"}, config={"callbacks": [CallbackHandler()]}
        )
        (node,) = [s for _, s in _tree(recorded) if s.name == "careless"]
        assert node.attributes["langgraph.state.keys"] == "question"
        assert node.attributes["langgraph.state.size"] == len('{"question": "q"}')
        assert node.attributes["langgraph.update.keys"] == "attempts"

    def test_a_state_that_cannot_be_read_loses_only_its_summary(
        self, recorded: InMemoryExporter
    ) -> None:
        """A state value that fails when it is read leaves the node's other attributes whole."""

        class Unreadable:
            def __str__(self) -> str:
                raise RuntimeError("no")

            __repr__ = __str__

        def node(state: dict[str, Any]) -> dict[str, Any]:
            return {"question": "done"}

        graph = StateGraph(dict)  # type: ignore[type-var]
        graph.add_node("reads", node)
        graph.add_edge(START, "reads")
        graph.compile(name="odd").invoke(
            {"question": Unreadable()}, config={"callbacks": [CallbackHandler()]}
        )
        (span,) = [s for _, s in _tree(recorded) if s.name == "reads"]
        assert span.attributes["langgraph.node"] == "reads"
        assert span.attributes["langgraph.update.keys"] == "question"
        assert "langgraph.state.size" not in span.attributes

    def test_an_update_key_that_cannot_be_read_loses_only_the_update_keys(
        self, recorded: InMemoryExporter
    ) -> None:
        """A node returning a key whose ``str()`` fails is still recorded, without the update's
        keys (LangGraph itself may then fail on that key: that error is the user's)."""

        class Unreadable:
            def __str__(self) -> str:
                raise RuntimeError("no")

            __repr__ = __str__

        graph = StateGraph(dict)  # type: ignore[type-var]
        graph.add_node("odd", lambda s: {Unreadable(): 1})
        graph.add_edge(START, "odd")
        handler = CallbackHandler()
        with contextlib.suppress(RuntimeError):
            graph.compile(name="odd-keys").invoke({"a": 1}, config={"callbacks": [handler]})
        (span,) = [s for _, s in _tree(recorded) if s.name == "odd"]
        assert span.attributes["langgraph.node"] == "odd"
        assert span.attributes["langgraph.state.keys"] == "a"
        assert "langgraph.update.keys" not in span.attributes
        assert handler.errors == 1

    def test_text_no_database_stores_is_repaired_in_node_attributes(
        self, recorded: InMemoryExporter
    ) -> None:
        """A node record's own attributes skip the converter's check only when they are plain
        text: a NUL in the graph's name or a state key is repaired in every node's attributes."""

        def node(state: dict[str, Any]) -> dict[str, Any]:
            return {"k\x00": 2}

        graph = StateGraph(dict)  # type: ignore[type-var]
        graph.add_node("one", node)
        graph.add_node("two", node)
        graph.add_edge(START, "one")
        graph.add_edge("one", "two")
        graph.compile(name="odd\x00é").invoke(
            {"k\x00": 1}, config={"callbacks": [CallbackHandler()]}
        )
        nodes = [s for _, s in _tree(recorded) if s.name in ("one", "two")]
        assert len(nodes) == 2
        for span in nodes:
            assert span.attributes["llmpulse.workflow"] == "odd\ufffdé"
            assert span.attributes["langgraph.state.keys"] == "k\ufffd"
            assert span.attributes["langgraph.update.keys"] == "k\ufffd"

    def test_a_node_name_over_the_label_cap_is_cut_like_any_span_name(
        self, recorded: InMemoryExporter
    ) -> None:
        """A node record's end counts its name and update keys cheaply, and still cuts a name
        over the label cap as every span's end does."""
        from llmpulse._rows import MAX_LABEL_CHARS

        long = "n" * (MAX_LABEL_CHARS + 50)
        graph = StateGraph(State)
        graph.add_node(long, lambda s: {"answer": "x"})
        graph.add_edge(START, long)
        graph.compile(name="long").invoke(
            {"question": "q"}, config={"callbacks": [CallbackHandler()]}
        )
        (node,) = [s for _, s in _tree(recorded) if s.name.startswith("nnn")]
        assert node.name == "n" * MAX_LABEL_CHARS + "...[truncated 50 chars]"
        assert node.attributes["langgraph.update.keys"] == "answer"

    def test_a_waiting_node_record_keeps_nothing_else_alive(self) -> None:
        """While a trivial node's record waits in the export queue, the record is the only
        object of it the garbage collector tracks: containers it kept alive besides (a tags
        tuple, a metadata copy, an attributes dict) counted toward the collector's passes as
        new objects do, and made the handler's records trigger one every ~100 nodes."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, flush_interval=3600, batch_size=100_000)
        graph = StateGraph(State)
        names = [f"n{i}" for i in range(20)]
        for name in names:
            graph.add_node(name, lambda s: {"attempts": s.get("attempts", 0) + 1})
        graph.add_edge(START, names[0])
        for a, b in itertools.pairwise(names):
            graph.add_edge(a, b)
        app = graph.compile(name="line")
        config: Any = {"callbacks": [CallbackHandler()]}
        app.invoke({"question": "q"}, config=config)  # caches filled, first records exported
        assert llmpulse.flush(10)
        gc.collect()
        gc.disable()
        try:
            before = Counter(type(o).__name__ for o in gc.get_objects())
            for _ in range(10):
                app.invoke({"question": "q"}, config=config)
            grown = Counter(type(o).__name__ for o in gc.get_objects()) - before
        finally:
            gc.enable()
        assert grown["_NodeRun"] == 200  # waiting: the export thread was not woken
        others = sum(grown.values()) - grown["_NodeRun"]
        assert others < 50, grown.most_common(5)  # per graph run, not per node
        assert llmpulse.flush(10)
        assert sum(s.name in names for s in exporter.spans) == 220


class TestRawClientCalls:
    def test_raw_openai_call_in_a_node_nests_under_it(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """A raw openai call inside a node is recorded once, by the openai instrumentation, as a
        child of the node span (not suppressed as a tracer that mutes clients would)."""
        import openai

        with openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as client:

            def ask(state: State) -> State:
                reply = client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": state["question"]}]
                )
                return {"answer": reply.choices[0].message.content or ""}

            graph = StateGraph(State)
            graph.add_node("ask", ask)
            graph.add_edge(START, "ask")
            graph.compile(name="raw").invoke(
                {"question": "hi"}, config={"callbacks": [CallbackHandler()]}
            )
        spans = {s.name: s for _, s in _tree(recorded)}
        assert sorted(spans) == ["ask", "chat gpt-4o-mini", "raw"]
        llm = spans["chat gpt-4o-mini"]
        assert llm.parent_id == spans["ask"].span_id and llm.provider == "openai"
        assert llm.input_tokens == sim.requests[-1].prompt_tokens


class TestMetadata:
    def test_thread_ids_do_not_leak_between_invocations(self, recorded: InMemoryExporter) -> None:
        """Two invokes with different thread_ids get their own session; configurable values that
        LangChain no longer copies to metadata are not invented."""
        graph = StateGraph(State)
        graph.add_node("one", lambda s: {"answer": "x"})
        graph.add_edge(START, "one")
        app = graph.compile(name="meta", checkpointer=InMemorySaver())
        handler = CallbackHandler()
        for thread in ("a", "b"):
            config: Any = {"callbacks": [handler], "metadata": {"user_id": "u1"},
                           "configurable": {"thread_id": thread, "tenant": "acme"}}  # fmt: skip
            app.invoke({"question": "q"}, config=config)
        spans = [s for _, s in _tree(recorded)]
        assert [(s.name, s.session_id, s.user_id) for s in spans] == [
            ("meta", "a", "u1"), ("one", "a", "u1"), ("meta", "b", "u1"), ("one", "b", "u1"),
        ]  # fmt: skip
        assert all("langchain.metadata.tenant" not in s.attributes for s in spans)

    def test_a_node_span_carries_exactly_these_attributes(self, recorded: InMemoryExporter) -> None:
        """A node's span: the user's tags and scalar metadata, workflow, node, step, triggers,
        checkpoint namespace, state keys and JSON size, update keys; nothing LangGraph adds."""
        graph = StateGraph(State)
        graph.add_node("one", lambda s: {"answer": "x", "attempts": 1})
        graph.add_edge(START, "one")
        config: Any = {"callbacks": [CallbackHandler()], "tags": ["tier:gold"],
                       "metadata": {"team": "search", "weight": 0.5, "blob": object(), "ls_x": 1}}  # fmt: skip
        app = graph.compile(name="attrs")
        app.invoke({"question": "é?"}, config=config)
        app.invoke({"question": "é?"}, config=config)  # the second run decides from a cache
        nodes = [s for _, s in _tree(recorded) if s.name == "one"]
        assert len(nodes) == 2
        for node in nodes:
            ns = node.attributes.pop("langgraph.checkpoint_ns")
            assert ns.startswith("one:")
            assert node.attributes == {
                "langchain.tags": ["tier:gold"], "langchain.metadata.team": "search",
                "langchain.metadata.weight": 0.5, "llmpulse.workflow": "attrs",
                "langgraph.node": "one", "langgraph.step": 1, "langgraph.triggers": "branch:to:one",
                "langgraph.state.keys": "question", "langgraph.state.size": len('{"question": "é?"}'),
                "langgraph.update.keys": "answer,attempts",
            }  # fmt: skip

    def test_odd_states_are_still_summarised(self, recorded: InMemoryExporter) -> None:
        """A state with non-text keys or one that contains itself still gets keys and a size."""
        from llmpulse.sdk.instrumentation.langgraph import state_summary

        assert state_summary({1: "a", "b": object}) == (
            "1,b",
            len('{"1": "a", "b": "<class \'object\'>"}'),
        )
        loop: dict[str, Any] = {"a": 1}
        loop["me"] = loop
        assert state_summary(loop) == ("a,me", len(repr(loop)))
        assert state_summary(["not", "a", "mapping"]) is None

    def test_messages_are_measured_by_their_content_not_rendered(self) -> None:
        """str() of a LangChain message renders the whole model (milliseconds for a chat
        history, once per node): the size reads its content instead."""
        from langchain_core.messages import HumanMessage

        from llmpulse.sdk.instrumentation.langgraph import state_summary

        rendered = []

        class Message(HumanMessage):
            def __str__(self) -> str:
                rendered.append(self)
                return super().__str__()

        state = {"messages": [Message(content="hi")], "q": "x"}
        # As spaced JSON with the message as its content: {"messages": [<msg>], "q": "x"}:
        # braces and one separator 4, '"messages": ' 12, the list's brackets 2, the message
        # '"hi"' 4 plus its type's name and 2, '"q": ' 5, '"x"' 3.
        assert state_summary(state) == ("messages,q", 4 + 12 + 2 + 4 + len("Message") + 2 + 5 + 3)
        assert rendered == []
        empty = {"a": [], "b": {}, "m": Message(content=[{"type": "text", "text": "ok"}])}
        keys, size = state_summary(empty)  # type: ignore[misc]
        blocks = len('[{"type": "text", "text": "ok"}]')
        assert (keys, size) == ("a,b,m", 6 + len('"a": []') + len('"b": {}') + 5 + blocks + 9)
        assert rendered == []


@pytest.mark.slow
class TestLongGraphs:
    def test_ten_thousand_steps_keep_the_handler_bounded(self, recorded: InMemoryExporter) -> None:
        """A 10,000-step loop leaves no open run behind, evicts nothing and records every step."""
        steps = 10_000

        def tick(state: State) -> State:
            return {"attempts": state.get("attempts", 0) + 1}

        graph = StateGraph(State)
        graph.add_node("tick", tick)
        graph.add_edge(START, "tick")
        graph.add_conditional_edges("tick", lambda s: "tick" if s["attempts"] < steps else END)
        handler = CallbackHandler()
        out = graph.compile(name="loop").invoke(
            {"attempts": 0}, config={"callbacks": [handler], "recursion_limit": steps + 1}
        )
        assert out["attempts"] == steps
        assert handler.open_runs == 0 and handler.evicted_runs == 0 and handler.errors == 0
        assert len(handler._retries) == 0
        assert llmpulse.flush(30)
        nodes = [s for s in recorded.spans if s.name == "tick"]
        assert len(nodes) == steps
        assert sum(s.kind == "branch" for s in recorded.spans) == steps
