"""SDK test fixtures: a client recording into memory, reset after every test.

``recorded`` turns on the client instrumentations a test module names in its ``instrument``
mark (``pytestmark = pytest.mark.instrument("openai")``); ``llm_spans`` reads what it recorded.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

import llmpulse
from llmpulse.schema import Span
from llmpulse.testing import InMemoryExporter, reset_sdk


@pytest.fixture(autouse=True)
def _fresh_sdk() -> Iterator[None]:
    """Every test starts and ends with no active client and openai not instrumented."""
    reset_sdk()
    yield
    reset_sdk()


@pytest.fixture
def exporter() -> InMemoryExporter:
    """An in-memory exporter, already installed with llmpulse.init."""
    exp = InMemoryExporter()
    llmpulse.init(exporter=exp, instrument=())
    return exp


@pytest.fixture
def recorded(request: pytest.FixtureRequest) -> InMemoryExporter:
    """llmpulse recording into memory with the module's ``instrument`` mark's libraries on."""
    mark = request.node.get_closest_marker("instrument")
    exporter = InMemoryExporter()
    llmpulse.init(exporter=exporter, instrument=mark.args if mark else ())
    return exporter


@pytest.fixture(scope="module")
def litellm_event_loop_closed() -> Iterator[None]:
    """LiteLLM's sync path leaves an event loop set on the main thread; close it after the
    module, so no later test's garbage collection finds it unclosed (the litellm modules use
    this through test_litellm's LITELLM_MARKS)."""
    yield
    policy = asyncio.get_event_loop_policy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = policy.get_event_loop()
        except RuntimeError:
            return
    if not loop.is_running():
        loop.close()
        policy.set_event_loop(None)


def llm_spans(exporter: InMemoryExporter) -> list[Span]:
    """The llm spans ``exporter`` holds, once everything recorded so far is exported."""
    assert llmpulse.flush(10)
    return [s for s in exporter.spans if s.kind == "llm"]


class BlockingExporter(InMemoryExporter):
    """Holds every export until ``release()``; counts how many exports started."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def export(self, batch: list[Any]) -> None:
        self.entered.set()
        self.gate.wait(30)
        super().export(batch)

    def release(self) -> None:
        self.gate.set()


class FailingExporter(InMemoryExporter):
    """Raises for the first ``failures`` exports (forever if None), then keeps batches."""

    def __init__(self, failures: int | None = None, error: Exception | None = None) -> None:
        super().__init__()
        self.failures = failures
        self.error = error or ConnectionError("exporter down")
        self.attempts = 0

    def export(self, batch: list[Any]) -> None:
        self.attempts += 1
        if self.failures is None or self.attempts <= self.failures:
            raise self.error
        super().export(batch)


class RejectingExporter(InMemoryExporter):
    """Keeps batches but reports records with model 'bad' as rejected, like Store.write."""

    def export(self, batch: list[Any]) -> Any:
        good = [r for r in batch if getattr(r, "model", None) != "bad"]
        super().export(good)
        return type("WriteResult", (), {"rejected": len(batch) - len(good)})()
