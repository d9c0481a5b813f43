"""litellm.text_completion / atext_completion against the real litellm package pointed at the
simulator.

In the installed litellm (1.110.2) ``text_completion`` turns the prompt into messages and calls
``completion`` by its name in ``litellm.main`` (not the wrapped ``litellm.completion``), and
``atext_completion`` runs ``text_completion`` the same way; for a chat model the request goes to
the simulator's chat endpoint through LiteLLM's openai client. So a call is one span, the text
completion's, and nothing from ``completion`` or the openai client underneath.
"""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network: the bundled map
litellm = pytest.importorskip("litellm")

import llmpulse  # noqa: E402
from llmpulse.simulator import LLMSimulator  # noqa: E402
from llmpulse.testing import InMemoryExporter  # noqa: E402
from tests.unit.sdk.conftest import llm_spans  # noqa: E402
from tests.unit.sdk.test_litellm import (  # noqa: E402
    LITELLM_MARKS,
    _check_mini_span,
    _check_rate_limited,
    _check_usage_chunk_reaches_user,
    _four_styles,
    _run,
)

pytestmark = [pytest.mark.instrument("openai", "litellm"), *LITELLM_MARKS]

PROMPT = "Why do retries need jitter?"


@pytest.fixture(scope="module")
def sim_seed() -> int:
    """This module's simulator seed (the shared simulator fixture is in tests/conftest.py)."""
    return 17


def _args(sim: LLMSimulator, **kwargs: object) -> dict:
    return {"model": "openai/gpt-4o-mini", "api_base": sim.base_url, "api_key": "sim",
            "prompt": PROMPT, "max_retries": 0, **kwargs}  # fmt: skip


class TestOneRecordPerCall:
    def test_sync_async_stream_and_async_stream(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """Each of the four call styles is exactly one llm span, field by field: the model and
        provider LiteLLM resolved, the simulator's tokens, the price table's cost, the prompt
        and the answer, and text_completion as the operation; none from completion or the
        openai client underneath."""
        reply, chunks, areply, achunks = _four_styles(
            litellm.text_completion, litellm.atext_completion, _args, sim,
            temperature=0.5, max_tokens=200,
        )  # fmt: skip
        spans = llm_spans(recorded)
        assert len(spans) == 4 == len(sim.requests)
        assert all(c.choices for c in chunks + achunks)  # the usage chunk we asked for is ours
        for span, record in zip(spans, sim.requests, strict=True):
            _check_mini_span(span, record)
            assert (span.kind, span.name) == ("llm", "text_completion gpt-4o-mini")
            assert span.total_tokens == record.prompt_tokens + record.completion_tokens
            assert span.attributes["gen_ai.operation.name"] == "text_completion"
            assert span.input == PROMPT
        plain, streamed, aplain, astreamed = spans
        assert plain.output == reply.choices[0].text and aplain.output == areply.choices[0].text
        assert plain.attributes["gen_ai.response.id"] == reply.id
        for span, reason in zip(
            spans,
            [reply.choices[0].finish_reason, chunks[-1].choices[0].finish_reason,
             areply.choices[0].finish_reason, achunks[-1].choices[0].finish_reason],
            strict=True,
        ):  # fmt: skip
            assert span.attributes["gen_ai.response.finish_reasons"] == [reason]
        assert (plain.attributes["gen_ai.request.temperature"],
                plain.attributes["gen_ai.request.max_tokens"]) == (0.5, 200)  # fmt: skip
        for span, got in ((streamed, chunks), (astreamed, achunks)):
            assert span.output == "".join(c.choices[0].text or "" for c in got)
            assert 0 < span.ttft_ms < span.latency_ms
            assert span.attributes["llmpulse.stream.usage_requested"] is True
            assert span.attributes["llmpulse.stream.chunks"] == len(got)

    def test_positional_prompt_and_model(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """text_completion(prompt, model): the first positional argument is the prompt, the
        second the model; a list of prompts is recorded as the list."""
        prompts = [PROMPT, "And backoff?"]
        litellm.text_completion(
            prompts, "openai/gpt-4o-mini", api_base=sim.base_url, api_key="sim", max_retries=0
        )
        (span,) = llm_spans(recorded)
        (record,) = sim.requests
        assert (span.name, span.model, span.input_tokens) == (
            "text_completion gpt-4o-mini",
            "gpt-4o-mini",
            record.prompt_tokens,
        )
        assert json.loads(span.input) == prompts

    def test_user_asking_for_usage_sees_the_usage_chunk(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """stream_options set by the user stand: the usage chunk reaches them, and is recorded."""
        chunks = list(
            litellm.text_completion(
                **_args(sim, stream=True, stream_options={"include_usage": True})
            )
        )
        _check_usage_chunk_reaches_user(recorded, sim, chunks)

    def test_parented_to_the_observed_function(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """A text completion inside an observed function (sync or async) is that function's
        child."""

        @llmpulse.observe("answer")
        def answer() -> str:
            return litellm.text_completion(**_args(sim)).choices[0].text

        @llmpulse.observe("aanswer")
        async def aanswer() -> str:
            return (await litellm.atext_completion(**_args(sim))).choices[0].text

        answer()
        _run(aanswer())
        spans = llm_spans(recorded)
        outer = [next(s for s in recorded.spans if s.name == n) for n in ("answer", "aanswer")]
        assert [(s.parent_id, s.trace_id) for s in spans] == [
            (o.span_id, o.trace_id) for o in outer
        ]


class TestErrors:
    def test_error_is_recorded_and_raised_unchanged(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """LiteLLM's exception reaches the caller; the span names its class and status, sync and
        async (streamed)."""
        spans = _check_rate_limited(
            recorded, sim, litellm.text_completion, litellm.atext_completion, _args
        )
        assert [s.name for s in spans] == ["text_completion gpt-4o-mini"] * 2


class TestInstrumentation:
    def test_uninstrument(self, recorded: InMemoryExporter, sim: LLMSimulator) -> None:
        """After uninstrument_litellm text_completion and atext_completion are LiteLLM's own
        again and their calls are not recorded."""
        llmpulse.uninstrument_litellm()
        assert not hasattr(litellm.text_completion, "__llmpulse_wrapped__")
        assert not hasattr(litellm.atext_completion, "__llmpulse_wrapped__")
        litellm.text_completion(**_args(sim))
        _run(litellm.atext_completion(**_args(sim)))
        assert llm_spans(recorded) == [] and len(sim.requests) == 2
