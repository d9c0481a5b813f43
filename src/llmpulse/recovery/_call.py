"""The state of one call through recovery, and how its retries and outcome are recorded."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from llmpulse.recovery._classify import ErrorClass, retry_after_seconds, status_of
from llmpulse.recovery._observe import Recorder

__all__ = ["Action", "CallState", "Keys", "record_finish", "record_retry"]


class Action(enum.Enum):
    """What follows a failed attempt."""

    RAISE = "raise"  # raise the error unchanged
    RETRY = "retry"  # same model again after call.wait
    NEXT_MODEL = "next_model"  # fall back to the next model in the chain


@dataclass(frozen=True, slots=True)
class Keys:
    """Which keyword arguments of the call hold the model, the messages and the timeout."""

    model: str | None = "model"
    messages: str | None = "messages"
    timeout: str | None = "timeout"


@dataclass(slots=True)
class CallState:
    """The state of one call through recovery."""

    request: dict[str, Any]
    keys: Keys
    chain: list[str | None]
    started: float
    index: int = 0
    action: Action = Action.RAISE
    reason: str = ""
    wait: float = 0.0
    error: BaseException | None = None
    retries: Counter[str] = field(default_factory=Counter)  # per reason, for the current model
    total_retries: int = 0
    reductions: int = 0
    fallbacks: int = 0
    attempts: int = 0
    backoff_s: float = 0.0
    last_attempt_s: float = 0.0
    timeout: float | None = None
    handle: Any = None

    @property
    def model(self) -> str | None:
        return self.chain[self.index]

    @property
    def has_next(self) -> bool:
        return self.index + 1 < len(self.chain)


def record_retry(recorder: Recorder, call: CallState) -> None:
    """Count a retry on the call, and record it as a span event and metric points."""
    call.total_retries += 1
    call.backoff_s += call.wait
    error = call.error
    attributes: dict[str, Any] = {"model": call.model, "reason": call.reason, "attempt": call.attempts,
                                  "wait_s": round(call.wait, 4), "error_type": type(error).__name__}  # fmt: skip
    status = status_of(error) if error is not None else None
    if status is not None:
        attributes["status_code"] = status
    asked = retry_after_seconds(error) if error is not None else None
    if asked is not None:
        attributes["retry_after_s"] = asked
    recorder.event("retry", **attributes)
    recorder.metric("llmpulse_recovery_retries_total", 1, model=call.model, reason=call.reason)
    if call.wait > 0:
        recorder.metric("llmpulse_recovery_backoff_seconds_total", call.wait, model=call.model,
                             reason=call.reason)  # fmt: skip


def record_finish(
    recorder: Recorder, call: CallState, error: BaseException | None, elapsed: float
) -> None:
    """Record how the call ended: span attributes, and recovered / give-up counters."""
    recovered = call.total_retries + call.reductions + call.fallbacks > 0
    if error is None:
        outcome = "recovered" if recovered else "ok"
    elif (
        isinstance(error, Exception)
        and call.error is error
        and call.reason != ErrorClass.NOT_RETRYABLE.value
    ):
        outcome = "circuit_open" if call.reason == ErrorClass.CIRCUIT_OPEN.value else "gave_up"
    else:
        outcome = "not_retryable"
    if outcome == "recovered":
        recorder.metric("llmpulse_recovery_recovered_total", 1, model=call.model)
    elif outcome in ("gave_up", "circuit_open"):
        recorder.metric("llmpulse_recovery_giveups_total", 1, model=call.model, reason=call.reason)
    recorder.attributes(call.handle, {
        "llmpulse.recovery.outcome": outcome, "llmpulse.recovery.attempts": call.attempts,
        "llmpulse.recovery.retries": call.total_retries, "llmpulse.recovery.reductions": call.reductions,
        "llmpulse.recovery.fallbacks": call.fallbacks, "llmpulse.recovery.model_used": call.model,
        "llmpulse.recovery.backoff_ms": round(call.backoff_s * 1000, 3),
        "llmpulse.recovery.added_latency_ms": round(max(0.0, elapsed - call.last_attempt_s) * 1000, 3),
    })  # fmt: skip
