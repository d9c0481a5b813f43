"""analyze_trend: slope per day, its significance, and a summary a person can read."""

from __future__ import annotations

import numpy as np

from llmpulse.detection import TrendResult, analyze_trend

DAY = 86_400.0


def _hourly(days: int) -> np.ndarray:
    """Hourly Unix timestamps over `days` days."""
    return 1_700_000_000.0 + 3600.0 * np.arange(24 * days)


class TestTrend:
    def test_rising_cost_is_significant_and_worsening(self) -> None:
        """Cost rising 0.1 USD/hour per day over two weeks is found, with the right slope."""
        t = _hourly(14)
        rng = np.random.default_rng(0)
        values = 3.0 + 0.1 * (t - t[0]) / DAY + rng.normal(0, 0.05, t.size)
        r = analyze_trend(values, t, metric="cost_usd_per_hour")
        assert isinstance(r, TrendResult)
        assert abs(r.slope_per_day - 0.1) < 0.01
        assert (r.significant, r.direction, r.worsening) == (True, "up", True)
        assert "rising" in r.summary and "worse" in r.summary

    def test_falling_accuracy_is_worsening(self) -> None:
        """Accuracy losing a point a day is a worsening downward trend."""
        t = 1_700_000_000.0 + DAY * np.arange(10)
        values = 0.85 - 0.01 * np.arange(10) + np.random.default_rng(1).normal(0, 0.002, 10)
        r = analyze_trend(values, t, metric="benchmark_accuracy")
        assert (r.direction, r.worsening) == ("down", True)
        assert r.change_pct_per_day < 0

    def test_noise_is_flat(self) -> None:
        """Pure noise has no significant trend."""
        t = _hourly(7)
        r = analyze_trend(np.random.default_rng(2).normal(100, 5, t.size), t, metric="latency")
        assert (r.significant, r.direction, r.worsening) == (False, "flat", None)
        assert "no significant trend" in r.summary

    def test_daily_cycle_is_not_a_trend(self) -> None:
        """A week of strongly autocorrelated daily cycles does not make a trend out of a phase."""
        t = _hourly(7)
        rng = np.random.default_rng(3)
        values = 100 + 20 * np.sin(2 * np.pi * (t % DAY) / DAY) + rng.normal(0, 2, t.size)
        assert not analyze_trend(values[: 24 * 7 - 6], t[: 24 * 7 - 6]).significant

    def test_spikes_do_not_tilt_the_slope(self) -> None:
        """A few huge spikes at the end do not create a slope (Theil-Sen)."""
        t = _hourly(5)
        values = 50 + np.random.default_rng(4).normal(0, 1, t.size)
        values[-3:] = 5000
        assert abs(analyze_trend(values, t).slope_per_day) < 1

    def test_long_series_are_fast_enough_to_run(self) -> None:
        """10,000 points are analysed (the pairwise slope runs on an even thinning)."""
        t = 1_700_000_000.0 + 300.0 * np.arange(10_000)
        r = analyze_trend(
            np.random.default_rng(5).normal(0, 1, t.size) + 0.001 * np.arange(t.size), t
        )
        assert r.n_points == 10_000 and r.direction == "up"
