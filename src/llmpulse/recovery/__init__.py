"""Recovery for LLM calls: retries, context reduction, fallbacks, circuit breakers, rate limits.

Everything it does is recorded through the llmpulse SDK (span events and attributes, metric
points), so what healing cost is visible::

    import openai
    from llmpulse.recovery import RecoveringClient, RecoveryPolicy

    client = RecoveringClient(openai.OpenAI(), RecoveryPolicy(fallback_models=("gpt-4o-mini",)))
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])

See docs/recovery.md for the policies, the YAML keys and the metric names.
"""

from __future__ import annotations

try:
    import tenacity  # noqa: F401 - only the recovery extra installs it
except ModuleNotFoundError as exc:  # a base install: say which extra brings it, not just "tenacity"
    raise ModuleNotFoundError(
        "llmpulse.recovery needs tenacity, which is not installed: pip install 'llmpulse[recovery]'",
        name=exc.name,
    ) from exc

from llmpulse.recovery._breaker import BreakerRegistry, CircuitBreaker, CircuitState
from llmpulse.recovery._classify import ErrorClass, classify, retry_after_seconds
from llmpulse.recovery._context import (
    DropOldestThenTruncate,
    Reducer,
    ReductionInfo,
    estimate_tokens,
)
from llmpulse.recovery._engine import Keys, Recoverer
from llmpulse.recovery._limiter import RateLimiter
from llmpulse.recovery._observe import METRICS
from llmpulse.recovery._policy import (
    BreakerPolicy,
    ContextPolicy,
    LimiterPolicy,
    RateLimitPolicy,
    RecoveryPolicy,
    RetryPolicy,
    TimeoutPolicy,
)
from llmpulse.recovery._wrappers import RecoveringClient, with_recovery

__all__ = [
    "METRICS",
    "BreakerPolicy",
    "BreakerRegistry",
    "CircuitBreaker",
    "CircuitState",
    "ContextPolicy",
    "DropOldestThenTruncate",
    "ErrorClass",
    "Keys",
    "LimiterPolicy",
    "RateLimitPolicy",
    "RateLimiter",
    "Recoverer",
    "RecoveringClient",
    "RecoveryPolicy",
    "Reducer",
    "ReductionInfo",
    "RetryPolicy",
    "TimeoutPolicy",
    "classify",
    "estimate_tokens",
    "retry_after_seconds",
    "with_recovery",
]
