"""The export queue: batching, retries, drops by reason, flush and shutdown, exact accounting."""

from __future__ import annotations

import threading
import time
from typing import Any

import llmpulse
from llmpulse.sdk import SdkStats
from llmpulse.testing import InMemoryExporter

from .conftest import BlockingExporter, FailingExporter, RejectingExporter


def _balanced(stats: SdkStats) -> bool:
    return (
        stats.recorded == stats.exported + stats.dropped_total + stats.queue_depth + stats.in_flight
    )


def _export_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "llmpulse-export"]


class SizeRecorder(InMemoryExporter):
    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def export(self, batch: list[Any]) -> None:
        self.sizes.append(len(batch))
        super().export(batch)


class TestAccounting:
    def test_full_queue_drops_are_counted_exactly(self) -> None:
        """With the exporter blocked and a queue of 10, the overflow is dropped and counted."""
        exporter = BlockingExporter()
        client = llmpulse.init(exporter=exporter, instrument=(), queue_size=10, batch_size=5)
        llmpulse.record_llm_call("gpt-4o")
        assert exporter.entered.wait(10)  # the export thread holds that one record
        for _ in range(100):
            llmpulse.record_llm_call("gpt-4o")
        assert client.stats().queue_depth == 10
        exporter.release()
        assert llmpulse.flush(10)
        stats = client.stats()
        assert stats.recorded == 101
        assert stats.exported == len(exporter.spans) == 11
        assert stats.dropped["queue_full"] == 90
        assert stats.recorded == stats.exported + stats.dropped_total

    def test_many_threads(self) -> None:
        """Records from many threads at once are all exported, none lost or doubled."""
        exporter = InMemoryExporter()
        client = llmpulse.init(exporter=exporter, instrument=())

        def work() -> None:
            for _ in range(5000):
                llmpulse.record_llm_call("gpt-4o-mini")

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert llmpulse.flush(30)
        stats = client.stats()
        assert stats.recorded == stats.exported == 20_000 == len(exporter.spans)
        assert len({s.span_id for s in exporter.spans}) == 20_000

    def test_batches_respect_batch_size(self) -> None:
        """No batch handed to the exporter is larger than batch_size."""
        exporter = SizeRecorder()
        llmpulse.init(exporter=exporter, instrument=(), batch_size=10)
        for _ in range(95):
            llmpulse.record_metric("m", 1.0)
        assert llmpulse.flush(10)
        assert sum(exporter.sizes) == 95 and max(exporter.sizes) <= 10


class TestRetries:
    def test_transient_failures_are_retried(self) -> None:
        """A batch that fails twice and then succeeds is exported once, with 2 failures counted."""
        exporter = FailingExporter(failures=2)
        client = llmpulse.init(exporter=exporter, instrument=(), retry_backoff=0.01)
        for _ in range(3):
            llmpulse.record_llm_call("gpt-4o")
        assert llmpulse.flush(10)
        stats = client.stats()
        assert len(exporter.spans) == 3 and stats.exported == 3 and stats.dropped_total == 0
        assert stats.export_failures == 2

    def test_final_failure_drops_the_batch_with_a_reason(self, caplog: Any) -> None:
        """After the last attempt the batch is dropped as export_failed, and a warning says so once."""
        exporter = FailingExporter()
        client = llmpulse.init(
            exporter=exporter, instrument=(), export_attempts=3, retry_backoff=0.0
        )
        for _ in range(4):
            llmpulse.record_llm_call("gpt-4o")
        assert llmpulse.flush(10)
        stats = client.stats()
        assert stats.dropped["export_failed"] == 4 and stats.exported == 0
        assert stats.export_failures == exporter.attempts >= 3
        assert _balanced(stats)
        assert caplog.text.count("Export failed: ConnectionError: exporter down") == 1

    def test_rejected_records_are_counted(self) -> None:
        """Records the destination refuses count as rejected_by_store, the rest as exported."""
        client = llmpulse.init(exporter=RejectingExporter(), instrument=())
        for model in ("good", "bad", "good", "bad", "bad"):
            llmpulse.record_llm_call(model)
        assert llmpulse.flush(10)
        stats = client.stats()
        assert stats.exported == 2 and stats.dropped["rejected_by_store"] == 3 and _balanced(stats)


class TestFlushAndShutdown:
    def test_flush_with_a_hanging_exporter_returns_false(self) -> None:
        """flush() gives up after its timeout and says so; a later flush succeeds."""
        exporter = BlockingExporter()
        llmpulse.init(exporter=exporter, instrument=())
        llmpulse.record_llm_call("gpt-4o")
        assert llmpulse.flush(timeout=0.2) is False
        exporter.release()
        assert llmpulse.flush(timeout=10) is True
        assert len(exporter.spans) == 1

    def test_flush_with_nothing_recorded(self) -> None:
        """flush() on an idle client returns True without starting a thread."""
        llmpulse.init(exporter=InMemoryExporter(), instrument=())
        assert llmpulse.flush(1) is True
        assert not _export_threads()

    def test_export_thread_starts_lazily(self) -> None:
        """init() starts no thread; the first record does."""
        llmpulse.init(exporter=InMemoryExporter(), instrument=())
        assert not _export_threads()
        llmpulse.record_metric("m", 1)
        assert llmpulse.flush(10)
        assert len(_export_threads()) == 1

    def test_shutdown_counts_what_it_could_not_deliver(self) -> None:
        """Shutdown with a stuck exporter drops the queue as 'shutdown'; later records too."""
        exporter = BlockingExporter()
        client = llmpulse.init(exporter=exporter, instrument=())
        llmpulse.record_llm_call("gpt-4o")
        assert exporter.entered.wait(10)
        for _ in range(5):
            llmpulse.record_llm_call("gpt-4o")
        assert llmpulse.shutdown(timeout=0.2) is False
        llmpulse.record_llm_call("after")
        with llmpulse.span("after"):
            pass
        stats = client.stats()
        assert stats.dropped["shutdown"] == 7 and stats.in_flight == 0
        assert stats.dropped["in_flight_at_shutdown"] == 1
        assert _balanced(stats)
        exporter.release()
        deadline = time.monotonic() + 10
        while client.stats().exported != 1:  # the unfinished export ends after all
            assert time.monotonic() < deadline, client.stats()
            time.sleep(0.01)
        stats = client.stats()
        assert stats.dropped["in_flight_at_shutdown"] == 0 and _balanced(stats)

    def test_shutdown_exports_everything_and_closes_the_exporter(self) -> None:
        """A clean shutdown delivers all records and calls exporter.shutdown()."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=())
        for _ in range(10):
            llmpulse.record_llm_call("gpt-4o")
        assert llmpulse.shutdown(10) is True
        assert len(exporter.spans) == 10 and exporter.shut_down
        assert not _export_threads()

    def test_second_init_replaces_the_client(self) -> None:
        """init() again flushes and shuts down the old client; new records go to the new one."""
        first, second = InMemoryExporter(), InMemoryExporter()
        llmpulse.init(exporter=first, instrument=())
        llmpulse.record_llm_call("one")
        new = llmpulse.init(exporter=second, instrument=())
        llmpulse.record_llm_call("two")
        assert llmpulse.flush(10)
        assert [s.model for s in first.spans] == ["one"] and first.shut_down
        assert [s.model for s in second.spans] == ["two"] and llmpulse.get_client() is new
