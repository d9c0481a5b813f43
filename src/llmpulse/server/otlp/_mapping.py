"""OpenTelemetry GenAI and OpenInference attributes onto llmpulse's span columns.

A span from another instrumentation says the same things llmpulse records (model, tokens,
prompt, session, ...) under names that changed several times: ``gen_ai.system`` became
``gen_ai.provider.name``, ``prompt_tokens`` became ``input_tokens``, ``cache_creation``
became ``cache_write``; OpenInference uses ``llm.*`` and flattens messages into indexed keys.
Instrumentations keep emitting the old names for years, so every generation is accepted and
the first name present wins (the order below is the table in docs/server.md).

The attribute that fills a column is taken out of the attributes, so a value is stored once;
every other attribute (including the losers of a precedence, such as ``gen_ai.request.model``
when ``gen_ai.response.model`` named the model) stays in ``attributes``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmpulse._json import compact_json
from llmpulse._rows import MAX_COUNT
from llmpulse.pricing import PriceTable
from llmpulse.schema import Span, SpanEvent, SpanKind

__all__ = [
    "DEFAULT_LIMITS",
    "FLAG_CLAMPED",
    "FLAG_TRUNCATED",
    "Limits",
    "RawSpan",
    "SpanRejected",
    "map_span",
    "normalize_provider",
]

# Attributes llmpulse adds to say it changed what it was sent.
FLAG_TRUNCATED = "llmpulse.truncated"  # list of the fields cut to Limits.max_text_chars
FLAG_CLAMPED = "llmpulse.end_time_clamped"  # the end time sent (ns), which was before the start

MODEL_KEYS = (
    "gen_ai.response.model",
    "gen_ai.request.model",
    "llm.response.model_name",
    "llm.model_name",
    "llm.request.model_name",
    "embedding.model_name",
)
PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
INPUT_TOKEN_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
)
OUTPUT_TOKEN_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
TOTAL_TOKEN_KEYS = ("gen_ai.usage.total_tokens", "llm.token_count.total")
CACHE_READ_KEYS = (
    "gen_ai.usage.cache_read.input_tokens",
    "llm.token_count.prompt_details.cache_read",
)
CACHE_WRITE_KEYS = (
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "llm.token_count.prompt_details.cache_write",
)
REASONING_KEYS = (
    "gen_ai.usage.reasoning.output_tokens",
    "llm.token_count.completion_details.reasoning",
)
SESSION_KEYS = ("gen_ai.conversation.id", "session.id", "langfuse.session.id")
USER_KEYS = ("user.id", "enduser.id", "langfuse.user.id")
PROMPT_VERSION_KEYS = ("gen_ai.prompt.version", "llm.prompt_template.version")
ERROR_TYPE_KEYS = ("error.type",)

# Message content: a whole value first, then messages flattened into indexed keys, then the
# message events of semconv <= 1.36, then the oldest single-string names.
INPUT_VALUE_KEYS = ("gen_ai.input.messages", "input.value")
OUTPUT_VALUE_KEYS = ("gen_ai.output.messages", "output.value")
INPUT_FLAT_PREFIXES = ("llm.input_messages.", "gen_ai.prompt.")
OUTPUT_FLAT_PREFIXES = ("llm.output_messages.", "gen_ai.completion.")
INPUT_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
OUTPUT_EVENTS = {"gen_ai.choice": "assistant"}
_FLAT_PREFIXES = INPUT_FLAT_PREFIXES + OUTPUT_FLAT_PREFIXES
INPUT_LAST_KEYS = ("gen_ai.prompt",)
OUTPUT_LAST_KEYS = ("gen_ai.completion",)
_INPUT = (INPUT_VALUE_KEYS, INPUT_FLAT_PREFIXES, INPUT_EVENTS, INPUT_LAST_KEYS)
_OUTPUT = (OUTPUT_VALUE_KEYS, OUTPUT_FLAT_PREFIXES, OUTPUT_EVENTS, OUTPUT_LAST_KEYS)

OPENINFERENCE_KIND = "openinference.span.kind"
# An embeddings call is kind llm, as the SDK's openai and LiteLLM instrumentations record it:
# every view of llm calls (per-model stats, cost and token alerts, checks) then counts its
# tokens and cost whichever way it arrived; gen_ai.operation.name = "embeddings" tells it apart.
EMBEDDINGS_OPERATION = "embeddings"
OPERATION_KEY = "gen_ai.operation.name"
OPERATION_KINDS = {
    "chat": SpanKind.LLM.value,
    "text_completion": SpanKind.LLM.value,
    "generate_content": SpanKind.LLM.value,
    EMBEDDINGS_OPERATION: SpanKind.LLM.value,
    "execute_tool": SpanKind.TOOL.value,
    "invoke_agent": SpanKind.AGENT.value,
    "create_agent": SpanKind.AGENT.value,
    "retrieval": SpanKind.RETRIEVER.value,
}
_KINDS = frozenset(k.value for k in SpanKind)

# One name per provider: the values of gen_ai.provider.name / gen_ai.system and of
# OpenInference's llm.provider / llm.system differ for the same vendor.
PROVIDER_ALIASES = {
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "vertex_ai": "google",
    "vertexai": "google",
    "gemini": "google",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "aws.bedrock": "aws",
    "bedrock": "aws",
    "az.ai.openai": "azure",
    "az.ai.inference": "azure",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "x_ai": "xai",
    "ibm.watsonx.ai": "ibm",
}


def normalize_provider(value: str) -> str:
    """The one llmpulse name of a provider given by any convention (``gcp.vertex_ai`` → google)."""
    name = value.strip().lower()
    return PROVIDER_ALIASES.get(name, name)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one span may hold; longer text is cut and flagged (``FLAG_TRUNCATED``)."""

    max_text_chars: int = 1_000_000


DEFAULT_LIMITS = Limits()


@dataclass(slots=True)
class RawSpan:
    """One OTLP span after decoding, before mapping: ids as bytes, times in nanoseconds."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[SpanEvent]
    status_code: int
    status_message: str
    service: str | None
    extra: dict[str, Any]  # resource, scope and links, stored under otel.* attribute names
    # Attributes every span of one scope carries (resource, scope), already cleaned once for
    # all of them by ``shared_attributes``; added after ``extra``.
    shared: SharedAttributes | None = None


@dataclass(frozen=True, slots=True)
class SharedAttributes:
    """Attributes of a whole scope, cleaned once: the dict and the keys that were cut."""

    attributes: dict[str, Any]
    truncated: tuple[str, ...] = ()


def shared_attributes(extra: dict[str, Any], limits: Limits | None = None) -> SharedAttributes:
    """``extra`` cleaned as ``map_span`` cleans attributes, for the spans of a scope to share."""
    truncated: list[str] = []
    cleaned = _clean_attributes(extra, limits or DEFAULT_LIMITS, truncated)
    return SharedAttributes(cleaned, tuple(truncated))


class SpanRejected(ValueError):
    """A span that cannot be stored; the message says why, in English, for partial_success."""


_ERROR = 2  # Status.STATUS_CODE_ERROR
_OTEL_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def map_span(raw: RawSpan, prices: PriceTable | None, limits: Limits | None = None) -> Span:
    """The llmpulse ``Span`` of one decoded OTLP span; raises ``SpanRejected`` naming the fault."""
    limits = limits or DEFAULT_LIMITS
    trace_id, span_id = _span_ids(raw)
    attrs = dict(raw.attributes)
    truncated: list[str] = []
    columns, flat_keys = _take_columns(attrs)  # keyword arguments of Span
    model = columns.get("model")
    provider = columns.get("provider")
    if provider is not None:
        columns["provider"] = normalize_provider(provider)
    span = Span(
        trace_id,
        span_id,
        raw.name or "(unnamed)",
        raw.start_ns / 1e9,
        raw.end_ns / 1e9,
        kind=_kind(attrs, model),
        parent_id=raw.parent_span_id.hex() if any(raw.parent_span_id) else None,
        service=raw.service,
        events=raw.events,
        **columns,
    )
    if span.total_tokens is None and (
        span.input_tokens is not None or span.output_tokens is not None
    ):
        span.total_tokens = (span.input_tokens or 0) + (span.output_tokens or 0)
    flat = any(key in attrs for key in flat_keys)
    span.input = _cut(_content(attrs, raw.events, flat, *_INPUT), "input", limits, truncated)
    span.output = _cut(_content(attrs, raw.events, flat, *_OUTPUT), "output", limits, truncated)
    _status(span, raw)
    if prices is not None and (span.input_tokens is not None or span.output_tokens is not None):
        span.cost_usd = prices.cost(
            span.model,
            span.input_tokens,
            span.output_tokens,
            span.cache_read_tokens,
            span.cache_write_tokens,
            span.reasoning_tokens,
        )
    span.attributes = _attributes_of(span, raw, attrs, limits, truncated)
    return span


def _attributes_of(
    span: Span, raw: RawSpan, attrs: dict[str, Any], limits: Limits, truncated: list[str]
) -> dict[str, Any]:
    """What is left of the span's attributes, cleaned, then what llmpulse adds: the clamped end
    time, the OTel span kind, the scope's shared attributes and the span's own extras (which
    win over a span attribute of the same name)."""
    shared = raw.shared
    clamped = raw.end_ns < raw.start_ns  # clock skew between hosts, or a buggy exporter
    otel_kind = _OTEL_KINDS.get(raw.kind)
    added = (
        *(() if shared is None else shared.attributes),
        *raw.extra,
        *((FLAG_CLAMPED,) if clamped else ()),
        *(() if otel_kind is None else ("otel.span.kind",)),
    )
    for key in added:
        attrs.pop(key, None)
    out = _clean_attributes(attrs, limits, truncated)
    if clamped:
        span.end_time = span.start_time
        out[FLAG_CLAMPED] = raw.end_ns
    if otel_kind is not None:
        # Cleaned like any attribute (only ever cut under absurdly small limits).
        out.update(_clean_attributes({"otel.span.kind": otel_kind}, limits, truncated))
    if shared is not None:
        out.update(shared.attributes)
        truncated.extend(shared.truncated)
    if raw.extra:
        out.update(_clean_attributes(raw.extra, limits, truncated))
    if truncated:
        out[FLAG_TRUNCATED] = truncated
    return out


# The attribute names that fill a column, in precedence order per column (the tuples above):
# name -> (column, rank, is_count). One pass over a span's attributes finds every column.
_COLUMN_KEYS: dict[str, tuple[str, int, bool]] = {}
for _column, _keys, _is_count in (
    ("model", MODEL_KEYS, False),
    ("provider", PROVIDER_KEYS, False),
    ("prompt_version", PROMPT_VERSION_KEYS, False),
    ("input_tokens", INPUT_TOKEN_KEYS, True),
    ("output_tokens", OUTPUT_TOKEN_KEYS, True),
    ("total_tokens", TOTAL_TOKEN_KEYS, True),
    ("cache_read_tokens", CACHE_READ_KEYS, True),
    ("cache_write_tokens", CACHE_WRITE_KEYS, True),
    ("reasoning_tokens", REASONING_KEYS, True),
    ("session_id", SESSION_KEYS, False),
    ("user_id", USER_KEYS, False),
    ("error_type", ERROR_TYPE_KEYS, False),
):
    for _rank, _key in enumerate(_keys):
        if _key in _COLUMN_KEYS:
            raise AssertionError(f"{_key} fills two columns")
        _COLUMN_KEYS[_key] = (_column, _rank, _is_count)


def _take_columns(attrs: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Column values found in ``attrs`` (each the first name of its precedence holding a usable
    value: non-empty text, or a count the store accepts), taken out of ``attrs``; and the keys
    that look like flattened messages."""
    best: dict[str, tuple[int, str, Any]] = {}
    flat_keys: list[str] = []
    column_keys = _COLUMN_KEYS
    for key, value in attrs.items():
        found = column_keys.get(key)
        if found is None:
            if key.startswith(_FLAT_PREFIXES):
                flat_keys.append(key)
            continue
        column, rank, is_count = found
        if is_count:
            value = _as_count(value)
            if value is None:
                continue
        elif type(value) is not str or not value:
            continue
        held = best.get(column)
        if held is None or rank < held[0]:
            best[column] = (rank, key, value)
    columns = {}
    for column, (_, key, value) in best.items():
        del attrs[key]
        columns[column] = value
    return columns, flat_keys


def _span_ids(raw: RawSpan) -> tuple[str, str]:
    if len(raw.trace_id) != 16 or not any(raw.trace_id):
        raise SpanRejected(f"span {raw.name!r}: trace_id must be 16 bytes, not all zero")
    if len(raw.span_id) != 8 or not any(raw.span_id):
        raise SpanRejected(f"span {raw.name!r}: span_id must be 8 bytes, not all zero")
    if raw.parent_span_id and len(raw.parent_span_id) != 8:
        raise SpanRejected(f"span {raw.name!r}: parent_span_id must be empty or 8 bytes")
    if raw.start_ns <= 0:
        raise SpanRejected(f"span {raw.name!r}: start_time_unix_nano is missing")
    return raw.trace_id.hex(), raw.span_id.hex()


def _as_count(value: Any) -> int | None:
    """A token count the store accepts, or None (the attribute is then kept as sent)."""
    if type(value) is int:
        number = value
    elif (type(value) is float and value.is_integer()) or (
        type(value) is str and value.isdigit() and len(value) < 20
    ):
        number = int(value)
    else:
        return None
    return number if 0 <= number <= MAX_COUNT else None


def _kind(attrs: dict[str, Any], model: str | None) -> str:
    oi = attrs.get(OPENINFERENCE_KIND)
    if type(oi) is str and oi.lower() in _KINDS:
        del attrs[OPENINFERENCE_KIND]
        if oi.lower() == SpanKind.EMBEDDING.value:  # an llm call, said as GenAI says it
            attrs.setdefault(OPERATION_KEY, EMBEDDINGS_OPERATION)
            return SpanKind.LLM.value
        return oi.lower()
    operation = attrs.get(OPERATION_KEY)
    if type(operation) is str and operation in OPERATION_KINDS:
        return OPERATION_KINDS[operation]
    if oi is None and model is not None:
        return SpanKind.LLM.value
    return SpanKind.SPAN.value


def _status(span: Span, raw: RawSpan) -> None:
    if raw.status_code == _ERROR:
        span.status = "error"
        span.error_message = raw.status_message or None
        if span.error_type is None:  # no error.type attribute: the exception event's type
            for event in raw.events:
                if event.name == "exception":
                    value = event.attributes.get("exception.type")
                    span.error_type = value if type(value) is str else None
                    break


def _content(
    attrs: dict[str, Any],
    events: list[SpanEvent],
    flat: bool,
    value_keys: tuple[str, ...],
    prefixes: tuple[str, ...],
    message_events: Mapping[str, str],
    last_keys: tuple[str, ...],
) -> str | None:
    for key in value_keys:
        if key in attrs and attrs[key] not in (None, ""):
            return _as_text(attrs.pop(key))
    for prefix in prefixes if flat else ():
        messages = _flattened(attrs, prefix)
        if messages:
            return compact_json(messages)
    if events:
        found = [
            _event_message(e, message_events[e.name]) for e in events if e.name in message_events
        ]
        if found:
            return compact_json(found)
    for key in last_keys:
        if key in attrs and attrs[key] not in (None, ""):
            return _as_text(attrs.pop(key))
    return None


def _flattened(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Messages flattened as ``<prefix><i>.<field>`` keys, in index order; the keys are taken.

    Bounded by the number of attributes, whatever the indexes say (``.99999999.`` is one entry).
    """
    by_index: dict[int, dict[str, Any]] = {}
    taken: list[str] = []
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        index, dot, field = key[len(prefix) :].partition(".")
        if not (dot and index.isdigit() and field):
            continue
        if field.startswith("message."):  # OpenInference nests each message under "message."
            field = field[len("message.") :]
        by_index.setdefault(int(index), {})[field] = _json_safe(value)
        taken.append(key)
    for key in taken:
        del attrs[key]
    return [by_index[i] for i in sorted(by_index)]


def _event_message(event: SpanEvent, role: str) -> dict[str, Any]:
    message = {"role": role}
    message.update((k, _json_safe(v)) for k, v in event.attributes.items())
    return message


def _as_text(value: Any) -> str:
    return value if type(value) is str else compact_json(_json_safe(value))


def _cut(text: str | None, field: str, limits: Limits, truncated: list[str]) -> str | None:
    if text is not None and len(text) > limits.max_text_chars:
        truncated.append(field)
        return text[: limits.max_text_chars]
    return text


def _json_safe(value: Any) -> Any:
    """``value`` with what JSON cannot hold spelled out: NaN and infinities as text."""
    if type(value) is float and not math.isfinite(value):
        return str(value).replace("inf", "Infinity").replace("nan", "NaN")
    if type(value) is list:
        return [_json_safe(v) for v in value]
    if type(value) is dict:
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def _clean_attributes(
    attrs: dict[str, Any], limits: Limits, truncated: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cap = limits.max_text_chars
    for key, value in attrs.items():
        kind = type(value)
        if kind is str:
            if len(value) > cap:
                truncated.append(key)
                value = value[:cap]
        elif kind is float:
            if value - value != 0.0:  # NaN or an infinity
                value = _json_safe(value)
        elif kind is not int and kind is not bool:
            value = _json_safe(value)
        out[key] = value
    return out
