"""Client-side rate limiting: requests and tokens per minute, per model, as token buckets.

Callers *reserve* capacity and are told how long to wait, then sleep outside the lock with
whatever sleep they use (``time.sleep``, ``asyncio.sleep``, a test's fake), so the same limiter
serves threads and tasks, and waiting callers are served in arrival order. Written here because
the libraries for it are either asyncio-only (aiolimiter) or bring storage backends and their
own clocks (pyrate-limiter, limits); this is ~100 lines with an injectable clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from llmpulse.recovery._policy import LimiterPolicy

__all__ = ["RateLimiter", "TokenBucket"]


class TokenBucket:
    """``capacity`` units that refill at ``per_minute / 60`` a second; it may go into debt."""

    def __init__(self, per_minute: float, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        """Add what accrued since the last look (time going backwards adds nothing)."""
        self.level = min(self.capacity, self.level + max(0.0, now - self.updated) * self.rate)
        self.updated = max(self.updated, now)

    def take(self, amount: float) -> float:
        """Take ``amount`` (capped at the capacity) and return the seconds until it is covered."""
        self.level -= min(amount, self.capacity)
        return 0.0 if self.level >= 0 else -self.level / self.rate


class RateLimiter:
    """Requests and tokens per minute for each model.

    >>> limiter = RateLimiter(LimiterPolicy(requests_per_minute=60), clock=lambda: 0.0)
    >>> limiter.reserve("gpt-4o", tokens=10)
    0.0
    """

    def __init__(
        self, policy: LimiterPolicy, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def enabled_for(self, model: str) -> bool:
        """Whether any limit applies to ``model``."""
        limits = self.policy.for_model(model)
        return limits.requests_per_minute is not None or limits.tokens_per_minute is not None

    def _bucket(self, model: str, kind: str, per_minute: float, now: float) -> TokenBucket:
        bucket = self._buckets.get((model, kind))
        if bucket is None:
            bucket = self._buckets[(model, kind)] = TokenBucket(per_minute, now)
        bucket.refill(now)
        return bucket

    def reserve(self, model: str, tokens: int = 0) -> float | None:
        """Reserve one request and ``tokens``; returns seconds to wait first, or None if that
        would exceed ``max_wait_s`` (then nothing is reserved)."""
        limits = self.policy.for_model(model)
        wanted = [
            ("requests", limits.requests_per_minute, 1.0),
            ("tokens", limits.tokens_per_minute, float(tokens)),
        ]
        with self._lock:
            now = self._clock()
            taken: list[tuple[TokenBucket, float]] = []
            wait = 0.0
            for kind, per_minute, amount in wanted:
                if per_minute is None:
                    continue
                bucket = self._bucket(model, kind, per_minute, now)
                wait = max(wait, bucket.take(amount))
                taken.append((bucket, min(amount, bucket.capacity)))
            if wait > limits.max_wait_s:
                for bucket, amount in taken:
                    bucket.level += amount
                return None
            return wait

    def adjust(self, model: str, token_delta: int) -> None:
        """Correct the token reservation once the real usage is known (positive: used more)."""
        limits = self.policy.for_model(model)
        if limits.tokens_per_minute is None or token_delta == 0:
            return
        with self._lock:
            bucket = self._bucket(model, "tokens", limits.tokens_per_minute, self._clock())
            bucket.level = min(bucket.capacity, bucket.level - token_delta)
