"""Anthropic Messages requests the simulator's shape tests and the SDK's instrumentation tests
both send, and what MODEL costs (the client fixture, ``claude``, is in tests/conftest.py)."""

from __future__ import annotations

MODEL = "claude-sonnet-4-5"  # $3 input, $15 output, $0.30 cache read, $3.75 cache write / 1M
USER = [{"role": "user", "content": "Why do retries need jitter?"}]
# A cacheable system prompt: > 1024 tokens, with a cache_control breakpoint.
SYSTEM = [
    {
        "type": "text",
        "text": "You are a careful assistant. " * 200,
        "cache_control": {"type": "ephemeral"},
    }
]
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
}


def sonnet_cost(uncached: int, read: int, write: int, out: int) -> float:
    """What MODEL charges in USD for uncached input, cache read, cache write and output tokens."""
    return (uncached * 3.0 + read * 0.30 + write * 3.75 + out * 15.0) / 1e6
