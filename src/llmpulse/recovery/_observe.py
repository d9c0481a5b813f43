"""What recovery tells the llmpulse SDK: span events, span attributes and metric points.

Every function here swallows its own failures: recording is never a reason for a call to fail.
Metric points named ``*_total`` are counters with Prometheus semantics: each point carries the
cumulative value since the process started (per metric and label set), with an ``instance``
label (host:pid) telling processes apart, so the count over a window is the increase of each
series (``counter_increase``), and a lost point loses nothing. ``llmpulse_circuit_state`` is a
gauge (0 closed, 1 half-open, 2 open) recorded at every transition.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

__all__ = ["METRICS", "Recorder", "counter_increase", "reset_counters"]

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


# Process-wide counter values, as a Prometheus client keeps them: (name, labels) -> total.
_counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
_counters_lock = threading.Lock()


def _count(name: str, labels: dict[str, str], increment: float) -> float:
    """Add ``increment`` to the counter ``name`` with ``labels``; returns its new total."""
    key = (name, tuple(sorted(labels.items())))
    with _counters_lock:
        total = _counters[key] = _counters.get(key, 0.0) + increment
    return total


def reset_counters() -> None:
    """Start every recovery counter of this process from zero again (for tests)."""
    with _counters_lock:
        _counters.clear()


def counter_increase(points: Iterable[Any], before: float = 0.0) -> float:
    """How much one counter series rose over ``points`` (its values in time order).

    ``before`` is the series' value before the window (0 if it started inside it). A value
    lower than the previous one is a restart from zero, as in Prometheus ``increase()``.
    """
    rise, last = 0.0, before
    for point in points:
        value = float(point.value)
        rise += value - last if value >= last else value
        last = value
    return rise


def _after_fork_in_child() -> None:
    global _counters_lock
    _counters_lock = threading.Lock()  # the parent's could have been held by another thread


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


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
        """Record one metric point with string labels (the running total for a ``_total``)."""
        if not self.enabled:
            return
        try:
            import llmpulse

            values = {k: str(v) for k, v in labels.items()}
            if name.endswith("_total"):
                values["instance"] = f"{socket.gethostname()}:{os.getpid()}"
                value = _count(name, values, float(value))
            llmpulse.record_metric(name, float(value), labels=values)
        except Exception:
            log.debug("recovery metric %s failed", name, exc_info=True)
