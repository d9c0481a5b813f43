"""Token usage of a LangChain LLM result, in llmpulse's billing terms.

llmpulse counts as providers bill: ``input_tokens`` *includes* cache reads and writes,
``output_tokens`` *includes* reasoning. LangChain reports usage in three shapes, and each has
bitten a peer tracer (see the workflows notes):

* ``message.usage_metadata`` (langchain-core's ``UsageMetadata``): cache-inclusive input; the
  detail buckets are subsets, not extra tokens (Langfuse double-billed reasoning). Providers
  rename detail keys: ``ephemeral_5m/1h_input_tokens`` replace ``cache_creation`` (Anthropic
  cache TTLs), ``priority_cache_read`` / ``priority_reasoning`` replace the plain keys (OpenAI
  service tiers), and a bare ``priority`` key is not exclusive of the others.
* ``llm_output["token_usage"]``: OpenAI's raw usage (``prompt_tokens``, details nested).
* ``llm_output["usage"]``: Anthropic's raw usage, whose ``input_tokens`` *excludes* the cache.

``usage_metadata`` wins (it is the one that exists when streaming, where ``llm_output`` is
``None``); the raw shapes are the fallback. Only ints are read: usage dicts carry strings,
nested dicts and lists. No usage at all gives ``{}`` (unknown), never zeros. Nothing raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["usage_from_result"]


def usage_from_result(response: Any) -> dict[str, Any]:
    """Token counts (and a cost when LangChain fixed one) of an ``LLMResult``; ``{}`` if none."""
    try:
        for generations in getattr(response, "generations", None) or ():
            for generation in generations or ():
                metadata = getattr(getattr(generation, "message", None), "usage_metadata", None)
                if isinstance(metadata, Mapping):
                    usage = from_usage_metadata(metadata)
                    if usage:
                        return usage
        llm_output = getattr(response, "llm_output", None)
        if isinstance(llm_output, Mapping):
            if isinstance(llm_output.get("token_usage"), Mapping):
                return from_openai_usage(llm_output["token_usage"])
            if isinstance(llm_output.get("usage"), Mapping):
                return from_anthropic_usage(llm_output["usage"])
    except Exception:  # usage is best effort: a strange result must not lose the span
        return {}
    return {}


def from_usage_metadata(usage: Mapping[str, Any]) -> dict[str, Any]:
    """langchain-core ``UsageMetadata`` (cache-inclusive input, reasoning inside output)."""
    inp, out = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
    if inp is None and out is None:
        return {}
    details = _map(usage.get("input_token_details"))
    out_details = _map(usage.get("output_token_details"))
    cache_read = _first(details, "cache_read", "priority_cache_read", "flex_cache_read")
    cache_write = _int(details.get("cache_creation"))
    if not cache_write:
        ttl = [
            _int(details.get(k)) for k in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")
        ]
        if any(v is not None for v in ttl):
            cache_write = sum(v or 0 for v in ttl)
    reasoning = _first(out_details, "reasoning", "priority_reasoning", "flex_reasoning")
    result = _bounded(inp, out, cache_read, cache_write, reasoning)
    cost = usage.get("total_cost")
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        result["cost_usd"] = float(cost)  # 0 on an LLM-cache hit: nothing was billed
    return result


def from_openai_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI's raw usage (``prompt_tokens`` includes cached, ``completion_tokens`` reasoning)."""
    inp, out = _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
    if inp is None and out is None:
        return {}
    cache_read = _int(_map(usage.get("prompt_tokens_details")).get("cached_tokens"))
    reasoning = _int(_map(usage.get("completion_tokens_details")).get("reasoning_tokens"))
    return _bounded(inp, out, cache_read, None, reasoning)


def from_anthropic_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic's raw usage: ``input_tokens`` is the uncached part, the cache is added back."""
    uncached, out = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
    cache_read = _int(usage.get("cache_read_input_tokens"))
    cache_write = _int(usage.get("cache_creation_input_tokens"))
    if uncached is None and out is None:
        return {}
    inp = (uncached or 0) + (cache_read or 0) + (cache_write or 0)
    reasoning = _int(_map(usage.get("output_tokens_details")).get("thinking_tokens"))
    return _bounded(inp, out, cache_read, cache_write, reasoning)


def _bounded(
    inp: int | None, out: int | None, cache_read: int | None, cache_write: int | None,
    reasoning: int | None,
) -> dict[str, Any]:  # fmt: skip
    """The counts, each subset no larger than what contains it (so nothing goes negative)."""
    result: dict[str, Any] = {}
    if inp is not None:
        result["input_tokens"] = inp
        if cache_read is not None:
            cache_read = result["cache_read_tokens"] = min(cache_read, inp)
        if cache_write is not None:
            result["cache_write_tokens"] = min(cache_write, inp - (cache_read or 0))
    if out is not None:
        result["output_tokens"] = out
        if reasoning is not None:
            result["reasoning_tokens"] = min(reasoning, out)
    return result


def _first(details: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = _int(details.get(key))
        if value is not None:
            return value
    return None


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int | None:
    """A non-negative int, or ``None`` (strings, floats, dicts and lists are not counts)."""
    if type(value) is int and value >= 0:
        return value
    return None
