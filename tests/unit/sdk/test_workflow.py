"""The workflow API: branch decisions, tool calls and @tool, attached to the current trace."""

from __future__ import annotations

import asyncio

import pytest

import llmpulse
from llmpulse.schema import BRANCH_ATTRIBUTE
from llmpulse.testing import FakeClock, InMemoryExporter


def _spans(exporter: InMemoryExporter) -> dict[str, object]:
    assert llmpulse.flush(10)
    return {s.name: s for s in exporter.spans}


class TestRecordBranch:
    def test_branch_is_a_child_of_the_current_span(self, exporter: InMemoryExporter) -> None:
        """A branch decision is a zero-length branch span under the step that decided."""
        with llmpulse.span("support", kind="chain") as root:
            llmpulse.record_branch(
                "support", "classify", "refund",
                condition="intent == 'refund'", result=True, context={"intent": "refund"},
            )  # fmt: skip
        spans = _spans(exporter)
        branch = spans["support:classify"]
        assert branch.kind == "branch"
        assert branch.trace_id == root.trace_id and branch.parent_id == root.span_id
        assert branch.start_time == branch.end_time
        assert branch.attributes == {
            "llmpulse.workflow": "support",
            "llmpulse.branch.from": "classify",
            BRANCH_ATTRIBUTE: "refund",
            "llmpulse.branch.condition": "intent == 'refund'",
            "llmpulse.branch.result": True,
            "llmpulse.branch.context": '{"intent": "refund"}',
        }

    def test_branch_without_a_trace_starts_one(self, exporter: InMemoryExporter) -> None:
        """Outside any span the decision is a root span of its own trace."""
        llmpulse.record_branch("wf", "a", "b")
        (span,) = _spans(exporter).values()
        assert span.parent_id is None and span.attributes[BRANCH_ATTRIBUTE] == "b"
        assert "llmpulse.branch.condition" not in span.attributes

    def test_redaction_drops_context_and_result(self) -> None:
        """With redact=True the values the decision looked at are not kept; the route is."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=(), redact=True)
        llmpulse.record_branch("wf", "a", "b", condition="x > 1", result=5, context={"x": 5})
        (span,) = _spans(exporter).values()
        assert span.attributes == {
            "llmpulse.workflow": "wf",
            "llmpulse.branch.from": "a",
            BRANCH_ATTRIBUTE: "b",
            "llmpulse.branch.condition": "x > 1",
        }

    def test_unprintable_values_never_raise(self, exporter: InMemoryExporter) -> None:
        """A context whose values cannot be serialised is stored as text; nothing raises."""

        class Odd:
            def __repr__(self) -> str:
                raise RuntimeError("no repr")

        llmpulse.record_branch("wf", "a", "b", result=Odd(), context={"o": Odd()})
        (span,) = _spans(exporter).values()
        assert span.attributes[BRANCH_ATTRIBUTE] == "b"

    def test_no_client_records_nothing(self) -> None:
        """Before init (or when disabled) a branch decision is a no-op."""
        llmpulse.record_branch("wf", "a", "b")
        llmpulse.record_tool_call("t")


class TestRecordToolCall:
    def test_tool_call_fields(self) -> None:
        """name, inputs, output and latency become a tool span ending now under the current span."""
        exporter, clock = InMemoryExporter(), FakeClock(1_700_000_000.0)
        llmpulse.init(exporter=exporter, instrument=(), clock=clock)
        with llmpulse.span("agent") as root:
            clock.advance(2.0)
            llmpulse.record_tool_call(
                "search", inputs={"q": "refund"}, output=["doc-1"], latency_ms=250.0, source="kb"
            )
        tool = _spans(exporter)["search"]
        assert (tool.kind, tool.status, tool.parent_id) == ("tool", "ok", root.span_id)
        assert tool.end_time == 1_700_000_002.0 and tool.start_time == 1_700_000_001.75
        assert tool.latency_ms == 250.0
        assert tool.input == '{"q": "refund"}' and tool.output == '["doc-1"]'
        assert tool.attributes == {
            "source": "kb",
            "gen_ai.tool.name": "search",
            "gen_ai.operation.name": "execute_tool",
        }

    def test_failed_tool_call(self, exporter: InMemoryExporter) -> None:
        """An error (exception or text) marks the tool span failed with its type and message."""
        llmpulse.record_tool_call("fetch", error=TimeoutError("upstream slow"), latency_ms=5)
        llmpulse.record_tool_call("parse", status="error")
        spans = _spans(exporter)
        assert (spans["fetch"].status, spans["fetch"].error_type) == ("error", "TimeoutError")
        assert spans["fetch"].error_message == "upstream slow"
        assert spans["parse"].status == "error" and spans["parse"].error_type == "error"

    def test_bad_latency_is_ignored(self, exporter: InMemoryExporter) -> None:
        """A latency that is not a number gives a zero-length span rather than an error."""
        llmpulse.record_tool_call("t", latency_ms="slow")  # type: ignore[arg-type]
        (span,) = _spans(exporter).values()
        assert span.start_time == span.end_time


class TestToolDecorator:
    def test_sync_tool(self, exporter: InMemoryExporter) -> None:
        """@tool records each call as a tool span with inputs, output and the tool name."""

        @llmpulse.tool
        def search(query: str, top_k: int = 3) -> list[str]:
            return [f"{query}-{i}" for i in range(top_k)]

        with llmpulse.span("agent") as root:
            assert search("refund", top_k=2) == ["refund-0", "refund-1"]
        span = _spans(exporter)["search"]
        assert (span.kind, span.parent_id) == ("tool", root.span_id)
        assert span.input == '{"query": "refund", "top_k": 2}'
        assert span.output == '["refund-0", "refund-1"]'
        assert span.attributes["gen_ai.tool.name"] == "search"

    def test_named_async_tool_error_propagates(self, exporter: InMemoryExporter) -> None:
        """@tool("name") on a coroutine: the user's exception is re-raised and the span is ERROR."""

        @llmpulse.tool("lookup_order")
        async def lookup(order_id: int) -> dict[str, int]:
            raise KeyError(order_id)

        with pytest.raises(KeyError):
            asyncio.run(lookup(7))
        span = _spans(exporter)["lookup_order"]
        assert (span.kind, span.status, span.error_type) == ("tool", "error", "KeyError")
        assert span.attributes["gen_ai.tool.name"] == "lookup_order"

    def test_calls_do_not_share_attributes(self, exporter: InMemoryExporter) -> None:
        """An attribute set inside one call does not leak into the next call's span."""

        @llmpulse.tool
        def step(i: int) -> int:
            llmpulse.get_current_span().set_attribute(f"seen{i}", True)
            return i

        step(1)
        step(2)
        assert llmpulse.flush(10)
        first, second = exporter.spans
        assert "seen2" not in first.attributes and "seen1" not in second.attributes
