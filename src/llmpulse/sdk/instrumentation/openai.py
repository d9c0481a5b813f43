"""Record every OpenAI chat completion (sync, async, streamed), Responses API call and embeddings
call as an llm span.

``instrument_openai()`` patches ``Completions.create`` and ``AsyncCompletions.create`` of the
installed ``openai`` package (v1 and later), ``Responses.create`` / ``.parse`` and their async
twins (read as ``_openai_responses`` describes), and ``Embeddings.create`` /
``AsyncEmbeddings.create`` (recorded as ``_embeddings`` describes: input tokens, the inputs,
never the vectors). The wrapper records model, tokens (cached and
reasoning tokens included), latency, errors by exception class, the prompt and the response
(redacted / truncated by the client's settings) and ``gen_ai.*`` request attributes. The user's
call, its arguments, its result and its exceptions pass through untouched; a failure inside
the recording is swallowed. Streams are observed in place: chunks pass through as they are,
and the span ends when the stream is exhausted, closed or garbage collected.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from llmpulse.schema import USAGE_ESTIMATED_ATTRIBUTE
from llmpulse.sdk import _state
from llmpulse.sdk._context import current_span
from llmpulse.sdk.instrumentation import _embeddings
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

__all__ = ["instrument_openai", "uninstrument_openai"]

log = logging.getLogger("llmpulse.sdk")

_lock = threading.Lock()
_originals: dict[str, Any] = {}
# Tokens estimated from text when usage is missing: about 4 characters per token for English
# (OpenAI's rule of thumb); the attribute says so, so nobody mistakes it for billing.
_CHARS_PER_TOKEN = 4
_ESTIMATE_METHOD = "chars/4"

# request keyword -> gen_ai attribute
_REQUEST_ATTRIBUTES = {
    "temperature": "gen_ai.request.temperature",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
    "reasoning_effort": "gen_ai.request.reasoning_effort",
    "service_tier": "gen_ai.request.service_tier",
}


def instrument_openai() -> bool:
    """Patch the openai client so chat completions, Responses API calls and embeddings are
    recorded; ``False`` if openai is absent."""
    try:
        from openai.resources.chat.completions import AsyncCompletions, Completions
    except ImportError:
        log.debug("openai is not installed: nothing to instrument")
        return False
    with _lock:
        if getattr(Completions.create, MARK, False):
            return True
        _originals["sync"], _originals["async"] = Completions.create, AsyncCompletions.create
        Completions.create = wrap_create(  # type: ignore[method-assign]
            Completions.create, _LlmCall.begin, observe_stream
        )
        AsyncCompletions.create = wrap_acreate(  # type: ignore[method-assign]
            AsyncCompletions.create, _LlmCall.begin, observe_async_stream
        )
        _instrument_embeddings()
        _instrument_responses()
    return True


def _instrument_embeddings() -> None:
    try:
        from openai.resources.embeddings import AsyncEmbeddings, Embeddings
    except ImportError:  # an openai without the embeddings resource: chat alone is recorded
        log.debug("openai has no embeddings resource: embeddings are not recorded")
        return
    _originals["embeddings"], _originals["aembeddings"] = Embeddings.create, AsyncEmbeddings.create
    Embeddings.create = wrap_create(  # type: ignore[method-assign]
        Embeddings.create, _EmbeddingsCall.begin, _no_stream
    )
    AsyncEmbeddings.create = wrap_acreate(  # type: ignore[method-assign]
        AsyncEmbeddings.create, _EmbeddingsCall.begin, _no_stream
    )


def _instrument_responses() -> None:
    from llmpulse.sdk.instrumentation import _openai_responses

    _openai_responses.instrument()
    _originals["responses"] = _openai_responses.uninstrument


def uninstrument_openai() -> None:
    """Undo ``instrument_openai`` (does nothing if it was not applied)."""
    with _lock:
        if not _originals:
            return
        from openai.resources.chat.completions import AsyncCompletions, Completions

        Completions.create = _originals.pop("sync")  # type: ignore[method-assign]
        AsyncCompletions.create = _originals.pop("async")  # type: ignore[method-assign]
        if "embeddings" in _originals:
            from openai.resources.embeddings import AsyncEmbeddings, Embeddings

            Embeddings.create = _originals.pop("embeddings")  # type: ignore[method-assign]
            AsyncEmbeddings.create = _originals.pop("aembeddings")  # type: ignore[method-assign]
        if "responses" in _originals:
            _originals.pop("responses")()


class _LlmCall(ClientCall):
    """One chat completion being recorded; every method swallows its own failures."""

    library = "openai"

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ClientCall.__init__(self, args, kwargs)
        messages = kwargs.get("messages")
        self.messages = list(messages) if isinstance(messages, (list, tuple)) else messages
        self.user_id = text_or_none(kwargs.get("user")) or text_or_none(
            kwargs.get("safety_identifier")
        )
        metadata = kwargs.get("metadata")
        self.session_id = (
            text_or_none(metadata.get("session_id")) if isinstance(metadata, dict) else None
        )
        resource = args[0] if args else None
        self.attributes = _request_attributes(resource, kwargs, self.model, self.stream)
        # streaming state
        self.usage: Any = None
        self.asked_usage = False  # include_usage was added by us: its usage-only chunk is ours
        self.output_chars = 0  # streamed content, counted even when the text is not kept

    def request(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The arguments to send: a stream also asks for its usage, unless the user said
        (``stream_options``) or the settings say (``stream_usage=False``) otherwise."""
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
            self.attributes["llmpulse.stream.usage_requested"] = True
            return {**kwargs, "stream_options": {**(options or {}), "include_usage": True}}
        except Exception:
            log.debug("openai instrumentation: cannot ask for stream usage", exc_info=True)
            return kwargs

    def finish(self, response: Any) -> None:
        """A non-streamed response arrived."""
        try:
            end = time.perf_counter()
            choices = getattr(response, "choices", None) or []
            self._response_attributes(
                response, [getattr(c, "finish_reason", None) for c in choices]
            )
            self._record(end, usage=getattr(response, "usage", None), output=_output(choices))
        except Exception:
            log.debug("openai instrumentation: cannot record response", exc_info=True)

    def fail(self, exc: BaseException) -> None:
        """The request (or the stream) raised ``exc``."""
        try:
            self.attributes.update(error_attributes(exc))
            self._record(time.perf_counter(), usage=self.usage, output=self.text.value(),
                         error=(type(exc).__name__, str(exc)))  # fmt: skip
        except Exception:
            log.debug("openai instrumentation: cannot record error", exc_info=True)

    # -- streams -----------------------------------------------------------------------------
    def on_chunk(self, chunk: Any) -> bool:
        """One streamed chunk went past; ``True`` when it is the usage-only chunk that only
        exists because we asked for it (the user never sees it, as without llmpulse)."""
        try:
            if getattr(chunk, "usage", None) is not None:
                self.usage = chunk.usage
                if self.asked_usage and not getattr(chunk, "choices", None):
                    return True
            self.chunks += 1
            for choice in getattr(chunk, "choices", None) or ():
                delta = getattr(choice, "delta", None)
                content = getattr(delta, "content", None)
                if (content or getattr(delta, "tool_calls", None)) and self.first_token_at is None:
                    self.first_token_at = time.perf_counter()
                if content and getattr(choice, "index", 0) == 0:
                    self.text.add(content)
                    self.output_chars += len(content)
                if getattr(choice, "finish_reason", None):
                    self.attributes["gen_ai.response.finish_reasons"] = [choice.finish_reason]
            if getattr(chunk, "model", None):
                self.attributes["gen_ai.response.model"] = chunk.model
            if getattr(chunk, "id", None):
                self.attributes["gen_ai.response.id"] = chunk.id
        except Exception:
            log.debug("openai instrumentation: cannot read chunk", exc_info=True)
        return False

    def end_stream(self, *, consumed: bool) -> None:
        """The stream ended: exhausted (``consumed``), or closed / dropped early."""
        try:
            if not consumed:
                self.attributes["llmpulse.stream.closed_early"] = True
            self.attributes["llmpulse.stream.chunks"] = self.chunks
            self._record(time.perf_counter(), usage=self.usage, output=self.text.value())
        except Exception:
            log.debug("openai instrumentation: cannot record stream", exc_info=True)

    # -- recording ---------------------------------------------------------------------------
    def _estimate(self, output: Any) -> dict[str, int]:
        """Token counts from text length when the provider reported no usage (a stream that
        was not asked for it, closed early, or a server that ignores the option), so the call
        still counts in token and cost totals; marked ``USAGE_ESTIMATED_ATTRIBUTE``."""
        chars_in = chars(self.messages)
        chars_out = self.output_chars if self.stream else chars(output)
        if not chars_in and not chars_out:
            return {}
        self.attributes[USAGE_ESTIMATED_ATTRIBUTE] = _ESTIMATE_METHOD
        return {
            "input_tokens": -(-chars_in // _CHARS_PER_TOKEN),
            "output_tokens": -(-chars_out // _CHARS_PER_TOKEN),
        }

    def _tokens(self, usage: Any) -> dict[str, int]:
        """The token counts of the provider's ``usage`` object, by llmpulse column."""
        return _usage(usage)

    def _pieces(self) -> int:
        """How many streamed pieces of output went past: a token each, about, when the stream
        carried no usage (a chat stream's chunks)."""
        return self.chunks

    def _response_attributes(self, response: Any, finish_reasons: list[Any]) -> None:
        if getattr(response, "model", None):
            self.attributes["gen_ai.response.model"] = response.model
        if getattr(response, "id", None):
            self.attributes["gen_ai.response.id"] = response.id
        reasons = [r for r in finish_reasons if r]
        if reasons:
            self.attributes["gen_ai.response.finish_reasons"] = reasons

    def _record(
        self, end: float, *, usage: Any, output: Any, error: tuple[str, str] | None = None
    ) -> None:
        if self.done:
            return
        self.done = True
        tokens = self._tokens(usage)
        if usage is None and (error is None or self.output_chars):
            tokens = self._estimate(output)
        ttft_ms = None
        if self.first_token_at is not None:
            ttft_ms = (self.first_token_at - self.t0) * 1000.0
            generating = end - self.first_token_at
            produced = tokens.get("output_tokens") if usage is not None else None
            if produced is None and self._pieces():
                produced = self._pieces()
                self.attributes["llmpulse.tokens_per_second_estimated"] = True
            if produced and generating > 0:
                self.attributes["llmpulse.tokens_per_second"] = round(produced / generating, 3)
        token = current_span.set(self.parent)  # parent to where the call started
        try:
            _state.record_llm_call(
                self.model,
                input_tokens=tokens.get("input_tokens"),
                output_tokens=tokens.get("output_tokens"),
                cache_read_tokens=tokens.get("cache_read_tokens"),
                reasoning_tokens=tokens.get("reasoning_tokens"),
                latency_ms=(end - self.t0) * 1000.0,
                start_time=self.start,
                end_time=self.start + (end - self.t0),
                provider="openai",
                ttft_ms=ttft_ms,
                status="error" if error else "ok",
                error_type=error[0] if error else None,
                error_message=error[1] if error else None,
                input=self.messages,
                output=output,
                session_id=self.session_id or self.defaults.get("session_id"),
                user_id=self.user_id or self.defaults.get("user_id"),
                prompt_version=self.defaults.get("prompt_version"),
                name=f"chat {self.model}" if self.model else "chat",
                attributes={**self.defaults.get("attributes", {}), **self.attributes},
            )
        finally:
            current_span.reset(token)


class _EmbeddingsCall(ClientCall):
    """One ``embeddings.create`` being recorded; every method swallows its own failures."""

    library = "openai"

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ClientCall.__init__(self, args, kwargs)
        self.input = _embeddings.embedding_input(kwargs.get("input"))
        self.user_id = text_or_none(kwargs.get("user"))
        attributes = _embeddings.request_attributes(kwargs)
        attributes["gen_ai.provider.name"] = "openai"
        if self.model:
            attributes["gen_ai.request.model"] = self.model
        host = _host(args[0] if args else None)
        if host:
            attributes["server.address"] = host
        self.attributes = attributes

    def finish(self, response: Any) -> None:
        """The response arrived: its usage, model and how many vectors of which length."""
        try:
            end = time.perf_counter()
            if getattr(response, "model", None):
                self.attributes["gen_ai.response.model"] = response.model
            self.attributes.update(_embeddings.vector_attributes(getattr(response, "data", None)))
            usage = getattr(response, "usage", None)
            tokens = getattr(usage, "prompt_tokens", None)
            if type(tokens) is not int:
                tokens = _embeddings.estimated_input_tokens(self.input)
                if tokens is not None:
                    self.attributes[USAGE_ESTIMATED_ATTRIBUTE] = _ESTIMATE_METHOD
            self._record(end, tokens)
        except Exception:
            log.debug("openai instrumentation: cannot record embeddings", exc_info=True)

    def fail(self, exc: BaseException) -> None:
        """The request raised ``exc``."""
        try:
            self.attributes.update(error_attributes(exc))
            self._record(time.perf_counter(), None, (type(exc).__name__, str(exc)))
        except Exception:
            log.debug("openai instrumentation: cannot record error", exc_info=True)

    def _record(
        self, end: float, input_tokens: int | None, error: tuple[str, str] | None = None
    ) -> None:
        if self.done:
            return
        self.done = True
        token = current_span.set(self.parent)  # parent to where the call started
        try:
            _state.record_llm_call(
                self.model,
                input_tokens=input_tokens,
                latency_ms=(end - self.t0) * 1000.0,
                start_time=self.start,
                end_time=self.start + (end - self.t0),
                provider="openai",
                status="error" if error else "ok",
                error_type=error[0] if error else None,
                error_message=error[1] if error else None,
                input=self.input,
                session_id=self.defaults.get("session_id"),
                user_id=self.user_id or self.defaults.get("user_id"),
                prompt_version=self.defaults.get("prompt_version"),
                name=f"{_embeddings.OPERATION} {self.model}"
                if self.model
                else _embeddings.OPERATION,
                attributes={**self.defaults.get("attributes", {}), **self.attributes},
            )
        finally:
            current_span.reset(token)


def _no_stream(result: Any, call: ClientCall) -> None:
    """Embeddings never stream: whatever came back is the response."""
    call.finish(result)


def _host(resource: Any) -> str | None:
    host = getattr(getattr(getattr(resource, "_client", None), "base_url", None), "host", None)
    return host if isinstance(host, str) and host else None


def _request_attributes(
    resource: Any, kwargs: dict[str, Any], model: str | None, stream: bool
) -> dict[str, Any]:
    attributes: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
    add_request_params(attributes, kwargs, model, _REQUEST_ATTRIBUTES)
    stop = kwargs.get("stop")
    if isinstance(stop, str):
        attributes["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, list):
        attributes["gen_ai.request.stop_sequences"] = [str(s) for s in stop]
    if stream:
        attributes["llmpulse.stream"] = True
    host = _host(resource)
    if host:
        attributes["server.address"] = host
    return attributes


def _usage(usage: Any) -> dict[str, int]:
    if usage is None:
        return {}
    out: dict[str, int] = {}
    for field, value in (
        ("input_tokens", getattr(usage, "prompt_tokens", None)),
        ("output_tokens", getattr(usage, "completion_tokens", None)),
        (
            "cache_read_tokens",
            getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", None),
        ),
        (
            "reasoning_tokens",
            getattr(getattr(usage, "completion_tokens_details", None), "reasoning_tokens", None),
        ),
    ):
        if isinstance(value, int):
            out[field] = value
    return out


def _output(choices: list[Any]) -> Any:
    outputs = []
    for choice in choices:
        message = getattr(choice, "message", None)
        content = getattr(message, "content", None)
        tool_calls = getattr(message, "tool_calls", None)
        outputs.append(content if content is not None or not tool_calls else list(tool_calls))
    if not outputs:
        return None
    return outputs[0] if len(outputs) == 1 else outputs
