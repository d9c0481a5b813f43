"""POST /v1/embeddings as the real openai client sees it: shapes, encodings, usage and faults."""

from __future__ import annotations

import asyncio
import base64
import math
import struct

import httpx
import openai
import pytest

from llmpulse.simulator import Faults, LLMSimulator

TEXTS = ["Retries need jitter.", "Circuit breakers open after repeated failures, then half-open."]


def _tokens(text: str) -> int:  # the simulator's count for one text input: ~4 characters a token
    return math.ceil(len(text) / 4)


class TestShape:
    def test_list_of_strings(self, client: openai.OpenAI, sim: LLMSimulator) -> None:
        """One unit-length vector per input, in order, the model's size, and prompt-only usage."""
        r = client.embeddings.create(model="text-embedding-3-small", input=TEXTS)
        assert r.object == "list" and r.model == "text-embedding-3-small"
        assert [(d.object, d.index, len(d.embedding)) for d in r.data] == [
            ("embedding", 0, 1536),
            ("embedding", 1, 1536),
        ]
        for d in r.data:
            assert sum(v * v for v in d.embedding) == pytest.approx(1.0, abs=1e-5)
        expected = sum(_tokens(t) for t in TEXTS)
        assert (r.usage.prompt_tokens, r.usage.total_tokens) == (expected, expected)
        (record,) = sim.requests
        assert (record.path, record.model, record.n_messages, record.status) == (
            "/v1/embeddings",
            "text-embedding-3-small",
            2,
            200,
        )
        assert (record.prompt_tokens, record.completion_tokens) == (expected, 0)

    def test_same_input_same_vector_in_any_batch(self, client: openai.OpenAI) -> None:
        """A text embeds to the same vector alone or in a batch; another text to another one."""
        alone = client.embeddings.create(model="text-embedding-3-small", input=TEXTS[1])
        batch = client.embeddings.create(model="text-embedding-3-small", input=TEXTS)
        assert alone.data[0].embedding == batch.data[1].embedding
        assert batch.data[0].embedding != batch.data[1].embedding

    def test_float_and_base64_carry_the_same_numbers(self, sim: LLMSimulator) -> None:
        """encoding_format base64 is the float32 little-endian bytes of the float answer."""
        with httpx.Client(base_url=sim.base_url) as http:
            as_float = http.post("/embeddings", json={"model": "text-embedding-3-large",
                                 "input": "hi", "encoding_format": "float"}).json()  # fmt: skip
            as_b64 = http.post("/embeddings", json={"model": "text-embedding-3-large",
                               "input": "hi", "encoding_format": "base64"}).json()  # fmt: skip
        raw = base64.b64decode(as_b64["data"][0]["embedding"])
        assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == as_float["data"][0]["embedding"]
        assert len(as_float["data"][0]["embedding"]) == 3072
        assert as_float["usage"] == {"prompt_tokens": 1, "total_tokens": 1}

    def test_dimensions_shorten_and_renormalise(self, client: openai.OpenAI) -> None:
        """dimensions=256 gives the first 256 values of the full vector, normalised again."""
        full = client.embeddings.create(model="text-embedding-3-small", input=TEXTS[0])
        short = client.embeddings.create(
            model="text-embedding-3-small", input=TEXTS[0], dimensions=256
        )
        head = full.data[0].embedding[:256]
        norm = math.sqrt(sum(v * v for v in head))
        assert len(short.data[0].embedding) == 256
        assert short.data[0].embedding == pytest.approx([v / norm for v in head], abs=1e-6)

    def test_token_arrays(self, client: openai.OpenAI) -> None:
        """A token array is one input and a list of them several; each token is one token."""
        one = client.embeddings.create(model="text-embedding-3-small", input=[1, 2, 3])
        two = client.embeddings.create(model="text-embedding-3-small", input=[[1, 2], [3, 4, 5]])
        assert (len(one.data), one.usage.prompt_tokens) == (1, 3)
        assert (len(two.data), two.usage.prompt_tokens) == (2, 5)

    def test_async_client(self, sim: LLMSimulator) -> None:
        """AsyncOpenAI gets the same answer."""

        async def main() -> list[float]:
            async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as c:
                r = await c.embeddings.create(model="text-embedding-3-small", input=TEXTS[0])
                return r.data[0].embedding

        with openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as c:
            sync = c.embeddings.create(model="text-embedding-3-small", input=TEXTS[0])
        assert asyncio.run(main()) == sync.data[0].embedding


class TestErrors:
    @pytest.mark.parametrize(
        ("body", "param"),
        [
            ({"input": "hi"}, "model"),
            ({"model": "text-embedding-3-small"}, "input"),
            ({"model": "text-embedding-3-small", "input": ""}, None),
            ({"model": "text-embedding-3-small", "input": []}, None),
            ({"model": "text-embedding-3-small", "input": ["a", 1]}, None),
            ({"model": "text-embedding-3-small", "input": {"text": "a"}}, None),
            ({"model": "text-embedding-3-small", "input": "a", "encoding_format": "int8"},
             "encoding_format"),
            ({"model": "text-embedding-3-small", "input": "a", "dimensions": 0}, "dimensions"),
            ({"model": "text-embedding-3-small", "input": "a", "dimensions": 1537}, "dimensions"),
        ],
    )  # fmt: skip
    def test_bad_input_is_400_in_openais_shape(
        self, sim: LLMSimulator, body: dict, param: str | None
    ) -> None:
        """Every malformed request is 400 with {"error": {message, type, param, code}}."""
        with httpx.Client(base_url=sim.base_url) as http:
            r = http.post("/embeddings", json=body)
        assert r.status_code == 400
        error = r.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert (error["type"], error["param"]) == ("invalid_request_error", param)
        assert error["message"]

    def test_input_over_the_context_window(self, client: openai.OpenAI) -> None:
        """An input over 8192 tokens is refused as the real API refuses it."""
        with pytest.raises(openai.BadRequestError, match="maximum context length is 8192"):
            client.embeddings.create(model="text-embedding-3-small", input=["ok", "x" * 40_000])

    def test_ada_002_refuses_dimensions(self, client: openai.OpenAI, sim: LLMSimulator) -> None:
        """text-embedding-ada-002 with dimensions is the real API's 400, in its words; without
        dimensions it embeds at its full 1536."""
        with pytest.raises(openai.BadRequestError) as info:
            client.embeddings.create(model="text-embedding-ada-002", input="hi", dimensions=1536)
        assert info.value.status_code == 400
        assert info.value.body == {
            "message": "This model does not support specifying dimensions.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        full = client.embeddings.create(model="text-embedding-ada-002", input="hi")
        assert len(full.data[0].embedding) == 1536
        assert [r.status for r in sim.requests] == [400, 200]

    def test_unknown_model_is_404(self, client: openai.OpenAI) -> None:
        with pytest.raises(openai.NotFoundError):
            client.embeddings.create(model="text-embedding-9", input="hi")

    def test_scripted_faults_and_rates_apply(
        self, client: openai.OpenAI, sim: LLMSimulator
    ) -> None:
        """fail_next and set_faults steer embeddings exactly as they steer chat completions."""
        sim.fail_next(1, status=429, retry_after=2)
        with pytest.raises(openai.RateLimitError) as info:
            client.embeddings.create(model="text-embedding-3-small", input="hi")
        assert info.value.response.headers["retry-after"] == "2"
        sim.set_faults(Faults(model_down=True), model="text-embedding-3-small")
        with pytest.raises(openai.InternalServerError) as down:
            client.embeddings.create(model="text-embedding-3-small", input="hi")
        assert down.value.status_code == 503
        sim.clear_faults()
        assert client.embeddings.create(model="text-embedding-3-small", input="hi").data
        assert [(r.status, r.fault) for r in sim.requests] == [
            (429, "rate_limit"),
            (503, "server_error"),
            (200, None),
        ]

    def test_slow_fault_times_out_the_client(self, sim: LLMSimulator) -> None:
        """The slow kind delays the answer past the client's timeout."""
        sim.fail_next(1, kind="slow", delay_s=5.0)
        with (
            openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0, timeout=0.3) as c,
            pytest.raises(openai.APITimeoutError),
        ):
            c.embeddings.create(model="text-embedding-3-small", input="hi")
