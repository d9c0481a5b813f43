"""Each policy against the simulator in a fault mode, with the real openai client."""

from __future__ import annotations

import openai
import pytest

from llmpulse.errors import CircuitOpenError
from llmpulse.recovery import (
    BreakerPolicy,
    RateLimitPolicy,
    RecoveringClient,
    RecoveryPolicy,
    ReductionInfo,
    RetryPolicy,
)
from llmpulse.simulator import Faults, LLMSimulator

from .conftest import Timeline

USER = [{"role": "user", "content": "Where is my order?"}]
NO_BREAKER = BreakerPolicy(enabled=False)


def client_for(
    openai_client: openai.OpenAI, timeline: Timeline, **policy: object
) -> RecoveringClient:
    return RecoveringClient(openai_client, RecoveryPolicy(**policy), **timeline.options())  # type: ignore[arg-type]


class TestRateLimits:
    def test_retry_after_is_respected(self, openai_client: openai.OpenAI, sim: LLMSimulator,
                                      timeline: Timeline) -> None:  # fmt: skip
        """A burst of 429s with Retry-After 2.5 s is waited out, never shorter, then the call succeeds."""
        sim.fail_next(3, status=429, retry_after=2.5)
        client = client_for(openai_client, timeline)
        reply = client.chat.completions.create(model="gpt-4o", messages=USER)
        assert reply.choices[0].message.content
        assert sim.statuses() == [429, 429, 429, 200]
        assert len(timeline.sleeps) == 3
        assert all(2.5 <= s <= 2.5 * 1.1 for s in timeline.sleeps)

    def test_too_long_retry_after_falls_back_without_waiting(self, openai_client: openai.OpenAI,
                                                             sim: LLMSimulator, timeline: Timeline) -> None:  # fmt: skip
        """A Retry-After above max_retry_after_s is not slept: the next model answers at once."""
        sim.fail_next(1, status=429, retry_after=600, model="gpt-4o")
        client = client_for(openai_client, timeline, fallback_models=("gpt-4o-mini",))
        reply = client.chat.completions.create(model="gpt-4o", messages=USER)
        assert reply.model == "gpt-4o-mini"
        assert timeline.sleeps == []

    def test_exhausted_rate_limit_raises_the_last_error_unchanged(self, openai_client: openai.OpenAI,
                                                                  sim: LLMSimulator, timeline: Timeline) -> None:  # fmt: skip
        """With no fallback, the last RateLimitError is raised as the openai client raised it."""
        sim.fail_next(10, status=429, retry_after=1)
        client = client_for(openai_client, timeline, rate_limit=RateLimitPolicy(max_retries=2))
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model="gpt-4o", messages=USER)
        assert info.value.response.headers["retry-after"] == "1"
        assert sim.statuses() == [429, 429, 429]

    def test_backoff_without_retry_after_grows(self, timeline: Timeline) -> None:
        """Without Retry-After the waits follow exponential backoff with equal jitter."""
        policy = RateLimitPolicy(max_retries=4, base_delay_s=1.0, max_delay_s=5.0)
        waits = [policy.wait(n, None, timeline.recoverer().rng) for n in (1, 2, 3, 4)]
        for wait, ceiling in zip(waits, (1.0, 2.0, 4.0, 5.0), strict=True):
            assert ceiling / 2 <= wait <= ceiling


class TestServerErrors:
    def test_burst_of_500s_is_retried(self, openai_client: openai.OpenAI, sim: LLMSimulator,
                                      timeline: Timeline) -> None:  # fmt: skip
        """Two 500s then success: same model, two backoff waits."""
        sim.fail_next(2, status=500)
        client = client_for(
            openai_client, timeline, server_error=RetryPolicy(max_retries=3, base_delay_s=0.5)
        )
        reply = client.chat.completions.create(model="gpt-4o", messages=USER)
        assert reply.model == "gpt-4o"
        assert sim.statuses() == [500, 500, 200]
        assert 0.25 <= timeline.sleeps[0] <= 0.5 and 0.5 <= timeline.sleeps[1] <= 1.0

    def test_fallback_chain_is_followed_in_order(self, openai_client: openai.OpenAI, sim: LLMSimulator,
                                                 timeline: Timeline) -> None:  # fmt: skip
        """With two models down, each is retried then left, in the configured order, until one answers."""
        sim.set_faults(Faults(model_down=True), model="gpt-4o")
        sim.set_faults(Faults(model_down=True, down_status=500), model="gpt-4.1")
        client = client_for(openai_client, timeline, fallback_models=("gpt-4.1", "gpt-4o-mini"),
                            server_error=RetryPolicy(max_retries=1), breaker=NO_BREAKER)  # fmt: skip
        reply = client.chat.completions.create(model="gpt-4o", messages=USER)
        assert reply.model == "gpt-4o-mini"
        assert [(r.model, r.status) for r in sim.requests] == [
            ("gpt-4o", 503),
            ("gpt-4o", 503),
            ("gpt-4.1", 500),
            ("gpt-4.1", 500),
            ("gpt-4o-mini", 200),
        ]

    def test_html_error_page_is_a_server_error(self, openai_client: openai.OpenAI, sim: LLMSimulator,
                                               timeline: Timeline) -> None:  # fmt: skip
        """A non-JSON 502 page is retried like any server error."""
        sim.fail_next(1, kind="html")
        reply = client_for(openai_client, timeline).chat.completions.create(
            model="gpt-4o", messages=USER
        )
        assert reply.choices and sim.statuses() == [502, 200]

    def test_whole_chain_down_raises_the_last_error(self, openai_client: openai.OpenAI, sim: LLMSimulator,
                                                    timeline: Timeline) -> None:  # fmt: skip
        """When every model of the chain fails, the last model's error is raised unchanged."""
        sim.set_faults(model_down=True)
        client = client_for(openai_client, timeline, fallback_models=("gpt-4o-mini",),
                            server_error=RetryPolicy(max_retries=1), breaker=NO_BREAKER)  # fmt: skip
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model="gpt-4o", messages=USER)
        assert info.value.status_code == 503
        assert [r.model for r in sim.requests] == ["gpt-4o", "gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]


class TestNotRetryable:
    def test_401_is_raised_at_once_unchanged(self, sim: LLMSimulator, timeline: Timeline) -> None:
        """A wrong API key raises AuthenticationError on the first attempt: no retry, no fallback, no wait."""
        sim.fail_next(1, status=401)
        with openai.OpenAI(base_url=sim.base_url, api_key="bad", max_retries=0) as raw:
            client = client_for(raw, timeline, fallback_models=("gpt-4o-mini",))
            with pytest.raises(openai.AuthenticationError) as info:
                client.chat.completions.create(model="gpt-4o", messages=USER)
        assert info.value.code == "invalid_api_key"
        assert len(sim.requests) == 1 and timeline.sleeps == []

    def test_bad_request_is_raised_at_once(self, openai_client: openai.OpenAI, sim: LLMSimulator,
                                           timeline: Timeline) -> None:  # fmt: skip
        """A 400 that is not about context (max_tokens too large) is raised at once."""
        client = client_for(openai_client, timeline, fallback_models=("gpt-4o-mini",))
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="gpt-3.5-turbo", messages=USER, max_tokens=100_000)
        assert info.value.param == "max_tokens"
        assert len(sim.requests) == 1

    def test_unknown_model_is_raised_at_once(self, openai_client: openai.OpenAI, sim: LLMSimulator,
                                             timeline: Timeline) -> None:  # fmt: skip
        """A 404 model_not_found is a caller's mistake: raised, not papered over by a fallback."""
        client = client_for(openai_client, timeline, fallback_models=("gpt-4o-mini",))
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="gpt-9", messages=USER)
        assert len(sim.requests) == 1

    def test_the_very_exception_object_is_raised(self, timeline: Timeline) -> None:
        """Recovery re-raises the caller's own exception object, not a copy or a wrapper."""
        original = ValueError("bug in user code")

        def broken(model: str, messages: list[dict[str, str]]) -> None:
            raise original

        with pytest.raises(ValueError) as info:
            timeline.recoverer().call(broken, model="gpt-4o", messages=USER)
        assert info.value is original


class TestContextOverflow:
    def long_chat(self, turns: int = 12, words: int = 3000) -> list[dict[str, str]]:
        chat = [{"role": "system", "content": "You are a support agent."}]
        for i in range(turns):
            chat.append(
                {
                    "role": "user" if i % 2 == 0 else "assistant",
                    "content": f"turn{i} " + "word " * words,
                }
            )
        chat.append({"role": "user", "content": "So, where is my order?"})
        return chat

    def test_oldest_turns_are_dropped_keeping_system_and_last(self, openai_client: openai.OpenAI,
                                                              sim: LLMSimulator, timeline: Timeline) -> None:  # fmt: skip
        """An overflow on a 16k model drops the oldest turns, keeps the system prompt and the question, and succeeds."""
        chat = self.long_chat()
        reply = client_for(openai_client, timeline).chat.completions.create(
            model="gpt-3.5-turbo", messages=chat
        )
        assert reply.choices
        assert sim.statuses() == [400, 200]
        first, second = sim.requests
        assert first.n_messages == 14 and second.n_messages < 14
        assert second.prompt_tokens <= 16_385
        assert timeline.sleeps == []

    def test_single_huge_message_is_truncated(self, openai_client: openai.OpenAI, sim: LLMSimulator,
                                              timeline: Timeline) -> None:  # fmt: skip
        """When only the system prompt and one message remain, the message is truncated to fit."""
        chat = [
            {"role": "system", "content": "Summarise."},
            {"role": "user", "content": "x" * 100_000},
        ]
        reply = client_for(openai_client, timeline).chat.completions.create(
            model="gpt-3.5-turbo", messages=chat
        )
        assert reply.choices
        assert sim.statuses() == [400, 200]
        assert sim.requests[1].n_messages == 2

    def test_custom_reducer_is_used(self, openai_client: openai.OpenAI, sim: LLMSimulator,
                                    timeline: Timeline) -> None:  # fmt: skip
        """A user reducer gets the messages and the numbers from the error, and its result is sent."""
        seen: list[ReductionInfo] = []

        def keep_system_and_last(
            messages: list[dict[str, str]], info: ReductionInfo
        ) -> list[dict[str, str]]:
            seen.append(info)
            return [messages[0], messages[-1]]

        client = RecoveringClient(openai_client, reducer=keep_system_and_last, **timeline.options())
        client.chat.completions.create(model="gpt-3.5-turbo", messages=self.long_chat())
        assert [r.n_messages for r in sim.requests] == [14, 2]
        assert (
            seen[0].context_window == 16_385
            and seen[0].prompt_tokens == sim.requests[0].prompt_tokens
        )

    def test_irreducible_overflow_raises_the_bad_request(self, openai_client: openai.OpenAI,
                                                         sim: LLMSimulator, timeline: Timeline) -> None:  # fmt: skip
        """A reducer that cannot shrink (returns None) leaves the BadRequestError to the caller."""
        client = RecoveringClient(
            openai_client, reducer=lambda messages, info: None, **timeline.options()
        )
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="gpt-3.5-turbo", messages=self.long_chat())
        assert info.value.code == "context_length_exceeded"
        assert len(sim.requests) == 1


class TestCircuitBreaker:
    def test_breaker_opens_skips_the_model_and_closes_again(self, openai_client: openai.OpenAI,
                                                            sim: LLMSimulator, timeline: Timeline) -> None:  # fmt: skip
        """A down model opens its breaker; calls then go straight to the fallback; after the reset
        timeout one trial call closes it again once the model is back."""
        sim.set_faults(model_down=True, model="gpt-4o")
        breaker = BreakerPolicy(failure_threshold=3, window_s=60, reset_timeout_s=30)
        client = client_for(openai_client, timeline, fallback_models=("gpt-4o-mini",), breaker=breaker,
                            server_error=RetryPolicy(max_retries=2))  # fmt: skip
        assert client.chat.completions.create(model="gpt-4o", messages=USER).model == "gpt-4o-mini"
        assert client.recoverer.breaker_states()["gpt-4o"] == "open"
        sim.reset(faults=False)
        assert client.chat.completions.create(model="gpt-4o", messages=USER).model == "gpt-4o-mini"
        assert [r.model for r in sim.requests] == ["gpt-4o-mini"]  # gpt-4o not even tried
        sim.clear_faults("gpt-4o")
        timeline.clock.advance(30)
        assert client.recoverer.breaker_states()["gpt-4o"] == "half_open"
        assert client.chat.completions.create(model="gpt-4o", messages=USER).model == "gpt-4o"
        assert client.recoverer.breaker_states()["gpt-4o"] == "closed"

    def test_failed_trial_reopens(self, openai_client: openai.OpenAI, sim: LLMSimulator,
                                  timeline: Timeline) -> None:  # fmt: skip
        """A half-open breaker whose trial call fails opens again for another reset timeout."""
        sim.set_faults(model_down=True, model="gpt-4o")
        client = client_for(openai_client, timeline, fallback_models=("gpt-4o-mini",),
                            breaker=BreakerPolicy(failure_threshold=1, reset_timeout_s=10),
                            server_error=RetryPolicy(max_retries=0))  # fmt: skip
        client.chat.completions.create(model="gpt-4o", messages=USER)
        timeline.clock.advance(10)
        client.chat.completions.create(model="gpt-4o", messages=USER)
        assert client.recoverer.breaker_states()["gpt-4o"] == "open"
        assert [r.model for r in sim.requests] == ["gpt-4o", "gpt-4o-mini", "gpt-4o", "gpt-4o-mini"]

    def test_open_breaker_without_fallback_raises_circuit_open(self, openai_client: openai.OpenAI,
                                                               sim: LLMSimulator, timeline: Timeline) -> None:  # fmt: skip
        """With nothing to fall back to, an open breaker raises CircuitOpenError without calling."""
        sim.set_faults(model_down=True)
        client = client_for(openai_client, timeline, breaker=BreakerPolicy(failure_threshold=2),
                            server_error=RetryPolicy(max_retries=1))  # fmt: skip
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="gpt-4o", messages=USER)
        with pytest.raises(CircuitOpenError, match="gpt-4o"):
            client.chat.completions.create(model="gpt-4o", messages=USER)
        assert len(sim.requests) == 2

    def test_client_errors_do_not_open_the_breaker(self, openai_client: openai.OpenAI, sim: LLMSimulator,
                                                   timeline: Timeline) -> None:  # fmt: skip
        """Bad requests prove the provider is up: they never count towards opening."""
        client = client_for(openai_client, timeline, breaker=BreakerPolicy(failure_threshold=1))
        for _ in range(3):
            with pytest.raises(openai.BadRequestError):
                client.chat.completions.create(
                    model="gpt-3.5-turbo", messages=USER, max_tokens=10**6
                )
        assert client.recoverer.breaker_states()["gpt-3.5-turbo"] == "closed"
