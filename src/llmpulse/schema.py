"""The four records llmpulse keeps: span, metric point, run and alert.

Every feature maps onto these. They are plain slotted dataclasses (cheap to build on the
SDK's background thread, cheap to read in the store) and import nothing from llmpulse.

Span attribute names follow the OpenTelemetry GenAI semantic conventions; ``GENAI_FIELDS``
maps the ``gen_ai.*`` attribute names onto the span's columns so that OTLP traces from other
instrumentations land in the same places.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BRANCH_ATTRIBUTE",
    "GENAI_FIELDS",
    "USAGE_ESTIMATED_ATTRIBUTE",
    "Alert",
    "AlertState",
    "MetricPoint",
    "Run",
    "RunStatus",
    "Span",
    "SpanEvent",
    "SpanKind",
    "SpanStatus",
]


class SpanKind(str, enum.Enum):
    """What a span timed."""

    LLM = "llm"
    CHAIN = "chain"
    TOOL = "tool"
    RETRIEVER = "retriever"
    EMBEDDING = "embedding"
    AGENT = "agent"
    BRANCH = "branch"
    TASK = "task"
    SPAN = "span"


class SpanStatus(str, enum.Enum):
    """How a span ended."""

    OK = "ok"
    ERROR = "error"


class RunStatus(str, enum.Enum):
    """Where a run is in its life."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


class AlertState(str, enum.Enum):
    """An alert's lifecycle, as Alertmanager users know it."""

    PENDING = "pending"
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


# The attribute a branch span carries to say which way the decision went.
BRANCH_ATTRIBUTE = "llmpulse.branch"

# Set (to the method, e.g. "chars/4") on an llm span whose token counts were estimated because
# the provider reported no usage; the cost computed from them is an estimate too.
USAGE_ESTIMATED_ATTRIBUTE = "llmpulse.usage_estimated"

# gen_ai.* attribute name -> Span field. Older names are kept so either generation maps.
GENAI_FIELDS: dict[str, str] = {
    "gen_ai.request.model": "model",
    "gen_ai.response.model": "model",
    "gen_ai.system": "provider",
    "gen_ai.provider.name": "provider",
    "gen_ai.usage.input_tokens": "input_tokens",
    "gen_ai.usage.prompt_tokens": "input_tokens",
    "gen_ai.usage.output_tokens": "output_tokens",
    "gen_ai.usage.completion_tokens": "output_tokens",
    "gen_ai.usage.cache_read.input_tokens": "cache_read_tokens",
    "gen_ai.usage.cache_creation.input_tokens": "cache_write_tokens",
    "gen_ai.usage.reasoning.output_tokens": "reasoning_tokens",
    "gen_ai.prompt.version": "prompt_version",
    "gen_ai.conversation.id": "session_id",
    "session.id": "session_id",
    "user.id": "user_id",
    "error.type": "error_type",
}


@dataclass(slots=True)
class SpanEvent:
    """Something that happened at one instant inside a span (a retry, a fallback, ...)."""

    name: str
    time: float
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Span:
    """One timed unit of work inside a trace.

    Times are Unix seconds (float). Token counts follow how providers bill: ``input_tokens``
    *includes* ``cache_read_tokens`` and ``cache_write_tokens``; ``output_tokens`` *includes*
    ``reasoning_tokens``. ``cost_usd`` is ``None`` when the model's price is unknown.
    """

    trace_id: str
    span_id: str
    name: str
    start_time: float
    end_time: float
    kind: str = SpanKind.SPAN.value
    parent_id: str | None = None
    status: str = SpanStatus.OK.value
    error_type: str | None = None
    error_message: str | None = None
    model: str | None = None
    provider: str | None = None
    prompt_version: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None
    ttft_ms: float | None = None
    session_id: str | None = None
    user_id: str | None = None
    service: str | None = None
    input: str | None = None
    output: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[SpanEvent] = field(default_factory=list)

    @property
    def latency_ms(self) -> float:
        """Wall time of the span in milliseconds (never negative)."""
        return max(0.0, (self.end_time - self.start_time) * 1000.0)


@dataclass(slots=True)
class MetricPoint:
    """One value of a named series, optionally tied to a run and a step.

    ``point_id`` is its idempotency key: the SDK gives each point a random one, so a batch sent
    again (its acknowledgement was lost) stores none of its points twice. ``None``: no key,
    every write of the point stores it.
    """

    name: str
    value: float
    timestamp: float
    labels: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    step: int | None = None
    point_id: str | None = None


@dataclass(slots=True)
class Run:
    """A bounded job (an experiment or benchmark run) with params, status and summary metrics."""

    run_id: str
    name: str
    started_at: float
    kind: str = "experiment"
    experiment: str | None = None
    model: str | None = None
    status: str = RunStatus.RUNNING.value
    ended_at: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Alert:
    """A rule firing, with its lifecycle."""

    alert_id: str
    rule: str
    fingerprint: str
    severity: str
    state: str
    started_at: float
    updated_at: float
    value: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    ended_at: float | None = None
