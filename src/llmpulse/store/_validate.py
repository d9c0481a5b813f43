"""Check and coerce records into database rows before the bulk insert.

Cheap per-row checks in Python are what lets one poison record cost one row instead of the
batch: a row that would make the database reject the whole ``executemany``/``COPY`` (a NaN
cost, text where a count belongs, an attribute JSON cannot encode) is set aside here with a
short reason. Coercions are the lossless ones only: enums to their value, integral floats and
numpy integers to ``int``, numbers to text for text columns, and NUL characters (which
PostgreSQL cannot store) and lone surrogates (which no driver can encode) to U+FFFD on both
backends. Column order and limits come from ``llmpulse._rows``, the row contract the SDK follows.
"""

from __future__ import annotations

import enum
import math
import operator
from typing import Any

from llmpulse._json import compact_json
from llmpulse._rows import (
    EMPTY_LIST,
    EMPTY_OBJECT,
    MAX_COUNT,
    MAX_ID_CHARS,
    MAX_KIND_CHARS,
    MAX_RUN_ID_CHARS,
    MAX_RUN_KIND_CHARS,
    MAX_RUN_STATUS_CHARS,
    MAX_STATUS_CHARS,
    POINT_COLUMNS,
    RUN_COLUMNS,
    SPAN_COLUMNS,
    STATUSES,
    clean_text,
    text_ok,
)
from llmpulse._rows import span_row as _ready_row
from llmpulse.schema import BRANCH_ATTRIBUTE, MetricPoint, Run, Span

__all__ = [
    "POINT_COLUMNS",
    "RUN_COLUMNS",
    "SPAN_COLUMNS",
    "Rejected",
    "RollupKey",
    "point_row",
    "run_row",
    "span_row",
]

_JSON_ENCODE = compact_json
_EMPTY_OBJECT, _EMPTY_LIST = EMPTY_OBJECT, EMPTY_LIST


# (kind, name, model, provider, prompt_version, branch); '' for an absent part.
RollupKey = tuple[str, str, str, str, str, str]


class Rejected(ValueError):
    """A record cannot be stored; ``reason`` is a short category for counting."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def _text(value: Any, field: str, max_len: int | None = None) -> str | None:
    if value is None:
        return None
    if type(value) is not str:
        if isinstance(value, enum.Enum):
            value = value.value
        if isinstance(value, str) or (
            isinstance(value, (int, float)) and not isinstance(value, bool)
        ):
            value = str(value)
        else:
            raise Rejected(f"invalid {field}", f"expected text, got {type(value).__name__}")
    if max_len is not None and len(value) > max_len:
        raise Rejected(f"invalid {field}", f"longer than {max_len} characters")
    text: str = value  # a str by now: typed for mypy without a cast call on the write path
    return text if text_ok(text) else clean_text(text)


def _required_text(value: Any, field: str, max_len: int | None = None) -> str:
    text = _text(value, field, max_len)
    if not text:
        raise Rejected(f"missing {field}")
    return text


def _count(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int:
        if isinstance(value, bool):
            raise Rejected(f"invalid {field}", "expected a whole number, got bool")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            try:
                value = operator.index(value)
            except TypeError:
                raise Rejected(
                    f"invalid {field}", f"expected a whole number, got {value!r:.40}"
                ) from None
    count: int = value  # an int by now
    if not 0 <= count <= MAX_COUNT:
        raise Rejected(f"invalid {field}", f"out of range: {count}")
    return count


def _number(
    value: Any, field: str, *, optional: bool = True, non_negative: bool = False
) -> float | None:
    if value is None:
        if optional:
            return None
        raise Rejected(f"missing {field}")
    if type(value) is not float:
        if isinstance(value, (bool, str, bytes)):
            raise Rejected(f"invalid {field}", f"expected a number, got {type(value).__name__}")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise Rejected(
                f"invalid {field}", f"expected a number, got {type(value).__name__}"
            ) from None
    number: float = value  # a float by now
    if not math.isfinite(number):
        raise Rejected(f"invalid {field}", f"not a finite number: {number}")
    if non_negative and number < 0:
        raise Rejected(f"invalid {field}", f"negative: {number}")
    return number


def _json(value: Any, field: str, empty: str) -> str:
    if not value and (value is None or isinstance(value, (dict, list))):
        return empty
    try:
        encoded = _JSON_ENCODE(value)
    except (TypeError, ValueError) as exc:
        raise Rejected(f"invalid {field}", f"not JSON-encodable: {exc}") from None
    if "\\u0000" in encoded:  # jsonb cannot hold NUL
        encoded = encoded.replace("\\u0000", "\\ufffd")
    if not text_ok(encoded):  # lone surrogates
        encoded = clean_text(encoded)
    return encoded


def _events(events: Any) -> str:
    if not events:
        return _EMPTY_LIST
    try:
        docs = [{"name": e.name, "time": e.time, "attributes": e.attributes} for e in events]
    except AttributeError:
        raise Rejected("invalid events", "expected a list of SpanEvent") from None
    return _json(docs, "events", _EMPTY_LIST)


def span_row(span: Span) -> tuple[tuple[Any, ...], RollupKey]:  # noqa: C901 - per span, flat
    """The ``SPAN_COLUMNS`` row of ``span`` and its rollup key.

    The key is (kind, name, model, provider, prompt_version, branch), ``''`` for absent parts;
    branch is the chosen way of a branch span (attribute ``BRANCH_ATTRIBUTE``), else ``''``.
    The common case (exact types, nothing to coerce) takes a fast path of plain checks;
    anything unusual goes through ``_careful_span_row``, which coerces or rejects with a reason.
    """
    if type(span) is not Span or span.events:
        return _careful_span_row(span)
    attributes, kind = span.attributes, span.kind
    branch = ""
    if attributes:
        if type(attributes) is not dict:
            return _careful_span_row(span)
        if kind == "branch":
            branch = attributes.get(BRANCH_ATTRIBUTE, "")
            if type(branch) is not str or not text_ok(branch):
                return _careful_span_row(span)
        try:
            encoded = _JSON_ENCODE(attributes)
        except (TypeError, ValueError):
            return _careful_span_row(span)
    else:
        encoded = _EMPTY_OBJECT
    model, provider, version = span.model, span.provider, span.prompt_version
    row = _ready_row(
        span.span_id, span.trace_id, span.parent_id, span.name, kind, span.start_time,
        span.end_time, span.status, span.error_type, span.error_message, model, provider,
        version, span.input_tokens, span.output_tokens, span.total_tokens,
        span.cache_read_tokens, span.cache_write_tokens, span.reasoning_tokens, span.cost_usd,
        span.ttft_ms, span.session_id, span.user_id, span.service, span.input, span.output,
        encoded, _EMPTY_LIST,
    )  # fmt: skip
    if row is None:
        return _careful_span_row(span)
    return row, (kind, row[3], model or "", provider or "", version or "", branch)


def _careful_span_row(span: Any) -> tuple[tuple[Any, ...], RollupKey]:
    if not isinstance(span, Span):
        raise Rejected("not a span", type(span).__name__)
    start = _number(span.start_time, "start_time", optional=False)
    end = _number(span.end_time, "end_time", optional=False)
    kind = _required_text(span.kind, "kind", MAX_KIND_CHARS)
    status = _required_text(span.status, "status", MAX_STATUS_CHARS)
    if status not in STATUSES:
        raise Rejected("invalid status", f"{status!r} is not 'ok' or 'error'")
    attributes = span.attributes
    if attributes is not None and not isinstance(attributes, dict):
        raise Rejected("invalid attributes", f"expected a dict, got {type(attributes).__name__}")
    branch = ""
    if kind == "branch" and attributes:
        chosen = attributes.get(BRANCH_ATTRIBUTE)
        branch = "" if chosen is None else _text(chosen, "branch") or ""
    row = (
        _required_text(span.span_id, "span_id", MAX_ID_CHARS),
        _required_text(span.trace_id, "trace_id", MAX_ID_CHARS),
        _text(span.parent_id, "parent_id", MAX_ID_CHARS),
        _required_text(span.name, "name"),
        kind, start, end, max(0.0, (end - start) * 1000.0),  # type: ignore[operator]
        status,
        _text(span.error_type, "error_type"),
        _text(span.error_message, "error_message"),
        _text(span.model, "model"),
        _text(span.provider, "provider"),
        _text(span.prompt_version, "prompt_version"),
        _count(span.input_tokens, "input_tokens"),
        _count(span.output_tokens, "output_tokens"),
        _count(span.total_tokens, "total_tokens"),
        _count(span.cache_read_tokens, "cache_read_tokens"),
        _count(span.cache_write_tokens, "cache_write_tokens"),
        _count(span.reasoning_tokens, "reasoning_tokens"),
        _number(span.cost_usd, "cost_usd", non_negative=True),
        _number(span.ttft_ms, "ttft_ms", non_negative=True),
        _text(span.session_id, "session_id"),
        _text(span.user_id, "user_id"),
        _text(span.service, "service"),
        _text(span.input, "input"),
        _text(span.output, "output"),
        _json(attributes, "attributes", _EMPTY_OBJECT),
        _events(span.events),
    )  # fmt: skip
    return row, (kind, row[3], row[11] or "", row[12] or "", row[13] or "", branch)


def point_row(point: MetricPoint) -> tuple[Any, ...]:
    """The ``POINT_COLUMNS`` row of a metric point."""
    if not isinstance(point, MetricPoint):
        raise Rejected("not a metric point", type(point).__name__)
    if point.labels is not None and not isinstance(point.labels, dict):
        raise Rejected(
            "invalid metric labels", f"expected a dict, got {type(point.labels).__name__}"
        )
    return (
        _required_text(point.name, "metric name"),
        _number(point.value, "metric value", optional=False),
        _number(point.timestamp, "metric timestamp", optional=False),
        _json(point.labels, "metric labels", _EMPTY_OBJECT),
        _text(point.run_id, "run_id", MAX_RUN_ID_CHARS),
        None if point.step is None else _count(point.step, "metric step"),
        _text(point.point_id, "point_id", MAX_ID_CHARS),
    )


def run_row(run: Run) -> tuple[Any, ...]:
    """The ``RUN_COLUMNS`` row of a run."""
    if not isinstance(run, Run):
        raise Rejected("not a run", type(run).__name__)
    return (
        _required_text(run.run_id, "run_id", MAX_RUN_ID_CHARS),
        _required_text(run.name, "run name"),
        _required_text(run.kind, "run kind", MAX_RUN_KIND_CHARS),
        _text(run.experiment, "experiment"),
        _text(run.model, "run model"),
        _required_text(run.status, "run status", MAX_RUN_STATUS_CHARS),
        _number(run.started_at, "started_at", optional=False),
        _number(run.ended_at, "ended_at"),
        _json(run.params, "run params", _EMPTY_OBJECT),
        _json(run.metrics, "run metrics", _EMPTY_OBJECT),
        _json(run.tags, "run tags", _EMPTY_OBJECT),
    )
