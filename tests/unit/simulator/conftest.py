"""One simulator per test module (starting one costs ~0.1 s); each test gets it reset."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from llmpulse.simulator import LLMSimulator


@pytest.fixture(scope="module")
def sim_seed() -> int:
    """This module's simulator seed (the shared simulator fixture is in tests/conftest.py)."""
    return 7


@pytest.fixture
def client(sim: LLMSimulator) -> Iterator[openai.OpenAI]:
    """The real openai client pointed at the simulator, with its own retries off."""
    with openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as c:
        yield c
