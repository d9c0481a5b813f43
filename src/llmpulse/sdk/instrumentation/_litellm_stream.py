"""Observe a LiteLLM ``CustomStreamWrapper`` in place, without changing what it yields.

``for chunk in stream`` calls ``type(stream).__next__``, so the wrapper's class is swapped for a
subclass (made once per class) whose ``__next__`` / ``__anext__`` show each chunk to the call
and tell it when the stream ends or fails: the user keeps the same object, of a type that is
still a ``CustomStreamWrapper``. A stream dropped unread is recorded when it is collected.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["observe_stream_wrapper"]

_observed_types: dict[type, type] = {}


def observe_stream_wrapper(stream: Any, call: Any) -> bool:
    """Make ``stream`` (a ``CustomStreamWrapper``) report its chunks to ``call``: its class is
    swapped for a subclass that looks at each chunk, so it stays the same object and type."""
    cls = type(stream)
    if not (hasattr(cls, "__next__") and hasattr(cls, "__anext__")):
        return False
    observed = _observed_types.get(cls)
    if observed is None:
        observed = _observed_types[cls] = _observed_class(cls)
    stream._llmpulse_call = call
    stream.__class__ = observed
    weakref.finalize(stream, call.end_stream, consumed=False)
    return True


def _observed_class(cls: type) -> type:
    """A subclass of ``cls`` whose ``__next__`` / ``__anext__`` show each chunk to the call."""
    base_next, base_anext = cls.__next__, cls.__anext__  # type: ignore[attr-defined]

    def __next__(self: Any) -> Any:
        return _next_chunk(self, base_next)

    async def __anext__(self: Any) -> Any:
        return await _anext_chunk(self, base_anext)

    namespace = {"__next__": __next__, "__anext__": __anext__, "__module__": cls.__module__}
    return type(cls.__name__, (cls,), namespace)


def _next_chunk(stream: Any, base_next: Callable[[Any], Any]) -> Any:
    call = stream._llmpulse_call
    while True:
        try:
            chunk = base_next(stream)
        except StopIteration:
            call.end_stream(consumed=True)
            raise
        except BaseException as exc:
            call.fail(exc)
            raise
        if not call.on_chunk(chunk):
            return chunk


async def _anext_chunk(stream: Any, base_anext: Callable[[Any], Any]) -> Any:
    call = stream._llmpulse_call
    while True:
        try:
            chunk = await base_anext(stream)
        except StopAsyncIteration:
            call.end_stream(consumed=True)
            raise
        except BaseException as exc:
            call.fail(exc)
            raise
        if not call.on_chunk(chunk):
            return chunk
