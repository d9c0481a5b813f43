"""Helpers the client instrumentations (openai, anthropic, litellm) share.

``wrap_create`` / ``wrap_acreate`` build the one wrapper all three put around a client call,
and ``ClientCall`` is what each recorded call notes as it starts; a subclass per client reads
that client's request, response and stream.
"""

from __future__ import annotations

import functools
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

from llmpulse.sdk import _state
from llmpulse.sdk._context import call_defaults, current, current_span

__all__ = [
    "MARK", "Begin", "ClientCall", "Observe", "TextCollector", "add_request_params", "chars",
    "parsed", "text_or_none", "wrap_acreate", "wrap_create",
]  # fmt: skip

log = logging.getLogger("llmpulse.sdk")

MARK = "__llmpulse_wrapped__"  # set on every wrapper, so instrumenting twice wraps once

_C = TypeVar("_C", bound="ClientCall")
Begin = Callable[[tuple[Any, ...], dict[str, Any]], "ClientCall | None"]
Observe = Callable[[Any, Any], Any]


def wrap_create(original: Callable[..., Any], begin: Begin, observe: Observe) -> Callable[..., Any]:
    """``original`` recording every call through ``begin(args, kwargs)`` (``None``: not
    recorded): a response is ``finish``-ed, a stream handed to ``observe(stream, call)``, an
    exception ``fail``-ed and re-raised unchanged. ``original`` runs under ``call.scope`` (a span
    of the call's own) when it has one."""

    @functools.wraps(original)
    def create(*args: Any, **kwargs: Any) -> Any:
        call = begin(args, kwargs)
        if call is None:
            return original(*args, **kwargs)
        kwargs = call.request(kwargs)
        scope = call.scope
        token = None if scope is None else current_span.set(scope)
        try:
            result = original(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            if token is not None:
                current_span.reset(token)
        if call.stream:
            observe(parsed(result), call)
        else:
            call.finish(parsed(result))
        return result

    setattr(create, MARK, True)
    return create


def wrap_acreate(
    original: Callable[..., Any], begin: Begin, observe: Observe
) -> Callable[..., Any]:
    """The async twin of ``wrap_create``."""

    @functools.wraps(original)
    async def create(*args: Any, **kwargs: Any) -> Any:
        call = begin(args, kwargs)
        if call is None:
            return await original(*args, **kwargs)
        kwargs = call.request(kwargs)
        scope = call.scope
        token = None if scope is None else current_span.set(scope)
        try:
            result = await original(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            if token is not None:
                current_span.reset(token)
        if call.stream:
            observe(parsed(result), call)
        else:
            call.finish(parsed(result))
        return result

    setattr(create, MARK, True)
    return create


class ClientCall(ABC):
    """One client call being recorded: what every instrumentation notes as it starts.

    A subclass reads its client's request in ``__init__`` (``args`` are the wrapped call's
    positional arguments, the resource first for a client method) and records through
    ``finish``, ``fail``, ``on_chunk`` and ``end_stream``, each swallowing its own failures.
    Subclasses call ``ClientCall.__init__`` by name: ``super()`` costs ~0.1 µs more, on
    every recorded call.
    """

    library = "client"  # names the instrumentation in its debug logs

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # The client's clock (time.time unless init(clock=...)) dates the span; perf_counter
        # times it, so a clock that jumps cannot make a latency negative.
        client = _state._client
        self.start = client._now()
        self.t0 = time.perf_counter()
        self.parent = current()
        self.scope: Any = None  # the span the wrapped call runs under; None: the caller's
        self.defaults = call_defaults.get() or {}
        self.model = text_or_none(kwargs.get("model"))
        self.stream = kwargs.get("stream") is True
        self.done = False
        # streaming state (a non-streamed call's text is its response's: nothing to collect)
        self.first_token_at: float | None = None
        self.chunks = 0
        self.text = TextCollector(client.config) if self.stream else _NO_TEXT

    @classmethod
    def begin(cls: type[_C], args: tuple[Any, ...], kwargs: dict[str, Any]) -> _C | None:
        """The call's recording, or ``None`` when it is not recorded (the client is off, an
        open llm span already counts it, or starting failed)."""
        try:
            if not _state._client.enabled:
                return None
            parent = current()
            if parent is not None and parent.kind == "llm" and parent.end_time == 0.0:
                return None  # an open llm span (LangChain's run, LiteLLM's call) counts this call
            return cls(args, kwargs)
        except Exception:
            log.debug("%s instrumentation: cannot start recording", cls.library, exc_info=True)
            return None

    def request(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The arguments to send (unchanged unless a client asks for more)."""
        return kwargs

    @abstractmethod
    def finish(self, response: Any) -> None:
        """A non-streamed response arrived."""

    @abstractmethod
    def fail(self, exc: BaseException) -> None:
        """The request (or the stream) raised ``exc``."""


class TextCollector:
    """Streamed response text, kept up to the content limit (the rest is only counted)."""

    def __init__(self, config: Any) -> None:
        self.keep = not config.redact
        self.limit = config.max_content_chars + 1
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def add(self, text: str) -> None:
        if not self.keep:
            return
        room = self.limit - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))

    def value(self) -> Any:
        if not self.parts:
            return None
        from llmpulse.sdk._content import PartialText

        text = PartialText("".join(self.parts))
        text.dropped_chars = self.dropped
        return text


class _NoText(TextCollector):
    """The collector of every non-streamed call: it keeps nothing, so it can be shared."""

    def __init__(self) -> None:
        self.keep = False
        self.limit = 0
        self.parts = []
        self.size = 0
        self.dropped = 0


_NO_TEXT = _NoText()


_TEXT_TYPES = (None, "text", "message", "input_text", "output_text")


def chars(value: Any) -> int:
    """Characters of text in messages, content parts or an answer (tool calls not counted);
    the Responses API's message items and ``input_text`` / ``output_text`` parts are text too."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        if value.get("type") not in _TEXT_TYPES:
            return 0
        return chars(value.get("content")) + chars(value.get("text"))
    if isinstance(value, (list, tuple)):
        return sum(chars(v) for v in value)
    return 0


def parsed(result: Any) -> Any:
    """What ``with_raw_response`` wraps (the SDKs cache it, so the caller gets the same object).

    openai's is a ``LegacyAPIResponse``; anthropic 2's an ``APIResponse``, which is parsed only
    once its body was read: a ``with_streaming_response`` body belongs to the caller.
    """
    name = type(result).__name__
    if name != "LegacyAPIResponse" and not (
        name == "APIResponse"
        and getattr(getattr(result, "http_response", None), "is_closed", False)
    ):
        return result
    try:
        return result.parse()
    except Exception:
        return result


def error_attributes(exc: BaseException) -> dict[str, Any]:
    """What a failed client call records of ``exc``: the HTTP status when it carries one, and
    the class name as ``error.type``."""
    attributes: dict[str, Any] = {}
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        attributes["http.response.status_code"] = status
    attributes["error.type"] = type(exc).__name__
    return attributes


def add_request_params(
    attributes: dict[str, Any], kwargs: dict[str, Any], model: str | None, params: dict[str, str]
) -> None:
    """Put the requested ``model`` and the request's scalar parameters into ``attributes``:
    ``params`` maps a keyword of the call to its attribute (a bool, a list or ``None`` is left
    out: the attribute is a number or text)."""
    if model:
        attributes["gen_ai.request.model"] = model
    for key, name in params.items():
        value = kwargs.get(key)
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            attributes[name] = value


def text_or_none(value: Any) -> str | None:
    """``value`` if it is a non-empty string, else ``None``."""
    return value if isinstance(value, str) and value else None
