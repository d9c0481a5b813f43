"""``GET /api/v1/dashboard/system``: the System page's store size and rows, this process's ingest
counters (stored, repeats, drops by reason), the ingest rate and the newest span's age."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi.testclient import TestClient

from llmpulse.server.metrics import metrics_of
from llmpulse.store import Store


def test_ingest_counters_rate_and_store_size(
    sqlite_store: Store, make_client: Callable[..., TestClient]
) -> None:
    """Three spans ingested, one sent again, and an OTLP request with two invalid spans: 3
    stored, 1 repeat, 2 dropped as invalid (per source too); this minute's rate holds the 3;
    the newest span is seconds old; the store reports its size and 3 span rows."""
    client = make_client(sqlite_store)
    now = time.time()
    spans = [{"trace_id": "t1", "span_id": f"s{i}", "name": "call", "kind": "llm",
              "start_time": now - 5 + i, "end_time": now - 4 + i, "model": "gpt-4o-mini"}
             for i in range(3)]  # fmt: skip
    assert client.post("/api/v1/ingest", json={"spans": spans}).status_code == 200
    assert client.post("/api/v1/ingest", json={"spans": spans[:1]}).status_code == 200
    metrics_of(client.app).record_ingest("otlp", [], None, invalid=2)  # as the OTLP path does
    body = client.get("/api/v1/dashboard/system").json()
    ingest = body["ingest"]
    assert ingest["spans_stored"] == 3 and ingest["duplicate_spans"] == 1, ingest
    assert ingest["dropped_spans"] == {"invalid": 2}, ingest
    assert ingest["requests"] == {"ok": 2, "partial": 1}, ingest
    assert ingest["by_source"]["native"]["spans_stored"] == 3
    assert ingest["by_source"]["otlp"]["dropped_spans"] == {"invalid": 2}
    assert sum(r["spans"] for r in body["rate"]) == 3
    assert 0 <= body["newest_span_age_seconds"] < 60
    assert body["store"]["rows"]["spans"] == 3 and body["store"]["size_bytes"] > 0
    assert "url" not in body["store"]  # the database address stays on the server


def test_an_empty_store(sqlite_store: Store, make_client: Callable[..., TestClient]) -> None:
    """Nothing ingested: zero counters, no rate bucket, no newest span."""
    body = make_client(sqlite_store).get("/api/v1/dashboard/system").json()
    assert body["ingest"]["spans_stored"] == 0 and body["ingest"]["dropped_spans"] == {}
    assert body["rate"] == [] and body["newest_span_age_seconds"] is None
