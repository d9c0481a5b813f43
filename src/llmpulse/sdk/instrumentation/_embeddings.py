"""What the openai and LiteLLM instrumentations record of an embeddings call, beyond tokens.

An embeddings span follows the OpenTelemetry GenAI conventions for embeddings: operation
``embeddings``, named ``embeddings {model}``, input tokens only (no output tokens: an embedding
is not generated text). The input texts are kept as a prompt is (a list stays a list, redacted
and bounded by the client's settings); the vectors never are: only how many came back
(``llmpulse.embeddings.count``) and their length (``gen_ai.embeddings.dimension.count``).

Its kind is ``llm``, not ``embedding``: an embeddings call is a billed model call, and every
view of llm calls (per-model stats, cost and token alert rules, ``llmpulse check``) must count
its tokens and cost. The server's OTLP ingest maps GenAI ``embeddings`` operations and
OpenInference ``EMBEDDING`` spans to ``llm`` too, so the same call has one kind however it
arrives; ``gen_ai.operation.name = "embeddings"`` tells it apart from a chat.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "COUNT_ATTRIBUTE",
    "DIMENSIONS_ATTRIBUTE",
    "OPERATION",
    "embedding_input",
    "estimated_input_tokens",
    "request_attributes",
    "vector_attributes",
]

OPERATION = "embeddings"
COUNT_ATTRIBUTE = "llmpulse.embeddings.count"
DIMENSIONS_ATTRIBUTE = "gen_ai.embeddings.dimension.count"
_CHARS_PER_TOKEN = 4  # as the chat estimate: about 4 characters of English a token


def embedding_input(value: Any) -> Any:
    """The ``input`` as recorded: a copy of a list (so later changes do not leak in)."""
    return list(value) if isinstance(value, (list, tuple)) else value


def request_attributes(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``gen_ai.*`` attributes of the request: the operation, the encoding format and the
    dimensions asked for (the response's vectors overwrite the latter when they arrive)."""
    attributes: dict[str, Any] = {"gen_ai.operation.name": OPERATION}
    encoding = kwargs.get("encoding_format")
    if isinstance(encoding, str) and encoding:
        attributes["gen_ai.request.encoding_formats"] = [encoding]
    dimensions = kwargs.get("dimensions")
    if type(dimensions) is int and dimensions > 0:
        attributes[DIMENSIONS_ATTRIBUTE] = dimensions
    return attributes


def _length(vector: Any) -> int | None:
    if isinstance(vector, (list, tuple)):
        return len(vector)
    if isinstance(vector, str) and vector:  # base64 of float32s: 4 bytes a value
        padding = len(vector) - len(vector.rstrip("="))
        return (len(vector) * 3 // 4 - padding) // 4
    return None


def vector_attributes(data: Any) -> dict[str, int]:
    """How many vectors a response holds and their length (of the first), never the values."""
    if not isinstance(data, (list, tuple)):
        return {}
    out = {COUNT_ATTRIBUTE: len(data)}
    if data:
        first = data[0]
        vector = (
            first.get("embedding") if isinstance(first, dict) else getattr(first, "embedding", None)
        )
        size = _length(vector)
        if size is not None:
            out[DIMENSIONS_ATTRIBUTE] = size
    return out


def estimated_input_tokens(value: Any) -> int | None:
    """Input tokens when the provider reported none: about 4 characters a token for text, the
    length of a token array; ``None`` for an input of no known shape."""
    if isinstance(value, str):
        return -(-len(value) // _CHARS_PER_TOKEN)
    if not isinstance(value, (list, tuple)) or not value:
        return None
    if all(type(v) is int for v in value):
        return len(value)
    total = 0
    for item in value:
        tokens = estimated_input_tokens(item)
        if tokens is None:
            return None
        total += tokens
    return total
