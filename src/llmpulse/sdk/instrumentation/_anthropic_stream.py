"""Observe the ``messages.stream()`` helper of the anthropic client.

``messages.stream(...)`` (and ``beta.messages.stream(...)``) returns a manager that sends the
request only on ``__enter__`` (a callable for the sync client, an un-awaited coroutine for the
async one), then wraps the raw event stream in its ``MessageStream`` (``BetaMessageStream``). The manager's request is replaced, so the recording
starts when the request does and sees the raw events the helper reads (through the same
stream observer as ``create(stream=True)``); what the user gets is unchanged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from llmpulse.sdk.instrumentation._openai_stream import observe_async_stream, observe_stream
from llmpulse.sdk.instrumentation._shared import MARK, Begin

__all__ = ["wrap_stream"]

log = logging.getLogger("llmpulse.sdk")


def wrap_stream(original: Callable[..., Any], begin: Begin, is_async: bool) -> Callable[..., Any]:
    """``messages.stream(...)`` returns a manager that sends the request on ``__enter__``: the
    manager's request is wrapped, so the span starts when the request does and sees the raw
    events the helper's ``MessageStream`` reads."""

    @functools.wraps(original)
    def stream(self: Any, *args: Any, **kwargs: Any) -> Any:
        manager = original(self, *args, **kwargs)
        try:
            name = _request_attribute(manager)
            wrap = _async_request if is_async else _sync_request
            setattr(manager, name, wrap(getattr(manager, name), begin, self, kwargs))
        except Exception:  # an anthropic version whose manager looks different: not recorded
            log.debug("anthropic instrumentation: cannot observe messages.stream()", exc_info=True)
        return manager

    setattr(stream, MARK, True)
    return stream


def _request_attribute(manager: Any) -> str:
    """The manager's private request attribute, mangled with the name of the class that sets it
    (``MessageStreamManager``, ``AsyncMessageStreamManager`` or their ``Beta`` twins)."""
    for cls in type(manager).__mro__:
        name = f"_{cls.__name__.lstrip('_')}__api_request"
        if name in vars(manager):
            return name
    raise AttributeError(f"{type(manager).__name__} keeps no __api_request")


def _sync_request(
    request: Callable[[], Any], begin: Begin, resource: Any, kwargs: dict[str, Any]
) -> Any:
    def send() -> Any:
        call = begin((resource,), {**kwargs, "stream": True})
        if call is None:
            return request()
        try:
            raw = request()
        except BaseException as exc:
            call.fail(exc)
            raise
        return observe_stream(raw, call)

    return send


def _async_request(request: Any, begin: Begin, resource: Any, kwargs: dict[str, Any]) -> Any:
    async def send() -> Any:
        call = begin((resource,), {**kwargs, "stream": True})
        if call is None:
            return await request
        try:
            raw = await request
        except BaseException as exc:
            call.fail(exc)
            raise
        return observe_async_stream(raw, call)

    # anthropic keeps the request as an un-awaited coroutine until ``__aenter__``; so do we.
    return send()
