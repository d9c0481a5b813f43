"""The HTTP exporter against real servers: the llmpulse server in a thread, or a scripted one.

Every count is read where the records end up (rows in the server's store, or what the
scripted receiver acknowledged), never only from the SDK's own counters.
"""

from __future__ import annotations

import gzip
import json
import logging
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import llmpulse
from llmpulse.errors import ConfigError
from llmpulse.sdk.exporters.http import HttpExporter
from llmpulse.server.app import create_app
from llmpulse.server.auth import generate_key
from llmpulse.server.settings import ServerSettings
from llmpulse.store import Store
from tests.conftest import free_port
from tests.e2e.live_server import serving
from tests.e2e.receiver import receiving
from tests.faults._accounting import assert_accounting, stored_rows

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    with Store.open(sqlite_url) as s:
        yield s


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def record(n: int, *, prefix: str = "call") -> None:
    """``n`` llm calls, each inside its own chain span: 2 * n spans."""
    for i in range(n):
        with llmpulse.span(f"{prefix}-{i}", kind="chain"):
            llmpulse.record_llm_call("gpt-4o-mini", input_tokens=10, output_tokens=2,
                                     latency_ms=5.0)  # fmt: skip


def segments(spool: Path) -> list[Path]:
    return sorted(spool.rglob("*.seg"))


class TestDelivery:
    def test_spans_points_and_runs_reach_the_store(self, store: Store, spool: Path) -> None:
        """3,000 calls in chain spans and 50 points: each stored once, exported == stored."""
        with serving(create_app(ServerSettings(), store=store)) as url:
            client = llmpulse.init(server_url=url, spool_dir=spool, instrument=(), batch_size=500)
            record(3000)
            for step in range(50):
                llmpulse.record_metric("loss", 1.0 / (step + 1), run_id="r1", step=step)
            assert client.flush(30)
            stats = assert_accounting(client, store, expect_recorded=6050)
        assert stats.exported == 6050 and stats.spooled == 0 and stats.dropped_total == 0
        assert stats.export_batches >= 12  # batched: 500 records a request at most
        assert segments(spool) == []

    def test_batches_are_gzip_json_with_the_key(self, spool: Path) -> None:
        with receiving() as receiver:
            client = llmpulse.init(server_url=receiver.url, api_key="lp_test_key",
                                   spool_dir=spool, instrument=())  # fmt: skip
            record(10)
            assert client.flush(10)
        got = receiver.received[0]
        assert got.headers["content-encoding"] == "gzip"
        assert got.headers["content-type"] == "application/json"
        assert got.headers["authorization"] == "Bearer lp_test_key"
        assert got.headers["user-agent"].startswith("llmpulse-python/")
        doc = json.loads(gzip.decompress(got.raw))
        assert {s["name"] for s in doc["spans"]} >= {f"call-{i}" for i in range(10)}
        assert receiver.records() == 20

    def test_import_loads_no_http_library(self, tmp_path: Path) -> None:
        """The SDK sends with the standard library: neither httpx nor requests is imported."""
        code = textwrap.dedent("""
            import sys, llmpulse
            llmpulse.init(server_url="http://127.0.0.1:9", spool_dir=sys.argv[1], instrument=())
            print(sorted(m for m in ("httpx", "requests", "urllib3", "sqlalchemy", "fastapi")
                         if m in sys.modules))
        """)
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "spool")], capture_output=True,
                             text=True, timeout=60, check=True)  # fmt: skip
        assert out.stdout.strip() == "[]", out.stderr


class TestRefusals:
    def test_wrong_key_is_counted_as_unauthorized_and_logged(
        self, store: Store, spool: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        generate_key(store, "ingest", ["ingest"])
        with serving(create_app(ServerSettings(), store=store)) as url:
            client = llmpulse.init(server_url=url, api_key="lp_wrong", spool_dir=spool,
                                   instrument=())  # fmt: skip
            with caplog.at_level(logging.WARNING, logger="llmpulse.sdk"):
                record(5)
                client.flush(10)
            stats = assert_accounting(client, store, expect_recorded=10)
        assert stats.dropped["unauthorized"] == 10 and stats.spooled == 0
        assert stored_rows(store) == 0 and segments(spool) == []
        messages = [r.getMessage() for r in caplog.records if "API key" in r.getMessage()]
        assert len(messages) == 1, messages  # once, not once per batch
        assert "401" in messages[0] and "LLMPULSE_API_KEY" in messages[0]

    def test_right_key_is_accepted(self, store: Store, spool: Path) -> None:
        key, _ = generate_key(store, "ingest", ["ingest"])
        with serving(create_app(ServerSettings(), store=store)) as url:
            client = llmpulse.init(server_url=url, api_key=key, spool_dir=spool, instrument=())
            record(5)
            assert client.flush(10)
            assert_accounting(client, store, expect_recorded=10)
        assert stored_rows(store) == 10

    def test_a_record_the_server_refuses_costs_that_record_only(
        self, store: Store, spool: Path
    ) -> None:
        """The server refuses a run id over 128 characters (422 naming it): the rest is stored."""
        with serving(create_app(ServerSettings(), store=store)) as url:
            client = llmpulse.init(server_url=url, spool_dir=spool, instrument=())
            record(20)
            llmpulse.record_metric("loss", 0.5, run_id="r" * 200)
            llmpulse.record_metric("loss", 0.25, run_id="ok")
            client.flush(10)
            stats = assert_accounting(client, store, expect_recorded=42)
        assert stats.dropped["rejected_by_server"] == 1 and stats.dropped_total == 1
        assert stored_rows(store) == 41

    def test_too_large_batches_are_split(self, store: Store, spool: Path) -> None:
        """A server with a 64 KiB body limit: 413, halves, all stored."""
        settings = ServerSettings(max_body_bytes=64 * 1024)
        with serving(create_app(settings, store=store)) as url:
            client = llmpulse.init(server_url=url, spool_dir=spool, instrument=(),
                                   batch_size=2000)  # fmt: skip
            for i in range(400):
                llmpulse.record_llm_call("gpt-4o-mini", input_tokens=1, output_tokens=1,
                                         input=f"{i} " + "x" * 400)  # fmt: skip
            assert client.flush(30)
            stats = assert_accounting(client, store, expect_recorded=400)
        assert stats.dropped_total == 0 and stored_rows(store) == 400

    def test_a_record_larger_than_the_server_limit_is_dropped_alone(
        self, store: Store, spool: Path
    ) -> None:
        """Limit 8 KiB: the 16 KiB prompt is refused (413 down to one record), the rest stored."""
        settings = ServerSettings(max_body_bytes=8 * 1024)
        with serving(create_app(settings, store=store)) as url:
            client = llmpulse.init(server_url=url, spool_dir=spool, instrument=())
            for i in range(30):
                llmpulse.record_llm_call("gpt-4o-mini", input_tokens=1, output_tokens=1,
                                         input="y" * (16_000 if i == 7 else 10))  # fmt: skip
            client.flush(30)
            stats = assert_accounting(client, store, expect_recorded=30)
        assert stats.dropped == {**stats.dropped, "rejected_by_server": 1}
        assert stats.dropped_total == 1 and stored_rows(store) == 29

    def test_non_finite_metric_value_is_dropped_as_invalid(self, spool: Path) -> None:
        with receiving() as receiver:
            client = llmpulse.init(server_url=receiver.url, spool_dir=spool, instrument=())
            llmpulse.record_metric("gauge", float("nan"))
            llmpulse.record_metric("gauge", 1.0)
            assert client.flush(10)
            stats = assert_accounting(client, stored=receiver.records("metric_points"))
        assert stats.dropped["invalid"] == 1 and stats.exported == 1


class TestRetryAfter:
    def test_503_retry_after_is_waited_for(self, spool: Path) -> None:
        """Two 503s asking for 1 s: the next attempt never comes sooner, then it is stored."""
        script = [(503, {"Retry-After": "1"}), (503, {"Retry-After": "1"})]
        with receiving(script) as receiver:
            client = llmpulse.init(server_url=receiver.url, spool_dir=spool, instrument=())
            record(5)
            assert client.flush(20)
            stats = assert_accounting(client, stored=receiver.records())
        times = [r.at for r in receiver.received]
        assert [r.status for r in receiver.received] == [503, 503, 200]
        assert times[1] - times[0] >= 1.0 and times[2] - times[1] >= 1.0
        assert stats.exported == 10 and stats.dropped_total == 0

    def test_retry_after_beyond_the_budget_spools_then_delivers(self, spool: Path) -> None:
        """A 429 asking for 3 s (more than the 2 s budget): spooled, sent after 3 s."""
        with receiving([(429, {"Retry-After": "3"})]) as receiver:
            client = llmpulse.init(server_url=receiver.url, spool_dir=spool, instrument=())
            record(5)
            deadline = time.monotonic() + 5
            while client.stats().spooled != 10:
                assert time.monotonic() < deadline, client.stats()
                time.sleep(0.02)
            assert len(segments(spool)) == 1
            assert client.flush(20)
            stats = assert_accounting(client, stored=receiver.records())
        assert receiver.received[1].at - receiver.received[0].at >= 3.0
        assert stats.exported == 10 and stats.spooled == 0 and segments(spool) == []


class TestSpool:
    def test_outage_is_spooled_and_replayed_after_restart(self, store: Store, spool: Path) -> None:
        """Server up, down, up again on the same port: every span stored exactly once."""
        port = free_port()
        app = create_app(ServerSettings(), store=store)
        with serving(app, port=port) as url:
            client = llmpulse.init(server_url=url, spool_dir=spool, instrument=(), batch_size=400)
            record(500, prefix="before")
            assert client.flush(20)
        record(1500, prefix="during")  # nobody listens
        assert not client.flush(5)
        stats = client.stats()
        assert stats.spooled == 3000 and len(segments(spool)) >= 5
        assert_accounting(client, store, flush=None)
        with serving(create_app(ServerSettings(), store=store), port=port):
            assert client.flush(30)
            stats = assert_accounting(client, store, expect_recorded=4000)
            record(100, prefix="after")
            assert client.flush(20)
            stats = assert_accounting(client, store, expect_recorded=4200)
        assert stats.spooled == 0 and stats.dropped_total == 0 and segments(spool) == []
        assert stored_rows(store) == 4200  # nothing lost, nothing twice

    def test_spool_is_replayed_oldest_first(self, spool: Path) -> None:
        """Three batches spooled while nobody listens arrive in the order they were recorded."""
        port = free_port()
        client = llmpulse.init(server_url=f"http://127.0.0.1:{port}", spool_dir=spool,
                               instrument=())  # fmt: skip
        for name in ("first", "second", "third"):
            with llmpulse.span(name):
                pass
            assert not client.flush(2)
        assert client.stats().spooled == 3
        with receiving(port=port) as receiver:
            assert client.flush(20)
            names = [s["name"] for r in receiver.received for s in r.doc().get("spans", [])]
        assert names == ["first", "second", "third"]

    def test_a_dead_process_spool_is_adopted(self, store: Store, spool: Path) -> None:
        """A process records while the server is down and is SIGKILLed; the next one sends it."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        code = textwrap.dedent("""
            import os, signal, sys, time, llmpulse
            client = llmpulse.init(server_url=sys.argv[1], spool_dir=sys.argv[2], instrument=())
            for i in range(700):
                with llmpulse.span(f"orphan-{i}", kind="chain"):
                    pass
            client.flush(5)
            assert client.stats().spooled == 700, client.stats()
            os.kill(os.getpid(), signal.SIGKILL)
        """)
        proc = subprocess.run([sys.executable, "-c", code, url, str(spool)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert proc.returncode == -9, proc.stderr
        assert len(segments(spool)) >= 1
        from prometheus_client import REGISTRY

        from llmpulse.sdk._metrics import sdk_metrics

        sdk_metrics()  # this process's llm_* metrics count what it delivers, adopted spans too
        chains = {"model": "none", "kind": "chain"}

        def timed() -> float:
            return REGISTRY.get_sample_value("llm_request_latency_seconds_count", chains) or 0.0

        before = timed()
        with serving(create_app(ServerSettings(), store=store), port=port):
            client = llmpulse.init(server_url=url, spool_dir=spool, instrument=())
            deadline = time.monotonic() + 30
            while client.stats().recovered < 700:
                assert time.monotonic() < deadline, client.stats()
                time.sleep(0.05)
        assert stored_rows(store) == 700 and segments(spool) == []
        assert client.stats().recorded == 0  # not this process's records
        assert timed() - before == 700  # the dead process never counted them

    def test_a_live_process_spool_is_left_alone(self, spool: Path) -> None:
        """Two exporters on one spool dir: neither adopts the other's segments."""
        url = f"http://127.0.0.1:{free_port()}"
        first = HttpExporter(url, spool_dir=spool, retry_budget=0)
        second = HttpExporter(url, spool_dir=spool, retry_budget=0)
        try:
            from llmpulse.schema import Span

            first.export([Span("t1", "s1", "a", 1.0, 2.0)], counted=1)
            second.export([Span("t2", "s2", "b", 1.0, 2.0)], counted=1)
            assert first.spool.counts() == (1, 0) and second.spool.counts() == (1, 0)
            assert second.spool.adopt_orphans() == (0, 0, [])
            own = {p.parent for p in segments(spool)}
            assert len(own) == 2
        finally:
            first.shutdown()
            second.shutdown()

    def test_full_spool_drops_the_oldest_and_counts_them(self, spool: Path) -> None:
        """A spool of 40 KB while nobody listens: the oldest batches go, counted as spool_full."""
        client = llmpulse.init(server_url=f"http://127.0.0.1:{free_port()}", spool_dir=spool,
                               max_spool_bytes=40_000, instrument=(), batch_size=100)  # fmt: skip
        for i in range(20):
            record(50, prefix=f"batch{i}")
            client.flush(1)
        stats = client.stats()
        assert stats.dropped["spool_full"] > 0 and stats.spooled > 0
        assert stats.recorded == 2000 == stats.spooled + stats.dropped_total
        held = sum(p.stat().st_size for p in segments(spool))
        assert held <= 40_000
        docs = [json.loads(gzip.decompress(p.read_bytes().split(b"\n", 1)[1]))
                for p in segments(spool)]  # fmt: skip
        names = [s["name"] for doc in docs for s in doc.get("spans", [])]
        assert any(n.startswith("batch19-") for n in names)  # the newest are kept
        assert not any(n.startswith("batch0-") for n in names)

    def test_damaged_segment_is_removed_and_the_rest_delivered(
        self, store: Store, spool: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        leaving = HttpExporter(url, spool_dir=spool, retry_budget=0)
        from llmpulse.schema import Span

        for i in range(3):
            leaving.export([Span(f"t{i}", f"s{i}", "a", 1.0, 2.0)], counted=1)
        files = segments(spool)
        leaving.spool.forget_after_fork()  # let go of the lock as a dead process would
        files[1].write_bytes(files[1].read_bytes()[:-5] + b"xxxxx")  # a torn body
        with (
            serving(create_app(ServerSettings(), store=store), port=port),
            caplog.at_level(logging.WARNING, logger="llmpulse.sdk"),
        ):
            client = llmpulse.init(server_url=url, spool_dir=spool, instrument=())
            deadline = time.monotonic() + 20
            while segments(spool):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert stored_rows(store) == 2
        assert client.stats().recovered == 2
        assert any("damaged" in r.getMessage() for r in caplog.records)

    def test_unwritable_spool_counts_export_failed_and_never_raises(self, tmp_path: Path) -> None:
        """Server down and the spool directory cannot be made (a file is in the way)."""
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("x")
        client = llmpulse.init(server_url=f"http://127.0.0.1:{free_port()}", spool_dir=blocker,
                               instrument=())  # fmt: skip
        record(5)
        assert client.flush(10)  # settled: nothing queued, in flight or spooled
        stats = assert_accounting(client, stored=0, flush=None, expect_recorded=10)
        assert stats.dropped["export_failed"] == 10 and stats.spooled == 0

    def test_a_server_that_never_answers_is_timed_out_and_spooled(self, spool: Path) -> None:
        """A socket that accepts connections (backlog) but never answers: timeout, then spool."""
        from llmpulse.schema import Span

        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            url = f"http://127.0.0.1:{silent.getsockname()[1]}"
            exporter = HttpExporter(url, spool_dir=spool, timeout=0.5, retry_budget=0)
            try:
                outcome = exporter.export([Span("t", "s", "a", 1.0, 2.0)], counted=1)
                assert (outcome.spooled, outcome.rejected) == (1, 0)
                assert exporter.spool.counts() == (1, 0) and exporter.failed_attempts >= 1
            finally:
                exporter.shutdown()

    def test_child_process_gets_its_own_spool(self, spool: Path) -> None:
        """After fork the child spools into a directory of its own (its pid in the name)."""
        url = f"http://127.0.0.1:{free_port()}"
        code = textwrap.dedent("""
            import os, sys, llmpulse
            client = llmpulse.init(server_url=sys.argv[1], spool_dir=sys.argv[2], instrument=())
            with llmpulse.span("parent"):
                pass
            client.flush(3)
            pid = os.fork()
            if pid == 0:
                with llmpulse.span("child"):
                    pass
                client.flush(3)
                os._exit(0 if client.stats().spooled == 1 else 1)
            _, status = os.waitpid(pid, 0)
            print(pid, os.getpid(), status)
        """)
        out = subprocess.run([sys.executable, "-c", code, url, str(spool)], cwd=ROOT,
                             capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        child, parent, status = (int(x) for x in out.stdout.split())
        assert status == 0, out.stderr
        owners = {p.parent.name for p in segments(spool)}
        assert len(owners) == 2
        assert {o.split("-")[-2] for o in owners} == {str(child), str(parent)}


class TestShutdown:
    def test_shutdown_right_after_start_ends_the_replay_thread(self, spool: Path) -> None:
        """A stop landing between the replay loop's check and its wait is still heard: the
        thread ends, instead of sleeping until its next rescan while shutdown() waits out its
        join (2 s per exporter that was shut down soon after it started)."""
        for _ in range(20):
            exporter = HttpExporter("http://127.0.0.1:1", spool_dir=spool)
            thread = exporter._thread
            exporter.shutdown()
            assert thread is not None and not thread.is_alive()


class TestConfig:
    def test_environment_variables(self, spool: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        with receiving() as receiver:
            monkeypatch.setenv("LLMPULSE_SERVER_URL", receiver.url)
            monkeypatch.setenv("LLMPULSE_API_KEY", "lp_from_env")
            monkeypatch.setenv("LLMPULSE_SPOOL_DIR", str(spool))
            monkeypatch.setenv("LLMPULSE_MAX_SPOOL_BYTES", "1000000")
            client = llmpulse.init(instrument=())
            assert isinstance(client.exporter, HttpExporter)
            assert client.exporter.spool.max_bytes == 1_000_000
            assert str(client.exporter.spool_dir).startswith(str(spool))
            record(1)
            assert client.flush(10)
        assert receiver.received[0].headers["authorization"] == "Bearer lp_from_env"

    def test_bad_settings_are_config_errors(self, spool: Path) -> None:
        with pytest.raises(ConfigError, match="http:// or https://"):
            llmpulse.init(server_url="ftp://x", spool_dir=spool, instrument=())
        with pytest.raises(ConfigError, match="one destination"):
            llmpulse.init("sqlite:///x.db", server_url="http://127.0.0.1:1", instrument=())
        with pytest.raises(ConfigError, match="max_spool_bytes"):
            llmpulse.init(server_url="http://127.0.0.1:1", max_spool_bytes=0, instrument=())

    def test_key_is_never_printed(self, spool: Path) -> None:
        client = llmpulse.init(server_url="http://127.0.0.1:1", api_key="lp_secret",
                               spool_dir=spool, instrument=())  # fmt: skip
        assert "lp_secret" not in repr(client.exporter) + repr(client.config)

    def test_https_to_a_plain_http_server_says_to_use_http(
        self, store: Store, spool: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An https:// URL whose server (the real one) speaks plain http: recording goes on,
        the batches wait in the spool, and one warning names the http:// URL to use instead of
        leaving the TLS handshake error unexplained."""
        with (
            serving(create_app(ServerSettings(), store=store)) as url,
            caplog.at_level(logging.WARNING, logger="llmpulse.sdk"),
        ):
            https = "https://" + url.removeprefix("http://")
            client = llmpulse.init(server_url=https, spool_dir=spool, instrument=())
            for _ in range(2):
                record(3)
                assert not client.flush(5)
        told = [r.getMessage() for r in caplog.records if "TLS" in r.getMessage()]
        assert told == [
            f"No TLS: the server at {https} does not speak TLS (it answered the handshake in "
            f"plain http): use {url} as server_url (or LLMPULSE_SERVER_URL); batches are "
            "spooled meanwhile"
        ]
        assert client.stats().spooled == 12 and stored_rows(store) == 0

    def test_default_spool_dir_is_the_user_state_dir(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        exporter = HttpExporter("http://127.0.0.1:1")
        try:
            assert exporter.spool_dir.parent == tmp_path / "state" / "llmpulse" / "spool"
        finally:
            exporter.shutdown()


class TestLostAcknowledgement:
    """The server commits a batch, its answer is lost on the way back, the SDK sends it again
    (at once, or later from the spool): nothing is stored twice, points included, and the
    rollups count every call once. SQLite and PostgreSQL."""

    @pytest.mark.parametrize("path", ["retry", "spool"])
    def test_a_resent_batch_stores_nothing_twice(
        self, database_url: str, spool: Path, path: str
    ) -> None:
        from llmpulse.sdk.exporters.http import HttpExporter
        from tests.e2e.lossy_proxy import lossy_proxy

        with (
            Store.open(database_url) as store,
            serving(create_app(ServerSettings(), store=store)) as url,
            lossy_proxy(url, lose=1) as proxy,
        ):
            # retry_budget=0: the lost answer sends the batch straight to the spool.
            budget = 5.0 if path == "retry" else 0.0
            exporter = HttpExporter(proxy.url, spool_dir=spool, retry_budget=budget)
            client = llmpulse.init(exporter=exporter, instrument=(), batch_size=10_000)
            with llmpulse.span("pipeline", kind="chain"):
                for i in range(40):
                    llmpulse.record_llm_call("gpt-4o-mini", input_tokens=i, output_tokens=1)
                    llmpulse.record_metric("loss", float(i), run_id="r1", step=i)
            assert client.flush(30), client.stats()
            stats = assert_accounting(client, store, expect_recorded=81)
            assert stats.dropped_total == 0 and stats.spooled == 0 and stats.exported == 81
            if path == "spool":
                assert stats.export_failures == 0  # the spool took it, then replayed it

            (lost,) = proxy.lost()
            assert lost.status == 200 and len(lost.request["metric_points"]) == 40
            again = [f for f in proxy.forwarded if f.request == lost.request and not f.lost]
            assert len(again) == 1 and again[0].status == 200  # the same records, resent
            assert again[0].answer["duplicate_metric_points"] == 40
            assert again[0].answer["metric_points"] == 0 and again[0].answer["spans"] == 0
            assert again[0].answer["duplicates"] == 41

            points = store.metric_series("loss", 0, time.time() + 60)
            assert sorted(p.step for p in points) == list(range(40))
            (row,) = store.span_stats(0, time.time() + 60, kind="llm")
            assert (row.calls, row.input_tokens) == (40, sum(range(40)))
