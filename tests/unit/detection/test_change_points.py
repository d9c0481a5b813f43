"""detect_change_points: new persistent levels, not spikes, waves or trends."""

from __future__ import annotations

import numpy as np
import pytest
import ruptures

from llmpulse.detection import ChangePoint, detect_change_points
from llmpulse.detection._robust import mann_whitney_p
from llmpulse.detection._segment import segment
from llmpulse.errors import DetectionInputError

FIVE_MIN = 300.0


def _lognormal(n: int, seed: int, sd: float = 0.06, level: float = 900.0) -> np.ndarray:
    """Log-normal noise around `level`."""
    return level * np.exp(sd * np.random.default_rng(seed).standard_normal(n))


class TestLevelShifts:
    def test_finds_a_latency_regression_with_its_size(self) -> None:
        """A +30 % latency step is found at its first point, with before/after levels and change %."""
        values = _lognormal(300, 0)
        values[180:] *= 1.3
        times = 1_700_000_000.0 + FIVE_MIN * np.arange(300)
        [c] = detect_change_points(values, times)
        assert isinstance(c, ChangePoint)
        assert abs(c.index - 180) <= 1
        assert c.direction == "up"
        assert 25 < c.change_pct < 35
        assert 850 < c.before < 950 and 1100 < c.after < 1250
        assert c.confidence > 0.999
        assert c.timestamp == times[c.index]

    def test_finds_two_changes_up_then_down(self) -> None:
        """A temporary level (an incident that was fixed) gives two change points."""
        values = _lognormal(400, 1)
        values[150:260] *= 1.5
        found = detect_change_points(values)
        assert [abs(c.index - t) <= 2 for c, t in zip(found, (150, 260), strict=True)] == [
            True,
            True,
        ]
        assert [c.direction for c in found] == ["up", "down"]

    def test_finds_an_error_rate_doubling(self) -> None:
        """An error rate going from 1.2 % to 2.5 % over hundreds of requests per point is a change."""
        rng = np.random.default_rng(2)
        p = np.where(np.arange(400) < 220, 0.012, 0.025)
        values = rng.binomial(400, p) / 400
        [c] = detect_change_points(values)
        assert abs(c.index - 220) <= 5
        assert c.before == pytest.approx(0.0125, abs=0.003)

    def test_accuracy_drop_is_down(self) -> None:
        """A benchmark accuracy falling from 0.84 to 0.74 is a downward change."""
        rng = np.random.default_rng(3)
        values = np.where(np.arange(96) < 40, 0.84, 0.74) + rng.normal(0, 0.01, 96)
        [c] = detect_change_points(values)
        assert (abs(c.index - 40) <= 1, c.direction) == (True, "down")


class TestNotChanges:
    def test_spikes_are_not_change_points(self) -> None:
        """Bursts of 1-3 huge points (anomalies) do not create change points."""
        values = _lognormal(300, 4)
        for start, size in ((40, 1), (120, 3), (200, 2)):
            values[start : start + size] *= 6
        assert detect_change_points(values) == []

    def test_slow_trend_is_not_a_staircase(self) -> None:
        """Tokens per request rising 60 % over the series produce no change points."""
        values = _lognormal(400, 5) * np.linspace(1.0, 1.6, 400)
        assert detect_change_points(values) == []

    def test_daily_wave_without_enough_days_is_not_a_change(self) -> None:
        """A 5-minute series with a daily swing of +-8 % over 1.4 days has no change points."""
        times = 1_700_000_000.0 + FIVE_MIN * np.arange(400)
        wave = np.exp(0.08 * np.sin(2 * np.pi * times / 86_400))
        values = _lognormal(400, 6, sd=0.04) * wave
        assert detect_change_points(values, times) == []

    def test_daily_cycle_is_removed_when_days_repeat(self) -> None:
        """An hourly series with a strong daily cycle over 6 days keeps only the real step."""
        times = 1_700_000_000.0 + 3600.0 * np.arange(144)
        cycle = np.exp(0.3 * np.sin(2 * np.pi * times / 86_400))
        values = _lognormal(144, 7, sd=0.05) * cycle
        values[90:] *= 1.35
        assert [abs(c.index - 90) <= 1 for c in detect_change_points(values, times)] == [True]

    def test_pure_noise_has_no_change_points(self) -> None:
        """Twenty pure-noise series produce at most one false change point in total."""
        found = sum(len(detect_change_points(_lognormal(300, 100 + seed))) for seed in range(20))
        assert found <= 1

    def test_correlated_noise_is_not_a_staircase(self) -> None:
        """AR(1) noise with phi 0.8 wanders for dozens of points; a rank test that took the
        points as independent called 15 of its wanders on 20 series changes (now 11)."""
        rng = np.random.default_rng(11)
        found = 0
        for _ in range(20):
            shocks = rng.standard_normal(600)
            x = np.zeros(600)
            for j in range(600):
                x[j] = (0.8 * x[j - 1] if j else 0.0) + shocks[j]
            found += len(detect_change_points(100.0 + x))
        assert found <= 12

    def test_rank_test_variance_is_widened_for_correlation(self) -> None:
        rng = np.random.default_rng(12)
        x, y = rng.standard_normal(60), rng.standard_normal(60) + 0.6
        plain = mann_whitney_p(x, y)
        assert plain < mann_whitney_p(x, y, inflate=3.0) < 1.0


class TestOptions:
    def test_sensitivity_finds_smaller_changes(self) -> None:
        """A small step below the default bar is found with a higher sensitivity."""
        values = _lognormal(200, 8, sd=0.08)
        values[100:] *= 1.05
        assert len(detect_change_points(values, sensitivity=3.0)) >= len(
            detect_change_points(values)
        )

    def test_min_size_refuses_short_levels(self) -> None:
        """A 12-point plateau is a change with min_size=8 and is ignored with min_size=20."""
        values = _lognormal(200, 9, sd=0.03)
        values[100:112] *= 1.8
        assert len(detect_change_points(values, min_size=8)) == 2
        assert detect_change_points(values, min_size=20) == []

    @pytest.mark.parametrize(
        "option", [{"min_size": 1}, {"sensitivity": 0}, {"penalty": -1.0}, {"transform": "x"}]
    )
    def test_bad_options_are_named(self, option: dict) -> None:
        """A bad option raises DetectionInputError naming it."""
        with pytest.raises(DetectionInputError, match=next(iter(option))):
            detect_change_points(list(range(1, 50)), **option)


class TestSegmentation:
    def test_matches_ruptures_pelt_exactly_on_short_series(self) -> None:
        """On point-level search the optimum equals ruptures' PELT with the same cost and penalty."""
        rng = np.random.default_rng(10)
        z = np.concatenate([rng.normal(m, 1, 60) for m in (0, 2, -1, 1.5)])
        expected = ruptures.Pelt(model="l2", min_size=5, jump=1).fit(z).predict(pen=12.0)[:-1]
        assert segment(z, 12.0, 5) == expected

    def test_long_series_are_refined_to_the_exact_point(self) -> None:
        """On 10,000 points the block search still returns the exact step positions."""
        rng = np.random.default_rng(11)
        z = rng.normal(0, 1, 10_000)
        z[3_333:] += 3
        z[7_001:] -= 2
        assert segment(z, 30.0, 8) == [3_333, 7_001]
