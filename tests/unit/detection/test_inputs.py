"""Degenerate input never crashes and never produces a bogus finding."""

from __future__ import annotations

import contextlib
import datetime as dt
import math

import numpy as np
import pytest

from llmpulse.detection import (
    analyze_trend,
    detect_anomalies,
    detect_change_points,
    detect_regression,
)
from llmpulse.errors import DetectionInputError, LlmpulseError

DETECTORS = [detect_anomalies, detect_change_points]


def _noisy(n: int = 120, seed: int = 0) -> np.ndarray:
    """Log-normal latencies around 800 ms."""
    return 800.0 * np.exp(0.05 * np.random.default_rng(seed).standard_normal(n))


@pytest.mark.parametrize("detect", DETECTORS)
class TestDetectorsOnDegenerateSeries:
    def test_empty_series_finds_nothing(self, detect) -> None:
        """An empty series gives an empty result."""
        assert detect([]) == []
        assert detect([], []) == []

    def test_one_point_finds_nothing(self, detect) -> None:
        """A single point gives an empty result."""
        assert detect([42.0], [1_700_000_000.0]) == []

    def test_constant_series_finds_nothing(self, detect) -> None:
        """A flat line has no anomalies and no change points."""
        assert detect([5.0] * 200) == []
        assert detect([0.0] * 200) == []

    def test_all_nan_finds_nothing(self, detect) -> None:
        """A series of NaN and inf gives an empty result."""
        assert detect([math.nan, math.inf, -math.inf] * 20) == []

    def test_nan_and_inf_points_are_ignored(self, detect) -> None:
        """NaN/inf points are skipped and results still index the caller's list."""
        clean = _noisy(200)
        clean[120:] *= 1.5
        clean[60] *= 6
        dirty = clean.copy()
        dirty[[10, 11, 90]] = [math.nan, math.inf, -math.inf]
        kept = [i for i in range(200) if i not in (10, 11, 90)]
        expected = [kept[r.index] for r in detect(clean[kept])]
        assert [r.index for r in detect(dirty)] == expected
        assert expected  # the series does contain a finding

    def test_unsorted_timestamps_are_sorted_and_indices_map_back(self, detect) -> None:
        """Shuffled points give the same findings, indexed by the caller's positions."""
        values = _noisy(200, seed=1)
        values[130:] *= 1.6
        values[40] *= 8
        times = 1_700_000_000.0 + 300.0 * np.arange(200)
        order = np.random.default_rng(2).permutation(200)
        in_order = detect(values, times)
        shuffled = detect(values[order], times[order])
        assert [int(order[r.index]) for r in shuffled] == [r.index for r in in_order]
        assert [r.timestamp for r in shuffled] == [r.timestamp for r in in_order]

    def test_datetimes_work_as_timestamps(self, detect) -> None:
        """datetime timestamps give the same result as Unix seconds."""
        values = _noisy(150, seed=3)
        values[80:] *= 1.5
        seconds = 1_700_000_000.0 + 300.0 * np.arange(150)
        stamps = [dt.datetime.fromtimestamp(s, tz=dt.timezone.utc) for s in seconds]
        assert [r.index for r in detect(values, stamps)] == [
            r.index for r in detect(values, seconds)
        ]

    def test_negative_latencies_are_an_error_naming_the_problem(self, detect) -> None:
        """Negative values for a latency metric raise DetectionInputError with metric and index."""
        values = list(_noisy(50))
        values[7] = -12.0
        with pytest.raises(DetectionInputError, match=r"latency_ms.*negative.*index 7"):
            detect(values, metric="latency_ms")

    def test_negative_values_of_an_unnamed_metric_are_fine(self, detect) -> None:
        """Without a metric name negative numbers (a temperature delta, say) are analysed as they are."""
        values = np.random.default_rng(4).normal(0, 1, 100)
        values[50] = 30.0
        assert isinstance(detect(values), list)

    def test_length_mismatch_is_an_error(self, detect) -> None:
        """Values and timestamps of different lengths raise DetectionInputError."""
        with pytest.raises(DetectionInputError, match="same length"):
            detect([1.0, 2.0, 3.0], [1.0, 2.0])

    @pytest.mark.parametrize(
        "bad", ["12345", [[1.0, 2.0], [3.0, 4.0]], ["a", "b"], [1.0, None, object()]]
    )
    def test_non_numeric_input_is_an_error(self, detect, bad) -> None:
        """Strings, nested lists and objects raise DetectionInputError, which is also a ValueError."""
        with pytest.raises(DetectionInputError) as info:
            detect(bad)
        assert isinstance(info.value, ValueError) and isinstance(info.value, LlmpulseError)

    def test_absurd_magnitudes_are_an_error(self, detect) -> None:
        """Values beyond 1e100 (a unit bug) raise DetectionInputError saying to rescale."""
        with pytest.raises(DetectionInputError, match="rescale"):
            detect([1.0, 2.0, 1e300] * 10)

    def test_constant_with_one_jump_has_no_bogus_anomalies(self, detect) -> None:
        """A flat series that steps once reports at most the step, never a run of flags."""
        found = detect([10.0] * 100 + [20.0] * 100)
        assert len(found) <= 1


class TestNoiseFreeSeries:
    def test_flat_series_with_one_glitch_flags_only_the_glitch(self) -> None:
        """A deterministic score that glitches once is one anomaly and no change point."""
        values = [0.84] * 50 + [0.5] + [0.84] * 50
        assert [a.index for a in detect_anomalies(values)] == [50]
        assert detect_change_points(values) == []

    def test_noise_free_step_is_one_change_point(self) -> None:
        """A deterministic benchmark dropping from 0.84 to 0.80 is one change and no anomalies."""
        values = [0.84] * 50 + [0.80] * 50
        [c] = detect_change_points(values, metric="accuracy")
        assert (c.index, c.direction, c.confidence) == (50, "down", 1.0)
        assert detect_anomalies(values) == []


class TestRegressionOnDegenerateInput:
    def test_empty_baseline_is_an_error(self) -> None:
        """An empty (or all-NaN) baseline raises DetectionInputError naming it."""
        with pytest.raises(DetectionInputError, match="baseline"):
            detect_regression([math.nan], [1.0, 2.0])

    def test_single_values_need_the_threshold_method(self) -> None:
        """One value a side is enough for 'threshold' and an error for a statistical test."""
        assert detect_regression([100.0], [130.0], method="threshold", metric="latency").regressed
        with pytest.raises(DetectionInputError, match="threshold"):
            detect_regression([100.0], [130.0], method="welch")

    def test_constant_samples_do_not_crash_the_t_test(self) -> None:
        """Identical constant samples are not a regression; different constants are."""
        same = detect_regression([5.0] * 4, [5.0] * 4, metric="latency")
        assert (same.regressed, same.p_value) == (False, 1.0)
        assert detect_regression([5.0] * 4, [7.0] * 4, metric="latency").regressed

    def test_negative_costs_are_an_error(self) -> None:
        """A negative cost in either sample raises DetectionInputError."""
        with pytest.raises(DetectionInputError, match="cost_usd"):
            detect_regression([1.0, 2.0], [1.0, -2.0], metric="cost_usd")


class TestTrendOnDegenerateInput:
    def test_needs_timestamps(self) -> None:
        """No timestamps is an error: a slope per day needs time."""
        with pytest.raises(DetectionInputError, match="timestamps"):
            analyze_trend([1.0, 2.0, 3.0], None)

    def test_needs_three_points(self) -> None:
        """Fewer than three finite points is an error."""
        with pytest.raises(DetectionInputError, match="3"):
            analyze_trend([1.0, math.nan, 2.0], [0.0, 1.0, 2.0])

    def test_identical_timestamps_are_an_error(self) -> None:
        """Points all at the same instant have no trend."""
        with pytest.raises(DetectionInputError, match="equal"):
            analyze_trend([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])

    def test_constant_series_is_flat(self) -> None:
        """A flat line is a non-significant, zero trend."""
        r = analyze_trend([3.0] * 10, 86_400.0 * np.arange(10))
        assert (r.slope_per_day, r.p_value, r.significant, r.direction) == (0.0, 1.0, False, "flat")


def _awkward_series(rng: np.random.Generator, i: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A short, odd series: discrete, flat, stepped, extreme or full of NaN/inf; odd timestamps."""
    n = int(rng.choice([0, 1, 2, 3, 5, 8, 16, 17, 30, 60]))
    pools = [
        lambda: rng.normal(0, 1, n),
        lambda: rng.integers(0, 3, n).astype(float),
        lambda: np.zeros(n),
        lambda: rng.binomial(50, 0.02, n) / 50,
        lambda: np.r_[np.ones(n // 2), np.full(n - n // 2, 2.0)],
        lambda: rng.choice([0.0, np.nan, np.inf, -np.inf, 1.0, 1e90, -1e-90], n),
        lambda: rng.choice([1e-300, 0.0, 1e99], n),
    ]
    values = pools[i % len(pools)]()
    stamps = [
        None,
        300.0 * np.arange(n),
        3600.0 * rng.permutation(n),
        np.zeros(n),
        60.0 * rng.integers(0, 5, n),
    ]
    return values, stamps[i % len(stamps)]


class TestFuzz:
    def test_awkward_series_never_crash_or_warn(self) -> None:
        """500 odd series through all four functions: results or DetectionInputError, no warnings."""
        rng = np.random.default_rng(20240)
        for i in range(500):
            values, stamps = _awkward_series(rng, i)
            metric = [None, "latency_ms", "accuracy", "custom"][i % 4]
            half = values.size // 2
            method = ["welch", "mannwhitney", "threshold", "change_point"][i % 4]
            calls = [
                (detect_anomalies, (values, stamps), {"metric": metric}),
                (detect_change_points, (values, stamps), {"metric": metric}),
                (analyze_trend, (values, stamps), {"metric": metric}),
                (
                    detect_regression,
                    (values[:half], values[half:]),
                    {"metric": metric, "method": method},
                ),
            ]
            for fn, args, kwargs in calls:
                with contextlib.suppress(DetectionInputError):
                    fn(*args, **kwargs)
