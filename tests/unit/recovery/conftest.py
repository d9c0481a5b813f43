"""Recovery fixtures: the simulator, the real openai client, a fake clock whose sleep only
advances it (no real waits), and the SDK recording into memory."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import openai
import pytest

import llmpulse
from llmpulse.recovery import Recoverer, RecoveryPolicy
from llmpulse.recovery._observe import reset_counters
from llmpulse.testing import FakeClock, InMemoryExporter, reset_sdk


class Timeline:
    """A fake clock plus the sleeps recovery asked for, sync and async alike."""

    def __init__(self) -> None:
        self.clock = FakeClock(1000.0)
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.clock.monotonic()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)
        await asyncio.sleep(0)

    def recoverer(self, policy: RecoveryPolicy | None = None, **options: Any) -> Recoverer:
        """A Recoverer on this timeline with a seeded jitter source."""
        return Recoverer(policy, clock=self.now, sleep=self.sleep, async_sleep=self.async_sleep,
                         rng=random.Random(0), **options)  # fmt: skip

    def options(self) -> dict[str, Any]:
        """Keyword arguments that put a RecoveringClient on this timeline."""
        return {
            "clock": self.now,
            "sleep": self.sleep,
            "async_sleep": self.async_sleep,
            "rng": random.Random(0),
        }


@pytest.fixture
def timeline() -> Timeline:
    """A fresh fake clock and sleep log."""
    return Timeline()


@pytest.fixture(scope="module")
def sim_seed() -> int:
    """This module's simulator seed (the shared simulator fixture is in tests/conftest.py)."""
    return 11


@pytest.fixture
def openai_client(client: openai.OpenAI) -> openai.OpenAI:
    """The shared real openai client against the simulator (tests/conftest.py), its own retries
    off; named for what it is here, where the tests' ``client`` is the recovering one."""
    return client


@pytest.fixture
def exporter() -> Iterator[InMemoryExporter]:
    """The SDK recording into memory with openai instrumented; reset afterwards."""
    reset_sdk()
    reset_counters()  # every test counts from zero
    exp = InMemoryExporter()
    llmpulse.init(exporter=exp, instrument=("openai",))
    yield exp
    reset_sdk()
