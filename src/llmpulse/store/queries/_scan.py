"""Read the rollup rows of a window as numpy arrays.

The statement is plain text built from integers the store computed (window bounds, step, key
ids; never user input): one range scan of the primary key per segment, glued with UNION ALL
(an OR of ranges would make SQLite collect keys and look every row up twice). It runs on the
driver's cursor and the rows are transposed into arrays in C, so the cost per rollup row is
the database's and numpy's, not a Python loop's.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from llmpulse.store._rollup import SUM_COLUMNS
from llmpulse.store.queries.window import Segment

if TYPE_CHECKING:
    import numpy as np
else:  # imported on first use: ingest never needs it (_lazy_numpy.py)
    from llmpulse.store._lazy_numpy import np

__all__ = ["Scan", "counts", "scan"]

_UNION_LIMIT = 64  # SQLite allows 500 compound SELECT terms; past this, one scan with OR
_N_SUMS = len(SUM_COLUMNS)


class Scan:
    """Rollup rows as arrays: ``buckets``, ``key_ids``, ``sums`` (rows x SUM_COLUMNS), and the
    histogram entries ``entry_row`` (which row), ``entry_bin`` and ``entry_count``."""

    __slots__ = ("buckets", "entry_bin", "entry_count", "entry_row", "key_ids", "sums")

    def __init__(self, rows: Sequence[tuple[Any, ...]], binary: bool) -> None:
        n = len(rows)
        cols = list(zip(*rows, strict=True)) if rows else [()] * (_N_SUMS + 4)
        self.buckets = np.array(cols[0], dtype=np.int64)
        self.key_ids = np.array(cols[1], dtype=np.int64)
        self.sums = np.array(cols[2 : 2 + _N_SUMS], dtype=np.float64).reshape(_N_SUMS, n).T
        los = np.array(cols[-2], dtype=np.int64)
        hists = cols[-1]
        if binary:  # SQLite: little-endian int64 bytes
            lengths = np.fromiter(map(len, hists), dtype=np.int64, count=n) // 8
            counts = np.frombuffer(b"".join(hists), dtype="<i8")
        else:  # PostgreSQL: bigint[] as lists
            lengths = np.fromiter(map(len, hists), dtype=np.int64, count=n)
            counts = np.fromiter(itertools.chain.from_iterable(hists), dtype=np.int64)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        self.entry_row = np.repeat(np.arange(n), lengths)
        self.entry_bin = np.repeat(los, lengths) + (np.arange(len(counts)) - starts)
        self.entry_count = counts.astype(np.float64)


def _window_sql(
    segments: Sequence[Segment], step: int | None, key_ids: Sequence[int] | None, columns: str
) -> str:
    bucket = f"bucket_start / {int(step)} * {int(step)}" if step else "0"
    keys = (
        f" AND key_id IN ({', '.join(str(int(k)) for k in key_ids)})" if key_ids is not None else ""
    )
    ranges = [
        f"resolution = {int(r)} AND bucket_start >= {int(a)} AND bucket_start < {int(b)}"
        for r, a, b in segments
    ]
    select = f"SELECT {bucket}, key_id, {columns} FROM rollups WHERE"
    if len(ranges) > _UNION_LIMIT:
        return f"{select} ({' OR '.join(f'({x})' for x in ranges)}){keys}"
    return " UNION ALL ".join(f"{select} {x}{keys}" for x in ranges)


def _run(conn: Connection, sql: str) -> Sequence[tuple[Any, ...]]:
    """Plain driver tuples: no SQLAlchemy Row per result row."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()


def scan(
    conn: Connection, segments: Sequence[Segment], step: int | None, key_ids: Sequence[int] | None
) -> Scan:
    """Series bucket, key, sums and histogram of every rollup row in ``segments``."""
    if not segments or (key_ids is not None and not key_ids):
        rows: Sequence[tuple[Any, ...]] = []
    else:
        rows = _run(
            conn, _window_sql(segments, step, key_ids, f"{', '.join(SUM_COLUMNS)}, hist_lo, hist")
        )
    return Scan(rows, binary=conn.dialect.name != "postgresql")


def counts(
    conn: Connection, segments: Sequence[Segment], step: int | None, key_ids: Sequence[int]
) -> list[tuple[int, int, int]]:
    """``(series bucket, key_id, span count)`` of every rollup row in ``segments``."""
    if not segments or not key_ids:
        return []
    return [
        (int(b), int(k), int(c))
        for b, k, c in _run(conn, _window_sql(segments, step, key_ids, "count"))
    ]
