"""Virtual time for the demo: each request runs at its own point of a simulated afternoon.

The demo answers a few hundred tickets in seconds of wall time, but a monitoring picture needs
hours: per-minute rollups, a baseline, an incident window. ``VirtualClock`` places request *i*
at ``start + i * spacing`` while keeping real elapsed time inside the request, so latencies are
measured, not invented. The offset lives in a context variable, so concurrent worker threads
each carry their own request's time.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["VirtualClock"]


class VirtualClock:
    """A ``time.time()`` replacement whose now is shifted per request."""

    def __init__(self, start: float, spacing_s: float) -> None:
        self.start = start
        self.spacing_s = spacing_s
        self._offset: contextvars.ContextVar[float] = contextvars.ContextVar(
            "llmpulse_demo_offset", default=0.0
        )

    def __call__(self) -> float:
        return time.time() + self._offset.get()

    def at(self, index: int) -> float:
        """The virtual time at which request ``index`` starts."""
        return self.start + index * self.spacing_s

    @contextmanager
    def request(self, index: int) -> Iterator[float]:
        """Run the body as if it started at request ``index``'s virtual time."""
        token = self._offset.set(self.at(index) - time.time())
        try:
            yield self.at(index)
        finally:
            self._offset.reset(token)
