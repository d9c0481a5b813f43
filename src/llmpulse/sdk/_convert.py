"""Turn queued items into records, on the export thread: ids, sampling, times, text, cost.

What the caller's thread enqueued is raw (a tuple of arguments, or an ended span handle); all
the work that makes a ``schema.Span`` or ``schema.MetricPoint`` out of it happens here, off the
hot path: hex ids, the sampling decision for records without a parent, JSON of structured
prompts, redaction, truncation with a visible marker, cost from the price table, and the
``gen_ai.*`` attribute names filling their columns.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from llmpulse._json import compact_json as _compact_json
from llmpulse._rows import MAX_COUNT, MAX_KIND_CHARS, clean_text, text_ok
from llmpulse._rows import span_row as _span_row
from llmpulse.pricing import ModelPrice, PriceTable
from llmpulse.schema import (
    BRANCH_ATTRIBUTE,
    GENAI_FIELDS,
    MetricPoint,
    Run,
    Span,
    SpanEvent,
    SpanKind,
    SpanStatus,
)
from llmpulse.sdk._batcher import SKIP
from llmpulse.sdk._content import truncate
from llmpulse.sdk._context import (
    describe,
    new_point_id,
    new_span_id,
    new_trace_id,
    span_hex,
    trace_hex,
)
from llmpulse.sdk._logonce import LogOnce
from llmpulse.sdk._spans import SpanHandle, SpanRecord
from llmpulse.sdk._stats import REPAIR_REASONS

__all__ = ["LLM", "LLM_FIELDS", "METRIC", "Converter"]

log = logging.getLogger("llmpulse.sdk")

LLM, METRIC = 0, 1  # first element of a queued tuple

# Keyword arguments of record_llm_call beyond model / input_tokens / output_tokens / latency_ms.
LLM_FIELDS = frozenset({
    "start_time", "end_time", "provider", "prompt_version", "cache_read_tokens",
    "cache_write_tokens", "reasoning_tokens", "ttft_ms", "status", "error_type", "error_message",
    "input", "output", "session_id", "user_id", "name", "attributes", "cost_usd",
})  # fmt: skip
_KNOWN_FIELDS = LLM_FIELDS | {"_bytes"}  # _bytes: the text budget the hot path reserved
_INF = float("inf")
_LLM_KIND = SpanKind.LLM.value
_LOW64 = (1 << 64) - 1
_IO_KEYS = ("input", "output")
_IO_FIELDS = frozenset(_IO_KEYS)  # the only fields a chain or tool step's span has
_NO_IO: tuple[str | None, str | None] = (None, None)
_GENAI_KEYS = GENAI_FIELDS.keys()  # a view: isdisjoint() then walks the smaller side

_INT_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
_COUNT_FIELDS = (*_INT_COLUMNS, "total_tokens")
_TEXT_FIELDS = (
    "name", "kind", "error_type", "error_message", "model", "provider", "prompt_version",
    "session_id", "user_id", "service", "input", "output",
)  # fmt: skip
_STR_COLUMNS = ("model", "provider", "prompt_version", "session_id", "user_id", "error_type")
# Attributes that carry prompt or response text: dropped when redact=True.
_TEXT_ATTRIBUTE_PREFIXES = (
    "gen_ai.prompt", "gen_ai.completion", "gen_ai.input.messages", "gen_ai.output.messages",
    "gen_ai.system_instructions",
)  # fmt: skip


class Converter:
    """Callable turning one queued item into a record (or ``SKIP`` when sampled out)."""

    def __init__(
        self,
        *,
        prices: PriceTable,
        threshold: int,
        max_content_chars: int,
        redact: bool = False,
        redact_text: Callable[[str], str] | None = None,
        service: str | None = None,
        rows: bool = False,
    ) -> None:
        self.prices = prices
        # Llm calls become the store's (row, rollup key) pairs instead of Spans: for the
        # embedded store exporter, which then skips building and re-checking a Span per call.
        self.rows = rows
        self.threshold = threshold
        self.max_chars = max_content_chars
        self.redact = redact
        self.redact_text = redact_text
        self.service = None if service is None else str(service)
        # A service name the store would refuse is repaired (and counted) span by span, on the
        # careful path; one it takes lets plain spans skip re-checking it.
        self._service_ok = self.service is None or text_ok(self.service)
        self._warn = LogOnce(log)
        # Values repaired so the record could be stored, by reason (written on the export
        # thread only; read by stats()).
        self.repaired = dict.fromkeys(REPAIR_REASONS, 0)
        # Text that needs no redaction, JSON or cut is stored as it came (the common case).
        self._plain_text = not redact and redact_text is None
        # Cost from the table's (cached) lookup, unless a subclass prices differently.
        self._lookup = prices.lookup if type(prices).cost is PriceTable.cost else None

    def __call__(self, item: Any) -> Any:
        kind = type(item)
        if kind is tuple:
            if item[0] == LLM:
                return self._llm(item)
            if item[0] == METRIC:
                return self._metric(item)
        elif kind is SpanHandle:
            return self._span(item)
        elif isinstance(item, SpanRecord):
            try:
                item.finish()
            except Exception as exc:  # what the recorder kept could not all be read
                self._warn("finish", "A span record could not be completed (%s); stored "
                           "without what it lacks.", describe(exc))  # fmt: skip
            return self._span(item)
        elif isinstance(item, Run):
            return item
        raise TypeError(f"cannot export a {kind.__name__}")

    # -- llm calls from record_llm_call -------------------------------------------------------
    def _llm(self, item: tuple[Any, ...]) -> Any:
        _, now, parent, model, inp, out, latency_ms, extra = item
        if not extra.keys() <= _KNOWN_FIELDS:
            unknown = sorted(extra.keys() - _KNOWN_FIELDS)
            self._warn(f"field:{unknown}", "Invalid record_llm_call field(s) %s ignored; known fields: %s",
                       unknown, sorted(LLM_FIELDS))  # fmt: skip
        if parent is not None:
            trace, parent_span = parent._trace, parent._span
        else:
            trace, parent_span = new_trace_id(), 0
            if (trace & _LOW64) >= self.threshold:  # trace_sampled(), inlined
                return SKIP
        if (
            type(now) is float
            and (
                latency_ms is None
                or (type(latency_ms) is float and 0.0 <= latency_ms < _INF)
                or (type(latency_ms) is int and latency_ms >= 0)
            )
            and "start_time" not in extra
            and "end_time" not in extra
        ):
            start = now if latency_ms is None else now - latency_ms / 1000.0
            return self._llm_span(trace, parent_span, start, now, model, inp, out, extra)
        start, end = _times(now, latency_ms, extra.get("start_time"), extra.get("end_time"))
        return self._llm_span(trace, parent_span, start, end, model, inp, out, extra)

    def _llm_span(  # noqa: C901 - per-call conversion, kept flat: a helper call per branch costs
        self, trace: int, parent: int, start: float, end: float,
        model: Any, inp: Any, out: Any, extra: dict[str, Any],
    ) -> Span | tuple[tuple[Any, ...], tuple[str, ...]]:  # fmt: skip
        """The span of an llm call, built in one go when every value has its exact type; in
        ``rows`` mode, the store's (row, rollup key) pair when the store has nothing to check."""
        get = extra.get
        name, status, attributes = get("name"), get("status"), get("attributes")
        provider, version, session = get("provider"), get("prompt_version"), get("session_id")
        user, etype, message = get("user_id"), get("error_type"), get("error_message")
        cr, cw, rs = get("cache_read_tokens"), get("cache_write_tokens"), get("reasoning_tokens")
        ttft, cost = get("ttft_ms"), get("cost_usd")
        if type(name) is not str or not name:
            name = str(name or "llm")
        if status is None:
            status = "ok"
        elif type(status) is not str or (status != "ok" and status != "error"):
            status = _status(status)
        if type(attributes) is not dict:
            attributes = dict(attributes or {})
        if not (
            (model is None or type(model) is str)
            and (provider is None or type(provider) is str)
            and (version is None or type(version) is str)
            and (session is None or type(session) is str)
            and (user is None or type(user) is str)
            and (etype is None or type(etype) is str)
            and (message is None or type(message) is str)
            and (inp is None or (type(inp) is int and inp >= 0))
            and (out is None or (type(out) is int and out >= 0))
            and (cr is None or (type(cr) is int and cr >= 0))
            and (cw is None or (type(cw) is int and cw >= 0))
            and (rs is None or (type(rs) is int and rs >= 0))
            and (ttft is None or type(ttft) is float)
            and (cost is None or type(cost) is float)
        ) or (attributes and not attributes.keys().isdisjoint(_GENAI_KEYS)):
            return self._llm_careful(
                trace, parent, start, end, name, status, model, inp, out, extra
            )
        total = None if inp is None and out is None else (inp or 0) + (out or 0)
        if cost is None and model and total is not None:
            cost = self._cost(model, inp, out, cr, cw, rs)
        text_in, text_out = get("input"), get("output")
        plain, limit = self._plain_text, self.max_chars
        if text_in is not None and not (plain and type(text_in) is str and len(text_in) <= limit):
            text_in = self._text(text_in)
        if text_out is not None and not (
            plain and type(text_out) is str and len(text_out) <= limit
        ):
            text_out = self._text(text_out)
        attributes = self._attributes(attributes) if attributes else {}
        span_id = f"{new_span_id():016x}"
        if self.rows:
            # The store's row straight away when every value is storable as it is (the row
            # contract of llmpulse._rows); otherwise a Span, repaired, for the store to coerce.
            if attributes:
                try:
                    encoded = _compact_json(attributes)
                except (TypeError, ValueError):
                    encoded = None
            else:
                encoded = "{}"
            if encoded is not None:
                row = _span_row(
                    span_id, f"{trace:032x}", f"{parent:016x}" if parent else None, name,
                    _LLM_KIND, start, end, status, etype, message, model, provider, version,
                    inp, out, total, cr, cw, rs, cost, ttft, session, user, self.service,
                    text_in, text_out, encoded, "[]",
                )  # fmt: skip
                if row is not None:
                    return row, (_LLM_KIND, name, model or "", provider or "", version or "", "")
        return self._repair(Span(  # every field, in the dataclass's order
            f"{trace:032x}", span_id, name, start, end, _LLM_KIND,
            f"{parent:016x}" if parent else None, status, etype, message, model, provider,
            version, inp, out, total, cr, cw, rs, cost, ttft, session, user, self.service,
            text_in, text_out, attributes,
        ))  # fmt: skip

    def _llm_careful(
        self, trace: int, parent: int, start: float, end: float, name: str, status: str,
        model: Any, inp: Any, out: Any, extra: dict[str, Any],
    ) -> Span:  # fmt: skip
        """An llm call with values to coerce or gen_ai.* attributes to map (see ``_fill``)."""
        ttft, cost = extra.get("ttft_ms"), extra.get("cost_usd")
        span = Span(
            f"{trace:032x}", f"{new_span_id():016x}", name, start, end, _LLM_KIND,
            f"{parent:016x}" if parent else None, status,
            error_message=_opt_str(extra.get("error_message")),
            ttft_ms=ttft if ttft is None or type(ttft) is float else _opt_float(ttft),
            cost_usd=cost if cost is None or type(cost) is float else _opt_float(cost),
            attributes=dict(extra.get("attributes") or {}),
        )  # fmt: skip
        self._fill(span, dict(extra, model=model, input_tokens=inp, output_tokens=out))
        return self._repair(span)

    # -- spans from span() / observe ---------------------------------------------------------
    def _span(self, h: SpanHandle | SpanRecord) -> Any:
        fields = h.fields
        if not h.events and (not fields or fields.keys() <= _IO_FIELDS):
            io = self._io(fields) if fields else _NO_IO
            if io is not None:
                plain = self._plain_span_row(h, io) if self.rows else self._plain_span(h, io)
                if plain is not None:
                    return plain
        fields = fields or {}
        span = Span(
            trace_id=trace_hex(h._trace),
            span_id=span_hex(h._span),
            parent_id=span_hex(h._parent) if h._parent else None,
            name=str(h.name),
            kind=str(getattr(h.kind, "value", h.kind)),
            start_time=h.start_time,
            end_time=max(h.end_time, h.start_time),
            status=h.status,
            error_message=h.error_message,
            ttft_ms=_opt_float(fields.get("ttft_ms")),
            cost_usd=_opt_float(fields.get("cost_usd")),
            attributes=h.attributes,
            events=[SpanEvent(e.name, e.time, self._attributes(e.attributes)) for e in h.events],
        )
        if fields:
            self._fill(span, dict(fields, error_type=h.error_type))
        else:  # a chain, tool or branch step: no column but error_type to fill (was 40% of it)
            span.error_type = _opt_str(h.error_type)
            self._finish(span, None, None)
        return self._repair(span)

    def _io(self, fields: dict[str, Any]) -> tuple[str | None, str | None] | None:
        """The stored text of a span's input and output (``fields`` holds nothing else), or
        ``None`` when either needs a repair the careful path makes and counts."""
        plain, limit = self._plain_text, self.max_chars
        texts: list[str | None] = []
        for key in _IO_KEYS:
            value = fields.get(key)
            if value is not None and not (plain and type(value) is str and len(value) <= limit):
                value = self._text(value)
            if value is not None and not text_ok(value):
                return None
            texts.append(value)
        return texts[0], texts[1]

    def _plain_span(
        self, h: SpanHandle | SpanRecord, io: tuple[str | None, str | None]
    ) -> Span | None:
        """The ``Span`` of a span without llm columns or events (a chain, tool or branch step,
        a graph node; ``io`` its stored input and output) when nothing in it needs repair, else
        ``None`` (the careful path then builds, repairs and counts). The same checks as
        ``_repair``, on just the fields such a span has: a graph of trivial nodes converts one
        of these per node, on the export thread that shares the interpreter lock with the
        caller.
        """
        attributes = h.attributes
        if attributes:
            if type(attributes) is not dict or not attributes.keys().isdisjoint(_GENAI_KEYS):
                return None
            attributes = self._own_attributes(attributes, h.attributes_checked)
        else:
            attributes = {}
        name, kind, error_type, message = h.name, h.kind, h.error_type, h.error_message
        if not (
            type(name) is str
            and name
            and ((name.isascii() and "\x00" not in name) or text_ok(name))
        ):
            return None
        if not (type(kind) is str and len(kind) <= MAX_KIND_CHARS and text_ok(kind)):
            return None
        if error_type is not None and not (type(error_type) is str and text_ok(error_type)):
            return None
        if message is not None and not (type(message) is str and text_ok(message)):
            return None
        start, end = h.start_time, h.end_time
        if type(start) is not float or type(end) is not float or start - start != 0.0:
            return None
        if end - end != 0.0 or not self._service_ok:
            return None
        return Span(
            f"{h._trace:032x}", f"{h._span:016x}", name, start, end if end >= start else start,
            kind, f"{h._parent:016x}" if h._parent else None, h.status, error_type, message,
            service=self.service, input=io[0], output=io[1], attributes=attributes,
        )  # fmt: skip

    def _plain_span_row(  # noqa: C901 - per-span conversion, kept flat like _llm_span
        self, h: SpanHandle | SpanRecord, io: tuple[str | None, str | None]
    ) -> tuple[tuple[Any, ...], tuple[str, ...]] | None:
        """The store's (row, rollup key) of a span without llm columns or events (a chain, tool
        or branch step), or ``None`` when the store would have something to check."""
        name, kind = h.name, h.kind
        attributes, branch = h.attributes, ""
        if attributes:
            if type(attributes) is not dict or not attributes.keys().isdisjoint(_GENAI_KEYS):
                return None
            attributes = self._own_attributes(attributes, h.attributes_checked)
            if kind == "branch":
                branch = attributes.get(BRANCH_ATTRIBUTE, "")
                if type(branch) is not str or not text_ok(branch):
                    return None
            try:
                encoded = _compact_json(attributes)
            except (TypeError, ValueError):
                return None
        else:
            encoded = "{}"
        start, end = h.start_time, h.end_time
        if end < start:
            end = start
        row = _span_row(
            f"{h._span:016x}", f"{h._trace:032x}", f"{h._parent:016x}" if h._parent else None,
            name, kind, start, end, h.status, h.error_type, h.error_message, None, None, None,
            None, None, None, None, None, None, None, None, None, None, self.service, io[0], io[1],
            encoded, "[]",
        )  # fmt: skip
        if row is None:
            return None
        return row, (kind, name, "", "", "", branch)

    def _fill(self, span: Span, columns: dict[str, Any]) -> None:
        """Columns, gen_ai.* attributes, total tokens, cost, texts and clean attributes."""
        for name in _STR_COLUMNS:
            setattr(span, name, _opt_str(columns.get(name)))
        for name in _INT_COLUMNS:
            setattr(span, name, self._int(name, columns.get(name)))
        self._finish(span, columns.get("input"), columns.get("output"))

    def _finish(self, span: Span, input: Any, output: Any) -> None:
        """gen_ai.* attributes into empty columns, total tokens, cost, texts, clean attributes."""
        attributes = span.attributes
        if attributes and not attributes.keys().isdisjoint(_GENAI_KEYS):
            for key, column in GENAI_FIELDS.items():
                if key in attributes and getattr(span, column) is None:
                    value = attributes[key]
                    setattr(
                        span,
                        column,
                        self._int(key, value) if column in _INT_COLUMNS else _opt_str(value),
                    )
        inp, out = span.input_tokens, span.output_tokens
        if inp is not None or out is not None:
            span.total_tokens = (inp or 0) + (out or 0)
            if span.cost_usd is None and span.model:
                span.cost_usd = self._cost(
                    span.model, inp, out, span.cache_read_tokens, span.cache_write_tokens,
                    span.reasoning_tokens,
                )  # fmt: skip
        plain, limit = self._plain_text, self.max_chars
        if input is not None:
            ok = plain and type(input) is str and len(input) <= limit
            span.input = input if ok else self._text(input)
        if output is not None:
            ok = plain and type(output) is str and len(output) <= limit
            span.output = output if ok else self._text(output)
        span.attributes = self._own_attributes(attributes) if attributes else {}
        span.service = self.service

    def _cost(
        self, model: str, inp: int | None, out: int | None,
        cache_read: int | None, cache_write: int | None, reasoning: int | None,
    ) -> float | None:  # fmt: skip
        try:
            price = self._lookup(model) if self._lookup is not None else None
            if type(price) is ModelPrice:
                return price.cost(inp, out, cache_read, cache_write, reasoning)
            # Unpriced (the table warns once per model), or a table that prices its own way.
            return self.prices.cost(model, inp, out, cache_read, cache_write, reasoning)
        except Exception as exc:  # a broken custom price table must not lose the span
            self._warn("cost", "Cost failed: %s; cost recorded as null", exc)
            return None

    # -- metric points -----------------------------------------------------------------------
    def _metric(self, item: tuple[Any, ...]) -> MetricPoint:
        _, now, name, value, labels, run_id, step, timestamp, _size = item
        if not isinstance(name, str) or not name:
            raise ValueError(f"metric name must be a non-empty string, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            value = float(value)  # numpy scalars and numeric strings; anything else raises
        return MetricPoint(
            name=name,
            value=float(value),
            timestamp=now if timestamp is None else float(timestamp),
            labels={str(k): str(v) for k, v in (labels or {}).items()},
            run_id=None if run_id is None else str(run_id),
            step=None if step is None else int(step),
            point_id=new_point_id(),  # a resent batch stores it once
        )

    # -- values ------------------------------------------------------------------------------
    def _text(self, value: Any) -> str | None:
        if value is None or self.redact:
            return None
        text = value if isinstance(value, str) else _to_json(value)
        if self.redact_text is not None:
            try:
                text = self.redact_text(text)
            except Exception as exc:  # failing closed: no text rather than unredacted text
                self._warn("redact", "Redaction failed: %s; the text was not stored", exc)
                return None
        return truncate(text, self.max_chars, getattr(value, "dropped_chars", 0))

    def _own_attributes(self, attributes: dict[str, Any], checked: bool = False) -> dict[str, Any]:
        """A record's own ``attributes`` (an ended span's, or a copy made for this record: nobody
        changes them any more) as they are when they can be stored so, else repaired.
        ``checked``: its recorder found them storable as they are (``attributes_checked``)."""
        if checked and not self.redact:
            return attributes
        return attributes if self._storable_as_is(attributes) else self._attributes(attributes)

    def _storable_as_is(self, attributes: dict[str, Any]) -> bool:
        """Whether ``attributes`` can be stored as they are: text keys, scalar values, no text
        to cut, clean or redact. Checking costs about a third of building the repaired copy
        that ``_attributes`` makes."""
        if self.redact:
            return False
        limit = self.max_chars
        for key, value in attributes.items():
            if type(key) is not str or not key.isascii() or "\x00" in key:
                return False
            kind = type(value)
            if kind is str:
                if len(value) > limit or not value.isascii() or "\x00" in value:
                    return False
            elif kind is float:
                if value - value != 0.0:
                    return False
            elif not (kind is int or kind is bool or value is None):
                return False
        return True

    def _attributes(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """Attributes safe to store: keys as text, long text cut, and values no database can
        store repaired (NaN and infinities to null, NUL and lone surrogates to U+FFFD)."""
        out: dict[str, Any] = {}
        redact, limit = self.redact, self.max_chars
        for key, value in attributes.items():
            if type(key) is not str:
                key = str(key)
            if redact and key.startswith(_TEXT_ATTRIBUTE_PREFIXES):
                continue
            if not (key.isascii() and "\x00" not in key) and not text_ok(key):  # inline: hot
                key = self._clean(key)
            kind = type(value)
            if kind is float:
                out[key] = value if value - value == 0.0 else self._non_finite()
            elif kind is int or kind is bool or value is None:
                out[key] = value
            elif kind is str and len(value) <= limit:
                ok = (value.isascii() and "\x00" not in value) or text_ok(value)
                out[key] = value if ok else self._clean(value)
            else:
                out[key] = self._value(value)
        return out

    def _value(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, int)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else self._non_finite()
        # Text cut on the caller's thread says how much it lost (``dropped_chars``).
        dropped = getattr(value, "dropped_chars", 0)
        if isinstance(value, str):
            return self._storable(truncate(value, self.max_chars, dropped))
        if isinstance(value, (list, tuple)) and all(
            v is None or isinstance(v, (bool, int, float, str)) for v in value
        ):
            if dropped:
                return self._storable(truncate(_to_json(value), self.max_chars, dropped))
            return [self._value(v) for v in value]
        return self._storable(truncate(_to_json(value), self.max_chars, dropped))

    # -- repairs: a value no database can store becomes null or marked text, and is counted --
    def _non_finite(self) -> Any:
        """Count a NaN or infinity repaired; the null that replaces it."""
        self.repaired["non_finite_number"] += 1
        return None

    def _clean(self, text: str) -> str:
        self.repaired["invalid_text"] += 1
        return clean_text(text)

    def _storable(self, text: str) -> str:
        return text if text_ok(text) else self._clean(text)

    def _repair(self, span: Span) -> Span:
        """``span`` with every value the store would refuse repaired and counted by reason.

        Attributes were cleaned by ``_attributes``; this covers the columns and the events.
        """
        for name in _TEXT_FIELDS:
            text = getattr(span, name)
            if type(text) is str and not text_ok(text):
                setattr(span, name, self._clean(text))
        self._repair_numbers(span)
        if type(span.kind) is str and len(span.kind) > MAX_KIND_CHARS:
            self.repaired["too_long"] += 1
            span.kind = span.kind[:MAX_KIND_CHARS]
        if not span.name:
            self.repaired["missing_name"] += 1
            span.name = span.kind or "span"
        for event in span.events:
            if type(event.name) is str and not text_ok(event.name):
                event.name = self._clean(event.name)
            if not (type(event.time) is float and math.isfinite(event.time)):
                self._non_finite()
                event.time = span.end_time
        return span

    def _repair_numbers(self, span: Span) -> None:
        """NaN, infinite, negative or out-of-range numbers of ``span`` to null (times: finite)."""
        for name in ("cost_usd", "ttft_ms"):
            number = getattr(span, name)
            if type(number) is float:
                if number - number != 0.0:
                    setattr(span, name, self._non_finite())
                elif number < 0.0:
                    self.repaired["negative_number"] += 1
                    setattr(span, name, None)
        for name in _COUNT_FIELDS:
            count = getattr(span, name)
            if type(count) is int and count > MAX_COUNT:
                self.repaired["out_of_range"] += 1
                setattr(span, name, None)
        start, end = span.start_time, span.end_time
        if not (type(start) is float and math.isfinite(start)) or not (
            type(end) is float and math.isfinite(end)
        ):
            span.start_time, span.end_time = _finite_times(start, end)
            self.repaired["non_finite_number"] += 1

    def _int(self, name: str, value: Any) -> int | None:
        if value is None:
            return None
        try:
            number = int(value)
        except (TypeError, ValueError):
            self._warn(
                f"int:{name}",
                "Invalid %s: %.80r is not a whole number; stored as null",
                name,
                value,
            )
            return None
        return number if number >= 0 else None


def _finite_times(start: Any, end: Any) -> tuple[float, float]:
    """Finite start and end from possibly NaN or infinite ones (the finite one, else now)."""
    ok_start = isinstance(start, (int, float)) and math.isfinite(start)
    ok_end = isinstance(end, (int, float)) and math.isfinite(end)
    if ok_start and ok_end:
        return float(start), float(end)
    if ok_start:
        return float(start), float(start)
    if ok_end:
        return float(end), float(end)
    now = time.time()
    return now, now


def _times(now: float, latency_ms: Any, start: Any, end: Any) -> tuple[float, float]:
    """Start and end from whatever subset of (start, end, latency) the caller gave."""
    seconds = None if latency_ms is None else max(0.0, float(latency_ms)) / 1000.0
    if end is None:
        end = start + seconds if start is not None and seconds is not None else now
    if start is None:
        start = end - seconds if seconds is not None else end
    start, end = float(start), float(end)
    return start, max(start, end)


def _status(value: Any) -> str:
    if value is None:
        return SpanStatus.OK.value
    text = str(getattr(value, "value", value)).lower()
    return text if text in (SpanStatus.OK.value, SpanStatus.ERROR.value) else SpanStatus.ERROR.value


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _opt_float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _to_json(value: Any) -> str:
    """``value`` as JSON text (``json.dumps``'s, non-ASCII kept; what JSON cannot say, as repr).

    One encoder serves every call: ``json.dumps`` with options builds a new ``JSONEncoder`` per
    call, which cost more than encoding a small input or output (a chain step's number, say).
    A plain int or finite float is its repr, as ``json.dumps`` would write it, without either.
    """
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    try:
        return _ENCODE(value)
    except (TypeError, ValueError, RuntimeError):  # cycles, or changed while we read it
        return _safe_repr(value)


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # pydantic models (openai's types)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    if isinstance(value, (set, frozenset)):
        return sorted(map(str, value))
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return _safe_repr(value)


_ENCODE = json.JSONEncoder(default=_jsonable, ensure_ascii=False).encode


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"
