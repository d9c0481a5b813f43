"""One simulator per test module (starting one costs ~0.1 s); each test gets it reset."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from llmpulse.simulator import LLMSimulator, SimulatorConfig


@pytest.fixture(scope="module")
def _module_sim() -> Iterator[LLMSimulator]:
    with LLMSimulator(SimulatorConfig(seed=7)) as sim:
        yield sim


@pytest.fixture
def sim(_module_sim: LLMSimulator) -> Iterator[LLMSimulator]:
    """A running simulator with no faults, no queued failures and an empty request log."""
    _module_sim.reset()
    yield _module_sim
    _module_sim.reset()


@pytest.fixture
def client(sim: LLMSimulator) -> Iterator[openai.OpenAI]:
    """The real openai client pointed at the simulator, with its own retries off."""
    with openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as c:
        yield c
