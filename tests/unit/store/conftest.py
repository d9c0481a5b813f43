"""Store test helpers: span factories, and a store emptied or opened at an older revision (the
open ``store`` and ``sqlite_store`` fixtures, one per backend, are in tests/conftest.py)."""

from __future__ import annotations

import itertools
import random
from typing import Any

from llmpulse.schema import BRANCH_ATTRIBUTE, Span
from llmpulse.store import Store

# A fixed hour boundary (2023-11-14 22:00:00 UTC), so window arithmetic in tests is readable.
T0 = 1_700_000_000 // 3600 * 3600

_ids = itertools.count(1)


def make_span(start: float = T0 + 5.0, latency_ms: float = 250.0, **fields: Any) -> Span:
    """An llm span starting at ``start`` lasting ``latency_ms``; any field can be overridden."""
    n = next(_ids)
    values: dict[str, Any] = {
        "trace_id": f"trace{n:010d}",
        "span_id": f"span{n:010d}",
        "name": "chat",
        "kind": "llm",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "input_tokens": 100,
        "output_tokens": 20,
        "cost_usd": 0.001,
    }
    values.update(fields)
    return Span(start_time=start, end_time=start + latency_ms / 1000.0, **values)


def random_spans(n: int, start: float, end: float, seed: int = 3) -> list[Span]:
    """``n`` spans of mixed kinds, models, statuses and latencies over ``[start, end)``."""
    rng = random.Random(seed)
    spans = []
    for _ in range(n):
        kind = rng.choice(["llm", "llm", "tool", "branch"])
        fields: dict[str, Any] = {"kind": kind, "status": "error" if rng.random() < 0.1 else "ok"}
        if kind == "llm":
            fields.update(
                model=rng.choice(["m-a", "m-b", "m-c"]),
                prompt_version=rng.choice(["v1", "v2", None]),
                input_tokens=rng.randint(1, 500),
                output_tokens=rng.randint(1, 100),
                cost_usd=rng.choice([None, rng.random() / 100]),
                ttft_ms=rng.choice([None, rng.random() * 100]),
            )
        else:
            fields.update(
                model=None, provider=None, input_tokens=None, output_tokens=None, cost_usd=None
            )
        if kind == "branch":
            fields.update(name="router", attributes={BRANCH_ATTRIBUTE: rng.choice(["a", "b"])})
        elif kind == "tool":
            fields.update(name=rng.choice(["search", "sql"]))
        spans.append(make_span(rng.uniform(start, end), rng.lognormvariate(5, 1), **fields))
    return spans


def drop_every_table(store: Store) -> None:
    """Drop every table of ``store``'s database (as if the file were replaced by an empty one),
    under the store's own write lock so a server's background writers do not collide with it."""
    import sqlalchemy as sa

    tables = sa.MetaData()
    with store._write_tx() as conn:  # noqa: SLF001 - a test reaching under the API on purpose
        tables.reflect(conn)
        tables.drop_all(conn)


def open_at_revision(url: str, revision: str) -> Store:
    """A store whose schema Alembic brought only as far as ``revision`` (a partial upgrade)."""
    from alembic import command

    from llmpulse.store._migrate import _config

    store = Store.open(url, migrate=False)
    with store._engine.begin() as conn:  # noqa: SLF001 - a test reaching under the API on purpose
        cfg = _config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return store
