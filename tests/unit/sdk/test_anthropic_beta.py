"""``client.beta.messages`` (create and stream, sync and async) against the real anthropic client
and the project's simulator: recorded as ``messages.create`` is, once per call, marked as a beta
call with the betas it asked for.

In the installed anthropic (2.16) ``beta.messages`` posts to ``/v1/messages?beta=true`` itself
and never goes through ``messages.create`` (nor the other way round), so a call is one request
and one span; the tests count both.
"""

from __future__ import annotations

import asyncio

import anthropic
import pytest

import llmpulse
from llmpulse.simulator import Faults, LLMSimulator
from llmpulse.testing import InMemoryExporter
from tests.unit.anthropic_requests import MODEL, SYSTEM, USER, WEATHER, sonnet_cost
from tests.unit.sdk.conftest import llm_spans
from tests.unit.sdk.test_anthropic import (
    ERRORS,
    FIELD_BY_FIELD,
    _async_client,
    _check_cache_pair,
    _check_error_span,
    _check_message_span,
    _check_streamed_span,
    _check_tool_stream_span,
    _raise_unchanged,
)

pytestmark = pytest.mark.instrument("anthropic")

BETA, BETAS = "llmpulse.anthropic.beta", "llmpulse.anthropic.betas"
CACHING, TOOLS = "prompt-caching-2024-07-31", "token-efficient-tools-2025-02-19"


@pytest.fixture(scope="module")
def sim_seed() -> int:
    """This module's simulator seed (the shared simulator fixture is in tests/conftest.py)."""
    return 11


class TestCreate:
    def test_beta_message_is_recorded_field_by_field(
        self, recorded: InMemoryExporter, claude: anthropic.Anthropic, sim: LLMSimulator
    ) -> None:
        """A beta message is one llm span, as a message is: model, provider, tokens, cost,
        texts, request and response attributes, plus the beta mark and the betas asked for."""
        message = claude.beta.messages.create(**FIELD_BY_FIELD, betas=[CACHING, TOOLS])
        (span,) = llm_spans(recorded)
        assert len(sim.requests) == 1
        _check_message_span(span, message)
        assert (span.attributes[BETA], span.attributes[BETAS]) == (True, [CACHING, TOOLS])

    def test_cache_tokens_are_added_back_and_priced(
        self, recorded: InMemoryExporter, claude: anthropic.Anthropic
    ) -> None:
        """The prompt-caching beta: the first call writes the cache, the second reads it; each
        span's input is uncached + cache, and each bucket is priced at its own rate."""
        for _ in range(2):
            last = claude.beta.messages.create(
                model=MODEL, max_tokens=40, system=SYSTEM, messages=USER, betas=[CACHING]
            )
        write, read = llm_spans(recorded)
        _check_cache_pair(write, read, last)
        assert all(s.attributes[BETAS] == [CACHING] for s in (write, read))

    def test_betas_from_the_header_and_none(
        self, recorded: InMemoryExporter, claude: anthropic.Anthropic, sim: LLMSimulator
    ) -> None:
        """An ``anthropic-beta`` extra header is what is sent (it wins over ``betas``); a beta
        call without betas is still marked beta; a plain message is not marked."""
        claude.beta.messages.create(
            model=MODEL, max_tokens=5, messages=USER, betas=[TOOLS],
            extra_headers={"anthropic-beta": f"{CACHING}, {TOOLS}"},
        )  # fmt: skip
        claude.beta.messages.create(model=MODEL, max_tokens=5, messages=USER)
        claude.messages.create(model=MODEL, max_tokens=5, messages=USER)
        header, bare, plain = (s.attributes for s in llm_spans(recorded))
        assert (header[BETA], header[BETAS]) == (True, [CACHING, TOOLS])
        assert bare[BETA] is True and BETAS not in bare
        assert BETA not in plain and BETAS not in plain
        assert len(sim.requests) == 3


class TestStream:
    def test_create_stream_and_stream_helper(
        self, recorded: InMemoryExporter, claude: anthropic.Anthropic, sim: LLMSimulator
    ) -> None:
        """``create(stream=True)`` and the ``stream()`` helper are one span each, with the final
        (cumulative, not summed) usage, time to first token, the answer and the beta marks."""
        sim.set_faults(Faults(stream_chunk_delay_ms=1.0))
        claude.beta.messages.create(model=MODEL, max_tokens=20, system=SYSTEM, messages=USER)
        events = list(claude.beta.messages.create(
            model=MODEL, max_tokens=60, system=SYSTEM, messages=USER, stream=True, betas=[CACHING],
        ))  # fmt: skip
        with claude.beta.messages.stream(
            model=MODEL, max_tokens=300, tools=[WEATHER], messages=USER, betas=[TOOLS]
        ) as s:
            final = s.get_final_message()
        _, streamed, helper = llm_spans(recorded)
        assert len(sim.requests) == 3
        assert events[-2].usage.cache_read_input_tokens > 1024
        _check_streamed_span(streamed, events)
        assert (streamed.attributes[BETA], streamed.attributes[BETAS]) == (True, [CACHING])
        _check_tool_stream_span(helper, final)
        assert (helper.attributes[BETA], helper.attributes[BETAS]) == (True, [TOOLS])

    def test_async_create_stream_and_helper(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """AsyncAnthropic's beta create, create(stream=True) and stream() are one span each,
        each under the observed function that made it."""

        @llmpulse.observe("ask")
        async def ask(c: anthropic.AsyncAnthropic, how: str) -> object:
            kwargs = {"model": MODEL, "max_tokens": 40, "messages": USER, "betas": [CACHING]}
            if how == "create":
                return await c.beta.messages.create(**kwargs)
            if how == "stream=True":
                stream = await c.beta.messages.create(**kwargs, stream=True)
                return [event async for event in stream]
            async with c.beta.messages.stream(**kwargs) as s:
                return await s.get_final_message()

        async def main() -> list[object]:
            async with _async_client(sim) as c:
                return [await ask(c, how) for how in ("create", "stream=True", "stream()")]

        message, events, final = asyncio.run(main())
        spans = llm_spans(recorded)
        asks = [s.span_id for s in recorded.spans if s.name == "ask"]
        assert [s.parent_id for s in spans] == asks and len(sim.requests) == 3
        for span in spans:
            assert (span.model, span.status, span.output_tokens) == (MODEL, "ok", 40)
            assert (span.attributes[BETA], span.attributes[BETAS]) == (True, [CACHING])
            assert span.cost_usd == pytest.approx(sonnet_cost(span.input_tokens, 0, 0, 40))
        created, streamed, helper = spans
        assert created.input_tokens == message.usage.input_tokens and created.ttft_ms is None
        assert streamed.input_tokens == events[0].message.usage.input_tokens
        assert helper.input_tokens == final.usage.input_tokens
        assert streamed.ttft_ms > 0 and helper.ttft_ms > 0
        assert helper.output == final.content[0].text


class TestErrors:
    @ERRORS
    def test_errors_are_recorded_and_raised_unchanged(
        self, recorded: InMemoryExporter, claude: anthropic.Anthropic, sim: LLMSimulator,
        kind: str, error: type, status: int,
    ) -> None:  # fmt: skip
        """The anthropic exception reaches the caller as anthropic raised it, from create,
        create(stream=True) and stream(); each span names it and is still marked beta."""
        _raise_unchanged(claude.beta.messages.create, sim, kind, error, betas=[CACHING])
        sim.fail_next(1, kind=kind)
        with (
            pytest.raises(error),
            claude.beta.messages.stream(model=MODEL, max_tokens=20, messages=USER, betas=[CACHING]),
        ):
            pass
        spans = llm_spans(recorded)
        assert len(spans) == 3
        for span in spans:
            _check_error_span(span, error, status)
            assert (span.attributes[BETA], span.attributes[BETAS]) == (True, [CACHING])


class TestInstrumentation:
    def test_uninstrument_and_twice(
        self, recorded: InMemoryExporter, claude: anthropic.Anthropic, sim: LLMSimulator
    ) -> None:
        """Instrumenting twice records a beta call once; after uninstrument_anthropic no beta
        call (create or stream, sync or async) is recorded."""
        assert llmpulse.instrument_anthropic() is True
        claude.beta.messages.create(model=MODEL, max_tokens=5, messages=USER)
        with claude.beta.messages.stream(model=MODEL, max_tokens=5, messages=USER) as s:
            s.get_final_message()
        assert len(llm_spans(recorded)) == 2
        llmpulse.uninstrument_anthropic()
        claude.beta.messages.create(model=MODEL, max_tokens=5, messages=USER)
        with claude.beta.messages.stream(model=MODEL, max_tokens=5, messages=USER) as s:
            s.get_final_message()

        async def main() -> None:
            async with _async_client(sim) as c:
                await c.beta.messages.create(model=MODEL, max_tokens=5, messages=USER)
                async with c.beta.messages.stream(model=MODEL, max_tokens=5, messages=USER) as s:
                    await s.get_final_message()

        asyncio.run(main())
        assert len(llm_spans(recorded)) == 2 and len(sim.requests) == 6
