"""Ingest under pressure, as peers got it wrong (notes/server.md, section 3):

* a flood at 10x what the gate admits: every span is either stored (200) or refused with 503
  and Retry-After, and a refused one is not stored (phoenix answered 200 and lost them later);
* a client that retries at once, ignoring Retry-After, keeps being refused while the server is
  busy (opentelemetry-python #5339);
* 32 concurrent writes plus readers on SQLite through a real ``llmpulse serve``: no 5xx, every
  row present (phoenix #3949, "database is locked");
* a gzip bomb is refused while inflating, with the memory it costs bounded by the limit.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from llmpulse.dashboard.assets import PLOTLY, asset
from llmpulse.server.app import create_app
from llmpulse.server.settings import ServerSettings
from llmpulse.store import Store
from tests.e2e.live_server import serving
from tests.e2e.serve_process import ServeProcess
from tests.faults._accounting import stored_rows
from tests.unit.server.otlp_payloads import request, span

PB = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}
NOW = time.time()


def native_body(batch: int, n: int) -> bytes:
    """A native ingest body of ``n`` spans, their ids unique to ``batch``."""
    spans = [{"trace_id": f"t{batch}", "span_id": f"b{batch}-s{i}", "name": "chat", "kind": "llm",
              "start_time": NOW - 60, "end_time": NOW - 59.5, "model": "gpt-4o-mini",
              "input_tokens": 10, "output_tokens": 2} for i in range(n)]  # fmt: skip
    return json.dumps({"spans": spans}).encode()


def otlp_body(batch: int, n: int) -> bytes:
    """An OTLP protobuf body of ``n`` spans in a trace of its own (never the all-zero id)."""
    trace = (batch + 1).to_bytes(16, "big")
    spans = (span(span_id=batch * 1000 + i + 1, trace_id=trace) for i in range(n))
    return request(*spans).SerializeToString()


def count_in(store: Store, ingest: str, batch: int) -> int:
    """Spans of ``batch`` in the store."""
    trace = f"t{batch}" if ingest == "native" else (batch + 1).to_bytes(16, "big").hex()
    return len(store.get_trace(trace))


@pytest.mark.parametrize("ingest", ["native", "otlp"])
def test_a_flood_is_stored_or_refused_with_retry_after(sqlite_url: str, ingest: str) -> None:
    """One slot and one queue place, held by a slow upload; 20 batches (10x what the gate
    admits) arrive at once. Each is 200 and stored, or 503 with Retry-After and not stored; a
    client that resends a refused batch at once, 10 times, is refused each time."""
    path, headers, body = (("/api/v1/ingest", JSON, native_body) if ingest == "native"
                           else ("/v1/traces", PB, otlp_body))  # fmt: skip
    settings = ServerSettings(ingest_concurrency=1, ingest_queue=1, retry_after_seconds=5)
    release = threading.Event()

    def slow() -> Iterator[bytes]:
        data = body(0, 50)
        yield data[:10]
        release.wait(60)
        yield data[10:]

    with Store.open(sqlite_url) as store, serving(create_app(settings, store=store)) as url:
        answers: dict[int, httpx.Response] = {}

        def post(batch: int, content: Any) -> None:
            answers[batch] = httpx.post(url + path, content=content, headers=headers, timeout=60)

        holder = threading.Thread(target=post, args=(0, slow()))
        holder.start()
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/api/v1/health").json()["ingest"]["in_flight"] < 1:
            assert time.monotonic() < deadline, "the slow upload never took the slot"
            time.sleep(0.02)
        flood = [threading.Thread(target=post, args=(b, body(b, 50))) for b in range(1, 21)]
        for t in flood:
            t.start()
        deadline = time.monotonic() + 30
        while sum(1 for b in range(1, 21) if b in answers) < 19:  # all but the queued one
            assert time.monotonic() < deadline, "the flood was not answered"
            time.sleep(0.02)
        refused = [b for b in range(1, 21) if b in answers]
        again = [httpx.post(url + path, content=body(refused[0], 50), headers=headers)
                 for _ in range(10)]  # fmt: skip
        release.set()
        for t in [holder, *flood]:
            t.join(60)

        ok = [b for b, r in answers.items() if r.status_code == 200]
        busy = [b for b, r in answers.items() if r.status_code == 503]
        assert sorted(ok + busy) == list(range(21)), {b: r.status_code for b, r in answers.items()}
        assert 0 in ok and len(ok) == 2 and len(busy) == 19  # the slot, the queue place
        for b in busy:
            assert answers[b].headers["retry-after"] == "5"
        assert [r.status_code for r in again] == [503] * 10
        assert all(r.headers["retry-after"] == "5" for r in again)
        for b in range(21):
            assert count_in(store, ingest, b) == (50 if b in ok else 0), b
        assert stored_rows(store) == 50 * len(ok)


@pytest.mark.slow
def test_32_concurrent_writers_and_readers_on_sqlite(tmp_path: Path) -> None:
    """A real ``llmpulse serve`` on SQLite (its gate admitting 32 batches at once): 32 writers
    post 200-span batches at the same moment while 4 readers query traces and summaries. No
    answer is a 5xx, and every span is stored and in the rollups."""
    url = f"sqlite:///{tmp_path / 'llmpulse.db'}"
    env = {"LLMPULSE_INGEST_CONCURRENCY": "8", "LLMPULSE_INGEST_QUEUE": "32"}
    server = ServeProcess(url, tmp_path / "serve.log", env=env).start()
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(32 + 4)
    writing = threading.Event()

    def write(batch: int) -> None:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            start.wait(60)
            status = c.post("/api/v1/ingest", content=native_body(batch, 200),
                            headers=JSON).status_code  # fmt: skip
        with lock:
            statuses.append(status)

    def read() -> None:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            start.wait(60)
            while True:
                for path in ("/api/v1/traces?limit=50", "/api/v1/metrics/summary?group_by=model"):
                    status = c.get(path).status_code
                    with lock:
                        statuses.append(status)
                if not writing.is_set():
                    return

    try:
        writing.set()
        readers = [threading.Thread(target=read) for _ in range(4)]
        writers = [threading.Thread(target=write, args=(b,)) for b in range(32)]
        for t in [*readers, *writers]:
            t.start()
        for t in writers:
            t.join(180)
        writing.clear()
        for t in readers:
            t.join(60)
    finally:
        server.stop()
    assert len([s for s in statuses if s == 200]) == len(statuses) >= 32 + 8, (
        sorted(set(statuses)),
        server.log(),
    )
    with Store.open(url, migrate=False) as store:
        assert stored_rows(store) == 32 * 200
        (row,) = store.span_stats(NOW - 3600, NOW + 60, kind="llm")
        assert row.calls == 32 * 200 and row.input_tokens == 32 * 200 * 10


@pytest.mark.parametrize(("path", "headers"), [("/api/v1/ingest", JSON), ("/v1/traces", PB)])
def test_a_gzip_bomb_costs_memory_bounded_by_the_limit(
    sqlite_url: str, path: str, headers: dict[str, str]
) -> None:
    """48 KB of gzip that inflates to 50 MB, against a 1 MiB body limit: 413, and the request
    allocated at most a few times the limit while it was refused (traced by tracemalloc)."""
    limit = 1 << 20
    bomb = gzip.compress(b"\x00" * 50_000_000)
    assert len(bomb) < 100_000
    with (
        Store.open(sqlite_url) as store,
        TestClient(create_app(ServerSettings(max_body_bytes=limit), store=store)) as client,
    ):
        small = gzip.compress(b"\x00" * (2 * limit))  # warm up: the path's imports and caches
        assert (
            client.post(
                path, content=small, headers={**headers, "content-encoding": "gzip"}
            ).status_code
            == 413
        )
        asset(PLOTLY)  # waits for the dashboard's preload thread, whose packing is no request's
        tracemalloc.start()
        try:
            response = client.post(path, content=bomb,
                                   headers={**headers, "content-encoding": "gzip"})  # fmt: skip
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert response.status_code == 413
    assert peak < 4 * limit, f"the refused bomb allocated {peak / 2**20:.1f} MiB"
