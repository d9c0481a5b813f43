"""Helpers for the alerting tests: spans and metric points written to a real store."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from llmpulse.schema import MetricPoint, Span
from llmpulse.store import Store

_ids = itertools.count()


def llm(start: float, *, model: str = "gpt-4o", latency_ms: float = 100.0, error: bool = False,
        tokens: int = 100, cost: float = 0.001) -> Span:  # fmt: skip
    """One llm span."""
    n = next(_ids)
    return Span(
        trace_id=f"t{n}", span_id=f"s{n}", name="chat", start_time=start,
        end_time=start + latency_ms / 1000.0, kind="llm", status="error" if error else "ok",
        error_type="RateLimitError" if error else None, model=model, provider="openai",
        input_tokens=tokens // 2, output_tokens=tokens - tokens // 2, total_tokens=tokens,
        cost_usd=cost,
    )  # fmt: skip


def point(name: str, value: float, at: float, **labels: str) -> MetricPoint:
    """One metric point."""
    return MetricPoint(name=name, value=value, timestamp=at, labels=dict(labels))


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A migrated store on SQLite and on PostgreSQL."""
    s = Store.open(database_url)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    """A migrated store on SQLite only (for tests of pure engine logic)."""
    s = Store.open(sqlite_url)
    yield s
    s.close()
