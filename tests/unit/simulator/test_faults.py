"""Each fault, as the real openai client sees it; switched at runtime, globally and per model."""

from __future__ import annotations

import contextlib

import httpx
import openai
import pytest

from llmpulse.errors import SimulatorError
from llmpulse.simulator import Faults, LLMSimulator, SimulatorConfig

USER = [{"role": "user", "content": "Summarise why retries need jitter."}]


def call(client: openai.OpenAI, model: str = "gpt-4o-mini", **kwargs: object) -> object:
    return client.chat.completions.create(model=model, messages=USER, **kwargs)


class TestScriptedFailures:
    def test_rate_limit_carries_retry_after(self, client: openai.OpenAI, sim: LLMSimulator) -> None:
        """fail_next(429) raises RateLimitError whose response has Retry-After and x-ratelimit-* headers."""
        sim.fail_next(1, status=429, retry_after=2.5)
        with pytest.raises(openai.RateLimitError) as info:
            call(client)
        headers = info.value.response.headers
        assert headers["retry-after"] == "2.5"
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert "x-ratelimit-limit-tokens" in headers
        assert info.value.code == "rate_limit_exceeded"
        assert call(client).choices  # only one failure was queued

    def test_exact_sequence_then_success(self, client: openai.OpenAI, sim: LLMSimulator) -> None:
        """fail_next(n) fails exactly the next n requests, in order, then answers normally."""
        sim.fail_next(2, status=500)
        sim.fail_next(1, status=429, retry_after=1)
        for expected in (
            openai.InternalServerError,
            openai.InternalServerError,
            openai.RateLimitError,
        ):
            with pytest.raises(expected):
                call(client)
        call(client)
        assert sim.statuses() == [500, 500, 429, 200]
        assert [r.fault for r in sim.requests] == [
            "server_error",
            "server_error",
            "rate_limit",
            None,
        ]
        assert sim.pending_failures == 0

    def test_model_queue_only_hits_that_model(
        self, client: openai.OpenAI, sim: LLMSimulator
    ) -> None:
        """A failure queued for one model leaves other models untouched."""
        sim.fail_next(1, status=503, model="gpt-4o")
        call(client, "gpt-4o-mini")
        with pytest.raises(openai.InternalServerError) as info:
            call(client, "gpt-4o")
        assert info.value.status_code == 503
        assert sim.statuses() == [200, 503]

    def test_context_length_kind(self, client: openai.OpenAI, sim: LLMSimulator) -> None:
        """fail_next(400) raises BadRequestError with code context_length_exceeded."""
        sim.fail_next(1, status=400)
        with pytest.raises(openai.BadRequestError) as info:
            call(client)
        assert info.value.code == "context_length_exceeded"
        assert info.value.param == "messages"

    def test_auth_kind(self, client: openai.OpenAI, sim: LLMSimulator) -> None:
        """fail_next(401) raises AuthenticationError."""
        sim.fail_next(1, status=401)
        with pytest.raises(openai.AuthenticationError) as info:
            call(client)
        assert info.value.code == "invalid_api_key"

    def test_html_page_is_not_json(self, client: openai.OpenAI, sim: LLMSimulator) -> None:
        """The html kind answers a 502 HTML page that the client cannot parse as an error body."""
        sim.fail_next(1, kind="html")
        with pytest.raises(openai.InternalServerError) as info:
            call(client)
        assert info.value.status_code == 502
        assert info.value.response.headers["content-type"].startswith("text/html")
        assert "<h1>502 Bad Gateway</h1>" in info.value.response.text
        assert info.value.body is None or isinstance(info.value.body, str)

    def test_slow_answer_times_out_the_client(self, sim: LLMSimulator) -> None:
        """The slow kind delays an otherwise normal answer, so a short client timeout fires."""
        sim.fail_next(1, kind="slow", delay_s=2.0)
        with (
            openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0, timeout=0.2) as c,
            pytest.raises(openai.APITimeoutError),
        ):
            call(c)

    def test_bad_fail_next_arguments(self, sim: LLMSimulator) -> None:
        """An unknown kind or an unusable status is refused with the accepted values."""
        with pytest.raises(SimulatorError, match="kind must be one of"):
            sim.fail_next(1, kind="explode")
        with pytest.raises(SimulatorError, match="pick 400, 401, 429 or a 5xx"):
            sim.fail_next(1, status=302)


class TestProbabilisticFaults:
    def test_rates_are_honoured_and_add_up(self, client: openai.OpenAI, sim: LLMSimulator) -> None:
        """rate_limit_rate=0.2 and error_rate=0.1 fail about 30% of 200 requests, in both kinds."""
        sim.set_faults(Faults(rate_limit_rate=0.2, error_rate=0.1, retry_after_s=0.5))
        for _ in range(200):
            with contextlib.suppress(openai.APIStatusError):
                call(client, max_tokens=1)
        statuses = sim.statuses()
        assert 25 <= statuses.count(429) <= 55
        assert 8 <= statuses.count(500) <= 35

    def test_same_seed_same_fault_sequence(self) -> None:
        """Two simulators with one seed fail the same requests."""
        runs = []
        for _ in range(2):
            config = SimulatorConfig(seed=5, faults=Faults(error_rate=0.5))
            with (
                LLMSimulator(config) as sim,
                openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0) as c,
            ):
                for _ in range(20):
                    with contextlib.suppress(openai.InternalServerError):
                        call(c, max_tokens=1)
                runs.append(sim.statuses())
        assert runs[0] == runs[1]
        assert 500 in runs[0] and 200 in runs[0]

    def test_injected_context_errors(self, client: openai.OpenAI, sim: LLMSimulator) -> None:
        """context_error_rate=1 answers every request with context_length_exceeded."""
        sim.set_faults(context_error_rate=1.0)
        with pytest.raises(openai.BadRequestError) as info:
            call(client)
        assert info.value.code == "context_length_exceeded"

    def test_html_error_rate(self, client: openai.OpenAI, sim: LLMSimulator) -> None:
        """html_error_rate=1 answers an HTML 502 page."""
        sim.set_faults(html_error_rate=1.0)
        with pytest.raises(openai.InternalServerError) as info:
            call(client)
        assert info.value.status_code == 502


class TestRuntimeSwitching:
    def test_model_down_and_back(self, client: openai.OpenAI, sim: LLMSimulator) -> None:
        """A model set down answers 503 while others answer; clearing it brings it back."""
        sim.set_faults(Faults(model_down=True), model="gpt-4o")
        with pytest.raises(openai.InternalServerError) as info:
            call(client, "gpt-4o")
        assert info.value.status_code == 503
        assert call(client, "gpt-4o-mini").choices
        sim.clear_faults("gpt-4o")
        assert call(client, "gpt-4o").choices

    def test_down_status_can_be_500(self, client: openai.OpenAI, sim: LLMSimulator) -> None:
        """down_status picks the status a down model answers."""
        sim.set_faults(model_down=True, down_status=500, model="gpt-4o")
        with pytest.raises(openai.InternalServerError) as info:
            call(client, "gpt-4o")
        assert info.value.status_code == 500

    def test_partial_change_keeps_other_settings(self, sim: LLMSimulator) -> None:
        """set_faults(**changes) changes only the named fields of the faults in force."""
        sim.set_faults(Faults(error_rate=0.2, latency_median_ms=5))
        now = sim.set_faults(latency_scale=10)
        assert (now.error_rate, now.latency_median_ms, now.latency_scale) == (0.2, 5, 10)

    def test_reset_restores_config_faults(self) -> None:
        """reset() goes back to the faults the simulator was configured with."""
        sim = LLMSimulator(SimulatorConfig(faults=Faults(error_rate=0.1)))
        sim.set_faults(error_rate=0.9)
        sim.reset()
        assert sim.faults().error_rate == 0.1

    def test_invalid_faults_are_refused(self, sim: LLMSimulator) -> None:
        """Out-of-range or unknown fault settings raise SimulatorError naming the field."""
        with pytest.raises(SimulatorError, match="error_rate"):
            Faults(error_rate=1.5)
        with pytest.raises(SimulatorError, match=r"sum must be at most 1\.0"):
            Faults(error_rate=0.6, rate_limit_rate=0.6)
        with pytest.raises(SimulatorError, match="unknown fault setting"):
            sim.set_faults(eror_rate=0.1)
        with pytest.raises(SimulatorError, match="5xx"):
            Faults(error_status=404)


class TestRateLimitBucket:
    def test_bucket_admits_n_then_429s_with_time_to_wait(self) -> None:
        """A bucket of 3 per window answers the 4th request 429 with Retry-After = time until a slot frees."""
        now = [1000.0]
        config = SimulatorConfig(faults=Faults(rate_limit_requests=3, rate_limit_window_s=10))
        with (
            LLMSimulator(config, clock=lambda: now[0]) as sim,
            openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0) as c,
        ):
            for i in range(3):
                now[0] += 1
                r = c.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)
                assert r.headers["x-ratelimit-remaining-requests"] == str(2 - i)
            with pytest.raises(openai.RateLimitError) as info:
                call(c, "gpt-4o")
            assert float(info.value.response.headers["retry-after"]) == pytest.approx(8.0)
            assert call(c, "gpt-4o-mini").choices  # buckets are per model
            now[0] += 8.01
            assert call(c, "gpt-4o").choices


class TestLatencyAndTokens:
    def test_latency_is_planned_from_the_distribution(
        self, client: openai.OpenAI, sim: LLMSimulator
    ) -> None:
        """With sigma 0 every answer takes the median times latency_scale (reported in openai-processing-ms)."""
        sim.set_faults(Faults(latency_median_ms=20, latency_scale=2))
        r = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)
        assert r.headers["openai-processing-ms"] == "40"

    def test_token_blowup_multiplies_completion_tokens(self) -> None:
        """token_blowup=4 makes the same seeded answer four times longer."""
        lengths = []
        for blowup in (1.0, 4.0):
            config = SimulatorConfig(seed=1, faults=Faults(token_blowup=blowup))
            with (
                LLMSimulator(config) as sim,
                openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0) as c,
            ):
                lengths.append(call(c, "gpt-4o").usage.completion_tokens)
        assert lengths[1] == pytest.approx(4 * lengths[0], abs=2)

    def test_slow_stream_still_delivers_everything(
        self, client: openai.OpenAI, sim: LLMSimulator
    ) -> None:
        """With a chunk delay the stream is slower but complete."""
        sim.set_faults(stream_chunk_delay_ms=1)
        chunks = list(call(client, max_tokens=5, stream=True))
        assert chunks[-1].choices[0].finish_reason == "length"
        assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 5


class TestRealLimits:
    def test_context_window_exceeded(self, client: openai.OpenAI) -> None:
        """Messages above the model's window raise BadRequestError context_length_exceeded, worded like OpenAI."""
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(
                model="gpt-3.5-turbo", messages=[{"role": "user", "content": "x" * 80_000}]
            )
        assert info.value.code == "context_length_exceeded"
        assert "maximum context length is 16385 tokens" in info.value.message
        assert "your messages resulted in 20006 tokens" in info.value.message

    def test_max_tokens_above_model_limit(self, client: openai.OpenAI) -> None:
        """max_tokens above the model's output limit is a 400 on param max_tokens."""
        with pytest.raises(openai.BadRequestError) as info:
            call(client, "gpt-3.5-turbo", max_tokens=100_000)
        assert info.value.param == "max_tokens"

    def test_unknown_model_is_404(self, client: openai.OpenAI) -> None:
        """An unknown model raises NotFoundError model_not_found, like the real API."""
        with pytest.raises(openai.NotFoundError) as info:
            call(client, "gpt-5-imaginary")
        assert info.value.code == "model_not_found"

    def test_api_key_is_checked_when_configured(self) -> None:
        """With api_key set, a wrong key gets 401 and the right one is served."""
        with LLMSimulator(SimulatorConfig(api_key="s3cret")) as sim:
            with (
                openai.OpenAI(base_url=sim.base_url, api_key="wrong", max_retries=0) as c,
                pytest.raises(openai.AuthenticationError),
            ):
                call(c)
                with pytest.raises(openai.AuthenticationError):
                    c.models.list()
            with openai.OpenAI(base_url=sim.base_url, api_key="s3cret", max_retries=0) as c:
                assert call(c).choices

    def test_malformed_bodies_are_400(self, sim: LLMSimulator) -> None:
        """Non-JSON bodies, missing messages and bad max_tokens get 400 invalid_request_error."""
        with httpx.Client(base_url=sim.base_url) as http:
            bad_json = http.post(
                "/chat/completions",
                content=b"{not json",
                headers={"content-type": "application/json"},
            )
            no_messages = http.post("/chat/completions", json={"model": "gpt-4o"})
            bad_max = http.post(
                "/chat/completions", json={"model": "gpt-4o", "messages": USER, "max_tokens": 0}
            )
        assert [r.status_code for r in (bad_json, no_messages, bad_max)] == [400, 400, 400]
        assert no_messages.json()["error"]["param"] == "messages"
        assert bad_max.json()["error"]["type"] == "invalid_request_error"
