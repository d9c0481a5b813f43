"""Live traffic checks over a real store: quiet on noise, and each injected spike found in its window."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from llmpulse.checks import CheckConfig, Finding, LiveConfig, SpikeRule, check_traffic
from llmpulse.store import Store
from tests.unit.checks.conftest import T0
from tests.unit.checks.traffic import DEFAULT_MODELS, Incident, Traffic, make_spans

MIN = 60.0
# Four hours of traffic; the incident, when there is one, from 2:00 to 2:30.
INC_START, INC_END = T0 + 120 * MIN, T0 + 150 * MIN

Fill = Callable[[Traffic], Traffic]


def _run(store: Store, traffic: Traffic, **live: Any) -> list[Finding]:
    config = CheckConfig.from_dict({"live": live}).live if live else LiveConfig()
    result = check_traffic(
        store, traffic.start, traffic.end, baseline_start=traffic.start, config=config
    )
    return result.findings


def _with(**change: Any) -> Traffic:
    return Traffic(T0, 240, seed=1, incidents=(Incident(INC_START, INC_END, **change),))


def _inside(f: Finding) -> bool:
    return f.overlaps(INC_START, INC_END, slack=f.details["bucket_seconds"])


class TestNoise:
    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_stationary_traffic_yields_no_findings(
        self, store: Store, filled: Fill, seed: int
    ) -> None:
        """Four hours of stationary traffic (two models, 1% errors, a routing branch) raise nothing."""
        traffic = filled(Traffic(T0, 240, seed=seed))
        assert _run(store, traffic) == []

    def test_rule_mode_is_quiet_on_noise_too(self, store: Store, filled: Fill) -> None:
        """The multiplier rules compare the last hour with the three before and find nothing."""
        traffic = filled(Traffic(T0, 240, seed=3))
        result = check_traffic(
            store, T0 + 180 * MIN, traffic.end, baseline_start=T0, config=LiveConfig(method="rule")
        )
        assert result.findings == [] and result.series_checked > 10

    def test_an_empty_store_has_nothing_to_say(self, store: Store) -> None:
        """No spans: no findings, and the report says there was nothing to check."""
        result = check_traffic(store, T0, T0 + 3600)
        assert result.findings == [] and result.skipped == [
            "no spans in the window or its baseline"
        ]


class TestSpikes:
    def test_latency_spike_is_found_with_its_window_and_evidence(
        self, store: Store, filled: Fill
    ) -> None:
        """p95 latency x3 for 30 minutes: one finding per affected series, inside the window, ~3x."""
        findings = _run(store, filled(_with(latency_x=3.0)))
        assert {(f.check, f.subject.get("model") or f.subject.get("name")) for f in findings} == {
            ("latency_spike", "gpt-4o"),
            ("latency_spike", "answer"),
        }
        llm = next(f for f in findings if f.subject.get("model") == "gpt-4o")
        assert _inside(llm) and llm.severity == "critical" and llm.method == "statistical"
        assert (
            abs(llm.window_start - INC_START) <= 5 * MIN
            and abs(llm.window_end - INC_END) <= 5 * MIN
        )
        assert 2.2 < llm.current / llm.baseline < 4.0  # type: ignore[operator]
        assert llm.subject == {"model": "gpt-4o", "prompt_version": "answer-v2"}
        assert "p95 latency of gpt-4o / answer-v2 rose" in llm.message

    def test_token_spike_raises_tokens_and_cost(self, store: Store, filled: Fill) -> None:
        """Completions x2 show as a token spike and a cost spike on the large model, nowhere else."""
        findings = _run(store, filled(_with(tokens_x=2.0)))
        assert {(f.check, f.metric) for f in findings} == {
            ("token_spike", "output_tokens_per_call"),
            ("cost_spike", "cost_per_call"),
        }
        assert all(_inside(f) and f.subject["model"] == "gpt-4o" for f in findings)
        tokens = next(f for f in findings if f.check == "token_spike")
        assert 1.6 < tokens.current / tokens.baseline < 2.5  # type: ignore[operator]

    def test_error_rate_jump_is_judged_on_counts(self, store: Store, filled: Fill) -> None:
        """30% errors for 30 minutes: one error_rate_jump with a binomial p-value and the counts."""
        [f] = _run(store, filled(_with(error_rate=0.3)))
        assert (f.check, f.metric, f.severity) == ("error_rate_jump", "error_rate", "critical")
        assert _inside(f) and f.p_value is not None and f.p_value < 1e-10
        assert f.baseline < 0.03 and 0.2 < f.current < 0.4  # type: ignore[operator]
        assert f.details["hits"] <= f.details["trials"] and f.details["trials"] > 100

    def test_branch_shift_in_either_direction(self, store: Store, filled: Fill) -> None:
        """Human review going from 25% to 70% of routing decisions is a branch shift."""
        [f] = _run(store, filled(_with(human_review=0.7)))
        assert (f.check, f.subject) == ("branch_shift", {"name": "route", "branch": "human_review"})
        assert _inside(f) and f.current - f.baseline > 0.3  # type: ignore[operator]

    def test_a_lasting_level_shift_reaches_the_end_of_the_window(
        self, store: Store, filled: Fill
    ) -> None:
        """Tokens x1.8 from 2:30 on (a prompt change that stays) is one finding running to the end."""
        traffic = filled(
            Traffic(
                T0, 240, seed=2, incidents=(Incident(T0 + 150 * MIN, T0 + 240 * MIN, tokens_x=1.8),)
            )
        )
        token = [f for f in _run(store, traffic) if f.check == "token_spike"]
        assert len(token) == 1 and token[0].window_end == traffic.end
        assert abs(token[0].window_start - (T0 + 150 * MIN)) <= 5 * MIN
        assert "change_point" in token[0].details["detectors"]

    def test_an_incident_before_the_window_is_not_reported(
        self, store: Store, filled: Fill
    ) -> None:
        """Checking only the last hour, an incident two hours earlier stays in the baseline."""
        traffic = filled(_with(latency_x=3.0, error_rate=0.3))
        result = check_traffic(store, T0 + 180 * MIN, traffic.end, baseline_start=T0)
        assert result.findings == []

    def test_findings_are_json_ready(self, store: Store, filled: Fill) -> None:
        """Every finding serialises to JSON with its window as Unix and ISO times."""
        findings = _run(store, filled(_with(latency_x=3.0, error_rate=0.3)))
        data = json.loads(json.dumps([f.to_dict() for f in findings]))
        assert {d["check"] for d in data} == {"latency_spike", "error_rate_jump"}
        assert all(d["window"]["start_iso"].endswith("Z") for d in data)


class TestDays:
    """Three days of traffic with a daily cycle (volume and latency swing), checking the last day."""

    DAY = 86400.0

    def _traffic(self, *incidents: Incident) -> Traffic:
        slow = tuple(replace(m, calls_per_minute=m.calls_per_minute / 3) for m in DEFAULT_MODELS)
        return Traffic(T0, 3 * 1440, seed=8, models=slow, daily_swing=0.6, incidents=incidents)

    def test_a_daily_cycle_is_not_an_incident(self, store: Store, filled: Fill) -> None:
        """Busy afternoons (more calls, slower answers) raise nothing on the last day."""
        traffic = filled(self._traffic())
        result = check_traffic(store, traffic.end - self.DAY, traffic.end, baseline_start=T0)
        assert result.findings == [] and result.series_checked > 10

    def test_an_hour_of_errors_on_the_last_day_is_found(self, store: Store, filled: Fill) -> None:
        """20% errors for an hour at the quietest time of the last day is an error-rate jump."""
        start = T0 + 2 * self.DAY + 5 * 3600  # 03:13 UTC, the trough of the cycle
        traffic = filled(self._traffic(Incident(start, start + 3600, error_rate=0.2)))
        result = check_traffic(store, traffic.end - self.DAY, traffic.end, baseline_start=T0)
        [f] = result.findings
        assert f.check == "error_rate_jump" and f.overlaps(start, start + 3600)


class TestConfiguration:
    def test_disabled_check_is_not_run(self, store: Store, filled: Fill) -> None:
        """With latency_spike disabled only the error-rate jump is reported."""
        findings = _run(
            store, filled(_with(latency_x=3.0, error_rate=0.3)), latency_spike={"enabled": False}
        )
        assert {f.check for f in findings} == {"error_rate_jump"}

    def test_min_increase_ignores_small_absolute_moves(self, store: Store, filled: Fill) -> None:
        """A latency spike smaller than min_increase (in ms) is not reported, however large in %."""
        traffic = filled(_with(latency_x=3.0))
        assert _run(store, traffic, latency_spike={"min_increase": 10_000}) == []

    def test_too_little_data_is_skipped_and_said(self, store: Store, filled: Fill) -> None:
        """Nine minutes of traffic are too short to judge: no findings, and skipped says why."""
        traffic = filled(Traffic(T0, 9, seed=4))
        result = check_traffic(store, traffic.start, traffic.end, baseline_start=traffic.start)
        assert result.findings == [] and result.series_checked == 0
        assert any(
            "p95_latency_ms of gpt-4o / answer-v2" in s and "needs 12" in s for s in result.skipped
        )

    def test_fixed_bucket_size_is_used(self, store: Store, filled: Fill) -> None:
        """bucket_seconds='5m' puts the evidence on 5-minute buckets."""
        findings = _run(store, filled(_with(error_rate=0.3)), bucket_seconds="5m")
        assert [f.details["bucket_seconds"] for f in findings] == [300]

    def test_window_must_end_after_it_starts(self, store: Store) -> None:
        """A reversed window is a ValueError naming both ends."""
        with pytest.raises(ValueError, match="must end after it starts"):
            check_traffic(store, T0 + 10, T0)


class TestRuleMode:
    def test_multipliers_compare_the_window_with_the_baseline(
        self, store: Store, filled: Fill
    ) -> None:
        """Rule mode flags latency (>= 1.5x), tokens (>= 1.5x), cost (>= 2x) and errors (+5 points)."""
        traffic = Traffic(
            T0,
            240,
            seed=5,
            incidents=(
                Incident(
                    T0 + 180 * MIN, T0 + 240 * MIN, latency_x=2.0, tokens_x=3.5, error_rate=0.2
                ),
            ),
        )
        filled(traffic)
        result = check_traffic(
            store, T0 + 180 * MIN, traffic.end, baseline_start=T0, config=LiveConfig(method="rule")
        )
        checks = {
            (f.check, f.metric) for f in result.findings if f.subject.get("model") == "gpt-4o"
        }
        assert checks == {
            ("latency_spike", "p95_latency_ms"),
            ("token_spike", "output_tokens_per_call"),
            ("cost_spike", "cost_per_call"),
            ("error_rate_jump", "error_rate"),
        }
        assert all(f.method == "rule" and f.window_start == T0 + 180 * MIN for f in result.findings)
        assert (
            "rule: ≥ 1.5×" in next(f for f in result.findings if f.check == "latency_spike").message
        )

    def test_a_higher_multiplier_lets_a_moderate_rise_pass(
        self, store: Store, filled: Fill
    ) -> None:
        """Latency x2 is not a finding when the rule asks for 3x."""
        traffic = Traffic(
            T0, 240, seed=5, incidents=(Incident(T0 + 180 * MIN, T0 + 240 * MIN, latency_x=2.0),)
        )
        filled(traffic)
        config = LiveConfig(method="rule", latency_spike=SpikeRule(multiplier=3.0))
        result = check_traffic(store, T0 + 180 * MIN, traffic.end, baseline_start=T0, config=config)
        assert [f for f in result.findings if f.check == "latency_spike"] == []


class TestBothDatabases:
    def test_latency_spike_found_on_sqlite_and_postgresql(self, database_url: str) -> None:
        """The same injected spike gives the same finding on either backend."""
        store = Store.open(database_url)
        try:
            traffic = _with(latency_x=3.0)
            store.write(spans=make_spans(traffic))
            findings = _run(store, traffic)
        finally:
            store.close()
        assert {(f.check, f.subject.get("model") or f.subject.get("name")) for f in findings} == {
            ("latency_spike", "gpt-4o"),
            ("latency_spike", "answer"),
        }
