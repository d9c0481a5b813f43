"""Record OpenAI's Responses API (``client.responses.create`` / ``.parse`` / ``.stream``) as llm spans.

``instrument_openai()`` patches ``Responses.create`` and ``Responses.parse`` (and their async
twins), when a client first reaches ``client.responses`` if openai has not loaded that resource
yet: loading it costs ~100 ms (openai builds its stream-event models as it imports them), which
``llmpulse.init()`` should not charge a program that never calls the Responses API.
``responses.stream(...)`` sends its request through ``create(stream=True)``, so it is
recorded there; ``parse`` posts by itself (checked in openai 3.60: it never goes through
``create``), so it has its own wrapper and each call is still one span. Resuming a stored
response's stream (``responses.stream(response_id=...)``) is a ``retrieve``, not a model call,
and is not recorded.

A call is recorded as a chat completion is (``openai._LlmCall``: the same columns, estimate,
parent, ``using()`` defaults and name ``chat {model}``), marked ``llmpulse.openai.api =
"responses"``. What differs is read here: the prompt is ``instructions`` (as a system message)
then ``input`` (a string as one user message, or the items as given); usage is
``input_tokens`` / ``output_tokens`` with ``input_tokens_details.cached_tokens`` and
``output_tokens_details.reasoning_tokens``; the answer is the response's ``output_text``, or its
function calls when it has no text; a response whose ``status`` is ``failed`` is an error.

Streams carry typed events. Usage arrives only in the last one (``response.completed``, or
``response.incomplete`` / ``response.failed``), whose full response is read as a non-streamed
one is. The time to first token is the first text, refusal or function-argument delta. A
``background=True`` call returns a queued response with no usage: it is recorded without
tokens (none estimated), marked ``llmpulse.openai.background``; the response it completes later
is fetched with ``retrieve``, which is not recorded. The
``responses.stream()`` helper's ``ResponseStream.close()`` (its ``with`` block) closes the HTTP
response, not openai's ``Stream``, so that close is watched too (all but the one openai's own
stream generator makes as it ends, told apart by that generator running): a stream left before
its last event ends its span at once, marked ``llmpulse.stream.closed_early``; one the server
cut before its last event is marked ``llmpulse.stream.truncated``.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from llmpulse.sdk.instrumentation._openai_stream import observe_async_stream, observe_stream
from llmpulse.sdk.instrumentation._shared import (
    MARK,
    ClientCall,
    add_request_params,
    text_or_none,
    wrap_acreate,
    wrap_create,
)
from llmpulse.sdk.instrumentation.openai import _host, _LlmCall

__all__ = [
    "ParseCall", "ResponsesCall", "instrument", "observe_async_responses", "observe_responses",
    "uninstrument",
]  # fmt: skip

log = logging.getLogger("llmpulse.sdk")

_lock = threading.Lock()
_patched: list[tuple[type, str, Any]] = []  # (class, attribute, original), undone last first
_RESOURCE_MODULE = "openai.resources.responses.responses"

API_ATTRIBUTE = "llmpulse.openai.api"
# request keyword -> gen_ai attribute
_REQUEST_ATTRIBUTES = {
    "temperature": "gen_ai.request.temperature",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
    "service_tier": "gen_ai.request.service_tier",
}
# The events that end a stream: each carries the full response, with its usage.
_LAST_EVENTS = ("response.completed", "response.incomplete", "response.failed")
# The events whose delta is the first visible output (reasoning is not visible).
_FIRST_TOKEN_EVENTS = (
    "response.output_text.delta",
    "response.refusal.delta",
    "response.function_call_arguments.delta",
)


def instrument() -> None:
    """Record the Responses API: now if openai has loaded its resource, else on first use."""
    with _lock:
        if _patched:
            return
        try:
            from openai import AsyncOpenAI, OpenAI
        except ImportError:
            return
        lazy = [vars(client).get("responses") for client in (OpenAI, AsyncOpenAI)]
        if _RESOURCE_MODULE in sys.modules or not all(
            isinstance(prop, functools.cached_property) for prop in lazy
        ):
            _patch_resources()
            return
        for client, prop in zip((OpenAI, AsyncOpenAI), lazy, strict=True):
            assert isinstance(prop, functools.cached_property)
            patching = functools.cached_property(_patching_on_first_use(prop.func))
            patching.__set_name__(client, "responses")
            _patched.append((client, "responses", prop))
            client.responses = patching  # type: ignore[attr-defined]


def uninstrument() -> None:
    """Undo ``instrument``: openai's own methods and client properties again."""
    with _lock:
        while _patched:
            cls, name, original = _patched.pop()
            setattr(cls, name, original)


def _patching_on_first_use(func: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``client.responses``, patching the resource class the first time (still instrumented)."""

    @functools.wraps(func)
    def responses(client: Any) -> Any:
        resource = func(client)
        try:
            with _lock:
                if _patched:
                    _patch_resources()
        except Exception:
            log.debug("openai instrumentation: cannot patch the Responses API", exc_info=True)
        return resource

    return responses


def _patch_resources() -> None:
    """Wrap ``create`` and ``parse`` of ``Responses`` and ``AsyncResponses`` (once)."""
    try:
        from openai.resources.responses import AsyncResponses, Responses
    except ImportError:  # an openai before the Responses API
        log.debug("openai has no responses resource: the Responses API is not recorded")
        return
    if getattr(Responses.create, MARK, False):
        return
    for name, begin in (("create", ResponsesCall.begin), ("parse", ParseCall.begin)):
        for cls, wrap, observe in (
            (Responses, wrap_create, observe_responses),
            (AsyncResponses, wrap_acreate, observe_async_responses),
        ):
            original = vars(cls).get(name)
            if original is not None:
                _patched.append((cls, name, original))
                setattr(cls, name, wrap(original, begin, observe))


class ResponsesCall(_LlmCall):
    """One ``responses.create`` being recorded; every method swallows its own failures."""

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ClientCall.__init__(self, args, kwargs)
        self.messages = _prompt(kwargs)
        self.user_id = text_or_none(kwargs.get("user")) or text_or_none(
            kwargs.get("safety_identifier")
        )
        metadata = kwargs.get("metadata")
        self.session_id = (
            text_or_none(metadata.get("session_id")) if isinstance(metadata, dict) else None
        )
        self.attributes = _request_attributes(args[0] if args else None, kwargs, self.model)
        if self.stream:
            self.attributes["llmpulse.stream"] = True
        self.usage: Any = None
        self.output_chars = 0
        self.deltas = 0  # text and argument deltas: a token each, about
        self.final: Any = None  # the response the last event carried
        self.error: tuple[str, str] | None = None  # a failed response, or an error event
        self.pending = False  # a background response, queued: its usage comes later

    def request(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Sent unchanged: a Responses stream always ends with its usage."""
        return kwargs

    def finish(self, response: Any) -> None:
        """A non-streamed response arrived."""
        try:
            self._read_response(response)
            self._record(time.perf_counter(), usage=self.usage, output=_output(response),
                         error=self.error)  # fmt: skip
        except Exception:
            log.debug("openai instrumentation: cannot record response", exc_info=True)

    # -- streams -----------------------------------------------------------------------------
    def on_chunk(self, chunk: Any) -> bool:
        """One streamed event went past (the user sees every one)."""
        try:
            self.chunks += 1
            kind = getattr(chunk, "type", None)
            if kind in _FIRST_TOKEN_EVENTS:
                if self.first_token_at is None:
                    self.first_token_at = time.perf_counter()
                self.deltas += 1
                delta = getattr(chunk, "delta", None)
                if kind == "response.output_text.delta" and isinstance(delta, str):
                    self.text.add(delta)
                    self.output_chars += len(delta)
            elif kind in _LAST_EVENTS:
                self.final = getattr(chunk, "response", None)
                self._read_response(self.final)
            elif kind == "response.created":
                response_id = getattr(getattr(chunk, "response", None), "id", None)
                if response_id:
                    self.attributes["gen_ai.response.id"] = response_id
            elif kind == "error":
                code = text_or_none(getattr(chunk, "code", None)) or "error"
                self.error = (code, str(getattr(chunk, "message", "") or ""))
                self.attributes["error.type"] = code
        except Exception:
            log.debug("openai instrumentation: cannot read event", exc_info=True)
        return False

    def end_stream(self, *, consumed: bool) -> None:
        """The stream ended: exhausted (``consumed``), or closed / dropped early."""
        try:
            if self.final is None:
                key = "llmpulse.stream.truncated" if consumed else "llmpulse.stream.closed_early"
                self.attributes[key] = True
            self.attributes["llmpulse.stream.chunks"] = self.chunks
            output = _output(self.final) or self.text.value()  # a failed one may hold no output
            self._record(time.perf_counter(), usage=self.usage, output=output, error=self.error)
        except Exception:
            log.debug("openai instrumentation: cannot record stream", exc_info=True)

    # -- reading -----------------------------------------------------------------------------
    def _read_response(self, response: Any) -> None:
        """The usage, model, id, finish reason and failure of a (final) response."""
        self.usage = getattr(response, "usage", None)
        if getattr(response, "model", None):
            self.attributes["gen_ai.response.model"] = response.model
        if getattr(response, "id", None):
            self.attributes["gen_ai.response.id"] = response.id
        status = getattr(response, "status", None)
        if status in ("queued", "in_progress"):  # background=True: nothing generated yet
            self.pending = True
            self.attributes["llmpulse.openai.background"] = True
            return
        reason = getattr(getattr(response, "incomplete_details", None), "reason", None)
        if reason or status:
            self.attributes["gen_ai.response.finish_reasons"] = [reason or status]
        if status == "failed":
            error = getattr(response, "error", None)
            code = text_or_none(getattr(error, "code", None)) or "ResponseFailed"
            self.error = (code, str(getattr(error, "message", "") or ""))
            self.attributes["error.type"] = code

    def _tokens(self, usage: Any) -> dict[str, int]:
        return _usage(usage)

    def _estimate(self, output: Any) -> dict[str, int]:
        """No estimate for a background response: it has generated nothing yet, and its tokens
        are billed (and reported) when it completes, which this call does not see."""
        return {} if self.pending else _LlmCall._estimate(self, output)

    def _pieces(self) -> int:
        return self.deltas


class ParseCall(ResponsesCall):
    """One ``responses.parse``: never a stream (it posts and parses one response)."""

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ResponsesCall.__init__(self, args, {**kwargs, "stream": False})


def observe_responses(stream: Any, call: ResponsesCall) -> Any:
    """``observe_stream``, and the HTTP response's ``close`` watched as well: what the
    ``responses.stream()`` helper closes when its ``with`` block ends."""
    inner = getattr(stream, "_iterator", None)
    observe_stream(stream, call)
    try:
        response = stream.response
        original = response.close

        def close() -> None:
            try:
                original()
            finally:
                if not getattr(inner, "gi_running", False):  # not openai's own close at the end
                    call.end_stream(consumed=False)

        response.close = close
    except Exception:
        log.debug("openai instrumentation: cannot watch this stream's response", exc_info=True)
    return stream


def observe_async_responses(stream: Any, call: ResponsesCall) -> Any:
    """The async twin of ``observe_responses`` (``AsyncResponseStream.close`` awaits the HTTP
    response's ``aclose``)."""
    inner = getattr(stream, "_iterator", None)
    observe_async_stream(stream, call)
    try:
        response = stream.response
        original = response.aclose

        async def aclose() -> None:
            try:
                await original()
            finally:
                if not getattr(inner, "ag_running", False):
                    call.end_stream(consumed=False)

        response.aclose = aclose
    except Exception:
        log.debug("openai instrumentation: cannot watch this stream's response", exc_info=True)
    return stream


def _prompt(kwargs: dict[str, Any]) -> list[Any] | None:
    """The prompt as messages: ``instructions`` as a system message, then ``input`` (a string
    as one user message, a list of items as given, copied)."""
    given = kwargs.get("input")
    if isinstance(given, str):
        messages: list[Any] = [{"role": "user", "content": given}]
    elif isinstance(given, (list, tuple)):
        messages = list(given)
    else:  # no input: a stored prompt or a previous response carries it
        messages = []
    instructions = text_or_none(kwargs.get("instructions"))
    if instructions is not None:
        messages.insert(0, {"role": "system", "content": instructions})
    return messages or None


def _request_attributes(resource: Any, kwargs: dict[str, Any], model: str | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        API_ATTRIBUTE: "responses",
    }
    add_request_params(attributes, kwargs, model, _REQUEST_ATTRIBUTES)
    reasoning = kwargs.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    if isinstance(effort, str):
        attributes["gen_ai.request.reasoning_effort"] = effort
    conversation = kwargs.get("conversation")
    if isinstance(conversation, dict):
        conversation = conversation.get("id")
    if text_or_none(conversation):
        attributes["gen_ai.conversation.id"] = conversation
    previous = text_or_none(kwargs.get("previous_response_id"))
    if previous:
        attributes["llmpulse.openai.previous_response_id"] = previous
    host = _host(resource)
    if host:
        attributes["server.address"] = host
    return attributes


def _usage(usage: Any) -> dict[str, int]:
    if usage is None:
        return {}
    inputs = getattr(usage, "input_tokens_details", None)
    out: dict[str, int] = {}
    for field, value in (
        ("input_tokens", getattr(usage, "input_tokens", None)),
        ("output_tokens", getattr(usage, "output_tokens", None)),
        ("cache_read_tokens", getattr(inputs, "cached_tokens", None)),
        (
            "reasoning_tokens",
            getattr(getattr(usage, "output_tokens_details", None), "reasoning_tokens", None),
        ),
    ):
        if type(value) is int:
            out[field] = value
    return out


def _output(response: Any) -> Any:
    """The answer: the response's text, else its function calls (``None`` when neither)."""
    texts: list[str] = []
    calls: list[Any] = []
    for item in getattr(response, "output", None) or ():
        kind = getattr(item, "type", None)
        if kind == "message":
            for part in getattr(item, "content", None) or ():
                text = getattr(part, "text", None)
                if getattr(part, "type", None) == "output_text" and isinstance(text, str):
                    texts.append(text)
        elif kind == "function_call":
            calls.append(item)
    if texts:
        return "".join(texts)
    return calls or None
