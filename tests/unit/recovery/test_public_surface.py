"""The supported surface of llmpulse.recovery, pinned."""

from __future__ import annotations

import inspect
import subprocess
import sys

import llmpulse.recovery

EXPECTED = [
    "METRICS", "BreakerPolicy", "BreakerRegistry", "CircuitBreaker", "CircuitState", "ContextPolicy",
    "DropOldestThenTruncate", "ErrorClass", "Keys", "LimiterPolicy", "RateLimitPolicy", "RateLimiter",
    "Recoverer", "RecoveringClient", "RecoveryPolicy", "Reducer", "ReductionInfo", "RetryPolicy",
    "TimeoutPolicy", "classify", "estimate_tokens", "retry_after_seconds", "with_recovery",
]  # fmt: skip


class TestPublicSurface:
    def test_all_is_pinned(self) -> None:
        """__all__ changes only on purpose, together with this list."""
        assert sorted(llmpulse.recovery.__all__) == sorted(EXPECTED)

    def test_every_callable_is_documented(self) -> None:
        """Every exported class and function has a docstring."""
        for name in llmpulse.recovery.__all__:
            obj = getattr(llmpulse.recovery, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert inspect.getdoc(obj), name

    def test_metric_names_are_documented(self) -> None:
        """Every metric name recovery records is listed in docs/recovery.md."""
        from pathlib import Path

        page = (Path(__file__).resolve().parents[3] / "docs" / "recovery.md").read_text(
            encoding="utf-8"
        )
        assert all(f"`{name}`" in page for name in llmpulse.recovery.METRICS)

    def test_importing_recovery_loads_no_simulator_store_or_cli(self) -> None:
        """Recovery pulls in only the SDK side: not the simulator, the store or the CLI."""
        code = (
            "import sys, llmpulse.recovery; "
            "bad = [m for m in sys.modules if m.startswith(('llmpulse.simulator', 'llmpulse.store', "
            "'llmpulse.cli', 'starlette', 'uvicorn'))]; print(bad)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "[]"
