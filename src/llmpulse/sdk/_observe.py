"""``@observe``: a span around every call of a function (sync, async, generator, async generator).

The user's function always runs, even if tracing fails, and its exceptions propagate unchanged
(the same object, with its traceback). Generators get their span made current only while their
own code runs, so the consumer's code between two items is not attributed to them.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, TypeVar, cast, overload

from llmpulse.sdk import _state
from llmpulse.sdk._context import current_span
from llmpulse.sdk._spans import SpanHandle

__all__ = ["observe"]

log = logging.getLogger("llmpulse.sdk")

F = TypeVar("F", bound=Callable[..., Any])


@overload
def observe(name: F) -> F: ...
@overload
def observe(
    name: str | None = None,
    *,
    kind: str = "chain",
    capture_input: bool = True,
    capture_output: bool = True,
    attributes: dict[str, Any] | None = None,
) -> Callable[[F], F]: ...
def observe(
    name: Any = None,
    *,
    kind: str = "chain",
    capture_input: bool = True,
    capture_output: bool = True,
    attributes: dict[str, Any] | None = None,
) -> Any:
    """Decorate a function so each call is a span (usable as ``@observe`` or ``@observe(...)``).

    ``attributes`` are set on every call's span.
    """
    if callable(name):
        return _Observer(None, kind, capture_input, capture_output)(name)
    return _Observer(name, kind, capture_input, capture_output, attributes)


class _Observer:
    def __init__(
        self,
        name: str | None,
        kind: str,
        capture_input: bool,
        capture_output: bool,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        self.name, self.kind = name, kind
        self.capture_input, self.capture_output = capture_input, capture_output
        self.attributes = dict(attributes) if attributes else None

    def __call__(self, fn: F) -> F:
        name = str(
            self.name or getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "function")
        )
        params = _param_names(fn)
        ctx = _Call(name, self.kind, params if self.capture_input else None, self.capture_output)
        ctx.attributes = self.attributes
        if inspect.isasyncgenfunction(fn):
            wrapper: Any = _async_gen_wrapper(fn, ctx)
        elif inspect.iscoroutinefunction(fn):
            wrapper = _async_wrapper(fn, ctx)
        elif inspect.isgeneratorfunction(fn):
            wrapper = _gen_wrapper(fn, ctx)
        else:
            wrapper = _sync_wrapper(fn, ctx)
        return cast(F, functools.wraps(fn)(wrapper))


class _Call:
    """What every call of one decorated function shares; its methods never raise."""

    __slots__ = ("name", "kind", "params", "capture_output", "attributes")

    def __init__(
        self, name: str, kind: str, params: tuple[list[str], str] | None, capture_output: bool
    ) -> None:
        self.name, self.kind, self.params, self.capture_output = name, kind, params, capture_output
        self.attributes: dict[str, Any] | None = None

    def start(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], *, make_current: bool = True
    ) -> SpanHandle | None:
        try:
            client = _state._client
            if not client.enabled:
                return None
            attrs = self.attributes
            handle = SpanHandle(client, self.name, self.kind, dict(attrs) if attrs else {})
            if self.params is not None:
                handle.set_input(_inputs(self.params, args, kwargs))
            handle.start()
            if not make_current:
                current_span.reset(handle._token)
                handle._token = None
            return handle
        except Exception:
            log.debug("observe: could not start span %s", self.name, exc_info=True)
            return None

    def ok(self, handle: SpanHandle, result: Any) -> None:
        try:
            if self.capture_output and result is not None:
                handle.set_output(result)
            handle.end()
        except Exception:
            log.debug("observe: could not end span %s", self.name, exc_info=True)

    def error(self, handle: SpanHandle, exc: BaseException) -> None:
        try:
            if not isinstance(exc, GeneratorExit):
                handle.set_status_error(exc)
            handle.end()
        except Exception:
            log.debug("observe: could not end span %s", self.name, exc_info=True)


def _sync_wrapper(fn: Callable[..., Any], ctx: _Call) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        handle = ctx.start(args, kwargs)
        if handle is None:
            return fn(*args, **kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            ctx.error(handle, exc)
            raise
        ctx.ok(handle, result)
        return result

    return wrapper


def _async_wrapper(fn: Callable[..., Any], ctx: _Call) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        handle = ctx.start(args, kwargs)
        if handle is None:
            return await fn(*args, **kwargs)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            ctx.error(handle, exc)
            raise
        ctx.ok(handle, result)
        return result

    return wrapper


def _gen_wrapper(fn: Callable[..., Any], ctx: _Call) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        handle = ctx.start(args, kwargs, make_current=False)
        gen = fn(*args, **kwargs)
        if handle is None:
            return (yield from gen)
        count, to_send, to_throw = 0, None, None
        while True:
            token = current_span.set(handle)
            try:
                item = gen.send(to_send) if to_throw is None else gen.throw(to_throw)
            except StopIteration as stop:
                handle.set_attribute("llmpulse.items", count)
                ctx.ok(handle, stop.value)
                return stop.value
            except BaseException as exc:
                ctx.error(handle, exc)
                raise
            finally:
                _reset(token)
            count += 1
            to_send, to_throw = None, None
            try:
                to_send = yield item
            except GeneratorExit:  # the consumer stopped early: close ours, end the span ok
                gen.close()
                handle.set_attribute("llmpulse.items", count)
                ctx.ok(handle, None)
                raise
            except BaseException as exc:
                to_throw = exc

    return wrapper


def _async_gen_wrapper(fn: Callable[..., Any], ctx: _Call) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        handle = ctx.start(args, kwargs, make_current=False)
        agen = fn(*args, **kwargs)
        count, to_send, to_throw = 0, None, None
        while True:
            token = current_span.set(handle) if handle is not None else None
            try:
                item = await (agen.asend(to_send) if to_throw is None else agen.athrow(to_throw))
            except StopAsyncIteration:
                if handle is not None:
                    handle.set_attribute("llmpulse.items", count)
                    ctx.ok(handle, None)
                return
            except BaseException as exc:
                if handle is not None:
                    ctx.error(handle, exc)
                raise
            finally:
                _reset(token)
            count += 1
            to_send, to_throw = None, None
            try:
                to_send = yield item
            except GeneratorExit:
                await agen.aclose()
                if handle is not None:
                    handle.set_attribute("llmpulse.items", count)
                    ctx.ok(handle, None)
                raise
            except BaseException as exc:
                to_throw = exc

    return wrapper


def _reset(token: Any) -> None:
    if token is not None:
        try:  # noqa: SIM105 - on every span's end: a plain try costs nothing when it passes
            current_span.reset(token)
        except ValueError:
            pass


def _param_names(fn: Callable[..., Any]) -> tuple[list[str], str]:
    """The positional parameter names and the name of ``*args`` (or "args")."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return [], "args"
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    varargs = next((p.name for p in params if p.kind == p.VAR_POSITIONAL), "args")
    return positional, varargs


def _inputs(
    params: tuple[list[str], str], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Arguments by parameter name (``self``/``cls`` left out); serialized later, off-thread."""
    positional, varargs = params
    named: dict[str, Any] = {}
    for i, value in enumerate(args[: len(positional)]):
        if i == 0 and positional[0] in ("self", "cls"):
            continue
        named[positional[i]] = value
    if len(args) > len(positional):
        named[varargs] = list(args[len(positional) :])
    named.update(kwargs)
    return named
