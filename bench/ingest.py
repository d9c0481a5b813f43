"""Ingest speed: LLM spans per second from the SDK into SQLite and PostgreSQL, rollups included.

    python bench/ingest.py [--spans 200000] [--batch 2000] [--rounds 2]

Three paths, all on the same rows, in batches of the same size:

* ``sdk`` (the headline number): ``llmpulse.init(database_url=...)``, then
  ``llmpulse.record_llm_call(...)`` N times with realistic fields (model, provider, name,
  prompt_version, tokens, latency, ttft, session, prompt and answer text, two attributes, 2 %
  errors), then ``llmpulse.flush()``. The clock runs from the first record until ``flush``
  returned, i.e. until every span and its rollups are committed. The schema is migrated before
  the clock starts (as in any deployment that already ran once); connecting is timed.
* ``floor``: plain driver ``executemany`` of the rows the SDK run stored (read back from its
  database: same ids, same text, same JSON) into a fresh copy of the same table with the same
  indexes, one transaction per batch, without validation or rollups.
* ``store``: ``Store.write(spans=batch)`` of ``Span`` objects made from those rows.

On SQLite the three run alternately ``--rounds`` times and the best of each is kept: the machine
is shared, and a throughput is best read as what the code can do when not preempted. The LAST
line printed is one JSON object; ``*_spans_per_s`` are the SDK end-to-end rates.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import ANSWER, LLM_NAMES, MODELS, PROMPT, PROMPT_VERSIONS  # noqa: E402

import llmpulse  # noqa: E402
from llmpulse._rows import SPAN_COLUMNS  # noqa: E402
from llmpulse.schema import Span  # noqa: E402
from llmpulse.store import Store  # noqa: E402

PG_URL = os.environ.get("LLMPULSE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
INSERT = f"INSERT INTO spans ({', '.join(SPAN_COLUMNS)}) VALUES ({{marks}})"
Row = tuple[Any, ...]


POOL = 1009  # distinct values per field, cycled (a prime, so fields do not repeat together)
OK: dict[str, Any] = {}
FAILED = {"status": "error", "error_type": "RateLimitError"}


class LlmCalls:
    """``n`` llm calls as an application makes them: values drawn from small pools, so the
    benchmark's own data does not fill the heap (which would make garbage collection, and so
    the SDK, look slower than in an application)."""

    def __init__(self, n: int, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.n = n
        self.tokens = [(rng.randint(50, 4000), rng.randint(10, 800)) for _ in range(POOL)]
        self.latency = [rng.lognormvariate(6.5, 0.6) for _ in range(POOL)]
        self.sessions = [f"s{rng.randrange(1000)}" for _ in range(POOL)]

    def record_all(self) -> None:
        """``llmpulse.record_llm_call`` n times: model, provider, name, prompt version, tokens,
        latency, ttft, session, prompt and answer text, two attributes; 2 % are errors."""
        record, models = llmpulse.record_llm_call, [m[:2] for m in MODELS]
        tokens, latency, sessions = self.tokens, self.latency, self.sessions
        for i in range(self.n):
            model, provider = models[i % len(models)]
            inp, out = tokens[i % POOL]
            ms = latency[i % POOL]
            record(
                model, input_tokens=inp, output_tokens=out, latency_ms=ms, provider=provider,
                name=LLM_NAMES[i % len(LLM_NAMES)], prompt_version=PROMPT_VERSIONS[i % 2],
                ttft_ms=ms * 0.25, session_id=sessions[i % POOL], input=PROMPT, output=ANSWER,
                attributes={"gen_ai.request.temperature": 0.2, "gen_ai.request.max_tokens": 1024},
                **(FAILED if i % 50 == 7 else OK),
            )  # fmt: skip


def sdk_rate(url: str, calls: LlmCalls, batch: int) -> tuple[float, float]:
    """(spans/s end to end, record calls/s on the application thread) through the public API."""
    Store.open(url).close()  # migrate first: a deployment that already ran once
    client = llmpulse.init(database_url=url, queue_size=calls.n + 1000, batch_size=batch,
                           instrument=())  # fmt: skip
    try:
        t0 = time.perf_counter()
        calls.record_all()
        t1 = time.perf_counter()
        flushed = llmpulse.flush(timeout=600)
        elapsed = time.perf_counter() - t0
        stats = client.stats()
    finally:
        llmpulse.shutdown()
    with Store.open(url) as store:
        stored = store.health()["rows"]["spans"]
    if not flushed or stats.dropped_total or stored != calls.n:
        raise SystemExit(f"SDK lost spans: dropped {stats.dropped}, stored {stored} of {calls.n}")
    return calls.n / elapsed, calls.n / (t1 - t0)


def stored_rows(url: str) -> list[Row]:
    """The ``SPAN_COLUMNS`` rows a run stored, in insert order, JSON columns as text."""
    cols = ", ".join(f"{c}::text" if c in ("attributes", "events") else c for c in SPAN_COLUMNS)
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split("///", 1)[1])
        try:
            return conn.execute(
                f"SELECT {', '.join(SPAN_COLUMNS)} FROM spans ORDER BY id"
            ).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT {cols} FROM spans ORDER BY id").fetchall()  # type: ignore[no-any-return]


def spans_of(rows: list[Row]) -> list[Span]:
    """``Span`` records equal to stored rows (``latency_ms`` is derived, so left out)."""
    spans = []
    for row in rows:
        doc = dict(zip(SPAN_COLUMNS, row, strict=True))
        del doc["latency_ms"]
        doc["attributes"], doc["events"] = json.loads(doc["attributes"]), []
        spans.append(Span(**doc))
    return spans


def _batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def store_rate(url: str, spans: list[Span], batch: int) -> float:
    """Spans/s through Store.write, one transaction per batch."""
    store = Store.open(url)
    try:
        t0 = time.perf_counter()
        for chunk in _batches(spans, batch):
            result = store.write(spans=chunk)
            assert result.rejected == 0, result.reasons
        elapsed = time.perf_counter() - t0
        assert store.health()["rows"]["spans"] == len(spans)
    finally:
        store.close()
    return len(spans) / elapsed


def sqlite_floor(path: str, rows: list[Row], batch: int) -> float:
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


def postgres_floor(url: str, rows: list[Row], batch: int) -> float:
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
        print(f"{label:<38}skipped")
        return
    ratio = f"  ({rate / floor:.0%} of floor)" if floor and unit == "spans/s" else ""
    print(f"{label:<38}{rate:>10,.0f} {unit}{ratio}")


def _report(db: str, sdk: float, record: float, floor: float, store: float) -> dict[str, float]:
    _line(f"{db:<8} floor (raw executemany)", floor, None, "rows/s")
    _line(f"{db:<8} SDK end to end", sdk, floor)
    _line(f"{db:<8}   of which record_llm_call", record, None, "calls/s")
    _line(f"{db:<8} Store.write + rollups", store, floor)
    return {
        f"{db}_spans_per_s": sdk,
        f"{db}_floor_rows_per_s": floor,
        f"{db}_ratio_vs_floor": sdk / floor,
        f"{db}_record_calls_per_s": record,
        f"{db}_store_write_spans_per_s": store,
    }


def bench_sqlite(calls: LlmCalls, batch: int, rounds: int) -> dict[str, Any]:
    """SDK, floor and Store.write alternately, ``rounds`` times each (best of each kept)."""
    sdk = record = floor = store = 0.0
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            url = f"sqlite:///{tmp}/sdk{i}.db"
            rate, calls_per_s = sdk_rate(url, calls, batch)
            if rate > sdk:
                sdk, record = rate, calls_per_s
            rows = rows or stored_rows(url)
            floor = max(floor, sqlite_floor(f"{tmp}/floor{i}.db", rows, batch))
            store = max(store, store_rate(f"sqlite:///{tmp}/store{i}.db", spans_of(rows), batch))
            for name in (f"sdk{i}.db", f"floor{i}.db", f"store{i}.db"):  # keep the disk small
                for suffix in ("", "-wal", "-shm"):
                    Path(tmp, name + suffix).unlink(missing_ok=True)
    return _report("sqlite", sdk, record, floor, store)


def bench_postgres(calls: LlmCalls, batch: int) -> dict[str, Any]:
    """SDK, floor and Store.write once each, each on a fresh schema."""
    with _pg_url() as url:
        if url is None:
            return dict.fromkeys(("postgres_spans_per_s", "postgres_floor_rows_per_s"))
        sdk, record = sdk_rate(url, calls, batch)
        rows = stored_rows(url)
    with _pg_url() as url:
        floor = postgres_floor(url, rows, batch)  # type: ignore[arg-type]
    with _pg_url() as url:
        store = store_rate(url, spans_of(rows), batch)  # type: ignore[arg-type]
    return _report("postgres", sdk, record, floor, store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2, help="SQLite: best of this many runs each")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    logging.getLogger("llmpulse").setLevel(logging.ERROR)  # the unpriced model's warning
    calls = LlmCalls(args.spans)
    print(f"{args.spans:,} llm calls, batches of {args.batch}; SDK: record_llm_call + flush")
    out: dict[str, Any] = {"spans": args.spans, "batch": args.batch}
    out.update(bench_sqlite(calls, args.batch, args.rounds))
    if not args.no_postgres:
        out.update(bench_postgres(calls, args.batch))
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}))


if __name__ == "__main__":
    main()
