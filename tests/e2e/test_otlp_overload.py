"""OTLP ingest at capacity answers 503 with Retry-After (a status OTLP exporters retry), and
the metrics show the gate's depth and the refused request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
from google.rpc import status_pb2
from prometheus_client.parser import text_string_to_metric_families

from llmpulse.server.app import create_app
from llmpulse.server.settings import ServerSettings
from llmpulse.store import Store
from tests.e2e.live_server import serving
from tests.unit.server.otlp_payloads import request, span

PB = {"Content-Type": "application/x-protobuf"}


def sample(url: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


class TestOverload:
    def test_a_full_gate_answers_503_with_retry_after(self, sqlite_url: str) -> None:
        """One slot, no queue: while a slow upload holds the slot, the next export gets 503."""
        body = request(span("slow", span_id=1), span("slow", span_id=2)).SerializeToString()
        release = threading.Event()

        def slow_body() -> Iterator[bytes]:
            yield body[:10]
            release.wait(30)
            yield body[10:]

        settings = ServerSettings(ingest_concurrency=1, ingest_queue=0, retry_after_seconds=7)
        with Store.open(sqlite_url) as store, serving(create_app(settings, store=store)) as url:
            answers: list[httpx.Response] = []
            holder = threading.Thread(target=lambda: answers.append(
                httpx.post(f"{url}/v1/traces", content=slow_body(), headers=PB, timeout=60)))  # fmt: skip
            holder.start()
            try:
                deadline = time.monotonic() + 30
                while sample(url, "llmpulse_ingest_in_flight") != 1:
                    assert time.monotonic() < deadline, "the slow upload never took the slot"
                    time.sleep(0.05)
                refused = httpx.post(f"{url}/v1/traces", content=body, headers=PB)
                assert refused.status_code == 503
                assert refused.headers["retry-after"] == "7"
                assert "capacity" in status_pb2.Status.FromString(refused.content).message
                assert sample(url, "llmpulse_ingest_requests_total", source="otlp",
                              outcome="overloaded") == 1  # fmt: skip
            finally:
                release.set()
                holder.join(60)
            assert answers[0].status_code == 200
            assert (
                len(
                    store.get_trace(
                        request(span()).resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
                    )
                )
                == 2
            )
