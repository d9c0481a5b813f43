"""Accounting through shutdown, re-init and exporters that fail in unusual ways, on both stores.

Every probe ends on the identity recorded = stored + dropped (by reason) + in flight, with
``stored`` counted in the database.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

import llmpulse
from llmpulse.sdk.exporters.store import StoreExporter
from llmpulse.store import Store
from tests.faults._accounting import (
    AckLostStoreExporter,
    GatedStoreExporter,
    assert_accounting,
    stored_rows,
)

HANG = 30.0


class FlakyStoreExporter(StoreExporter):
    """The real store exporter, but its first ``fail`` attempts raise ``error`` instead."""

    def __init__(self, url: str, error: BaseException, fail: int = 1) -> None:
        super().__init__(url)
        self.error, self.fail = error, fail

    def export(self, batch: list[Any]) -> Any:
        if self.fail > 0:
            self.fail -= 1
            raise self.error
        return super().export(batch)


def _wait(predicate: Any) -> None:
    deadline = time.monotonic() + HANG
    while not predicate():
        assert time.monotonic() < deadline, "condition never met"
        time.sleep(0.01)


class TestExporterRaisingBaseExceptions:
    @pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(3)], ids=repr)
    def test_the_thread_survives_and_the_batch_is_retried(
        self, database_url: str, store: Store, error: BaseException
    ) -> None:
        """KeyboardInterrupt/SystemExit from an exporter fail one attempt; nothing is lost."""
        exporter = FlakyStoreExporter(database_url, error, fail=1)
        client = llmpulse.init(exporter=exporter, instrument=(), retry_backoff=0.0)
        for i in range(50):
            llmpulse.record_llm_call("gpt-4o-mini", input_tokens=i)
        stats = assert_accounting(client, store, expect_recorded=50)
        assert stats.dropped_total == 0 and stats.export_failures == 1
        llmpulse.record_llm_call("after")  # the same thread still exports
        assert_accounting(client, store, expect_recorded=51)

    def test_every_attempt_failing_counts_the_batch(self, database_url: str, store: Store) -> None:
        """An exporter that always raises SystemExit: the records are counted export_failed."""
        exporter = FlakyStoreExporter(database_url, SystemExit(1), fail=10**9)
        client = llmpulse.init(
            exporter=exporter, instrument=(), export_attempts=2, retry_backoff=0.0
        )
        for _ in range(20):
            llmpulse.record_llm_call("gpt-4o-mini")
        stats = assert_accounting(client, store, expect_recorded=20)
        assert stats.dropped["export_failed"] == 20


class TestShutdownWithAnExportInProgress:
    def test_unfinished_export_has_its_own_reason_then_counts_as_stored(
        self, database_url: str, store: Store, caplog: pytest.LogCaptureFixture
    ) -> None:
        """At the shutdown timeout the batch being exported is in_flight_at_shutdown, not lost
        without trace; when that export ends after all, it counts as stored."""
        exporter = GatedStoreExporter(database_url)
        client = llmpulse.init(exporter=exporter, instrument=(), batch_size=10_000)
        for _ in range(1000):
            llmpulse.record_llm_call("gpt-4o-mini")
        assert exporter.entered.wait(HANG)
        for _ in range(10):
            llmpulse.record_llm_call("gpt-4o-mini")
        with caplog.at_level(logging.WARNING, logger="llmpulse"):
            assert client.shutdown(0.2) is False
        stats = assert_accounting(client, store, flush=None, expect_recorded=1010)
        unfinished = stats.dropped["in_flight_at_shutdown"]
        assert unfinished > 0 and stats.dropped["shutdown"] == 1010 - unfinished
        assert "in an export still running" in caplog.text
        exporter.gate.set()
        _wait(lambda: client.stats().dropped["in_flight_at_shutdown"] == 0)
        stats = assert_accounting(client, store, flush=None, expect_recorded=1010)
        assert stats.exported == unfinished == stored_rows(store)


class TestReinitWarnsOnlyOfRealLosses:
    def test_records_still_being_exported_are_not_called_lost(
        self, database_url: str, store: Store, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A second init() while the first client's export runs: no 'lost' warning, and the
        records are stored once that export ends.

        The 2,000 records must all be in that one export. The first record wakes the export
        thread at once, which on a loaded machine drains the queue while the loop is still
        recording; so a primer record takes that first export, and the 2,000 are queued while
        the thread sleeps (no time flush for an hour, no wake below 10,000 queued) and handed
        over in one batch by ``flush(0)``.
        """
        exporter = GatedStoreExporter(database_url)
        exporter.gate.set()  # the primer's export goes through
        # The second init() shuts this client down with *its* shutdown_timeout: waiting the
        # default 5 s for an export held at the gate would only delay the same warning.
        first = llmpulse.init(exporter=exporter, instrument=(), batch_size=10_000,
                              queue_size=100_000, flush_interval=3600,
                              shutdown_timeout=0.2)  # fmt: skip
        llmpulse.record_llm_call("primer")
        _wait(lambda: first.stats().exported == 1)
        exporter.gate.clear()
        exporter.entered.clear()
        for _ in range(2000):
            llmpulse.record_llm_call("gpt-4o-mini")
        assert first.stats().queue_depth == 2000  # nothing woke the thread
        assert not first.flush(0)  # wakes it: all 2,000 go into one export, held at the gate
        assert exporter.entered.wait(HANG)
        _wait(lambda: first.stats().in_flight == 2000)
        with caplog.at_level(logging.WARNING, logger="llmpulse"):
            llmpulse.init(exporter=llmpulse.testing.InMemoryExporter(), instrument=(),
                          shutdown_timeout=0.2)  # fmt: skip
        assert "lost" not in caplog.text
        assert "2,000 records are in an export still running" in caplog.text
        exporter.gate.set()
        _wait(lambda: first.stats().exported == 2001)
        stats = assert_accounting(first, store, flush=None, expect_recorded=2001)
        assert stats.dropped_total == 0


class TestDropsAreMetricPoints:
    def test_drop_counts_reach_the_store_as_cumulative_points(
        self, database_url: str, store: Store
    ) -> None:
        """Refused records show up in the store as llmpulse_sdk_dropped_total, by reason."""
        client = llmpulse.init(database_url, instrument=(), queue_size=10, batch_size=10_000)
        exporter = client.exporter
        lock = threading.Lock()
        real_export = exporter.export

        def slow_export(batch: list[Any]) -> Any:
            with lock:
                return real_export(batch)

        exporter.export = slow_export
        with lock:  # the export thread is held: the queue fills and refuses the rest
            for _ in range(30):
                llmpulse.record_llm_call("gpt-4o-mini")
        stats = assert_accounting(client, store, expect_recorded=30)
        refused = stats.dropped["queue_full"]
        assert refused >= 19
        points = store.metric_series("llmpulse_sdk_dropped_total", 0, time.time() + 60)
        assert [(p.labels["reason"], p.value) for p in points][-1] == ("queue_full", refused)


class TestRetryAfterALostAcknowledgement:
    def test_a_committed_batch_sent_again_counts_as_stored_once(
        self, database_url: str, store: Store
    ) -> None:
        """The retry finds every span_id and point_id stored: exported, not rejected; rollups
        count once."""
        exporter = AckLostStoreExporter(database_url)
        client = llmpulse.init(exporter=exporter, instrument=(), retry_backoff=0.0)
        with llmpulse.span("pipeline", kind="chain"):
            for i in range(199):
                llmpulse.record_llm_call("gpt-4o-mini", input_tokens=i, output_tokens=1)
                if i % 10 == 0:
                    llmpulse.record_metric("loss", float(i), step=i)
        stats = assert_accounting(client, store, expect_recorded=220)
        # The first batch (whatever the export thread had taken) was committed, then retried.
        assert exporter.lost > 0 and stats.export_failures == 1
        assert stats.dropped_total == 0 and stats.exported == 220
        steps = [p.step for p in store.metric_series("loss", 0, time.time() + 60)]
        assert sorted(steps) == list(range(0, 199, 10))
        (row,) = store.span_stats(0, time.time() + 60, kind="llm")
        assert (row.calls, row.input_tokens) == (199, sum(range(199)))

    def test_repair_counts_reach_the_store_as_cumulative_points(
        self, database_url: str, store: Store
    ) -> None:
        """A repaired value (NaN) shows up as llmpulse_sdk_repaired_total, by reason."""
        client = llmpulse.init(database_url, instrument=())
        for _ in range(3):
            llmpulse.record_llm_call("gpt-4o-mini", attributes={"score": float("nan")})
        stats = assert_accounting(client, store, expect_recorded=3)
        assert stats.dropped_total == 0 and stats.repaired["non_finite_number"] == 3
        points = store.metric_series("llmpulse_sdk_repaired_total", 0, time.time() + 60)
        assert [(p.labels["reason"], p.value) for p in points][-1] == ("non_finite_number", 3)
