"""Per-trace totals (the ``traces`` table), kept with the spans they sum.

Ingest upserts one row per trace of a batch, in the batch's transaction, from the span rows
that were actually inserted (a span already stored adds nothing, so a retried batch counts
once). The upsert is order-free: the first start and last end are a minimum and a maximum, the
counts and sums add up, so spans arriving late or out of order give the totals a single batch
would. Retention deletes a trace's row once all its spans are gone and recomputes the rows of
traces it cut in two.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

from llmpulse.store import _validate as v
from llmpulse.store.models import SpanRow, TraceRow

__all__ = ["TRACE_COLUMNS", "add_spans", "drop_expired"]

TRACE_COLUMNS = (
    "trace_id", "start_time", "end_time", "last_start", "spans", "errors",
    "input_tokens", "output_tokens", "total_tokens", "cost_usd",
)  # fmt: skip
_T = cast(Table, TraceRow.__table__)
_S = cast(Table, SpanRow.__table__)
_AT = {c: v.SPAN_COLUMNS.index(c) for c in (
    "trace_id", "start_time", "end_time", "status", "input_tokens", "output_tokens",
    "total_tokens", "cost_usd",
)}  # fmt: skip


def _totals(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """One row per trace (``TRACE_COLUMNS`` order) summing the span rows of this batch."""
    tid, st, en = _AT["trace_id"], _AT["start_time"], _AT["end_time"]
    status, inp, out, tot, cost = (
        _AT["status"], _AT["input_tokens"], _AT["output_tokens"], _AT["total_tokens"],
        _AT["cost_usd"],
    )  # fmt: skip
    acc: dict[Any, list[Any]] = {}
    for r in rows:
        t = acc.get(r[tid])
        if t is None:
            acc[r[tid]] = [
                r[tid], r[st], r[en], r[st], 1, 1 if r[status] == "error" else 0,
                r[inp] or 0, r[out] or 0, r[tot] or 0, r[cost],
            ]  # fmt: skip
            continue
        t[1] = min(t[1], r[st])
        t[2] = max(t[2], r[en])
        t[3] = max(t[3], r[st])
        t[4] += 1
        t[5] += r[status] == "error"
        t[6] += r[inp] or 0
        t[7] += r[out] or 0
        t[8] += r[tot] or 0
        if r[cost] is not None:
            t[9] = r[cost] if t[9] is None else t[9] + r[cost]
    return list(acc.values())


@cache
def _upsert(dialect_name: str) -> Any:
    ins = (postgresql.insert if dialect_name == "postgresql" else sqlite.insert)(_T)
    old, new = _T.c, ins.excluded
    # least()/greatest() on PostgreSQL; min(a, b) and max(a, b) with two arguments on SQLite.
    pg = dialect_name == "postgresql"
    lowest, highest = (func.least, func.greatest) if pg else (func.min, func.max)
    set_: dict[str, Any] = {
        "start_time": lowest(old.start_time, new.start_time),
        "end_time": highest(old.end_time, new.end_time),
        "last_start": highest(old.last_start, new.last_start),
        **{c: old[c] + new[c] for c in TRACE_COLUMNS[4:9]},
        # A sum of nothing priced stays NULL, as SUM() over the spans would say.
        "cost_usd": case(
            (old.cost_usd.is_(None), new.cost_usd),
            (new.cost_usd.is_(None), old.cost_usd),
            else_=old.cost_usd + new.cost_usd,
        ),
    }
    return ins.on_conflict_do_update(index_elements=["trace_id"], set_=set_)


@cache
def _upsert_sql() -> str:
    """``_upsert`` for SQLite as positional driver SQL, for executemany."""
    stmt = _upsert("sqlite").values({c: bindparam(c) for c in TRACE_COLUMNS})
    compiled = stmt.compile(dialect=SQLiteDialect_pysqlite(paramstyle="qmark"))
    assert list(compiled.positiontup or ()) == list(TRACE_COLUMNS)
    return str(compiled)


# One statement for a whole batch on PostgreSQL: the rows as arrays, unnested, sent in binary
# (%b: text arrays made the upsert cost ~45% of a batch's write; binary ~30%).
_PG_UPSERT = (
    "INSERT INTO traces AS t (" + ", ".join(TRACE_COLUMNS) + ") SELECT * FROM unnest("
    "%b::text[], %b::float8[], %b::float8[], %b::float8[], %b::int8[], %b::int8[],"
    " %b::int8[], %b::int8[], %b::int8[], %b::float8[])"
    " ON CONFLICT (trace_id) DO UPDATE SET"
    " start_time = least(t.start_time, excluded.start_time),"
    " end_time = greatest(t.end_time, excluded.end_time),"
    " last_start = greatest(t.last_start, excluded.last_start),"
    + ",".join(f" {c} = t.{c} + excluded.{c}" for c in TRACE_COLUMNS[4:9])
    + ", cost_usd = CASE WHEN t.cost_usd IS NULL THEN excluded.cost_usd"
    " WHEN excluded.cost_usd IS NULL THEN t.cost_usd ELSE t.cost_usd + excluded.cost_usd END"
)


def add_spans(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Add span rows just inserted (``SPAN_COLUMNS`` order) to their traces' totals.

    Rows are upserted in trace id order, so two batches touching the same traces take their
    row locks in one order (no deadlock between concurrent writers on PostgreSQL).
    """
    totals = sorted(_totals(rows), key=lambda t: t[0])
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_UPSERT, tuple(list(c) for c in zip(*totals, strict=True)))
    else:
        conn.exec_driver_sql(_upsert_sql(), [tuple(t) for t in totals])


def recompute(conn: Connection, trace_ids: Sequence[str]) -> None:
    """Set these traces' rows from their stored spans (deleting those with no span left)."""
    if not trace_ids:
        return
    conn.execute(delete(_T).where(_T.c.trace_id.in_(trace_ids)))
    query = (
        select(
            _S.c.trace_id, func.min(_S.c.start_time), func.max(_S.c.end_time),
            func.max(_S.c.start_time), func.count(),
            func.sum(case((_S.c.status == "error", 1), else_=0)),
            func.coalesce(func.sum(_S.c.input_tokens), 0),
            func.coalesce(func.sum(_S.c.output_tokens), 0),
            func.coalesce(func.sum(_S.c.total_tokens), 0), func.sum(_S.c.cost_usd),
        )
        .where(_S.c.trace_id.in_(trace_ids))
        .group_by(_S.c.trace_id)
    )  # fmt: skip
    rows = [dict(zip(TRACE_COLUMNS, r, strict=True)) for r in conn.execute(query)]
    if rows:
        conn.execute(_T.insert(), rows)


def drop_expired(conn: Connection, cutoff: float, chunk: int) -> tuple[int, bool]:
    """After spans started before ``cutoff`` were deleted: up to ``chunk`` trace rows fixed.

    A trace whose last span started before the cutoff has no span left (its row goes); one
    that started before it but goes on after lost some spans (its row is recomputed). Returns
    the rows touched and whether more remain.
    """
    ids = list(
        conn.execute(select(_T.c.trace_id).where(_T.c.start_time < cutoff).limit(chunk)).scalars()
    )
    gone = conn.execute(delete(_T).where(_T.c.trace_id.in_(ids), _T.c.last_start < cutoff)).rowcount
    cut = [t for t in conn.execute(select(_T.c.trace_id).where(_T.c.trace_id.in_(ids))).scalars()]
    recompute(conn, cut)
    return gone + len(cut), len(ids) == chunk
