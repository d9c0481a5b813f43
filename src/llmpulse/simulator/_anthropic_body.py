"""Anthropic Messages request parsing and response shapes: bodies, SSE events and errors.

What the simulator's ``POST /v1/messages`` reads and writes, shaped as Anthropic's API does so
that the real ``anthropic`` client parses it: a ``message`` object whose ``content`` is a list
of ``text`` / ``tool_use`` blocks, usage in Anthropic's terms (``input_tokens`` is the
*uncached* part; ``cache_creation_input_tokens`` and ``cache_read_input_tokens`` come beside
it), the streaming events ``message_start`` … ``message_stop``, and ``{"type": "error"}``
bodies.

Prompt caching follows Anthropic's explicit model: the prompt (tools, then system, then
messages) up to its last ``cache_control`` breakpoint is the cacheable prefix; when it is at
least ``CACHE_MIN_TOKENS`` long, the first request writes it (``cache_creation_input_tokens``)
and later ones with the same prefix read it (``cache_read_input_tokens``).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import HTMLResponse, JSONResponse, Response

from llmpulse.simulator._engine import ScriptedFault, stable_hash
from llmpulse.simulator._responses import Choice

__all__ = [
    "CACHE_MIN_TOKENS",
    "MessagesRequest",
    "anthropic_error",
    "anthropic_fault",
    "message_body",
    "parse_messages",
    "stream_events",
]

CACHE_MIN_TOKENS = 1024  # Anthropic's minimum cacheable prompt for Sonnet and Opus models
_TOKENS_PER_MESSAGE = 3
_THINKING_CHUNK = 24  # characters of thinking per streamed thinking_delta
_CHARS_PER_TOKEN = 4
_DELTA_USAGE_KEYS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


@dataclass(slots=True)
class MessagesRequest:
    """The parts of a Messages request the simulator acts on."""

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int
    stream: bool
    tools: list[dict[str, Any]]
    tool_choice: dict[str, Any]
    prompt_tokens: int = 0  # everything, cached or not
    prefix_tokens: int = 0  # up to the last cache_control breakpoint
    prefix_key: Any = None  # what identifies that prefix (hashed by the caller)
    ttl_1h: bool = False  # the breakpoint asked for the 1-hour cache
    thinking_budget: int | None = None  # extended thinking: at most this many thinking tokens
    chat_messages: list[dict[str, Any]] = field(default_factory=list)  # for the answer's topic


def anthropic_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error in Anthropic's shape: ``{"type": "error", "error": {"type", "message"}}``."""
    kind = _ERROR_TYPES.get(status, "api_error")
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def anthropic_fault(fault: ScriptedFault, model: str, headers: dict[str, str]) -> Response:
    """The response for a served fault (never called for ``slow``)."""
    if fault.kind == "rate_limit":
        wait = max(0.0, fault.retry_after_s)
        seconds = str(int(wait)) if float(wait).is_integer() else f"{wait:.3f}".rstrip("0")
        message = (
            f"This request would exceed the rate limit for your organization of "
            f"{headers.get('x-ratelimit-limit-requests', '?')} requests per minute for {model}. "
            "Please reduce the prompt length or the maximum tokens requested, or try again later."
        )
        return anthropic_error(429, message, {**headers, "retry-after": seconds})
    if fault.kind == "html":
        return HTMLResponse(
            "<html><head><title>502 Bad Gateway</title></head><body>"
            "<center><h1>502 Bad Gateway</h1></center></body></html>",
            status_code=fault.status if fault.status >= 500 else 502,
        )
    if fault.kind == "context_length":
        return anthropic_error(400, "prompt is too long: 200001 tokens > 200000 maximum")
    if fault.kind == "auth":
        return anthropic_error(401, "invalid x-api-key")
    if fault.kind == "overloaded" or fault.status == 529:
        return anthropic_error(529, "Overloaded", headers)
    return anthropic_error(fault.status, "Internal server error", headers)


def _bad(message: str) -> Response:
    return anthropic_error(400, message)


def parse_messages(body: Any) -> MessagesRequest | Response:
    """Validate a Messages request body the way the real API does, or answer 400."""
    if not isinstance(body, dict):
        return _bad("Request body must be a JSON object.")
    model, messages, max_tokens = body.get("model"), body.get("messages"), body.get("max_tokens")
    if not isinstance(model, str) or not model:
        return _bad("model: Field required")
    if not isinstance(messages, list):
        return _bad("messages: Field required")
    if type(max_tokens) is not int or max_tokens < 1:
        return _bad("max_tokens: Field required, an integer >= 1")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return _bad(f"messages.{i}.role: Input should be 'user' or 'assistant'")
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(
        isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools
    ):
        return _bad("tools: each tool needs a name")
    choice = body.get("tool_choice") or {"type": "auto"}
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        return _bad("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    budget = _thinking_budget(body.get("thinking"), max_tokens)
    if isinstance(budget, Response):
        return budget
    request = MessagesRequest(
        model=model, messages=messages, max_tokens=max_tokens, stream=body.get("stream") is True,
        tools=tools, tool_choice=choice, thinking_budget=budget,
    )  # fmt: skip
    _count_prompt(request, body.get("system"))
    return request


def _thinking_budget(thinking: Any, max_tokens: int) -> int | Response | None:
    """``thinking={"type": "enabled", "budget_tokens": N}``: N, checked as the API checks it."""
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if type(budget) is not int or budget < 1024:
        return _bad("thinking.enabled.budget_tokens: Input should be an integer >= 1024")
    if budget >= max_tokens:
        return _bad("`max_tokens` must be greater than `thinking.budget_tokens`")
    return budget


def _count_prompt(request: MessagesRequest, system: Any) -> None:
    """Prompt tokens (about 4 characters a token) and the prefix up to the last breakpoint."""
    pieces: list[tuple[Any, Any]] = [(t, t.get("cache_control")) for t in request.tools]
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) else system or []
    pieces += [(b, b.get("cache_control") if isinstance(b, dict) else None) for b in blocks]
    chat = [{"role": "system", "content": system}] if system else []
    total = 0
    for message in request.messages:
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        total += _TOKENS_PER_MESSAGE
        pieces += [(p, p.get("cache_control") if isinstance(p, dict) else None) for p in parts]
        chat.append({"role": message["role"], "content": content})
    request.chat_messages = chat
    prefix_end, counted = -1, []
    for i, (piece, cache_control) in enumerate(pieces):
        counted.append(_tokens(piece))
        if isinstance(cache_control, dict):
            prefix_end = i
            request.ttl_1h = cache_control.get("ttl") == "1h"
    request.prompt_tokens = total + sum(counted)
    if prefix_end >= 0:
        request.prefix_tokens = sum(counted[: prefix_end + 1])
        request.prefix_key = [request.model, [p for p, _ in pieces[: prefix_end + 1]]]


def _tokens(piece: Any) -> int:
    if (
        isinstance(piece, dict)
        and piece.get("type") == "text"
        and isinstance(piece.get("text"), str)
    ):
        text = piece["text"]
    else:
        text = json.dumps(
            {k: v for k, v in piece.items() if k != "cache_control"}
            if isinstance(piece, dict)
            else piece,
            default=str,
        )
    return math.ceil(len(text) / _CHARS_PER_TOKEN) if text else 0


# -- the answer ------------------------------------------------------------------------------
def wants_tool(request: MessagesRequest) -> dict[str, Any] | None:
    """The tool the simulated model calls, if any: a forced one, else the first tool when the
    last turn is the user's own question (not a tool result)."""
    kind = request.tool_choice.get("type")
    if not request.tools or kind == "none":
        return None
    if kind == "tool":
        name = request.tool_choice.get("name")
        return next((t for t in request.tools if t.get("name") == name), request.tools[0])
    if kind == "any":
        return request.tools[0]
    last = request.messages[-1] if request.messages else {}
    content = last.get("content")
    if last.get("role") != "user" or (
        isinstance(content, list)
        and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
    ):
        return None
    return request.tools[0]


def tool_input(tool: dict[str, Any], rng: random.Random, topic: str) -> dict[str, Any]:
    """Arguments that satisfy the tool's ``input_schema`` (its required properties)."""
    schema = tool.get("input_schema") or {}
    properties = schema.get("properties") or {}
    args: dict[str, Any] = {}
    for name in schema.get("required") or list(properties)[:1]:
        kind = (properties.get(name) or {}).get("type", "string")
        if kind == "integer":
            args[name] = rng.randint(1, 10)
        elif kind == "number":
            args[name] = round(rng.uniform(1, 10), 2)
        elif kind == "boolean":
            args[name] = True
        else:
            args[name] = topic or "query"
    return args


def output_tokens(choice: Choice, tool_json: str | None) -> int:
    """Output tokens of the answer: its text tokens plus the tool call's JSON."""
    extra = math.ceil(len(tool_json) / _CHARS_PER_TOKEN) + 5 if tool_json is not None else 0
    return choice.completion_tokens + extra


def usage_body(
    request: MessagesRequest, read: int, write: int, out: int, thinking: int | None = None
) -> dict[str, Any]:
    """Anthropic's usage: ``input_tokens`` excludes what the cache read or wrote;
    ``output_tokens`` includes the thinking tokens, also given apart when thinking was on."""
    details = {} if thinking is None else {"output_tokens_details": {"thinking_tokens": thinking}}
    return {
        **details,
        "input_tokens": request.prompt_tokens - read - write,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 0 if request.ttl_1h else write,
            "ephemeral_1h_input_tokens": write if request.ttl_1h else 0,
        },
        "output_tokens": out,
        "service_tier": "standard",
    }


def content_blocks(
    choice: Choice,
    tool: dict[str, Any] | None,
    tool_id: str,
    args: dict[str, Any] | None,
    thinking: str | None = None,
) -> list[dict[str, Any]]:
    """The answer's content: its thinking, its text, then the tool call if the model makes one."""
    blocks: list[dict[str, Any]] = []
    if thinking is not None:
        signature = f"sig_{stable_hash(thinking):016x}"
        blocks.append({"type": "thinking", "thinking": thinking, "signature": signature})
    if choice.pieces:
        blocks.append({"type": "text", "text": choice.content})
    if tool is not None:
        blocks.append({"type": "tool_use", "id": tool_id, "name": tool["name"], "input": args})
    return blocks


def stop_reason(choice: Choice, tool: dict[str, Any] | None) -> str:
    """``tool_use``, ``max_tokens`` or ``end_turn``."""
    if tool is not None:
        return "tool_use"
    return "max_tokens" if choice.finish_reason == "length" else "end_turn"


def message_body(
    meta: dict[str, Any], blocks: list[dict[str, Any]], stop: str, usage: dict[str, Any]
) -> dict[str, Any]:
    """A ``message`` object."""
    return {
        **meta, "type": "message", "role": "assistant", "content": blocks,
        "stop_reason": stop, "stop_sequence": None, "usage": usage,
    }  # fmt: skip


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()


def stream_events(
    meta: dict[str, Any],
    choice: Choice,
    blocks: list[dict[str, Any]],
    stop: str,
    usage: dict[str, Any],
    delta_usage: str,
) -> list[bytes]:
    """The SSE events of a streamed answer, in order (the caller paces them).

    ``message_start`` carries the input side of the usage with ``output_tokens`` 1;
    ``message_delta`` carries the final, cumulative usage (all four counts when
    ``delta_usage`` is ``"cumulative"``, as the API sends them; only ``output_tokens`` for
    ``"output_only"``, as older API versions and some compatible servers do).
    """
    start_usage = {**usage, "output_tokens": 1}
    message = {**message_body(meta, [], stop, start_usage), "stop_reason": None}
    events = [_event("message_start", {"message": message}), _event("ping", {})]
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            first: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in choice.pieces]
        elif block["type"] == "thinking":
            first = {"type": "thinking", "thinking": "", "signature": ""}
            text = block["thinking"]
            deltas = [
                {"type": "thinking_delta", "thinking": text[i : i + _THINKING_CHUNK]}
                for i in range(0, len(text), _THINKING_CHUNK)
            ]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            first = {**block, "input": {}}
            text = json.dumps(block["input"])
            half = len(text) // 2
            parts = ("", text[:half], text[half:])
            deltas = [{"type": "input_json_delta", "partial_json": part} for part in parts]
        events.append(_event("content_block_start", {"index": index, "content_block": first}))
        events += [_event("content_block_delta", {"index": index, "delta": d}) for d in deltas]
        events.append(_event("content_block_stop", {"index": index}))
    keys = _DELTA_USAGE_KEYS if delta_usage == "cumulative" else ("output_tokens",)
    final = {k: usage[k] for k in (*keys, "output_tokens_details") if k in usage}
    stop_delta = {"stop_reason": stop, "stop_sequence": None}
    events.append(_event("message_delta", {"delta": stop_delta, "usage": final}))
    events.append(_event("message_stop", {}))
    return events
