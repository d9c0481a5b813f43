"""Record every Anthropic message (sync, async, streamed, tool use) as an llm span.

``instrument_anthropic()`` patches ``Messages.create`` and ``Messages.stream`` (and their async
twins) of the installed ``anthropic`` package. The wrapper records model, tokens (cache reads
and writes included, in llmpulse's billing terms: Anthropic's ``input_tokens`` is the uncached
part, so the cache is added back, by the same ``from_anthropic_usage`` the LangChain handler
uses), latency, errors by exception class, the prompt (system included) and the answer (text
and tool calls), and ``gen_ai.*`` request attributes. It is built as the openai one is: the
user's call, arguments, result and exceptions pass through untouched, a failure inside the
recording is swallowed, and streams are observed in place (``create(stream=True)`` and the
``messages.stream()`` helper alike).

``client.beta.messages.create`` / ``.stream`` (where teams reach prompt-caching, tool-use and
other betas) are recorded the same way, once per call, with ``llmpulse.anthropic.beta`` set and
the betas asked for in ``llmpulse.anthropic.betas``.

Streamed usage is *cumulative*: ``message_start`` carries the input side (output near 1) and
each ``message_delta`` the totals so far. The counts are assigned as they arrive, never summed
(adding them doubles input and cache counts, a bug peer tracers shipped), and a delta without
``input_tokens`` keeps what ``message_start`` said.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from llmpulse.schema import USAGE_ESTIMATED_ATTRIBUTE
from llmpulse.sdk import _state
from llmpulse.sdk._context import current_span
from llmpulse.sdk.instrumentation._anthropic_stream import wrap_stream
from llmpulse.sdk.instrumentation._langchain_usage import from_anthropic_usage
from llmpulse.sdk.instrumentation._openai_stream import observe_async_stream, observe_stream
from llmpulse.sdk.instrumentation._shared import (
    MARK,
    ClientCall,
    add_request_params,
    chars,
    error_attributes,
    text_or_none,
    wrap_acreate,
    wrap_create,
)

__all__ = ["instrument_anthropic", "uninstrument_anthropic"]

log = logging.getLogger("llmpulse.sdk")

# A beta call's marks: it went through ``client.beta.messages``, and the betas it asked for.
BETA_ATTRIBUTE = "llmpulse.anthropic.beta"
BETAS_ATTRIBUTE = "llmpulse.anthropic.betas"

_lock = threading.Lock()
_originals: list[tuple[type, str, Any]] = []  # (class, method, original)
_CHARS_PER_TOKEN = 4  # as the openai instrumentation estimates a stream cut before its usage
_ESTIMATE_METHOD = "chars/4"
# Usage fields, all cumulative in a stream: a later value replaces an earlier one.
_USAGE_FIELDS = (
    "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
)  # fmt: skip

# request keyword -> gen_ai attribute
_REQUEST_ATTRIBUTES = {
    "temperature": "gen_ai.request.temperature",
    "max_tokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "service_tier": "gen_ai.request.service_tier",
}


def instrument_anthropic() -> bool:
    """Patch the anthropic client so messages (``beta.messages`` too) are recorded; ``False`` if
    anthropic is absent."""
    try:
        from anthropic.resources.messages import Messages
    except ImportError:
        log.debug("anthropic is not installed: nothing to instrument")
        return False
    with _lock:
        if getattr(Messages.create, MARK, False):
            return True
        for sync, async_, call in _resources():
            _patch(sync, "create", wrap_create, call.begin, observe_stream)
            _patch(async_, "create", wrap_acreate, call.begin, observe_async_stream)
            _patch(sync, "stream", wrap_stream, call.begin, False)
            _patch(async_, "stream", wrap_stream, call.begin, True)
    return True


def uninstrument_anthropic() -> None:
    """Undo ``instrument_anthropic`` (does nothing if it was not applied)."""
    with _lock:
        while _originals:
            cls, name, original = _originals.pop()
            setattr(cls, name, original)


def _resources() -> list[tuple[type, type, type[_MessageCall]]]:
    """The (sync, async) message resources and how each records a call: ``messages``, and
    ``beta.messages`` where the installed anthropic has it. Neither calls the other (checked in
    anthropic 2.16: each posts to ``/v1/messages`` itself; the beta tool runner and threads call
    ``beta.messages.create``), so each call is recorded once, by its own wrapper."""
    from anthropic.resources.messages import AsyncMessages, Messages

    resources: list[tuple[type, type, type[_MessageCall]]] = [
        (Messages, AsyncMessages, _MessageCall)
    ]
    try:
        from anthropic.resources.beta.messages import AsyncMessages as AsyncBeta
        from anthropic.resources.beta.messages import Messages as Beta
    except ImportError:  # an anthropic without the beta namespace
        return resources
    resources.append((Beta, AsyncBeta, _BetaMessageCall))
    return resources


def _patch(cls: type, name: str, wrap: Callable[..., Any], *how: Any) -> None:
    """``cls.name = wrap(cls.name, *how)``, noted for ``uninstrument_anthropic``; a method already
    wrapped (one a resource inherits from another) stays as it is, so no call is recorded twice."""
    original = getattr(cls, name, None)
    if original is None or getattr(original, MARK, False):
        return
    _originals.append((cls, name, original))
    setattr(cls, name, wrap(original, *how))


class _MessageCall(ClientCall):
    """One message being recorded; every method swallows its own failures."""

    library = "anthropic"

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ClientCall.__init__(self, args, kwargs)
        messages = kwargs.get("messages")
        messages = list(messages) if isinstance(messages, (list, tuple)) else messages
        system = kwargs.get("system")
        if system and isinstance(messages, list):
            messages.insert(0, {"role": "system", "content": system})
        self.messages = messages
        metadata = kwargs.get("metadata")
        self.user_id = text_or_none(metadata.get("user_id")) if isinstance(metadata, dict) else None
        resource = args[0] if args else None
        self.attributes = _request_attributes(resource, kwargs, self.model, self.stream)
        # streaming state
        self.usage: dict[str, Any] | None = None
        self.final_usage = False  # a message_delta carried the final counts
        self.output_chars = 0
        self.tools: list[dict[str, Any]] = []

    def finish(self, message: Any) -> None:
        """A non-streamed message arrived."""
        try:
            end = time.perf_counter()
            self._response_attributes(message)
            usage = getattr(message, "usage", None)
            self._record(end, usage=None if usage is None else _usage_map(usage),
                         output=_output(getattr(message, "content", None)))  # fmt: skip
        except Exception:
            log.debug("anthropic instrumentation: cannot record response", exc_info=True)

    def fail(self, exc: BaseException) -> None:
        """The request (or the stream) raised ``exc``."""
        try:
            self.attributes.update(error_attributes(exc))
            self._record(time.perf_counter(), usage=self.usage, output=self._stream_output(),
                         error=(type(exc).__name__, str(exc)))  # fmt: skip
        except Exception:
            log.debug("anthropic instrumentation: cannot record error", exc_info=True)

    # -- streams -----------------------------------------------------------------------------
    def on_chunk(self, event: Any) -> bool:
        """One raw stream event went past (it always reaches the user: ``False``)."""
        try:
            self.chunks += 1
            kind = getattr(event, "type", None)
            if kind == "content_block_delta":
                self._on_delta(event.delta)
            elif kind == "content_block_start":
                block = event.content_block
                if getattr(block, "type", None) == "tool_use":
                    self._first_token()
                    self.tools.append({"type": "tool_use", "id": block.id, "name": block.name})
            elif kind == "message_delta":
                self._take_usage(getattr(event, "usage", None), final=True)
                reason = getattr(event.delta, "stop_reason", None)
                if reason:
                    self.attributes["gen_ai.response.finish_reasons"] = [reason]
            elif kind == "message_start":
                self._response_attributes(event.message)
                self._take_usage(getattr(event.message, "usage", None), final=False)
        except Exception:
            log.debug("anthropic instrumentation: cannot read event", exc_info=True)
        return False

    def _on_delta(self, delta: Any) -> None:
        kind = getattr(delta, "type", None)
        if kind == "text_delta":
            self._first_token()
            self.text.add(delta.text)
            self.output_chars += len(delta.text)
        elif kind == "input_json_delta":
            self._first_token()
            self.output_chars += len(delta.partial_json)
        elif kind == "thinking_delta":  # output too (billed as such), but not the answer text
            self._first_token()
            self.output_chars += len(delta.thinking)

    def _first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    def _take_usage(self, usage: Any, *, final: bool) -> None:
        """Cumulative counts: each present value replaces the earlier one (never added)."""
        if usage is None:
            return
        current = self.usage if self.usage is not None else {}
        current.update(_usage_map(usage))
        self.usage = current
        self.final_usage = self.final_usage or final

    def end_stream(self, *, consumed: bool) -> None:
        """The stream ended: exhausted (``consumed``), or closed / dropped early."""
        try:
            if not consumed:
                self.attributes["llmpulse.stream.closed_early"] = True
            self.attributes["llmpulse.stream.chunks"] = self.chunks
            self._record(time.perf_counter(), usage=self.usage, output=self._stream_output())
        except Exception:
            log.debug("anthropic instrumentation: cannot record stream", exc_info=True)

    def _stream_output(self) -> Any:
        text = self.text.value()
        if not self.tools:
            return text
        return ([{"type": "text", "text": str(text)}] if text else []) + self.tools

    # -- recording ---------------------------------------------------------------------------
    def _tokens(self, usage: dict[str, Any] | None, output: Any) -> dict[str, Any]:
        tokens = from_anthropic_usage(usage) if usage else {}
        if self.stream and not self.final_usage and self.output_chars:
            # Cut before message_delta: message_start said ~1 output token; count the text.
            tokens["output_tokens"] = -(-self.output_chars // _CHARS_PER_TOKEN)
            self.attributes[USAGE_ESTIMATED_ATTRIBUTE] = _ESTIMATE_METHOD
        elif not tokens and (chars_in := chars(self.messages)):
            self.attributes[USAGE_ESTIMATED_ATTRIBUTE] = _ESTIMATE_METHOD
            tokens = {
                "input_tokens": -(-chars_in // _CHARS_PER_TOKEN),
                "output_tokens": -(-chars(output) // _CHARS_PER_TOKEN),
            }
        return tokens

    def _response_attributes(self, message: Any) -> None:
        if getattr(message, "model", None):
            self.attributes["gen_ai.response.model"] = message.model
        if getattr(message, "id", None):
            self.attributes["gen_ai.response.id"] = message.id
        if getattr(message, "stop_reason", None):
            self.attributes["gen_ai.response.finish_reasons"] = [message.stop_reason]

    def _record(
        self, end: float, *, usage: dict[str, Any] | None, output: Any,
        error: tuple[str, str] | None = None,
    ) -> None:  # fmt: skip
        if self.done:
            return
        self.done = True
        tokens = self._tokens(usage, output) if error is None or usage else {}
        ttft_ms = None
        if self.first_token_at is not None:
            ttft_ms = (self.first_token_at - self.t0) * 1000.0
            generating = end - self.first_token_at
            produced = tokens.get("output_tokens")
            if produced and generating > 0:
                self.attributes["llmpulse.tokens_per_second"] = round(produced / generating, 3)
        token = current_span.set(self.parent)  # parent to where the call started
        try:
            _state.record_llm_call(
                self.model,
                input_tokens=tokens.get("input_tokens"),
                output_tokens=tokens.get("output_tokens"),
                cache_read_tokens=tokens.get("cache_read_tokens"),
                cache_write_tokens=tokens.get("cache_write_tokens"),
                reasoning_tokens=tokens.get("reasoning_tokens"),
                latency_ms=(end - self.t0) * 1000.0,
                start_time=self.start,
                end_time=self.start + (end - self.t0),
                provider="anthropic",
                ttft_ms=ttft_ms,
                status="error" if error else "ok",
                error_type=error[0] if error else None,
                error_message=error[1] if error else None,
                input=self.messages,
                output=output,
                session_id=self.defaults.get("session_id"),
                user_id=self.user_id or self.defaults.get("user_id"),
                prompt_version=self.defaults.get("prompt_version"),
                name=f"chat {self.model}" if self.model else "chat",
                attributes={**self.defaults.get("attributes", {}), **self.attributes},
            )
        finally:
            current_span.reset(token)


class _BetaMessageCall(_MessageCall):
    """A ``client.beta.messages`` call: recorded as any message, marked as a beta call with the
    betas it asked for (what its ``anthropic-beta`` header carries)."""

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        _MessageCall.__init__(self, args, kwargs)
        self.attributes[BETA_ATTRIBUTE] = True
        betas = _betas(kwargs)
        if betas:
            self.attributes[BETAS_ATTRIBUTE] = betas


def _betas(kwargs: dict[str, Any]) -> list[str]:
    """The betas a call sends: an ``anthropic-beta`` extra header wins over ``betas=[...]``, as
    it does in the client."""
    headers = kwargs.get("extra_headers")
    if isinstance(headers, dict):
        for key, value in headers.items():
            if isinstance(key, str) and key.lower() == "anthropic-beta" and isinstance(value, str):
                return [b.strip() for b in value.split(",") if b.strip()]
    betas = kwargs.get("betas")
    if isinstance(betas, (list, tuple)):
        return [str(b) for b in betas]
    return []


def _usage_map(usage: Any) -> dict[str, Any]:
    """The ints of an anthropic ``Usage`` / ``MessageDeltaUsage`` (absent fields left out)."""
    out: dict[str, Any] = {f: v for f in _USAGE_FIELDS if type(v := getattr(usage, f, None)) is int}
    thinking = getattr(getattr(usage, "output_tokens_details", None), "thinking_tokens", None)
    if type(thinking) is int:
        out["output_tokens_details"] = {"thinking_tokens": thinking}
    return out


def _request_attributes(
    resource: Any, kwargs: dict[str, Any], model: str | None, stream: bool
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
    }  # fmt: skip
    add_request_params(attributes, kwargs, model, _REQUEST_ATTRIBUTES)
    stop = kwargs.get("stop_sequences")
    if isinstance(stop, (list, tuple)):
        attributes["gen_ai.request.stop_sequences"] = [str(s) for s in stop]
    tools = kwargs.get("tools")
    if isinstance(tools, (list, tuple)) and tools:
        names = [t.get("name") for t in tools if isinstance(t, dict)]
        attributes["gen_ai.request.tools"] = [n for n in names if isinstance(n, str)]
    if stream:
        attributes["llmpulse.stream"] = True
    host = getattr(getattr(getattr(resource, "_client", None), "base_url", None), "host", None)
    if isinstance(host, str) and host:
        attributes["server.address"] = host
    return attributes


def _output(content: Any) -> Any:
    """The answer: its text, or its blocks (text and tool calls) when it calls a tool."""
    if not isinstance(content, list) or not content:
        return None
    blocks: list[dict[str, Any]] = []
    for block in content:
        kind = getattr(block, "type", None)
        if kind == "text":
            blocks.append({"type": "text", "text": block.text})
        elif kind == "tool_use":
            blocks.append({"type": "tool_use", "id": block.id, "name": block.name,
                           "input": block.input})  # fmt: skip
    if all(b["type"] == "text" for b in blocks):
        return "".join(b["text"] for b in blocks) if blocks else None
    return blocks
