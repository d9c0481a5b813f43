"""The supported surface of ``llmpulse.checks`` is what ``__all__`` lists (pinned here)."""

from __future__ import annotations

import inspect

import llmpulse.checks

EXPECTED = [
    "CHECK_NAMES",
    "DEFAULT_BASELINE_SECONDS",
    "SEVERITIES",
    "CheckConfig",
    "CheckReport",
    "Finding",
    "LiveConfig",
    "LiveResult",
    "MetricRule",
    "RateRule",
    "RunsConfig",
    "RunsResult",
    "SpikeRule",
    "StoreReader",
    "check_runs",
    "check_traffic",
    "findings_table",
    "format_duration",
    "parse_duration",
    "run_checks",
    "runs_table",
    "severity_at_least",
]


class TestPublicApi:
    def test_all_is_pinned(self) -> None:
        """__all__ changes only on purpose, together with this list."""
        assert sorted(llmpulse.checks.__all__) == sorted(EXPECTED)

    def test_every_callable_is_documented(self) -> None:
        """Every exported function and class has a docstring."""
        for name in llmpulse.checks.__all__:
            obj = getattr(llmpulse.checks, name)
            if callable(obj):
                assert inspect.getdoc(obj), f"{name} has no docstring"

    def test_check_names_cover_every_check(self) -> None:
        """The seven checks the issue names are the seven a finding can carry."""
        assert set(llmpulse.checks.CHECK_NAMES) == {
            "latency_spike",
            "token_spike",
            "cost_spike",
            "error_rate_jump",
            "branch_shift",
            "regression",
            "trend",
        }
