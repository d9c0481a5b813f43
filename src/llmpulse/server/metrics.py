"""The server's Prometheus metrics: the ``llm_*`` families plus its own ingest and HTTP ones.

One ``ServerMetrics`` per app (``metrics_of(app)``), on its own registry, so several apps in
one process (tests) never collide. Ingest paths call ``record_ingest`` once per request, after
the batch committed; the HTTP middleware times every request by its route template.

=========================================  =========  ===========================================
name                                       type       labels
=========================================  =========  ===========================================
llmpulse_ingest_requests_total             counter    source (native, otlp), outcome
llmpulse_ingest_spans_total                counter    source: spans stored
llmpulse_ingest_duplicate_spans_total      counter    source: spans already stored (a retry)
llmpulse_ingest_dropped_spans_total        counter    source, reason (invalid, refused): not stored
llmpulse_ingest_in_flight                  gauge      batches being written by this process
llmpulse_ingest_waiting                    gauge      batches waiting for a slot in this process
llmpulse_http_requests_total               counter    method, route, status
llmpulse_http_request_duration_seconds     histogram  method, route
=========================================  =========  ===========================================

``outcome`` is one of ``ok``, ``partial``, ``invalid``, ``too_large``, ``unsupported``,
``unauthorized``, ``overloaded``, ``unavailable`` or ``error``; ``route`` is the route's path
template (``/api/v1/traces/{trace_id}``), or ``other`` for a path no route matched, so a
scanner cannot mint series.

Several worker processes (``llmpulse serve --workers N``): ``prepare_multiprocess`` points
prometheus_client at a fresh ``PROMETHEUS_MULTIPROC_DIR`` before the workers start, and each
scrape merges every worker's counters and histograms from it. The model-label cap then holds
per worker, and the two queue gauges are those of the worker that answered the scrape.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any

from llmpulse.prometheus import LLMMetrics
from llmpulse.schema import Span

__all__ = [
    "INGEST_OUTCOMES",
    "MULTIPROC_ENV",
    "HttpMetricsMiddleware",
    "ServerMetrics",
    "metrics_of",
    "prepare_multiprocess",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
INGEST_OUTCOMES = frozenset((
    "ok", "partial", "invalid", "too_large", "unsupported", "unauthorized", "overloaded",
    "unavailable", "error",
))  # fmt: skip
_DUPLICATE = "duplicate span_id"  # the store's reason for a span id it already holds
# Request durations: 1 ms to ~33 s (the API and ingest; not LLM calls).
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServerMetrics:
    """Every metric ``GET /metrics`` serves, on one registry."""

    def __init__(self, registry: Any = None, *, max_models: int | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry() if registry is None else registry
        kw = {} if max_models is None else {"max_models": max_models}
        self.llm = LLMMetrics(self.registry, **kw)
        reg = self.registry
        self.requests = Counter(
            "llmpulse_ingest_requests", "Ingest requests by source and outcome.",
            ["source", "outcome"], registry=reg,
        )  # fmt: skip
        self.spans = Counter(
            "llmpulse_ingest_spans", "Spans stored by ingest.", ["source"], registry=reg
        )
        self.duplicates = Counter(
            "llmpulse_ingest_duplicate_spans", "Spans ingest received again (already stored).",
            ["source"], registry=reg,
        )  # fmt: skip
        self.dropped = Counter(
            "llmpulse_ingest_dropped_spans", "Spans ingest did not store, by reason.",
            ["source", "reason"], registry=reg,
        )  # fmt: skip
        self.http_requests = Counter(
            "llmpulse_http_requests", "HTTP requests by method, route template and status.",
            ["method", "route", "status"], registry=reg,
        )  # fmt: skip
        self.http_duration = Histogram(
            "llmpulse_http_request_duration_seconds", "HTTP request duration by route template.",
            ["method", "route"], buckets=_HTTP_BUCKETS, registry=reg,
        )  # fmt: skip
        self._gate: Any = None
        self.gate_collector = _GateCollector(self)
        reg.register(self.gate_collector)

    def watch_gate(self, gate: Any) -> None:
        """Report this ingest gate's ``in_flight`` and ``waiting`` as gauges."""
        self._gate = gate

    def record_ingest(
        self,
        source: str,
        spans: Sequence[Span],
        result: Any = None,
        *,
        invalid: int = 0,
        duplicates: int = 0,
    ) -> None:
        """Count one committed ingest request: ``spans`` as written, the store's ``result``.

        ``invalid`` spans were refused before the write and ``duplicates`` dropped as repeats
        within the request; the store's ``skipped_spans`` leaves out what it did not store.
        """
        skipped = tuple(getattr(result, "skipped_spans", ()) or ())
        stored: Iterable[Span] = spans
        if skipped:
            out = set(skipped)
            stored = [s for i, s in enumerate(spans) if i not in out]
        reasons: dict[str, int] = dict(getattr(result, "reasons", {}) or {})
        repeats = duplicates + getattr(result, "duplicates", 0) + reasons.pop(_DUPLICATE, 0)
        refused = sum(reasons.values())
        stored = list(stored)
        self.llm.observe(stored)
        self.spans.labels(source).inc(len(stored))
        if repeats:
            self.duplicates.labels(source).inc(repeats)
        if invalid:
            self.dropped.labels(source, "invalid").inc(invalid)
        if refused:
            self.dropped.labels(source, "refused").inc(refused)
        self.request(source, "partial" if invalid or refused else "ok")

    def request(self, source: str, outcome: str) -> None:
        """Count one ingest request that ended with ``outcome``."""
        self.requests.labels(source, outcome if outcome in INGEST_OUTCOMES else "error").inc()


class _GateCollector:
    """The ingest gate's depth, read at scrape time (this process's gate)."""

    def __init__(self, owner: ServerMetrics) -> None:
        self._owner = owner

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        gate = self._owner._gate
        in_flight = GaugeMetricFamily(
            "llmpulse_ingest_in_flight", "Ingest batches being written by this process."
        )
        waiting = GaugeMetricFamily(
            "llmpulse_ingest_waiting", "Ingest batches waiting for a write slot in this process."
        )
        in_flight.add_metric([], float(getattr(gate, "in_flight", 0)))
        waiting.add_metric([], float(getattr(gate, "waiting", 0)))
        return [in_flight, waiting]


_lock = threading.Lock()


def metrics_of(app: Any) -> ServerMetrics:
    """The app's ``ServerMetrics``, made on first use."""
    state = app.state
    metrics = getattr(state, "llmpulse_metrics", None)
    if metrics is None:
        with _lock:
            metrics = getattr(state, "llmpulse_metrics", None)
            if metrics is None:
                metrics = ServerMetrics()
                state.llmpulse_metrics = metrics
    return metrics


class HttpMetricsMiddleware:
    """Pure ASGI middleware: count and time every HTTP request by its route template."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        began = time.perf_counter()

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", None)
            method = scope.get("method", "GET")
            metrics = metrics_of(scope["app"]) if "app" in scope else None
            if metrics is not None:
                path = template or "other"
                metrics.http_requests.labels(method, path, str(status)).inc()
                metrics.http_duration.labels(method, path).observe(time.perf_counter() - began)


def prepare_multiprocess(env: MutableMapping[str, str] | None = None) -> str:
    """Give the workers about to start a fresh ``PROMETHEUS_MULTIPROC_DIR``; returns its path.

    A directory already set is wiped (its files are the previous run's counters, which would
    otherwise be added to this run's); else a new temporary one is made. Call it before the
    worker processes start, in the process that starts them.
    """
    target: MutableMapping[str, str] = os.environ if env is None else env
    path = target.get(MULTIPROC_ENV)
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)
    else:
        path = tempfile.mkdtemp(prefix="llmpulse-prometheus-")
        target[MULTIPROC_ENV] = path
    return path
