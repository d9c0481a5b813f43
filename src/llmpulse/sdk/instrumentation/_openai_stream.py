"""Observe an openai ``Stream`` / ``AsyncStream`` in place, without changing what it yields.

The stream object the user gets is the one openai returned (same type, same methods): its
private iterator is wrapped so each chunk is looked at on its way through, and ``close`` is
wrapped so an early close ends the span. A stream that is dropped unread is recorded when it
is garbage collected.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

__all__ = ["observe_async_stream", "observe_stream"]

log = logging.getLogger("llmpulse.sdk")


def observe_stream(stream: Any, call: Any) -> Any:
    """Wrap a sync stream's iterator and ``close`` so ``call`` sees every chunk and the end."""
    try:
        inner = stream._iterator
        stream._iterator = _chunks(inner, call)
        original_close = stream.close

        def close() -> None:
            try:
                original_close()
            finally:
                call.end_stream(consumed=False)

        stream.close = close
        weakref.finalize(stream, call.end_stream, consumed=False)
    except Exception:  # an openai version without _iterator: record what we know now
        log.debug("openai instrumentation: cannot observe this stream", exc_info=True)
        call.end_stream(consumed=False)
    return stream


def observe_async_stream(stream: Any, call: Any) -> Any:
    """The async twin of ``observe_stream``."""
    try:
        inner = stream._iterator
        stream._iterator = _achunks(inner, call)
        original_close = stream.close

        async def close() -> None:
            try:
                await original_close()
            finally:
                call.end_stream(consumed=False)

        stream.close = close
        weakref.finalize(stream, call.end_stream, consumed=False)
    except Exception:
        log.debug("openai instrumentation: cannot observe this stream", exc_info=True)
        call.end_stream(consumed=False)
    return stream


def _chunks(inner: Iterator[Any], call: Any) -> Iterator[Any]:
    try:
        for chunk in inner:
            if not call.on_chunk(chunk):
                yield chunk
    except GeneratorExit:
        call.end_stream(consumed=False)
        close = getattr(inner, "close", None)
        if close is not None:
            close()
        raise
    except BaseException as exc:
        call.fail(exc)
        raise
    call.end_stream(consumed=True)


async def _achunks(inner: AsyncIterator[Any], call: Any) -> AsyncIterator[Any]:
    try:
        async for chunk in inner:
            if not call.on_chunk(chunk):
                yield chunk
    except GeneratorExit:
        call.end_stream(consumed=False)
        aclose = getattr(inner, "aclose", None)
        if aclose is not None:
            await aclose()
        raise
    except BaseException as exc:
        call.fail(exc)
        raise
    call.end_stream(consumed=True)
