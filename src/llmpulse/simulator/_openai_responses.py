"""``POST /v1/responses``: OpenAI's Responses API, shaped as the real ``openai`` client reads it.

The request's ``input`` is a string or a list of items (messages whose ``content`` is a string
or ``input_text`` / ``input_image`` parts, ``function_call`` and ``function_call_output``
items); ``instructions`` comes first, as a system message would. The prompt is counted,
cached and answered as a chat completion's is (the same engine plan: faults, latency, answer
length, prompt caching of everything but the last item), so ``fail_next`` and ``set_faults``
steer this endpoint as they steer the others.

The answer is a ``response`` object: ``output`` holds a ``reasoning`` item for reasoning
models, then a ``message`` with one ``output_text`` part, or a ``function_call`` when the
model calls a function tool (the ``tool_choice`` one, else the first tool when the last item
is the user's, never after a ``function_call_output``: the same rule as ``/v1/messages``).
Usage is in the Responses API's terms: ``input_tokens`` (cached ones included, also given in
``input_tokens_details.cached_tokens``), ``output_tokens`` (reasoning included, also given in
``output_tokens_details.reasoning_tokens``). An answer cut by ``max_output_tokens`` is
``status: "incomplete"``. Streamed, the same answer is a series of typed SSE events numbered by
``sequence_number``: ``response.created`` ... ``response.completed`` (or
``response.incomplete``), the last one carrying the full response with its usage; no
``[DONE]``, as on the real API.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from llmpulse.simulator._anthropic_body import tool_input
from llmpulse.simulator._config import ModelSpec
from llmpulse.simulator._endpoint import Stopper
from llmpulse.simulator._engine import Plan, stable_hash
from llmpulse.simulator._responses import bad_request, error_response, make_choice
from llmpulse.simulator._text import estimate_prompt_tokens

__all__ = [
    "ResponsesAnswer", "ResponsesRequest", "answer", "cache_prefix", "limit_error",
    "parse_responses", "sse", "stream_events",
]  # fmt: skip

_MIN_OUTPUT_TOKENS = 16  # the real API refuses a smaller max_output_tokens
_CHARS_PER_TOKEN = 4
_TOOL_CALL_TOKENS = 5  # framing of a function call, beyond its arguments' JSON
_ROLES = ("user", "assistant", "system", "developer")


@dataclass(slots=True)
class ResponsesRequest:
    """The parts of a Responses request the simulator acts on."""

    model: str
    items: list[Any]  # the input items, a string input as one user message
    messages: list[dict[str, Any]]  # the same as chat messages (instructions first): counted
    instructions: str | None
    max_tokens: int | None  # max_output_tokens
    stream: bool
    tools: list[dict[str, Any]]  # function tools (others are counted, never called)
    tool_choice: Any
    schema: dict[str, Any] | None  # text.format json_schema: the answer fits it
    json_mode: bool
    echo: dict[str, Any]  # request fields the response repeats
    prompt_tokens: int = 0


def _missing(name: str) -> Response:
    return bad_request(
        f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
    )


def _as_message(item: Any, index: int) -> dict[str, Any] | Response:
    """One input item as a chat message (for counting and the answer's topic), or a 400."""
    if not isinstance(item, dict):
        return bad_request(
            f"Invalid type for 'input[{index}]': expected an object.", param=f"input[{index}]",
            code="invalid_type",
        )  # fmt: skip
    kind = item.get("type", "message")
    if kind == "message" or (kind is None and "role" in item):
        if item.get("role") not in _ROLES:
            return bad_request(
                f"Invalid value: '{item.get('role')}'. Supported values are: 'user', "
                "'assistant', 'system', and 'developer'.",
                param=f"input[{index}].role", code="invalid_value",
            )  # fmt: skip
        return {"role": item["role"], "content": item.get("content")}
    if kind == "function_call":
        call = {"name": item.get("name"), "arguments": item.get("arguments")}
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    if kind == "function_call_output":
        return {"role": "tool", "content": item.get("output")}
    return {"role": "assistant", "content": item}  # reasoning and other items: counted as JSON


def _text_format(body: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """The JSON schema the answer must fit (``text.format`` json_schema), and JSON mode."""
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict):
        return None, False
    if fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        return fmt["schema"], True
    return None, fmt.get("type") == "json_object"


def parse_responses(body: Any) -> ResponsesRequest | Response:
    """Validate a Responses request body the way the real API does, or answer 400."""
    if not isinstance(body, dict):
        return bad_request("We could not parse the JSON body of your request. Send a JSON object.")
    model, raw = body.get("model"), body.get("input")
    if not isinstance(model, str) or not model:
        return _missing("model")
    if isinstance(raw, str):
        items: list[Any] = [{"role": "user", "content": raw}]
    elif isinstance(raw, list) and raw:
        items = raw
    else:
        return _missing("input")
    instructions = body.get("instructions")
    instructions = instructions if isinstance(instructions, str) and instructions else None
    messages = [{"role": "system", "content": instructions}] if instructions else []
    for index, item in enumerate(items):
        message = _as_message(item, index)
        if isinstance(message, Response):
            return message
        messages.append(message)
    limit = body.get("max_output_tokens")
    if limit is not None and (type(limit) is not int or limit < _MIN_OUTPUT_TOKENS):
        return bad_request(
            f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
            f"{_MIN_OUTPUT_TOKENS}, but got {limit!r} instead.",
            param="max_output_tokens", code="integer_below_min_value",
        )  # fmt: skip
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        return bad_request("Invalid type for 'tools': expected an array of objects.", "tools")
    functions = [t for t in tools if t.get("type") == "function" and isinstance(t.get("name"), str)]
    schema, json_mode = _text_format(body)
    echo = {key: body.get(key) for key in ("metadata", "previous_response_id", "user", "text")}
    echo.update(temperature=body.get("temperature", 1.0), top_p=body.get("top_p", 1.0),
                parallel_tool_calls=body.get("parallel_tool_calls", True), tools=tools,
                store=body.get("store", True), reasoning=body.get("reasoning"))  # fmt: skip
    request = ResponsesRequest(
        model=model, items=items, messages=messages, instructions=instructions,
        max_tokens=limit, stream=body.get("stream") is True, tools=functions,
        tool_choice=body.get("tool_choice", "auto"), schema=schema, json_mode=json_mode,
        echo=echo,
    )  # fmt: skip
    request.prompt_tokens = estimate_prompt_tokens(messages, tools or None)
    return request


def limit_error(req: ResponsesRequest, spec: ModelSpec) -> Response | None:
    """The 400 the real API gives for a request beyond the model's limits, if any."""
    if req.prompt_tokens > spec.context_window:
        message = (
            f"Your input exceeds the context window of this model ({spec.context_window} tokens): "
            f"it is {req.prompt_tokens} tokens. Please adjust your input and try again."
        )
        return error_response(
            400, message, "invalid_request_error", param="input", code="context_length_exceeded"
        )
    if req.max_tokens is not None and req.max_tokens > spec.max_output_tokens:
        message = (
            f"max_output_tokens is too large: {req.max_tokens}. This model supports at most "
            f"{spec.max_output_tokens} output tokens, whereas you provided {req.max_tokens}."
        )
        return bad_request(message, param="max_output_tokens", code="invalid_value")
    return None


def _wanted_tool(req: ResponsesRequest) -> dict[str, Any] | None:
    """The function the simulated model calls, if any (the rule of ``/v1/messages``)."""
    choice = req.tool_choice
    if not req.tools or choice == "none":
        return None
    if isinstance(choice, dict) and choice.get("type") == "function":
        return next((t for t in req.tools if t["name"] == choice.get("name")), req.tools[0])
    if choice == "required":
        return req.tools[0]
    return req.tools[0] if req.messages[-1].get("role") == "user" else None


def _tokens(text: str) -> int:
    return math.ceil(len(text) / _CHARS_PER_TOKEN) if text else 0


@dataclass(slots=True)
class ResponsesAnswer:
    """One answer: the response object (complete, with usage) and its text pieces."""

    body: dict[str, Any]
    pieces: list[str]
    output_tokens: int


def answer(req: ResponsesRequest, spec: ModelSpec, plan: Plan) -> ResponsesAnswer:
    """Draw the answer to ``req``: its output items, status and usage."""
    rng = plan.rng
    json_mode = req.json_mode and req.schema is None  # a schema's answer is made below
    choice = make_choice(rng, spec, req.max_tokens, plan.token_blowup, req.messages, json_mode)
    tool = _wanted_tool(req)
    pieces, out = choice.pieces, choice.completion_tokens
    output: list[dict[str, Any]] = []
    topic = " ".join(choice.pieces[1:2]).strip()  # the question's words, as /v1/messages does
    if req.schema is not None and tool is None and choice.finish_reason != "length":
        text = json.dumps(tool_input({"input_schema": req.schema}, rng, topic))
        pieces, out = [text], _tokens(text) + choice.reasoning_tokens
    if choice.reasoning_tokens:
        output.append({"id": f"rs_{rng.getrandbits(96):024x}", "type": "reasoning", "summary": []})
    if tool is not None:
        args = json.dumps(tool_input({"input_schema": tool.get("parameters")}, rng, topic))
        pieces, out = [], choice.reasoning_tokens + _tokens(args) + _TOOL_CALL_TOKENS
        output.append({
            "id": f"fc_{rng.getrandbits(96):024x}", "type": "function_call", "status": "completed",
            "arguments": args, "call_id": f"call_{rng.getrandbits(96):024x}", "name": tool["name"],
        })  # fmt: skip
    incomplete = tool is None and choice.finish_reason == "length"
    if pieces:
        part = {"type": "output_text", "text": "".join(pieces), "annotations": [], "logprobs": []}
        output.append({
            "id": f"msg_{rng.getrandbits(96):024x}", "type": "message", "role": "assistant",
            "status": "incomplete" if incomplete else "completed", "content": [part],
        })  # fmt: skip
    usage = {
        "input_tokens": req.prompt_tokens,
        "input_tokens_details": {"cached_tokens": plan.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": choice.reasoning_tokens},
        "total_tokens": req.prompt_tokens + out,
    }
    body = {
        "id": f"resp_{plan.rng.getrandbits(128):032x}", "object": "response",
        "created_at": int(time.time()), "status": "incomplete" if incomplete else "completed",
        "background": False, "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": req.instructions, "max_output_tokens": req.max_tokens,
        "max_tool_calls": None, "model": req.model, "output": output,
        "service_tier": "default", "tool_choice": req.tool_choice, "truncation": "disabled",
        **req.echo, "usage": usage,
    }  # fmt: skip
    body["metadata"] = body["metadata"] or {}
    body["text"] = body["text"] or {"format": {"type": "text"}, "verbosity": "medium"}
    body["reasoning"] = body["reasoning"] or {"effort": "medium" if spec.reasoning else None,
                                              "summary": None}  # fmt: skip
    return ResponsesAnswer(body, pieces, out)


def _item_events(index: int, item: dict[str, Any], pieces: list[str]) -> list[dict[str, Any]]:
    """The events that stream one output item, from ``output_item.added`` to ``.done``."""
    where = {"output_index": index}
    if item["type"] == "message":
        part = item["content"][0]
        at = {"item_id": item["id"], **where, "content_index": 0}
        opened = {**item, "status": "in_progress", "content": []}
        return [
            {"type": "response.output_item.added", **where, "item": opened},
            {"type": "response.content_part.added", **at, "part": {**part, "text": ""}},
            *({"type": "response.output_text.delta", **at, "delta": p, "logprobs": []}
              for p in pieces),
            {"type": "response.output_text.done", **at, "text": part["text"], "logprobs": []},
            {"type": "response.content_part.done", **at, "part": part},
            {"type": "response.output_item.done", **where, "item": item},
        ]  # fmt: skip
    if item["type"] == "function_call":
        args, at = item["arguments"], {"item_id": item["id"], **where}
        half = len(args) // 2
        return [
            {"type": "response.output_item.added", **where,
             "item": {**item, "status": "in_progress", "arguments": ""}},
            {"type": "response.function_call_arguments.delta", **at, "delta": args[:half]},
            {"type": "response.function_call_arguments.delta", **at, "delta": args[half:]},
            {"type": "response.function_call_arguments.done", **at, "arguments": args},
            {"type": "response.output_item.done", **where, "item": item},
        ]  # fmt: skip
    return [
        {"type": "response.output_item.added", **where, "item": item},
        {"type": "response.output_item.done", **where, "item": item},
    ]


def stream_events(ans: ResponsesAnswer) -> list[dict[str, Any]]:
    """The SSE events of a streamed answer in order, numbered by ``sequence_number``."""
    body = ans.body
    started = {**body, "status": "in_progress", "output": [], "usage": None,
               "incomplete_details": None}  # fmt: skip
    events = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
    ]
    for index, item in enumerate(body["output"]):
        events += _item_events(index, item, ans.pieces)
    final = "response.incomplete" if body["status"] == "incomplete" else "response.completed"
    events.append({"type": final, "response": body})
    return [{**event, "sequence_number": n} for n, event in enumerate(events)]


async def sse(
    events: list[dict[str, Any]], chunk_delay_s: float, stopper: Stopper
) -> AsyncIterator[bytes]:
    """``events`` as server-sent events, a delta only after ``chunk_delay_s``; cut off when the
    simulator stops, as a dying server would."""
    for event in events:
        if event["type"].endswith(".delta") and not await stopper.sleep(chunk_delay_s):
            return
        yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def cache_prefix(req: ResponsesRequest) -> tuple[int | None, int]:
    """The cacheable prefix (everything but the last item, instructions first): its key and
    its tokens, as chat completions count it."""
    prefix = req.messages[:-1]
    if not prefix:
        return None, 0
    return stable_hash(prefix), estimate_prompt_tokens(prefix)
