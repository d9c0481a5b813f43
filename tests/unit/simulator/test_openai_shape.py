"""The simulator answers the real openai client exactly as OpenAI would, with no faults."""

from __future__ import annotations

import asyncio

import httpx
import openai

from llmpulse.simulator import LLMSimulator, ModelSpec, SimulatorConfig, estimate_prompt_tokens

USER = [{"role": "user", "content": "Summarise why retries need jitter."}]


class TestChatCompletion:
    def test_sync_call_returns_a_full_completion(self, client: openai.OpenAI) -> None:
        """A plain call returns one assistant message, a stop reason and consistent usage."""
        r = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        assert r.object == "chat.completion"
        assert r.id.startswith("chatcmpl-")
        assert r.model == "gpt-4o-mini"
        assert r.choices[0].message.role == "assistant"
        assert r.choices[0].message.content
        assert r.choices[0].finish_reason == "stop"
        u = r.usage
        assert u is not None
        assert u.prompt_tokens == estimate_prompt_tokens(USER)
        assert u.total_tokens == u.prompt_tokens + u.completion_tokens
        assert u.prompt_tokens_details.cached_tokens == 0
        assert u.completion_tokens_details.reasoning_tokens == 0

    def test_prompt_tokens_grow_with_the_text(self, client: openai.OpenAI) -> None:
        """Prompt tokens follow about four characters per token plus per-message framing."""
        short = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
        long = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x" * 4000}]
        )
        assert long.usage.prompt_tokens - short.usage.prompt_tokens == 1000 - 1

    def test_max_tokens_caps_the_answer_with_finish_reason_length(
        self, client: openai.OpenAI
    ) -> None:
        """max_tokens (and max_completion_tokens) cap the answer and set finish_reason to length."""
        r = client.chat.completions.create(model="gpt-4o-mini", messages=USER, max_tokens=5)
        assert r.usage.completion_tokens == 5
        assert r.choices[0].finish_reason == "length"
        r = client.chat.completions.create(
            model="gpt-4o-mini", messages=USER, max_completion_tokens=3
        )
        assert r.usage.completion_tokens == 3

    def test_reasoning_model_reports_reasoning_tokens(self, client: openai.OpenAI) -> None:
        """A reasoning model's completion tokens include its reported reasoning tokens."""
        r = client.chat.completions.create(model="o3-mini", messages=USER)
        details = r.usage.completion_tokens_details
        assert 0 < details.reasoning_tokens < r.usage.completion_tokens

    def test_n_gives_several_choices(self, client: openai.OpenAI) -> None:
        """n=3 returns three indexed choices whose tokens add up in usage."""
        r = client.chat.completions.create(model="gpt-4o-mini", messages=USER, n=3, max_tokens=4)
        assert [c.index for c in r.choices] == [0, 1, 2]
        assert r.usage.completion_tokens == 12

    def test_json_mode_returns_json(self, client: openai.OpenAI) -> None:
        """response_format json_object yields content that parses as JSON."""
        import json

        r = client.chat.completions.create(
            model="gpt-4o-mini", messages=USER, response_format={"type": "json_object"}
        )
        assert "answer" in json.loads(r.choices[0].message.content)

    def test_repeated_prefix_reports_cached_tokens(self, client: openai.OpenAI) -> None:
        """A long shared prefix sent twice is reported as cached the second time, in 128-token blocks."""
        system = {"role": "system", "content": "policy " * 1000}
        first = client.chat.completions.create(model="gpt-4o", messages=[system, *USER])
        second = client.chat.completions.create(model="gpt-4o", messages=[system, *USER])
        assert first.usage.prompt_tokens_details.cached_tokens == 0
        cached = second.usage.prompt_tokens_details.cached_tokens
        assert cached > 1024 and cached % 128 == 0 and cached <= second.usage.prompt_tokens


class TestDeterminism:
    def test_same_seed_gives_same_answers(self) -> None:
        """Two simulators with the same seed answer the same sequence identically."""
        answers = []
        for _ in range(2):
            with (
                LLMSimulator(SimulatorConfig(seed=3)) as sim,
                openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0) as c,
            ):
                answers.append(
                    [
                        c.chat.completions.create(model="gpt-4o", messages=USER)
                        .choices[0]
                        .message.content
                        for _ in range(3)
                    ]
                )
        assert answers[0] == answers[1]
        assert len(set(answers[0])) == 3

    def test_request_seed_repeats_the_answer(self, client: openai.OpenAI) -> None:
        """The request's own seed makes the same messages get the same answer."""
        a = client.chat.completions.create(model="gpt-4o", messages=USER, seed=11)
        b = client.chat.completions.create(model="gpt-4o", messages=USER, seed=11)
        assert a.choices[0].message.content == b.choices[0].message.content
        assert a.usage.completion_tokens == b.usage.completion_tokens


class TestStreaming:
    def test_stream_with_usage_ends_with_a_usage_chunk(self, client: openai.OpenAI) -> None:
        """A stream yields role, content and finish chunks, then a usage chunk with empty choices."""
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=USER,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert all(c.object == "chat.completion.chunk" for c in chunks)
        assert chunks[0].choices[0].delta.role == "assistant"
        assert chunks[-2].choices[0].finish_reason == "stop"
        assert chunks[-1].choices == []
        text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
        usage = chunks[-1].usage
        assert usage.completion_tokens == len(chunks) - 3  # one content chunk per token
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        assert text.endswith(".")

    def test_stream_without_usage_has_no_usage(self, client: openai.OpenAI) -> None:
        """Without stream_options the stream carries no usage, as on the real API."""
        chunks = list(
            client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        )
        assert all(c.usage is None for c in chunks)
        assert chunks[-1].choices[0].finish_reason == "stop"

    def test_raw_sse_lines_end_with_done(self, sim: LLMSimulator) -> None:
        """On the wire a stream is `data: {...}` events ending in `data: [DONE]`."""
        body = {"model": "gpt-4o-mini", "messages": USER, "stream": True, "max_tokens": 3}
        with httpx.Client() as http:
            r = http.post(f"{sim.base_url}/chat/completions", json=body)
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.text.split("\n\n") if line]
        assert all(e.startswith("data: ") for e in events)
        assert events[-1] == "data: [DONE]"
        assert len(events) == 1 + 1 + 3 + 1  # role, 3 tokens, finish, DONE


class TestAsync:
    def test_async_client_calls_and_streams(self, sim: LLMSimulator) -> None:
        """The async openai client gets completions and streams concurrently."""

        async def run() -> tuple[list[str], str]:
            async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as c:
                calls = [
                    c.chat.completions.create(model="gpt-4o-mini", messages=USER) for _ in range(5)
                ]
                results = await asyncio.gather(*calls)
                stream = await c.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
                parts = [
                    chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices
                ]
                return [r.choices[0].message.content for r in results], "".join(parts)

        contents, streamed = asyncio.run(run())
        assert len(contents) == 5 and all(contents)
        assert streamed
        assert len(sim.requests) == 6


class TestModels:
    def test_models_list_and_retrieve(self, client: openai.OpenAI) -> None:
        """GET /v1/models lists the served models and /v1/models/{id} returns one."""
        ids = [m.id for m in client.models.list()]
        assert "gpt-4o-mini" in ids and "o3-mini" in ids
        assert client.models.retrieve("gpt-4o").id == "gpt-4o"

    def test_configured_models_and_windows(self) -> None:
        """Models given in the config are the only ones served, with their own context window."""
        config = SimulatorConfig(models={"tiny": ModelSpec(context_window=50), "gpt-4o": None})
        with (
            LLMSimulator(config) as sim,
            openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0) as c,
        ):
            assert [m.id for m in c.models.list()] == ["tiny", "gpt-4o"]
            r = c.chat.completions.create(model="tiny", messages=USER)
            assert r.usage.prompt_tokens < 50

    def test_unknown_models_can_be_accepted(self) -> None:
        """accept_unknown_models serves any model name."""
        with (
            LLMSimulator(SimulatorConfig(accept_unknown_models=True)) as sim,
            openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0) as c,
        ):
            assert (
                c.chat.completions.create(model="my-finetune", messages=USER).model == "my-finetune"
            )


class TestRequestLog:
    def test_requests_are_logged(self, client: openai.OpenAI, sim: LLMSimulator) -> None:
        """Every answered request is logged with model, message count, stream flag, status and tokens."""
        client.chat.completions.create(model="gpt-4o", messages=USER * 2, max_tokens=7)
        list(client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True))
        first, second = sim.requests
        assert (first.model, first.n_messages, first.stream, first.status) == (
            "gpt-4o",
            2,
            False,
            200,
        )
        assert first.completion_tokens == 7 and first.max_tokens == 7 and first.fault is None
        assert (second.model, second.stream) == ("gpt-4o-mini", True)
        assert sim.statuses() == [200, 200]
