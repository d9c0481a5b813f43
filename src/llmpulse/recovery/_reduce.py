"""Applying the reducer to a call that overflowed the context window, and recording it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from llmpulse.recovery._classify import context_numbers
from llmpulse.recovery._context import (
    TRUNCATION_MARK,
    DropOldestThenTruncate,
    ReductionInfo,
    estimate_tokens,
    target_tokens,
)

if TYPE_CHECKING:
    from llmpulse.recovery._call import CallState
    from llmpulse.recovery._engine import Recoverer

__all__ = ["reduce_messages"]

log = logging.getLogger("llmpulse.recovery")


def _strategy(reducer: Any, before: list[dict[str, Any]], after: list[dict[str, Any]]) -> str:
    if not isinstance(reducer, DropOldestThenTruncate):
        return str(getattr(reducer, "strategy", "custom"))
    dropped = len(after) < len(before)
    truncated = any(TRUNCATION_MARK in str(m.get("content")) for m in after) and not any(
        TRUNCATION_MARK in str(m.get("content")) for m in before
    )
    if dropped and truncated:
        return "drop_oldest+truncate"
    return "truncate" if truncated else "drop_oldest"


def reduce_messages(recoverer: Recoverer, call: CallState, exc: BaseException) -> bool:
    """Shrink the call's messages for a retry; False when there is nothing (more) to shrink."""
    policy = recoverer.policy.context
    key = call.keys.messages
    messages = call.request.get(key) if key else None
    if key is None or not isinstance(messages, list) or call.reductions >= policy.max_reductions:
        return False
    window, counted = context_numbers(exc)
    estimated = estimate_tokens(messages)
    number = call.reductions + 1
    target = target_tokens(estimated, window, counted, policy.safety_ratio, number)
    info = ReductionInfo(number, exc, window, counted, estimated, target)
    try:
        reduced = recoverer.reducer(list(messages), info)
    except Exception:  # a broken reducer means "cannot reduce", not a new error for the caller
        log.warning(
            "context reducer %r failed; giving up on reduction", recoverer.reducer, exc_info=True
        )
        return False
    if not reduced or reduced == messages:
        return False
    call.request[key] = reduced
    call.reductions += 1
    strategy = _strategy(recoverer.reducer, messages, reduced)
    recoverer.recorder.event(
        "context_reduced", model=call.model, strategy=strategy, reduction=number,
        messages_before=len(messages), messages_after=len(reduced), tokens_before=estimated,
        tokens_after=estimate_tokens(reduced), context_window=window, prompt_tokens=counted,
    )  # fmt: skip
    recoverer.recorder.metric(
        "llmpulse_recovery_reductions_total", 1, model=call.model, strategy=strategy
    )
    return True
