"""POST /v1/traces over the real app: the OTLP/HTTP rules, each with the bug peers shipped."""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from prometheus_client.parser import text_string_to_metric_families

from llmpulse.server.app import create_app
from llmpulse.server.auth import generate_key
from llmpulse.server.settings import ServerSettings
from llmpulse.store import Store
from tests.unit.server.conftest import bearer
from tests.unit.server.otlp_payloads import as_json, json_body, request, span
from tests.unit.server.test_ingest import batch

PB = {"Content-Type": "application/x-protobuf"}
TRACE_HEX = request(span()).resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
JS = {"Content-Type": "application/json"}


def chat(span_id: int = 1, **attrs: object):  # type: ignore[no-untyped-def]
    return span("chat", span_id=span_id, attributes={
        "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 20, **attrs,
    })  # fmt: skip


def metric(client: TestClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


@pytest.fixture
def app(sqlite_store: Store, make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(sqlite_store)


class TestEncodings:
    def test_protobuf_request_gets_a_protobuf_answer(
        self, app: TestClient, sqlite_store: Store
    ) -> None:
        """200, application/x-protobuf, an ExportTraceServiceResponse without partial_success."""
        r = app.post("/v1/traces", content=request(chat()).SerializeToString(), headers=PB)
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
        answer = ExportTraceServiceResponse.FromString(r.content)
        assert not answer.HasField("partial_success")
        [s] = sqlite_store.get_trace(TRACE_HEX)
        assert (s.model, s.provider, s.input_tokens, s.service) == (
            "gpt-4o-mini",
            "openai",
            100,
            "checkout",
        )

    def test_json_with_charset_gets_a_json_answer(self, app: TestClient) -> None:
        """`application/json; charset=utf-8` is JSON: 200 and a JSON body."""
        r = app.post("/v1/traces", content=json_body(request(chat())),
                     headers={"Content-Type": "application/json; charset=utf-8"})  # fmt: skip
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        assert r.json() == {}

    def test_json_and_protobuf_store_identical_rows(
        self, app: TestClient, sqlite_store: Store
    ) -> None:
        """The same spans sent both ways are stored identically (but for their ids)."""
        via_pb = request(chat(1), span("tool", span_id=2, parent=1))
        # Span ids are unique in the store, so the JSON copy gets its own ids.
        via_js = request(chat(11), span("tool", span_id=12, parent=11))
        other = bytes.fromhex("00" * 15 + "07")
        for s in via_js.resource_spans[0].scope_spans[0].spans:
            s.trace_id = other
        assert (
            app.post("/v1/traces", content=via_pb.SerializeToString(), headers=PB).status_code
            == 200
        )
        assert app.post("/v1/traces", content=json_body(via_js), headers=JS).status_code == 200
        a = sqlite_store.get_trace(TRACE_HEX)
        b = sqlite_store.get_trace(other.hex())
        assert len(a) == len(b) == 2
        for x, y in zip(
            sorted(a, key=lambda s: s.span_id), sorted(b, key=lambda s: s.span_id), strict=True
        ):
            y.trace_id, y.span_id, y.parent_id = x.trace_id, x.span_id, x.parent_id
            assert x == y

    def test_unsupported_content_type_is_415(self, app: TestClient) -> None:
        """text/plain is refused with a google.rpc.Status naming the accepted types."""
        r = app.post("/v1/traces", content=b"x", headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
        assert "application/x-protobuf" in r.json()["message"]


class TestBadInput:
    def test_invalid_protobuf_is_400_with_a_status_body(self, app: TestClient) -> None:
        """Garbage protobuf: 400, never retried, google.rpc.Status in protobuf."""
        r = app.post("/v1/traces", content=b"\xff\xff\xff\xff", headers=PB)
        assert r.status_code == 400 and r.headers["content-type"] == "application/x-protobuf"
        status = status_pb2.Status.FromString(r.content)
        assert status.code == 3 and "not a protobuf" in status.message

    def test_base64_ids_in_json_are_400(self, app: TestClient) -> None:
        """A base64 trace id in OTLP/JSON: 400 with a message that says ids are hex."""
        doc = as_json(request(chat()))
        doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "W47/95gDgQPSabYzgT/GDA=="
        r = app.post("/v1/traces", content=json.dumps(doc), headers=JS)
        assert r.status_code == 400 and "not hex" in r.json()["message"]

    def test_partial_success_counts_rejected_spans(
        self, app: TestClient, sqlite_store: Store
    ) -> None:
        """One bad span of three: 200, rejectedSpans "1" (a string in JSON), the rest stored."""
        bad = chat(3)
        bad.trace_id = b"\x00" * 16
        r = app.post("/v1/traces", content=json_body(request(chat(1), chat(2), bad)), headers=JS)
        assert r.status_code == 200
        partial = r.json()["partialSuccess"]
        assert partial["rejectedSpans"] == "1" and "trace_id" in partial["errorMessage"]
        assert len(sqlite_store.get_trace(TRACE_HEX)) == 2

    def test_empty_request_succeeds(self, app: TestClient) -> None:
        """An empty request (no body, or {}) is 200."""
        assert app.post("/v1/traces", content=b"", headers=PB).status_code == 200
        assert app.post("/v1/traces", content=b"{}", headers=JS).json() == {}

    def test_other_signals_are_404(self, app: TestClient) -> None:
        """llmpulse receives traces only: /v1/metrics and /v1/logs are 404 (not retried)."""
        for path in ("/v1/metrics", "/v1/logs"):
            assert app.post(path, content=b"", headers=PB).status_code == 404


class TestSizeAndCompression:
    @pytest.fixture
    def small(self, sqlite_store: Store, make_client: Callable[..., TestClient]) -> TestClient:
        return make_client(sqlite_store, max_body_bytes=20_000)

    def test_gzip_bodies(self, app: TestClient, sqlite_store: Store) -> None:
        """Content-Encoding gzip bodies are inflated and stored."""
        raw = request(chat()).SerializeToString()
        r = app.post(
            "/v1/traces", content=gzip.compress(raw), headers={**PB, "Content-Encoding": "gzip"}
        )
        assert r.status_code == 200 and len(sqlite_store.get_trace(TRACE_HEX)) == 1

    def test_body_over_the_limit_is_413(self, small: TestClient) -> None:
        """A body larger than max_body_bytes: 413 with a Status body."""
        big = request(chat(blob="x" * 30_000))
        r = small.post("/v1/traces", content=big.SerializeToString(), headers=PB)
        assert (
            r.status_code == 413
            and "larger than 20000 bytes" in status_pb2.Status.FromString(r.content).message
        )

    def test_gzip_bomb_is_413_after_decompression(self, small: TestClient) -> None:
        """A 10 KB gzip body that inflates past the limit is refused while inflating."""
        bomb = gzip.compress(b"\x00" * 50_000_000)
        assert len(bomb) < 100_000
        r = small.post("/v1/traces", content=bomb, headers={**PB, "Content-Encoding": "gzip"})
        assert r.status_code == 413

    def test_corrupt_gzip_is_400(self, app: TestClient) -> None:
        """A body that is not gzip although it says so: 400."""
        r = app.post("/v1/traces", content=b"not gzip", headers={**PB, "Content-Encoding": "gzip"})
        assert r.status_code == 400 and "gzip" in status_pb2.Status.FromString(r.content).message

    def test_unknown_encoding_is_415(self, app: TestClient) -> None:
        """Content-Encoding br is not supported: 415."""
        r = app.post("/v1/traces", content=b"x", headers={**PB, "Content-Encoding": "br"})
        assert r.status_code == 415


class TestRetriesAndDuplicates:
    def test_same_payload_twice_is_stored_once(self, app: TestClient, sqlite_store: Store) -> None:
        """A retried request: 200 both times, no rejection, counts and sums unchanged."""
        body = request(chat(1), chat(2)).SerializeToString()
        trace = TRACE_HEX
        assert app.post("/v1/traces", content=body, headers=PB).status_code == 200
        before = metric(app, "llm_tokens_total", model="gpt-4o-mini", type="input")
        r = app.post("/v1/traces", content=body, headers=PB)
        assert r.status_code == 200
        assert not ExportTraceServiceResponse.FromString(r.content).HasField("partial_success")
        assert len(sqlite_store.get_trace(trace)) == 2
        assert metric(app, "llm_tokens_total", model="gpt-4o-mini", type="input") == before == 200
        assert metric(app, "llmpulse_ingest_duplicate_spans_total", source="otlp") == 2


class TestAuth:
    def test_keys_are_checked_with_status_bodies(
        self, sqlite_store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """No key 401, a read-only key 403, an ingest key 200; errors are google.rpc.Status."""
        ingest_key, _ = generate_key(sqlite_store, "otel", ["ingest"])
        read_key, _ = generate_key(sqlite_store, "reader", ["read"])
        client = make_client(sqlite_store)
        body = request(chat()).SerializeToString()
        r = client.post("/v1/traces", content=body, headers=PB)
        assert r.status_code == 401 and status_pb2.Status.FromString(r.content).code == 16
        r = client.post("/v1/traces", content=body, headers={**PB, **bearer(read_key)})
        assert r.status_code == 403 and status_pb2.Status.FromString(r.content).code == 7
        r = client.post("/v1/traces", content=body, headers={**PB, **bearer(ingest_key)})
        assert r.status_code == 200


UNAVAILABLE = "the database is unavailable; retry later"  # native ingest's detail


class TestStoreUnavailable:
    def test_a_store_refusing_writes_answers_like_native_ingest(self, tmp_path: Path) -> None:
        """A database the server can read but not write (a read-only SQLite file): OTLP answers
        503 with a Status carrying native ingest's detail and Retry-After, and neither answer
        names the database."""
        path = tmp_path / "llmpulse.db"
        Store.open(f"sqlite:///{path}").close()
        with (
            Store.open(f"sqlite:///file:{path}?mode=ro&uri=true", migrate=False) as store,
            TestClient(create_app(ServerSettings(alert_interval=0), store=store)) as client,
        ):
            otlp = client.post(
                "/v1/traces", content=request(chat()).SerializeToString(), headers=PB
            )
            native = client.post("/api/v1/ingest", json=batch(1))
        assert otlp.status_code == native.status_code == 503
        assert otlp.headers["content-type"] == "application/x-protobuf"
        status = status_pb2.Status.FromString(otlp.content)
        assert status.code == 14 and status.message == native.json()["detail"] == UNAVAILABLE
        assert otlp.headers["retry-after"] and native.headers["retry-after"]
        for answer in (otlp, native):
            assert str(tmp_path).encode() not in answer.content
            assert b"sqlite" not in answer.content

    def test_a_store_gone_after_startup_is_a_status_not_a_problem(self, tmp_path: Path) -> None:
        """The database's folder is removed under a running server, so even the key lookup
        fails: OTLP still answers 503 with a google.rpc.Status, never problem+json or a URL."""
        folder = tmp_path / "data"
        folder.mkdir()
        with (
            Store.open(f"sqlite:///{folder / 'llmpulse.db'}") as store,
            TestClient(create_app(ServerSettings(alert_interval=0), store=store)) as client,
        ):
            store.close()  # drop the pooled connections: the next request opens the file anew
            shutil.rmtree(folder)
            otlp = client.post("/v1/traces", content=json_body(request(chat())), headers=JS)
            native = client.post("/api/v1/ingest", json=batch(1))
        assert otlp.status_code == native.status_code == 503
        assert otlp.headers["content-type"] == "application/json"
        assert otlp.json() == {"code": 14, "message": native.json()["detail"]}
        assert native.json()["detail"] == UNAVAILABLE and otlp.headers["retry-after"]
        assert str(folder) not in otlp.text + native.text


class TestOrderAndShape:
    def test_child_before_parent_makes_one_tree(self, app: TestClient, sqlite_store: Store) -> None:
        """A child sent before its parent, and one whose parent never comes, are both stored."""
        child = span("child", span_id=2, parent=1)
        orphan = span("orphan", span_id=3, parent=99)
        assert (
            app.post(
                "/v1/traces", content=request(child, orphan).SerializeToString(), headers=PB
            ).status_code
            == 200
        )
        assert (
            app.post(
                "/v1/traces",
                content=request(span("root", span_id=1)).SerializeToString(),
                headers=PB,
            ).status_code
            == 200
        )
        spans = {s.name: s for s in sqlite_store.get_trace(TRACE_HEX)}
        assert spans["child"].parent_id == spans["root"].span_id
        assert spans["root"].parent_id is None
        assert spans["orphan"].parent_id == (99).to_bytes(8, "big").hex()

    def test_permuted_batches_store_the_same_trace(
        self, sqlite_store: Store, make_client: Callable[..., TestClient], tmp_path: Path
    ) -> None:
        """A trace split over batches in any order stores the same spans and totals."""
        parts = [request(chat(i)) for i in range(1, 5)]
        first = make_client(sqlite_store)
        for part in parts:
            first.post("/v1/traces", content=part.SerializeToString(), headers=PB)
        with Store.open(f"sqlite:///{tmp_path / 'other.db'}") as other:
            second = make_client(other)
            for part in reversed(parts):
                second.post("/v1/traces", content=part.SerializeToString(), headers=PB)
            a = sorted(sqlite_store.get_trace(TRACE_HEX), key=lambda s: s.span_id)
            b = sorted(other.get_trace(TRACE_HEX), key=lambda s: s.span_id)
        assert a == b and len(a) == 4
        assert sum(s.input_tokens or 0 for s in a) == 400

    def test_logs_posted_to_traces_store_nothing(self, app: TestClient) -> None:
        """An OTLP logs request sent to /v1/traces: 200 with every record rejected, none stored."""
        logs = ExportLogsServiceRequest()
        rec = logs.resource_logs.add().scope_logs.add().log_records.add()
        rec.time_unix_nano = 1_767_225_600_000_000_000
        rec.body.string_value = "a log line"
        r = app.post("/v1/traces", content=logs.SerializeToString(), headers=PB)
        assert r.status_code == 200
        assert ExportTraceServiceResponse.FromString(r.content).partial_success.rejected_spans == 1
        assert metric(app, "llmpulse_ingest_spans_total", source="otlp") == 0
        assert (
            metric(app, "llmpulse_ingest_dropped_spans_total", source="otlp", reason="invalid") == 1
        )
