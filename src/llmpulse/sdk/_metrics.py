"""The server's ``llm_*`` Prometheus metrics from inside an application that runs no server.

``start_metrics_server(port)`` serves them on their own port; ``metrics_asgi_app()`` and
``metrics_wsgi_app()`` return an app to mount in the application's web server. Both read
prometheus_client's default registry, so the application's own metrics appear beside them.

Spans are counted once each, when they are stored, never on the recording call:

* with the embedded store, on the export thread after the write, leaving out the spans the
  write names as not stored (``WriteResult.skipped_spans``), except, when the batch is a retry,
  those it found stored by the failed attempt (``stored_before``: committed, never counted);
* with a server (``HttpExporter``), when their request is acknowledged, on whichever thread
  sent it (``http.span_observer``): a span that waited in the spool and was replayed later
  (even by a later process, from a dead one's spool) is counted when the replay lands.

prometheus_client is imported on the first call here, never by ``import llmpulse``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from llmpulse.errors import ConfigError
from llmpulse.schema import Span
from llmpulse.sdk import _batcher
from llmpulse.sdk.exporters import http

__all__ = [
    "MetricsServer",
    "metrics_asgi_app",
    "metrics_wsgi_app",
    "sdk_metrics",
    "start_metrics_server",
]

log = logging.getLogger("llmpulse.sdk")

_lock = threading.Lock()
_metrics: Any = None  # the process's LLMMetrics, made on first use
_row_index: tuple[int, ...] | None = None


def sdk_metrics() -> Any:
    """The process's ``LLMMetrics`` on prometheus_client's default registry (made once)."""
    global _metrics
    with _lock:
        if _metrics is None:
            try:
                from prometheus_client import REGISTRY
            except ImportError:
                raise ConfigError(
                    "metrics need prometheus_client: pip install 'llmpulse[prometheus]'"
                ) from None
            from llmpulse.prometheus import LLMMetrics

            _metrics = LLMMetrics(REGISTRY)
            _batcher.exported_observer = _observe
            http.span_observer = _observe_delivered
        return _metrics


class MetricsServer:
    """A running metrics endpoint: its ``port``, and ``close()`` to stop serving."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.port: int = server.server_address[1]

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)

    def __repr__(self) -> str:
        return f"MetricsServer(port={self.port})"


def start_metrics_server(port: int = 9464, addr: str = "127.0.0.1") -> MetricsServer:
    """Serve ``/metrics`` on ``addr:port`` from a daemon thread (``port=0``: any free port)."""
    metrics = sdk_metrics()
    from prometheus_client import start_http_server

    try:
        server, thread = start_http_server(port, addr=addr, registry=metrics.registry)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {addr}:{port}: {exc.strerror}") from exc
    return MetricsServer(server, thread)


def metrics_asgi_app() -> Any:
    """An ASGI app serving the metrics (mount it at ``/metrics``)."""
    from prometheus_client import make_asgi_app

    return make_asgi_app(registry=sdk_metrics().registry)


def metrics_wsgi_app() -> Any:
    """A WSGI app serving the metrics (mount it at ``/metrics``)."""
    from prometheus_client import make_wsgi_app

    return make_wsgi_app(registry=sdk_metrics().registry)


def _observe(batch: list[Any], result: Any, retried: bool = False) -> None:
    """Count the spans of an exported batch that were stored.

    A retried batch also counts the spans the write found already stored (``stored_before``):
    the failed attempt committed them but never returned, so they were not counted then.
    """
    metrics = _metrics
    if metrics is None or getattr(result, "spans_seen", False):
        return  # an exporter that reports its delivered spans itself (HttpExporter)
    spans = [r for r in batch if isinstance(r, Span)]
    rows = [r[0] for r in batch if type(r) is tuple]
    skipped = getattr(result, "skipped_spans", ())
    if skipped and retried:
        skipped = tuple(set(skipped) - set(getattr(result, "stored_before", ())))
    if skipped:  # the store's order: spans, then ready rows (see StoreExporter.export)
        out, n_spans = set(skipped), len(spans)
        spans = [s for i, s in enumerate(spans) if i not in out]
        rows = [r for i, r in enumerate(rows, n_spans) if i not in out]
    metrics.observe(spans)
    if rows:
        idx = _row_columns()
        for row in rows:
            metrics.observe_one(*(row[i] for i in idx))


def _observe_delivered(spans: list[dict[str, Any]]) -> None:
    """Count the spans (as sent on the wire) of a request the server acknowledged."""
    metrics = _metrics
    if metrics is not None:
        metrics.observe([Span(**fields) for fields in spans])


def _row_columns() -> tuple[int, ...]:
    """Positions in a store row of ``LLMMetrics.observe_one``'s arguments."""
    global _row_index
    if _row_index is None:
        # Ready rows exist only with the store exporter, which has imported the store already.
        from llmpulse.store._validate import SPAN_COLUMNS

        names = (
            "model", "kind", "status", "latency_ms", "input_tokens", "output_tokens",
            "cache_read_tokens", "reasoning_tokens", "cost_usd",
        )  # fmt: skip
        _row_index = tuple(SPAN_COLUMNS.index(n) for n in names)
    return _row_index
