"""Native ingest: committed before the answer, gzip, limits after decompression, all or nothing,
idempotent retries, and 503 with Retry-After under overload."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from llmpulse.server.app import create_app
from llmpulse.server.deps import IngestGate
from llmpulse.server.problems import Problem
from llmpulse.server.settings import ServerSettings
from llmpulse.store import Store

NOW = 1_764_680_000.0


def span(i: int, **over: Any) -> dict[str, Any]:
    """A JSON span as the SDK sends it."""
    base: dict[str, Any] = {
        "trace_id": f"t{i // 3}",
        "span_id": f"s{i}",
        "parent_id": None if i % 3 == 0 else f"s{i - i % 3}",
        "name": "chat",
        "kind": "llm",
        "start_time": NOW + i,
        "end_time": NOW + i + 0.25,
        "model": "gpt-4o-mini",
        "provider": "openai",
        "input_tokens": 1000,
        "output_tokens": 100,
        "attributes": {"k": i},
        "events": [{"name": "retry", "time": NOW + i + 0.1}],
    }
    return base | over


def batch(n: int, **over: Any) -> dict[str, Any]:
    return {
        "spans": [span(i) for i in range(n)],
        "metric_points": [
            {"name": "loss", "value": 0.5, "timestamp": NOW, "run_id": "r1", "step": 1}
        ],
        "runs": [{"run_id": "r1", "name": "bench", "started_at": NOW, "kind": "benchmark"}],
    } | over


def counts(store: Store) -> tuple[int, int]:
    """(spans stored, calls in the rollups) over the test's hour."""
    stored = len(store.list_spans(NOW - 3600, NOW + 3600, limit=100_000))
    stats = store.span_stats(NOW - 3600, NOW + 3600)
    return stored, sum(s.calls for s in stats)


class TestIngest:
    def test_batch_is_stored_and_counted(self, client: TestClient, store: Store) -> None:
        """Spans, points and runs are queryable when the 200 arrives, cost priced from tokens."""
        response = client.post("/api/v1/ingest", json=batch(6))
        assert response.status_code == 200, response.text
        assert response.json() == {"spans": 6, "metric_points": 1, "runs": 1, "duplicates": 0,
                                   "duplicate_metric_points": 0, "rejected": {}}  # fmt: skip
        trace = store.get_trace("t0")
        assert [s.span_id for s in trace] == ["s0", "s1", "s2"]
        assert trace[1].parent_id == "s0" and trace[0].events[0].name == "retry"
        assert trace[0].attributes == {"k": 0}
        assert trace[0].cost_usd == pytest.approx((1000 * 0.15 + 100 * 0.6) / 1e6)
        assert store.get_run("r1") is not None
        assert [p.value for p in store.metric_series("loss", NOW - 1, NOW + 1)] == [0.5]

    def test_gzip_body(self, client: TestClient, store: Store) -> None:
        """A gzip-encoded body is stored like the plain one."""
        raw = gzip.compress(json.dumps(batch(3)).encode())
        response = client.post(
            "/api/v1/ingest", content=raw,
            headers={"content-type": "application/json; charset=utf-8", "content-encoding": "gzip"},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        assert response.json()["spans"] == 3 and counts(store) == (3, 3)

    def test_retried_batch_is_idempotent(self, client: TestClient, store: Store) -> None:
        """The same batch twice stores each span once; the rollups do not double either."""
        first = client.post("/api/v1/ingest", json={"spans": [span(i) for i in range(5)]}).json()
        mixed = {"spans": [span(i) for i in range(3, 8)]}
        second = client.post("/api/v1/ingest", json=mixed).json()
        assert first["spans"] == 5 and (second["spans"], second["duplicates"]) == (3, 2)
        assert counts(store) == (8, 8)

    def test_retried_points_are_idempotent(self, client: TestClient, store: Store) -> None:
        """Points with a point_id sent again are stored once; points without one every time."""

        def point(i: int, **over: Any) -> dict[str, Any]:
            return {"name": "loss", "value": float(i), "timestamp": NOW + i, "point_id": f"p{i}"}

        first = client.post("/api/v1/ingest", json={"metric_points": [point(i) for i in range(4)]})
        again = [point(i) for i in range(2, 6)] + [{"name": "loss", "value": 9.0, "timestamp": NOW}]
        second = client.post("/api/v1/ingest", json={"metric_points": again})
        assert first.json()["metric_points"] == 4
        assert (second.json()["metric_points"], second.json()["duplicate_metric_points"]) == (3, 2)
        values = [p.value for p in store.metric_series("loss", NOW - 1, NOW + 60)]
        assert sorted(values) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 9.0]

    def test_explicit_cost_is_kept(self, client: TestClient, store: Store) -> None:
        """A span that carries its own cost keeps it (no re-pricing)."""
        client.post("/api/v1/ingest", json={"spans": [span(0, cost_usd=1.5)]})
        assert store.get_span("s0").cost_usd == 1.5  # type: ignore[union-attr]


class TestRejectedBatch:
    @pytest.mark.parametrize(
        ("bad", "field"),
        [
            ({"start_time": "yesterday"}, "spans[3].start_time"),
            ({"status": "fine"}, "spans[3].status"),
            ({"input_tokens": -1}, "spans[3].input_tokens"),
            ({"input_tokens": 2**64}, "spans[3].input_tokens"),
            ({"span_id": ""}, "spans[3].span_id"),
            ({"span_id": "x" * 65}, "spans[3].span_id"),
            ({"colour": "red"}, "spans[3].colour"),
            ({"events": [{"time": 1}]}, "spans[3].events[0].name"),
        ],
    )
    def test_one_bad_span_writes_nothing(
        self, client: TestClient, store: Store, bad: dict[str, Any], field: str
    ) -> None:
        """A batch with one invalid span is 422 naming the span's index and field; nothing is stored."""
        spans = [span(i) for i in range(6)]
        spans[3] = spans[3] | bad
        response = client.post("/api/v1/ingest", json={"spans": spans})
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["detail"].startswith(field) and body["errors"][0]["field"] == field
        assert counts(store) == (0, 0)

    def test_missing_field_and_wrong_shape(self, client: TestClient, store: Store) -> None:
        """A missing required field and a non-list are named; unknown top-level keys too."""
        no_name = {k: v for k, v in span(0).items() if k != "name"}
        assert (
            client.post("/api/v1/ingest", json={"spans": [no_name]})
            .json()["detail"]
            .startswith("spans[0].name")
        )
        assert client.post("/api/v1/ingest", json={"spans": {}}).status_code == 422
        assert (
            client.post("/api/v1/ingest", json={"logs": []}).json()["errors"][0]["field"] == "logs"
        )
        assert client.post("/api/v1/ingest", json=[1, 2]).status_code == 422
        assert counts(store) == (0, 0)

    def test_bad_point_after_good_spans_writes_nothing(
        self, client: TestClient, store: Store
    ) -> None:
        """All or nothing across kinds: a bad metric point keeps the batch's spans out too."""
        body = batch(4, metric_points=[{"name": "m", "value": "NaN", "timestamp": NOW}])
        response = client.post("/api/v1/ingest", json=body)
        assert response.status_code == 422 and "metric_points[0].value" in response.json()["detail"]
        assert counts(store) == (0, 0) and store.get_run("r1") is None

    def test_store_refusal_names_the_record(self, client: TestClient, store: Store) -> None:
        """A record the store refuses after validation (an attribute JSON cannot hold) is 422 too."""
        raw = json.dumps({"spans": [span(0), span(1)]}).replace('"k": 1', '"k": 1e999')
        response = client.post(
            "/api/v1/ingest", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"].startswith("spans[1]")
        assert counts(store) == (0, 0)

    def test_not_json_and_bad_gzip_are_400(self, client: TestClient) -> None:
        """Bytes that are not JSON, and a body claiming gzip that is not, are 400."""
        plain = {"content-type": "application/json"}
        assert client.post("/api/v1/ingest", content=b"{oops", headers=plain).status_code == 400
        zipped = plain | {"content-encoding": "gzip"}
        assert client.post("/api/v1/ingest", content=b"not gzip", headers=zipped).status_code == 400
        truncated = gzip.compress(json.dumps(batch(2)).encode())[:-12]
        assert client.post("/api/v1/ingest", content=truncated, headers=zipped).status_code == 400

    def test_unsupported_media(self, client: TestClient) -> None:
        """Another Content-Type or Content-Encoding is 415 naming it."""
        form = client.post("/api/v1/ingest", content=b"a=1", headers={"content-type": "text/plain"})
        assert form.status_code == 415 and "text/plain" in form.json()["detail"]
        br = client.post("/api/v1/ingest", content=b"{}", headers={"content-type": "application/json",
                                                                  "content-encoding": "br"})  # fmt: skip
        assert br.status_code == 415


class TestLimits:
    def test_body_over_the_limit_is_413(
        self, sqlite_store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """A plain body over max_body_bytes is 413 and stores nothing."""
        c = make_client(sqlite_store, max_body_bytes=10_000)
        response = c.post("/api/v1/ingest", json=batch(200))
        assert response.status_code == 413 and response.json()["limit_bytes"] == 10_000
        assert counts(sqlite_store) == (0, 0)

    def test_gzip_bomb_is_413(
        self, sqlite_store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """A small gzip body that inflates past the limit is 413 (the limit applies after decompression)."""
        c = make_client(sqlite_store, max_body_bytes=1_000_000)
        padding = " " * 50_000_000
        bomb = gzip.compress(('{"spans": []' + padding + "}").encode(), compresslevel=9)
        assert len(bomb) < 1_000_000
        response = c.post("/api/v1/ingest", content=bomb,
                          headers={"content-type": "application/json", "content-encoding": "gzip"})  # fmt: skip
        assert response.status_code == 413

    def test_empty_batch_is_fine(self, client: TestClient) -> None:
        """An empty batch succeeds with zero counts."""
        assert client.post("/api/v1/ingest", json={}).json()["spans"] == 0


class TestOverload:
    def test_gate_refuses_past_its_queue(self) -> None:
        """With every slot taken and the queue full, the next batch gets 503 with Retry-After."""

        async def scenario() -> Problem:
            gate = IngestGate(concurrency=1, queue=1, retry_after=7)
            holding, release = asyncio.Event(), asyncio.Event()

            async def holder() -> None:
                async with gate.slot():
                    holding.set()
                    await release.wait()

            first = asyncio.create_task(holder())
            await holding.wait()
            waiter = asyncio.create_task(holder())  # waits in the queue
            await asyncio.sleep(0)
            try:
                async with gate.slot():
                    raise AssertionError("a third batch must not get in")
            except Problem as exc:
                problem = exc
            release.set()
            await asyncio.gather(first, waiter)
            assert gate.state()["accepted_batches"] == 2 and gate.state()["rejected_batches"] == 1
            return problem

        problem = asyncio.run(scenario())
        assert problem.status == 503 and problem.headers == {"Retry-After": "7"}

    def test_busy_server_answers_503_with_retry_after(self, sqlite_store: Store) -> None:
        """Over real HTTP: while one slow upload holds the only slot, another batch gets 503 + Retry-After."""
        app = create_app(ServerSettings(ingest_concurrency=1, ingest_queue=0, retry_after_seconds=3),
                         store=sqlite_store)  # fmt: skip
        with _serve(app) as url:
            proceed = threading.Event()

            def slow_body() -> Iterator[bytes]:
                yield b'{"spans": ['
                proceed.wait(30)
                yield json.dumps(span(0)).encode() + b"]}"

            results: dict[str, httpx.Response] = {}
            slow = threading.Thread(
                target=lambda: results.update(slow=httpx.post(
                    f"{url}/api/v1/ingest", content=slow_body(),
                    headers={"content-type": "application/json"}, timeout=30))
            )  # fmt: skip
            slow.start()
            deadline = time.monotonic() + 20
            while httpx.get(f"{url}/api/v1/health").json()["ingest"]["in_flight"] < 1:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            busy = httpx.post(f"{url}/api/v1/ingest", json=batch(1), timeout=10)
            proceed.set()
            slow.join(30)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "3"
        assert busy.headers["content-type"] == "application/problem+json"
        assert results["slow"].status_code == 200 and counts(sqlite_store) == (1, 1)


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # a test thread cannot own signals
        pass


class _serve:
    """Run an app on a real socket (port 0) in a thread for the block; yields its URL."""

    def __init__(self, app: Any) -> None:
        self.server = _Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
