"""The ``llm_*`` Prometheus metrics, defined once for the server and the SDK alike.

``llmpulse serve`` exposes them on ``GET /metrics`` for everything it ingests (native and
OTLP); an application that runs no server exposes the same names from its own process with
``llmpulse.start_metrics_server(port)`` or by mounting ``llmpulse.metrics_asgi_app()``. Both
feed one ``LLMMetrics`` with the spans that were stored, so the numbers are what a query over
the store would give.

==============================  =========  ======================================================
name                            type       labels
==============================  =========  ======================================================
llm_request_latency_seconds     histogram  model, kind
llm_tokens_total                counter    model, type (input, output, cache_read, reasoning)
llm_cost_usd_total              counter    model
llm_requests_total              counter    model, status (ok, error)
llmpulse_label_overflow_total   counter    label (the label whose value became ``other``)
==============================  =========  ======================================================

Cardinality is bounded: the first ``max_models`` model names get a series of their own and
every later one is counted under ``model="other"`` (and in ``llmpulse_label_overflow_total``);
kinds outside llmpulse's span kinds become ``other`` too. Spans without a model are labelled
``model="none"``. ``llm_requests_total`` and the token and cost counters count llm and
embedding spans (and any span naming a model); the latency histogram times every span.

``prometheus_client`` is imported when an ``LLMMetrics`` is made, never by ``import llmpulse``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from llmpulse.schema import Span, SpanKind

__all__ = [
    "DEFAULT_MAX_MODELS",
    "LATENCY_BUCKETS",
    "NO_MODEL",
    "OVERFLOW",
    "LLMMetrics",
    "metrics_response",
]

# GenAI semconv (v1.41) buckets for operation duration: 0.01 s doubling to 81.92 s. The client
# library's defaults stop at 10 s, shorter than many LLM calls.
LATENCY_BUCKETS = tuple(round(0.01 * 2**i, 2) for i in range(14))
DEFAULT_MAX_MODELS = 100
OVERFLOW = "other"
NO_MODEL = "none"
_KINDS = frozenset(k.value for k in SpanKind)
_REQUEST_KINDS = frozenset((SpanKind.LLM.value, SpanKind.EMBEDDING.value))
_TOKEN_TYPES = ("input", "output", "cache_read", "reasoning")


class LLMMetrics:
    """The ``llm_*`` metric families on one registry, fed with stored spans.

    Example::

        from prometheus_client import CollectorRegistry, generate_latest

        metrics = LLMMetrics(CollectorRegistry())
        metrics.observe(spans)                # after the batch was stored
        text = generate_latest(metrics.registry)
    """

    def __init__(self, registry: Any = None, *, max_models: int = DEFAULT_MAX_MODELS) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        if max_models < 1:
            raise ValueError(f"max_models must be >= 1, got {max_models}")
        self.registry = CollectorRegistry() if registry is None else registry
        self.max_models = max_models
        self._models: set[str] = set()
        self._lock = threading.Lock()
        reg = self.registry
        self.latency = Histogram(
            "llm_request_latency_seconds", "Wall time of spans, by model and span kind.",
            ["model", "kind"], buckets=LATENCY_BUCKETS, registry=reg,
        )  # fmt: skip
        self.tokens = Counter(
            "llm_tokens", "Tokens of llm calls; cache_read is part of input and reasoning "
            "part of output.", ["model", "type"], registry=reg,
        )  # fmt: skip
        self.cost = Counter(
            "llm_cost_usd", "Cost in USD of llm calls priced by the price table.", ["model"],
            registry=reg,
        )  # fmt: skip
        self.requests = Counter(
            "llm_requests", "LLM and embedding calls, by model and status.",
            ["model", "status"], registry=reg,
        )  # fmt: skip
        self.overflow = Counter(
            "llmpulse_label_overflow", "Observations whose label value was replaced by "
            "'other' to bound the number of series.", ["label"], registry=reg,
        )  # fmt: skip

    def model_label(self, model: str | None) -> str:
        """The ``model`` label value of a span: its model, ``none`` or, past the cap, ``other``."""
        label = self._label(model)
        if label is OVERFLOW:
            self.overflow.labels("model").inc()
        return label

    def _label(self, model: str | None) -> str:
        # model_label without counting the overflow (observe counts a batch's at once).
        if not model:
            return NO_MODEL
        if model in self._models:
            return model
        with self._lock:
            if len(self._models) < self.max_models:
                self._models.add(model)
                return model
        return OVERFLOW

    def observe(self, spans: Iterable[Span]) -> None:
        """Count stored spans (call it once per span, after the write committed).

        The same counts as ``observe_one`` per span, summed per series first: a batch of a
        few thousand spans touches each counter child once, not once per span.
        """
        tally = self._tally(spans)
        for (label, kind), values in tally.latencies.items():
            child = self.latency.labels(label, kind)
            for seconds in values:
                child.observe(seconds)
        for (label, status), n in tally.requests.items():
            self.requests.labels(label, status).inc(n)
        for (label, token_type), n in tally.tokens.items():
            self.tokens.labels(label, token_type).inc(n)
        for label, usd in tally.cost.items():
            self.cost.labels(label).inc(usd)
        for name, n in tally.overflow.items():
            if n:
                self.overflow.labels(name).inc(n)

    def _tally(self, spans: Iterable[Span]) -> _Tally:
        tally = _Tally()
        labels: dict[str | None, str] = {}
        latencies, requests, tokens, cost = (
            tally.latencies,
            tally.requests,
            tally.tokens,
            tally.cost,
        )
        for span in spans:
            model, kind = span.model, span.kind
            label = labels.get(model)
            if label is None:
                label = labels[model] = self._label(model)
            if label is OVERFLOW:
                tally.overflow["model"] += 1
            if kind not in _KINDS:
                tally.overflow["kind"] += 1
                kind = OVERFLOW
            seconds = max(0.0, (span.end_time - span.start_time) * 1000.0) / 1000.0  # latency_ms
            latencies.setdefault((label, kind), []).append(seconds)
            if not (model or kind in _REQUEST_KINDS):
                continue
            key = (label, "error" if span.status == "error" else "ok")
            requests[key] = requests.get(key, 0) + 1
            for token_type, n in (
                ("input", span.input_tokens), ("output", span.output_tokens),
                ("cache_read", span.cache_read_tokens), ("reasoning", span.reasoning_tokens),
            ):  # fmt: skip
                if n:
                    tokens[(label, token_type)] = tokens.get((label, token_type), 0) + n
            if span.cost_usd:
                cost[label] = cost.get(label, 0.0) + span.cost_usd
        return tally

    def observe_one(
        self,
        model: str | None,
        kind: str,
        status: str,
        latency_ms: float,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        cost_usd: float | None = None,
    ) -> None:
        """Count one stored span given by its columns."""
        label = self.model_label(model)
        if kind not in _KINDS:
            self.overflow.labels("kind").inc()
            kind = OVERFLOW
        self.latency.labels(label, kind).observe(max(0.0, latency_ms) / 1000.0)
        if not (model or kind in _REQUEST_KINDS):
            return
        self.requests.labels(label, "error" if status == "error" else "ok").inc()
        counts = (input_tokens, output_tokens, cache_read_tokens, reasoning_tokens)
        for kind_of_token, n in zip(_TOKEN_TYPES, counts, strict=True):
            if n:
                self.tokens.labels(label, kind_of_token).inc(n)
        if cost_usd:
            self.cost.labels(label).inc(cost_usd)


@dataclass(slots=True)
class _Tally:
    """A batch of spans summed per series: latencies to observe, counts to add."""

    latencies: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    requests: dict[tuple[str, str], int] = field(default_factory=dict)
    tokens: dict[tuple[str, str], int] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    overflow: dict[str, int] = field(default_factory=lambda: {"model": 0, "kind": 0})


def metrics_response(
    registry: Any, accept: str | None, *, this_process: Iterable[Any] = ()
) -> tuple[bytes, str]:
    """The body and Content-Type of a scrape: OpenMetrics when the scraper asks for it.

    When ``PROMETHEUS_MULTIPROC_DIR`` is set (the server with ``--workers`` > 1), every
    process's values are merged from that directory instead of read from ``registry``, and
    the ``this_process`` collectors (gauges read at scrape time) are added to them.
    """
    import os

    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import choose_encoder

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        for collector in this_process:
            registry.register(collector)
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
