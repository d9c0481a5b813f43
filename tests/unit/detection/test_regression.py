"""detect_regression: worse or not, by how much, how surely, for which metric direction."""

from __future__ import annotations

import numpy as np
import pytest

from llmpulse.detection import RegressionResult, detect_regression
from llmpulse.errors import DetectionInputError


def _sample(mean: float, sd: float, n: int, seed: int) -> np.ndarray:
    """n normal draws."""
    return np.random.default_rng(seed).normal(mean, sd, n)


class TestDirection:
    def test_latency_up_is_a_regression(self) -> None:
        """p95 latency +20 % over 30 runs is a critical regression with a tiny p-value."""
        r = detect_regression(
            _sample(2000, 100, 30, 0), _sample(2400, 100, 30, 1), metric="latency_p95_ms"
        )
        assert isinstance(r, RegressionResult)
        assert (r.regressed, r.severity, r.direction_is_bad, r.higher_is_better) == (
            True,
            "critical",
            True,
            False,
        )
        assert 15 < r.change_pct < 25
        assert r.p_value < 1e-6 and r.confidence > 0.999999
        assert "regressed" in r.message and "latency_p95_ms" in r.message

    def test_latency_down_is_an_improvement(self) -> None:
        """Latency going down is not a regression, however significant."""
        r = detect_regression(
            _sample(2000, 100, 30, 2), _sample(1600, 100, 30, 3), metric="latency_ms"
        )
        assert (r.regressed, r.severity, r.direction_is_bad) == (False, "none", False)
        assert "better" in r.message

    def test_accuracy_down_is_a_regression(self) -> None:
        """Benchmark accuracy 0.84 -> 0.78 (-7 %) is a warning-level regression."""
        r = detect_regression(
            _sample(0.84, 0.01, 10, 4), _sample(0.78, 0.01, 10, 5), metric="benchmark_accuracy"
        )
        assert (r.regressed, r.severity, r.higher_is_better) == (True, "warning", True)
        assert r.change_pct < 0

    def test_throughput_up_is_not_a_regression(self) -> None:
        """tokens_per_second is better when higher, even though its name contains 'tokens'."""
        r = detect_regression(
            _sample(40, 1, 20, 6), _sample(48, 1, 20, 7), metric="tokens_per_second"
        )
        assert (r.regressed, r.higher_is_better) == (False, True)

    def test_explicit_direction_overrides_the_name(self) -> None:
        """higher_is_better=True makes a rising 'latency' fine."""
        r = detect_regression(
            _sample(100, 5, 20, 8), _sample(130, 5, 20, 9), metric="latency", higher_is_better=True
        )
        assert not r.regressed

    def test_unknown_metric_counts_both_directions(self) -> None:
        """For an unnamed metric a big move either way is a regression."""
        up = detect_regression(_sample(0.2, 0.01, 20, 10), _sample(0.3, 0.01, 20, 11))
        down = detect_regression(_sample(0.2, 0.01, 20, 12), _sample(0.1, 0.01, 20, 13))
        assert (up.regressed, down.regressed, up.higher_is_better) == (True, True, None)

    def test_error_rate_from_zero_is_critical(self) -> None:
        """An error rate rising from exactly 0 has no finite change % but is a critical regression."""
        r = detect_regression([0.0] * 10, _sample(0.05, 0.01, 10, 14), metric="error_rate")
        assert (r.regressed, r.severity, r.change_pct) == (True, "critical", None)


class TestMethods:
    def test_noise_is_not_a_regression(self) -> None:
        """Two samples of the same distribution are not a regression with either test."""
        for method in ("welch", "mannwhitney"):
            r = detect_regression(
                _sample(100, 10, 40, 15), _sample(100, 10, 40, 16), metric="latency", method=method
            )
            assert not r.regressed, method

    def test_mann_whitney_resists_outliers(self) -> None:
        """One huge outlier in the baseline does not hide a shift from Mann-Whitney."""
        base = _sample(100, 5, 30, 17)
        base[0] = 5000
        cur = _sample(120, 5, 30, 18)
        assert detect_regression(base, cur, metric="latency", method="mannwhitney").regressed
        assert not detect_regression(base, cur, metric="latency", method="welch").regressed

    def test_confidence_level_is_the_bar(self) -> None:
        """A marginal shift passes at 90 % confidence and fails at 99.99 %."""
        base, cur = _sample(100, 10, 12, 19), _sample(108, 10, 12, 20)
        p = detect_regression(base, cur, metric="latency").p_value
        assert 1e-4 < p < 0.1
        assert detect_regression(base, cur, metric="latency", confidence_level=0.90).regressed
        assert not detect_regression(base, cur, metric="latency", confidence_level=0.9999).regressed

    def test_threshold_method_uses_change_pct_only(self) -> None:
        """The threshold method needs no test: +8 % is a warning, +20 % critical, +3 % nothing."""
        for cur, severity in ((108.0, "warning"), (120.0, "critical"), (103.0, "none")):
            r = detect_regression([100.0], [cur], method="threshold", metric="cost_usd")
            assert (r.severity, r.p_value, r.confidence) == (severity, None, None)

    def test_thresholds_are_configurable(self) -> None:
        """warning_pct/critical_pct move the severity bands."""
        base, cur = _sample(100, 2, 20, 21), _sample(110, 2, 20, 22)
        assert detect_regression(base, cur, metric="latency").severity == "warning"
        assert detect_regression(base, cur, metric="latency", critical_pct=8).severity == "critical"
        assert (
            detect_regression(base, cur, metric="latency", warning_pct=20, critical_pct=30).severity
            == "none"
        )

    def test_change_point_method_finds_the_shift_in_current(self) -> None:
        """A level shift part-way into the current runs is found by the change-point method."""
        base = _sample(100, 3, 30, 23)
        cur = np.concatenate((_sample(100, 3, 10, 24), _sample(125, 3, 30, 25)))
        r = detect_regression(base, cur, metric="latency", method="change_point")
        assert (r.regressed, r.method, r.severity) == (True, "change_point", "critical")
        assert 20 < r.change_pct < 30
        assert r.confidence > 0.999

    def test_change_point_method_without_change(self) -> None:
        """No level shift means no regression and no p-value."""
        r = detect_regression(
            _sample(100, 3, 30, 26),
            _sample(100, 3, 30, 27),
            metric="latency",
            method="change_point",
        )
        assert (r.regressed, r.p_value) == (False, None)

    def test_statistical_is_an_alias_of_welch(self) -> None:
        """method='statistical' runs Welch's t-test."""
        assert detect_regression([1.0, 2.0], [3.0, 4.0], method="statistical").method == "welch"

    @pytest.mark.parametrize(
        ("option", "match"),
        [
            ({"method": "magic"}, "method"),
            ({"confidence_level": 1.5}, "confidence_level"),
            ({"warning_pct": 20, "critical_pct": 10}, "warning_pct"),
        ],
    )
    def test_bad_options_are_named(self, option: dict, match: str) -> None:
        """A bad option raises DetectionInputError naming it."""
        with pytest.raises(DetectionInputError, match=match):
            detect_regression([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], **option)

    def test_result_is_serialisable(self) -> None:
        """to_dict gives plain values."""
        d = detect_regression([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], metric="latency").to_dict()
        assert set(d) >= {
            "regressed",
            "change_pct",
            "severity",
            "confidence",
            "p_value",
            "method",
            "message",
        }
