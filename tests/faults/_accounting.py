"""The accounting identity every fault probe asserts, against the real store.

recorded = stored + dropped (by reason) + in flight (queued, in an unfinished export, or
waiting in the HTTP exporter's spool)

``stored`` is counted in the database (span, metric point and run rows), never taken from the
SDK's own ``exported`` counter, so a record the SDK believes delivered but the store does not
hold breaks the identity. ``exported`` must then equal ``stored`` as well.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import func, select

from llmpulse.sdk._stats import SdkStats
from llmpulse.sdk.exporters.store import StoreExporter
from llmpulse.store import Store
from llmpulse.store.models import metadata

__all__ = ["AckLostStoreExporter", "assert_accounting", "stored_rows"]

_RECORD_TABLES = ("spans", "metric_points", "runs")
_SELF_METRICS = "llmpulse_sdk_"  # prefix of the SDK's self-metric names


def stored_rows(store: Store) -> int:
    """Span, metric point and run rows in ``store`` (each record is one row).

    The SDK's own drop/repair counters (``llmpulse_sdk_*`` metric points) are not records the
    application made, so they are left out.
    """
    engine: Any = store._engine
    with engine.connect() as conn:
        total = 0
        for name in _RECORD_TABLES:
            table = metadata.tables[name]
            query = select(func.count()).select_from(table)
            if name == "metric_points":
                query = query.where(~table.c.name.startswith(_SELF_METRICS, autoescape=True))
            total += int(conn.execute(query).scalar() or 0)
        return total


def assert_accounting(
    client: Any,
    store: Store | None = None,
    *,
    stored: int | None = None,
    flush: float | None = 10.0,
    expect_recorded: int | None = None,
) -> SdkStats:
    """Assert recorded = stored + dropped(by reason) + in flight for ``client``.

    ``store`` is read for ``stored`` unless ``stored`` is given (for an exporter that is not a
    store). ``flush`` first waits that long for the export thread (``None``: no flush, for a
    probe that checks the identity while records are still queued or held by a stalled export).
    ``expect_recorded`` also pins how many records the SDK saw. Returns the stats it checked.
    """
    if flush is not None:
        client.flush(flush)
    stats: SdkStats = client.stats()
    if stored is None:
        if store is None:
            raise TypeError("assert_accounting needs a store or stored=")
        stored = stored_rows(store)
    in_flight = stats.queue_depth + stats.in_flight + stats.spooled
    detail = (
        f"recorded={stats.recorded} stored={stored} dropped={stats.dropped} "
        f"queued={stats.queue_depth} in_flight={stats.in_flight} spooled={stats.spooled} "
        f"exported={stats.exported}"
    )
    if expect_recorded is not None:
        assert stats.recorded == expect_recorded, detail
    assert stats.recorded == stored + stats.dropped_total + in_flight, detail
    assert stats.exported == stored, detail
    return stats


class AckLostStoreExporter(StoreExporter):
    """The real store exporter whose first write commits but then 'loses' its answer."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.lost = 0

    def export(self, batch: list[Any]) -> Any:
        result = super().export(batch)
        if not self.lost:
            self.lost = len(batch)
            raise ConnectionError("connection reset after COMMIT")
        return result


class GatedStoreExporter(StoreExporter):
    """The real store exporter, holding every export until ``gate`` is set (30 s at most)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.gate, self.entered = threading.Event(), threading.Event()

    def export(self, batch: list[Any]) -> Any:
        self.entered.set()
        assert self.gate.wait(30.0)
        return super().export(batch)
