"""The circuit breaker state machine, on a fake clock."""

from __future__ import annotations

import pytest

from llmpulse.errors import CircuitOpenError
from llmpulse.recovery import (
    BreakerPolicy,
    CircuitBreaker,
    CircuitState,
    RecoveryPolicy,
    RetryPolicy,
)

from .conftest import Timeline


def breaker(timeline: Timeline, **policy: object) -> tuple[CircuitBreaker, list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []
    b = CircuitBreaker("gpt-4o", BreakerPolicy(**policy), clock=timeline.now,  # type: ignore[arg-type]
                       on_transition=lambda key, old, new: seen.append((old.value, new.value)))  # fmt: skip
    return b, seen


class TestCircuitBreaker:
    def test_opens_after_threshold_failures_within_window(self, timeline: Timeline) -> None:
        """Three failures within the window open the breaker; it then refuses calls."""
        b, seen = breaker(timeline, failure_threshold=3, window_s=10)
        for _ in range(3):
            assert b.allow()
            b.record_failure()
        assert b.state is CircuitState.OPEN and not b.allow()
        assert seen == [("closed", "open")]

    def test_old_failures_leave_the_window(self, timeline: Timeline) -> None:
        """Failures older than the window do not count."""
        b, _ = breaker(timeline, failure_threshold=3, window_s=10)
        b.record_failure()
        b.record_failure()
        timeline.clock.advance(11)
        b.record_failure()
        assert b.state is CircuitState.CLOSED

    def test_half_open_after_reset_timeout_then_closes_on_success(self, timeline: Timeline) -> None:
        """After reset_timeout_s one trial call is let through; its success closes the breaker."""
        b, seen = breaker(timeline, failure_threshold=1, reset_timeout_s=30)
        b.record_failure()
        timeline.clock.advance(29.9)
        assert not b.allow() and b.retry_in() == pytest.approx(0.1)
        timeline.clock.advance(0.1)
        assert b.allow()  # the trial
        assert not b.allow()  # only one trial at a time
        b.record_success()
        assert b.state is CircuitState.CLOSED and b.allow()
        assert seen == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]

    def test_failed_trial_reopens_for_a_full_timeout(self, timeline: Timeline) -> None:
        """A failing trial call reopens the breaker and restarts the reset timeout."""
        b, seen = breaker(timeline, failure_threshold=1, reset_timeout_s=30)
        b.record_failure()
        timeline.clock.advance(30)
        assert b.allow()
        b.record_failure()
        assert b.state is CircuitState.OPEN and b.retry_in() == pytest.approx(30)
        assert seen[-1] == ("half_open", "open")

    def test_several_trials_must_all_succeed(self, timeline: Timeline) -> None:
        """With half_open_max_calls=2, two successes are needed to close."""
        b, _ = breaker(timeline, failure_threshold=1, reset_timeout_s=1, half_open_max_calls=2)
        b.record_failure()
        timeline.clock.advance(1)
        assert b.allow() and b.allow() and not b.allow()
        b.record_success()
        assert b.state is CircuitState.HALF_OPEN
        b.record_success()
        assert b.state is CircuitState.CLOSED

    def test_cancelled_trial_frees_its_slot(self, timeline: Timeline) -> None:
        """release() gives a half-open slot back when a trial ended without a verdict."""
        b, _ = breaker(timeline, failure_threshold=1, reset_timeout_s=1)
        b.record_failure()
        timeline.clock.advance(1)
        assert b.allow() and not b.allow()
        b.release()
        assert b.allow()

    def test_hook_failure_does_not_break_the_breaker(self, timeline: Timeline) -> None:
        """A transition hook that raises is ignored."""

        def hook(key: str, old: CircuitState, new: CircuitState) -> None:
            raise RuntimeError("observer down")

        b = CircuitBreaker(
            "m", BreakerPolicy(failure_threshold=1), clock=timeline.now, on_transition=hook
        )
        b.record_failure()
        assert b.state is CircuitState.OPEN

    def test_gauge_numbers(self) -> None:
        """States map to the gauge values 0, 1 and 2."""
        assert [s.value_number for s in CircuitState] == [0, 1, 2]


class TestBreakerInRecovery:
    def test_breaker_opening_mid_call_raises_circuit_open_with_the_cause(
        self, timeline: Timeline
    ) -> None:
        """If the breaker opens during a call's retries, CircuitOpenError carries the provider error."""
        policy = RecoveryPolicy(
            breaker=BreakerPolicy(failure_threshold=2), connection=RetryPolicy(max_retries=5)
        )
        cause = ConnectionError("refused")

        def down(model: str) -> None:
            raise cause

        with pytest.raises(CircuitOpenError) as info:
            timeline.recoverer(policy).call(down, model="m")
        assert info.value.last_error is cause and info.value.__cause__ is cause

    def test_provider_scope_shares_one_breaker(self, timeline: Timeline) -> None:
        """scope="provider" keys the breaker by provider, so one model's failures stop the others."""
        policy = RecoveryPolicy(breaker=BreakerPolicy(failure_threshold=1, scope="provider"),
                                connection=RetryPolicy(max_retries=0))  # fmt: skip
        recoverer = timeline.recoverer(policy, provider="acme")

        def down(model: str) -> None:
            raise ConnectionError("refused")

        with pytest.raises(ConnectionError):
            recoverer.call(down, model="a")
        with pytest.raises(CircuitOpenError, match="acme"):
            recoverer.call(lambda model: "fine", model="b")
        assert recoverer.breaker_states() == {"acme": "open"}


class TestFailureRate:
    def test_background_noise_does_not_trip(self, timeline: Timeline) -> None:
        """Many failures that are a small share of the calls leave the breaker closed."""
        b, _ = breaker(timeline, failure_threshold=5, failure_rate_threshold=0.5, window_s=60)
        for i in range(100):
            b.record_failure() if i % 10 == 0 else b.record_success()
        assert b.state is CircuitState.CLOSED

    def test_rate_and_count_both_needed(self, timeline: Timeline) -> None:
        """After successes, failures must reach both the count and the share of calls to open."""
        b, _ = breaker(timeline, failure_threshold=3, failure_rate_threshold=0.5, window_s=60)
        for _ in range(4):
            b.record_success()
        for _ in range(3):
            b.record_failure()
        assert b.state is CircuitState.CLOSED  # 3 of 7 calls
        b.record_failure()
        assert b.state is CircuitState.OPEN  # 4 of 8 calls

    def test_count_only_when_rate_is_none(self, timeline: Timeline) -> None:
        """failure_rate_threshold=None counts failures alone."""
        b, _ = breaker(timeline, failure_threshold=2, failure_rate_threshold=None)
        for _ in range(50):
            b.record_success()
        b.record_failure()
        b.record_failure()
        assert b.state is CircuitState.OPEN
