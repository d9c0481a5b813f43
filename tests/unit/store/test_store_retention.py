"""Retention cleanup and the health report."""

from __future__ import annotations

import pytest

from llmpulse.schema import MetricPoint
from llmpulse.store import CleanupResult, Store
from tests.unit.store.conftest import T0, make_span

DAY = 86400


class TestCleanup:
    def test_raw_rows_go_rollups_stay(self, store: Store) -> None:
        """Spans and points older than N days are deleted; rollups survive until rollup_days."""
        old = [make_span(T0 - 10 * DAY + i) for i in range(7)]
        new = [make_span(T0 - DAY + i) for i in range(3)]
        points = [MetricPoint("m", 1.0, T0 - 10 * DAY), MetricPoint("m", 2.0, T0 - DAY)]
        store.write(spans=old + new, points=points)
        result = store.cleanup(5, now=T0, rollup_days=30, chunk_rows=3)  # several chunks
        assert (result.spans, result.metric_points, result.rollups) == (7, 1, 0)
        assert len(store.list_spans(T0 - 20 * DAY, T0)) == 3
        assert [p.value for p in store.metric_series("m", 0, T0)] == [2.0]
        # The rollups still count the old spans.
        assert store.span_stats(T0 - 20 * DAY, T0)[0].calls == 10

    def test_rollups_expire_later(self, store: Store) -> None:
        """Rollups older than rollup_days are deleted in hour chunks; newer ones stay."""
        store.write(
            spans=[make_span(T0 - 10 * DAY + h * 3600) for h in range(5)] + [make_span(T0 - DAY)]
        )
        result = store.cleanup(2, now=T0 + 1, rollup_days=5)
        # 5 old spans in 5 different hours: one minute row and one hour row each.
        assert (result.spans, result.rollups) == (5, 10)
        (row,) = store.span_stats(T0 - 20 * DAY, T0 + 1)
        assert row.calls == 1

    def test_nothing_to_delete(self, store: Store) -> None:
        """Cleanup of an empty store deletes nothing and says so."""
        assert store.cleanup(1, now=T0) == CleanupResult()
        assert CleanupResult().as_dict() == {"spans": 0, "metric_points": 0, "rollups": 0}

    def test_negative_days(self, store: Store) -> None:
        """Negative retention is refused."""
        with pytest.raises(ValueError, match=">= 0"):
            store.cleanup(-1, now=T0)


class TestHealth:
    def test_report(self, store: Store) -> None:
        """Health names the backend, masks the URL, and counts rows and bytes."""
        store.write(spans=[make_span()], points=[MetricPoint("m", 1.0, T0)])
        report = store.health()
        assert report["backend"] == store.backend and report["url"] == store.url
        assert report["reachable"] is True and report["up_to_date"] is True
        assert report["rows"]["spans"] == 1 and report["rows"]["metric_points"] == 1
        assert report["rows"]["rollups"] == 2  # one minute row and one hour row
        assert report["size_bytes"] > 0

    def test_sqlite_wal(self, sqlite_store: Store) -> None:
        """On SQLite health reports WAL mode."""
        report = sqlite_store.health()
        assert report["journal_mode"] == "wal" and report["wal"] is True

    def test_recovers_from_dropped_connections(self, postgres_url: str) -> None:
        """When the server ends the store's connections, the next calls reconnect and work."""
        import psycopg
        import sqlalchemy as sa

        with Store.open(postgres_url) as store:
            with store._engine.connect() as conn:  # noqa: SLF001 - find the pooled connection's pid
                pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            with psycopg.connect(postgres_url.split("?")[0], autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            assert store.write(spans=[make_span()]).spans == 1
            assert store.health()["reachable"] is True


def test_cleanup_preview_counts_exactly_what_cleanup_deletes(store: Store) -> None:
    store.write(spans=[make_span(start=T0 - 10 * 86400 + i) for i in range(3)])
    store.write(spans=[make_span(start=T0 - 3600)])
    preview = store.cleanup_preview(5, now=T0, rollup_days=7)
    assert (preview.spans, preview.metric_points) == (3, 0) and preview.rollups > 0
    assert store.cleanup_preview(5, now=T0, rollup_days=7) == preview  # it deleted nothing
    assert store.cleanup(5, now=T0, rollup_days=7) == preview
