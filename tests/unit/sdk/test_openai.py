"""OpenAI instrumentation against the real openai client and the project's simulator."""

from __future__ import annotations

import asyncio
import gc

import openai
import pytest

import llmpulse
from llmpulse.schema import USAGE_ESTIMATED_ATTRIBUTE
from llmpulse.simulator import Faults, LLMSimulator
from llmpulse.testing import InMemoryExporter
from tests.unit.sdk.conftest import llm_spans

pytestmark = pytest.mark.instrument("openai")

USER = [{"role": "user", "content": "Why do retries need jitter?"}]
LONG_SYSTEM = {"role": "system", "content": "You are a careful assistant. " * 400}  # > 1024 tokens


@pytest.fixture(scope="module")
def sim_seed() -> int:
    """This module's simulator seed (the shared simulator fixture is in tests/conftest.py)."""
    return 3


class TestCompletions:
    def test_call_is_recorded_with_usage_and_attributes(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        """A chat completion becomes an llm span with model, tokens, cost, texts and gen_ai attributes."""
        response = client.chat.completions.create(
            model="gpt-4o-mini", messages=USER, temperature=0.2, max_tokens=50, user="u-42"
        )
        (span,) = llm_spans(recorded)
        assert (span.model, span.provider, span.status, span.user_id) == (
            "gpt-4o-mini",
            "openai",
            "ok",
            "u-42",
        )
        assert span.input_tokens == response.usage.prompt_tokens
        assert span.output_tokens == response.usage.completion_tokens
        assert span.total_tokens == response.usage.total_tokens
        assert span.cost_usd is not None and span.cost_usd > 0
        assert span.output == response.choices[0].message.content and "jitter" in span.input
        assert span.attributes["gen_ai.request.temperature"] == 0.2
        assert span.attributes["gen_ai.request.max_tokens"] == 50
        assert span.attributes["gen_ai.response.id"] == response.id
        assert span.attributes["gen_ai.response.finish_reasons"] == [
            response.choices[0].finish_reason
        ]
        assert span.end_time > span.start_time

    def test_cached_and_reasoning_tokens(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        """cached_tokens and reasoning_tokens from the usage details fill their columns."""
        client.chat.completions.create(model="o3-mini", messages=[LONG_SYSTEM, *USER])
        second = client.chat.completions.create(
            model="o3-mini", messages=[LONG_SYSTEM, {"role": "user", "content": "Another question"}]
        )
        first_span, second_span = llm_spans(recorded)
        assert second_span.cache_read_tokens == second.usage.prompt_tokens_details.cached_tokens > 0
        assert (
            second_span.reasoning_tokens
            == second.usage.completion_tokens_details.reasoning_tokens
            > 0
        )
        assert first_span.cache_read_tokens == 0

    def test_parented_to_the_observed_function(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        """A call inside an observed function is that function's child span."""

        @llmpulse.observe("answer")
        def answer() -> str | None:
            return (
                client.chat.completions.create(model="gpt-4o", messages=USER)
                .choices[0]
                .message.content
            )

        answer()
        assert llmpulse.flush(10)
        outer = next(s for s in recorded.spans if s.name == "answer")
        (llm,) = llm_spans(recorded)
        assert llm.parent_id == outer.span_id and llm.trace_id == outer.trace_id

    def test_async_client(self, recorded: InMemoryExporter, sim: LLMSimulator) -> None:
        """AsyncOpenAI calls are recorded too."""

        async def main() -> None:
            async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as c:
                await asyncio.gather(
                    *(
                        c.chat.completions.create(model="gpt-4o-mini", messages=USER)
                        for _ in range(3)
                    )
                )

        asyncio.run(main())
        spans = llm_spans(recorded)
        assert len(spans) == 3 and all(s.output_tokens for s in spans)

    def test_redaction_applies(self, sim: LLMSimulator, client: openai.OpenAI) -> None:
        """With redact=True the prompt and response are not recorded; tokens are."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, redact=True)
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        (span,) = llm_spans(exporter)
        assert span.input is None and span.output is None and span.input_tokens


class TestErrors:
    @pytest.mark.parametrize(
        ("status", "error"),
        [
            (429, openai.RateLimitError),
            (400, openai.BadRequestError),
            (500, openai.InternalServerError),
        ],
    )
    def test_errors_are_recorded_and_raised_unchanged(
        self,
        recorded: InMemoryExporter,
        client: openai.OpenAI,
        sim: LLMSimulator,
        status: int,
        error: type,
    ) -> None:
        """The openai exception reaches the caller as openai raised it; the span names its class."""
        sim.fail_next(1, status=status)
        with pytest.raises(error) as info:
            client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        assert type(info.value) is error
        (span,) = llm_spans(recorded)
        assert (span.status, span.error_type) == ("error", error.__name__)
        assert span.attributes["http.response.status_code"] == status

    def test_connection_error(self, recorded: InMemoryExporter) -> None:
        """A provider that cannot be reached is an APIConnectionError span, raised unchanged."""
        with (
            openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="x", max_retries=0) as c,
            pytest.raises(openai.APIConnectionError),
        ):
            c.chat.completions.create(model="gpt-4o", messages=USER)
        (span,) = llm_spans(recorded)
        assert span.error_type == "APIConnectionError"


class TestStreaming:
    def test_stream_with_usage(
        self, recorded: InMemoryExporter, client: openai.OpenAI, sim: LLMSimulator
    ) -> None:
        """Chunks pass through untouched; the span gets ttft, tokens/s, usage and the full text."""
        sim.set_faults(Faults(stream_chunk_delay_ms=1.0))
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True}
        )
        assert isinstance(stream, openai.Stream)
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        (span,) = llm_spans(recorded)
        assert span.output == text and span.output_tokens == chunks[-1].usage.completion_tokens
        assert span.ttft_ms is not None and 0 < span.ttft_ms <= span.latency_ms
        assert span.attributes["llmpulse.tokens_per_second"] > 0
        assert (
            span.attributes["llmpulse.stream"] is True
            and "llmpulse.stream.closed_early" not in span.attributes
        )

    def test_stream_asks_for_usage_and_hides_the_extra_chunk(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        """Without stream_options, llmpulse asks for usage; the user gets the chunks they would
        get without llmpulse (no usage-only chunk), and the span gets exact tokens and cost."""
        chunks = list(
            client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        )
        assert chunks and all(c.choices and c.usage is None for c in chunks)
        (span,) = llm_spans(recorded)
        assert span.input_tokens and span.output_tokens and span.cost_usd
        assert USAGE_ESTIMATED_ATTRIBUTE not in span.attributes
        assert span.attributes["llmpulse.stream.usage_requested"] is True
        assert span.attributes["llmpulse.stream.chunks"] == len(chunks)
        # The same request asking for usage itself reports the same counts.
        asked = list(
            client.chat.completions.create(
                model="gpt-4o-mini", messages=USER, stream=True,
                stream_options={"include_usage": True},
            )
        )  # fmt: skip
        (_, span2) = llm_spans(recorded)
        assert asked[-1].usage is not None and not asked[-1].choices  # the user asked: they see it
        assert span2.output_tokens == asked[-1].usage.completion_tokens
        assert "llmpulse.stream.usage_requested" not in span2.attributes

    def test_stream_usage_opt_out_estimates_tokens_and_cost(
        self, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """stream_usage=False (or LLMPULSE_STREAM_USAGE=false) sends the request unchanged; the
        tokens are estimated from the text, marked, so the call still counts in cost totals."""
        monkeypatch.setenv("LLMPULSE_STREAM_USAGE", "false")
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=("openai",))
        chunks = list(
            client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        )
        assert all(c.usage is None for c in chunks)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        (span,) = llm_spans(exporter)
        assert span.attributes[USAGE_ESTIMATED_ATTRIBUTE] == "chars/4"
        assert span.output_tokens == -(-len(text) // 4)
        assert span.input_tokens == -(-len(USER[0]["content"]) // 4)
        assert span.cost_usd is not None and span.cost_usd > 0
        assert span.attributes["llmpulse.tokens_per_second_estimated"] is True

    def test_user_refusing_usage_is_respected_and_estimated(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        list(
            client.chat.completions.create(
                model="gpt-4o-mini", messages=USER, stream=True,
                stream_options={"include_usage": False},
            )
        )  # fmt: skip
        (span,) = llm_spans(recorded)
        assert span.attributes[USAGE_ESTIMATED_ATTRIBUTE] == "chars/4" and span.output_tokens

    def test_stream_closed_before_usage_is_estimated_even_when_redacted(
        self, client: openai.OpenAI
    ) -> None:
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=("openai",), redact=True)
        with client.chat.completions.create(
            model="gpt-4o-mini", messages=USER, stream=True
        ) as stream:
            first = next(c for c in stream if c.choices and c.choices[0].delta.content)
        (span,) = llm_spans(exporter)
        assert span.output is None  # redacted, yet counted
        assert span.attributes[USAGE_ESTIMATED_ATTRIBUTE] == "chars/4"
        assert span.output_tokens == -(-len(first.choices[0].delta.content) // 4)

    def test_stream_closed_early(self, recorded: InMemoryExporter, client: openai.OpenAI) -> None:
        """Closing a stream before its end (a with-block) ends the span, marked closed early."""
        with client.chat.completions.create(
            model="gpt-4o-mini", messages=USER, stream=True
        ) as stream:
            next(iter(stream))
        (span,) = llm_spans(recorded)
        assert span.attributes["llmpulse.stream.closed_early"] is True and span.status == "ok"

    def test_stream_dropped_unread(self, recorded: InMemoryExporter, client: openai.OpenAI) -> None:
        """A stream nobody reads is recorded once it is garbage collected."""
        client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        gc.collect()
        (span,) = llm_spans(recorded)
        assert span.attributes["llmpulse.stream.chunks"] == 0

    def test_async_stream(self, recorded: InMemoryExporter, sim: LLMSimulator) -> None:
        """An async stream is observed the same way."""

        async def main() -> str:
            async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as c:
                stream = await c.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
                assert isinstance(stream, openai.AsyncStream)
                chunks = [chunk async for chunk in stream]
                assert all(chunk.choices for chunk in chunks)  # the usage chunk stays ours
                return "".join(chunk.choices[0].delta.content or "" for chunk in chunks)

        text = asyncio.run(main())
        (span,) = llm_spans(recorded)
        assert span.output == text and span.output_tokens and span.ttft_ms is not None
        assert USAGE_ESTIMATED_ATTRIBUTE not in span.attributes

    def test_stream_error_status(
        self, recorded: InMemoryExporter, client: openai.OpenAI, sim: LLMSimulator
    ) -> None:
        """A stream request that fails is an error span and the error is raised unchanged."""
        sim.fail_next(1, status=429)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        (span,) = llm_spans(recorded)
        assert span.error_type == "RateLimitError"


class TestInstrumentation:
    def test_uninstrument_stops_recording(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        """After uninstrument_openai the client is original again and nothing is recorded."""
        llmpulse.uninstrument_openai()
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        assert llm_spans(recorded) == []
        assert llmpulse.instrument_openai() is True

    def test_instrumenting_twice_records_once(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        """Calling instrument_openai again does not double-wrap."""
        llmpulse.instrument_openai()
        llmpulse.instrument_openai()
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        assert len(llm_spans(recorded)) == 1

    def test_disabled_client_records_nothing(self, client: openai.OpenAI) -> None:
        """With recording disabled the call passes straight through."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, enabled=False)
        llmpulse.instrument_openai()
        assert client.chat.completions.create(model="gpt-4o-mini", messages=USER).choices
        assert exporter.records == []


class TestRawResponses:
    def test_with_raw_response(self, recorded: InMemoryExporter, client: openai.OpenAI) -> None:
        """with_raw_response calls are recorded with their usage; the caller parses the same object."""
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER)
        completion = raw.parse()
        (span,) = llm_spans(recorded)
        assert span.total_tokens == completion.usage.total_tokens

    def test_with_raw_response_stream(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        """A raw streamed response is observed through the stream the caller parses from it."""
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=USER, stream=True
        )
        chunks = list(raw.parse())
        (span,) = llm_spans(recorded)
        assert span.attributes["llmpulse.stream.chunks"] == len(chunks) > 0


class TestUsing:
    def test_prompt_version_and_attributes_apply_inside_the_block(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        """llm calls recorded inside llmpulse.using() carry its prompt version, user and attributes."""
        with llmpulse.using(prompt_version="answer-v3", user_id="u-1", team="support"):
            with llmpulse.using(prompt_version="answer-v4"):
                client.chat.completions.create(model="gpt-4o-mini", messages=USER)
            client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        inner, outer, after = llm_spans(recorded)
        assert (inner.prompt_version, outer.prompt_version, after.prompt_version) == (
            "answer-v4",
            "answer-v3",
            None,
        )
        assert inner.user_id == outer.user_id == "u-1" and after.user_id is None
        assert inner.attributes["team"] == "support" and "team" not in after.attributes

    def test_spans_are_dated_by_the_client_clock(self, client: openai.OpenAI) -> None:
        """The instrumentation dates llm spans with init(clock=...), like every other span."""
        from llmpulse.testing import FakeClock

        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, clock=FakeClock(1_000_000.0))
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        (span,) = llm_spans(exporter)
        assert span.start_time == 1_000_000.0
        assert span.end_time >= span.start_time
