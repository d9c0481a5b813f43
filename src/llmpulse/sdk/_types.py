"""Type-only declarations (imported under TYPE_CHECKING)."""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = ["LlmCallFields"]


class LlmCallFields(TypedDict, total=False):
    """The optional keyword fields of ``record_llm_call``."""

    start_time: float | None
    end_time: float | None
    provider: str | None
    prompt_version: str | None
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    reasoning_tokens: int | None
    ttft_ms: float | None
    status: str | None
    error_type: str | None
    error_message: str | None
    input: Any
    output: Any
    session_id: str | None
    user_id: str | None
    name: str | None
    attributes: dict[str, Any] | None
    cost_usd: float | None
