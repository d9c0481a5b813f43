"""record_llm_call, record_metric, span handles and the current span, through the public API."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import llmpulse
from llmpulse.pricing import PriceTable
from llmpulse.schema import BRANCH_ATTRIBUTE, Run, SpanKind, SpanStatus
from llmpulse.testing import FakeClock, InMemoryExporter


def _flushed(exporter: InMemoryExporter) -> InMemoryExporter:
    assert llmpulse.flush(10)
    return exporter


class TestRecordLlmCall:
    def test_fields_land_on_an_llm_span(self, exporter: InMemoryExporter) -> None:
        """Every documented field of record_llm_call ends up in its column."""
        llmpulse.record_llm_call(
            "gpt-4o-mini", input_tokens=1000, output_tokens=200, latency_ms=250.0,
            provider="openai", prompt_version="v3", cache_read_tokens=400, cache_write_tokens=0,
            reasoning_tokens=50, ttft_ms=80.5, session_id="s1", user_id="u1", name="answer",
            input="question?", output="answer!", attributes={"team": "search"},
        )  # fmt: skip
        (span,) = _flushed(exporter).spans
        assert span.kind == "llm" and span.name == "answer" and span.model == "gpt-4o-mini"
        assert (span.input_tokens, span.output_tokens, span.total_tokens) == (1000, 200, 1200)
        assert (span.cache_read_tokens, span.reasoning_tokens) == (400, 50)
        assert (span.provider, span.prompt_version, span.ttft_ms) == ("openai", "v3", 80.5)
        assert (span.session_id, span.user_id, span.input, span.output) == (
            "s1",
            "u1",
            "question?",
            "answer!",
        )
        assert span.attributes == {"team": "search"}
        assert span.status == "ok" and span.parent_id is None and len(span.trace_id) == 32

    def test_latency_sets_start_before_the_recording_time(self) -> None:
        """Without start/end, the call ended when recorded and started latency_ms before."""
        clock, exporter = FakeClock(1000.0), InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=(), clock=clock)
        llmpulse.record_llm_call("gpt-4o", latency_ms=1500)
        (span,) = _flushed(exporter).spans
        assert (span.start_time, span.end_time) == (998.5, 1000.0)
        assert span.latency_ms == 1500.0

    def test_explicit_times_win(self, exporter: InMemoryExporter) -> None:
        """start_time and end_time given by the caller are kept as they are."""
        llmpulse.record_llm_call("gpt-4o", start_time=10.0, end_time=12.5, latency_ms=99)
        (span,) = _flushed(exporter).spans
        assert (span.start_time, span.end_time) == (10.0, 12.5)

    def test_cost_comes_from_the_price_table(self, exporter: InMemoryExporter) -> None:
        """Cost is computed off-thread from the default price table, cached tokens at their rate."""
        llmpulse.record_llm_call(
            "gpt-4o-mini",
            input_tokens=1_000_000,
            output_tokens=1_000_000,
            cache_read_tokens=500_000,
        )
        (span,) = _flushed(exporter).spans
        assert span.cost_usd == pytest.approx(0.5 * 0.15 + 0.5 * 0.075 + 0.60)

    def test_custom_prices_and_explicit_cost(self) -> None:
        """init(prices=...) adds models; a cost_usd given by the caller is not recomputed."""
        exporter = InMemoryExporter()
        llmpulse.init(
            exporter=exporter, instrument=(), prices={"my-finetune": {"input": 1.0, "output": 2.0}}
        )
        llmpulse.record_llm_call("my-finetune", input_tokens=1_000_000, output_tokens=1_000_000)
        llmpulse.record_llm_call("gpt-4o", input_tokens=10, output_tokens=10, cost_usd=0.5)
        first, second = _flushed(exporter).spans
        assert first.cost_usd == pytest.approx(3.0) and second.cost_usd == 0.5

    def test_unknown_model_costs_null(self, exporter: InMemoryExporter) -> None:
        """A model without a price gets cost None, never a silent 0."""
        llmpulse.record_llm_call("no-such-model", input_tokens=10, output_tokens=1)
        (span,) = _flushed(exporter).spans
        assert span.cost_usd is None and span.total_tokens == 11

    def test_error_status(self, exporter: InMemoryExporter) -> None:
        """status='error' with an error type and message is recorded as such."""
        llmpulse.record_llm_call(
            "gpt-4o", status="error", error_type="RateLimitError", error_message="429"
        )
        (span,) = _flushed(exporter).spans
        assert (span.status, span.error_type, span.error_message) == (
            "error",
            "RateLimitError",
            "429",
        )

    def test_parented_to_the_current_span(self, exporter: InMemoryExporter) -> None:
        """An llm call inside a span belongs to that span's trace, as its child."""
        with llmpulse.span("pipeline") as parent:
            llmpulse.record_llm_call("gpt-4o")
        llm, root = _flushed(exporter).spans
        assert llm.trace_id == root.trace_id == parent.trace_id
        assert llm.parent_id == root.span_id

    def test_later_changes_to_the_prompt_do_not_leak_in(self, exporter: InMemoryExporter) -> None:
        """The messages list is snapshotted, so appending to it after the call changes nothing."""
        messages = [{"role": "user", "content": "hi"}]
        llmpulse.record_llm_call("gpt-4o", input=messages)
        messages.append({"role": "assistant", "content": "later"})
        (span,) = _flushed(exporter).spans
        assert "later" not in span.input and '"hi"' in span.input

    def test_bad_values_never_raise(
        self, exporter: InMemoryExporter, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Nonsense arguments are logged and stored as null or dropped, never raised."""
        with caplog.at_level(logging.WARNING, logger="llmpulse"):
            llmpulse.record_llm_call("gpt-4o", input_tokens="many", colour="blue")  # type: ignore[arg-type, call-arg]
            llmpulse.record_llm_call("gpt-4o", latency_ms="slow")  # type: ignore[arg-type]
        stats = llmpulse.get_client().stats()
        (span,) = _flushed(exporter).spans
        assert span.input_tokens is None
        assert llmpulse.get_client().stats().dropped["invalid"] == 1
        assert "colour" in caplog.text and "input_tokens" in caplog.text
        assert stats.recorded == 2


class TestLlmCallValues:
    """Common values take a fast path on the export thread; anything else is coerced as before."""

    def _one(self, exporter: InMemoryExporter, **fields: Any) -> Any:
        llmpulse.record_llm_call("gpt-4o", **fields)
        (span,) = _flushed(exporter).spans
        return span

    def test_whole_number_latency(self) -> None:
        """An int latency_ms is seconds / 1000 before the recording time, like a float."""
        clock, exporter = FakeClock(1000.0), InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=(), clock=clock)
        span = self._one(exporter, latency_ms=250)
        assert (span.start_time, span.end_time) == (999.75, 1000.0)

    def test_unusual_latency_falls_back(self, exporter: InMemoryExporter) -> None:
        """A negative or numeric-text latency is coerced (clamped at 0, or parsed)."""
        negative = self._one(exporter, latency_ms=-5.0)
        assert negative.start_time == negative.end_time
        exporter.clear()
        text = self._one(exporter, latency_ms="1500")
        assert text.latency_ms == pytest.approx(1500.0)

    @pytest.mark.parametrize(
        ("status", "stored"),
        [(None, "ok"), ("ok", "ok"), ("error", "error"), ("OK", "ok"),
         (SpanStatus.ERROR, "error"), ("timeout", "error")],
    )  # fmt: skip
    def test_status_values(self, exporter: InMemoryExporter, status: Any, stored: str) -> None:
        """Status is 'ok' or 'error' whatever the caller passed (enums, case, other words)."""
        assert self._one(exporter, status=status).status == stored

    @pytest.mark.parametrize(("name", "stored"), [(None, "llm"), ("", "llm"), (42, "42")])
    def test_name_values(self, exporter: InMemoryExporter, name: Any, stored: str) -> None:
        """A missing name is 'llm'; a non-text name is its text."""
        assert self._one(exporter, name=name).name == stored

    def test_non_text_columns_become_text(self, exporter: InMemoryExporter) -> None:
        """Enums and numbers given for text columns are stored as their text."""
        span = self._one(
            exporter, provider=SpanKind.LLM, prompt_version=3, session_id=7, error_message=404
        )
        assert (span.provider, span.prompt_version, span.session_id) == ("llm", "3", "7")
        assert span.error_message == "404"

    def test_numbers_are_coerced(self, exporter: InMemoryExporter) -> None:
        """Float-able ttft and cost become floats; negative token counts become null."""
        span = self._one(exporter, ttft_ms="12.5", cost_usd=1, input_tokens=-3, output_tokens=True)
        assert (span.ttft_ms, span.cost_usd) == (12.5, 1.0)
        assert span.input_tokens is None and span.output_tokens == 1

    def test_genai_attributes_fill_empty_columns_only(self, exporter: InMemoryExporter) -> None:
        """gen_ai.* attributes of a recorded call fill the columns the call left empty."""
        attributes = {"gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 9,
                      "gen_ai.request.model": "other"}  # fmt: skip
        span = self._one(exporter, output_tokens=1, attributes=attributes)
        assert (span.model, span.provider, span.input_tokens) == ("gpt-4o", "openai", 9)
        assert span.total_tokens == 10 and span.cost_usd is not None
        assert span.attributes == attributes

    def test_structured_attribute_values(self, exporter: InMemoryExporter) -> None:
        """Lists of scalars stay lists; other values are stored as JSON text; keys become text."""
        span = self._one(exporter, attributes={1: {"a": [1]}, "tags": ["x", 2], "none": None})
        assert span.attributes == {"1": '{"a": [1]}', "tags": ["x", 2], "none": None}

    def test_long_text_is_cut_with_a_marker(self) -> None:
        """Text longer than max_content_chars is cut and says how much was dropped."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=(), max_content_chars=10)
        span = self._one(exporter, input="x" * 25, output="short", attributes={"note": "y" * 11})
        assert span.input == "x" * 10 + "...[truncated 15 chars]" and span.output == "short"
        assert span.attributes["note"] == "y" * 10 + "...[truncated 1 chars]"

    def test_custom_price_table_subclass_is_used(self) -> None:
        """A PriceTable subclass that prices differently is asked for every cost."""

        class Flat(PriceTable):
            def cost(self, model: str | None, *args: Any, **kwargs: Any) -> float | None:
                return 1.25

        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=(), prices=Flat())
        assert self._one(exporter, input_tokens=1).cost_usd == 1.25


class TestRecordMetric:
    def test_point_with_labels_run_and_step(self, exporter: InMemoryExporter) -> None:
        """A metric point keeps its value, labels (as strings), run id, step and timestamp."""
        llmpulse.record_metric(
            "train.loss",
            0.25,
            labels={"split": "val", "epoch": 3},
            run_id="r1",
            step=7,
            timestamp=5.0,
        )
        (point,) = _flushed(exporter).points
        assert (point.name, point.value, point.run_id, point.step, point.timestamp) == (
            "train.loss",
            0.25,
            "r1",
            7,
            5.0,
        )
        assert point.labels == {"split": "val", "epoch": "3"}

    def test_non_numeric_value_is_dropped_and_counted(self, exporter: InMemoryExporter) -> None:
        """A value that is not a number is counted as an invalid drop, not raised."""
        llmpulse.record_metric("x", "not a number")  # type: ignore[arg-type]
        points = _flushed(exporter).points
        assert not [p for p in points if p.name == "x"]
        assert llmpulse.get_client().stats().dropped["invalid"] == 1
        # The drop is visible as a metric too: the cumulative count, by reason.
        (drop,) = points
        assert (drop.name, drop.value, drop.labels["reason"]) == (
            "llmpulse_sdk_dropped_total",
            1.0,
            "invalid",
        )

    def test_runs_pass_through(self, exporter: InMemoryExporter) -> None:
        """A Run given to the client reaches the exporter unchanged."""
        run = Run(run_id="r1", name="bench", started_at=1.0)
        llmpulse.get_client().record_run(run)
        assert _flushed(exporter).runs == [run]


class TestSpans:
    def test_nesting_and_attributes(self, exporter: InMemoryExporter) -> None:
        """Nested spans share the trace; attributes, events and branch decisions are kept."""
        with llmpulse.span("agent", kind="agent", user_query="q") as outer:
            with llmpulse.span("route", kind="branch") as route:
                route.set_branch("search")
                route.add_event("fallback", reason="timeout")
            outer.set_attributes({"steps": 2})
        route_span, agent_span = _flushed(exporter).spans
        assert route_span.parent_id == agent_span.span_id and agent_span.parent_id is None
        assert route_span.attributes == {BRANCH_ATTRIBUTE: "search"}
        assert [(e.name, e.attributes) for e in route_span.events] == [
            ("fallback", {"reason": "timeout"})
        ]
        assert (
            agent_span.attributes == {"user_query": "q", "steps": 2} and agent_span.kind == "agent"
        )

    def test_exception_marks_error_and_propagates(self, exporter: InMemoryExporter) -> None:
        """An exception leaving the span marks it failed and is not swallowed."""
        with pytest.raises(KeyError), llmpulse.span("lookup"):
            raise KeyError("missing")
        (span,) = _flushed(exporter).spans
        assert (span.status, span.error_type, span.error_message) == (
            "error",
            "KeyError",
            "'missing'",
        )

    def test_llm_span_with_model_and_usage(self, exporter: InMemoryExporter) -> None:
        """set_model/set_usage/set_input/set_output fill the llm columns and the cost."""
        with llmpulse.span("call", kind="llm") as s:
            s.set_model("gpt-4o-mini", provider="openai", prompt_version="p1")
            s.set_usage(100, 10, cache_read_tokens=50)
            s.set_input("prompt")
            s.set_output("reply")
            s.set_session("sess", "user")
            s.set_ttft(12.0)
        (span,) = _flushed(exporter).spans
        assert (span.model, span.provider, span.prompt_version) == ("gpt-4o-mini", "openai", "p1")
        assert (
            span.input_tokens,
            span.output_tokens,
            span.total_tokens,
            span.cache_read_tokens,
        ) == (100, 10, 110, 50)
        assert span.cost_usd is not None and span.cost_usd > 0
        assert (span.input, span.output, span.session_id, span.user_id, span.ttft_ms) == (
            "prompt",
            "reply",
            "sess",
            "user",
            12.0,
        )

    def test_genai_attributes_fill_columns(self, exporter: InMemoryExporter) -> None:
        """gen_ai.* attribute names (OpenTelemetry conventions) fill the matching columns."""
        with llmpulse.span(
            "call", kind="llm", **{"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 7}
        ):
            pass
        (span,) = _flushed(exporter).spans
        assert (span.model, span.input_tokens) == ("gpt-4o", 7)

    def test_async_with(self, exporter: InMemoryExporter) -> None:
        """span() also works as an async context manager."""
        import asyncio

        async def main() -> None:
            async with llmpulse.span("async-step") as s:
                s.set_attribute("ok", True)

        asyncio.run(main())
        (span,) = _flushed(exporter).spans
        assert span.name == "async-step" and span.attributes == {"ok": True}

    def test_setters_after_end_are_ignored(self, exporter: InMemoryExporter) -> None:
        """Changing a handle after its span ended has no effect on what was exported."""
        with llmpulse.span("done") as s:
            pass
        s.set_attribute("late", 1)
        s.add_event("late")
        (span,) = _flushed(exporter).spans
        assert span.attributes == {} and span.events == []

    def test_unhashable_attribute_key_does_not_raise(self, exporter: InMemoryExporter) -> None:
        """A bad attribute call is swallowed and the span still exported."""
        with llmpulse.span("s") as s:
            s.set_attributes(None)  # type: ignore[arg-type]
            s.set_attribute(["bad"], 1)  # type: ignore[arg-type]
        assert len(_flushed(exporter).spans) == 1


class TestCurrentSpan:
    def test_noop_outside_any_span(self, exporter: InMemoryExporter) -> None:
        """Outside a span, get_current_span returns a handle that accepts and ignores calls."""
        handle = llmpulse.get_current_span()
        handle.set_attribute("x", 1)
        handle.add_event("recovered")
        handle.set_status_error(RuntimeError("x"))
        assert handle.is_recording is False and handle.trace_id is None
        assert not _flushed(exporter).spans

    def test_recovery_code_can_annotate_the_current_span(self, exporter: InMemoryExporter) -> None:
        """Code deep inside a span can add events to it without holding the handle."""

        def retry_helper() -> None:
            llmpulse.get_current_span().add_event("retry", attempt=2)

        with llmpulse.span("call"):
            retry_helper()
        (span,) = _flushed(exporter).spans
        assert [e.name for e in span.events] == ["retry"]
