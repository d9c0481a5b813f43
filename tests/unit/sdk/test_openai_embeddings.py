"""openai embeddings instrumentation against the real openai client and the project's simulator."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

import llmpulse
from llmpulse.pricing import default_price_table
from llmpulse.simulator import LLMSimulator
from llmpulse.testing import InMemoryExporter
from tests.unit.sdk.conftest import llm_spans

pytestmark = pytest.mark.instrument("openai")

MODEL = "text-embedding-3-small"
TEXTS = ["Retries need jitter.", "Circuit breakers open after repeated failures."]


@pytest.fixture(scope="module")
def sim_seed() -> int:
    """This module's simulator seed (the shared simulator fixture is in tests/conftest.py)."""
    return 5


def _cost(model: str, tokens: int) -> float | None:
    return default_price_table().cost(model, tokens, None)


class TestRecorded:
    def test_list_of_inputs(
        self, recorded: InMemoryExporter, client: openai.OpenAI, sim: LLMSimulator
    ) -> None:
        """One llm span per call, field by field: the simulator's usage, the price table's cost,
        the inputs as a list, the vectors' count and length but never their values."""
        response = client.embeddings.create(model=MODEL, input=TEXTS, user="u-7")
        (span,) = llm_spans(recorded)
        (record,) = sim.requests
        assert span.kind == "llm"
        assert span.name == "embeddings text-embedding-3-small"
        assert (span.model, span.provider, span.status) == (MODEL, "openai", "ok")
        assert span.input_tokens == response.usage.prompt_tokens == record.prompt_tokens > 0
        assert span.output_tokens is None
        assert span.total_tokens == response.usage.total_tokens
        assert span.cost_usd == _cost(MODEL, record.prompt_tokens)
        assert span.cost_usd == pytest.approx(record.prompt_tokens * 0.02 / 1e6)
        assert (span.error_type, span.error_message, span.ttft_ms) == (None, None, None)
        assert span.user_id == "u-7"
        assert (
            span.input
            == '["Retries need jitter.", "Circuit breakers open after repeated failures."]'
        )
        assert span.output is None
        assert span.attributes == {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": MODEL,
            "gen_ai.response.model": MODEL,
            "server.address": "127.0.0.1",
            "llmpulse.embeddings.count": 2,
            "gen_ai.embeddings.dimension.count": 1536,
        }
        assert span.end_time >= span.start_time

    def test_one_string_with_dimensions_and_base64(
        self, recorded: InMemoryExporter, client: openai.OpenAI, sim: LLMSimulator
    ) -> None:
        """A string input stays a string; dimensions and an explicit base64 encoding are read
        from the vectors that came back (base64 is counted, not decoded)."""
        response = client.embeddings.create(
            model="text-embedding-3-large", input=TEXTS[0], dimensions=256, encoding_format="base64"
        )
        assert isinstance(response.data[0].embedding, str)  # the caller gets what openai gives
        (span,) = llm_spans(recorded)
        (record,) = sim.requests
        assert span.name == "embeddings text-embedding-3-large"
        assert span.input == TEXTS[0]
        assert span.input_tokens == record.prompt_tokens == 5
        assert span.cost_usd == _cost("text-embedding-3-large", 5)
        assert span.attributes["gen_ai.request.encoding_formats"] == ["base64"]
        assert span.attributes["gen_ai.embeddings.dimension.count"] == 256
        assert span.attributes["llmpulse.embeddings.count"] == 1

    def test_token_arrays(self, recorded: InMemoryExporter, client: openai.OpenAI) -> None:
        """Token-array inputs are kept as lists and counted as the simulator counts them."""
        client.embeddings.create(model=MODEL, input=[[1, 2, 3], [4, 5]])
        (span,) = llm_spans(recorded)
        assert (span.input, span.input_tokens) == ("[[1, 2, 3], [4, 5]]", 5)
        assert span.attributes["llmpulse.embeddings.count"] == 2

    def test_async_client(self, recorded: InMemoryExporter, sim: LLMSimulator) -> None:
        """AsyncOpenAI embeddings are recorded the same way, one span each."""

        async def main() -> list[int]:
            async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as c:
                responses = await asyncio.gather(
                    *(c.embeddings.create(model=MODEL, input=text) for text in TEXTS)
                )
                return [r.usage.prompt_tokens for r in responses]

        tokens = asyncio.run(main())
        spans = llm_spans(recorded)
        assert sorted(s.input_tokens for s in spans) == sorted(tokens)
        assert sorted(s.input_tokens for s in spans) == sorted(
            r.prompt_tokens for r in sim.requests
        )
        for span in spans:
            assert (span.name, span.model, span.provider, span.status) == (
                "embeddings text-embedding-3-small", MODEL, "openai", "ok"
            )  # fmt: skip
            assert span.output_tokens is None
            assert span.cost_usd == _cost(MODEL, span.input_tokens)
            assert span.attributes["gen_ai.operation.name"] == "embeddings"
            assert span.attributes["llmpulse.embeddings.count"] == 1

    def test_with_raw_response(self, recorded: InMemoryExporter, client: openai.OpenAI) -> None:
        """with_raw_response calls are recorded with their usage."""
        raw = client.embeddings.with_raw_response.create(model=MODEL, input=TEXTS)
        (span,) = llm_spans(recorded)
        assert span.input_tokens == raw.parse().usage.prompt_tokens
        assert span.attributes["llmpulse.embeddings.count"] == 2

    def test_parented_to_the_observed_function(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        """A call inside an observed function is that function's child span."""

        @llmpulse.observe("index")
        def index() -> None:
            client.embeddings.create(model=MODEL, input=TEXTS)

        index()
        assert llmpulse.flush(10)
        outer = next(s for s in recorded.spans if s.name == "index")
        (span,) = llm_spans(recorded)
        assert (span.parent_id, span.trace_id) == (outer.span_id, outer.trace_id)


class TestContent:
    def test_redaction_applies_to_the_inputs(self, client: openai.OpenAI) -> None:
        """With redact=True the inputs are not kept; tokens, cost and counts are."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, redact=True)
        client.embeddings.create(model=MODEL, input=TEXTS)
        (span,) = llm_spans(exporter)
        assert (span.input, span.output) == (None, None)
        assert span.input_tokens and span.cost_usd == _cost(MODEL, span.input_tokens)
        assert span.attributes["llmpulse.embeddings.count"] == 2

    def test_inputs_are_bounded_as_prompts_are(self, client: openai.OpenAI) -> None:
        """A long list of inputs is cut at max_content_chars, with the marker saying so."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, max_content_chars=60)
        client.embeddings.create(model=MODEL, input=["a" * 50, "b" * 50, "c" * 50])
        (span,) = llm_spans(exporter)
        assert span.input.startswith('["' + "a" * 50)
        assert span.input.endswith("[truncated 102 chars]")
        assert span.input_tokens == 39


class TestErrors:
    @pytest.mark.parametrize(
        ("status", "error"),
        [(429, openai.RateLimitError), (500, openai.InternalServerError)],
    )
    def test_injected_fault_is_an_error_span(
        self,
        recorded: InMemoryExporter,
        client: openai.OpenAI,
        sim: LLMSimulator,
        status: int,
        error: type,
    ) -> None:
        """The openai exception reaches the caller unchanged; the span names its class and status."""
        sim.fail_next(1, status=status)
        with pytest.raises(error) as info:
            client.embeddings.create(model=MODEL, input=TEXTS)
        assert type(info.value) is error
        (span,) = llm_spans(recorded)
        assert (span.name, span.model, span.provider) == (
            "embeddings text-embedding-3-small", MODEL, "openai"
        )  # fmt: skip
        assert (span.status, span.error_type) == ("error", error.__name__)
        assert span.error_message == str(info.value)
        assert (span.input_tokens, span.output_tokens, span.cost_usd) == (None, None, None)
        assert span.attributes["http.response.status_code"] == status
        assert span.attributes["error.type"] == error.__name__
        assert "llmpulse.embeddings.count" not in span.attributes

    def test_bad_input_is_a_400_span(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        """The simulator's 400 for an empty input is a BadRequestError span."""
        with pytest.raises(openai.BadRequestError):
            client.embeddings.create(model=MODEL, input="")
        (span,) = llm_spans(recorded)
        assert (span.status, span.error_type) == ("error", "BadRequestError")
        assert span.attributes["http.response.status_code"] == 400

    def test_async_error(self, recorded: InMemoryExporter, sim: LLMSimulator) -> None:
        """An async call's fault is recorded as the sync one's."""
        sim.fail_next(1, status=503)

        async def main() -> None:
            async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as c:
                await c.embeddings.create(model=MODEL, input=TEXTS)

        with pytest.raises(openai.InternalServerError):
            asyncio.run(main())
        (span,) = llm_spans(recorded)
        assert (span.status, span.error_type) == ("error", "InternalServerError")
        assert span.attributes["http.response.status_code"] == 503


class TestInstrumentation:
    def test_not_recorded_under_an_open_llm_span(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        """Inside an open llm span (LiteLLM's call, a framework's run) the span already counts
        the call: the openai client records nothing of its own."""
        with llmpulse.span("embed documents", kind="llm"):
            client.embeddings.create(model=MODEL, input=TEXTS)
        assert [s.name for s in llm_spans(recorded)] == ["embed documents"]

    def test_uninstrument_restores_the_client(
        self, recorded: InMemoryExporter, client: openai.OpenAI
    ) -> None:
        """After uninstrument_openai embeddings are not recorded; instrumenting again records once."""
        llmpulse.uninstrument_openai()
        client.embeddings.create(model=MODEL, input=TEXTS)
        assert llm_spans(recorded) == []
        assert llmpulse.instrument_openai() is True
        llmpulse.instrument_openai()
        client.embeddings.create(model=MODEL, input=TEXTS)
        assert len(llm_spans(recorded)) == 1


class TestLangChain:
    @pytest.mark.instrument("openai", "langchain")
    def test_openai_embeddings_through_langchain_is_one_span(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """LangChain fires no callbacks for embeddings, so no run of its own is open: the
        openai client's span is the one record of an OpenAIEmbeddings call, with its usage."""
        langchain_openai = pytest.importorskip("langchain_openai")
        with httpx.Client() as http:  # closed here: OpenAIEmbeddings does not close its own
            embedder = langchain_openai.OpenAIEmbeddings(
                model=MODEL, base_url=sim.base_url, api_key="sim", max_retries=0,
                check_embedding_ctx_length=False,  # send the texts, not tiktoken's token arrays
                http_client=http,
            )  # fmt: skip
            vectors = embedder.embed_documents(TEXTS)
        assert len(vectors) == 2
        (span,) = llm_spans(recorded)
        (record,) = sim.requests
        assert (span.name, span.model, span.provider) == (
            "embeddings text-embedding-3-small", MODEL, "openai"
        )  # fmt: skip
        assert span.input_tokens == record.prompt_tokens
        assert span.attributes["llmpulse.embeddings.count"] == 2
        assert [s.kind for s in recorded.spans] == ["llm"]
