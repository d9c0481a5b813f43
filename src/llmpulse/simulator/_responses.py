"""Response bodies shaped exactly like OpenAI's: completions, chunks and error bodies."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from typing import Any

from starlette.responses import HTMLResponse, JSONResponse, Response

from llmpulse.simulator._config import ModelSpec
from llmpulse.simulator._engine import ScriptedFault
from llmpulse.simulator._text import generate_words

__all__ = [
    "Choice",
    "auth_error",
    "bad_request",
    "completion_body",
    "context_error",
    "error_response",
    "fault_response",
    "make_choice",
    "model_not_found",
    "usage_body",
]

_HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_SERVER_ERROR_MESSAGE = (
    "The server had an error while processing your request. Sorry about that! You can retry your "
    "request, or contact us through our help center if the error persists."
)
_OVERLOADED_MESSAGE = (
    "That model is currently overloaded with other requests. You can retry your request."
)


@dataclass(slots=True)
class Choice:
    """One generated answer: its text pieces (one per token), finish reason and token counts."""

    pieces: list[str]
    finish_reason: str
    completion_tokens: int
    reasoning_tokens: int

    @property
    def content(self) -> str:
        """The answer text."""
        return "".join(self.pieces)


def make_choice(
    rng: random.Random,
    spec: ModelSpec,
    max_tokens: int | None,
    blowup: float,
    messages: list[dict[str, Any]],
    json_mode: bool,
) -> Choice:
    """Draw one answer: length from the model's log-normal, capped by max_tokens."""
    visible = max(
        1,
        round(
            spec.completion_median_tokens
            * math.exp(spec.completion_sigma * rng.gauss(0, 1))
            * blowup
        ),
    )
    reasoning = round(visible * rng.uniform(1.0, 3.0)) if spec.reasoning else 0
    cap = min(max_tokens or spec.max_output_tokens, spec.max_output_tokens)
    finish = "stop"
    if visible + reasoning > cap:
        # Reasoning is spent first, as on the real API; it can leave an empty answer.
        finish = "length"
        reasoning = min(reasoning, cap)
        visible = cap - reasoning
    pieces = generate_words(rng, visible, messages)
    if json_mode and pieces:
        pieces = ['{"answer": ', json.dumps("".join(pieces)), "}"]
    return Choice(pieces, finish, visible + reasoning, reasoning)


def usage_body(prompt_tokens: int, cached: int, choices: list[Choice]) -> dict[str, Any]:
    """The usage object, with the token details the real API sends."""
    completion = sum(c.completion_tokens for c in choices)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": sum(c.reasoning_tokens for c in choices),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion_body(
    meta: dict[str, Any], choices: list[Choice], usage: dict[str, Any]
) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    return {
        **meta,
        "object": "chat.completion",
        "choices": [
            {
                "index": i,
                "message": {
                    "role": "assistant",
                    "content": c.content,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": c.finish_reason,
            }
            for i, c in enumerate(choices)
        ],
        "usage": usage,
    }


def error_response(
    status: int,
    message: str,
    type_: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error in OpenAI's shape: ``{"error": {message, type, param, code}}``."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")


def fault_response(fault: ScriptedFault, model: str, headers: dict[str, str]) -> Response:
    """The response for a served fault (never called for ``slow``)."""
    if fault.kind == "rate_limit":
        wait = max(0.0, fault.retry_after_s)
        limited = {**headers, "retry-after": _seconds(wait), "x-ratelimit-remaining-requests": "0"}
        message = (
            f"Rate limit reached for {model} in organization org-llmpulse-sim on requests per min (RPM): "
            f"Limit {headers.get('x-ratelimit-limit-requests', '?')}. Please try again in {_seconds(wait)}s."
        )
        return error_response(429, message, "requests", code="rate_limit_exceeded", headers=limited)
    if fault.kind == "html":
        return HTMLResponse(
            _HTML_502, status_code=fault.status if fault.status >= 500 else 502, headers=headers
        )
    if fault.kind == "context_length":
        return context_error(None, None)
    if fault.kind == "auth":
        return auth_error()
    overloaded = fault.kind == "overloaded" or fault.status == 503
    message = _OVERLOADED_MESSAGE if overloaded else _SERVER_ERROR_MESSAGE
    return error_response(fault.status, message, "server_error", headers=headers)


def context_error(window: int | None, prompt_tokens: int | None) -> JSONResponse:
    """400 context_length_exceeded, worded as the real API words it."""
    window = window or 128_000
    prompt_tokens = prompt_tokens or window + 1
    message = (
        f"This model's maximum context length is {window} tokens. However, your messages resulted in "
        f"{prompt_tokens} tokens. Please reduce the length of the messages."
    )
    return error_response(
        400, message, "invalid_request_error", param="messages", code="context_length_exceeded"
    )


def auth_error() -> JSONResponse:
    """401 invalid_api_key."""
    message = "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."
    return error_response(401, message, "invalid_request_error", code="invalid_api_key")


def model_not_found(model: str) -> JSONResponse:
    """404 model_not_found, as the real API answers for an unknown model."""
    message = f"The model `{model}` does not exist or you do not have access to it."
    return error_response(
        404, message, "invalid_request_error", param="model", code="model_not_found"
    )


def bad_request(message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    """400 invalid_request_error."""
    return error_response(400, message, "invalid_request_error", param=param, code=code)
