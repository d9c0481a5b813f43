"""The SDK's HTTP exporter against a real ``llmpulse serve`` that dies, overloads and is shared.

* SIGKILL the server during a 100,000-span ingest, restart it: every acknowledged span is
  stored, the spool delivers the rest, exactly once (SQLite and PostgreSQL).
* Overload: three SDK processes at three times the rate the server sustains; the server's
  memory stays bounded, the excess gets 503 + Retry-After, the SDK honours it and spools.
* SQLite: four SDK processes sending while readers query through the server: no "database is
  locked" anywhere, nothing dropped.

Counts are read in the database, never taken from the SDK alone.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import llmpulse
from llmpulse.store import Store
from llmpulse.testing import reset_sdk
from tests.e2e.serve_process import ServeProcess, run_sdk
from tests.faults._accounting import stored_rows

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _fresh_sdk() -> Iterator[None]:
    reset_sdk()
    yield
    reset_sdk()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url


def rows(url: str) -> int:
    with Store.open(url, migrate=False) as store:
        return stored_rows(store)


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class TestServerKilled:
    def test_sigkill_mid_ingest_then_restart_loses_and_doubles_nothing(
        self, backend_url: str, tmp_path: Path
    ) -> None:
        """100,000 spans on SQLite (20,000 on PostgreSQL, to keep the suite's time), killed
        once 20 % were acknowledged."""
        total = 100_000 if backend_url.startswith("sqlite") else 20_000
        kill_after = total // 5
        server = ServeProcess(backend_url, tmp_path / "serve.log").start()
        try:
            client = llmpulse.init(server_url=server.url, spool_dir=tmp_path / "spool",
                                   instrument=(), queue_size=total)  # fmt: skip
            seen: dict[str, int] = {}

            def kill_mid_ingest() -> None:
                wait_for(lambda: client.stats().exported >= kill_after, 120, "acks")
                server.kill()
                seen["at_kill"] = client.stats().exported

            killer = threading.Thread(target=kill_mid_ingest)
            killer.start()
            for i in range(total):
                llmpulse.record_llm_call("gpt-4o-mini", input_tokens=i % 50, output_tokens=3,
                                         latency_ms=20.0, name=f"call-{i % 10}")  # fmt: skip
            killer.join(180)
            assert "at_kill" in seen, server.log()
            # The server is gone: whatever was queued or in flight goes to the spool.
            wait_for(lambda: (s := client.stats()).queue_depth + s.in_flight == 0, 60, "spool")
            down = client.stats()
            acknowledged = down.exported  # every ack the dead server ever sent
            assert acknowledged >= seen["at_kill"] >= kill_after
            assert down.dropped_total == 0 and down.spooled > 0
            assert acknowledged + down.spooled == total
            committed = rows(backend_url)
            # Every acknowledged span is stored; a batch committed whose answer the kill cut
            # off may be stored too (it is in the spool as well, and deduplicated on replay).
            assert committed >= acknowledged, (committed, acknowledged)

            server.start()  # same port, same database
            assert client.flush(120), (client.stats(), server.log())
            up = client.stats()
            assert up.exported == total and up.spooled == 0 and up.dropped_total == 0
            assert up.exported - acknowledged == down.spooled  # the spool delivered the rest
            assert rows(backend_url) == total  # nothing lost, nothing stored twice
            assert not list((tmp_path / "spool").rglob("*.seg"))
            print(json.dumps({"acknowledged_before_kill": acknowledged,
                              "committed_at_kill": committed, "spooled": down.spooled,
                              "delivered_by_spool": up.exported - acknowledged}))  # fmt: skip
        finally:
            server.stop()


# An SDK process for the tests below: records chain+llm span pairs at ``rate`` spans/s (0: as
# fast as it can) for ``seconds`` (0: no limit) or until ``spans`` spans (0: no limit), then
# ``points`` metric points; watches its own spool; flushes and prints its stats as JSON.
SENDER = """
import json, sys, threading, time, llmpulse
url, spool = sys.argv[1], sys.argv[2]
rate, seconds, points, limit = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
client = llmpulse.init(server_url=url, spool_dir=spool, instrument=(), queue_size=2_000_000)
peak, done = [0], threading.Event()
def watch():
    while not done.wait(0.05):
        peak[0] = max(peak[0], client.stats().spooled)
threading.Thread(target=watch, daemon=True).start()
start, n = time.monotonic(), 0
while not (seconds and time.monotonic() - start >= seconds) and not (limit and n >= limit):
    if rate and n >= rate * (time.monotonic() - start):
        time.sleep(0.002)
        continue
    for _ in range(50):
        with llmpulse.span("step", kind="chain"):
            llmpulse.record_llm_call("gpt-4o-mini", input_tokens=12, output_tokens=3, latency_ms=9.0)
    n += 100
for step in range(points):
    llmpulse.record_metric("loss", 1.0 / (step + 1), run_id="r", step=step)
recorded_at = time.monotonic()
flushed = client.flush(240)
done.set()
s = client.stats()
print(json.dumps({"flushed": flushed, "recorded": s.recorded, "exported": s.exported,
                  "dropped": s.dropped_total, "spooled": s.spooled, "peak_spooled": peak[0],
                  "seconds": recorded_at - start, "drain_seconds": time.monotonic() - recorded_at}))
"""


def finish(proc: Any, timeout: float) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    assert "database is locked" not in err, err[-3000:]
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["stderr"] = err
    return result


class TestOverload:
    def test_three_times_the_sustainable_rate_keeps_memory_bounded(self, tmp_path: Path) -> None:
        """Three SDK processes each at the rate one saturating sender achieved (3x in all).

        The issue asks for a minute; the test runs ``LLMPULSE_TEST_OVERLOAD_SECONDS`` (6 s by
        default, to keep the suite short; the whole excess is then drained, which takes about
        twice as long): the full minute is ``bench/http_export.py --overload 60``. Six seconds
        at 3x are still 100,000-250,000 spans more than the server takes (its rate here varies
        with the load), which an unbounded queue would show in the RSS at once. The
        server's ingest gate is made small (1 batch at work, 1 waiting) so three senders
        exceed it. Checked: the server's RSS (``/proc``) under 3x stays within 64 MiB of its
        peak at 1x; the excess got 503 + Retry-After; no sender retried before Retry-After
        (at most one refused attempt per second per sending thread); refused batches were
        retried or spooled; once the overload ends everything is stored, once.
        """
        import os

        seconds = float(os.environ.get("LLMPULSE_TEST_OVERLOAD_SECONDS", "6"))
        url = f"sqlite:///{tmp_path / 'llmpulse.db'}"
        env = {"LLMPULSE_INGEST_CONCURRENCY": "1", "LLMPULSE_INGEST_QUEUE": "1",
               "LLMPULSE_RETRY_AFTER_SECONDS": "1"}  # fmt: skip
        server = ServeProcess(url, tmp_path / "serve.log", env=env).start()
        spool = str(tmp_path / "spool")
        rss: list[tuple[str, int]] = []
        phase = ["1x"]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.2):
                rss.append((phase[0], server.rss_bytes()))

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            # 1x: one sender records 20,000 spans at once; the rate at which the server
            # acknowledged them all is the sustainable rate.
            calibrate = finish(run_sdk(SENDER, server.url, spool, "0", "0", "0", "20000"), 240)
            sustainable = calibrate["recorded"] / (
                calibrate["seconds"] + calibrate["drain_seconds"]
            )
            base = calibrate
            phase[0] = "3x"
            before = server_gate(server.url)
            started = time.monotonic()
            senders = [run_sdk(SENDER, server.url, spool, f"{sustainable:.0f}", str(seconds), "0",
                               "0") for _ in range(3)]  # fmt: skip
            results = [finish(p, 300) for p in senders]
            elapsed = time.monotonic() - started
            after = server_gate(server.url)
        finally:
            sampling.set()
            sampler.join()
            server.stop()
        refused = after["rejected_batches"] - before["rejected_batches"]
        peak_1x = max(v for p, v in rss if p == "1x")
        peak_3x = max(v for p, v in rss if p == "3x")
        summary = {"sustainable_spans_per_s": round(sustainable), "refused_batches": refused,
                   "peak_rss_mb_1x": peak_1x >> 20, "peak_rss_mb_3x": peak_3x >> 20,
                   "peak_spooled": [r["peak_spooled"] for r in results],
                   "drain_seconds": [round(r["drain_seconds"], 1) for r in results]}  # fmt: skip
        print(json.dumps(summary))
        assert refused > 0, summary  # the excess was turned away with 503 + Retry-After
        assert refused <= 3 * 2 * (elapsed + 3), summary  # nobody retried early
        # A refused batch is retried in memory, after Retry-After, for the exporter's retry
        # budget, and spooled only when that runs out: whether any was spooled depends on how
        # far the load outran the server, which the machine's load moves (peak_spooled is in
        # the summary; TestServerKilled proves the spool). Whatever path each batch took, none
        # was lost or stored twice (below).
        assert peak_3x <= peak_1x + (64 << 20), summary
        for r in [base, *results]:
            assert r["flushed"] and r["dropped"] == 0 and r["spooled"] == 0, r
            assert r["exported"] == r["recorded"], r
        assert rows(url) == sum(r["recorded"] for r in [base, *results])


def server_gate(url: str) -> dict[str, Any]:
    body = httpx.get(f"{url}/api/v1/health", timeout=10).json()
    gate: dict[str, Any] = _find(body, "rejected_batches")
    return gate


def _find(doc: Any, key: str) -> Any:
    """The innermost mapping of ``doc`` holding ``key``."""
    if isinstance(doc, dict):
        if key in doc:
            return doc
        for value in doc.values():
            found = _find(value, key)
            if found is not None:
                return found
    return None


class TestSharedSqlite:
    def test_four_sdk_processes_and_readers_see_no_lock_errors(self, tmp_path: Path) -> None:
        """Four SDK processes send 12,000 spans and 300 points each through one server on
        SQLite while three readers page traces, spans, summaries and the overview."""
        url = f"sqlite:///{tmp_path / 'llmpulse.db'}"
        server = ServeProcess(url, tmp_path / "serve.log").start()
        spool = str(tmp_path / "spool")
        answers: list[tuple[str, int, str]] = []
        stop = threading.Event()
        paths = ["/api/v1/traces?limit=50", "/api/v1/spans?limit=100",
                 "/api/v1/metrics/summary?group_by=model", "/api/v1/dashboard/overview",
                 "/api/v1/health", "/api/v1/metrics/points?name=loss&limit=100"]  # fmt: skip

        def read(offset: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                i = offset
                while not stop.is_set():
                    path = paths[i % len(paths)]
                    r = http.get(path)
                    answers.append((path, r.status_code, r.text if r.status_code != 200 else ""))
                    i += 1

        readers = [threading.Thread(target=read, args=(k,)) for k in range(3)]
        try:
            for t in readers:
                t.start()
            senders = [run_sdk(SENDER, server.url, spool, "0", "0", "300", "12000")
                       for _ in range(4)]  # fmt: skip
            results = [finish(p, 300) for p in senders]
        finally:
            stop.set()
            for t in readers:
                t.join(60)
            server.stop()
        bad = [a for a in answers if a[1] != 200]
        assert answers and not bad, bad[:5]
        assert "database is locked" not in server.log()
        for r in results:
            assert r["flushed"] and r["dropped"] == 0 and r["spooled"] == 0, r
            assert r["exported"] == r["recorded"] == 12_300, r
        assert rows(url) == 4 * 12_300
        print(json.dumps({"reads": len(answers), "senders": len(results)}))
