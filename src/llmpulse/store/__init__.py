"""The store: spans, metric points and runs in SQLite or PostgreSQL, and rollups over them.

The only part of llmpulse that speaks SQL. Everything else asks it for records or aggregates::

    from llmpulse.store import Store

    store = Store.open("sqlite:///./llmpulse.db")       # or postgresql://user@host/db
    result = store.write(spans=spans)                    # one transaction per batch
    rows = store.span_stats(start, end, group_by=("model",))

See docs/storage.md.
"""

from __future__ import annotations

from llmpulse.store._histogram import RELATIVE_ERROR
from llmpulse.store._retention import CleanupResult
from llmpulse.store._store import Store
from llmpulse.store._writer import WriteResult
from llmpulse.store.queries.admin import ApiKeyRecord, ModelRecord
from llmpulse.store.queries.browse import TraceTotals
from llmpulse.store.queries.rollups import GROUP_KEYS, BranchCount, SpanStats

__all__ = [
    "GROUP_KEYS",
    "RELATIVE_ERROR",
    "ApiKeyRecord",
    "BranchCount",
    "CleanupResult",
    "ModelRecord",
    "SpanStats",
    "Store",
    "TraceTotals",
    "WriteResult",
]
