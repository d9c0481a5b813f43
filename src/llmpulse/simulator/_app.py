"""The Starlette app: OpenAI's chat completions, responses (``_openai_responses``), embeddings
(``_embeddings``) and models endpoints, Anthropic's messages (``_anthropic``), plus /_sim admin
routes."""

from __future__ import annotations

import json
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from llmpulse.simulator import _openai_responses
from llmpulse.simulator._admin import admin_routes
from llmpulse.simulator._anthropic import AnthropicMessages
from llmpulse.simulator._config import ModelSpec
from llmpulse.simulator._embeddings import (
    EmbeddingsRequest,
    embeddings_body,
    limit_error,
    parse_embeddings,
)
from llmpulse.simulator._endpoint import Endpoint, Stopper
from llmpulse.simulator._engine import Engine, Plan, RequestRecord, ScriptedFault, stable_hash
from llmpulse.simulator._openai_responses import ResponsesRequest, parse_responses
from llmpulse.simulator._responses import (
    Choice,
    auth_error,
    bad_request,
    completion_body,
    context_error,
    error_response,
    fault_response,
    make_choice,
    model_not_found,
    usage_body,
)
from llmpulse.simulator._text import estimate_prompt_tokens

__all__ = ["build_app"]

_MODEL_CREATED = 1_700_000_000


@dataclass(slots=True)
class ChatRequest:
    """The parts of a chat completion request the simulator acts on."""

    model: str
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    max_tokens: int | None
    n: int
    json_mode: bool
    seed: int | None
    prompt_tokens: int = 0


def _positive_int(
    body: dict[str, Any], name: str, upper: int | None = None
) -> int | Response | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return bad_request(
            f"Invalid type for '{name}': expected an integer, but got {type(value).__name__} instead.",
            param=name,
            code="invalid_type",
        )
    if value < 1 or (upper is not None and value > upper):
        limit = f">= 1 and <= {upper}" if upper else ">= 1"
        return bad_request(
            f"Invalid '{name}': expected a value {limit}, but got {value} instead.",
            param=name,
            code="invalid_value",
        )
    return value


def parse_chat(body: Any) -> ChatRequest | Response:
    """Validate a chat request body the way the real API does, or answer 400."""
    if not isinstance(body, dict):
        return bad_request("We could not parse the JSON body of your request. Send a JSON object.")
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        return bad_request(
            "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )
    if not isinstance(messages, list) or not messages:
        return bad_request(
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return bad_request(
                f"Invalid value for 'messages[{i}]': expected an object with a 'role'.",
                param=f"messages[{i}]",
                code="invalid_value",
            )
    limits = {}
    for name, upper in (("max_completion_tokens", None), ("max_tokens", None), ("n", 128)):
        value = _positive_int(body, name, upper)
        if isinstance(value, Response):
            return value
        limits[name] = value
    response_format = body.get("response_format") or {}
    stream_options = body.get("stream_options") or {}
    return ChatRequest(
        model=model,
        messages=messages,
        stream=bool(body.get("stream")),
        include_usage=bool(
            isinstance(stream_options, dict) and stream_options.get("include_usage")
        ),
        max_tokens=limits["max_completion_tokens"] or limits["max_tokens"],
        n=limits["n"] or 1,
        json_mode=isinstance(response_format, dict)
        and response_format.get("type") in ("json_object", "json_schema"),
        seed=body.get("seed") if isinstance(body.get("seed"), int) else None,
    )


def _inputs(req: ChatRequest | EmbeddingsRequest | ResponsesRequest | None) -> Sequence[Any]:
    """What a request log's ``n_messages`` counts: chat messages, embeddings inputs, or
    Responses input items."""
    if isinstance(req, ChatRequest):
        return req.messages
    if isinstance(req, EmbeddingsRequest):
        return req.inputs
    return req.items if req is not None else ()


class _Handlers(Endpoint):
    """The OpenAI-compatible endpoints: chat completions, responses, embeddings and models."""

    def _authorized(self, request: Request) -> bool:
        key = self.engine.config.api_key
        return key is None or request.headers.get("authorization", "") == f"Bearer {key}"

    def _log(
        self,
        request: Request,
        req: ChatRequest | EmbeddingsRequest | ResponsesRequest | None,
        response: Response,
        fault: str | None,
        completion_tokens: int = 0,
    ) -> Response:
        chat = req if isinstance(req, (ChatRequest, ResponsesRequest)) else None
        self.engine.record(
            RequestRecord(
                time=time.time(),
                path=request.url.path,
                model=req.model if req else None,
                n_messages=len(_inputs(req)),
                stream=chat.stream if chat else False,
                status=response.status_code,
                fault=fault,
                prompt_tokens=req.prompt_tokens if req else 0,
                completion_tokens=completion_tokens,
                max_tokens=chat.max_tokens if chat else None,
            ),
            getattr(request.state, "generation", None),
        )
        return response

    def _auth_error(self) -> Response:
        return auth_error()

    def _model_not_found(self, model: str) -> Response:
        return model_not_found(model)

    def _fault_response(
        self, fault: ScriptedFault, model: str, headers: dict[str, str]
    ) -> Response:
        return fault_response(fault, model, headers)

    def _shutting_down(self) -> Response:
        return error_response(503, "The LLM simulator is shutting down.", "server_error")

    @staticmethod
    def _headers(plan: Plan) -> dict[str, str]:
        return {
            **plan.headers,
            "x-request-id": f"req_{plan.rng.getrandbits(64):016x}",
            "openai-processing-ms": str(round(plan.latency_s * 1000)),
        }

    async def chat(self, request: Request) -> Response:
        admitted = await self._admit(request, parse_chat)
        if isinstance(admitted, Response):
            return admitted
        body, chat, spec = admitted
        chat.prompt_tokens = estimate_prompt_tokens(chat.messages, body.get("tools"))
        prefix = chat.messages[:-1]
        plan = self.engine.plan(
            chat.model,
            chat.prompt_tokens,
            stable_hash(prefix) if prefix else None,
            estimate_prompt_tokens(prefix) if prefix else 0,
        )
        refused = await self._refused(request, chat, plan)
        if refused is not None:
            return refused
        return await self._answer(request, chat, spec, plan)

    async def embeddings(self, request: Request) -> Response:
        """``POST /v1/embeddings``: the same faults, latency and request log as chat."""
        admitted = await self._admit(request, parse_embeddings)
        if isinstance(admitted, Response):
            return admitted
        _, req, spec = admitted
        plan = self.engine.plan(req.model, req.prompt_tokens)
        refused = await self._refused(request, req, plan)
        if refused is not None:
            return refused
        error = limit_error(req, spec)
        if error is not None:
            return self._log(request, req, error, None)
        answer = embeddings_body(req, spec.embedding_dimensions)
        if not await self.stopper.sleep(plan.latency_s):
            return self._log(request, req, self._shutting_down(), "shutdown")
        response = JSONResponse(answer, headers=self._headers(plan))
        return self._log(request, req, response, plan.fault.kind if plan.fault else None)

    async def responses(self, request: Request) -> Response:
        """``POST /v1/responses``: the same faults, latency, caching and request log as chat."""
        admitted = await self._admit(request, parse_responses)
        if isinstance(admitted, Response):
            return admitted
        _, req, spec = admitted
        plan = self.engine.plan(req.model, req.prompt_tokens, *_openai_responses.cache_prefix(req))
        refused = await self._refused(request, req, plan)
        if refused is not None:
            return refused
        error = _openai_responses.limit_error(req, spec)
        if error is not None:
            return self._log(request, req, error, None)
        answer = _openai_responses.answer(req, spec, plan)
        if not await self.stopper.sleep(plan.latency_s):
            return self._log(request, req, self._shutting_down(), "shutdown")
        headers = self._headers(plan)
        response: Response
        if req.stream:
            events = _openai_responses.sse(
                _openai_responses.stream_events(answer), plan.chunk_delay_s, self.stopper
            )
            response = StreamingResponse(events, media_type="text/event-stream", headers=headers)
        else:
            response = JSONResponse(answer.body, headers=headers)
        fault = plan.fault.kind if plan.fault else None
        return self._log(request, req, response, fault, answer.output_tokens)

    def _limit_error(self, chat: ChatRequest, spec: ModelSpec) -> Response | None:
        """The 400 the real API gives for a request beyond the model's limits, if any."""
        if chat.prompt_tokens > spec.context_window:
            return context_error(spec.context_window, chat.prompt_tokens)
        if chat.max_tokens is not None and chat.max_tokens > spec.max_output_tokens:
            message = (
                f"max_tokens is too large: {chat.max_tokens}. This model supports at most "
                f"{spec.max_output_tokens} completion tokens, whereas you provided {chat.max_tokens}."
            )
            return bad_request(message, param="max_tokens", code="invalid_value")
        return None

    async def _answer(
        self, request: Request, chat: ChatRequest, spec: ModelSpec, plan: Plan
    ) -> Response:
        limit_error = self._limit_error(chat, spec)
        if limit_error is not None:
            return self._log(request, chat, limit_error, None)
        rng = plan.rng
        if chat.seed is not None:
            # The same seed and messages give the same answer, as OpenAI documents for `seed`.
            rng = random.Random(stable_hash([chat.seed, chat.model, chat.messages]))
        choices = [
            make_choice(
                rng, spec, chat.max_tokens, plan.token_blowup, chat.messages, chat.json_mode
            )
            for _ in range(chat.n)
        ]
        usage = usage_body(chat.prompt_tokens, plan.cached_tokens, choices)
        meta = {
            "id": f"chatcmpl-{plan.rng.getrandbits(96):024x}",
            "created": int(time.time()),
            "model": chat.model,
            "service_tier": "default",
            "system_fingerprint": f"fp_sim{stable_hash(chat.model) % 10**6:06d}",
        }
        if not await self.stopper.sleep(plan.latency_s):
            return self._log(request, chat, self._shutting_down(), "shutdown")
        headers = self._headers(plan)
        response: Response
        if chat.stream:
            stream_usage = usage if chat.include_usage else None
            events = _sse(meta, choices, stream_usage, plan.chunk_delay_s, self.stopper)
            response = StreamingResponse(events, media_type="text/event-stream", headers=headers)
        else:
            response = JSONResponse(completion_body(meta, choices, usage), headers=headers)
        fault = plan.fault.kind if plan.fault else None
        return self._log(request, chat, response, fault, usage["completion_tokens"])

    async def models(self, request: Request) -> Response:
        if not self._authorized(request):
            return auth_error()
        return JSONResponse(
            {"object": "list", "data": [_model_object(m) for m in self.engine.config.models]}
        )

    async def model(self, request: Request) -> Response:
        if not self._authorized(request):
            return auth_error()
        name = request.path_params["model"]
        if self.engine.spec(name) is None:
            return model_not_found(name)
        return JSONResponse(_model_object(name))


def _model_object(name: str) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": _MODEL_CREATED,
        "owned_by": "llmpulse-simulator",
    }


def _chunk(
    meta: dict[str, Any],
    choices: list[dict[str, Any]],
    with_usage: bool,
    usage: dict[str, Any] | None = None,
) -> bytes:
    body = {**meta, "object": "chat.completion.chunk", "choices": choices}
    if (
        with_usage
    ):  # the real API sends "usage": null on every chunk but the last when asked for usage
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n".encode()


async def _sse(
    meta: dict[str, Any],
    choices: list[Choice],
    usage: dict[str, Any] | None,
    chunk_delay_s: float,
    stopper: Stopper,
) -> AsyncIterator[bytes]:
    with_usage = usage is not None
    for index, choice in enumerate(choices):
        first = {"role": "assistant", "content": "", "refusal": None}
        yield _chunk(
            meta,
            [{"index": index, "delta": first, "logprobs": None, "finish_reason": None}],
            with_usage,
        )
        for piece in choice.pieces:
            if not await stopper.sleep(chunk_delay_s):
                return  # cut off mid-stream, as a dying server would
            delta = {
                "index": index,
                "delta": {"content": piece},
                "logprobs": None,
                "finish_reason": None,
            }
            yield _chunk(meta, [delta], with_usage)
        last = {
            "index": index,
            "delta": {},
            "logprobs": None,
            "finish_reason": choice.finish_reason,
        }
        yield _chunk(meta, [last], with_usage)
    if usage is not None:
        yield _chunk(meta, [], True, usage)
    yield b"data: [DONE]\n\n"


def build_app(engine: Engine, stopper: Stopper | None = None) -> Starlette:
    """The ASGI app serving one engine's state."""
    handlers = _Handlers(engine, stopper or Stopper())
    routes = [
        Route("/v1/chat/completions", handlers.chat, methods=["POST"]),
        Route("/v1/responses", handlers.responses, methods=["POST"]),
        Route("/v1/embeddings", handlers.embeddings, methods=["POST"]),
        Route("/v1/messages", AnthropicMessages(engine, handlers.stopper).handle, methods=["POST"]),
        Route("/v1/models", handlers.models, methods=["GET"]),
        Route("/v1/models/{model:path}", handlers.model, methods=["GET"]),
        *admin_routes(engine),
    ]
    return Starlette(routes=routes)
