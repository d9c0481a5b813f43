"""A local OpenAI-compatible LLM server that can be told to be slow, fail, rate-limit or overflow.

It is the only stand-in for a real provider in llmpulse: tests, benchmarks and ``llmpulse demo``
drive it with the real ``openai`` client::

    from llmpulse.simulator import Faults, LLMSimulator, SimulatorConfig

    with LLMSimulator(SimulatorConfig(seed=7)) as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key="sim")
        sim.set_faults(Faults(error_rate=0.3))       # at runtime, globally or model="..."
        sim.fail_next(3, status=429, retry_after=2)  # an exact sequence
"""

from __future__ import annotations

from llmpulse.simulator._config import (
    DEFAULT_MODELS,
    FAULT_KINDS,
    Faults,
    ModelSpec,
    SimulatorConfig,
)
from llmpulse.simulator._engine import RequestRecord
from llmpulse.simulator._server import LLMSimulator
from llmpulse.simulator._text import estimate_prompt_tokens

__all__ = [
    "DEFAULT_MODELS",
    "FAULT_KINDS",
    "Faults",
    "LLMSimulator",
    "ModelSpec",
    "RequestRecord",
    "SimulatorConfig",
    "estimate_prompt_tokens",
]
