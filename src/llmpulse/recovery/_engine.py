"""The Recoverer: runs one call under a RecoveryPolicy, sync or async.

A call is a function of keyword arguments (``model``, ``messages``, ``timeout`` among them,
when it has them). Per model in the chain (the requested one, then ``fallback_models``), a
tenacity loop makes attempts; after each failure ``_decide`` picks what happens next — retry
(after a wait, with fewer messages or a longer timeout), move on to the next model, or raise
the error unchanged — and tenacity does the looping and sleeping with the injected sleep.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import tenacity

from llmpulse.errors import CircuitOpenError, RecoveryError
from llmpulse.recovery._breaker import BreakerRegistry, CircuitBreaker, CircuitState
from llmpulse.recovery._call import Action, CallState, Keys, record_finish, record_retry
from llmpulse.recovery._classify import (
    Classifier,
    ErrorClass,
    classify,
    retry_after_seconds,
)
from llmpulse.recovery._context import DropOldestThenTruncate, Reducer, estimate_tokens
from llmpulse.recovery._limiter import RateLimiter
from llmpulse.recovery._observe import Recorder
from llmpulse.recovery._policy import RecoveryPolicy, RetryPolicy
from llmpulse.recovery._reduce import reduce_messages

__all__ = ["Keys", "Recoverer"]

_GAUGE_REFRESH_S = (
    15.0  # re-record a non-closed breaker's state this often, for "open for 2m" alerts
)
_BREAKER_FAILURES = {ErrorClass.SERVER, ErrorClass.TIMEOUT, ErrorClass.CONNECTION}


class Recoverer:
    """Runs calls under a policy; holds the breakers and the rate limiter they share.

    >>> recoverer = Recoverer(RecoveryPolicy(fallback_models=("gpt-4o-mini",)))
    >>> recoverer.call(lambda model, messages: f"{model} ok", model="gpt-4o", messages=[])
    'gpt-4o ok'
    """

    def __init__(self, policy: RecoveryPolicy | None = None, *, reducer: Reducer | None = None,
                 classifier: Classifier | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: random.Random | None = None, provider: str = "openai") -> None:  # fmt: skip
        self.policy = policy or RecoveryPolicy()
        self.reducer: Reducer = reducer or DropOldestThenTruncate(self.policy.context.keep_last)
        self.classifier = classifier
        self.clock, self.sleep, self.async_sleep = clock, sleep, async_sleep
        self.rng = rng or random.Random()
        self.provider = provider
        self.recorder = Recorder(self.policy.record)
        self.breakers = BreakerRegistry(
            self.policy.breaker, clock=clock, on_transition=self._on_transition
        )
        self.limiter = RateLimiter(self.policy.limiter, clock=clock)
        self._gauge_lock = threading.Lock()
        self._gauge_at: dict[str, float] = {}

    # --- public entry points -------------------------------------------------------------------
    def call(self, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        """Call ``fn(**kwargs)`` with recovery; ``model``/``messages``/``timeout`` kwargs enable
        fallbacks, context reduction and longer timeouts."""
        return self.run(lambda request: fn(**request), kwargs, Keys())

    async def acall(self, fn: Callable[..., Awaitable[Any]], /, **kwargs: Any) -> Any:
        """The async twin of ``call``."""
        return await self.arun(lambda request: fn(**request), kwargs, Keys())

    def run(self, invoke: Callable[[dict[str, Any]], Any], request: dict[str, Any], keys: Keys,
            base_timeout: float | None = None) -> Any:  # fmt: skip
        """Run ``invoke(request)`` with recovery (the request dict is copied, never mutated).

        ``base_timeout`` is the timeout in force when the request names none (the client's),
        so a timeout can still be lengthened.
        """
        call = self._new_call(request, keys, base_timeout)
        with self.recorder.span(self.policy.span_name, **self._span_attributes(call)) as handle:
            call.handle = handle
            while True:
                try:
                    result = self._retrying(call)(self._attempt, invoke, call)
                except BaseException as exc:
                    if self._next_model(call, exc):
                        continue
                    raise
                self._finish(call, None)
                return result

    async def arun(self, invoke: Callable[[dict[str, Any]], Awaitable[Any]], request: dict[str, Any],
                   keys: Keys, base_timeout: float | None = None) -> Any:  # fmt: skip
        """The async twin of ``run``."""
        call = self._new_call(request, keys, base_timeout)
        with self.recorder.span(self.policy.span_name, **self._span_attributes(call)) as handle:
            call.handle = handle
            while True:
                try:
                    result: Any = await self._async_retrying(call)(
                        self._async_attempt, invoke, call
                    )
                except BaseException as exc:
                    if self._next_model(call, exc):
                        continue
                    raise
                self._finish(call, None)
                return result

    # --- attempts --------------------------------------------------------------------------------
    def _attempt(self, invoke: Callable[[dict[str, Any]], Any], call: CallState) -> Any:
        breaker, tokens, wait = self._admit(call)
        if wait > 0:
            self.sleep(wait)
        started = self.clock()
        try:
            result = invoke(dict(call.request))
        except Exception as exc:
            self._failed(call, breaker, exc, started)
            raise
        except BaseException:
            if breaker is not None:
                breaker.release()
            raise
        self._succeeded(call, breaker, result, tokens, started)
        return result

    async def _async_attempt(
        self, invoke: Callable[[dict[str, Any]], Awaitable[Any]], call: CallState
    ) -> Any:
        breaker, tokens, wait = self._admit(call)
        if wait > 0:
            await self.async_sleep(wait)
        started = self.clock()
        try:
            result = await invoke(dict(call.request))
        except Exception as exc:
            self._failed(call, breaker, exc, started)
            raise
        except BaseException:  # cancelled: no verdict on the provider
            if breaker is not None:
                breaker.release()
            raise
        self._succeeded(call, breaker, result, tokens, started)
        return result

    def _admit(self, call: CallState) -> tuple[CircuitBreaker | None, int, float]:
        """Breaker and rate limiter gate one attempt; raises (with a decision) when refused."""
        call.action, call.attempts = Action.RAISE, call.attempts + 1
        model = call.model or ""
        breaker = self._breaker(model)
        if breaker is not None and not breaker.allow():
            self.recorder.metric("llmpulse_recovery_breaker_rejections_total", 1, model=breaker.key)
            self._refresh_gauge(breaker.key, breaker.state)
            error = CircuitOpenError(f"circuit breaker for {breaker.key!r} is open; "
                                     f"next trial in {breaker.retry_in():.1f}s", last_error=call.error)  # fmt: skip
            error.__cause__ = call.error  # the provider error that opened it, during this call
            self._decide(call, error)
            raise error
        tokens, wait = self._reserve(call, model)
        return breaker, tokens, wait

    def _reserve(self, call: CallState, model: str) -> tuple[int, float]:
        if not self.limiter.enabled_for(model):
            return 0, 0.0
        tokens = self._estimated_tokens(call, model)
        wait = self.limiter.reserve(model, tokens)
        if wait is None:
            self.recorder.metric("llmpulse_recovery_limiter_rejections_total", 1, model=model)
            error = RecoveryError(f"client-side rate limit for {model!r}: the wait would exceed "
                                  f"{self.policy.limiter.for_model(model).max_wait_s:g}s")  # fmt: skip
            call.error, call.reason = error, ErrorClass.RATE_LIMIT.value
            call.action = (
                Action.NEXT_MODEL
                if self._may_fall_back(call, ErrorClass.RATE_LIMIT)
                else Action.RAISE
            )
            raise error
        if wait > 0:
            self.recorder.event("rate_limiter_wait", model=model, wait_s=round(wait, 4))
            self.recorder.metric("llmpulse_recovery_limiter_wait_seconds_total", wait, model=model)
        return tokens, wait

    def _estimated_tokens(self, call: CallState, model: str) -> int:
        messages = call.request.get(call.keys.messages) if call.keys.messages else None
        prompt = estimate_tokens(messages) if isinstance(messages, list) else 0
        completion = call.request.get("max_completion_tokens") or call.request.get("max_tokens")
        if not isinstance(completion, int):
            completion = self.policy.limiter.for_model(model).default_completion_tokens
        return prompt + completion

    def _failed(
        self, call: CallState, breaker: CircuitBreaker | None, exc: Exception, started: float
    ) -> None:
        call.last_attempt_s = self.clock() - started
        error_class = self._decide(call, exc)
        if breaker is None:
            return
        counts = error_class in _BREAKER_FAILURES or (
            error_class is ErrorClass.RATE_LIMIT and self.policy.breaker.count_rate_limits
        )
        if counts:
            breaker.record_failure()
        else:  # the provider answered (a 400, a 401...): it is up
            breaker.record_success()

    def _succeeded(self, call: CallState, breaker: CircuitBreaker | None, result: Any, tokens: int,
                   started: float) -> None:  # fmt: skip
        call.last_attempt_s = self.clock() - started
        if breaker is not None:
            breaker.record_success()
        used = getattr(getattr(result, "usage", None), "total_tokens", None)
        if tokens and isinstance(used, int) and call.model:
            self.limiter.adjust(call.model, used - tokens)

    # --- decisions -------------------------------------------------------------------------------
    def _decide(self, call: CallState, exc: BaseException) -> ErrorClass:
        """Set call.action / call.wait for what follows ``exc``; returns its class."""
        error_class = classify(exc, self.classifier)
        call.error, call.reason, call.wait = exc, error_class.value, 0.0
        call.action = Action.RAISE
        if error_class is ErrorClass.NOT_RETRYABLE:
            return error_class
        if error_class is ErrorClass.CONTEXT_LENGTH:
            if reduce_messages(self, call, exc):
                call.action = Action.RETRY
            elif self._may_fall_back(call, error_class):
                call.action = Action.NEXT_MODEL
            return error_class
        wait = self._retry_wait(call, error_class, exc)
        if wait is not None and self.clock() + wait - call.started <= self.policy.max_elapsed_s:
            call.action, call.wait = Action.RETRY, wait
            call.retries[error_class.value] += 1
        elif self._may_fall_back(call, error_class):
            call.action = Action.NEXT_MODEL
        return error_class

    def _retry_wait(
        self, call: CallState, error_class: ErrorClass, exc: BaseException
    ) -> float | None:
        """Seconds to wait before retrying the same model, or None when it should not."""
        settings = self.policy.retry_settings(error_class.value)
        if settings is None:  # circuit open: only another model can help
            return None
        retry = call.retries[error_class.value] + 1
        if retry > settings.max_retries:
            return None
        if error_class is ErrorClass.RATE_LIMIT:
            asked = retry_after_seconds(exc)
            if asked is not None and asked > self.policy.rate_limit.max_retry_after_s:
                return None
            return self.policy.rate_limit.wait(retry, asked, self.rng)
        if error_class is ErrorClass.TIMEOUT:
            self._extend_timeout(call)
            return 0.0
        assert isinstance(settings, RetryPolicy)
        return settings.backoff(retry, self.rng)

    def _extend_timeout(self, call: CallState) -> None:
        longer = self.policy.timeout.extend(call.timeout)
        if longer is None or call.keys.timeout is None:
            return
        self.recorder.event("timeout_extended", model=call.model, from_s=call.timeout, to_s=longer)
        call.timeout = longer
        call.request[call.keys.timeout] = longer

    def _may_fall_back(self, call: CallState, error_class: ErrorClass) -> bool:
        return call.has_next and error_class.value in self.policy.fallback_on

    # --- tenacity ---------------------------------------------------------------------------------
    def _sleep(self, seconds: float) -> None:
        if seconds > 0:  # a context reduction or a longer timeout retries at once
            self.sleep(seconds)

    async def _async_sleep(self, seconds: float) -> None:
        if seconds > 0:
            await self.async_sleep(seconds)

    def _retrying(self, call: CallState) -> tenacity.Retrying:
        return tenacity.Retrying(
            sleep=self._sleep, stop=tenacity.stop_never, wait=lambda _state: call.wait,
            retry=tenacity.retry_if_exception(lambda _exc: call.action is Action.RETRY),
            before_sleep=lambda _state: self._on_retry(call), reraise=True,
        )  # fmt: skip

    def _async_retrying(self, call: CallState) -> tenacity.AsyncRetrying:
        return tenacity.AsyncRetrying(
            sleep=self._async_sleep, stop=tenacity.stop_never, wait=lambda _state: call.wait,
            retry=tenacity.retry_if_exception(lambda _exc: call.action is Action.RETRY),
            before_sleep=lambda _state: self._on_retry(call), reraise=True,
        )  # fmt: skip

    # --- recording -------------------------------------------------------------------------------
    def _on_retry(self, call: CallState) -> None:
        record_retry(self.recorder, call)

    def _next_model(self, call: CallState, exc: BaseException) -> bool:
        """After a model gave up: move to the next one (True), or record the give-up (False)."""
        if call.action is Action.NEXT_MODEL and call.has_next and exc is call.error:
            source = call.model
            call.index += 1
            call.retries.clear()
            call.fallbacks += 1
            if call.keys.model is not None:
                call.request[call.keys.model] = call.model
            self.recorder.event(
                "fallback", from_model=source, to_model=call.model, reason=call.reason
            )
            self.recorder.metric("llmpulse_recovery_fallbacks_total", 1, from_model=source, to_model=call.model,
                                 reason=call.reason)  # fmt: skip
            return True
        self._finish(call, exc)
        return False

    def _finish(self, call: CallState, error: BaseException | None) -> None:
        record_finish(self.recorder, call, error, self.clock() - call.started)

    def _on_transition(self, key: str, old: CircuitState, new: CircuitState) -> None:
        self.recorder.event(
            "circuit_transition", model=key, from_state=old.value, to_state=new.value
        )
        self.recorder.metric("llmpulse_recovery_breaker_transitions_total", 1, model=key, from_state=old.value,
                             to_state=new.value)  # fmt: skip
        self.recorder.metric("llmpulse_circuit_state", new.value_number, model=key)
        with self._gauge_lock:
            self._gauge_at[key] = self.clock()

    def _refresh_gauge(self, key: str, state: CircuitState) -> None:
        now = self.clock()
        with self._gauge_lock:
            if now - self._gauge_at.get(key, -1e18) < _GAUGE_REFRESH_S:
                return
            self._gauge_at[key] = now
        self.recorder.metric("llmpulse_circuit_state", state.value_number, model=key)

    # --- helpers ---------------------------------------------------------------------------------
    def _breaker(self, model: str) -> CircuitBreaker | None:
        if not self.policy.breaker.enabled:
            return None
        return self.breakers.get(
            self.provider if self.policy.breaker.scope == "provider" else model
        )

    def _new_call(
        self, request: dict[str, Any], keys: Keys, base_timeout: float | None
    ) -> CallState:
        request = dict(request)
        model = request.get(keys.model) if keys.model else None
        chain: list[str | None] = [model]
        if model is not None:
            chain += [m for m in self.policy.fallback_models if m != model]
        call = CallState(request=request, keys=keys, chain=chain, started=self.clock())
        self._initial_timeout(call, base_timeout)
        return call

    def _initial_timeout(self, call: CallState, base_timeout: float | None) -> None:
        key = call.keys.timeout
        given = call.request.get(key) if key else None
        if isinstance(given, (int, float)) and not isinstance(given, bool):
            call.timeout = float(given)
        elif key is not None and self.policy.timeout.initial_timeout_s is not None:
            call.timeout = self.policy.timeout.initial_timeout_s
            call.request[key] = call.timeout
        else:
            call.timeout = base_timeout

    def _span_attributes(self, call: CallState) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "llmpulse.recovery.fallback_chain": [m for m in call.chain if m]
        }
        if call.model:
            attributes["llmpulse.recovery.model_requested"] = call.model
        return attributes

    def breaker_states(self) -> dict[str, str]:
        """State of every breaker seen so far, e.g. ``{"gpt-4o": "open"}``."""
        return {key: state.value for key, state in self.breakers.states().items()}
