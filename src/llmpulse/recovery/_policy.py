"""RecoveryPolicy: what to do per error class, breakers, client-side limits; in code or YAML."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmpulse._config_file import FieldError, read_yaml_file

__all__ = [
    "BreakerPolicy",
    "ContextPolicy",
    "LimiterPolicy",
    "RateLimitPolicy",
    "RecoveryPolicy",
    "RetryPolicy",
    "TimeoutPolicy",
]


def _check(ok: bool, where: str, value: Any, want: str) -> None:
    if not ok:
        detail = f"{value!r} is invalid; {want}"
        raise FieldError(f"recovery policy: {where}={detail}", where, detail)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of one model for server errors (5xx, overloaded) and connection errors."""

    max_retries: int = 2
    base_delay_s: float = 0.5  # first backoff; doubles each retry (multiplier)
    max_delay_s: float = 10.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        _validate_backoff(self, type(self).__name__)

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Delay before retry number ``retry`` (1-based): exponential with "equal jitter".

        Half the exponential delay is kept and half is random, so clients spread out but never
        hammer the provider with near-zero waits.
        """
        return _equal_jitter(self.base_delay_s, self.multiplier, self.max_delay_s, retry, rng)


def _equal_jitter(
    base: float, multiplier: float, cap: float, retry: int, rng: random.Random
) -> float:
    ceiling = min(cap, base * multiplier ** max(0, retry - 1))
    return ceiling / 2.0 + rng.uniform(0.0, ceiling / 2.0)


def _validate_backoff(p: Any, name: str) -> None:
    _check(isinstance(p.max_retries, int) and p.max_retries >= 0, f"{name}.max_retries", p.max_retries,
           "use an integer >= 0")  # fmt: skip
    for attr in ("base_delay_s", "max_delay_s"):
        value = getattr(p, attr)
        _check(isinstance(value, (int, float)) and 0 <= value < math.inf, f"{name}.{attr}", value,
               "use a finite number of seconds >= 0")  # fmt: skip
    _check(p.multiplier >= 1, f"{name}.multiplier", p.multiplier, "use a number >= 1")


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """429s: back off exponentially with jitter, and never retry before Retry-After."""

    max_retries: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    multiplier: float = 2.0
    honor_retry_after: bool = True
    retry_after_jitter: float = 0.1  # wait Retry-After × (1 + up to this), so retries spread out
    max_retry_after_s: float = 60.0  # asked to wait longer: fall back (or give up) instead

    def __post_init__(self) -> None:
        _validate_backoff(self, "RateLimitPolicy")
        _check(0 <= self.retry_after_jitter <= 1, "RateLimitPolicy.retry_after_jitter", self.retry_after_jitter,
               "use a fraction within 0 and 1")  # fmt: skip
        _check(self.max_retry_after_s >= 0, "RateLimitPolicy.max_retry_after_s", self.max_retry_after_s,
               "use seconds >= 0")  # fmt: skip

    def wait(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        """Delay before retry number ``retry``: at least Retry-After when the provider sent one."""
        backoff = _equal_jitter(self.base_delay_s, self.multiplier, self.max_delay_s, retry, rng)
        if retry_after is None or not self.honor_retry_after:
            return backoff
        return retry_after * (1.0 + rng.uniform(0.0, self.retry_after_jitter))


@dataclass(frozen=True, slots=True)
class TimeoutPolicy:
    """Timeouts: retry with a longer timeout (× multiplier), never beyond ``max_timeout_s``."""

    max_retries: int = 2
    multiplier: float = 2.0
    initial_timeout_s: float | None = None  # None: the call's own timeout (or the client's)
    max_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        _check(
            self.max_retries >= 0,
            "TimeoutPolicy.max_retries",
            self.max_retries,
            "use an integer >= 0",
        )
        _check(
            self.multiplier >= 1, "TimeoutPolicy.multiplier", self.multiplier, "use a number >= 1"
        )
        _check(
            self.max_timeout_s > 0,
            "TimeoutPolicy.max_timeout_s",
            self.max_timeout_s,
            "use seconds > 0",
        )

    def extend(self, current: float | None) -> float | None:
        """The next, longer timeout (bounded), or None when the current one is unknown."""
        if current is None:
            return None
        return min(self.max_timeout_s, current * self.multiplier)


@dataclass(frozen=True, slots=True)
class ContextPolicy:
    """Context overflow: shrink the messages (oldest turns first, then truncate) and retry."""

    max_reductions: int = 3
    keep_last: int = 1  # the newest messages never dropped (they can still be truncated)
    safety_ratio: float = 0.9  # aim this far below the window the error reported

    def __post_init__(self) -> None:
        _check(
            self.max_reductions >= 0,
            "ContextPolicy.max_reductions",
            self.max_reductions,
            "use an integer >= 0",
        )
        _check(
            self.keep_last >= 1,
            "ContextPolicy.keep_last",
            self.keep_last,
            "keep at least the last message",
        )
        _check(0 < self.safety_ratio <= 1, "ContextPolicy.safety_ratio", self.safety_ratio,
               "use a fraction within 0 and 1")  # fmt: skip


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """Circuit breaker per model (or per provider).

    It opens when, within ``window_s``, there were at least ``failure_threshold`` failures and
    they were at least ``failure_rate_threshold`` of the calls: a dead model trips it after a
    few calls, while background noise (a few percent of 5xx on a busy model) does not.
    """

    enabled: bool = True
    failure_threshold: int = 5  # at least this many failures within the window...
    failure_rate_threshold: float | None = (
        0.5  # ...that are at least this share of its calls (None: count only)
    )
    window_s: float = 60.0
    reset_timeout_s: float = 30.0  # open this long, then half-open
    half_open_max_calls: int = 1  # trial calls let through while half-open
    scope: str = "model"  # "model" or "provider"
    count_rate_limits: bool = False  # 429s count as failures too

    def __post_init__(self) -> None:
        _check(self.failure_threshold >= 1, "BreakerPolicy.failure_threshold", self.failure_threshold,
               "use an integer >= 1")  # fmt: skip
        _check(self.window_s > 0, "BreakerPolicy.window_s", self.window_s, "use seconds > 0")
        rate = self.failure_rate_threshold
        _check(rate is None or 0 < rate <= 1, "BreakerPolicy.failure_rate_threshold", rate,
               "use a fraction within 0 (excluded) and 1, or null to count failures only")  # fmt: skip
        _check(
            self.reset_timeout_s >= 0,
            "BreakerPolicy.reset_timeout_s",
            self.reset_timeout_s,
            "use seconds >= 0",
        )
        _check(self.half_open_max_calls >= 1, "BreakerPolicy.half_open_max_calls", self.half_open_max_calls,
               "use an integer >= 1")  # fmt: skip
        _check(
            self.scope in ("model", "provider"),
            "BreakerPolicy.scope",
            self.scope,
            'use "model" or "provider"',
        )


@dataclass(frozen=True, slots=True)
class LimiterPolicy:
    """Client-side rate limit per model: requests and tokens per minute (None = unlimited)."""

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_wait_s: float = 60.0  # a call that would wait longer is refused (fall back / give up)
    default_completion_tokens: int = 256  # counted up front when max_tokens is not given
    per_model: Mapping[str, LimiterPolicy] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            _check(
                value is None or value > 0,
                f"LimiterPolicy.{name}",
                value,
                "use a number > 0, or null",
            )
        _check(
            self.max_wait_s >= 0, "LimiterPolicy.max_wait_s", self.max_wait_s, "use seconds >= 0"
        )

    def for_model(self, model: str) -> LimiterPolicy:
        """The limits of one model (its own entry, else these)."""
        return self.per_model.get(model, self)


_SECTIONS: dict[str, type] = {
    "rate_limit": RateLimitPolicy,
    "server_error": RetryPolicy,
    "connection": RetryPolicy,
    "timeout": TimeoutPolicy,
    "context": ContextPolicy,
    "breaker": BreakerPolicy,
    "limiter": LimiterPolicy,
}


@dataclass(frozen=True, slots=True)
class RecoveryPolicy:
    """Everything recovery does, with sensible defaults.

    >>> policy = RecoveryPolicy(fallback_models=("gpt-4o-mini",), server_error=RetryPolicy(max_retries=3))
    >>> policy.fallback_models
    ('gpt-4o-mini',)
    """

    rate_limit: RateLimitPolicy = field(default_factory=RateLimitPolicy)
    server_error: RetryPolicy = field(default_factory=RetryPolicy)
    connection: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: TimeoutPolicy = field(default_factory=TimeoutPolicy)
    context: ContextPolicy = field(default_factory=ContextPolicy)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    limiter: LimiterPolicy = field(default_factory=LimiterPolicy)
    fallback_models: tuple[str, ...] = ()  # tried in order once the requested model gives up
    fallback_on: tuple[str, ...] = (
        "server_error",
        "connection",
        "timeout",
        "rate_limit",
        "circuit_open",
    )
    max_elapsed_s: float = 300.0  # total budget of one call, waits included
    record: bool = True  # span events/attributes and metric points through the llmpulse SDK
    span_name: str = "recovery"

    def __post_init__(self) -> None:
        object.__setattr__(self, "fallback_models", tuple(self.fallback_models))
        object.__setattr__(self, "fallback_on", tuple(self.fallback_on))
        known = {
            "server_error",
            "connection",
            "timeout",
            "rate_limit",
            "circuit_open",
            "context_length",
        }
        bad = sorted(set(self.fallback_on) - known)
        _check(not bad, "fallback_on", bad, f"use names from {sorted(known)}")
        _check(self.max_elapsed_s > 0, "max_elapsed_s", self.max_elapsed_s, "use seconds > 0")
        for name in self.fallback_models:
            _check(isinstance(name, str) and bool(name), "fallback_models", self.fallback_models,
                   "list model names")  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecoveryPolicy:
        """Build a policy from a mapping (as parsed from YAML); a top-level ``recovery:`` key is allowed."""
        if isinstance(data, Mapping) and set(data) == {"recovery"}:
            data = data["recovery"] or {}
        if not isinstance(data, Mapping):
            detail = f"must be a mapping, got {type(data).__name__}"
            raise FieldError(f"recovery policy {detail}", "", detail)
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in _SECTIONS:
                kwargs[key] = _section(key, _SECTIONS[key], value)
            elif key in {f.name for f in dataclasses.fields(cls)}:
                kwargs[key] = tuple(value) if key in ("fallback_models", "fallback_on") else value
            else:
                known = sorted({f.name for f in dataclasses.fields(cls)})
                detail = f"unknown key {key!r}; known keys: {known}"
                raise FieldError(f"recovery policy: {detail}", str(key), detail)
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise FieldError(f"recovery policy: {exc}", "", str(exc)) from exc

    @classmethod
    def from_yaml(cls, path: str | Path) -> RecoveryPolicy:
        """Load a policy from a YAML file (see docs/recovery.md for the keys).

        Errors name the file, line and key: ``policy.yaml line 3: server_error.max_retries: ...``.
        """
        doc = read_yaml_file(path, "recovery policy file")
        data = doc.data or {}
        try:
            return cls.from_dict(data)
        except FieldError as exc:
            if isinstance(data, Mapping) and set(data) == {"recovery"}:
                exc.field = f"recovery.{exc.field}".rstrip(".")
            raise doc.locate(exc) from None

    def retry_settings(self, reason: str) -> RetryPolicy | RateLimitPolicy | TimeoutPolicy | None:
        """The retry settings of one error class name."""
        settings: dict[str, RetryPolicy | RateLimitPolicy | TimeoutPolicy] = {
            "rate_limit": self.rate_limit,
            "server_error": self.server_error,
            "connection": self.connection,
            "timeout": self.timeout,
        }
        return settings.get(reason)


def _section(key: str, kind: type, value: Any) -> Any:
    if isinstance(value, kind):
        return value
    if value is None:
        return kind()
    if not isinstance(value, Mapping):
        detail = f"must be a mapping, got {value!r}"
        raise FieldError(f"recovery policy: {key} {detail}", key, detail)
    value = dict(value)
    if kind is LimiterPolicy and "per_model" in value:
        value["per_model"] = {m: _section(f"{key}.per_model.{m}", LimiterPolicy, v)
                              for m, v in (value["per_model"] or {}).items()}  # fmt: skip
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(value) - names)
    if unknown:
        detail = f"unknown key(s) {unknown}; known: {sorted(names)}"
        raise FieldError(f"recovery policy: {detail} in {key}", f"{key}.{unknown[0]}", detail)
    try:
        return kind(**value)
    except FieldError as exc:  # the policy class names its own field: place it under this key
        attr = str(exc.field).rsplit(".", 1)[-1]
        raise FieldError(str(exc), f"{key}.{attr}", exc.detail) from None
    except TypeError as exc:
        raise FieldError(f"recovery policy: {key}: {exc}", key, str(exc)) from exc
