"""What recovery tells the llmpulse SDK: span events, span attributes and metric points.

Every function here swallows its own failures: recording is never a reason for a call to fail.
Metric points named ``*_total`` carry the increment (1 per event, or seconds waited), so the
sum over a window is the count; ``llmpulse_circuit_state`` is a gauge (0 closed, 1 half-open,
2 open) recorded at every transition.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from typing import Any

__all__ = ["METRICS", "Recorder"]

log = logging.getLogger("llmpulse.recovery")

METRICS = {
    "llmpulse_recovery_retries_total": "retries, labels model and reason",
    "llmpulse_recovery_backoff_seconds_total": "seconds slept before retries, labels model and reason",
    "llmpulse_recovery_reductions_total": "context reductions, labels model and strategy",
    "llmpulse_recovery_fallbacks_total": "fallbacks, labels from_model, to_model and reason",
    "llmpulse_recovery_recovered_total": "calls that succeeded after recovering, label model (the one that answered)",
    "llmpulse_recovery_giveups_total": "calls recovery gave up on, labels model and reason",
    "llmpulse_recovery_breaker_rejections_total": "calls refused by an open breaker, label model",
    "llmpulse_recovery_breaker_transitions_total": "breaker transitions, labels model, from_state and to_state",
    "llmpulse_recovery_limiter_wait_seconds_total": "seconds waited for the client-side rate limiter, label model",
    "llmpulse_recovery_limiter_rejections_total": "calls refused by the client-side rate limiter, label model",
    "llmpulse_circuit_state": "breaker state gauge: 0 closed, 1 half-open, 2 open; label model",
}


class Recorder:
    """Records through the llmpulse SDK when ``enabled``; otherwise does nothing."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def span(self, name: str, **attributes: Any) -> AbstractContextManager[Any]:
        """A span around one recovered call (a no-op context when recording is off or fails)."""
        if not self.enabled:
            return nullcontext(None)
        try:
            import llmpulse

            return llmpulse.span(name, kind="span", **attributes)
        except Exception:
            log.debug("recovery span failed", exc_info=True)
            return nullcontext(None)

    def event(self, name: str, **attributes: Any) -> None:
        """Add an event to the current span (the recovery span inside a call)."""
        if not self.enabled:
            return
        try:
            import llmpulse

            values = {k: v for k, v in attributes.items() if v is not None}
            llmpulse.get_current_span().add_event(name, **values)
        except Exception:
            log.debug("recovery event %s failed", name, exc_info=True)

    def attributes(self, handle: Any, values: dict[str, Any]) -> None:
        """Set attributes on a span handle (ignores None handles)."""
        if not self.enabled or handle is None:
            return
        try:
            handle.set_attributes(values)
        except Exception:
            log.debug("recovery attributes failed", exc_info=True)

    def metric(self, name: str, value: float, **labels: Any) -> None:
        """Record one metric point with string labels."""
        if not self.enabled:
            return
        try:
            import llmpulse

            llmpulse.record_metric(
                name, float(value), labels={k: str(v) for k, v in labels.items()}
            )
        except Exception:
            log.debug("recovery metric %s failed", name, exc_info=True)
