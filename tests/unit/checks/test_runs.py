"""Regression and trend checks over benchmark runs stored as Run records."""

from __future__ import annotations

import numpy as np
import pytest

from llmpulse.checks import MetricRule, RunsConfig, check_runs
from llmpulse.schema import Run
from llmpulse.store import Store
from tests.unit.checks.conftest import T0

DAY = 86400.0
NOW = T0 + 20 * DAY


def _runs(
    model: str,
    metric: str,
    values: list[float],
    *,
    first_day: float = 0.0,
    every_days: float = 1.0,
    experiment: str = "nightly-eval",
    status: str = "finished",
) -> list[Run]:
    """One finished benchmark run per day with one metric."""
    out = []
    for i, v in enumerate(values):
        t = T0 + (first_day + i * every_days) * DAY
        out.append(
            Run(
                f"{model}-{metric}-{experiment}-{i}",
                f"eval {i}",
                t,
                kind="benchmark",
                experiment=experiment,
                model=model,
                status=status,
                ended_at=t + 600,
                metrics={metric: v},
            )
        )
    return out


def _noise(seed: int, n: int, level: float, sd: float) -> list[float]:
    return list(level + sd * np.random.default_rng(seed).standard_normal(n))


class TestRegression:
    def test_an_accuracy_drop_on_one_model_is_a_regression_of_that_model(
        self, store: Store
    ) -> None:
        """The last three runs of model B lose 6 points of accuracy; model A is unchanged."""
        store.write(
            runs=_runs("model-a", "accuracy", _noise(1, 15, 0.82, 0.005))
            + _runs("model-b", "accuracy", [*_noise(2, 12, 0.8, 0.005), 0.74, 0.745, 0.75])
        )
        result = check_runs(store, now=NOW)
        [f] = result.findings
        assert (f.check, f.subject, f.metric) == (
            "regression",
            {"group": "nightly-eval", "model": "model-b"},
            "accuracy",
        )
        assert f.severity == "warning" and f.change_pct is not None and -9 < f.change_pct < -5
        assert f.p_value is not None and f.p_value < 0.01 and f.details["current_runs"] == 3
        assert f.window_start == T0 + 12 * DAY and f.window_end == T0 + 14 * DAY + 600
        assert {(r["model"], r["status"]) for r in result.summary} == {
            ("model-a", "ok"),
            ("model-b", "warning"),
        }

    def test_per_metric_rule_sets_method_and_thresholds(self, store: Store) -> None:
        """A threshold rule on latency_ms reports +30% as critical when critical_pct is 20."""
        store.write(runs=_runs("m", "latency_ms", [1000.0] * 10 + [1300.0] * 3))
        config = RunsConfig(
            metrics={"latency_ms": MetricRule(method="threshold", warning_pct=10, critical_pct=20)}
        )
        [f] = check_runs(store, now=NOW, config=config).findings
        assert (f.severity, f.method, f.details["test"]) == ("critical", "rule", "threshold")
        assert f.change_pct == pytest.approx(30.0)

    def test_improvements_are_not_regressions(self, store: Store) -> None:
        """Accuracy going up and latency going down are not findings."""
        store.write(
            runs=_runs("m", "accuracy", [*_noise(3, 10, 0.7, 0.005), 0.8, 0.81, 0.8])
            + _runs("m", "latency_ms", [*_noise(4, 10, 900, 10), 600, 610, 590], experiment="lat")
        )
        assert check_runs(store, now=NOW).findings == []

    def test_noisy_runs_across_many_metrics_raise_nothing(self, store: Store) -> None:
        """Twenty metrics of pure noise on two models: the Bonferroni correction keeps it quiet."""
        runs = []
        for k in range(20):
            for model in ("a", "b"):
                runs += _runs(
                    model,
                    f"score_{k}",
                    _noise(100 * k + ord(model), 14, 0.6, 0.02),
                    experiment=f"e{k}",
                )
        store.write(runs=runs)
        assert check_runs(store, now=NOW).findings == []

    def test_too_few_baseline_runs_is_skipped_not_judged(self, store: Store) -> None:
        """Two baseline runs are fewer than min_points=3: no finding, the summary says insufficient."""
        store.write(runs=_runs("m", "accuracy", [0.9, 0.9, 0.5, 0.5, 0.5]))
        result = check_runs(store, now=NOW)
        assert result.findings == [] and result.summary[0]["status"] == "insufficient"
        assert "2 baseline runs, needs 3" in result.skipped[0]

    def test_runs_outside_the_lookback_and_failed_runs_are_ignored(self, store: Store) -> None:
        """A bad run 40 days ago and a failed run today do not count."""
        store.write(
            runs=_runs("m", "accuracy", [0.1], first_day=-20, experiment="x")
            + _runs("m", "accuracy", [0.0], first_day=19, experiment="x", status="failed")
            + _runs("m", "accuracy", [0.8] * 3, first_day=10, experiment="x")
        )
        [row] = check_runs(store, now=NOW).summary
        assert row["runs"] == 3


class TestTrend:
    def test_a_steady_slide_is_a_trend_finding(self, store: Store) -> None:
        """Latency creeping up 2% a day over 20 days is reported as a worsening trend."""
        values = [
            1000 * (1.02**i) * (1 + 0.005 * e)
            for i, e in enumerate(np.random.default_rng(5).standard_normal(20))
        ]
        store.write(runs=_runs("m", "latency_ms", values, first_day=0))
        found = {f.check: f for f in check_runs(store, now=NOW).findings}
        trend = found["trend"]
        assert trend.severity == "critical" and trend.details["runs"] == 20
        assert trend.change_pct is not None and 35 < trend.change_pct < 55
        assert "rising" in trend.message and "getting worse" in trend.message

    def test_trend_can_be_switched_off(self, store: Store) -> None:
        """With trend disabled only the regression is left."""
        store.write(runs=_runs("m", "latency_ms", [1000 * 1.02**i for i in range(20)]))
        findings = check_runs(store, now=NOW, config=RunsConfig(trend=False)).findings
        assert {f.check for f in findings} <= {"regression"}
