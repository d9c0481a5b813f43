"""The public surface of llmpulse.detection and how metric names set the bad direction."""

from __future__ import annotations

import pytest

import llmpulse.detection as detection
from llmpulse.detection._metrics import cannot_be_negative, higher_is_better_for


class TestPublicSurface:
    def test_all_is_pinned(self) -> None:
        """__all__ lists exactly the supported names."""
        assert sorted(detection.__all__) == [
            "Anomaly",
            "AnomalyScores",
            "ChangePoint",
            "RegressionResult",
            "StreamingDetector",
            "TrendResult",
            "analyze_trend",
            "anomaly_scores",
            "detect_anomalies",
            "detect_anomalies_online",
            "detect_change_points",
            "detect_regression",
        ]

    def test_every_public_callable_has_a_docstring(self) -> None:
        """Each exported name documents itself."""
        for name in detection.__all__:
            assert getattr(detection, name).__doc__, name


class TestMetricDirection:
    @pytest.mark.parametrize(
        ("metric", "expected"),
        [
            ("latency_p95_ms", False),
            ("cost_usd_per_hour", False),
            ("tokens_per_request", False),
            ("error_rate", False),
            ("gen_ai.usage.output_tokens", False),
            ("benchmark_accuracy", True),
            ("tokens_per_second", True),
            ("throughput", True),
            ("success_rate", True),
            ("branch_rate_human_review", None),
            ("", None),
            (None, None),
        ],
    )
    def test_direction_from_the_name(self, metric, expected) -> None:
        """Latency, cost, tokens and errors are worse up; accuracy, throughput and success worse down."""
        assert higher_is_better_for(metric) is expected

    @pytest.mark.parametrize(
        ("metric", "expected"),
        [
            ("latency_ms", True),
            ("cost_usd", True),
            ("error_rate", True),
            ("temperature_delta", False),
        ],
    )
    def test_which_metrics_cannot_be_negative(self, metric, expected) -> None:
        """Durations, costs, counts and rates cannot be negative; an arbitrary delta can."""
        assert cannot_be_negative(metric) is expected
