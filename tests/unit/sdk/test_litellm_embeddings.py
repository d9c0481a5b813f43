"""litellm.embedding / aembedding against the real litellm package pointed at the simulator.

LiteLLM reaches the simulator (an OpenAI-compatible server, ``openai/<model>`` with
``api_base``) through the openai client: through ``embeddings.create``, which the openai
instrumentation records too, when the call names an ``encoding_format`` (without one LiteLLM
posts with the client directly). With both on, a call is one span, LiteLLM's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network: the bundled map
litellm = pytest.importorskip("litellm")

import llmpulse  # noqa: E402
from llmpulse.pricing import default_price_table  # noqa: E402
from llmpulse.simulator import LLMSimulator  # noqa: E402
from llmpulse.testing import InMemoryExporter  # noqa: E402
from tests.unit.sdk.conftest import llm_spans  # noqa: E402
from tests.unit.sdk.test_litellm import LITELLM_MARKS  # noqa: E402

pytestmark = [pytest.mark.instrument("openai", "litellm"), *LITELLM_MARKS]

MODEL = "text-embedding-3-small"
LARGE = "text-embedding-3-large"
TEXTS = ["Retries need jitter.", "Circuit breakers open after repeated failures."]


@pytest.fixture(scope="module")
def sim_seed() -> int:
    """This module's simulator seed (the shared simulator fixture is in tests/conftest.py)."""
    return 13


def _args(sim: LLMSimulator, **kwargs: object) -> dict:
    return {"model": f"openai/{MODEL}", "api_base": sim.base_url, "api_key": "sim",
            "input": TEXTS, **kwargs}  # fmt: skip


def _cost(tokens: int) -> float | None:
    return default_price_table().cost(MODEL, tokens, None)


class TestOneRecordPerCall:
    def test_sync(self, recorded: InMemoryExporter, sim: LLMSimulator) -> None:
        """embedding is one span, field by field, with the simulator's usage and the price
        table's cost, and nothing from the openai client underneath."""
        response = litellm.embedding(**_args(sim, user="u-3", encoding_format="float"))
        (span,) = llm_spans(recorded)
        (record,) = sim.requests
        assert record.path == "/v1/embeddings"
        assert span.kind == "llm"
        assert span.name == "embeddings text-embedding-3-small"
        assert (span.model, span.provider, span.status) == (MODEL, "openai", "ok")
        assert span.input_tokens == response.usage.prompt_tokens == record.prompt_tokens > 0
        assert span.output_tokens is None
        assert span.total_tokens == record.prompt_tokens
        assert span.cost_usd == _cost(record.prompt_tokens)
        assert span.cost_usd == pytest.approx(record.prompt_tokens * 0.02 / 1e6)
        assert (span.error_type, span.ttft_ms, span.output) == (None, None, None)
        assert span.user_id == "u-3"
        assert (
            span.input
            == '["Retries need jitter.", "Circuit breakers open after repeated failures."]'
        )
        assert span.attributes == {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.request.model": f"openai/{MODEL}",
            "gen_ai.request.encoding_formats": ["float"],
            "gen_ai.response.model": MODEL,
            "llmpulse.integration": "litellm",
            "llmpulse.embeddings.count": 2,
            "gen_ai.embeddings.dimension.count": 1536,
        }

    def test_async_in_a_child_process(self, sim: LLMSimulator) -> None:
        """aembedding is one span too, ok or failed (the simulator's injected context-length
        400, LiteLLM's ContextWindowExceededError). In a child process: LiteLLM's logging worker
        leaves a task pending in the closed loop of its last async call, an unraisable
        'Event loop is closed' in whichever later test collects it."""
        code = textwrap.dedent(
            f"""
            import asyncio, json, warnings
            warnings.simplefilter("ignore")
            import litellm, llmpulse
            from llmpulse.testing import InMemoryExporter
            exporter = InMemoryExporter()
            llmpulse.init(exporter=exporter, instrument=("openai", "litellm"))
            args = {{"api_base": {sim.base_url!r}, "api_key": "sim", "encoding_format": "float"}}

            async def main():
                ok = await litellm.aembedding(
                    model="openai/{MODEL}", input={TEXTS[0]!r}, dimensions=64, **args
                )
                try:
                    await litellm.aembedding(model="openai/{LARGE}", input={TEXTS!r}, **args)
                except litellm.ContextWindowExceededError:
                    pass
                return ok.usage.prompt_tokens

            tokens = asyncio.run(main())
            assert llmpulse.flush(10)
            fields = ("kind", "name", "model", "provider", "status", "error_type", "input_tokens",
                      "output_tokens", "cost_usd", "input", "attributes")
            spans = [{{f: getattr(s, f) for f in fields}} for s in exporter.spans]
            print(json.dumps({{"spans": spans, "tokens": tokens}}))
            """
        )
        sim.fail_next(1, status=400, model=LARGE)  # the second call's model
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=180
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        ok_record, failed_record = sim.requests
        assert (ok_record.status, failed_record.status) == (200, 400)
        ok, failed = result["spans"]
        assert result["tokens"] == ok_record.prompt_tokens
        common = {"kind": "llm", "provider": "openai", "output_tokens": None}
        assert ok == {**common, "name": "embeddings text-embedding-3-small", "model": MODEL,
            "status": "ok", "error_type": None,
            "input_tokens": ok_record.prompt_tokens, "cost_usd": _cost(ok_record.prompt_tokens),
            "input": TEXTS[0], "attributes": {
                "gen_ai.operation.name": "embeddings",
                "gen_ai.request.model": f"openai/{MODEL}",
                "gen_ai.request.encoding_formats": ["float"],
                "gen_ai.response.model": MODEL,
                "llmpulse.integration": "litellm",
                "llmpulse.embeddings.count": 1,
                "gen_ai.embeddings.dimension.count": 64,
            },
        }  # fmt: skip
        assert {k: v for k, v in failed.items() if k not in ("attributes", "input")} == {
            **common, "name": "embeddings text-embedding-3-large", "model": LARGE,
            "status": "error", "error_type": "ContextWindowExceededError",
            "input_tokens": None, "cost_usd": None,
        }  # fmt: skip
        assert failed["attributes"]["http.response.status_code"] == 400
        assert failed["attributes"]["error.type"] == "ContextWindowExceededError"
        assert "llmpulse.embeddings.count" not in failed["attributes"]

    def test_input_as_second_positional_argument(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """litellm.embedding(model, input) records the input as the keyword form does."""
        litellm.embedding(f"openai/{MODEL}", TEXTS, api_base=sim.base_url, api_key="sim")
        (span,) = llm_spans(recorded)
        assert (span.model, span.input_tokens) == (MODEL, sim.requests[0].prompt_tokens)
        assert span.input.startswith('["Retries need jitter."')

    def test_parented_to_the_observed_function(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """A call inside an observed function is that function's child span."""

        @llmpulse.observe("index")
        def index() -> None:
            litellm.embedding(**_args(sim))

        index()
        assert llmpulse.flush(10)
        outer = next(s for s in recorded.spans if s.name == "index")
        (span,) = llm_spans(recorded)
        assert (span.parent_id, span.trace_id) == (outer.span_id, outer.trace_id)

    @pytest.mark.instrument("openai")
    def test_the_openai_client_is_underneath(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """Without the litellm instrumentation the openai client's own span records the call:
        the openai instrumentation really runs under LiteLLM, and stands aside when LiteLLM's
        span is open (the test above)."""
        litellm.embedding(**_args(sim, encoding_format="float"))
        (span,) = llm_spans(recorded)
        assert span.attributes.get("llmpulse.integration") is None
        assert (span.name, span.input_tokens) == (
            "embeddings text-embedding-3-small", sim.requests[0].prompt_tokens
        )  # fmt: skip


class TestErrors:
    def test_injected_fault_is_an_error_span(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """The simulator's injected context-length 400 reaches the caller as LiteLLM raises it
        (its ContextWindowExceededError); the span names that class and the status, with no
        tokens and no cost."""
        sim.fail_next(1, status=400)
        with pytest.raises(litellm.ContextWindowExceededError) as info:
            litellm.embedding(**_args(sim))
        (span,) = llm_spans(recorded)
        assert len(sim.requests) == 1
        assert (span.name, span.model, span.provider) == (
            "embeddings text-embedding-3-small", MODEL, "openai"
        )  # fmt: skip
        assert (span.status, span.error_type) == ("error", "ContextWindowExceededError")
        assert span.error_message == str(info.value)
        assert span.attributes["http.response.status_code"] == 400
        assert span.attributes["error.type"] == "ContextWindowExceededError"
        assert (span.input_tokens, span.output_tokens, span.cost_usd) == (None, None, None)
        assert "llmpulse.embeddings.count" not in span.attributes

    def test_retried_rate_limit_is_one_ok_span(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """A 429 the client retries away is inside the call's one span, which ends ok with the
        answer's usage (LiteLLM gives the openai client 2 retries for embeddings even with
        max_retries=0: it reads 0 as unset)."""
        sim.fail_next(1, status=429, retry_after=0.01)
        litellm.embedding(**_args(sim, max_retries=0))
        (span,) = llm_spans(recorded)
        assert [r.status for r in sim.requests] == [429, 200]
        assert (span.status, span.input_tokens) == ("ok", sim.requests[1].prompt_tokens)


class TestInstrumentation:
    def test_under_an_open_llm_span_nothing_more_is_recorded(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """Under an open llm span the call counts there, once."""
        with llmpulse.span("embed documents", kind="llm"):
            litellm.embedding(**_args(sim, encoding_format="float"))
        (span,) = llm_spans(recorded)
        assert span.name == "embed documents"

    def test_uninstrument(self, recorded: InMemoryExporter, sim: LLMSimulator) -> None:
        """After uninstrument_litellm embedding is LiteLLM's own again (the openai client's span
        is then the record of the call)."""
        llmpulse.uninstrument_litellm()
        assert not hasattr(litellm.embedding, "__llmpulse_wrapped__")
        assert not hasattr(litellm.aembedding, "__llmpulse_wrapped__")
        litellm.embedding(**_args(sim, encoding_format="float"))
        (span,) = llm_spans(recorded)
        assert "llmpulse.integration" not in span.attributes
        assert llmpulse.instrument_litellm() is True
        assert hasattr(litellm.embedding, "__llmpulse_wrapped__")
