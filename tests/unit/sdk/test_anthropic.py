"""Anthropic instrumentation against the real anthropic client and the project's simulator.

Covers the Anthropic rows of the workflows notes: cumulative stream deltas are never summed
(22), a delta without input_tokens falls back to message_start (23), and Anthropic's
cache-exclusive input_tokens is billed with the cache added back (section 3).
"""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import anthropic
import pytest
from anthropic.types import MessageDeltaUsage, RawMessageDeltaEvent

import llmpulse
from llmpulse.schema import USAGE_ESTIMATED_ATTRIBUTE, Span
from llmpulse.simulator import Faults, LLMSimulator, SimulatorConfig
from llmpulse.testing import InMemoryExporter
from tests.unit.anthropic_requests import MODEL, SYSTEM, USER, WEATHER, sonnet_cost
from tests.unit.sdk.conftest import llm_spans

pytestmark = pytest.mark.instrument("anthropic")


@pytest.fixture(scope="module")
def sim_seed() -> int:
    """This module's simulator seed (the shared simulator fixture is in tests/conftest.py)."""
    return 5


def _cached_pair(claude: anthropic.Anthropic, **kwargs: object) -> object:
    """Write the system prompt to the cache, then return the second call's result (a read)."""
    claude.messages.create(model=MODEL, max_tokens=20, system=SYSTEM, messages=USER)
    return claude.messages.create(model=MODEL, max_tokens=60, system=SYSTEM,
                                  messages=[{"role": "user", "content": "And?"}], **kwargs)  # fmt: skip


def _async_client(sim: LLMSimulator) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=sim.url, api_key="sim", max_retries=0)


# The checks below are shared with test_anthropic_beta: a beta call is recorded as a message is.

# What the field-by-field tests send, to ``messages.create`` and ``beta.messages.create``.
FIELD_BY_FIELD: dict[str, Any] = {
    "model": MODEL, "max_tokens": 300, "stop_sequences": ["END"], "system": "Be brief.",
    "messages": USER, "metadata": {"user_id": "u-7"},
}  # fmt: skip

ERRORS = pytest.mark.parametrize(
    ("kind", "error", "status"),
    [
        ("rate_limit", anthropic.RateLimitError, 429),
        ("overloaded", anthropic.OverloadedError, 529),
    ],
)


def _check_message_span(span: Span, message: Any) -> None:
    """``span`` records the answer to FIELD_BY_FIELD, ``message``, field by field."""
    usage = message.usage
    assert (span.kind, span.model, span.provider, span.status, span.user_id) == (
        "llm",
        MODEL,
        "anthropic",
        "ok",
        "u-7",
    )
    assert (span.input_tokens, span.output_tokens) == (usage.input_tokens, usage.output_tokens)
    assert span.total_tokens == usage.input_tokens + usage.output_tokens
    assert (span.cache_read_tokens, span.cache_write_tokens) == (0, 0)
    assert span.cost_usd == pytest.approx(
        sonnet_cost(usage.input_tokens, 0, 0, usage.output_tokens)
    )
    assert span.output == message.content[0].text
    assert json.loads(span.input) == [{"role": "system", "content": "Be brief."}, *USER]
    assert span.ttft_ms is None and span.name == f"chat {MODEL}"
    attrs = span.attributes
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert (attrs["gen_ai.request.stop_sequences"], attrs["gen_ai.request.max_tokens"]) == (
        ["END"],
        300,
    )
    assert attrs["gen_ai.response.id"] == message.id
    assert attrs["gen_ai.response.finish_reasons"] == ["end_turn"]


def _check_cache_pair(write: Span, read: Span, second: Any) -> None:
    """The cache written by the first call and read by the second (which answered ``second``):
    each span's input is uncached + cache, and each bucket is priced at its own rate."""
    cached = second.usage.cache_read_input_tokens
    assert write.cache_write_tokens == cached > 1024 and write.cache_read_tokens == 0
    assert write.cost_usd == pytest.approx(
        sonnet_cost(write.input_tokens - cached, 0, cached, write.output_tokens)
    )
    assert read.input_tokens == second.usage.input_tokens + cached
    assert (read.cache_read_tokens, read.cache_write_tokens) == (cached, 0)
    assert read.cost_usd == pytest.approx(
        sonnet_cost(second.usage.input_tokens, cached, 0, second.usage.output_tokens)
    )


def _check_streamed_span(span: Span, events: list[Any]) -> None:
    """A stream read to its end: the final delta's (cumulative, not summed) usage with the cache
    added back, its cost, time to first token, the streamed text and the chunk count."""
    delta = events[-2].usage
    assert span.input_tokens == delta.input_tokens + delta.cache_read_input_tokens
    assert (span.cache_read_tokens, span.output_tokens) == (
        delta.cache_read_input_tokens,
        delta.output_tokens,
    )
    assert span.cost_usd == pytest.approx(
        sonnet_cost(delta.input_tokens, delta.cache_read_input_tokens, 0, delta.output_tokens)
    )
    assert 0 < span.ttft_ms < span.latency_ms
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert span.output == text and span.attributes["llmpulse.stream.chunks"] == len(events)
    assert USAGE_ESTIMATED_ATTRIBUTE not in span.attributes


def _check_tool_stream_span(span: Span, final: Any) -> None:
    """The ``stream()`` helper's span of a call with the WEATHER tool: the final message's usage
    and cost, the tool call in the output, time to first token and the finish reason."""
    usage = final.usage
    assert (span.input_tokens, span.output_tokens) == (usage.input_tokens, usage.output_tokens)
    assert span.cost_usd == pytest.approx(
        sonnet_cost(usage.input_tokens, 0, 0, usage.output_tokens)
    )
    assert json.loads(span.output)[1]["name"] == "get_weather" and span.ttft_ms > 0
    assert span.attributes["gen_ai.response.finish_reasons"] == ["tool_use"]


def _raise_unchanged(create: Any, sim: LLMSimulator, kind: str, error: type, **kwargs: Any) -> None:
    """``create``, plain and with stream=True, each answered with the ``kind`` fault: the
    anthropic exception reaches the caller as anthropic raised it."""
    for stream in (False, True):
        sim.fail_next(1, kind=kind)
        with pytest.raises(error) as info:
            create(model=MODEL, max_tokens=20, messages=USER, stream=stream, **kwargs)
        assert type(info.value) is error


def _check_error_span(span: Span, error: type, status: int) -> None:
    """An error span names the exception and the status, with no usage and no cost."""
    assert (span.status, span.error_type, span.model) == ("error", error.__name__, MODEL)
    assert span.attributes["http.response.status_code"] == status
    assert span.input_tokens is None and span.cost_usd is None


class TestMessages:
    def test_message_is_recorded_field_by_field(
        self, recorded: InMemoryExporter, claude: anthropic.Anthropic
    ) -> None:
        """A message becomes an llm span: model, provider, tokens, cost, texts, attributes."""
        message = claude.messages.create(**FIELD_BY_FIELD)
        (span,) = llm_spans(recorded)
        _check_message_span(span, message)

    def test_cache_tokens_are_added_back_and_priced(
        self, recorded: InMemoryExporter, claude: anthropic.Anthropic
    ) -> None:
        """input_tokens excludes the cache: the span's input is uncached + read + written, and
        each bucket is priced at its own rate."""
        second = _cached_pair(claude)
        write, read = llm_spans(recorded)
        _check_cache_pair(write, read, second)

    def test_tool_use(self, recorded: InMemoryExporter, claude: anthropic.Anthropic) -> None:
        """A tool call is in the output as a tool_use block, and the finish reason says so."""
        message = claude.messages.create(
            model=MODEL, max_tokens=500, tools=[WEATHER], messages=USER
        )
        (span,) = llm_spans(recorded)
        call = message.content[1]
        assert json.loads(span.output)[1] == {
            "type": "tool_use",
            "id": call.id,
            "name": "get_weather",
            "input": call.input,
        }
        assert span.attributes["gen_ai.response.finish_reasons"] == ["tool_use"]
        assert span.attributes["gen_ai.request.tools"] == ["get_weather"]
        assert span.output_tokens == message.usage.output_tokens

    def test_async_client_and_parenting(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """AsyncAnthropic calls are recorded, each under the observed function that made it."""

        @llmpulse.observe("ask")
        async def ask(c: anthropic.AsyncAnthropic) -> str:
            message = await c.messages.create(
                model="claude-haiku-4-5", max_tokens=40, messages=USER
            )
            return message.content[0].text

        async def main() -> None:
            async with _async_client(sim) as c:
                await asyncio.gather(*(ask(c) for _ in range(3)))

        asyncio.run(main())
        spans = llm_spans(recorded)
        asks = {s.span_id for s in recorded.spans if s.name == "ask"}
        assert len(spans) == 3 and {s.parent_id for s in spans} == asks
        assert all(s.model == "claude-haiku-4-5" and s.output_tokens == 40 for s in spans)


class TestThinking:
    def test_thinking_tokens_are_reasoning_inside_output(
        self, recorded: InMemoryExporter, claude: anthropic.Anthropic
    ) -> None:
        """Extended thinking: thinking_tokens is the span's reasoning, a part of output_tokens
        (billed once, as output), and the thinking text is not the answer; streamed too."""
        thinking = {"type": "enabled", "budget_tokens": 1024}
        message = claude.messages.create(
            model=MODEL, max_tokens=4000, thinking=thinking, messages=USER
        )
        with claude.messages.stream(
            model=MODEL, max_tokens=4000, thinking=thinking, messages=USER
        ) as s:
            streamed = s.get_final_message()
        for span, result in zip(llm_spans(recorded), (message, streamed), strict=True):
            usage = result.usage
            assert span.reasoning_tokens == usage.output_tokens_details.thinking_tokens > 0
            assert span.output_tokens == usage.output_tokens > span.reasoning_tokens
            assert span.cost_usd == pytest.approx(
                sonnet_cost(usage.input_tokens, 0, 0, usage.output_tokens)
            )
            assert span.output == result.content[1].text


class TestLangChain:
    def test_chat_anthropic_counts_once_with_the_cache_added_back(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """Notes rows 3, 4 and section 4: ChatAnthropic with the LangChain handler and the
        anthropic instrumentation both on is one llm span per call (the handler's), with
        input = uncached + cache, the cache counts, and a stream's usage taken once, not summed."""
        langchain_anthropic = pytest.importorskip("langchain_anthropic")
        from langchain_core.messages import HumanMessage, SystemMessage

        llmpulse.init(exporter=recorded, instrument=("anthropic", "langchain"))
        model = langchain_anthropic.ChatAnthropic(
            model=MODEL, base_url=sim.url, api_key="sim", max_retries=0, max_tokens=100
        )
        messages = [SystemMessage(content=SYSTEM), HumanMessage("Why do retries need jitter?")]
        model.invoke(messages)
        model.invoke(messages)
        chunks = list(model.stream(messages))
        spans = llm_spans(recorded)
        assert [s.name for s in spans] == ["ChatAnthropic"] * 3
        write, read, streamed = spans
        first, _, third = sim.requests
        cached = write.cache_write_tokens
        assert cached > 1024 and write.cache_read_tokens == 0
        for span, record in zip(spans, sim.requests, strict=True):
            assert (span.model, span.provider) == (MODEL, "anthropic")
            assert (span.input_tokens, span.output_tokens) == (
                record.prompt_tokens,
                record.completion_tokens,
            )
        assert (read.cache_read_tokens, streamed.cache_read_tokens) == (cached, cached)
        uncached = first.prompt_tokens - cached
        assert write.cost_usd == pytest.approx(
            sonnet_cost(uncached, 0, cached, first.completion_tokens)
        )
        assert streamed.cost_usd == pytest.approx(
            sonnet_cost(uncached, cached, 0, third.completion_tokens)
        )
        assert streamed.ttft_ms > 0 and len(chunks) > 2


class TestStreaming:
    def test_cumulative_deltas_are_not_summed(
        self, recorded: InMemoryExporter, claude: anthropic.Anthropic, sim: LLMSimulator
    ) -> None:
        """Notes row 22: message_start (input, cache read, output 1) and message_delta (the same
        input and cache read, final output) give the delta's counts, not their sum."""
        sim.set_faults(Faults(stream_chunk_delay_ms=1.0))
        stream = _cached_pair(claude, stream=True)
        events = list(stream)
        start, delta = events[0].message.usage, events[-2].usage
        assert start.output_tokens == 1 and delta.input_tokens == start.input_tokens
        assert delta.cache_read_input_tokens == start.cache_read_input_tokens > 1024
        _, span = llm_spans(recorded)
        _check_streamed_span(span, events)

    def test_several_deltas_keep_the_last(self, recorded: InMemoryExporter) -> None:
        """Server tools send several message_delta events: each replaces the counts before it."""
        from llmpulse.sdk.instrumentation.anthropic import _MessageCall

        call = _MessageCall((), {"model": MODEL, "stream": True, "messages": USER})
        for out in (5, 50):
            call.on_chunk(RawMessageDeltaEvent(
                type="message_delta", delta={"stop_reason": None},
                usage=MessageDeltaUsage(input_tokens=10, cache_read_input_tokens=100, output_tokens=out),
            ))  # fmt: skip
        call.end_stream(consumed=True)
        (span,) = llm_spans(recorded)
        assert (span.input_tokens, span.cache_read_tokens, span.output_tokens) == (110, 100, 50)

    def test_delta_without_input_falls_back_to_message_start(
        self, recorded: InMemoryExporter
    ) -> None:
        """Notes row 23: a server whose message_delta has only output_tokens: the input and
        cache counts are message_start's, the output the delta's."""
        with (
            LLMSimulator(SimulatorConfig(anthropic_delta_usage="output_only")) as sim,
            anthropic.Anthropic(base_url=sim.url, api_key="sim", max_retries=0) as c,
        ):
            events = list(c.messages.create(model=MODEL, max_tokens=30, messages=USER, stream=True))
        start, delta = events[0].message.usage, events[-2].usage
        assert delta.input_tokens is None and delta.output_tokens == 30
        (span,) = llm_spans(recorded)
        assert (span.input_tokens, span.output_tokens) == (start.input_tokens, 30)
        assert span.cost_usd == pytest.approx(sonnet_cost(start.input_tokens, 0, 0, 30))

    def test_stream_helper_sync_and_async(self, recorded: InMemoryExporter, sim: LLMSimulator,
                                          claude: anthropic.Anthropic) -> None:  # fmt: skip
        """messages.stream() (sync and async) records one span each, with the final usage."""
        with claude.messages.stream(
            model=MODEL, max_tokens=300, tools=[WEATHER], messages=USER
        ) as s:
            sync_final = s.get_final_message()

        async def main() -> object:
            async with (
                _async_client(sim) as c,
                c.messages.stream(model=MODEL, max_tokens=40, messages=USER) as s,
            ):
                return await s.get_final_message()

        async_final = asyncio.run(main())
        sync_span, async_span = llm_spans(recorded)
        _check_tool_stream_span(sync_span, sync_final)
        assert async_span.output_tokens == async_final.usage.output_tokens == 40
        assert async_span.output == async_final.content[0].text and async_span.ttft_ms > 0

    def test_stream_closed_early_estimates_output(
        self, recorded: InMemoryExporter, claude: anthropic.Anthropic
    ) -> None:
        """A stream closed before message_delta keeps message_start's input and estimates the
        output from the text seen, marked as estimated."""
        stream = claude.messages.create(model=MODEL, max_tokens=300, messages=USER, stream=True)
        seen = [event for _, event in zip(range(8), stream, strict=False)]
        stream.close()
        (span,) = llm_spans(recorded)
        text = "".join(e.delta.text for e in seen if e.type == "content_block_delta")
        assert span.attributes["llmpulse.stream.closed_early"] is True
        assert span.input_tokens == seen[0].message.usage.input_tokens
        assert span.output_tokens == -(-len(text) // 4)
        assert span.attributes[USAGE_ESTIMATED_ATTRIBUTE] == "chars/4"

    def test_stream_cut_by_the_server_keeps_the_start_numbers(
        self, recorded: InMemoryExporter
    ) -> None:
        """Notes section 3 (an aborted stream leaves only message_start's numbers): a server that
        dies mid-answer ends the stream without message_delta; the span has message_start's
        input and the output estimated from the text that arrived, marked as estimated."""
        with (
            LLMSimulator(SimulatorConfig(faults=Faults(stream_chunk_delay_ms=20.0))) as sim,
            anthropic.Anthropic(base_url=sim.url, api_key="sim", max_retries=0) as c,
        ):
            events = []
            for event in c.messages.create(model=MODEL, max_tokens=300, messages=USER, stream=True):
                events.append(event)
                if len(events) == 6:
                    sim.stop()  # the server goes away: its stream is cut, no message_delta
        assert "message_delta" not in {e.type for e in events}
        (span,) = llm_spans(recorded)
        text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
        assert (span.status, span.input_tokens) == ("ok", events[0].message.usage.input_tokens)
        assert span.output_tokens == -(-len(text) // 4) and span.output == text
        assert span.attributes[USAGE_ESTIMATED_ATTRIBUTE] == "chars/4"

    def test_stream_dropped_unread(
        self, recorded: InMemoryExporter, claude: anthropic.Anthropic
    ) -> None:
        """A stream nobody reads is recorded when it is garbage collected."""
        claude.messages.create(model=MODEL, max_tokens=30, messages=USER, stream=True)
        gc.collect()
        (span,) = llm_spans(recorded)
        assert span.attributes["llmpulse.stream.closed_early"] is True


class TestErrors:
    @ERRORS
    def test_errors_are_recorded_and_raised_unchanged(
        self, recorded: InMemoryExporter, claude: anthropic.Anthropic, sim: LLMSimulator,
        kind: str, error: type, status: int,
    ) -> None:  # fmt: skip
        """The anthropic exception reaches the caller as anthropic raised it; the span names it."""
        _raise_unchanged(claude.messages.create, sim, kind, error)
        spans = llm_spans(recorded)
        assert len(spans) == 2
        for span in spans:
            _check_error_span(span, error, status)

    def test_recording_failure_never_reaches_the_caller(
        self,
        recorded: InMemoryExporter,
        claude: anthropic.Anthropic,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """When recording itself fails, the call still happens and returns its message."""
        from llmpulse.sdk.instrumentation import anthropic as instrumentation

        def broken(usage: object) -> dict:
            raise RuntimeError("recording is broken")

        monkeypatch.setattr(instrumentation, "_usage_map", broken)
        message = claude.messages.create(model=MODEL, max_tokens=20, messages=USER)
        assert message.content[0].text
        with claude.messages.stream(model=MODEL, max_tokens=20, messages=USER) as s:
            assert s.get_final_message().usage.output_tokens == 20


class TestRawResponses:
    def test_with_raw_response(
        self, recorded: InMemoryExporter, claude: anthropic.Anthropic
    ) -> None:
        """with_raw_response calls are recorded from the parsed message, which the caller gets too."""
        raw = claude.messages.with_raw_response.create(model=MODEL, max_tokens=30, messages=USER)
        message = raw.parse()
        (span,) = llm_spans(recorded)
        assert (span.output_tokens, span.output) == (30, message.content[0].text)
        assert raw.headers["request-id"].startswith("req_")

    def test_with_streaming_response_body_stays_the_callers(
        self, recorded: InMemoryExporter, claude: anthropic.Anthropic
    ) -> None:
        """A with_streaming_response body is not read by the recording: the caller reads it."""
        with claude.messages.with_streaming_response.create(
            model=MODEL, max_tokens=30, messages=USER
        ) as response:
            assert response.parse().usage.output_tokens == 30
        (span,) = llm_spans(recorded)
        assert (span.model, span.status) == (MODEL, "ok")


class TestInstrumentation:
    def test_inside_an_open_llm_span_nothing_more_is_recorded(
        self, recorded: InMemoryExporter, claude: anthropic.Anthropic
    ) -> None:
        """Under an open llm span (LangChain's ChatAnthropic run), the call counts once: there."""
        with llmpulse.span("ChatAnthropic", kind="llm"):
            claude.messages.create(model=MODEL, max_tokens=20, messages=USER)
        (span,) = llm_spans(recorded)
        assert span.name == "ChatAnthropic"

    def test_uninstrument_and_twice(
        self, recorded: InMemoryExporter, claude: anthropic.Anthropic
    ) -> None:
        """Instrumenting twice records once; after uninstrument_anthropic nothing is recorded."""
        assert llmpulse.instrument_anthropic() is True
        claude.messages.create(model=MODEL, max_tokens=5, messages=USER)
        llmpulse.uninstrument_anthropic()
        claude.messages.create(model=MODEL, max_tokens=5, messages=USER)
        with claude.messages.stream(model=MODEL, max_tokens=5, messages=USER) as s:
            s.get_final_message()
        assert len(llm_spans(recorded)) == 1
