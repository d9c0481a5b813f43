"""Token usage from LangChain results: every shape and renamed key maps to billing counts."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from llmpulse.sdk.instrumentation._langchain_usage import (
    from_anthropic_usage,
    from_usage_metadata,
    usage_from_result,
)


def _result(usage_metadata: Any = None, llm_output: Any = None) -> Any:
    message = SimpleNamespace(usage_metadata=usage_metadata)
    return SimpleNamespace(generations=[[SimpleNamespace(message=message)]], llm_output=llm_output)


class TestUsageShapes:
    def test_streaming_result_without_llm_output(self) -> None:
        """A streamed result (llm_output None) takes usage from the message's usage_metadata."""
        usage = usage_from_result(
            _result({"input_tokens": 7, "output_tokens": 3, "total_tokens": 10})
        )
        assert usage == {"input_tokens": 7, "output_tokens": 3}

    def test_no_usage_is_unknown_not_zero(self) -> None:
        """No usage anywhere gives {} (unknown), never zero counts."""
        assert usage_from_result(_result(None, None)) == {}
        assert usage_from_result(SimpleNamespace(generations=[], llm_output=None)) == {}

    def test_anthropic_cache_through_both_paths(self) -> None:
        """Raw input 10 with cache_read 1000: total input 1010, cache_read 1000 either way."""
        metadata = {
            "input_tokens": 1010, "output_tokens": 5, "total_tokens": 1015,
            "input_token_details": {"cache_read": 1000, "cache_creation": 0},
        }  # fmt: skip
        raw = {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 1000,
               "cache_creation_input_tokens": 0}  # fmt: skip
        from_metadata = usage_from_result(_result(metadata, {"usage": raw}))
        from_raw = usage_from_result(_result(None, {"usage": raw}))
        expected = {"input_tokens": 1010, "output_tokens": 5, "cache_read_tokens": 1000,
                    "cache_write_tokens": 0}  # fmt: skip
        assert from_metadata == from_raw == expected
        assert from_anthropic_usage(raw)["input_tokens"] - 1000 == 10  # the uncached part

    def test_openai_raw_fallback(self) -> None:
        """llm_output["token_usage"] (OpenAI's raw usage) is read when there is no usage_metadata."""
        raw = {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70,
               "prompt_tokens_details": {"cached_tokens": 32},
               "completion_tokens_details": {"reasoning_tokens": 12}}  # fmt: skip
        assert usage_from_result(_result(None, {"token_usage": raw})) == {
            "input_tokens": 50, "output_tokens": 20, "cache_read_tokens": 32, "reasoning_tokens": 12,
        }  # fmt: skip

    def test_cache_ttl_keys_are_cache_writes(self) -> None:
        """ephemeral_5m/1h keys (cache_creation set to 0) add up to the cache-write count."""
        usage = from_usage_metadata({
            "input_tokens": 500, "output_tokens": 1,
            "input_token_details": {"cache_creation": 0, "ephemeral_5m_input_tokens": 300,
                                    "ephemeral_1h_input_tokens": 100, "cache_read": 50},
        })  # fmt: skip
        assert (usage["cache_write_tokens"], usage["cache_read_tokens"]) == (400, 50)

    def test_priority_tier_keys(self) -> None:
        """priority_cache_read / priority_reasoning count; the bare 'priority' key is ignored."""
        usage = from_usage_metadata({
            "input_tokens": 100, "output_tokens": 40,
            "input_token_details": {"priority_cache_read": 64, "priority": 100},
            "output_token_details": {"priority_reasoning": 30, "priority": 40},
        })  # fmt: skip
        assert usage == {"input_tokens": 100, "output_tokens": 40, "cache_read_tokens": 64,
                         "reasoning_tokens": 30}  # fmt: skip

    def test_reasoning_is_part_of_output(self) -> None:
        """Output 1970 with reasoning 956 is 1970 output tokens, not 2926."""
        usage = from_usage_metadata({"input_tokens": 10, "output_tokens": 1970,
                                     "output_token_details": {"reasoning": 956}})  # fmt: skip
        assert (usage["output_tokens"], usage["reasoning_tokens"]) == (1970, 956)

    def test_subsets_never_exceed_their_total(self) -> None:
        """A detail larger than its total is capped, so no derived count goes negative."""
        usage = from_usage_metadata({"input_tokens": 10, "output_tokens": 5,
                                     "input_token_details": {"cache_read": 8, "cache_creation": 9},
                                     "output_token_details": {"reasoning": 50}})  # fmt: skip
        assert usage["cache_read_tokens"] == 8 and usage["cache_write_tokens"] == 2
        assert usage["reasoning_tokens"] == 5

    def test_non_integers_are_ignored(self) -> None:
        """Strings, floats, nested dicts, lists and negatives are not counts; nothing raises."""
        usage = from_usage_metadata({
            "input_tokens": "12", "output_tokens": 4, "total_tokens": [1],
            "input_token_details": {"cache_read": {"n": 1}, "cache_creation": -3},
            "output_token_details": ["reasoning"],
        })  # fmt: skip
        assert usage == {"output_tokens": 4}
        assert usage_from_result(SimpleNamespace(generations=[[object()]], llm_output=[1])) == {}

    def test_cache_hit_cost(self) -> None:
        """LangChain's LLM cache marks a hit with total_cost 0: the cost is 0.0."""
        usage = from_usage_metadata({"input_tokens": 9, "output_tokens": 2, "total_cost": 0})
        assert usage["cost_usd"] == 0.0
