"""Type-only declarations (imported under TYPE_CHECKING)."""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = ["LlmCallFields"]


class LlmCallFields(TypedDict, total=False):
    """The optional keyword fields of ``record_llm_call``."""

    start_time: float
    end_time: float
    provider: str
    prompt_version: str
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    ttft_ms: float
    status: str
    error_type: str
    error_message: str
    input: Any
    output: Any
    session_id: str
    user_id: str
    name: str
    attributes: dict[str, Any]
    cost_usd: float
