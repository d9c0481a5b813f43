"""Public test helpers: an exporter that keeps what it gets, and a clock you move by hand.

>>> import llmpulse
>>> from llmpulse.testing import InMemoryExporter
>>> exporter = InMemoryExporter()
>>> _ = llmpulse.init(exporter=exporter, instrument=())
>>> with llmpulse.span("step"):
...     llmpulse.record_llm_call("gpt-4o-mini", input_tokens=3, output_tokens=1)
>>> llmpulse.flush(5.0)
True
>>> [s.name for s in exporter.spans]
['llm', 'step']
"""

from __future__ import annotations

import sys
import threading

from llmpulse.schema import MetricPoint, Run, Span

__all__ = ["FakeClock", "InMemoryExporter", "reset_sdk"]


class InMemoryExporter:
    """Collects every exported record in memory; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[Span | MetricPoint | Run] = []
        self.batches = 0
        self.shut_down = False

    def export(self, batch: list[Span | MetricPoint | Run]) -> None:
        """Keep the batch."""
        with self._lock:
            self._records.extend(batch)
            self.batches += 1

    def shutdown(self) -> None:
        """Remember that the client shut down (records stay readable)."""
        self.shut_down = True

    @property
    def records(self) -> list[Span | MetricPoint | Run]:
        """Everything exported, in order."""
        with self._lock:
            return list(self._records)

    @property
    def spans(self) -> list[Span]:
        """The exported spans, in order."""
        return [r for r in self.records if isinstance(r, Span)]

    @property
    def points(self) -> list[MetricPoint]:
        """The exported metric points, in order."""
        return [r for r in self.records if isinstance(r, MetricPoint)]

    @property
    def runs(self) -> list[Run]:
        """The exported runs, in order."""
        return [r for r in self.records if isinstance(r, Run)]

    def clear(self) -> None:
        """Forget everything exported so far."""
        with self._lock:
            self._records.clear()
            self.batches = 0


class FakeClock:
    """A clock that only moves when told: pass as ``init(clock=...)`` for exact timestamps.

    >>> clock = FakeClock(1_700_000_000.0)
    >>> clock.advance(1.5)
    >>> clock.time()
    1700000001.5
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def time(self) -> float:
        """The current fake Unix time in seconds."""
        return self._now

    def monotonic(self) -> float:
        """The same fake time (it never goes backwards unless you set it)."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Advance instead of sleeping."""
        self.advance(seconds)


def reset_sdk(timeout: float = 5.0) -> None:
    """Shut down the active client and return the SDK to "init() not called" (for test teardown)."""
    from llmpulse.sdk import _state
    from llmpulse.sdk.instrumentation.openai import uninstrument_openai

    uninstrument_openai()
    select = sys.modules.get("llmpulse.sdk.instrumentation._select")
    if select is not None:
        select.forget_init_switches()
    for name in ("anthropic", "litellm", "langchain"):
        module = sys.modules.get(f"llmpulse.sdk.instrumentation.{name}")
        if module is not None:
            getattr(module, f"uninstrument_{name}")()
    with _state._lock:
        client, _state._client, _state._sink = (
            _state._client,
            _state._default,
            _state._default._batcher,
        )
    client.shutdown(timeout)
