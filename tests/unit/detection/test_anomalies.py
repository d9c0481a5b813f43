"""detect_anomalies: spikes in telemetry, against a robust local baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmpulse.detection import Anomaly, detect_anomalies
from llmpulse.errors import DetectionInputError

HOUR = 3600.0


def _latency(n: int = 200, seed: int = 0, interval: float = 300.0) -> tuple[np.ndarray, np.ndarray]:
    """Log-normal latencies around 800 ms, one point every `interval` seconds."""
    rng = np.random.default_rng(seed)
    times = 1_700_000_000.0 + interval * np.arange(n)
    return 800.0 * np.exp(0.08 * rng.standard_normal(n)), times


class TestSpikes:
    def test_finds_a_latency_spike_and_says_what_was_expected(self) -> None:
        """A 5x latency spike is reported with its value, a baseline near 800 ms and direction up."""
        values, times = _latency()
        values[120] = 4000.0
        [a] = detect_anomalies(values, times)
        assert (a.index, a.value, a.direction, a.timestamp) == (120, 4000.0, "up", times[120])
        assert 700 < a.expected < 900
        assert a.score > 10

    def test_finds_a_three_point_burst(self) -> None:
        """A 3-point burst is one event (one alarm) starting at its first point, nothing else."""
        values, times = _latency(seed=1)
        values[60:63] *= 6
        assert [(a.index, a.length) for a in detect_anomalies(values, times)] == [(60, 3)]

    def test_finds_a_throughput_drop(self) -> None:
        """A tokens/s collapse is a downward anomaly."""
        rng = np.random.default_rng(2)
        values = 48.0 * np.exp(0.02 * rng.standard_normal(150))
        values[70] = 30.0
        [a] = detect_anomalies(values)
        assert (a.index, a.direction) == (70, "down")

    def test_finds_an_error_rate_burst_in_binomial_noise(self) -> None:
        """An error-rate jump from ~1.5 % to 20 % stands out of binomial counting noise."""
        rng = np.random.default_rng(3)
        values = rng.binomial(400, 0.015, 288) / 400
        values[100] = 0.2
        assert [a.index for a in detect_anomalies(values)] == [100]

    def test_direction_filter_keeps_only_the_harmful_side(self) -> None:
        """direction='up' ignores drops, direction='down' ignores spikes."""
        values, times = _latency(seed=4)
        values[50], values[150] = 5000.0, 150.0
        assert [a.index for a in detect_anomalies(values, times, direction="up")] == [50]
        assert [a.index for a in detect_anomalies(values, times, direction="down")] == [150]

    def test_threshold_trades_sensitivity(self) -> None:
        """A 2x spike passes a threshold of 5 but not one of 12."""
        values, times = _latency(seed=5)
        values[90] *= 2.2
        assert 90 in [a.index for a in detect_anomalies(values, times, threshold=5.0)]
        assert detect_anomalies(values, times, threshold=12.0) == []


class TestNoBogusFindings:
    def test_level_shift_is_not_a_run_of_anomalies(self) -> None:
        """After a +40 % level change the baseline follows: no flags after the shift."""
        values, times = _latency(n=300, seed=6)
        values[150:] *= 1.4
        assert detect_anomalies(values, times) == []

    def test_daily_cycle_is_normal(self) -> None:
        """Hourly cost with a strong daily cycle over a week has no anomalies; a spike on top is found."""
        rng = np.random.default_rng(7)
        times = 1_700_000_000.0 + HOUR * np.arange(24 * 7)
        cycle = 0.4 * np.sin(2 * np.pi * (times % 86400) / 86400)
        values = 3.0 * np.exp(cycle + 0.05 * rng.standard_normal(times.size))
        assert detect_anomalies(values, times) == []
        values[100] *= 4
        assert [a.index for a in detect_anomalies(values, times)] == [100]

    def test_slow_trend_is_normal(self) -> None:
        """Tokens per request doubling slowly over the series raise no flags."""
        rng = np.random.default_rng(8)
        values = 600 * np.exp(np.linspace(0, math.log(2), 400) + 0.06 * rng.standard_normal(400))
        assert detect_anomalies(values) == []

    def test_rare_single_errors_are_not_anomalies(self) -> None:
        """An error rate that is mostly 0 with the odd single error flags nothing."""
        rng = np.random.default_rng(9)
        values = rng.binomial(400, 0.001, 300) / 400
        assert values.max() > 0
        assert detect_anomalies(values) == []

    def test_pure_noise_has_no_anomalies(self) -> None:
        """Twenty log-normal series of pure noise produce no flags at the default threshold."""
        for seed in range(20):
            values, times = _latency(n=400, seed=100 + seed)
            assert detect_anomalies(values, times) == [], seed


class TestResults:
    def test_results_are_frozen_and_serialisable(self) -> None:
        """An Anomaly is immutable and turns into a plain dict."""
        values, _ = _latency(seed=10)
        values[30] = 9000.0
        [a] = detect_anomalies(values)
        assert isinstance(a, Anomaly)
        with pytest.raises(AttributeError):
            a.index = 3  # type: ignore[misc]
        assert a.to_dict()["index"] == 30
        assert a.to_dict()["timestamp"] is None

    @pytest.mark.parametrize(
        "option",
        [{"threshold": 0}, {"window": 2}, {"direction": "sideways"}, {"transform": "cube"}],
    )
    def test_bad_options_are_named(self, option: dict) -> None:
        """A bad option raises DetectionInputError naming it."""
        with pytest.raises(DetectionInputError, match=next(iter(option))):
            detect_anomalies([1.0, 2.0, 3.0] * 10, **option)
