"""Ingest speed: LLM spans per second into SQLite and PostgreSQL, rollups included.

Beside each, the floor: plain ``executemany`` of the same rows, in batches of the same size,
into the same ``spans`` table with the same indexes, without validation or rollups. The
ratio says how much of the database's raw insert speed the store keeps.

    python bench/ingest.py [--spans 200000] [--batch 2000]

Measured paths:
* ``store``: ``Store.write(spans=batch)`` directly (spans built beforehand). On SQLite the
  floor and the store run alternately ``--rounds`` times and the best of each is kept: the
  machine is shared, and a throughput is best read as what the code can do when not preempted.
* ``sdk``: ``llmpulse.record_llm_call(...)`` then ``llmpulse.flush()`` (end to end through the
  SDK's queue, batcher and store exporter), when the SDK provides it.
The LAST line printed is one JSON object with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import llm_spans  # noqa: E402

from llmpulse.store import Store  # noqa: E402
from llmpulse.store._validate import SPAN_COLUMNS, span_row  # noqa: E402

PG_URL = os.environ.get("LLMPULSE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
INSERT = f"INSERT INTO spans ({', '.join(SPAN_COLUMNS)}) VALUES ({{marks}})"


def _batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def store_rate(url: str, spans: list[Any], batch: int) -> float:
    """Spans/s through Store.write, one transaction per batch."""
    store = Store.open(url)
    try:
        t0 = time.perf_counter()
        for chunk in _batches(spans, batch):
            result = store.write(spans=chunk)
            assert result.rejected == 0, result.reasons
        elapsed = time.perf_counter() - t0
        rows = store.health()["rows"]
        assert rows["spans"] == len(spans), rows
    finally:
        store.close()
    return len(spans) / elapsed


def sqlite_floor(path: str, rows: list[tuple[Any, ...]], batch: int) -> float:
    """Rows/s of raw sqlite3 executemany, same pragmas, table and indexes."""
    import sqlite3

    Store.open(f"sqlite:///{path}").close()  # same schema, made by the migration
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    sql = INSERT.format(marks=", ".join("?" * len(SPAN_COLUMNS)))
    t0 = time.perf_counter()
    for chunk in _batches(rows, batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, chunk)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return len(rows) / elapsed


def postgres_floor(url: str, rows: list[tuple[Any, ...]], batch: int) -> float:
    """Rows/s of raw psycopg executemany into the same table and indexes."""
    import psycopg

    Store.open(url).close()
    sql = INSERT.format(marks=", ".join(["%s"] * len(SPAN_COLUMNS)))
    with psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        for chunk in _batches(rows, batch):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql, chunk)
        elapsed = time.perf_counter() - t0
    return len(rows) / elapsed


def sdk_rate(url: str, n: int) -> tuple[float, int] | None:
    """Spans/s end to end through the SDK's public API (record, queue, batch, Store.write).

    The clock runs from the first ``record_llm_call`` until ``flush()`` returned, i.e. until
    every span is committed. Returns (rate, spans stored) or None without the SDK.
    """
    import llmpulse

    if not all(hasattr(llmpulse, f) for f in ("init", "record_llm_call", "flush", "shutdown")):
        return None
    import logging
    import random

    from _data import ANSWER, MODELS, PROMPT

    logging.getLogger("llmpulse").setLevel(logging.ERROR)  # unpriced model warnings
    rng = random.Random(7)
    calls = [
        (
            MODELS[i % len(MODELS)][:2],
            rng.randint(50, 4000),
            rng.randint(10, 800),
            rng.lognormvariate(6.5, 0.6),
        )
        for i in range(n)
    ]
    client = llmpulse.init(database_url=url, queue_size=n + 1000, instrument=())
    record = llmpulse.record_llm_call
    try:
        t0 = time.perf_counter()
        for (model, provider), inp, out, latency in calls:
            record(
                model,
                input_tokens=inp,
                output_tokens=out,
                latency_ms=latency,
                provider=provider,
                name="chat",
                input=PROMPT,
                output=ANSWER,
            )
        llmpulse.flush(timeout=600)
        elapsed = time.perf_counter() - t0
        stats = client.stats()
    finally:
        llmpulse.shutdown()
    with Store.open(url) as store:
        stored = store.health()["rows"]["spans"]
    if stats.dropped_total or stored != n:
        print(f"  (SDK dropped {stats.dropped_total} {stats.dropped}, stored {stored} of {n})")
    return n / elapsed, stored


@contextmanager
def _pg_url() -> Iterator[str | None]:
    """A PostgreSQL URL on a fresh schema (dropped afterwards), or None (printed why)."""
    try:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'create schema "{schema}"')
    except Exception as exc:  # any failure means: no PostgreSQL here
        print(f"postgresql: skipped ({exc.__class__.__name__}: {str(exc).strip().splitlines()[0]})")
        yield None
        return
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'drop schema if exists "{schema}" cascade')


def _line(label: str, rate: float | None, floor: float | None, unit: str = "spans/s") -> None:
    if rate is None:
        print(f"{label:<36}skipped")
        return
    ratio = f"  ({rate / floor:.0%} of floor)" if floor and unit == "spans/s" else ""
    print(f"{label:<36}{rate:>10,.0f} {unit}{ratio}")


def bench_sqlite(
    spans: list[Any], rows: list[tuple[Any, ...]], batch: int, rounds: int
) -> dict[str, Any]:
    """Floor and Store.write alternately, ``rounds`` times each (best kept), then the SDK once."""
    floor, store = 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            floor = max(floor, sqlite_floor(f"{tmp}/floor{i}.db", rows, batch))
            store = max(store, store_rate(f"sqlite:///{tmp}/store{i}.db", spans, batch))
        sdk = sdk_rate(f"sqlite:///{tmp}/sdk.db", len(spans))
    _line("sqlite   floor (raw executemany)", floor, None, "rows/s")
    _line("sqlite   Store.write + rollups", store, floor)
    _line("sqlite   SDK end to end", sdk[0] if sdk else None, floor)
    return {
        "sqlite_floor_rows_per_s": floor,
        "sqlite_spans_per_s": store,
        "sqlite_ratio_vs_floor": store / floor,
        "sqlite_sdk_spans_per_s": sdk[0] if sdk else None,
    }


def bench_postgres(spans: list[Any], rows: list[tuple[Any, ...]], batch: int) -> dict[str, Any]:
    """Floor, Store.write and the SDK once each, each on a fresh schema."""
    out: dict[str, Any] = dict.fromkeys(
        (
            "postgres_floor_rows_per_s",
            "postgres_spans_per_s",
            "postgres_ratio_vs_floor",
            "postgres_sdk_spans_per_s",
        )
    )
    with _pg_url() as url:
        if url is None:
            return out
        out["postgres_floor_rows_per_s"] = postgres_floor(url, rows, batch)
    with _pg_url() as url:
        out["postgres_spans_per_s"] = store_rate(url, spans, batch)  # type: ignore[arg-type]
    with _pg_url() as url:
        sdk = sdk_rate(url, len(spans))  # type: ignore[arg-type]
        out["postgres_sdk_spans_per_s"] = sdk[0] if sdk else None
    floor = out["postgres_floor_rows_per_s"]
    out["postgres_ratio_vs_floor"] = out["postgres_spans_per_s"] / floor
    _line("postgres floor (raw executemany)", floor, None, "rows/s")
    _line("postgres Store.write + rollups", out["postgres_spans_per_s"], floor)
    _line("postgres SDK end to end", out["postgres_sdk_spans_per_s"], floor)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2, help="SQLite: best of this many runs each")
    args = parser.parse_args()
    now = time.time()
    spans = llm_spans(args.spans, now - 600, now)
    rows = [span_row(s)[0] for s in spans]
    print(
        f"{args.spans:,} llm spans over 10 minutes, batches of {args.batch}; SDK: record_llm_call + flush"
    )
    out: dict[str, Any] = {"spans": args.spans, "batch": args.batch}
    out.update(bench_sqlite(spans, rows, args.batch, args.rounds))
    out.update(bench_postgres(spans, rows, args.batch))
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}))


if __name__ == "__main__":
    main()
