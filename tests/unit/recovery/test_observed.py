"""What recovery records: span events and attributes on the trace, metric points in the SDK."""

from __future__ import annotations

import os
from collections import Counter

import openai
import pytest

import llmpulse
from llmpulse.errors import CircuitOpenError
from llmpulse.recovery import METRICS, BreakerPolicy, RecoveringClient, RecoveryPolicy, RetryPolicy
from llmpulse.recovery._observe import Recorder, counter_increase
from llmpulse.schema import MetricPoint, Span
from llmpulse.simulator import LLMSimulator
from llmpulse.testing import InMemoryExporter

from .conftest import Timeline

USER = [{"role": "user", "content": "Where is my order?"}]


def exported(exporter: InMemoryExporter) -> tuple[list[Span], list[MetricPoint]]:
    assert llmpulse.flush(5.0)
    return exporter.spans, exporter.points


def totals(points: list[MetricPoint], name: str) -> Counter[tuple[tuple[str, str], ...]]:
    """The increase of each counter series (labels without ``instance``) over ``points``."""
    series: dict[tuple[tuple[str, str], ...], list[MetricPoint]] = {}
    for p in points:
        if p.name == name:
            labels = dict(p.labels)
            assert labels.pop("instance").endswith(f":{os.getpid()}")
            series.setdefault(tuple(sorted(labels.items())), []).append(p)
    return Counter({key: counter_increase(ps) for key, ps in series.items()})


class TestCounterSemantics:
    def test_total_points_are_cumulative(self, exporter: InMemoryExporter) -> None:
        """Each point of a _total counter is the running total, as Prometheus counters are."""
        recorder = Recorder()
        for _ in range(3):
            recorder.metric("llmpulse_recovery_retries_total", 1, model="m", reason="timeout")
        recorder.metric("llmpulse_recovery_backoff_seconds_total", 0.5, model="m")
        recorder.metric("llmpulse_recovery_backoff_seconds_total", 1.5, model="m")
        _, points = exported(exporter)
        retries = [p.value for p in points if p.name == "llmpulse_recovery_retries_total"]
        backoff = [p.value for p in points if p.name == "llmpulse_recovery_backoff_seconds_total"]
        assert retries == [1.0, 2.0, 3.0] and backoff == [0.5, 2.0]

    def test_increase_survives_a_restart_and_a_lost_point(self) -> None:
        """counter_increase reads a drop to a lower value as a restart from zero."""
        values = [MetricPoint("c_total", v, float(t)) for t, v in enumerate([2, 3, 5, 1, 4])]
        assert counter_increase(values, before=1.0) == (5 - 1) + 1 + (4 - 1)
        assert counter_increase(values[::2]) == 2 + 3 + 4  # 2, 5, then a restart to 4


class TestTrace:
    def test_retries_and_fallback_are_span_events(self, exporter: InMemoryExporter, openai_client: openai.OpenAI,
                                                  sim: LLMSimulator, timeline: Timeline) -> None:  # fmt: skip
        """One recovery span holds a retry event per retry, a fallback event, and the outcome attributes;
        every attempt's llm span is its child."""
        sim.fail_next(1, status=429, retry_after=2)
        sim.fail_next(5, status=503, model="gpt-4o")
        policy = RecoveryPolicy(fallback_models=("gpt-4o-mini",), server_error=RetryPolicy(max_retries=1),
                                breaker=BreakerPolicy(enabled=False))  # fmt: skip
        RecoveringClient(openai_client, policy, **timeline.options()).chat.completions.create(
            model="gpt-4o", messages=USER)  # fmt: skip
        spans, _ = exported(exporter)
        (recovery,) = [s for s in spans if s.name == "recovery"]
        llm = [s for s in spans if s.kind == "llm"]
        assert len(llm) == 4 and all(s.parent_id == recovery.span_id for s in llm)
        events = [(e.name, e.attributes.get("reason")) for e in recovery.events]
        # gpt-4o's own queue first (503, 503), then the global 429 hits the fallback model.
        assert events == [
            ("retry", "server_error"),
            ("fallback", "server_error"),
            ("retry", "rate_limit"),
        ]
        retry = recovery.events[0].attributes
        assert retry["model"] == "gpt-4o" and retry["wait_s"] > 0 and "status_code" in retry
        attrs = recovery.attributes
        assert attrs["llmpulse.recovery.outcome"] == "recovered"
        assert attrs["llmpulse.recovery.model_used"] == "gpt-4o-mini"
        assert attrs["llmpulse.recovery.fallbacks"] == 1
        assert attrs["llmpulse.recovery.attempts"] == 4
        assert attrs["llmpulse.recovery.backoff_ms"] == pytest.approx(
            sum(timeline.sleeps) * 1000, abs=0.01
        )

    def test_reduction_is_an_event_with_numbers(self, exporter: InMemoryExporter, openai_client: openai.OpenAI,
                                                sim: LLMSimulator, timeline: Timeline) -> None:  # fmt: skip
        """A context reduction records strategy, messages and tokens before and after."""
        chat = [{"role": "system", "content": "Be brief."}] + [
            {"role": "user", "content": "word " * 5000} for _ in range(6)]  # fmt: skip
        RecoveringClient(openai_client, **timeline.options()).chat.completions.create(
            model="gpt-3.5-turbo", messages=chat)  # fmt: skip
        spans, points = exported(exporter)
        (recovery,) = [s for s in spans if s.name == "recovery"]
        (reduced,) = [e for e in recovery.events if e.name == "context_reduced"]
        assert reduced.attributes["strategy"] == "drop_oldest"
        assert reduced.attributes["messages_before"] == 7 > reduced.attributes["messages_after"]
        assert reduced.attributes["context_window"] == 16_385
        assert totals(points, "llmpulse_recovery_reductions_total") == {
            (("model", "gpt-3.5-turbo"), ("strategy", "drop_oldest")): 1
        }

    def test_not_retryable_marks_the_span(self, exporter: InMemoryExporter, openai_client: openai.OpenAI,
                                          sim: LLMSimulator, timeline: Timeline) -> None:  # fmt: skip
        """An error raised at once leaves an errored recovery span with outcome not_retryable."""
        sim.fail_next(1, status=401)
        with pytest.raises(openai.AuthenticationError):
            RecoveringClient(openai_client, **timeline.options()).chat.completions.create(
                model="gpt-4o", messages=USER)  # fmt: skip
        spans, points = exported(exporter)
        (recovery,) = [s for s in spans if s.name == "recovery"]
        assert recovery.status == "error" and recovery.error_type == "AuthenticationError"
        assert recovery.attributes["llmpulse.recovery.outcome"] == "not_retryable"
        assert not [p for p in points if p.name.startswith("llmpulse_recovery")]


class TestMetrics:
    def test_counters_carry_model_and_reason(self, exporter: InMemoryExporter, openai_client: openai.OpenAI,
                                             sim: LLMSimulator, timeline: Timeline) -> None:  # fmt: skip
        """Retries, backoff seconds, fallbacks and recoveries are metric points with their labels."""
        sim.fail_next(2, status=429, retry_after=1.5)
        sim.fail_next(3, status=500, model="gpt-4o-mini")
        policy = RecoveryPolicy(
            fallback_models=("gpt-4o",), server_error=RetryPolicy(max_retries=2)
        )
        client = RecoveringClient(openai_client, policy, **timeline.options())
        client.chat.completions.create(model="gpt-4o", messages=USER)
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        _, points = exported(exporter)
        assert totals(points, "llmpulse_recovery_retries_total") == {
            (("model", "gpt-4o"), ("reason", "rate_limit")): 2,
            (("model", "gpt-4o-mini"), ("reason", "server_error")): 2,
        }
        assert totals(points, "llmpulse_recovery_fallbacks_total") == {
            (("from_model", "gpt-4o-mini"), ("reason", "server_error"), ("to_model", "gpt-4o")): 1
        }
        assert totals(points, "llmpulse_recovery_recovered_total") == {(("model", "gpt-4o"),): 2}
        backoff = totals(points, "llmpulse_recovery_backoff_seconds_total")
        assert sum(backoff.values()) == pytest.approx(sum(timeline.sleeps))
        assert set(totals(points, "llmpulse_recovery_retries_total")) | set(backoff)
        assert all(p.name in METRICS for p in points if p.name.startswith("llmpulse_"))

    def test_breaker_state_gauge_follows_transitions(self, exporter: InMemoryExporter,
                                                     openai_client: openai.OpenAI, sim: LLMSimulator,
                                                     timeline: Timeline) -> None:  # fmt: skip
        """llmpulse_circuit_state goes 2 (open), 1 (half-open), 0 (closed); transitions are span events."""
        sim.set_faults(model_down=True, model="gpt-4o")
        policy = RecoveryPolicy(fallback_models=("gpt-4o-mini",), server_error=RetryPolicy(max_retries=0),
                                breaker=BreakerPolicy(failure_threshold=1, reset_timeout_s=5))  # fmt: skip
        client = RecoveringClient(openai_client, policy, **timeline.options())
        client.chat.completions.create(model="gpt-4o", messages=USER)
        sim.clear_faults("gpt-4o")
        timeline.clock.advance(5)
        client.chat.completions.create(model="gpt-4o", messages=USER)
        spans, points = exported(exporter)
        gauge = [(p.labels["model"], p.value) for p in points if p.name == "llmpulse_circuit_state"]
        assert gauge == [("gpt-4o", 2.0), ("gpt-4o", 1.0), ("gpt-4o", 0.0)]
        transitions = [
            e.attributes["to_state"]
            for s in spans
            for e in s.events
            if e.name == "circuit_transition"
        ]
        assert transitions == ["open", "half_open", "closed"]
        assert sum(totals(points, "llmpulse_recovery_breaker_transitions_total").values()) == 3

    def test_open_breaker_rejections_refresh_the_gauge(
        self, exporter: InMemoryExporter, timeline: Timeline
    ) -> None:
        """While open, refused calls are counted and the gauge is re-recorded at most every 15 s."""
        policy = RecoveryPolicy(breaker=BreakerPolicy(failure_threshold=1, reset_timeout_s=600),
                                connection=RetryPolicy(max_retries=0))  # fmt: skip
        recoverer = timeline.recoverer(policy)

        def down(model: str) -> None:
            raise ConnectionError("refused")

        with pytest.raises(ConnectionError):
            recoverer.call(down, model="m")
        for _ in range(3):
            with pytest.raises(CircuitOpenError):
                recoverer.call(down, model="m")
            timeline.clock.advance(10)
        _, points = exported(exporter)
        assert sum(totals(points, "llmpulse_recovery_breaker_rejections_total").values()) == 3
        assert [p.value for p in points if p.name == "llmpulse_circuit_state"] == [2.0, 2.0]
        assert (
            totals(points, "llmpulse_recovery_giveups_total")[
                (("model", "m"), ("reason", "circuit_open"))
            ]
            == 3
        )


class TestRecordingNeverBreaksCalls:
    def test_works_without_sdk_init(self, openai_client: openai.OpenAI, sim: LLMSimulator,
                                    timeline: Timeline) -> None:  # fmt: skip
        """With llmpulse never initialised, recovery still recovers (recording is a no-op)."""
        sim.fail_next(1, status=500)
        reply = RecoveringClient(openai_client, **timeline.options()).chat.completions.create(
            model="gpt-4o", messages=USER)  # fmt: skip
        assert reply.choices

    def test_record_false_records_nothing(self, exporter: InMemoryExporter, openai_client: openai.OpenAI,
                                          sim: LLMSimulator, timeline: Timeline) -> None:  # fmt: skip
        """RecoveryPolicy(record=False) opens no span and records no point."""
        sim.fail_next(1, status=500)
        RecoveringClient(openai_client, RecoveryPolicy(record=False), **timeline.options()).chat.completions.create(
            model="gpt-4o", messages=USER)  # fmt: skip
        spans, points = exported(exporter)
        assert not [s for s in spans if s.name == "recovery"]
        assert not [p for p in points if "recovery" in p.name]

    def test_broken_classifier_and_reducer_fall_back_to_safe_behaviour(
        self, timeline: Timeline
    ) -> None:
        """A classifier that raises is ignored; a reducer that raises means "cannot reduce"."""

        def bad_classifier(exc: BaseException) -> None:
            raise RuntimeError("oops")

        def bad_reducer(messages: list[dict[str, str]], info: object) -> None:
            raise RuntimeError("oops")

        class Overflow(Exception):
            code = "context_length_exceeded"

        attempts: list[int] = []

        def overflow(model: str, messages: list[dict[str, str]]) -> None:
            attempts.append(1)
            raise Overflow("too long")

        recoverer = timeline.recoverer(classifier=bad_classifier, reducer=bad_reducer)
        with pytest.raises(Overflow):
            recoverer.call(overflow, model="m", messages=USER)
        assert attempts == [1]
