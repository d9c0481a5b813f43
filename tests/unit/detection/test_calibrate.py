"""The calibration shared by the batch and streaming detectors: scale, tail, threshold, events."""

from __future__ import annotations

import numpy as np
import pytest

from llmpulse.detection import anomaly_scores, detect_anomalies
from llmpulse.detection._calibrate import (
    alarm_threshold,
    events,
    fit_gpd,
    residual_scale,
    tail_threshold,
)


class TestResidualScale:
    def test_gaussian_noise_gives_its_standard_deviation(self) -> None:
        """For normal noise the MAD and the 90th percentile agree on sigma."""
        r = np.random.default_rng(0).normal(0, 2.0, 20_000)
        assert residual_scale(r) == pytest.approx(2.0, rel=0.03)

    def test_mostly_zero_residuals_do_not_collapse_the_scale(self) -> None:
        """70 % exact zeros (quantised readings): the MAD is 0, the scale is not."""
        r = np.random.default_rng(1).normal(0, 1.0, 10_000)
        r[:7_000] = 0.0
        assert float(np.median(np.abs(r))) == 0.0 and residual_scale(r) > 0.2

    def test_constant_residuals_have_no_scale(self) -> None:
        assert residual_scale(np.zeros(50)) == 0.0 and residual_scale(np.array([])) == 0.0


class TestTail:
    def test_pareto_shape_is_recovered(self) -> None:
        """Excesses drawn from a GPD with shape 0.3 are fitted near 0.3."""
        u = np.random.default_rng(2).random(20_000)
        xi, sigma = 0.3, 1.5
        y = sigma / xi * ((1 - u) ** -xi - 1)
        shape, scale = fit_gpd(y)
        assert shape == pytest.approx(xi, abs=0.05) and scale == pytest.approx(sigma, rel=0.08)

    def test_threshold_matches_the_target_rate_on_normal_noise(self) -> None:
        """The fitted threshold is exceeded at about the requested rate (checked on fresh data)."""
        rng = np.random.default_rng(3)
        th = tail_threshold(rng.standard_normal(50_000), 1e-3)
        assert th is not None
        fresh = np.abs(rng.standard_normal(1_000_000))
        assert 0.6e-3 < float(np.mean(fresh > th)) < 1.7e-3

    def test_heavy_tails_raise_the_threshold(self) -> None:
        """Student-t(2) noise needs a far higher threshold than normal noise at the same rate."""
        rng = np.random.default_rng(4)
        normal = tail_threshold(rng.standard_normal(20_000), 1e-4)
        heavy = tail_threshold(rng.standard_t(2, 20_000) / 1.0, 1e-4)
        assert normal is not None and heavy is not None and heavy > 2 * normal

    def test_short_history_falls_back_to_the_floor(self) -> None:
        """Too few points to see a tail: the fixed floor is the whole rule."""
        z = np.random.default_rng(5).standard_normal(200)
        assert tail_threshold(z, 1e-4) is None
        assert alarm_threshold(z, 300.0, 0.05, 5.5) == 5.5
        assert alarm_threshold(z, 300.0, None, 4.0) == 4.0

    def test_recurring_spike_height_is_normal(self) -> None:
        """Spikes of one height on 3 % of points: only something beyond that height alarms."""
        z = np.zeros(4_000)
        z[::33] = 12.0
        th = tail_threshold(z, 1e-4)
        assert th is not None and 12.0 < th < 12.001

    def test_fewer_false_alarms_per_day_means_a_higher_threshold(self) -> None:
        z = np.random.default_rng(6).standard_t(4, 5_000)
        levels = [alarm_threshold(z, 300.0, rate, 1.0) for rate in (1.0, 0.1, 0.01)]
        assert levels[0] < levels[1] < levels[2]


class TestEvents:
    def test_consecutive_flags_are_one_event_with_its_peak(self) -> None:
        hits = np.array([0, 1, 1, 1, 0, 0, 1, 0], dtype=bool)
        strength = np.array([0, 6, -9, 7, 0, 0, 8, 0], dtype=float)
        found = [(e.first, e.last, e.peak) for e in events(hits, strength)]
        assert found == [(1, 3, 2), (6, 6, 6)]


class TestCalibratedDetector:
    def test_heavy_tailed_noise_does_not_storm(self) -> None:
        """Two weeks of 5-minute Student-t(2) noise: the fixed 5.5 sigma rule fires dozens of
        times, the calibrated default about as often as asked (0.2 a day: ~3 in 14 days)."""
        rng = np.random.default_rng(7)
        n = 14 * 288
        values = 100.0 + 3.0 * rng.standard_t(2, n)
        times = 1_700_000_000 + 300.0 * np.arange(n)
        fixed = detect_anomalies(values, times, false_alarms_per_day=None)
        calibrated = detect_anomalies(values, times)
        assert len(fixed) > 20
        assert len(calibrated) <= 7

    def test_scores_and_detections_agree(self) -> None:
        """anomaly_scores gives every point's score and the threshold detect_anomalies used."""
        rng = np.random.default_rng(8)
        values = list(800 * np.exp(0.05 * rng.standard_normal(300)))
        values[150] = 5000.0
        values[40] = float("nan")
        scored = anomaly_scores(values)
        assert len(scored.scores) == 300 and np.isnan(scored.scores[40])
        [a] = detect_anomalies(values)
        assert a.index == 150 and a.threshold == scored.threshold
        assert a.score == pytest.approx(abs(scored.scores[150]))
        flagged = [i for i, s in enumerate(scored.scores) if abs(s) >= scored.threshold]
        assert flagged == [150]

    def test_bad_rate_is_a_clear_error(self) -> None:
        from llmpulse.errors import DetectionInputError

        with pytest.raises(DetectionInputError, match="false_alarms_per_day"):
            detect_anomalies([1.0] * 20, false_alarms_per_day=0)
