"""Check and coerce records into database rows before the bulk insert.

Cheap per-row checks in Python are what lets one poison record cost one row instead of the
batch: a row that would make the database reject the whole ``executemany``/``COPY`` (a NaN
cost, text where a count belongs, an attribute JSON cannot encode) is set aside here with a
short reason. Coercions are the lossless ones only: enums to their value, integral floats and
numpy integers to ``int``, numbers to text for text columns, and NUL characters (which
PostgreSQL cannot store) to U+FFFD on both backends.
"""

from __future__ import annotations

import enum
import json
import math
import operator
from typing import Any

from llmpulse.schema import BRANCH_ATTRIBUTE, MetricPoint, Run, Span

__all__ = [
    "POINT_COLUMNS",
    "RUN_COLUMNS",
    "SPAN_COLUMNS",
    "Rejected",
    "point_row",
    "run_row",
    "span_row",
]

SPAN_COLUMNS = (
    "span_id", "trace_id", "parent_id", "name", "kind", "start_time", "end_time", "latency_ms",
    "status", "error_type", "error_message", "model", "provider", "prompt_version",
    "input_tokens", "output_tokens", "total_tokens", "cache_read_tokens", "cache_write_tokens",
    "reasoning_tokens", "cost_usd", "ttft_ms", "session_id", "user_id", "service", "input",
    "output", "attributes", "events",
)  # fmt: skip
POINT_COLUMNS = ("name", "value", "timestamp", "labels", "run_id", "step")
RUN_COLUMNS = (
    "run_id", "name", "kind", "experiment", "model", "status", "started_at", "ended_at",
    "params", "metrics", "tags",
)  # fmt: skip

_STATUSES = frozenset(("ok", "error"))
_MAX_INT = 2**63 - 1
_EMPTY_OBJECT = "{}"
_EMPTY_LIST = "[]"


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
        if isinstance(value, str):
            value = str(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        else:
            raise Rejected(f"invalid {field}", f"expected text, got {type(value).__name__}")
    if max_len is not None and len(value) > max_len:
        raise Rejected(f"invalid {field}", f"longer than {max_len} characters")
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    return value


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
    if not 0 <= value <= _MAX_INT:
        raise Rejected(f"invalid {field}", f"out of range: {value}")
    return value


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
    if not math.isfinite(value):
        raise Rejected(f"invalid {field}", f"not a finite number: {value}")
    if non_negative and value < 0:
        raise Rejected(f"invalid {field}", f"negative: {value}")
    return value


def _json(value: Any, field: str, empty: str) -> str:
    if not value:
        if value is None or isinstance(value, (dict, list)):
            return empty
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise Rejected(f"invalid {field}", f"not JSON-encodable: {exc}") from None
    if "\\u0000" in encoded:  # jsonb cannot hold NUL
        encoded = encoded.replace("\\u0000", "\\ufffd")
    return encoded


def _events(events: Any) -> str:
    if not events:
        return _EMPTY_LIST
    try:
        docs = [{"name": e.name, "time": e.time, "attributes": e.attributes} for e in events]
    except AttributeError:
        raise Rejected("invalid events", "expected a list of SpanEvent") from None
    return _json(docs, "events", _EMPTY_LIST)


def span_row(span: Span) -> tuple[tuple[Any, ...], str]:
    """The ``SPAN_COLUMNS`` row of ``span`` and its branch ('' unless a branch span)."""
    if not isinstance(span, Span):
        raise Rejected("not a span", type(span).__name__)
    start = _number(span.start_time, "start_time", optional=False)
    end = _number(span.end_time, "end_time", optional=False)
    kind = _required_text(span.kind, "kind", 32)
    status = _required_text(span.status, "status", 16)
    if status not in _STATUSES:
        raise Rejected("invalid status", f"{status!r} is not 'ok' or 'error'")
    attributes = span.attributes
    if attributes is not None and not isinstance(attributes, dict):
        raise Rejected("invalid attributes", f"expected a dict, got {type(attributes).__name__}")
    branch = ""
    if kind == "branch" and attributes:
        chosen = attributes.get(BRANCH_ATTRIBUTE)
        branch = "" if chosen is None else _text(chosen, "branch") or ""
    row = (
        _required_text(span.span_id, "span_id", 64),
        _required_text(span.trace_id, "trace_id", 64),
        _text(span.parent_id, "parent_id", 64),
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
    return row, branch


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
        _text(point.run_id, "run_id", 128),
        None if point.step is None else _count(point.step, "metric step"),
    )


def run_row(run: Run) -> tuple[Any, ...]:
    """The ``RUN_COLUMNS`` row of a run."""
    if not isinstance(run, Run):
        raise Rejected("not a run", type(run).__name__)
    return (
        _required_text(run.run_id, "run_id", 128),
        _required_text(run.name, "run name"),
        _required_text(run.kind, "run kind", 64),
        _text(run.experiment, "experiment"),
        _text(run.model, "run model"),
        _required_text(run.status, "run status", 32),
        _number(run.started_at, "started_at", optional=False),
        _number(run.ended_at, "ended_at"),
        _json(run.params, "run params", _EMPTY_OBJECT),
        _json(run.metrics, "run metrics", _EMPTY_OBJECT),
        _json(run.tags, "run tags", _EMPTY_OBJECT),
    )
