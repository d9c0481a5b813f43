"""Which kind of failure an exception is, and what the provider said about waiting.

Classification is duck-typed (``status_code``, ``code``, ``response.headers``, class names) so
it covers the openai client, httpx, and anything shaped like them without importing them.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import re
import time
from collections.abc import Callable
from typing import Any

from llmpulse.errors import CircuitOpenError

__all__ = [
    "Classifier",
    "ErrorClass",
    "classify",
    "context_numbers",
    "retry_after_seconds",
    "status_of",
]


class ErrorClass(str, enum.Enum):
    """What went wrong, as far as recovery cares."""

    RATE_LIMIT = "rate_limit"  # 429: wait (Retry-After) and retry
    CONTEXT_LENGTH = "context_length"  # the prompt does not fit: shrink it and retry
    SERVER = "server_error"  # 5xx, overloaded, 409: retry, then fall back
    TIMEOUT = "timeout"  # no answer in time: retry with a longer timeout
    CONNECTION = "connection"  # could not reach the provider: retry, then fall back
    CIRCUIT_OPEN = "circuit_open"  # our own breaker refused the call: fall back
    NOT_RETRYABLE = "not_retryable"  # 400, 401, 403, 404, 422, bugs: raise at once, unchanged


# A user classifier returns an ErrorClass, or None to let the default decide.
Classifier = Callable[[BaseException], "ErrorClass | None"]

_CONTEXT_CODES = {"context_length_exceeded", "string_above_max_length"}
_CONTEXT_TEXT = re.compile(
    r"maximum context length|context window|context_length_exceeded|prompt is too long|too many tokens",
    re.IGNORECASE,
)
_TIMEOUT_NAMES = {"APITimeoutError", "TimeoutException", "ReadTimeout", "ConnectTimeout", "WriteTimeout",
                  "PoolTimeout", "Timeout"}  # fmt: skip
_CONNECTION_NAMES = {
    "APIConnectionError",
    "ConnectError",
    "RemoteProtocolError",
    "ReadError",
    "NetworkError",
}


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an error carries (``exc.status_code`` or ``exc.response.status_code``)."""
    for holder in (exc, getattr(exc, "response", None)):
        status = getattr(holder, "status_code", None)
        if isinstance(status, int) and not isinstance(status, bool):
            return status
    return None


def _code(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        return code
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("code"), str):
            return str(inner["code"])
    return None


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _message(exc: BaseException) -> str:
    try:
        return str(getattr(exc, "message", None) or exc)
    except Exception:  # a broken __str__ must not break recovery
        return ""


def _by_status(status: int, exc: BaseException) -> ErrorClass:
    if status == 429:
        return ErrorClass.RATE_LIMIT
    if status == 400 and (_code(exc) in _CONTEXT_CODES or _CONTEXT_TEXT.search(_message(exc))):
        return ErrorClass.CONTEXT_LENGTH
    if status in (408, 504):
        return ErrorClass.TIMEOUT
    if status == 409 or status >= 500:  # 409: the API's own "lock timeout, retry" answer
        return ErrorClass.SERVER
    return ErrorClass.NOT_RETRYABLE


def classify(exc: BaseException, custom: Classifier | None = None) -> ErrorClass:
    """Sort an exception into an ``ErrorClass``; a custom classifier is asked first."""
    if custom is not None:
        try:
            decided = custom(exc)
        except Exception:  # a faulty classifier falls back to the default
            decided = None
        if decided is not None:
            return ErrorClass(decided)
    if isinstance(exc, CircuitOpenError):
        return ErrorClass.CIRCUIT_OPEN
    status = status_of(exc)
    if status is not None:
        return _by_status(status, exc)
    names = _names(exc)
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)) or names & _TIMEOUT_NAMES:
        return ErrorClass.TIMEOUT
    if isinstance(exc, ConnectionError) or names & _CONNECTION_NAMES:
        return ErrorClass.CONNECTION
    if _code(exc) in _CONTEXT_CODES:
        return ErrorClass.CONTEXT_LENGTH
    return ErrorClass.NOT_RETRYABLE


def retry_after_seconds(exc: BaseException, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the provider asked to wait: ``retry-after-ms``, else ``retry-after`` (seconds or a date)."""
    headers: Any = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return max(0.0, float(millis) / 1000.0)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(str(value))
            return max(0.0, parsed.timestamp() - now())
    except (TypeError, ValueError, AttributeError, OverflowError):
        return None


_LIMIT = re.compile(r"maximum context length is (\d+)")
_USED = re.compile(r"(?:resulted in|you requested) (\d+) tokens")


def context_numbers(exc: BaseException) -> tuple[int | None, int | None]:
    """(context window, tokens sent) when the error message states them, as OpenAI's does."""
    message = _message(exc)
    limit, used = _LIMIT.search(message), _USED.search(message)
    return (int(limit.group(1)) if limit else None, int(used.group(1)) if used else None)
