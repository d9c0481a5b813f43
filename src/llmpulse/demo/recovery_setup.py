"""The recovery policy the demo's answer step runs under: what a team would configure."""

from __future__ import annotations

from typing import Any

from llmpulse.recovery import BreakerPolicy, RecoveringClient, RecoveryPolicy, RetryPolicy

__all__ = ["recovering_client"]


def recovering_client(client: Any) -> Any:
    """Retry gpt-4o's failures with backoff, then fall back to gpt-4o-mini; a breaker per model."""
    policy = RecoveryPolicy(
        # The demo's latencies are scaled down ~20x from a real provider; so are the backoffs.
        server_error=RetryPolicy(max_retries=2, base_delay_s=0.05, max_delay_s=0.5),
        fallback_models=("gpt-4o-mini",),
        breaker=BreakerPolicy(failure_rate_threshold=0.3),
    )
    return RecoveringClient(client, policy)
