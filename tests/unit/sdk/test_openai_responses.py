"""OpenAI's Responses API (responses.create / .parse / .stream) recorded against the real openai
client and the project's simulator."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pydantic
import pytest

import llmpulse
from llmpulse.pricing import default_price_table
from llmpulse.schema import USAGE_ESTIMATED_ATTRIBUTE, Span
from llmpulse.simulator import Faults, LLMSimulator, SimulatorConfig
from llmpulse.testing import InMemoryExporter
from tests.threaded_http import serving_in_thread
from tests.unit.sdk.conftest import llm_spans

pytestmark = pytest.mark.instrument("openai")

QUESTION = "Why do retries need jitter?"
_RESOURCE = "openai.resources.responses.responses"  # the module openai loads on first use
LONG_INSTRUCTIONS = "You are a careful assistant. " * 400  # > 1024 tokens: cached when repeated
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="module")
def sim_seed() -> int:
    """This module's simulator seed (the shared simulator fixture is in tests/conftest.py)."""
    return 5


def _cost(span: Span) -> float | None:
    return default_price_table().cost(
        span.model, span.input_tokens, span.output_tokens, span.cache_read_tokens,
        span.cache_write_tokens, span.reasoning_tokens,
    )  # fmt: skip


@contextmanager
def _answering(content_type: str, body: bytes) -> Iterator[str]:
    """A real HTTP server on a free port answering every POST with ``body``: for what the
    simulator does not serve (a failed response, an error event, a background response).
    Yields its base URL for the openai client."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with serving_in_thread(server):
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"


def _response(status: str, **fields: object) -> dict[str, object]:
    """A response object as the API sends it, with ``status`` and ``fields`` over the rest."""
    return {
        "id": "resp_1", "object": "response", "created_at": 1, "model": "gpt-4o-mini",
        "status": status, "output": [], "parallel_tool_calls": True, "tool_choice": "auto",
        "tools": [], "error": None, "incomplete_details": None, "usage": None, **fields,
    }  # fmt: skip


def _sse(*events: dict[str, object]) -> bytes:
    return b"".join(
        f"event: {e['type']}\ndata: {json.dumps({**e, 'sequence_number': n})}\n\n".encode()
        for n, e in enumerate(events)
    )


_USAGE = {
    "input_tokens": 12, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 3,
    "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15,
}  # fmt: skip
_FAILURE = {"code": "server_error", "message": "The model failed mid-answer."}
_OPENED = (
    {"type": "response.created", "response": _response("in_progress")},
    {"type": "response.output_item.added", "output_index": 0,
     "item": {"id": "msg_1", "type": "message", "role": "assistant", "status": "in_progress",
              "content": []}},
    {"type": "response.content_part.added", "item_id": "msg_1", "output_index": 0,
     "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}},
    {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
     "content_index": 0, "delta": "Partial answer", "logprobs": []},
)  # fmt: skip


def _deltas(events: list[object]) -> str:
    return "".join(
        e.delta for e in events if getattr(e, "type", None) == "response.output_text.delta"
    )


class TestCreate:
    def test_plain_call(self, recorded: InMemoryExporter, client: openai.OpenAI) -> None:
        """A responses.create call is an llm span with the request, the usage and the answer."""
        response = client.responses.create(
            model="gpt-4o-mini", input=QUESTION, temperature=0.2, max_output_tokens=400,
            user="u-42", metadata={"session_id": "s-7"},
        )  # fmt: skip
        (span,) = llm_spans(recorded)
        assert (span.kind, span.name, span.model, span.provider, span.status) == (
            "llm", "chat gpt-4o-mini", "gpt-4o-mini", "openai", "ok",
        )  # fmt: skip
        assert (span.user_id, span.session_id, span.error_type) == ("u-42", "s-7", None)
        usage = response.usage
        assert (span.input_tokens, span.output_tokens, span.total_tokens) == (
            usage.input_tokens, usage.output_tokens, usage.total_tokens,
        )  # fmt: skip
        assert (span.cache_read_tokens, span.reasoning_tokens) == (0, 0)
        assert span.cost_usd == _cost(span) and span.cost_usd > 0
        assert span.latency_ms > 0 and span.ttft_ms is None
        assert json.loads(span.input) == [{"role": "user", "content": QUESTION}]
        assert span.output == response.output_text and span.output
        attributes = span.attributes
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "openai"
        assert attributes["llmpulse.openai.api"] == "responses"
        assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
        assert attributes["gen_ai.request.temperature"] == 0.2
        assert attributes["gen_ai.request.max_tokens"] == 400
        assert attributes["gen_ai.response.id"] == response.id
        assert attributes["gen_ai.response.model"] == response.model
        assert attributes["gen_ai.response.finish_reasons"] == ["completed"]
        assert attributes["server.address"] == "127.0.0.1"
        assert "llmpulse.stream" not in attributes

    def test_message_list_with_instructions(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        """The prompt is the instructions as a system message, then the input items as given."""
        items = [
            {"role": "user", "content": "Hello."},
            {"role": "assistant", "content": "Hi, how can I help?"},
            {"role": "user", "content": [{"type": "input_text", "text": QUESTION}]},
        ]
        response = client.responses.create(
            model="gpt-4o", instructions="Be brief.", input=items, previous_response_id="resp_1",
            reasoning={"effort": "low"}, conversation="conv_9",
        )  # fmt: skip
        (span,) = llm_spans(recorded)
        assert json.loads(span.input) == [{"role": "system", "content": "Be brief."}, *items]
        assert span.input_tokens == response.usage.input_tokens
        assert span.attributes["llmpulse.openai.previous_response_id"] == "resp_1"
        assert span.attributes["gen_ai.request.reasoning_effort"] == "low"
        assert span.attributes["gen_ai.conversation.id"] == "conv_9"

    def test_cached_and_reasoning_tokens(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        """input_tokens_details.cached_tokens and output_tokens_details.reasoning_tokens fill
        their columns, and the cost prices them at their own rates."""
        client.responses.create(model="o3-mini", instructions=LONG_INSTRUCTIONS, input=QUESTION)
        second = client.responses.create(
            model="o3-mini", instructions=LONG_INSTRUCTIONS, input="Another question."
        )
        first_span, second_span = llm_spans(recorded)
        assert first_span.cache_read_tokens == 0
        assert second_span.cache_read_tokens == second.usage.input_tokens_details.cached_tokens > 0
        reasoning = second.usage.output_tokens_details.reasoning_tokens
        assert second_span.reasoning_tokens == reasoning > 0
        assert second_span.output_tokens == second.usage.output_tokens > reasoning
        assert second_span.cost_usd == _cost(second_span)
        uncached = default_price_table().cost("o3-mini", second.usage.input_tokens, 0)
        assert uncached is not None
        assert second_span.cost_usd < uncached + _output_cost(second.usage.output_tokens)

    def test_incomplete_answer(self, recorded: InMemoryExporter, client: openai.OpenAI) -> None:
        """An answer cut by max_output_tokens is ok, its finish reason the incomplete reason."""
        client.responses.create(model="gpt-4o-mini", input=QUESTION, max_output_tokens=16)
        (span,) = llm_spans(recorded)
        assert span.status == "ok" and span.output_tokens == 16
        assert span.attributes["gen_ai.response.finish_reasons"] == ["max_output_tokens"]

    def test_tool_call(self, recorded: InMemoryExporter, client: openai.OpenAI) -> None:
        """An answer that only calls a function records the call as its output."""
        response = client.responses.create(model="gpt-4o", input="Weather?", tools=[WEATHER])
        (call,) = response.output
        (span,) = llm_spans(recorded)
        (recorded_call,) = json.loads(span.output)
        assert (recorded_call["type"], recorded_call["name"], recorded_call["call_id"]) == (
            "function_call", "get_weather", call.call_id,
        )  # fmt: skip
        assert json.loads(recorded_call["arguments"]) == json.loads(call.arguments)
        assert span.output_tokens == response.usage.output_tokens

    def test_tool_loop(self, recorded: InMemoryExporter, client: openai.OpenAI) -> None:
        """The next turn's input holds the response's own output items (openai objects) and
        the tool's output: all recorded as the prompt, the answer as text."""
        history: list[object] = [{"role": "user", "content": "Weather?"}]
        first = client.responses.create(model="gpt-4o", input=history, tools=[WEATHER])
        result = {
            "type": "function_call_output",
            "call_id": first.output[0].call_id,
            "output": "18C",
        }
        history += [*first.output, result]
        second = client.responses.create(model="gpt-4o", input=history, tools=[WEATHER])
        _, span = llm_spans(recorded)
        prompt = json.loads(span.input)
        kinds = [item.get("type") for item in prompt]
        assert kinds == [None, "function_call", "function_call_output"]
        assert prompt[1]["call_id"] == first.output[0].call_id
        assert span.output == second.output_text and span.output

    def test_parse_is_one_span(
        self, recorded: InMemoryExporter, client: openai.OpenAI, sim: LLMSimulator
    ) -> None:
        """responses.parse posts by itself (not through create): recorded once, as create is."""

        class Forecast(pydantic.BaseModel):
            city: str

        parsed = client.responses.parse(model="gpt-4o-mini", input=QUESTION, text_format=Forecast)
        (span,) = llm_spans(recorded)
        assert len(sim.requests) == 1 and isinstance(parsed.output_parsed, Forecast)
        assert json.loads(span.output) == parsed.output_parsed.model_dump()
        assert span.output_tokens == parsed.usage.output_tokens

    def test_redaction(self, client: openai.OpenAI) -> None:
        """With redact=True neither the prompt nor the answer is kept, streamed or not; tokens are."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=("openai",), redact=True)
        client.responses.create(model="gpt-4o-mini", instructions="Be brief.", input=QUESTION)
        events = list(client.responses.create(model="gpt-4o-mini", input=QUESTION, stream=True))
        plain, streamed = llm_spans(exporter)
        for span in (plain, streamed):
            assert span.input is None and span.output is None and span.output_tokens
        assert streamed.output_tokens == events[-1].response.usage.output_tokens

    def test_long_output_is_cut(self, client: openai.OpenAI) -> None:
        """The answer is bounded by max_content_chars, as a chat answer is."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=("openai",), max_content_chars=20)
        response = client.responses.create(model="gpt-4o-mini", input=QUESTION)
        (span,) = llm_spans(exporter)
        assert len(response.output_text) > 20 and span.output.startswith(response.output_text[:20])
        assert len(span.output) < len(response.output_text)


def _output_cost(tokens: int) -> float:
    cost = default_price_table().cost("o3-mini", 0, tokens)
    assert cost is not None
    return cost


class TestParents:
    def test_nested_under_the_observed_function(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        """A call inside an observed function is that function's child."""

        @llmpulse.observe("answer")
        def answer() -> str:
            return client.responses.create(model="gpt-4o", input=QUESTION).output_text

        answer()
        assert llmpulse.flush(10)
        outer = next(s for s in recorded.spans if s.name == "answer")
        (llm,) = llm_spans(recorded)
        assert (llm.parent_id, llm.trace_id) == (outer.span_id, outer.trace_id)

    def test_async_tasks_keep_their_own_parents(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """Concurrent async calls (plain and streamed) nest under the span of their own task."""

        async def main() -> None:
            async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as c:

                async def one(i: int) -> None:
                    with llmpulse.span(f"task-{i}"):
                        if i % 2:
                            stream = await c.responses.create(
                                model="gpt-4o-mini", input=QUESTION, stream=True
                            )
                            async for _ in stream:
                                await asyncio.sleep(0)
                        else:
                            await c.responses.create(model="gpt-4o-mini", input=QUESTION)

                await asyncio.gather(*(one(i) for i in range(4)))

        asyncio.run(main())
        assert llmpulse.flush(10)
        tasks = {s.span_id: s for s in recorded.spans if s.name.startswith("task-")}
        spans = llm_spans(recorded)
        assert len(spans) == 4 and {s.parent_id for s in spans} == set(tasks)
        for span in spans:
            parent = tasks[span.parent_id]
            assert span.trace_id == parent.trace_id
            streamed = parent.name in ("task-1", "task-3")
            assert bool(span.attributes.get("llmpulse.stream")) == streamed

    def test_threads(self, recorded: InMemoryExporter, client: openai.OpenAI) -> None:
        """A call in a thread run with the caller's context nests under the caller's span; a
        stream opened under a span and read in another thread stays that span's child."""
        with llmpulse.span("outer") as outer:
            context = contextvars.copy_context()
            with ThreadPoolExecutor(1) as pool:
                pool.submit(
                    context.run, client.responses.create, model="gpt-4o-mini", input=QUESTION
                ).result()
            stream = client.responses.create(model="gpt-4o-mini", input=QUESTION, stream=True)
        reader = threading.Thread(target=lambda: list(stream))
        reader.start()
        reader.join()
        spans = llm_spans(recorded)
        assert len(spans) == 2
        assert all((s.parent_id, s.trace_id) == (outer.span_id, outer.trace_id) for s in spans)

    def test_not_counted_twice_under_langchain(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """ChatOpenAI on the Responses API is recorded by the LangChain handler alone: the
        client call under its open llm span is not a second llm span."""
        pytest.importorskip("langchain_openai", reason="langchain-openai is not installed")
        from langchain_openai import ChatOpenAI

        from llmpulse.sdk.instrumentation.langchain import CallbackHandler

        chat = ChatOpenAI(
            model="gpt-4o-mini", base_url=sim.base_url, api_key="sim", max_retries=0,
            use_responses_api=True,
        )  # fmt: skip
        chat.invoke(QUESTION, config={"callbacks": [CallbackHandler()]})
        (span,) = llm_spans(recorded)
        assert len(sim.requests) == 1 and sim.requests[0].path == "/v1/responses"
        assert "llmpulse.openai.api" not in span.attributes  # the handler's span, not the client's


class TestStreaming:
    def test_stream(
        self, recorded: InMemoryExporter, client: openai.OpenAI, sim: LLMSimulator
    ) -> None:
        """Events pass untouched; usage comes from response.completed, ttft from the first delta."""
        sim.set_faults(Faults(stream_chunk_delay_ms=1.0))
        stream = client.responses.create(model="gpt-4o-mini", input=QUESTION, stream=True)
        assert isinstance(stream, openai.Stream)
        events = list(stream)
        final = events[-1].response
        (span,) = llm_spans(recorded)
        assert events[-1].type == "response.completed" and span.output == _deltas(events)
        assert (span.input_tokens, span.output_tokens) == (
            final.usage.input_tokens, final.usage.output_tokens,
        )  # fmt: skip
        assert span.cost_usd == _cost(span) and USAGE_ESTIMATED_ATTRIBUTE not in span.attributes
        assert span.ttft_ms is not None and 0 < span.ttft_ms <= span.latency_ms
        assert span.attributes["llmpulse.tokens_per_second"] > 0
        assert span.attributes["llmpulse.stream"] is True
        assert span.attributes["llmpulse.stream.chunks"] == len(events)
        assert span.attributes["gen_ai.response.id"] == final.id
        assert "llmpulse.stream.closed_early" not in span.attributes

    def test_stream_helper(
        self, recorded: InMemoryExporter, client: openai.OpenAI, sim: LLMSimulator
    ) -> None:
        """responses.stream() goes through create(stream=True): one span, with the usage."""
        with client.responses.stream(model="gpt-4o-mini", input=QUESTION) as stream:
            text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
            final = stream.get_final_response()
        (span,) = llm_spans(recorded)
        assert len(sim.requests) == 1 and span.output == text == final.output_text
        assert span.output_tokens == final.usage.output_tokens and span.ttft_ms is not None

    def test_stream_helper_left_early(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        """Leaving the helper's with block before the end ends the span there and then (the
        helper closes the HTTP response, not openai's Stream), marked closed early, estimated."""
        with client.responses.stream(model="gpt-4o-mini", input=QUESTION) as stream:
            first = next(e for e in stream if e.type == "response.output_text.delta")
        (span,) = llm_spans(recorded)  # before the helper is garbage collected
        assert span.attributes["llmpulse.stream.closed_early"] is True and span.status == "ok"
        assert span.output == first.delta
        assert span.attributes[USAGE_ESTIMATED_ATTRIBUTE] == "chars/4"
        assert span.output_tokens == -(-len(first.delta) // 4)
        del stream

    def test_stream_closed_early(self, recorded: InMemoryExporter, client: openai.OpenAI) -> None:
        """Closing a create(stream=True) stream before its end ends the span, marked closed early."""
        with client.responses.create(model="gpt-4o-mini", input=QUESTION, stream=True) as stream:
            next(iter(stream))
        (span,) = llm_spans(recorded)
        assert span.attributes["llmpulse.stream.closed_early"] is True
        assert span.attributes["llmpulse.stream.chunks"] == 1

    def test_stream_dropped_unread(self, recorded: InMemoryExporter, client: openai.OpenAI) -> None:
        """A stream nobody reads is recorded once it is garbage collected."""
        client.responses.create(model="gpt-4o-mini", input=QUESTION, stream=True)
        gc.collect()
        (span,) = llm_spans(recorded)
        assert span.attributes["llmpulse.stream.chunks"] == 0
        assert span.attributes["llmpulse.stream.closed_early"] is True

    def test_stream_cut_by_the_server(self) -> None:
        """A stream the server cuts before response.completed still ends its span, marked
        truncated, its tokens estimated from the text that arrived."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=("openai",))
        slow = SimulatorConfig(faults=Faults(stream_chunk_delay_ms=20.0))
        with (
            LLMSimulator(slow) as sim,
            openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as client,
        ):
            stream = client.responses.create(model="gpt-4o-mini", input=QUESTION, stream=True)
            iterator = iter(stream)
            first = next(e for e in iterator if e.type == "response.output_text.delta")
            sim.stop()
            rest = list(iterator)
        assert all(e.type != "response.completed" for e in rest)
        (span,) = llm_spans(exporter)
        assert span.attributes["llmpulse.stream.truncated"] is True and span.status == "ok"
        assert span.output == first.delta + _deltas(rest)
        assert span.attributes[USAGE_ESTIMATED_ATTRIBUTE] == "chars/4"

    def test_async_stream_and_helper(self, recorded: InMemoryExporter, sim: LLMSimulator) -> None:
        """Async streams, created or through the helper, are observed the same way."""

        async def main() -> tuple[str, str]:
            async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as c:
                stream = await c.responses.create(model="gpt-4o", input=QUESTION, stream=True)
                assert isinstance(stream, openai.AsyncStream)
                created = _deltas([event async for event in stream])
                async with c.responses.stream(model="gpt-4o", input=QUESTION) as helper:
                    final = await helper.get_final_response()
                async with c.responses.stream(model="gpt-4o", input=QUESTION) as left:
                    async for event in left:
                        if event.type == "response.output_text.delta":
                            break
                return created, final.output_text

        created, helped = asyncio.run(main())
        first, second, third = llm_spans(recorded)
        assert (first.output, second.output) == (created, helped)
        assert first.ttft_ms is not None and second.output_tokens
        assert USAGE_ESTIMATED_ATTRIBUTE not in first.attributes
        assert third.attributes["llmpulse.stream.closed_early"] is True

    def test_async_call(self, recorded: InMemoryExporter, sim: LLMSimulator) -> None:
        """An AsyncOpenAI responses.create is recorded as the sync one is."""

        async def main() -> openai.types.responses.Response:
            async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as c:
                return await c.responses.create(model="gpt-4o-mini", input=QUESTION)

        response = asyncio.run(main())
        (span,) = llm_spans(recorded)
        assert span.output == response.output_text
        assert span.total_tokens == response.usage.total_tokens


class TestErrors:
    @pytest.mark.parametrize(
        ("status", "error", "stream"),
        [
            (429, openai.RateLimitError, False),
            (500, openai.InternalServerError, False),
            (429, openai.RateLimitError, True),
            (503, openai.InternalServerError, True),
        ],
    )
    def test_errors_are_recorded_and_raised_unchanged(
        self, recorded: InMemoryExporter, client: openai.OpenAI, sim: LLMSimulator,
        status: int, error: type, stream: bool,
    ) -> None:  # fmt: skip
        """The openai exception reaches the caller as raised; the span is an error naming it."""
        sim.fail_next(1, status=status)
        with pytest.raises(error) as info:
            client.responses.create(model="gpt-4o-mini", input=QUESTION, stream=stream)
        assert type(info.value) is error
        (span,) = llm_spans(recorded)
        assert (span.status, span.error_type) == ("error", error.__name__)
        assert span.error_message == str(info.value)
        assert span.attributes["http.response.status_code"] == status
        assert span.attributes["error.type"] == error.__name__
        assert span.output_tokens is None and span.cost_usd is None

    def test_async_error(self, recorded: InMemoryExporter, sim: LLMSimulator) -> None:
        """An async call's error is recorded and raised unchanged too."""
        sim.fail_next(1, status=429)

        async def main() -> None:
            async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as c:
                await c.responses.create(model="gpt-4o-mini", input=QUESTION)

        with pytest.raises(openai.RateLimitError):
            asyncio.run(main())
        (span,) = llm_spans(recorded)
        assert span.error_type == "RateLimitError"


class TestFailedResponses:
    def test_stream_ending_with_response_failed(self, recorded: InMemoryExporter) -> None:
        """A stream whose last event is response.failed is an error span named by the error
        code, with that response's usage and the text that arrived."""
        failed = _response("failed", error=_FAILURE, usage=_USAGE)
        body = _sse(*_OPENED, {"type": "response.failed", "response": failed})
        with (
            _answering("text/event-stream", body) as url,
            openai.OpenAI(base_url=url, api_key="k", max_retries=0) as client,
        ):
            events = list(client.responses.create(model="gpt-4o-mini", input="Hi", stream=True))
        assert events[-1].type == "response.failed"  # passed through as openai parsed it
        (span,) = llm_spans(recorded)
        assert (span.status, span.error_type, span.error_message) == (
            "error", "server_error", "The model failed mid-answer.",
        )  # fmt: skip
        assert (span.input_tokens, span.output_tokens) == (12, 3)
        assert span.output == "Partial answer" and span.ttft_ms is not None
        assert span.attributes["gen_ai.response.finish_reasons"] == ["failed"]
        assert "llmpulse.stream.truncated" not in span.attributes

    def test_stream_with_an_error_event(self, recorded: InMemoryExporter) -> None:
        """An error event, then the end of the stream: an error span, its tokens estimated."""
        error = {"type": "error", "code": "rate_limit_exceeded", "message": "Slow down.",
                 "param": None}  # fmt: skip
        with (
            _answering("text/event-stream", _sse(*_OPENED, error)) as url,
            openai.OpenAI(base_url=url, api_key="k", max_retries=0) as client,
        ):
            list(client.responses.create(model="gpt-4o-mini", input="Hi", stream=True))
        (span,) = llm_spans(recorded)
        assert (span.status, span.error_type, span.error_message) == (
            "error", "rate_limit_exceeded", "Slow down.",
        )  # fmt: skip
        assert span.attributes["llmpulse.stream.truncated"] is True
        assert span.attributes[USAGE_ESTIMATED_ATTRIBUTE] == "chars/4"

    def test_failed_response(self, recorded: InMemoryExporter) -> None:
        """A non-streamed response whose status is failed is an error span."""
        body = json.dumps(_response("failed", error=_FAILURE, usage=_USAGE)).encode()
        with (
            _answering("application/json", body) as url,
            openai.OpenAI(base_url=url, api_key="k", max_retries=0) as client,
        ):
            assert client.responses.create(model="gpt-4o-mini", input="Hi").status == "failed"
        (span,) = llm_spans(recorded)
        assert (span.status, span.error_type, span.input_tokens) == ("error", "server_error", 12)

    def test_background_response(self, recorded: InMemoryExporter) -> None:
        """background=True returns a queued response: recorded, marked, with no tokens (none
        estimated: they are billed when it completes)."""
        body = json.dumps(_response("queued", background=True)).encode()
        with (
            _answering("application/json", body) as url,
            openai.OpenAI(base_url=url, api_key="k", max_retries=0) as client,
        ):
            client.responses.create(model="gpt-4o-mini", input=QUESTION, background=True)
        (span,) = llm_spans(recorded)
        assert span.status == "ok" and span.attributes["llmpulse.openai.background"] is True
        assert (span.input_tokens, span.output_tokens, span.cost_usd) == (None, None, None)
        assert USAGE_ESTIMATED_ATTRIBUTE not in span.attributes


class TestInstrumentation:
    def test_with_raw_response(self, recorded: InMemoryExporter, client: openai.OpenAI) -> None:
        """with_raw_response calls are recorded with their usage; the caller parses the same object."""
        raw = client.responses.with_raw_response.create(model="gpt-4o-mini", input=QUESTION)
        response = raw.parse()
        (span,) = llm_spans(recorded)
        assert span.total_tokens == response.usage.total_tokens
        assert span.output == response.output_text

    def test_uninstrument_restores_the_client(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        """After uninstrument_openai the Responses methods are openai's own and nothing is
        recorded; instrumenting again records each call once."""
        from openai.resources.responses import AsyncResponses, Responses

        llmpulse.uninstrument_openai()
        for method in (Responses.create, Responses.parse, AsyncResponses.create):
            assert method.__module__.startswith("openai.")
        for client_class in (openai.OpenAI, openai.AsyncOpenAI):
            assert vars(client_class)["responses"].func.__module__ == "openai._client"
        client.responses.create(model="gpt-4o-mini", input=QUESTION)
        assert llm_spans(recorded) == []
        assert llmpulse.instrument_openai() and llmpulse.instrument_openai()
        client.responses.create(model="gpt-4o-mini", input=QUESTION)
        assert len(llm_spans(recorded)) == 1

    def test_patched_on_first_use(self, sim: LLMSimulator) -> None:
        """init() does not load openai's Responses resource (~100 ms of imports); the first
        client.responses patches it, and that first call is recorded."""
        script = f"""
import sys, openai, llmpulse
from llmpulse.testing import InMemoryExporter
exporter = InMemoryExporter()
llmpulse.init(exporter=exporter)
assert "{_RESOURCE}" not in sys.modules
client = openai.OpenAI(base_url="{sim.base_url}", api_key="sim", max_retries=0)
client.responses.create(model="gpt-4o-mini", input="Hi")
openai.AsyncOpenAI(api_key="sim").responses
assert llmpulse.flush(10)
print([s.attributes["llmpulse.openai.api"] for s in exporter.spans])
"""
        run = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "['responses']"

    def test_a_recording_failure_never_reaches_the_caller(
        self, recorded: InMemoryExporter, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """When reading the response fails, the caller still gets its response and its events."""
        from llmpulse.sdk.instrumentation._openai_responses import ResponsesCall

        def broken(self: object, response: object) -> None:
            raise RuntimeError("boom")

        monkeypatch.setattr(ResponsesCall, "_read_response", broken)
        assert client.responses.create(model="gpt-4o-mini", input=QUESTION).output_text
        events = list(client.responses.create(model="gpt-4o-mini", input=QUESTION, stream=True))
        assert events[-1].type == "response.completed"
