"""The process-wide client, the module-level recording functions, and exit/fork hooks.

``record_llm_call`` is the hot path: it captures its arguments, the time and the current span,
and appends one tuple to the active client's queue. Nothing else happens on the caller's
thread (see ``_batcher`` and ``_convert`` for where the rest happens).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmpulse._rows import MAX_LABEL_CHARS
from llmpulse.config import SdkConfig
from llmpulse.pricing import PriceTable
from llmpulse.sdk._client import DEFAULT_INSTRUMENTATIONS, Client, build_client, snapshot
from llmpulse.sdk._content import cut
from llmpulse.sdk._context import call_defaults, current
from llmpulse.sdk._convert import LLM
from llmpulse.sdk._spans import NOOP_SPAN, NoopSpan, SpanHandle
from llmpulse.sdk._stats import SdkStats

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from llmpulse.sdk._types import LlmCallFields

__all__ = [
    "flush",
    "get_client",
    "get_current_span",
    "init",
    "record_llm_call",
    "record_metric",
    "shutdown",
    "span",
]

log = logging.getLogger("llmpulse.sdk")

_lock = threading.RLock()
_default = Client(SdkConfig(enabled=False), exporter=None, initialised=False)
_client: Client = _default
_sink = _default._batcher  # what the hot path appends to: the active client's queue
_hooks_installed = False
_retired: list[Client] = []  # replaced clients whose last export had not finished
_get_current = current
_FORK_WAIT_SECONDS = 5.0  # longest a fork waits for an export in progress


def init(
    database_url: str | None = None,
    *,
    exporter: Any = None,
    sample_rate: float | None = None,
    redact: bool | Callable[[str], str] | None = None,
    max_content_chars: int | None = None,
    queue_size: int | None = None,
    batch_size: int | None = None,
    flush_interval: float | None = None,
    shutdown_timeout: float | None = None,
    service_name: str | None = None,
    prices: PriceTable | Mapping[str, Any] | str | Path | None = None,
    instrument: Iterable[str] | str | None = DEFAULT_INSTRUMENTATIONS,
    enabled: bool | None = None,
    stream_usage: bool | None = None,
    server_url: str | None = None,
    api_key: str | None = None,
    spool_dir: str | Path | None = None,
    max_spool_bytes: int | None = None,
    clock: Any = None,
    export_attempts: int = 4,
    retry_backoff: float = 0.5,
    max_queue_bytes: int = 64 << 20,
) -> Client:
    """Start recording: settings come from arguments, then LLMPULSE_* variables, then defaults.

    ``server_url`` (with ``api_key``) sends batches to an llmpulse server instead of writing a
    database, spooling them under ``spool_dir`` (at most ``max_spool_bytes``) while it cannot
    be reached. ``exporter`` replaces the store exporter (anything with ``export(batch)`` and
    ``shutdown()``); ``clock`` (an object with ``time()``) stamps records; ``export_attempts``
    and ``retry_backoff`` shape retries of failed batches; ``max_queue_bytes`` bounds the
    prompt/response text waiting in the queue; ``stream_usage=False`` stops the openai
    and litellm instrumentations from asking streams for their token usage. ``instrument``
    names the libraries to record: any of ``"openai"`` (the default), ``"anthropic"``,
    ``"litellm"`` and ``"langchain"``; one named here that is not installed gets a warning
    naming its pip extra (the default stays quiet: without openai there is nothing to record). Raises ``ConfigError`` for bad settings (the only place the SDK raises). Calling it again
    replaces the client: the old one is flushed and shut down.
    """
    global _client, _sink
    client, names = build_client(
        database_url, exporter=exporter, sample_rate=sample_rate, redact=redact,
        max_content_chars=max_content_chars, queue_size=queue_size, batch_size=batch_size,
        flush_interval=flush_interval, shutdown_timeout=shutdown_timeout,
        service_name=service_name, prices=prices, instrument=instrument, enabled=enabled,
        stream_usage=stream_usage, clock=clock, export_attempts=export_attempts, retry_backoff=retry_backoff,
        max_queue_bytes=max_queue_bytes, server_url=server_url, api_key=api_key,
        spool_dir=None if spool_dir is None else str(spool_dir), max_spool_bytes=max_spool_bytes,
    )  # fmt: skip
    with _lock:
        old, _client, _sink = _client, client, client._batcher
        _install_hooks()
    if old is not _default:
        old.shutdown(old.config.shutdown_timeout)
        if old._batcher.abandoned:  # an export still running: at exit, wait for it or say so
            _retired.append(old)
    _apply_instrumentation(
        names if client.enabled else (), warn_missing=instrument is not DEFAULT_INSTRUMENTATIONS
    )
    return client


def _apply_instrumentation(names: tuple[str, ...], *, warn_missing: bool = True) -> None:
    from llmpulse.sdk._client import INSTRUMENTATIONS
    from llmpulse.sdk.instrumentation._select import apply_instrumentation

    apply_instrumentation(names, INSTRUMENTATIONS, warn_missing=warn_missing)


def get_client() -> Client:
    """The client of the last ``init`` (a disabled one if ``init`` was never called)."""
    return _client


def record_llm_call(
    model: str | None,
    *,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    latency_ms: float | None = None,
    **fields: Unpack[LlmCallFields],
) -> None:
    """Record one LLM call, parented to the current span if any; never raises, never blocks.

    Other keyword fields: start_time, end_time (Unix seconds), provider, prompt_version,
    cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, status ("ok"/"error"),
    error_type, error_message, input, output, session_id, user_id, name, attributes, cost_usd.
    """
    # Only the few common fields are named parameters: every missing keyword-only parameter
    # costs a dict lookup per call in CPython, and this function must stay nearly free.
    try:
        b = _sink
        q = b.queue
        n = len(q)
        if n < b.capacity:
            p = _get_current()
            if p is not None and not p.sampled:
                return
            if type(model) is str and len(model) > MAX_LABEL_CHARS:  # held: cut it now
                model = cut(model, MAX_LABEL_CHARS)
            if fields:  # the rarer, slower path: text to bound, containers to copy
                fields = snapshot(fields, b)  # type: ignore[arg-type, assignment]
                if fields is None:  # over the text byte budget
                    b.overflow()
                    return
            q.append((LLM, b.now(), p, model, input_tokens, output_tokens, latency_ms, fields))
            if n == b.wake_at:
                b.wake()
        else:
            b.overflow()
    except Exception:  # never raise into user code
        log.debug("record_llm_call failed", exc_info=True)


def record_metric(
    name: str,
    value: float,
    *,
    labels: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    step: int | None = None,
    timestamp: float | None = None,
) -> None:
    """Record one metric point (name, value, labels, optional run id and step)."""
    _client.record_metric(name, value, labels=labels, run_id=run_id, step=step, timestamp=timestamp)


def span(name: str, *, kind: str = "span", **attributes: Any) -> SpanHandle | NoopSpan:
    """A span context manager (``with`` or ``async with``) that nests under the current span."""
    return _client.span(name, kind=kind, **attributes)


def get_current_span() -> SpanHandle | NoopSpan:
    """The open span of this thread or task, or a no-op handle (never ``None``)."""
    handle = _get_current()
    return NOOP_SPAN if handle is None else handle


_USING_FIELDS = ("prompt_version", "session_id", "user_id")


@contextmanager
def using(
    *,
    prompt_version: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    **attributes: Any,
) -> Iterator[None]:
    """Tag the llm calls that instrumentations record inside this block (nests; inner wins).

    >>> import llmpulse
    >>> with llmpulse.using(prompt_version="answer-v3", user_id="u-42"):
    ...     pass  # client.chat.completions.create(...) here carries both
    """
    outer = call_defaults.get() or {}
    merged = {**outer, "attributes": {**outer.get("attributes", {}), **attributes}}
    for key, value in zip(_USING_FIELDS, (prompt_version, session_id, user_id), strict=True):
        if value is not None:
            merged[key] = str(value)
    token = call_defaults.set(merged)
    try:
        yield
    finally:
        call_defaults.reset(token)


def flush(timeout: float | None = None) -> bool:
    """Wait (at most ``timeout`` seconds) until everything recorded so far is exported."""
    return _client.flush(timeout)


def stats() -> SdkStats:
    """The active client's accounting (``SdkStats``): recorded, exported, dropped by reason,
    queued, in flight, spooled and recovered; ``recorded == exported + dropped_total +
    queue_depth + in_flight + spooled`` at every moment."""
    return _client.stats()


def shutdown(timeout: float | None = None) -> bool:
    """Flush within ``timeout`` and stop the active client; later records are dropped."""
    return _client.shutdown(timeout)


# -- process lifecycle -------------------------------------------------------------------------
def _install_hooks() -> None:
    global _hooks_installed
    _install_sigterm()  # until it is installed: only the main thread may
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(
            before=_before_fork,
            after_in_parent=_after_fork_in_parent,
            after_in_child=_after_fork_in_child,
        )


def _at_exit() -> None:
    client = _client
    timeout = client.config.shutdown_timeout
    deadline = time.monotonic() + timeout
    client.shutdown(timeout, at_exit=True)
    for old in _retired:
        old._batcher.wait_at_exit(max(0.0, deadline - time.monotonic()))
    _retired.clear()


# -- SIGTERM ------------------------------------------------------------------------------------
# Every `docker stop`, `kill` and orchestrator stop sends SIGTERM, whose default action ends the
# process at once: no atexit, so every record still queued would be lost. The handler chains:
# it flushes (bounded by shutdown_timeout), then does what would have happened without it, the
# application's own handler or the default (the process still dies of SIGTERM). A handler the
# application installs later simply replaces it. Ignored SIGTERM, or a handler set outside
# Python, is left alone.
_sigterm_installed = False
_previous_sigterm: Any = None


def _install_sigterm() -> None:
    global _sigterm_installed, _previous_sigterm
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    try:
        previous = signal.getsignal(signal.SIGTERM)
        if previous is signal.SIG_IGN or previous is None:
            _sigterm_installed = True  # the application decided: leave it
            return
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError, AttributeError):  # no SIGTERM here, or not allowed
        log.debug("cannot install the SIGTERM handler", exc_info=True)
        return
    _previous_sigterm = previous
    _sigterm_installed = True


def _on_sigterm(signum: int, frame: Any) -> None:
    previous = _previous_sigterm
    if callable(previous):
        # The application's handler decides whether the process ends; if it does through
        # sys.exit, atexit shuts the client down.
        _off_main_thread(_client.flush, _client.config.shutdown_timeout)
        previous(signum, frame)
        return
    # The default action: flush and stop, then die of SIGTERM as the process would have.
    _off_main_thread(_at_exit, _client.config.shutdown_timeout)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _off_main_thread(work: Callable[..., Any], timeout: float) -> None:
    """Run ``work`` on a helper thread, waiting at most ``timeout`` (+1 s) for it.

    The handler runs on the main thread between two bytecodes, possibly inside a lock of the
    SDK; doing the work on another thread means such a lock costs the timeout, not a deadlock.
    """
    if not _client.enabled:
        return
    args = () if work is _at_exit else (timeout,)
    thread = threading.Thread(target=work, args=args, name="llmpulse-sigterm", daemon=True)
    try:
        thread.start()
    except RuntimeError:
        return
    thread.join(timeout + 1.0)


def _before_fork() -> None:
    client = _client
    if not client.enabled:
        return
    client._batcher.before_fork(min(client.config.shutdown_timeout, _FORK_WAIT_SECONDS))
    # multiprocessing children leave through os._exit, skipping atexit: ask multiprocessing
    # to run our flush in the child (util.Finalize) via its own after-fork registry.
    if not client._mp_registered and "multiprocessing" in sys.modules:
        try:
            import multiprocessing.util as mp_util

            mp_util.register_after_fork(client, _register_mp_finalizer)
            client._mp_registered = True
        except Exception:
            log.debug("cannot register with multiprocessing", exc_info=True)


def _after_fork_in_parent() -> None:
    client = _client
    if client.enabled:
        client._batcher.after_fork_in_parent()


def _after_fork_in_child() -> None:
    # The parent still exports what it queued; the child starts empty, with its own thread
    # started lazily on its first record, and its own exporter connections.
    client = _client
    if client.enabled:
        client._batcher.after_fork_in_child()


def _register_mp_finalizer(client: Client) -> None:
    import multiprocessing.util as mp_util

    mp_util.Finalize(None, _mp_child_exit, args=(client,), exitpriority=100)


def _mp_child_exit(client: Client) -> None:
    if client is _client:
        client.shutdown(client.config.shutdown_timeout)
