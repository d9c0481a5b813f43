"""``POST /v1/messages``: Anthropic's Messages API, for the real ``anthropic`` client.

The same engine decides faults, latency and answer length as for chat completions (one
random stream per model, the same scripted failures), so ``fail_next`` and ``set_faults``
steer both endpoints. What differs is the shape (see ``_anthropic_body``), the key header
(``x-api-key``), explicit prompt caching, and tool calls: with ``tools``, the simulated model
calls a tool (the named one under ``tool_choice``, else the first) when the last turn is the
user's question, and answers in text once it has a ``tool_result``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from llmpulse.simulator import _anthropic_body as body_
from llmpulse.simulator._endpoint import Endpoint
from llmpulse.simulator._engine import Plan, RequestRecord, ScriptedFault, stable_hash
from llmpulse.simulator._responses import make_choice
from llmpulse.simulator._text import generate_words

__all__ = ["AnthropicMessages"]


class AnthropicMessages(Endpoint):
    """The ``/v1/messages`` handler of one engine."""

    def _authorized(self, request: Request) -> bool:
        key = self.engine.config.api_key
        return key is None or key in (
            request.headers.get("x-api-key"),
            request.headers.get("authorization", "").removeprefix("Bearer "),
        )

    def _log(
        self, request: Request, msg: body_.MessagesRequest | None, response: Response,
        fault: str | None, completion_tokens: int = 0,
    ) -> Response:  # fmt: skip
        self.engine.record(
            RequestRecord(
                time=time.time(), path=request.url.path, model=msg.model if msg else None,
                n_messages=len(msg.messages) if msg else 0, stream=msg.stream if msg else False,
                status=response.status_code, fault=fault,
                prompt_tokens=msg.prompt_tokens if msg else 0,
                completion_tokens=completion_tokens, max_tokens=msg.max_tokens if msg else None,
            ),
            getattr(request.state, "generation", None),
        )  # fmt: skip
        return response

    def _auth_error(self) -> Response:
        return body_.anthropic_error(401, "invalid x-api-key")

    def _model_not_found(self, model: str) -> Response:
        return body_.anthropic_error(404, f"model: {model}")

    def _fault_response(
        self, fault: ScriptedFault, model: str, headers: dict[str, str]
    ) -> Response:
        return body_.anthropic_fault(fault, model, headers)

    def _shutting_down(self) -> Response:
        return body_.anthropic_error(529, "The LLM simulator is shutting down.")

    async def handle(self, request: Request) -> Response:
        """Answer one Messages request."""
        admitted = await self._admit(request, body_.parse_messages)
        if isinstance(admitted, Response):
            return admitted
        _, msg, spec = admitted
        plan = self.engine.plan(msg.model, msg.prompt_tokens)
        refused = await self._refused(request, msg, plan)
        if refused is not None:
            return refused
        if msg.prompt_tokens > spec.context_window:
            too_long = (
                f"prompt is too long: {msg.prompt_tokens} tokens > {spec.context_window} maximum"
            )
            return self._log(request, msg, body_.anthropic_error(400, too_long), None)
        if msg.max_tokens > spec.max_output_tokens:
            message = f"max_tokens: {msg.max_tokens} > {spec.max_output_tokens}, which is the maximum allowed number of output tokens for {msg.model}"
            return self._log(request, msg, body_.anthropic_error(400, message), None)
        return await self._answer(request, msg, spec, plan)

    def _cache(self, msg: body_.MessagesRequest) -> tuple[int, int]:
        """(read, written) prompt tokens of the cache breakpoint, if the prefix is cacheable."""
        if msg.prefix_key is None or msg.prefix_tokens < body_.CACHE_MIN_TOKENS:
            return 0, 0
        hit = self.engine.cache_breakpoint(stable_hash(["anthropic", msg.prefix_key]))
        return (msg.prefix_tokens, 0) if hit else (0, msg.prefix_tokens)

    async def _answer(
        self, request: Request, msg: body_.MessagesRequest, spec: Any, plan: Plan
    ) -> Response:
        rng = plan.rng
        tool = body_.wants_tool(msg)
        thinking, thought = None, None
        if msg.thinking_budget is not None:
            # Thinking comes first and is spent first, as on the API: it can leave little room.
            wanted = round(spec.completion_median_tokens * rng.uniform(1.0, 3.0))
            thinking = max(1, min(msg.thinking_budget, wanted, msg.max_tokens - 1))
            thought = "".join(generate_words(rng, thinking, msg.chat_messages))
        room = msg.max_tokens - (thinking or 0)
        choice = make_choice(rng, spec, room, plan.token_blowup, msg.chat_messages, False)
        args, tool_json = None, None
        if tool is not None:
            if msg.tool_choice.get("type") != "auto":
                choice.pieces, choice.completion_tokens = [], 0  # a forced call has no preamble
            else:
                choice.pieces = choice.pieces[: min(len(choice.pieces), 12)]
                choice.completion_tokens = len(choice.pieces) + choice.reasoning_tokens
            args = body_.tool_input(tool, rng, " ".join(choice.pieces[1:2]).strip())
            tool_json = json.dumps(args)
        read, write = self._cache(msg)
        out = body_.output_tokens(choice, tool_json) + (thinking or 0)
        usage = body_.usage_body(msg, read, write, out, thinking)
        tool_id = f"toolu_{rng.getrandbits(96):024x}"
        blocks = body_.content_blocks(choice, tool, tool_id, args, thought)
        stop = body_.stop_reason(choice, tool)
        meta = {"id": f"msg_{plan.rng.getrandbits(96):024x}", "model": msg.model}
        if not await self.stopper.sleep(plan.latency_s):
            return self._log(request, msg, self._shutting_down(), "shutdown")
        headers = {**plan.headers, "request-id": f"req_{plan.rng.getrandbits(64):016x}"}
        response: Response
        if msg.stream:
            events = body_.stream_events(
                meta, choice, blocks, stop, usage, self.engine.config.anthropic_delta_usage
            )
            response = StreamingResponse(
                self._paced(events, plan.chunk_delay_s), media_type="text/event-stream",
                headers=headers,
            )  # fmt: skip
        else:
            response = JSONResponse(body_.message_body(meta, blocks, stop, usage), headers=headers)
        fault = plan.fault.kind if plan.fault else None
        return self._log(request, msg, response, fault, out)

    async def _paced(self, events: list[bytes], delay_s: float) -> AsyncIterator[bytes]:
        for i, event in enumerate(events):
            if i and b"content_block_delta" in event[:40] and not await self.stopper.sleep(delay_s):
                return  # cut off mid-stream, as a dying server would
            yield event
