"""LiteLLM instrumentation against the real litellm package pointed at the project's simulator.

Covers the LiteLLM rows of the workflows notes: exactly one record per call for sync, async,
stream and async stream, with nothing arriving late (24); the explicit Anthropic cache fields
win over prompt_tokens_details (25); and no double counting with the openai instrumentation
underneath (section 4).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import openai
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network: the bundled map
litellm = pytest.importorskip("litellm")

import llmpulse  # noqa: E402
from llmpulse.schema import Span  # noqa: E402
from llmpulse.sdk.instrumentation.litellm import usage_from_litellm  # noqa: E402
from llmpulse.simulator import LLMSimulator  # noqa: E402
from llmpulse.testing import InMemoryExporter  # noqa: E402
from tests.unit.anthropic_requests import SYSTEM, USER, sonnet_cost  # noqa: E402
from tests.unit.sdk.conftest import llm_spans  # noqa: E402

# What every litellm test module is marked with (test_litellm_text and test_litellm_embeddings
# too). litellm builds pydantic adapters lazily, on its first calls; pydantic warns about one of
# its TypedDicts. Third-party noise, not ours: ignored in these modules only. And the event loop
# LiteLLM's sync path leaves is closed after each module (the sdk conftest says why).
LITELLM_MARKS = [
    pytest.mark.filterwarnings("ignore:.*using the `ReadOnly` qualifier:UserWarning"),
    pytest.mark.filterwarnings(
        "ignore:Accessing the '.*' attribute on the instance:DeprecationWarning"
    ),
    pytest.mark.usefixtures("litellm_event_loop_closed"),
]
pytestmark = [pytest.mark.instrument("openai", "anthropic", "litellm"), *LITELLM_MARKS]


def _mini_cost(inp: int, out: int) -> float:  # gpt-4o-mini: $0.15 in, $0.60 out / 1M
    return (inp * 0.15 + out * 0.60) / 1e6


@pytest.fixture(scope="module")
def sim_seed() -> int:
    """This module's simulator seed (the shared simulator fixture is in tests/conftest.py)."""
    return 11


def _openai(sim: LLMSimulator, **kwargs: object) -> dict:
    return {"model": "openai/gpt-4o-mini", "api_base": sim.base_url, "api_key": "sim",
            "messages": USER, "max_retries": 0, **kwargs}  # fmt: skip


def _claude(sim: LLMSimulator, **kwargs: object) -> dict:
    return {"model": "anthropic/claude-sonnet-4-5", "api_base": sim.url, "api_key": "sim",
            "max_tokens": 60, "messages": USER, **kwargs}  # fmt: skip


def _run(coro: Any) -> Any:
    """``asyncio.run`` without replacing the thread's event loop: LiteLLM's sync path sets one
    (``get_event_loop``), and replacing it would leave that loop to the garbage collector,
    unclosed (a ResourceWarning in whichever test collects it). What is left running (LiteLLM's
    logging worker) is cancelled first, as ``asyncio.run`` does: a task of a closed loop,
    collected later, raises "Event loop is closed" in whichever test collects it."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        if left := asyncio.all_tasks(loop):
            loop.run_until_complete(_cancelled(left))
        loop.close()


async def _cancelled(tasks: set[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# The runs and checks below are shared with test_litellm_text: a text completion is recorded
# as a completion is. ``call`` / ``acall`` are LiteLLM's sync and async functions, ``args``
# the module's arguments for them (the simulator, then extra keyword arguments).


def _four_styles(call: Any, acall: Any, args: Any, sim: LLMSimulator, **first: Any) -> tuple:
    """The four call styles, in order: sync (with the ``first`` keyword arguments too), sync
    stream, async, async stream; the answers and the streams' chunks."""
    reply = call(**args(sim, **first))
    chunks = list(call(**args(sim, stream=True)))

    async def main() -> tuple:
        areply = await acall(**args(sim))
        stream = await acall(**args(sim, stream=True))
        return areply, [chunk async for chunk in stream]

    areply, achunks = _run(main())
    return reply, chunks, areply, achunks


def _check_mini_span(span: Span, record: Any) -> None:
    """An ok gpt-4o-mini span through LiteLLM matches the simulator's ``record`` of its call."""
    assert (span.model, span.provider, span.status) == ("gpt-4o-mini", "openai", "ok")
    assert (span.input_tokens, span.output_tokens) == (
        record.prompt_tokens,
        record.completion_tokens,
    )
    assert span.cost_usd == pytest.approx(
        _mini_cost(record.prompt_tokens, record.completion_tokens)
    )
    assert span.attributes["gen_ai.request.model"] == "openai/gpt-4o-mini"
    assert span.attributes["llmpulse.integration"] == "litellm"
    assert (span.ttft_ms is not None) == record.stream


def _check_usage_chunk_reaches_user(
    recorded: InMemoryExporter, sim: LLMSimulator, chunks: list
) -> None:
    """A stream whose caller set stream_options: the usage chunk reached them, and is recorded."""
    assert chunks[-1].usage.completion_tokens == sim.requests[0].completion_tokens
    (span,) = llm_spans(recorded)
    assert span.output_tokens == sim.requests[0].completion_tokens
    assert "llmpulse.stream.usage_requested" not in span.attributes


def _check_rate_limited(
    recorded: InMemoryExporter, sim: LLMSimulator, call: Any, acall: Any, args: Any
) -> list[Span]:
    """A sync call and an async streamed one, each answered 429: LiteLLM's exception reaches
    the caller, and each span names its class and status; the spans."""
    sim.fail_next(2, status=429)
    with pytest.raises(litellm.RateLimitError):
        call(**args(sim))

    async def main() -> None:
        await acall(**args(sim, stream=True))

    with pytest.raises(litellm.RateLimitError):
        _run(main())
    spans = llm_spans(recorded)
    assert len(spans) == 2
    for span in spans:
        assert (span.status, span.error_type, span.model) == (
            "error",
            "RateLimitError",
            "gpt-4o-mini",
        )
        assert span.attributes["http.response.status_code"] == 429
        assert span.input_tokens is None and span.cost_usd is None
    return spans


class TestOneRecordPerCall:
    def test_sync_async_stream_and_async_stream(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """Notes row 24: each of the four call styles is exactly one span, there once the call
        (or its stream) ended and the queue is flushed: none late, none twice, none from the
        openai client LiteLLM calls underneath."""
        _, chunks, _, achunks = _four_styles(litellm.completion, litellm.acompletion, _openai, sim)
        spans = llm_spans(recorded)
        assert len(spans) == 4 == len(sim.requests)
        assert all(c.choices for c in chunks + achunks)  # the usage chunk we asked for is ours
        for span, record in zip(spans, sim.requests, strict=True):
            _check_mini_span(span, record)
            assert "jitter" in span.input
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        assert spans[1].output == text and 0 < spans[1].ttft_ms < spans[1].latency_ms
        assert spans[1].attributes["llmpulse.stream.usage_requested"] is True

    def test_router_fallback_records_each_attempt_once(self, sim: LLMSimulator) -> None:
        """Notes row 24 (fallbacks logged twice): a Router whose primary fails and whose fallback
        answers is one error span for the primary and one ok span for the fallback, nothing more.
        In a child process: LiteLLM's Router leaves an event loop and sockets open at exit."""
        code = textwrap.dedent(
            f"""
            import json, warnings
            warnings.simplefilter("ignore")
            import litellm, llmpulse
            from llmpulse.testing import InMemoryExporter
            exporter = InMemoryExporter()
            llmpulse.init(exporter=exporter, instrument=("openai", "litellm"))
            params = {{"api_base": {sim.base_url!r}, "api_key": "sim", "max_retries": 0}}
            router = litellm.Router(
                model_list=[
                    {{"model_name": "primary", "litellm_params": {{"model": "openai/gpt-4o", **params}}}},
                    {{"model_name": "backup", "litellm_params": {{"model": "openai/gpt-4o-mini", **params}}}},
                ],
                fallbacks=[{{"primary": ["backup"]}}], num_retries=0,
            )
            reply = router.completion(model="primary", messages=[{{"role": "user", "content": "hi"}}])
            assert llmpulse.flush(10)
            spans = [[s.model, s.status, s.error_type, s.output_tokens] for s in exporter.spans]
            print(json.dumps({{"spans": spans, "output": reply.usage.completion_tokens}}))
            """
        )
        sim.fail_next(1, status=500, model="gpt-4o")
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=180
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert [r.status for r in sim.requests] == [500, 200]
        assert result["spans"] == [
            ["gpt-4o", "error", "InternalServerError", None],
            ["gpt-4o-mini", "ok", None, sim.requests[1].completion_tokens],
        ]
        assert result["output"] == sim.requests[1].completion_tokens

    def test_user_asking_for_usage_sees_the_usage_chunk(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """stream_options set by the user stand: the usage chunk reaches them, and is recorded."""
        chunks = list(
            litellm.completion(**_openai(sim, stream=True, stream_options={"include_usage": True}))
        )
        _check_usage_chunk_reaches_user(recorded, sim, chunks)

    def test_parented_to_the_observed_function(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """A completion inside an observed function is that function's child."""

        @llmpulse.observe("answer")
        def answer() -> str:
            return litellm.completion(**_openai(sim)).choices[0].message.content

        answer()
        (llm,) = llm_spans(recorded)
        outer = next(s for s in recorded.spans if s.name == "answer")
        assert (llm.parent_id, llm.trace_id) == (outer.span_id, outer.trace_id)


class TestAnthropicThroughLiteLLM:
    def test_cache_tokens_and_cost(self, recorded: InMemoryExporter, sim: LLMSimulator) -> None:
        """LiteLLM's prompt_tokens already include Anthropic's cache: input is not added to
        again, and the write, then the read, are priced at their own rates (also streamed)."""
        messages = [{"role": "system", "content": SYSTEM}, *USER]
        litellm.completion(**_claude(sim, messages=messages))
        list(litellm.completion(**_claude(sim, messages=messages, stream=True)))
        write_span, read_span = llm_spans(recorded)
        first, second = sim.requests
        cached = write_span.cache_write_tokens
        assert cached > 1024 and write_span.cache_read_tokens == 0
        assert (read_span.cache_read_tokens, read_span.cache_write_tokens) == (cached, 0)
        for span, record in ((write_span, first), (read_span, second)):
            assert (span.model, span.provider) == ("claude-sonnet-4-5", "anthropic")
            assert (span.input_tokens, span.output_tokens) == (
                record.prompt_tokens,
                record.completion_tokens,
            )
        uncached = first.prompt_tokens - cached
        assert write_span.cost_usd == pytest.approx(
            sonnet_cost(uncached, 0, cached, first.completion_tokens)
        )
        assert read_span.cost_usd == pytest.approx(
            sonnet_cost(uncached, cached, 0, second.completion_tokens)
        )
        assert read_span.ttft_ms > 0

    def test_explicit_cache_fields_win(self) -> None:
        """Notes row 25: cache_read_input_tokens set while prompt_tokens_details.cached_tokens
        is 0 (LiteLLM's Anthropic streams did that): the explicit field is used."""
        usage = litellm.Usage(
            prompt_tokens=1010, completion_tokens=5, total_tokens=1015,
            prompt_tokens_details={"cached_tokens": 0}, cache_read_input_tokens=1000,
            cache_creation_input_tokens=0,
        )  # fmt: skip
        assert usage_from_litellm(usage) == {
            "input_tokens": 1010, "output_tokens": 5, "cache_read_tokens": 1000, "cache_write_tokens": 0,
        }  # fmt: skip
        assert usage_from_litellm(None) == {} and usage_from_litellm("junk") == {}


class TestErrors:
    def test_error_is_recorded_and_raised_unchanged(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """LiteLLM's exception reaches the caller; the span names its class and status, sync and async."""
        _check_rate_limited(recorded, sim, litellm.completion, litellm.acompletion, _openai)


class TestInstrumentation:
    def test_under_an_open_llm_span_nothing_more_is_recorded(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """Under an open llm span (LangChain's ChatLiteLLM run) the call counts there, once."""
        with llmpulse.span("ChatLiteLLM", kind="llm"):
            litellm.completion(**_openai(sim))
        (span,) = llm_spans(recorded)
        assert span.name == "ChatLiteLLM"

    def test_openai_client_underneath_is_not_counted_twice(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """Notes section 4: a LiteLLM provider that calls the instrumented openai client (here a
        custom provider wrapping one) is one span, LiteLLM's, with the client's usage."""
        client = openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0)

        class OpenAIBacked(litellm.CustomLLM):  # type: ignore[misc]
            def completion(self, *args: object, **kwargs: object) -> object:
                reply = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
                return litellm.ModelResponse(**reply.model_dump())

        litellm.custom_provider_map = [{"provider": "inhouse", "custom_handler": OpenAIBacked()}]
        try:
            litellm.completion(model="inhouse/gpt-4o-mini", messages=USER)
        finally:
            litellm.custom_provider_map = []
            client.close()
        (span,) = llm_spans(recorded)
        (record,) = sim.requests
        assert (span.model, span.provider) == ("gpt-4o-mini", "inhouse")
        assert span.attributes["llmpulse.integration"] == "litellm"
        assert (span.input_tokens, span.output_tokens) == (
            record.prompt_tokens,
            record.completion_tokens,
        )

    def test_responses_api_underneath_is_not_counted_twice(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """The same for the openai client's Responses API: a provider calling
        client.responses.create, and LiteLLM's own openai/responses/ bridge, are one span each,
        LiteLLM's."""
        client = openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0)

        class ResponsesBacked(litellm.CustomLLM):  # type: ignore[misc]
            def completion(self, *args: object, **kwargs: object) -> object:
                reply = client.responses.create(model="gpt-4o-mini", input="Hi")
                return litellm.ModelResponse(
                    model="gpt-4o-mini",
                    choices=[{"message": {"role": "assistant", "content": reply.output_text}}],
                    usage={"prompt_tokens": reply.usage.input_tokens,
                           "completion_tokens": reply.usage.output_tokens},
                )  # fmt: skip

        litellm.custom_provider_map = [{"provider": "inhouse", "custom_handler": ResponsesBacked()}]
        try:
            litellm.completion(model="inhouse/gpt-4o-mini", messages=USER)
        finally:
            litellm.custom_provider_map = []
            client.close()
        litellm.completion(**_openai(sim, model="openai/responses/gpt-4o-mini"))
        spans = llm_spans(recorded)
        assert [r.path for r in sim.requests] == ["/v1/responses", "/v1/responses"]
        assert [s.attributes["llmpulse.integration"] for s in spans] == ["litellm", "litellm"]
        assert all("llmpulse.openai.api" not in s.attributes for s in spans)
        assert spans[0].output_tokens == sim.requests[0].completion_tokens

    def test_uninstrument(self, recorded: InMemoryExporter, sim: LLMSimulator) -> None:
        """After uninstrument_litellm LiteLLM is original again and its calls are not recorded."""
        llmpulse.uninstrument_litellm()
        assert not hasattr(litellm.completion, "__llmpulse_wrapped__")
        litellm.completion(**_openai(sim))
        assert llm_spans(recorded) == [] and len(sim.requests) == 1
