"""GET /metrics over the real app: native ingest and OTLP count into the same llm_* series."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from llmpulse.store import Store
from tests.unit.server.otlp_payloads import request, span


def value(client: TestClient, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


class TestMetricsRoute:
    def test_native_and_otlp_ingest_are_both_counted(
        self, sqlite_store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """Two spans through native ingest and one through OTLP: 3 requests of the model."""
        client = make_client(sqlite_store)
        native = {"spans": [
            {"trace_id": "t1", "span_id": f"n{i}", "name": "chat", "start_time": 1.0,
             "end_time": 1.5, "kind": "llm", "model": "gpt-4o-mini", "input_tokens": 10,
             "output_tokens": 5}
            for i in range(2)
        ]}  # fmt: skip
        assert client.post("/api/v1/ingest", json=native).status_code == 200
        otlp = request(span("chat", attributes={
            "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 7}))  # fmt: skip
        r = client.post("/v1/traces", content=otlp.SerializeToString(),
                        headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
        assert r.status_code == 200
        m = "gpt-4o-mini"
        assert value(client, "llm_requests_total", model=m, status="ok") == 3
        assert value(client, "llm_tokens_total", model=m, type="input") == 27
        assert value(client, "llm_cost_usd_total", model=m) > 0
        assert value(client, "llmpulse_ingest_spans_total", source="native") == 2
        assert value(client, "llmpulse_ingest_spans_total", source="otlp") == 1
        assert value(client, "llmpulse_ingest_requests_total", source="native", outcome="ok") == 1
        # A native retry of the same batch stores and counts nothing new.
        assert client.post("/api/v1/ingest", json=native).status_code == 200
        assert value(client, "llm_requests_total", model=m, status="ok") == 3
        assert value(client, "llmpulse_ingest_duplicate_spans_total", source="native") == 2

    def test_metrics_need_no_key(
        self, store: Store, admin_key: str, make_client: Callable[..., TestClient]
    ) -> None:
        """/metrics is public even once keys exist (Prometheus scrapes without one)."""
        client = make_client(store)
        assert client.get("/api/v1/keys").status_code == 401
        assert client.get("/metrics").status_code == 200

    def test_http_requests_are_counted_by_route_template(
        self, sqlite_store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """Requests are labelled with the route's template, never the raw path."""
        client = make_client(sqlite_store)
        client.get("/api/v1/health")
        client.get("/nope/123")
        assert (
            value(
                client,
                "llmpulse_http_requests_total",
                method="GET",
                route="/api/v1/health",
                status="200",
            )
            == 1
        )
        assert (
            value(client, "llmpulse_http_requests_total", method="GET", route="other", status="404")
            == 1
        )
