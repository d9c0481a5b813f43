"""The embedded store exporter against real SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest

import llmpulse
from llmpulse.schema import Run
from llmpulse.sdk.exporters.store import StoreExporter, hide_password
from llmpulse.store import Store
from tests.faults._accounting import GatedStoreExporter

FAR_FUTURE = 4e9

# Alembic >= 1.16 warns about the store's migration config (store-owned; reported upstream in
# the project). Not an SDK behaviour, so it must not fail these tests.


def _all_spans(store: Store) -> list[Any]:
    return store.list_spans(0, FAR_FUTURE, limit=100_000)


class TestStoreExporter:
    def test_records_reach_the_store(self, database_url: str, store: Store) -> None:
        """Spans (with parents), llm calls, metric points and runs are stored as recorded."""
        llmpulse.init(database_url, instrument=())
        with llmpulse.span("pipeline", kind="chain") as root:
            llmpulse.record_llm_call(
                "gpt-4o-mini",
                input_tokens=100,
                output_tokens=20,
                latency_ms=300,
                input="q",
                output="a",
            )
        llmpulse.record_metric("queue.depth", 3.0, labels={"host": "a"})
        llmpulse.get_client().record_run(Run(run_id="run-1", name="bench", started_at=1.0))
        assert llmpulse.flush(30)
        trace = store.get_trace(root.trace_id)
        assert {s.name for s in trace} == {"pipeline", "llm"}
        llm = next(s for s in trace if s.kind == "llm")
        assert llm.parent_id == root.span_id and llm.total_tokens == 120 and llm.cost_usd > 0
        assert [p.value for p in store.metric_series("queue.depth", 0, FAR_FUTURE)] == [3.0]
        assert store.get_run("run-1") is not None

    def test_accounting_with_a_full_queue(self, database_url: str, store: Store) -> None:
        """With a tiny queue and a blocked store, recorded = stored + dropped, exactly."""
        exporter = GatedStoreExporter(database_url)
        client = llmpulse.init(exporter=exporter, instrument=(), queue_size=20, batch_size=7)
        llmpulse.record_llm_call("gpt-4o")
        assert exporter.entered.wait(10)
        for i in range(200):
            with llmpulse.span("step", i=i):
                pass
        exporter.gate.set()
        assert llmpulse.flush(30)
        stats = client.stats()
        stored = len(_all_spans(store))
        assert stats.recorded == 201 and stored == stats.exported == 21
        assert stats.dropped["queue_full"] == 180
        assert stats.recorded == stored + stats.dropped_total

    def test_store_rejections_are_counted(self, database_url: str, store: Store) -> None:
        """A record the store refuses (a NaN value) is counted as rejected_by_store; the rest commit."""
        client = llmpulse.init(database_url, instrument=())
        llmpulse.record_metric("ok", 1.0)
        llmpulse.record_metric("bad", float("nan"))
        assert llmpulse.flush(30)
        stats = client.stats()
        assert stats.exported == 1 and stats.dropped["rejected_by_store"] == 1
        assert stats.recorded == stats.exported + stats.dropped_total

    def test_sampled_traces_are_complete_in_the_store(
        self, database_url: str, store: Store
    ) -> None:
        """With sampling, every stored child span's parent is stored too."""
        llmpulse.init(database_url, instrument=(), sample_rate=0.3)
        for _ in range(200):
            with llmpulse.span("root"), llmpulse.span("child"):
                llmpulse.record_llm_call("gpt-4o")
        assert llmpulse.flush(30)
        spans = _all_spans(store)
        ids = {s.span_id for s in spans}
        assert spans and all(s.parent_id in ids for s in spans if s.parent_id)
        assert len(spans) % 3 == 0


class TestUnreachableStore:
    def test_unreachable_store_warns_once_and_never_raises(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A store that cannot be opened costs two warnings and counted drops, not an exception."""
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"postgresql://postgres:secret@127.0.0.1:{port}/nope"
        with caplog.at_level(logging.WARNING, logger="llmpulse"):
            client = llmpulse.init(
                url, instrument=(), export_attempts=2, retry_backoff=0.0, batch_size=2
            )
            for _ in range(5):
                llmpulse.record_llm_call("gpt-4o")
            assert llmpulse.flush(30)
        stats = client.stats()
        assert stats.dropped["export_failed"] == 5 and stats.exported == 0
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        # One warning that a batch is retried, one that records were dropped (never a flood).
        assert len(warnings) == 2 and all("StoreUnavailableError" in w for w in warnings)
        assert "is retried" in warnings[0] and "records dropped" in warnings[1]
        assert "secret" not in caplog.text

    def test_password_hidden_in_repr(self) -> None:
        """The exporter never shows the database password."""
        assert hide_password("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
        assert "pw" not in repr(StoreExporter("postgresql://u:pw@h/db"))
