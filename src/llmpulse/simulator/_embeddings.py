"""``POST /v1/embeddings``: OpenAI's embeddings request and response, shaped as the real API's.

The input is a string, a list of strings, a token array or a list of token arrays; each input
gets one unit-length vector drawn from a random stream seeded by the model and the input, so
the same text always embeds to the same vector (in every process, whatever the simulator's
seed). ``dimensions`` shortens a vector the way OpenAI documents for the text-embedding-3
models: the first ``dimensions`` values, normalised again; a model that predates it
(text-embedding-ada-002, ``ModelSpec.accepts_dimensions``) refuses it with the real API's 400.
The values are float32, so the ``float`` and ``base64`` encodings carry exactly the same
numbers.
"""

from __future__ import annotations

import base64
import math
import random
import struct
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from llmpulse.simulator._config import ModelSpec
from llmpulse.simulator._engine import stable_hash
from llmpulse.simulator._responses import bad_request, error_response
from llmpulse.simulator._text import estimate_input_tokens

__all__ = [
    "ENCODING_FORMATS",
    "EmbeddingsRequest",
    "embeddings_body",
    "limit_error",
    "parse_embeddings",
]

ENCODING_FORMATS = ("float", "base64")
_MAX_INPUTS = 2048  # the real API's limit on inputs per request
_INVALID_INPUT = (
    "'$.input' is invalid. Please check the API reference: "
    "https://platform.openai.com/docs/api-reference."
)


@dataclass(slots=True)
class EmbeddingsRequest:
    """The parts of an embeddings request the simulator acts on."""

    model: str
    inputs: list[str | list[int]]
    base64: bool
    dimensions: int | None
    prompt_tokens: int = 0


def _is_tokens(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value)
    )


def _inputs(value: Any) -> list[str | list[int]] | None:
    """The request's inputs as a list, or None when ``input`` is not one of the four shapes
    (an empty string or list is refused, as the real API refuses it)."""
    if isinstance(value, str):
        return [value] if value else None
    if not isinstance(value, list) or not value or len(value) > _MAX_INPUTS:
        return None
    if _is_tokens(value):
        return [value]
    if all(isinstance(v, str) and v for v in value):
        return list(value)
    if all(_is_tokens(v) for v in value):
        return list(value)
    return None


def parse_embeddings(body: Any) -> EmbeddingsRequest | Response:
    """Validate an embeddings request body the way the real API does, or answer 400."""
    if not isinstance(body, dict):
        return bad_request("We could not parse the JSON body of your request. Send a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return bad_request(
            "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )
    if "input" not in body:
        return bad_request(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    inputs = _inputs(body["input"])
    if inputs is None:
        return bad_request(_INVALID_INPUT)  # the real API names no param or code here
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in ENCODING_FORMATS:
        return bad_request(
            f"{encoding!r} is not one of {list(ENCODING_FORMATS)} - 'encoding_format'",
            param="encoding_format",
            code="invalid_value",
        )
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1
    ):
        return bad_request(
            f"Invalid value for 'dimensions': expected an integer >= 1, but got {dimensions!r} instead.",
            param="dimensions",
            code="invalid_value",
        )
    return EmbeddingsRequest(
        model=model,
        inputs=inputs,
        base64=encoding == "base64",
        dimensions=dimensions,
        prompt_tokens=sum(estimate_input_tokens(item) for item in inputs),
    )


def limit_error(req: EmbeddingsRequest, spec: ModelSpec) -> Response | None:
    """The 400 the real API gives for an input or ``dimensions`` beyond the model's limits."""
    context_window, size = spec.context_window, spec.embedding_dimensions
    if req.dimensions is not None and not spec.accepts_dimensions:
        # The real API's words, with neither param nor code (text-embedding-ada-002).
        return bad_request("This model does not support specifying dimensions.")
    if req.dimensions is not None and req.dimensions > size:
        return bad_request(
            f"This model does not support dimensions above {size}; you asked for {req.dimensions}.",
            param="dimensions",
            code="invalid_value",
        )
    for item in req.inputs:
        tokens = estimate_input_tokens(item)
        if tokens > context_window:
            message = (
                f"This model's maximum context length is {context_window} tokens, however you "
                f"requested {tokens} tokens ({tokens} in your prompt; 0 for the completion). "
                "Please reduce your prompt; or completion length."
            )
            return error_response(400, message, "invalid_request_error")
    return None


def _vector(model: str, item: str | list[int], size: int, dimensions: int) -> bytes:
    """One input's vector as little-endian float32: seeded by model and input, unit length."""
    rng = random.Random(stable_hash([model, item]))
    values = [rng.gauss(0.0, 1.0) for _ in range(size)][:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return struct.pack(f"<{dimensions}f", *(v / norm for v in values))


def embeddings_body(req: EmbeddingsRequest, size: int) -> dict[str, Any]:
    """The ``list`` of ``embedding`` objects, one per input in order, and the usage."""
    dimensions = req.dimensions or size
    data = []
    for index, item in enumerate(req.inputs):
        packed = _vector(req.model, item, size, dimensions)
        embedding: Any = (
            base64.b64encode(packed).decode("ascii")
            if req.base64
            else list(struct.unpack(f"<{dimensions}f", packed))
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": req.model,
        "usage": {"prompt_tokens": req.prompt_tokens, "total_tokens": req.prompt_tokens},
    }
