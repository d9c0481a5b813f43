"""The sustained-deviation score: level shifts, plateaus and stopped daily patterns alarm once."""

from __future__ import annotations

import numpy as np
import pytest

from llmpulse.detection import anomaly_scores, detect_anomalies, detect_change_points
from llmpulse.detection._calibrate import events, extremal_index, split_budget, tail_threshold
from llmpulse.detection._sustained import (
    BASELINE_POINTS,
    SUSTAIN_POINTS,
    sustained_deviation,
)

FIVE_MIN = 300.0
DAYS = 14
N = DAYS * 288


def _times(n: int = N) -> np.ndarray:
    return 1_700_000_000.0 + FIVE_MIN * np.arange(n)


def _latency(seed: int, n: int = N) -> np.ndarray:
    """Log-normal latencies with heavy-tailed (Student-t 3) noise and a daily wave."""
    rng = np.random.default_rng(seed)
    wave = 0.1 * np.sin(2 * np.pi * np.arange(n) / 288)
    return np.asarray(800.0 * np.exp(0.05 * rng.standard_t(3, n) + wave))


def _sustained(found: list) -> list:
    return [a for a in found if a.kind == "sustained"]


class TestDeviation:
    def test_matches_its_definition(self) -> None:
        """Mean of the last w points minus the median of the L points before them."""
        x = np.random.default_rng(0).standard_normal(BASELINE_POINTS + 200)
        dev, base = sustained_deviation(x)
        w, big = SUSTAIN_POINTS, BASELINE_POINTS
        start = w + big - 1
        assert np.all(np.isnan(dev[:start])) and np.all(np.isnan(base[:start]))
        for t in range(start, x.size):
            median = np.median(x[t - w - big + 1 : t - w + 1])
            assert base[t] == pytest.approx(median)
            assert dev[t] == pytest.approx(np.mean(x[t - w + 1 : t + 1]) - median)

    def test_short_series_have_no_deviation(self) -> None:
        dev, _ = sustained_deviation(np.ones(SUSTAIN_POINTS + BASELINE_POINTS - 1))
        assert np.all(np.isnan(dev))


def test_the_budget_is_shared_by_the_two_scores() -> None:
    """The user's false alarms per day are for the series: spikes and sustained get half each."""
    assert split_budget(0.2) == (0.1, 0.1) and split_budget(None) == (None, None)


class TestExtremalIndex:
    def test_runs_count_once(self) -> None:
        over = np.zeros(100, dtype=bool)
        over[10:14] = over[50:54] = True
        assert extremal_index(over) == pytest.approx(0.25)
        assert extremal_index(np.array([True, False, True])) == 1.0
        assert extremal_index(np.zeros(5, dtype=bool)) == 1.0

    def test_clustered_threshold_matches_the_event_rate(self) -> None:
        """On a moving average (excesses come in runs) the per-event rate is what is asked."""
        rng = np.random.default_rng(1)

        def moving_average(n: int) -> np.ndarray:
            x = rng.standard_normal(n + 11)
            return np.convolve(x, np.ones(12) / 12, mode="valid") * np.sqrt(12)

        train = moving_average(100_000)
        per_point = tail_threshold(train, 1e-3)
        per_event = tail_threshold(train, 1e-3, clustered=True)
        assert per_point is not None and per_event is not None and per_event < per_point
        fresh = moving_average(1_000_000)
        rate = len(events(np.abs(fresh) > per_event, fresh)) / fresh.size
        assert 0.5e-3 < rate < 2e-3


class TestSustainedAlarms:
    def test_level_shift_alarms_once_near_its_start(self) -> None:
        """A deploy makes latency 30 % slower for good: one sustained alarm, up, right after."""
        values = _latency(2)
        values[3000:] *= 1.3
        found = _sustained(detect_anomalies(values, _times()))
        assert len(found) == 1
        [shift] = found
        assert 3000 <= shift.index <= 3000 + SUSTAIN_POINTS and shift.direction == "up"
        assert shift.expected == pytest.approx(800.0, rel=0.1)
        assert shift.score >= shift.threshold and shift.length > SUSTAIN_POINTS

    def test_direction_filters_sustained_events(self) -> None:
        values = _latency(3)
        values[3000:] *= 0.7
        times = _times()
        assert [a.direction for a in _sustained(detect_anomalies(values, times))] == ["down"]
        assert _sustained(detect_anomalies(values, times, direction="up")) == []

    def test_a_daily_pattern_that_stops_alarms(self) -> None:
        """Traffic that follows the day, then sits flat for a day (a stuck exporter)."""
        rng = np.random.default_rng(4)
        t = np.arange(N)
        values = 1000.0 + 300.0 * np.sin(2 * np.pi * t / 288) + 10.0 * rng.standard_normal(N)
        values[2600:2900] = 1000.0 + 10.0 * rng.standard_normal(300)
        found = _sustained(detect_anomalies(values, _times()))
        assert found and all(2600 <= a.index < 2900 for a in found)

    def test_noise_alone_raises_no_more_than_its_share(self) -> None:
        """Heavy-tailed, autocorrelated and seasonal noise: at most its 0.1 of the 0.2 a day."""
        rng = np.random.default_rng(5)
        ar = np.zeros(N)
        shocks = rng.standard_t(3, N)
        for i in range(1, N):
            ar[i] = 0.8 * ar[i - 1] + shocks[i]
        for values in (_latency(6), _latency(7), 500.0 + 5.0 * ar):
            found = _sustained(detect_anomalies(values, _times()))
            assert len(found) <= 0.1 * DAYS

    def test_short_series_never_alarm_sustained(self) -> None:
        """Under 600 points (300 deviations) there is no tail to calibrate a sustained alarm on."""
        n = 590
        values = _latency(8, n)
        values[450:] *= 1.5
        assert _sustained(detect_anomalies(values, _times(n))) == []
        assert anomaly_scores(values, _times(n)).sustained_threshold is None

    def test_fixed_threshold_mode_has_no_sustained_alarms(self) -> None:
        values = _latency(9)
        values[3000:] *= 1.5
        found = detect_anomalies(values, _times(), false_alarms_per_day=None)
        assert _sustained(found) == []

    def test_scores_report_the_sustained_score_and_its_threshold(self) -> None:
        values = _latency(10)
        values[3000:] *= 1.3
        times = _times()
        scored = anomaly_scores(values, times)
        slow = np.array(scored.sustained)
        assert slow.shape == (N,) and np.all(np.isfinite(slow))
        assert np.all(slow[: SUSTAIN_POINTS + BASELINE_POINTS - 1] == 0.0)
        [shift] = _sustained(detect_anomalies(values, times))
        assert scored.sustained_threshold == shift.threshold
        event = np.abs(slow[shift.index : shift.index + shift.length])
        assert event.max() >= shift.threshold
        assert np.all(np.abs(slow[:3000]) < shift.threshold)

    def test_an_event_begins_where_the_level_changed(self) -> None:
        """The mean passes the threshold a few points late; the event is dated at the step."""
        values = _latency(11)
        values[3000:] *= 1.25
        times = _times()
        [shift] = _sustained(detect_anomalies(values, times))
        [change] = detect_change_points(values, times)
        assert shift.index == change.index and abs(change.index - 3000) <= 5
        slow = np.abs(anomaly_scores(values, times).sustained)
        at = shift.index
        assert slow[at] < shift.threshold <= slow[at : at + 2 * SUSTAIN_POINTS].max()
