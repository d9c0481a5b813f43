"""Policy configuration (code and YAML), error classification and the default reducer."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from llmpulse.errors import CircuitOpenError, ConfigError
from llmpulse.recovery import (
    DropOldestThenTruncate,
    ErrorClass,
    LimiterPolicy,
    RecoveryPolicy,
    ReductionInfo,
    RetryPolicy,
    classify,
    estimate_tokens,
    retry_after_seconds,
)
from llmpulse.simulator import LLMSimulator

YAML = """\
recovery:
  fallback_models: [gpt-4o-mini, gpt-3.5-turbo]
  max_elapsed_s: 90
  rate_limit: {max_retries: 4, max_retry_after_s: 20}
  server_error: {max_retries: 3, base_delay_s: 0.2}
  timeout: {multiplier: 3, max_timeout_s: 60}
  context: {max_reductions: 2, keep_last: 2}
  breaker: {failure_threshold: 10, window_s: 30, reset_timeout_s: 15}
  limiter:
    requests_per_minute: 500
    per_model:
      gpt-4o: {requests_per_minute: 100, tokens_per_minute: 30000}
"""


class TestPolicyConfig:
    def test_yaml_file_sets_every_section(self, tmp_path: Path) -> None:
        """A YAML file under a `recovery:` key configures every section; the rest keep defaults."""
        path = tmp_path / "recovery.yaml"
        path.write_text(YAML)
        policy = RecoveryPolicy.from_yaml(path)
        assert policy.fallback_models == ("gpt-4o-mini", "gpt-3.5-turbo")
        assert policy.rate_limit.max_retries == 4 and policy.rate_limit.honor_retry_after
        assert policy.server_error == RetryPolicy(max_retries=3, base_delay_s=0.2)
        assert policy.timeout.multiplier == 3 and policy.context.keep_last == 2
        assert policy.breaker.reset_timeout_s == 15
        assert policy.limiter.for_model("gpt-4o").tokens_per_minute == 30000
        assert policy.limiter.for_model("gpt-4o-mini").requests_per_minute == 500
        assert policy.connection == RetryPolicy()

    def test_defaults_are_sensible(self) -> None:
        """The default policy retries, honours Retry-After, has a breaker and no client-side limit."""
        policy = RecoveryPolicy()
        assert policy.rate_limit.honor_retry_after and policy.rate_limit.max_retries == 5
        assert policy.breaker.enabled and policy.limiter == LimiterPolicy()
        assert policy.fallback_models == ()

    @pytest.mark.parametrize(
        ("data", "names"),
        [
            ({"retries": 3}, "retries"),
            ({"server_error": {"max_retrys": 1}}, "max_retrys"),
            ({"server_error": {"max_retries": -1}}, "max_retries"),
            ({"breaker": {"scope": "planet"}}, "scope"),
            ({"fallback_on": ["weather"]}, "fallback_on"),
            ({"rate_limit": "fast"}, "rate_limit"),
            ({"limiter": {"requests_per_minute": 0}}, "requests_per_minute"),
        ],
    )
    def test_bad_settings_name_the_key(self, data: dict[str, object], names: str) -> None:
        """Unknown keys and out-of-range values raise ConfigError naming the key."""
        with pytest.raises(ConfigError, match=names):
            RecoveryPolicy.from_dict(data)

    def test_unreadable_and_invalid_files(self, tmp_path: Path) -> None:
        """A missing file or broken YAML raises ConfigError naming the file."""
        with pytest.raises(ConfigError, match="cannot read"):
            RecoveryPolicy.from_yaml(tmp_path / "absent.yaml")
        broken = tmp_path / "broken.yaml"
        broken.write_text("recovery: [unclosed")
        with pytest.raises(ConfigError, match="not valid YAML"):
            RecoveryPolicy.from_yaml(broken)


class TestClassify:
    def test_openai_errors_from_the_simulator(self, sim: LLMSimulator) -> None:
        """Real openai exceptions sort into the right classes, and Retry-After is read."""
        raised: dict[str, BaseException] = {}
        with openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as client:
            for name, kwargs in (("429", {"status": 429}), ("500", {"status": 500}), ("503", {"status": 503}),
                                 ("400", {"status": 400}), ("401", {"status": 401}), ("html", {"kind": "html"})):  # fmt: skip
                sim.fail_next(1, retry_after=4, **kwargs)  # type: ignore[arg-type]
                try:
                    client.chat.completions.create(
                        model="gpt-4o", messages=[{"role": "user", "content": "x"}]
                    )
                except openai.APIError as exc:
                    raised[name] = exc
        classes = {name: classify(exc) for name, exc in raised.items()}
        assert classes == {
            "429": ErrorClass.RATE_LIMIT, "500": ErrorClass.SERVER, "503": ErrorClass.SERVER,
            "400": ErrorClass.CONTEXT_LENGTH, "401": ErrorClass.NOT_RETRYABLE, "html": ErrorClass.SERVER,
        }  # fmt: skip
        assert retry_after_seconds(raised["429"]) == 4.0

    def test_builtin_errors(self) -> None:
        """Timeouts, connection errors, our own CircuitOpenError and plain bugs are told apart."""
        assert classify(TimeoutError()) is ErrorClass.TIMEOUT
        assert classify(ConnectionResetError()) is ErrorClass.CONNECTION
        assert classify(CircuitOpenError("open")) is ErrorClass.CIRCUIT_OPEN
        assert classify(KeyError("x")) is ErrorClass.NOT_RETRYABLE

    def test_custom_classifier_goes_first(self) -> None:
        """A custom classifier decides when it returns a class, the default otherwise."""
        custom = lambda exc: ErrorClass.SERVER if isinstance(exc, KeyError) else None  # noqa: E731
        assert classify(KeyError("x"), custom) is ErrorClass.SERVER
        assert classify(TimeoutError(), custom) is ErrorClass.TIMEOUT

    def test_retry_after_forms(self) -> None:
        """retry-after-ms wins, then seconds, then an HTTP date; garbage gives None."""

        class Response:
            def __init__(self, headers: dict[str, str]) -> None:
                self.headers = headers

        class Throttled(Exception):
            def __init__(self, headers: dict[str, str]) -> None:
                self.response = Response(headers)

        assert retry_after_seconds(Throttled({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
        assert retry_after_seconds(Throttled({"retry-after": "0.25"})) == 0.25
        dated = Throttled({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"})
        assert retry_after_seconds(dated, now=lambda: 1445412480.0) == 30.0
        assert retry_after_seconds(Throttled({"retry-after": "soon"})) is None
        assert retry_after_seconds(ValueError()) is None


def info(messages: list[dict[str, str]], target: int) -> ReductionInfo:
    return ReductionInfo(1, ValueError(), None, None, estimate_tokens(messages), target)


class TestDefaultReducer:
    def test_drops_oldest_turns_keeping_system(self) -> None:
        """The oldest turns go first; system messages and the last message stay, in order."""
        chat = [{"role": "system", "content": "rules"}] + [
            {"role": "user", "content": f"m{i} " + "x" * 400} for i in range(5)]  # fmt: skip
        reduced = DropOldestThenTruncate()(chat, info(chat, target=250))
        assert reduced is not None
        assert reduced[0] == chat[0] and reduced[-1] == chat[-1]
        assert [m["content"][:2] for m in reduced[1:]] == ["m3", "m4"]
        assert chat[1]["content"].startswith("m0")  # the input is not mutated

    def test_never_starts_with_an_orphan_tool_answer(self) -> None:
        """Dropping an assistant tool call drops its tool answers too."""
        chat = [
            {"role": "user", "content": "a" * 800},
            {"role": "assistant", "content": "", "tool_calls": "call"},
            {"role": "tool", "content": "b" * 800},
            {"role": "user", "content": "question"},
        ]
        reduced = DropOldestThenTruncate()(chat, info(chat, target=50))
        assert reduced is not None and [m["role"] for m in reduced] == ["user"]

    def test_truncates_what_cannot_be_dropped(self) -> None:
        """A single oversized message is cut in the middle, keeping its start and end."""
        chat = [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "START " + "x" * 8000 + " END"},
        ]
        reduced = DropOldestThenTruncate()(chat, info(chat, target=500))
        assert reduced is not None and estimate_tokens(reduced) <= 500
        content = reduced[1]["content"]
        assert content.startswith("START") and content.endswith("END") and "truncated" in content

    def test_nothing_to_reduce_gives_none(self) -> None:
        """When only system messages are over the target, the reducer gives up (None)."""
        chat = [{"role": "system", "content": "s" * 4000}, {"role": "user", "content": "q"}]
        assert DropOldestThenTruncate()(chat, info(chat, target=10)) is None
