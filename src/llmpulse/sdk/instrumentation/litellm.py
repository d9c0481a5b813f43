"""Record every ``litellm.completion`` / ``acompletion`` (streamed or not) and every
``litellm.embedding`` / ``aembedding`` and ``litellm.text_completion`` / ``atext_completion`` as an
llm span.

``instrument_litellm()`` replaces ``litellm.completion`` and ``litellm.acompletion`` (what
applications and LiteLLM's ``Router`` call) with wrappers that record one span per call: the
model and provider LiteLLM resolved, tokens (cache reads and writes, reasoning), cost from
llmpulse's price table, latency, time to first token for streams, errors by exception class,
prompt and answer. ``litellm.embedding`` and ``aembedding`` are wrapped the same way and
recorded as the openai instrumentation records embeddings (``_embeddings``: input tokens, the
inputs, the vectors' count and length, never the vectors). ``litellm.text_completion`` and
``atext_completion`` are recorded as completions are, their prompt as the input and
``text_completion`` as the operation (``gen_ai.operation.name`` and the span name's first word).
As for the openai client, the call, its arguments, its result and its exceptions pass through
untouched and a recording failure is swallowed.

Why wrappers and not a LiteLLM callback (``CustomLogger``): callbacks run after the call
returned, on a thread pool or a logging worker, so they lose the caller's current span, fire
late (nothing has fired when ``completion`` returns) and, on some paths (fallbacks,
``include_usage``, streamed responses), more than once. A wrapper records exactly once, on the
caller's own thread and context, when the call or its stream ends.

Double counting: LiteLLM reaches OpenAI-compatible providers through the openai client (and
may through others that llmpulse instruments). The span is the current span while LiteLLM
runs, and the client instrumentations record nothing under an open ``llm`` span, so a call
counts once, as LiteLLM's.

Usage comes from LiteLLM's OpenAI-shaped ``Usage``, whose ``prompt_tokens`` already folds in
Anthropic's cache reads and writes. For the cache counts the explicit fields
(``cache_read_input_tokens``, ``cache_creation_input_tokens``) win over
``prompt_tokens_details``: they disagreed on Anthropic streams in some LiteLLM versions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from llmpulse.schema import USAGE_ESTIMATED_ATTRIBUTE
from llmpulse.sdk import _state
from llmpulse.sdk._spans import SpanHandle
from llmpulse.sdk.instrumentation import _embeddings
from llmpulse.sdk.instrumentation._langchain_usage import from_openai_usage
from llmpulse.sdk.instrumentation._litellm_stream import observe_stream_wrapper
from llmpulse.sdk.instrumentation._shared import (
    MARK,
    ClientCall,
    add_request_params,
    error_attributes,
    text_or_none,
    wrap_acreate,
    wrap_create,
)

__all__ = ["instrument_litellm", "uninstrument_litellm"]

log = logging.getLogger("llmpulse.sdk")

_lock = threading.Lock()
_originals: dict[str, Any] = {}

# request keyword -> gen_ai attribute
_REQUEST_ATTRIBUTES = {
    "temperature": "gen_ai.request.temperature",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
    "seed": "gen_ai.request.seed",
}


def instrument_litellm() -> bool:
    """Wrap ``litellm.completion``, ``acompletion``, ``text_completion``, ``atext_completion``,
    ``embedding`` and ``aembedding``; ``False`` if litellm is absent."""
    try:
        import litellm
    except ImportError:
        log.debug("litellm is not installed: nothing to instrument")
        return False
    with _lock:
        if getattr(litellm.completion, MARK, False):
            return True
        for name, wrap, call, observe in _WRAPPED:
            original = getattr(litellm, name, None)
            if original is not None:  # atext_completion and the like may be absent from a version
                _originals[name] = original
                setattr(litellm, name, wrap(original, call.begin, observe))
    return True


def uninstrument_litellm() -> None:
    """Undo ``instrument_litellm`` (does nothing if it was not applied)."""
    with _lock:
        if not _originals:
            return
        import litellm

        for name, original in _originals.items():
            setattr(litellm, name, original)
        _originals.clear()


class _Completion(ClientCall):
    """One LiteLLM completion being recorded; every method swallows its own failures."""

    library = "litellm"
    operation = "chat"  # gen_ai.operation.name, and the span name's first word

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ClientCall.__init__(self, args, kwargs)
        messages = kwargs.get("messages")
        self._open(self.model or (text_or_none(args[0]) if args else None), kwargs,
                   list(messages) if isinstance(messages, (list, tuple)) else messages)  # fmt: skip

    def _open(self, requested: str | None, kwargs: dict[str, Any], prompt: Any) -> None:
        """Open the call's span, asked for ``requested`` with ``prompt`` as its input."""
        self.model, self.provider = _split(requested, kwargs)
        self.asked_usage = False
        self.usage: Any = None
        defaults = self.defaults
        attributes = {**defaults.get("attributes", {}),
                      **_request_attributes(kwargs, requested, self.operation)}  # fmt: skip
        name = f"{self.operation} {self.model or ''}".rstrip()
        self.handle = h = SpanHandle(_state._client, name, "llm", attributes)
        h.open(self.parent, self.start)
        # LiteLLM runs under its own span: the client instrumentations below it stand aside.
        self.scope = h
        h.set_model(
            self.model, provider=self.provider, prompt_version=defaults.get("prompt_version")
        )
        metadata = kwargs.get("metadata")
        session = metadata.get("session_id") if isinstance(metadata, dict) else None
        h.set_session(text_or_none(session) or defaults.get("session_id"),
                      text_or_none(kwargs.get("user")) or defaults.get("user_id"))  # fmt: skip
        h.set_input(prompt)

    def request(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The arguments to send: a stream also asks for its usage (as the openai wrapper does)."""
        try:
            options = kwargs.get("stream_options")
            if (
                not self.stream
                or not _state._client.config.stream_usage
                or (options is not None and not isinstance(options, dict))
                or (isinstance(options, dict) and "include_usage" in options)
            ):
                return kwargs
            self.asked_usage = True
            self.handle.set_attribute("llmpulse.stream.usage_requested", True)
            return {**kwargs, "stream_options": {**(options or {}), "include_usage": True}}
        except Exception:
            log.debug("litellm instrumentation: cannot ask for stream usage", exc_info=True)
            return kwargs

    def finish(self, response: Any) -> None:
        """A response arrived (or a stream LiteLLM returned that cannot be observed)."""
        try:
            self._end(response, getattr(response, "usage", None), _output(response))
        except Exception:
            log.debug("litellm instrumentation: cannot record response", exc_info=True)

    def fail(self, exc: BaseException) -> None:
        """The call (or its stream) raised ``exc``."""
        try:
            if self.done:
                return
            h = self.handle
            h.set_attributes(error_attributes(exc))
            h.set_status_error(exc)
            self._end(None, self.usage, self.text.value())
        except Exception:
            log.debug("litellm instrumentation: cannot record error", exc_info=True)

    # -- streams -----------------------------------------------------------------------------
    def on_chunk(self, chunk: Any) -> bool:
        """One chunk went past; ``True`` for the usage-only chunk we asked for (kept from the user)."""
        try:
            choices = getattr(chunk, "choices", None)
            if getattr(chunk, "usage", None) is not None:
                self.usage = chunk.usage
                if self.asked_usage and not choices:
                    return True
            self.chunks += 1
            for choice in choices or ():
                delta = getattr(choice, "delta", None)
                # a chat chunk's text is in its delta; a text completion chunk's is the choice's
                content = (
                    getattr(delta, "content", None) if delta is not None
                    else getattr(choice, "text", None)
                )  # fmt: skip
                if (content or getattr(delta, "tool_calls", None)) and self.first_token_at is None:
                    self.first_token_at = time.perf_counter()
                if content and getattr(choice, "index", 0) == 0:
                    self.text.add(content)
                if getattr(choice, "finish_reason", None):
                    self.handle.set_attribute(
                        "gen_ai.response.finish_reasons", [choice.finish_reason]
                    )
        except Exception:
            log.debug("litellm instrumentation: cannot read chunk", exc_info=True)
        return False

    def end_stream(self, *, consumed: bool) -> None:
        """The stream ended: exhausted (``consumed``), or closed / dropped early."""
        try:
            if self.done:
                return
            if not consumed:
                self.handle.set_attribute("llmpulse.stream.closed_early", True)
            self.handle.set_attribute("llmpulse.stream.chunks", self.chunks)
            self._end(None, self.usage, self.text.value())
        except Exception:
            log.debug("litellm instrumentation: cannot record stream", exc_info=True)

    # -- recording ---------------------------------------------------------------------------
    def _end(self, response: Any, usage: Any, output: Any) -> None:
        if self.done:
            return
        self.done = True
        h = self.handle
        end = time.perf_counter()
        if response is not None:
            _response_attributes(h, response)
            provider = _hidden(response).get("custom_llm_provider")
            if isinstance(provider, str) and provider:  # what LiteLLM resolved wins
                h.set_model(self.model, provider=provider)
        tokens = usage_from_litellm(usage)
        if tokens:
            h.set_usage(**tokens)
        if self.first_token_at is not None:
            h.set_ttft((self.first_token_at - self.t0) * 1000.0)
        h.set_output(output)
        h.end(h.start_time + (end - self.t0))


class _TextCompletion(_Completion):
    """One ``litellm.text_completion`` / ``atext_completion`` being recorded: a completion whose
    input is a prompt, named ``text_completion <model>`` (``gen_ai.operation.name``)."""

    operation = "text_completion"

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ClientCall.__init__(self, args, kwargs)
        # text_completion(prompt, model=None, ...), the model also as engine=
        requested = (
            self.model or text_or_none(kwargs.get("engine"))
            or (text_or_none(args[1]) if len(args) > 1 else None)
        )  # fmt: skip
        self._open(requested, kwargs, kwargs["prompt"] if "prompt" in kwargs else
                   args[0] if args else None)  # fmt: skip


class _Embedding(ClientCall):
    """One LiteLLM embedding being recorded; every method swallows its own failures."""

    library = "litellm"

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ClientCall.__init__(self, args, kwargs)
        requested = self.model or (text_or_none(args[0]) if args else None)
        self.model, self.provider = _split(requested, kwargs)
        self.input = _embeddings.embedding_input(
            kwargs["input"] if "input" in kwargs else args[1] if len(args) > 1 else None
        )
        defaults = self.defaults
        attributes = {**defaults.get("attributes", {}), **_embeddings.request_attributes(kwargs),
                      "llmpulse.integration": "litellm"}  # fmt: skip
        if requested:
            attributes["gen_ai.request.model"] = requested
        name = f"{_embeddings.OPERATION} {self.model or ''}".rstrip()
        self.handle = h = SpanHandle(_state._client, name, "llm", attributes)
        h.open(self.parent, self.start)
        self.scope = h  # the clients LiteLLM calls underneath stand aside, as for completions
        h.set_model(
            self.model, provider=self.provider, prompt_version=defaults.get("prompt_version")
        )
        metadata = kwargs.get("metadata")
        session = metadata.get("session_id") if isinstance(metadata, dict) else None
        h.set_session(text_or_none(session) or defaults.get("session_id"),
                      text_or_none(kwargs.get("user")) or defaults.get("user_id"))  # fmt: skip
        h.set_input(self.input)

    def finish(self, response: Any) -> None:
        """The response arrived: its usage, the provider LiteLLM resolved, the vectors' shape."""
        try:
            if self.done:
                return
            h = self.handle
            if getattr(response, "model", None):
                h.set_attribute("gen_ai.response.model", response.model)
            h.set_attributes(_embeddings.vector_attributes(getattr(response, "data", None)))
            provider = _hidden(response).get("custom_llm_provider")
            if isinstance(provider, str) and provider:  # what LiteLLM resolved wins
                h.set_model(self.model, provider=provider)
            tokens = getattr(getattr(response, "usage", None), "prompt_tokens", None)
            if type(tokens) is not int:
                tokens = _embeddings.estimated_input_tokens(self.input)
                if tokens is not None:
                    h.set_attribute(USAGE_ESTIMATED_ATTRIBUTE, "chars/4")
            if tokens is not None:
                h.set_usage(input_tokens=tokens)
            self._end()
        except Exception:
            log.debug("litellm instrumentation: cannot record embedding", exc_info=True)

    def fail(self, exc: BaseException) -> None:
        """The call raised ``exc``."""
        try:
            if self.done:
                return
            h = self.handle
            h.set_attributes(error_attributes(exc))
            h.set_status_error(exc)
            self._end()
        except Exception:
            log.debug("litellm instrumentation: cannot record error", exc_info=True)

    def _end(self) -> None:
        self.done = True
        h = self.handle
        h.end(h.start_time + (time.perf_counter() - self.t0))


def _embedded(result: Any, call: _Embedding) -> None:
    """Embeddings never stream: whatever came back is the response."""
    call.finish(result)


def _observe(stream: Any, call: _Completion) -> None:
    """A stream is recorded at its end; a result that is no ``CustomStreamWrapper``, now."""
    try:
        if not observe_stream_wrapper(stream, call):
            call.finish(stream)
    except Exception:
        log.debug("litellm instrumentation: cannot record response", exc_info=True)


# litellm function -> its wrapper, how a call is recorded, how its result is observed. Each is
# replaced on the litellm module, not in ``litellm.main``, where they call one another:
# text_completion calls main's completion, atext_completion main's text_completion, so a call
# reaches one wrapper only (and anything else it reaches runs under that wrapper's open span).
_Wrapped = tuple[str, Callable[..., Any], type[ClientCall], Callable[[Any, Any], None]]
_WRAPPED: tuple[_Wrapped, ...] = (
    ("completion", wrap_create, _Completion, _observe),
    ("acompletion", wrap_acreate, _Completion, _observe),
    ("text_completion", wrap_create, _TextCompletion, _observe),
    ("atext_completion", wrap_acreate, _TextCompletion, _observe),
    ("embedding", wrap_create, _Embedding, _embedded),
    ("aembedding", wrap_acreate, _Embedding, _embedded),
)


def usage_from_litellm(usage: Any) -> dict[str, int]:
    """Token counts of a LiteLLM ``Usage`` in llmpulse's terms (explicit cache fields first)."""
    if usage is None:
        return {}
    as_dict = getattr(usage, "model_dump", None)
    raw = as_dict() if callable(as_dict) else usage
    if not isinstance(raw, dict):
        return {}
    tokens = from_openai_usage(raw)
    inp = tokens.get("input_tokens")
    if inp is None:
        return tokens
    read, write = raw.get("cache_read_input_tokens"), raw.get("cache_creation_input_tokens")
    details = raw.get("prompt_tokens_details")
    if not isinstance(details, dict):
        details = {}
    if type(read) is not int or read < 0:
        read = tokens.get("cache_read_tokens")
    if type(write) is not int or write < 0:
        write = details.get("cache_creation_tokens")
        write = write if type(write) is int and write >= 0 else None
    if read is not None:
        tokens["cache_read_tokens"] = read = min(read, inp)
    if write is not None:
        tokens["cache_write_tokens"] = min(write, inp - (read or 0))
    return tokens


def _split(model: str | None, kwargs: dict[str, Any]) -> tuple[str | None, str | None]:
    """The model and provider LiteLLM will use: ("openai/gpt-4o-mini") -> ("gpt-4o-mini",
    "openai"), custom providers included; the name as given when LiteLLM cannot tell."""
    if not model:
        return model, None
    try:
        import litellm

        name, provider, _, _ = litellm.get_llm_provider(
            model=model, custom_llm_provider=kwargs.get("custom_llm_provider"),
            api_base=kwargs.get("api_base"),
        )  # fmt: skip
    except Exception:  # LiteLLM will raise its own error for this call
        return model, None
    return (text_or_none(name) or model), text_or_none(provider)


def _hidden(response: Any) -> dict[str, Any]:
    hidden = getattr(response, "_hidden_params", None)
    return hidden if isinstance(hidden, dict) else {}


def _request_attributes(
    kwargs: dict[str, Any], requested: str | None, operation: str
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "llmpulse.integration": "litellm",
    }
    add_request_params(attributes, kwargs, requested, _REQUEST_ATTRIBUTES)
    if kwargs.get("stream") is True:
        attributes["llmpulse.stream"] = True
    return attributes


def _response_attributes(h: SpanHandle, response: Any) -> None:
    if getattr(response, "model", None):
        h.set_attribute("gen_ai.response.model", response.model)
    if getattr(response, "id", None):
        h.set_attribute("gen_ai.response.id", response.id)
    reasons = [getattr(c, "finish_reason", None) for c in getattr(response, "choices", None) or ()]
    if any(reasons):
        h.set_attribute("gen_ai.response.finish_reasons", [r for r in reasons if r])


def _output(response: Any) -> Any:
    """The answer: the first choice's message (its tool calls when it has no text), or, for a
    text completion, the first choice's text."""
    choices = getattr(response, "choices", None) or []
    if not choices:
        return None
    message = getattr(choices[0], "message", None)
    if message is None:
        return getattr(choices[0], "text", None)
    content = getattr(message, "content", None)
    tool_calls = getattr(message, "tool_calls", None)
    if content is None and tool_calls:
        return [getattr(t, "model_dump", lambda t=t: t)() for t in tool_calls]
    return content
