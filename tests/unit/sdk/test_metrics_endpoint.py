"""llm_* Prometheus metrics from inside an application: a metrics port or a mounted app."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import llmpulse
from llmpulse.schema import Span
from llmpulse.sdk import _metrics
from llmpulse.store import WriteResult
from llmpulse.testing import InMemoryExporter, reset_sdk


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return scrape(text).get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def server() -> Iterator[_metrics.MetricsServer]:
    srv = llmpulse.start_metrics_server(0)
    try:
        yield srv
    finally:
        srv.close()
        reset_sdk()


class TestMetricsServer:
    def test_recorded_calls_are_counted_on_the_metrics_port(
        self, server: _metrics.MetricsServer, sqlite_url: str
    ) -> None:
        """Calls recorded into the embedded store show up in llm_* series, scraped over HTTP."""
        url = f"http://127.0.0.1:{server.port}/metrics"
        before = httpx.get(url).text
        llmpulse.init(sqlite_url, instrument=())
        for _ in range(3):
            llmpulse.record_llm_call("sdk-metrics-model", input_tokens=100, output_tokens=10,
                                     latency_ms=120.0, cost_usd=0.5, reasoning_tokens=4)  # fmt: skip
        llmpulse.record_llm_call("sdk-metrics-model", input_tokens=1, status="error")
        with llmpulse.span("step", kind="chain"):
            pass
        assert llmpulse.flush(10)
        after = httpx.get(url).text

        def delta(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        m = "sdk-metrics-model"
        assert delta("llm_requests_total", model=m, status="ok") == 3
        assert delta("llm_requests_total", model=m, status="error") == 1
        assert delta("llm_tokens_total", model=m, type="input") == 301
        assert delta("llm_tokens_total", model=m, type="output") == 30
        assert delta("llm_tokens_total", model=m, type="reasoning") == 12
        assert delta("llm_cost_usd_total", model=m) == pytest.approx(1.5)
        assert delta("llm_request_latency_seconds_count", model=m, kind="llm") == 4
        assert delta("llm_request_latency_seconds_count", model="none", kind="chain") == 1

    def test_port_in_use_is_a_clear_error(self, server: _metrics.MetricsServer) -> None:
        """A taken port raises ConfigError naming it."""
        with pytest.raises(llmpulse.errors.ConfigError, match=f"127.0.0.1:{server.port}"):
            llmpulse.start_metrics_server(server.port)


class TestMountedApps:
    async def test_asgi_app(self) -> None:
        """metrics_asgi_app() serves the same exposition to an ASGI server."""
        app = llmpulse.metrics_asgi_app()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/metrics")
        assert response.status_code == 200
        assert "# TYPE llm_requests_total counter" in response.text

    def test_wsgi_app(self) -> None:
        """metrics_wsgi_app() serves the same exposition to a WSGI server."""
        app = llmpulse.metrics_wsgi_app()
        status: list[str] = []
        body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics",
                             "QUERY_STRING": ""}, lambda s, h: status.append(s)))  # fmt: skip
        assert status == ["200 OK"] and b"# TYPE llm_tokens_total counter" in body


class TestOnlyStoredSpansCount:
    def test_spans_the_store_skipped_are_not_counted(self) -> None:
        """A batch's skipped_spans (duplicates, refused rows) are left out of the counters."""
        metrics = _metrics.sdk_metrics()
        spans = [Span(trace_id="t", span_id=f"s{i}", name="c", start_time=1.0, end_time=2.0,
                      kind="llm", model="skip-model", input_tokens=10) for i in range(4)]  # fmt: skip
        key = ("skip-model", "ok")
        before = metrics.requests.labels(*key)._value.get()
        _metrics._observe(spans, WriteResult(stored=2, rejected=2, spans=2, skipped_spans=(0, 3)))
        _metrics._observe(spans, InMemoryExporter())  # no skipped_spans: every span counts
        assert metrics.requests.labels(*key)._value.get() - before == 2 + 4


class TestSpansThroughAServer:
    def test_every_span_is_counted_once_however_it_was_delivered(
        self, sqlite_url: str, tmp_path: Path
    ) -> None:
        """Through the HTTP exporter: a batch delivered at once, one spooled while the server
        was unavailable (503) and replayed, and one whose answer was lost after the commit
        (spooled, replayed, a duplicate on the server): each span counted exactly once."""
        from llmpulse.sdk.exporters.http import HttpExporter
        from llmpulse.server.app import create_app
        from llmpulse.server.settings import ServerSettings
        from llmpulse.store import Store
        from tests.e2e.live_server import serving
        from tests.e2e.lossy_proxy import lossy_proxy

        metrics = _metrics.sdk_metrics()
        model = "through-the-spool"

        def counted() -> tuple[float, float]:
            return (metrics.requests.labels(model, "ok")._value.get(),
                    metrics.tokens.labels(model, "input")._value.get())  # fmt: skip

        before = counted()
        with (
            Store.open(sqlite_url) as store,
            serving(create_app(ServerSettings(), store=store)) as url,
            lossy_proxy(url) as proxy,
        ):
            # retry_budget=0: a failed request goes to the spool at once, replayed from there.
            exporter = HttpExporter(proxy.url, spool_dir=tmp_path / "spool", retry_budget=0.0)
            client = llmpulse.init(exporter=exporter, instrument=(), batch_size=10_000)
            for calls, lose, unavailable in ((5, 0, 0), (15, 0, 1), (20, 1, 0)):
                proxy.lose, proxy.unavailable = lose, unavailable
                for _ in range(calls):
                    llmpulse.record_llm_call(model, input_tokens=3, output_tokens=1)
                assert client.flush(30), client.stats()
            stats = client.stats()
            (row,) = store.span_stats(0, 4e9, model=model)
        assert len(proxy.lost()) == 1 and proxy.unavailable == 0
        assert (stats.recorded, stats.exported, stats.spooled, stats.dropped_total) == (
            40,
            40,
            0,
            0,
        )
        assert row.calls == 40  # what the server stored, once each
        after = counted()
        assert (after[0] - before[0], after[1] - before[1]) == (40, 120)


class TestSpansThroughTheStore:
    def test_a_write_committed_but_unanswered_is_counted_once(self, database_url: str) -> None:
        """The store exporter's first write commits and then raises (the answer was lost); the
        retry finds every span stored. They are counted once: not zero times, not twice."""
        from tests.faults._accounting import AckLostStoreExporter

        metrics = _metrics.sdk_metrics()
        model = "answer-lost-model"
        before = metrics.requests.labels(model, "ok")._value.get()
        exporter = AckLostStoreExporter(database_url)
        client = llmpulse.init(exporter=exporter, instrument=(), retry_backoff=0.0)
        for _ in range(30):
            llmpulse.record_llm_call(model, input_tokens=3)
        assert llmpulse.flush(10)
        stats = client.stats()
        reset_sdk()
        assert exporter.lost > 0 and stats.export_failures == 1 and stats.exported == 30
        assert metrics.requests.labels(model, "ok")._value.get() - before == 30


def test_import_llmpulse_loads_no_prometheus_client() -> None:
    """The SDK stays standard-library-only at import time."""
    code = "import sys, llmpulse; print('prometheus_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
