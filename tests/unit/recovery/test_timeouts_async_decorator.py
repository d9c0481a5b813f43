"""Timeouts, the async client, the decorator and the client-side rate limiter."""

from __future__ import annotations

import asyncio

import openai
import pytest

from llmpulse.errors import RecoveryError
from llmpulse.recovery import (
    BreakerPolicy,
    LimiterPolicy,
    RateLimiter,
    RecoveringClient,
    RecoveryPolicy,
    RetryPolicy,
    TimeoutPolicy,
    with_recovery,
)
from llmpulse.simulator import LLMSimulator

from .conftest import Timeline

USER = [{"role": "user", "content": "Where is my order?"}]


class TestTimeouts:
    def test_timeout_is_retried_with_a_longer_timeout(
        self, sim: LLMSimulator, timeline: Timeline
    ) -> None:
        """A call that times out at 0.2 s is retried at once with 0.4 s and answers."""
        sim.fail_next(1, kind="slow", delay_s=5.0)
        with openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0, timeout=0.2) as raw:
            client = RecoveringClient(raw, **timeline.options())
            reply = client.chat.completions.create(model="gpt-4o", messages=USER)
        assert reply.choices
        assert [r.model for r in sim.requests][-1] == "gpt-4o"
        assert timeline.sleeps == []

    def test_timeouts_grow_and_stay_bounded(self, timeline: Timeline) -> None:
        """Each retry multiplies the timeout, never past max_timeout_s; then the TimeoutError is raised."""
        seen: list[float] = []

        def slow(model: str, messages: list[dict[str, str]], timeout: float) -> None:
            seen.append(timeout)
            raise TimeoutError("no answer")

        policy = RecoveryPolicy(timeout=TimeoutPolicy(max_retries=3, multiplier=2, max_timeout_s=5))
        with pytest.raises(TimeoutError):
            timeline.recoverer(policy).call(slow, model="m", messages=USER, timeout=1.5)
        assert seen == [1.5, 3.0, 5.0, 5.0]

    def test_initial_timeout_from_policy(self, timeline: Timeline) -> None:
        """initial_timeout_s is sent when the call names no timeout."""
        seen: list[float] = []
        policy = RecoveryPolicy(timeout=TimeoutPolicy(initial_timeout_s=7))
        timeline.recoverer(policy).call(lambda model, timeout: seen.append(timeout), model="m")
        assert seen == [7]


class TestAsync:
    def test_async_client_recovers_and_falls_back(
        self, sim: LLMSimulator, timeline: Timeline
    ) -> None:
        """The async openai client gets the same policies: 429 waited, then a down model left."""
        sim.fail_next(1, status=429, retry_after=3)
        sim.set_faults(model_down=True, model="gpt-4o")
        policy = RecoveryPolicy(
            fallback_models=("gpt-4o-mini",), server_error=RetryPolicy(max_retries=1)
        )

        async def run() -> str:
            async with openai.AsyncOpenAI(
                base_url=sim.base_url, api_key="sim", max_retries=0
            ) as raw:
                client = RecoveringClient(raw, policy, **timeline.options())
                assert client.is_async
                reply = await client.chat.completions.create(model="gpt-4o", messages=USER)
                return reply.model

        assert asyncio.run(run()) == "gpt-4o-mini"
        assert [(r.model, r.status) for r in sim.requests] == [
            ("gpt-4o", 429),
            ("gpt-4o", 503),
            ("gpt-4o", 503),
            ("gpt-4o-mini", 200),
        ]
        assert 3.0 <= timeline.sleeps[0] <= 3.3

    def test_async_streams_recover_before_the_first_chunk(
        self, sim: LLMSimulator, timeline: Timeline
    ) -> None:
        """A stream whose request fails is retried; the caller iterates the successful stream."""
        sim.fail_next(1, status=500)

        async def run() -> str:
            async with openai.AsyncOpenAI(
                base_url=sim.base_url, api_key="sim", max_retries=0
            ) as raw:
                client = RecoveringClient(raw, **timeline.options())
                stream = await client.chat.completions.create(
                    model="gpt-4o", messages=USER, stream=True
                )
                return "".join(
                    [c.choices[0].delta.content or "" async for c in stream if c.choices]
                )

        assert asyncio.run(run())
        assert sim.statuses() == [500, 200]


class TestDecorator:
    def test_sync_function_gets_fallbacks_through_its_model_argument(self, openai_client: openai.OpenAI,
                                                                     sim: LLMSimulator, timeline: Timeline) -> None:  # fmt: skip
        """A decorated function with a `model` parameter is re-called with the fallback model."""
        sim.set_faults(model_down=True, model="gpt-4o")
        recoverer = timeline.recoverer(RecoveryPolicy(fallback_models=("gpt-4o-mini",),
                                                      server_error=RetryPolicy(max_retries=0)))  # fmt: skip

        @with_recovery(recoverer=recoverer)
        def answer(question: str, model: str = "gpt-4o") -> str:
            reply = openai_client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": question}]
            )
            return reply.model

        assert answer("hello") == "gpt-4o-mini"
        assert answer.recoverer is recoverer  # type: ignore[attr-defined]
        assert answer.__name__ == "answer"

    def test_async_function_is_retried(self, sim: LLMSimulator, timeline: Timeline) -> None:
        """A decorated coroutine function is retried with the async sleep."""
        sim.fail_next(2, status=503)

        @with_recovery(recoverer=timeline.recoverer())
        async def answer(question: str) -> str:
            async with openai.AsyncOpenAI(
                base_url=sim.base_url, api_key="sim", max_retries=0
            ) as raw:
                reply = await raw.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": question}]
                )
                return reply.choices[0].message.content or ""

        assert asyncio.run(answer("hi"))
        assert sim.statuses() == [503, 503, 200]
        assert len(timeline.sleeps) == 2

    def test_bare_decorator_uses_defaults(self) -> None:
        """@with_recovery without arguments wraps with the default policy."""

        @with_recovery
        def add(a: int, b: int) -> int:
            return a + b

        assert add(2, b=3) == 5
        assert add.recoverer.policy == RecoveryPolicy()  # type: ignore[attr-defined]


class TestRateLimiter:
    def test_requests_per_minute_spaces_calls(self, timeline: Timeline) -> None:
        """With 60 requests a minute and a full bucket, the 61st call waits one second."""
        policy = RecoveryPolicy(limiter=LimiterPolicy(requests_per_minute=60))
        recoverer = timeline.recoverer(policy)
        for _ in range(61):
            recoverer.call(lambda model: None, model="gpt-4o")
        assert timeline.sleeps == [pytest.approx(1.0)]

    def test_tokens_per_minute_counts_prompt_and_max_tokens(self, timeline: Timeline) -> None:
        """Token reservations count the prompt estimate plus max_tokens."""
        limiter = RateLimiter(LimiterPolicy(tokens_per_minute=1200), clock=timeline.now)
        assert limiter.reserve("m", tokens=1000) == 0.0
        assert limiter.reserve("m", tokens=400) == pytest.approx(10.0)  # 200 short at 20 tokens/s
        assert limiter.reserve("other", tokens=400) == 0.0  # per model

    def test_wait_beyond_max_is_refused_or_falls_back(self, timeline: Timeline) -> None:
        """A call that would wait past max_wait_s goes to the fallback model, or raises RecoveryError."""
        limits = LimiterPolicy(requests_per_minute=1, max_wait_s=5)
        calls: list[str] = []
        fallback = timeline.recoverer(RecoveryPolicy(limiter=limits, fallback_models=("b",)))
        fallback.call(lambda model: calls.append(model), model="a")
        fallback.call(lambda model: calls.append(model), model="a")
        assert calls == ["a", "b"]
        alone = timeline.recoverer(RecoveryPolicy(limiter=limits))
        alone.call(lambda model: None, model="a")
        with pytest.raises(RecoveryError, match="client-side rate limit"):
            alone.call(lambda model: None, model="a")

    def test_refill_after_time_passes(self, timeline: Timeline) -> None:
        """Capacity comes back with time: after a minute the bucket is full again."""
        limiter = RateLimiter(LimiterPolicy(requests_per_minute=2), clock=timeline.now)
        assert [limiter.reserve("m"), limiter.reserve("m")] == [0.0, 0.0]
        assert limiter.reserve("m") == pytest.approx(30.0)
        timeline.clock.advance(90)
        assert limiter.reserve("m") == 0.0

    def test_limiter_applies_to_the_openai_client(self, openai_client: openai.OpenAI, sim: LLMSimulator,
                                                  timeline: Timeline) -> None:  # fmt: skip
        """The wrapper reserves per model and waits with the injected sleep."""
        policy = RecoveryPolicy(
            limiter=LimiterPolicy(requests_per_minute=2), breaker=BreakerPolicy(enabled=False)
        )
        client = RecoveringClient(openai_client, policy, **timeline.options())
        for _ in range(3):
            client.chat.completions.create(model="gpt-4o", messages=USER, max_tokens=5)
        assert timeline.sleeps == [pytest.approx(30.0)]
        assert sim.statuses() == [200, 200, 200]
