"""Span handles: what ``llmpulse.span()`` yields and ``get_current_span()`` returns.

A handle lives on the caller's thread while its span is open. Ending it puts the handle itself
on the export queue; the export thread turns it into a ``schema.Span``. After ``end()`` every
setter is a no-op, so the export thread never reads a handle that is still changing. No method
raises: a bad attribute is logged once and ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llmpulse._rows import (
    MAX_ATTRIBUTES_CHARS,
    MAX_EVENTS,
    MAX_EVENTS_CHARS,
    MAX_LABEL_CHARS,
    MAX_MESSAGE_CHARS,
)
from llmpulse.schema import BRANCH_ATTRIBUTE, SpanEvent, SpanStatus
from llmpulse.sdk._content import (
    ITEM_OVERHEAD,
    bounded,
    bounded_attributes,
    cut,
    text_size,
)
from llmpulse.sdk._context import (
    current,
    current_span,
    new_span_id,
    new_trace_id,
    span_hex,
    trace_hex,
    trace_sampled,
)

if TYPE_CHECKING:
    from llmpulse.sdk._client import Client

__all__ = ["NOOP_SPAN", "NoopSpan", "SpanHandle", "SpanRecord"]

log = logging.getLogger("llmpulse.sdk")

_CREATED, _OPEN, _ENDED = 0, 1, 2
_OK = SpanStatus.OK.value  # an enum member's .value is a Python-level descriptor: read once


class SpanHandle:
    """An open span: add attributes, events, errors, model and usage, then end it.

    >>> import llmpulse
    >>> with llmpulse.span("retrieve", kind="retriever", top_k=5) as s:
    ...     s.set_attribute("hits", 3)
    """

    __slots__ = (
        "_client", "name", "kind", "_trace", "_span", "_parent", "start_time", "end_time",
        "attributes", "events", "status", "error_type", "error_message", "fields", "sampled",
        "_token", "_state", "text_bytes", "_event_bytes", "_dropped_events", "attributes_size",
        "_inner",
    )  # fmt: skip

    attributes_checked = False  # a handle's attributes are checked by the converter (records')

    def __init__(self, client: Client, name: str, kind: str, attributes: dict[str, Any]) -> None:
        self._client = client
        self.name = name
        self.kind = kind
        self.attributes = attributes
        self.events: list[SpanEvent] | tuple[SpanEvent, ...] = ()  # a list from the first event
        self.status = _OK
        self.error_type: str | None = None
        self.error_message: str | None = None
        self.fields: dict[str, Any] | None = None  # llm columns (model, tokens, input, ...)
        self._trace = 0
        self._span = 0
        self._parent = 0
        self.start_time = 0.0
        self.end_time = 0.0
        self.sampled = False
        self._token: Any = None
        self._state = _CREATED
        # Text held (prompt, response, attributes, events, ...), counted in the queue's byte
        # budget: prompt and response as they are set, the rest when the span ends.
        self.text_bytes = 0
        self._event_bytes = 0
        self._dropped_events = 0
        # The bytes ``attributes`` count in the budget, when the recorder that built them
        # measured them as ``bounded_attributes`` would (text and scalar values, none over a
        # cap); -1: measured at the end. Any later ``set_attribute`` makes it -1 again.
        self.attributes_size = -1
        # What is current inside this span when an integration tracks it instead of the
        # context variable (``_context.current`` calls it with this handle): None for most.
        self._inner: Callable[[SpanHandle], SpanHandle] | None = None

    @classmethod
    def adopt(cls, client: Client, record: SpanRecord) -> SpanHandle:
        """An open handle for ``record``'s span, not yet ended: the same ids, start and
        attributes (the same dict), for a span that turns out to need what only a handle
        does (an error, an event, a setter, being the current span)."""
        h = cls(client, record.name, record.kind, record.attributes)
        h._trace, h._span, h._parent = record._trace, record._span, record._parent
        h.sampled, h.start_time, h.fields = record.sampled, record.start_time, record.fields
        h.attributes_size = record.attributes_size
        h._state = _OPEN
        return h

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> SpanHandle:
        """Open the span under the current one (or as a new trace) and make it current."""
        if self._state != _CREATED:
            return self
        client = self._client
        parent = current()
        if parent is not None:
            self._trace, self._parent, self.sampled = parent._trace, parent._span, parent.sampled
        else:
            self._trace = new_trace_id()
            self.sampled = trace_sampled(self._trace, client._threshold)
            if not self.sampled:
                client._batcher.count_sampled_out()
        self._span = new_span_id()
        self.start_time = client._now()
        self._state = _OPEN
        self._token = current_span.set(self)
        return self

    def open(
        self, parent: SpanHandle | SpanRecord | None, start_time: float | None = None
    ) -> SpanHandle:
        """Open the span under ``parent`` (a new trace when ``None``) without making it current.

        For recorders whose start and end arrive as separate callbacks (LangChain runs), maybe
        in different threads or contexts, where a ContextVar token could not be reset.
        """
        if self._state != _CREATED:
            return self
        client = self._client
        if parent is not None:
            self._trace, self._parent, self.sampled = parent._trace, parent._span, parent.sampled
        else:
            self._trace = new_trace_id()
            self.sampled = trace_sampled(self._trace, client._threshold)
            if not self.sampled:
                client._batcher.count_sampled_out()
        self._span = new_span_id()
        self.start_time = client._now() if start_time is None else start_time
        self._state = _OPEN
        return self

    def end(self, end_time: float | None = None) -> None:
        """Close the span and hand it to the export queue (once; later calls do nothing)."""
        if self._state != _OPEN:
            return
        self._state = _ENDED
        self.end_time = self._client._now() if end_time is None else end_time
        if self.sampled:
            try:
                _bound(self, self._client._batcher.max_chars)
            except Exception:  # never raise into user code; the export thread checks again
                log.debug("bounding span failed", exc_info=True)
        if self._token is not None:
            try:  # noqa: SIM105 - on every span's end: cheaper than contextlib.suppress
                current_span.reset(self._token)
            except ValueError:  # ended in another context than it started in (another task)
                pass
            self._token = None
        if self.sampled:
            self._client._batcher.put(self, self.text_bytes)

    def __enter__(self) -> SpanHandle:
        return self.start()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and not isinstance(exc, GeneratorExit):
            self.set_status_error(exc)
        self.end()

    async def __aenter__(self) -> SpanHandle:
        return self.start()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- identity --------------------------------------------------------------------------
    @property
    def trace_id(self) -> str | None:
        """The trace id (32 hex digits), or ``None`` before the span started."""
        return trace_hex(self._trace) if self._trace else None

    @property
    def span_id(self) -> str | None:
        """The span id (16 hex digits), or ``None`` before the span started."""
        return span_hex(self._span) if self._span else None

    @property
    def parent_id(self) -> str | None:
        """The parent span's id, or ``None`` for a trace's root span."""
        return span_hex(self._parent) if self._parent else None

    @property
    def is_recording(self) -> bool:
        """Whether what is set on this handle will be exported (open and sampled)."""
        return self._state == _OPEN and self.sampled

    # -- setters ---------------------------------------------------------------------------
    def set_attribute(self, key: str, value: Any) -> None:
        """Set one free attribute (``gen_ai.*`` names also fill the matching column)."""
        if self._state == _ENDED:
            return
        try:
            self.attributes[str(key)] = value
            self.attributes_size = -1
        except Exception:  # never raise into user code
            _bad("attribute", key)

    def set_measured_attribute(self, key: str, value: str) -> None:
        """``set_attribute`` for a recorder's own text attribute, keeping ``attributes_size``
        (when it is known) current: one length instead of measuring every attribute again at
        the end. ``key`` and ``value`` must be ``str``."""
        if self._state == _ENDED:
            return
        _add_measured(self, key, value, self._client._batcher.max_chars)

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        """Set several free attributes at once."""
        try:
            for key, value in attributes.items():
                self.set_attribute(key, value)
        except Exception:
            _bad("attributes", attributes)

    def add_event(self, name: str, **attributes: Any) -> None:
        """Record that something happened now inside this span (a retry, a fallback, ...)."""
        if self._state == _ENDED:
            return
        try:
            limit = self._client._batcher.max_chars
            name = cut(str(name), MAX_LABEL_CHARS)
            kept, size = bounded_attributes(attributes, limit, MAX_EVENTS_CHARS)
            size += len(name) + ITEM_OVERHEAD
            events = self.events
            if len(events) >= MAX_EVENTS or self._event_bytes + size > MAX_EVENTS_CHARS:
                self._dropped_events += 1  # said by attribute llmpulse.dropped_events
                return
            if not isinstance(events, list):
                self.events = events = []
            self._event_bytes += size
            events.append(SpanEvent(name, self._client._now(), kept))
        except Exception:
            _bad("event", name)

    def set_status_error(
        self, error: BaseException | str, *, error_type: str | None = None
    ) -> None:
        """Mark the span failed, from an exception (its class names the type) or a message."""
        if self._state == _ENDED:
            return
        self.status = SpanStatus.ERROR.value
        try:
            if isinstance(error, BaseException):
                self.error_type = cut(error_type or type(error).__name__, MAX_LABEL_CHARS)
            elif error_type:
                self.error_type = cut(error_type, MAX_LABEL_CHARS)
            self.error_message = cut(str(error), MAX_MESSAGE_CHARS)
        except Exception:  # str(exc) itself can fail
            self.error_message = f"<unprintable {type(error).__name__}>"

    def set_branch(self, value: Any) -> None:
        """Record which way a branch decision went."""
        self.set_attribute(BRANCH_ATTRIBUTE, value)

    def set_model(
        self, model: str | None, *, provider: str | None = None, prompt_version: str | None = None
    ) -> None:
        """Set the model (and optionally provider and prompt version) of an llm span."""
        self._set_fields(model=model, provider=provider, prompt_version=prompt_version)

    def set_usage(
        self,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        *,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        cost_usd: float | None = None,
    ) -> None:
        """Set token counts (input includes cache tokens, output includes reasoning) and cost."""
        self._set_fields(
            input_tokens=input_tokens, output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens, cache_write_tokens=cache_write_tokens,
            reasoning_tokens=reasoning_tokens, cost_usd=cost_usd,
        )  # fmt: skip

    def set_input(self, value: Any) -> None:
        """Set the prompt / input (subject to redaction and truncation)."""
        self._set_text("input", value)

    def set_output(self, value: Any) -> None:
        """Set the response / output (subject to redaction and truncation)."""
        self._set_text("output", value)

    def _set_text(self, key: str, value: Any) -> None:
        sink = self._client._batcher
        if sink.redact or value is None:
            return
        value = bounded(value, sink.max_chars)
        self.text_bytes += text_size(value)
        self._set_fields(**{key: value})

    def set_session(self, session_id: str | None = None, user_id: str | None = None) -> None:
        """Tie the span to a conversation session and/or an end user."""
        self._set_fields(session_id=session_id, user_id=user_id)

    def set_ttft(self, ttft_ms: float) -> None:
        """Set the time to first token of a streamed llm call, in milliseconds."""
        self._set_fields(ttft_ms=ttft_ms)

    def _set_fields(self, **values: Any) -> None:
        if self._state == _ENDED:
            return
        if self.fields is None:
            self.fields = {}
        for key, value in values.items():
            if value is not None:
                self.fields[key] = value


def _add_measured(span: SpanHandle | SpanRecord, key: str, value: str, limit: int) -> None:
    span.attributes[key] = value
    size = span.attributes_size
    if size >= 0:
        n = len(value)
        span.attributes_size = (
            size + n + len(key) + ITEM_OVERHEAD
            if n <= limit and len(key) <= MAX_LABEL_CHARS
            else -1
        )


def _bound(span: SpanHandle | SpanRecord, limit: int) -> None:
    """Cut what an ended span holds to its caps and count it in ``text_bytes``."""
    name = span.name
    if type(name) is str and len(name) > MAX_LABEL_CHARS:
        span.name = name = cut(name, MAX_LABEL_CHARS)
    size = span.text_bytes + span._event_bytes + (len(name) if type(name) is str else 0)
    if span.error_message is not None:
        size += len(span.error_message)
    if span._dropped_events:
        span.attributes["llmpulse.dropped_events"] = span._dropped_events
        span.attributes_size = -1
    if span.attributes:
        n = span.attributes_size
        if n < 0 or n > MAX_ATTRIBUTES_CHARS:
            span.attributes, n = bounded_attributes(span.attributes, limit, owned=True)
        size += n
    fields = span.fields
    if fields:
        for key, value in fields.items():
            if type(value) is str and key != "input" and key != "output":  # counted
                if len(value) > MAX_LABEL_CHARS:
                    value = fields[key] = cut(value, MAX_LABEL_CHARS)
                size += len(value)
    span.text_bytes = size


class SpanRecord:
    """A span an integration records straight from its callbacks, without a ``SpanHandle``.

    It holds what the export thread's converter reads, each field set once, and ends ok with
    no events: a span that fails, gets an event or must be current takes a handle instead
    (``SpanHandle.adopt``). A LangGraph graph of trivial nodes records one per node, where a
    handle's two dozen fields, its setters and the context variable cost a measurable part of
    LangGraph's own time per node (docs/benchmarks.md).

    ``attributes_size``: the bytes ``attributes`` count in the queue's budget, measured by
    the recorder as ``bounded_attributes`` would, or -1 (measured at the end).
    """

    __slots__ = (
        "name", "kind", "attributes", "fields", "start_time", "end_time", "_trace", "_span",
        "_parent", "sampled", "attributes_size", "text_bytes",
    )  # fmt: skip

    # Whether its recorder checked that ``attributes`` are storable as they are (text keys,
    # plain text within the cap, ints): the converter then skips its own check.
    attributes_checked = False
    # What a record never has (a span with any of them takes a handle).
    events: tuple[SpanEvent, ...] = ()
    status = _OK
    error_type: str | None = None
    error_message: str | None = None
    _event_bytes = 0
    _dropped_events = 0

    def __init__(
        self, name: str, kind: str, attributes: dict[str, Any], attributes_size: int,
        parent: Any, start_time: float,
    ) -> None:  # fmt: skip
        """Open under ``parent`` (a span or record: its ``_trace``, ``_span``, ``sampled``)."""
        self.name, self.kind, self.attributes = name, kind, attributes
        self.attributes_size = attributes_size
        self.fields: dict[str, Any] | None = None
        self._trace, self._parent, self.sampled = parent._trace, parent._span, parent.sampled
        self._span = new_span_id()
        self.start_time = start_time
        self.end_time = 0.0
        self.text_bytes = 0

    def finish(self) -> None:
        """Complete the record from what its recorder kept, on the export thread, before it is
        converted (nothing for a plain record). Must not raise."""

    def end(self, client: Client) -> None:
        """Date the end and hand the record to the export queue (when its trace is kept)."""
        self.end_time = client._now()
        if self.sampled:
            sink = client._batcher
            try:
                _bound(self, sink.max_chars)
            except Exception:  # never raise into user code; the export thread checks again
                log.debug("bounding span failed", exc_info=True)
            sink.put(self, self.text_bytes)


class NoopSpan:
    """The handle returned when nothing is recording: every method accepts and ignores."""

    __slots__ = ()
    trace_id = None
    span_id = None
    parent_id = None
    is_recording = False
    sampled = False
    _trace = 0
    _span = 0

    def start(self) -> NoopSpan:
        """Do nothing."""
        return self

    def open(self, *args: Any, **kwargs: Any) -> NoopSpan:
        """Do nothing."""
        return self

    def end(self, end_time: float | None = None) -> None:
        """Do nothing."""

    def __enter__(self) -> NoopSpan:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    async def __aenter__(self) -> NoopSpan:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        # set_attribute, add_event, set_usage, ...: accept anything, do nothing.
        if name.startswith("set_") or name == "add_event":
            return _ignore
        raise AttributeError(name)


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None


NOOP_SPAN = NoopSpan()

_warned: set[str] = set()


def _bad(what: str, value: Any) -> None:
    if what not in _warned:
        _warned.add(what)
        log.warning("Invalid span %s: %.80r could not be set and was ignored.", what, value)
