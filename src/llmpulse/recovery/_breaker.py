"""Circuit breakers: closed → open on failures in a window → half-open after a pause → closed.

Written here rather than taken from pybreaker or purgatory: those keep their own clock (no
injectable time, so no exact tests), are sync-only or asyncio-only, and report transitions
through global listeners; this one is ~150 lines, thread-safe, shared by sync and async code,
and calls one ``on_transition`` hook that recovery turns into span events and metric points.
"""

from __future__ import annotations

import contextlib
import enum
import threading
import time
from collections import deque
from collections.abc import Callable

from llmpulse.recovery._policy import BreakerPolicy

__all__ = ["BreakerRegistry", "CircuitBreaker", "CircuitState", "TransitionHook"]


class CircuitState(str, enum.Enum):
    """Breaker states; ``value_number`` is what the ``llmpulse_circuit_state`` gauge records."""

    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"

    @property
    def value_number(self) -> int:
        """0 closed, 1 half-open, 2 open."""
        return {"closed": 0, "half_open": 1, "open": 2}[self.value]


# Called with (breaker key, old state, new state) after every transition, outside the lock.
TransitionHook = Callable[[str, CircuitState, CircuitState], None]


class CircuitBreaker:
    """One breaker. ``allow()`` before a call, then ``record_success()`` or ``record_failure()``.

    >>> breaker = CircuitBreaker("gpt-4o", BreakerPolicy(failure_threshold=2))
    >>> breaker.record_failure(); breaker.record_failure()
    >>> breaker.state, breaker.allow()
    (<CircuitState.OPEN: 'open'>, False)
    """

    def __init__(self, key: str, policy: BreakerPolicy, *, clock: Callable[[], float] = time.monotonic,
                 on_transition: TransitionHook | None = None) -> None:  # fmt: skip
        self.key = key
        self.policy = policy
        self._clock = clock
        self._hook = on_transition
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._calls: deque[tuple[float, bool]] = deque()  # (time, failed) while closed
        self._failed = 0
        self._opened_at = 0.0
        self._trials = 0  # calls let through while half-open, not finished yet
        self._trial_successes = 0

    @property
    def state(self) -> CircuitState:
        """The current state (an open breaker whose pause is over reads as half-open)."""
        with self._lock:
            change = self._maybe_half_open()
            state = self._state
        self._notify(change)
        return state

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a trial call through (0 when not open)."""
        with self._lock:
            if self._state is not CircuitState.OPEN:
                return 0.0
            return max(0.0, self._opened_at + self.policy.reset_timeout_s - self._clock())

    def allow(self) -> bool:
        """Whether a call may go ahead now (a half-open breaker admits a few trial calls)."""
        with self._lock:
            change = self._maybe_half_open()
            if self._state is CircuitState.CLOSED:
                allowed = True
            elif (
                self._state is CircuitState.HALF_OPEN
                and self._trials < self.policy.half_open_max_calls
            ):
                self._trials += 1
                allowed = True
            else:
                allowed = False
        self._notify(change)
        return allowed

    def record_success(self) -> None:
        """A call went through: a half-open breaker closes once its trial calls succeeded."""
        with self._lock:
            change = None
            if self._state is CircuitState.HALF_OPEN:
                self._trials = max(0, self._trials - 1)
                self._trial_successes += 1
                if self._trial_successes >= self.policy.half_open_max_calls:
                    change = self._move(CircuitState.CLOSED)
            elif self._state is CircuitState.CLOSED:
                self._count(failed=False)
        self._notify(change)

    def record_failure(self) -> None:
        """A call failed the provider's way: may open the breaker (a half-open one reopens)."""
        with self._lock:
            change = None
            if self._state is CircuitState.HALF_OPEN:
                change = self._move(CircuitState.OPEN)
            elif self._state is CircuitState.CLOSED:
                self._count(failed=True)
                if self._tripped():
                    change = self._move(CircuitState.OPEN)
        self._notify(change)

    def release(self) -> None:
        """A trial call ended without a verdict (cancelled): free its half-open slot."""
        with self._lock:
            if self._state is CircuitState.HALF_OPEN:
                self._trials = max(0, self._trials - 1)

    # --- under the lock -------------------------------------------------------------------
    def _count(self, *, failed: bool) -> None:
        now = self._clock()
        self._calls.append((now, failed))
        self._failed += failed
        while self._calls and self._calls[0][0] <= now - self.policy.window_s:
            self._failed -= self._calls.popleft()[1]

    def _tripped(self) -> bool:
        if self._failed < self.policy.failure_threshold:
            return False
        rate = self.policy.failure_rate_threshold
        return rate is None or self._failed >= rate * len(self._calls)

    def _maybe_half_open(self) -> tuple[CircuitState, CircuitState] | None:
        if (
            self._state is CircuitState.OPEN
            and self._clock() >= self._opened_at + self.policy.reset_timeout_s
        ):
            return self._move(CircuitState.HALF_OPEN)
        return None

    def _move(self, new: CircuitState) -> tuple[CircuitState, CircuitState]:
        old, self._state = self._state, new
        self._trials = 0
        self._trial_successes = 0
        if new is CircuitState.OPEN:
            self._opened_at = self._clock()
        if new is not CircuitState.HALF_OPEN:
            self._calls.clear()
            self._failed = 0
        return old, new

    def _notify(self, change: tuple[CircuitState, CircuitState] | None) -> None:
        if change is not None and self._hook is not None:
            with contextlib.suppress(Exception):  # observing a transition never breaks the call
                self._hook(self.key, *change)


class BreakerRegistry:
    """One breaker per key (model or provider), created on first use; thread-safe."""

    def __init__(self, policy: BreakerPolicy, *, clock: Callable[[], float] = time.monotonic,
                 on_transition: TransitionHook | None = None) -> None:  # fmt: skip
        self.policy = policy
        self._clock = clock
        self._hook = on_transition
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, key: str) -> CircuitBreaker:
        """The breaker of ``key``."""
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = self._breakers[key] = CircuitBreaker(
                    key, self.policy, clock=self._clock, on_transition=self._hook
                )
            return breaker

    def states(self) -> dict[str, CircuitState]:
        """Current state of every breaker seen so far."""
        with self._lock:
            breakers = list(self._breakers.values())
        return {b.key: b.state for b in breakers}
