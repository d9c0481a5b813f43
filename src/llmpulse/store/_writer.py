"""One batch, one transaction: raw rows, then rollups of the rows that were stored.

The hot path is plain driver calls: multi-row ``INSERT`` statements on SQLite, ``COPY`` on
PostgreSQL. Each bulk insert runs inside a savepoint; if the database still refuses it (a row
the Python checks could not foresee, such as a span id that is already stored), the batch falls
back to one savepoint per row, so the poison rows are counted and skipped and the rest commit.
Rollups and per-trace totals (store/_traces.py) are computed from the rows actually stored, so
they always equal the raw data.

Span inserts are idempotent: a span whose ``span_id`` is already stored counts as stored
(``WriteResult.duplicates``), not as rejected, and adds nothing to the rollups. That is what
makes retrying a batch safe when its COMMIT succeeded but the answer was lost. The fast path
stays a plain insert; only a batch the database refuses is inserted again with
``ON CONFLICT (span_id) DO NOTHING RETURNING span_id``, which tells stored from new.

Metric points are idempotent the same way by their ``point_id`` (the SDK gives each point
one; a point without one is stored every time it is written): a point already stored counts
as stored (``WriteResult.point_duplicates``), and only a bulk insert the database refuses goes
again with ``ON CONFLICT (point_id) DO NOTHING``.
"""

from __future__ import annotations

import logging
import math
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import chain
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, column, func, select, table, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from llmpulse.errors import RecordRejectedError
from llmpulse.schema import MetricPoint, Run, Span
from llmpulse.store import _validate as v
from llmpulse.store._migrate import names_a_missing_object
from llmpulse.store._rollup import ROLLUP_COLUMNS, SUM_COLUMNS, Key, Rollups, aggregate
from llmpulse.store._traces import add_spans as add_trace_spans
from llmpulse.store.models import RollupKeyRow, RollupRow

__all__ = ["RollupKeyRace", "WriteResult", "write_batch"]

log = logging.getLogger(__name__)

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one ``Store.write`` did: records stored, records rejected, and why (reason -> count)."""

    stored: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    spans: int = 0  # span rows inserted by this write
    points: int = 0
    runs: int = 0
    duplicates: int = (
        0  # spans already stored (by span_id): counted in ``stored``, not in ``spans``
    )
    point_duplicates: int = 0  # points already stored (by point_id): in ``stored``, not ``points``
    # Spans this write did not insert (refused, or already stored), as indexes into ``spans``
    # followed by ``span_rows`` of the write; empty on the common path, where all were new.
    skipped_spans: tuple[int, ...] = ()
    # Those of ``skipped_spans`` that were already stored (``duplicates``): a retry of a write
    # whose COMMIT succeeded but whose answer was lost finds its spans here.
    stored_before: tuple[int, ...] = ()


def write_batch(
    conn: Connection,
    spans: Sequence[Span],
    points: Sequence[MetricPoint],
    runs: Sequence[Run],
    known_keys: Mapping[Key, int],
    rows: Sequence[tuple[Row, Key]] = (),
    all_or_nothing: bool = False,
) -> tuple[WriteResult, dict[Key, int]]:
    """Write everything inside the caller's transaction.

    ``rows`` are spans already in row form with their rollup keys (see ``Store.write``).
    Returns the counts and the rollup keys this transaction created (``known_keys`` is the
    caller's cache of key ids; it may add the new ones once the transaction committed).
    ``all_or_nothing`` raises ``RecordRejectedError`` for the first record that fails the
    checks, before anything is inserted, instead of skipping it.
    """
    reasons: Counter[str] = Counter()
    refused: list[int] = []
    span_rows, keys = _checked_spans(spans, reasons, refused, all_or_nothing)
    if rows:
        span_rows += [r[0] for r in rows]
        keys += [r[1] for r in rows]
    kept, before = _insert_spans(conn, span_rows, reasons)
    duplicates = len(before)
    skipped: tuple[int, ...] = ()
    stored_before: tuple[int, ...] = ()
    if refused or len(kept) < len(span_rows):  # the rare path: say which spans were not stored
        skipped = _skipped(len(spans), refused, kept, len(span_rows))
        if before:
            stored_before = _origins(len(spans), refused, before, len(span_rows))
    new_keys: dict[Key, int] = {}
    if kept:
        if len(kept) < len(span_rows):
            span_rows, keys = [span_rows[i] for i in kept], [keys[i] for i in kept]
        new_keys = _upsert_rollups(conn, aggregate(span_rows, keys), known_keys)
        add_trace_spans(conn, span_rows)
    point_rows = _checked(points, v.point_row, reasons, "metric_points" if all_or_nothing else "")
    n_points, point_duplicates = _insert_points(conn, point_rows, reasons)
    # A run sent twice in one batch: its last state wins.
    checked_runs = _checked(runs, v.run_row, reasons, "runs" if all_or_nothing else "")
    run_rows = list({r[0]: r for r in checked_runs}.values())
    kept_runs = _insert(conn, run_rows, _upsert_runs, _upsert_runs, reasons)
    n_spans, n_runs = len(kept), len(kept_runs)
    result = WriteResult(
        stored=n_spans + duplicates + n_points + point_duplicates + n_runs,
        rejected=sum(reasons.values()),
        reasons=dict(reasons),
        spans=n_spans,
        points=n_points,
        runs=n_runs,
        duplicates=duplicates,
        point_duplicates=point_duplicates,
        skipped_spans=skipped,
        stored_before=stored_before,
    )
    return result, new_keys


def _skipped(n_spans: int, refused: list[int], kept: Sequence[int], n_rows: int) -> tuple[int, ...]:
    """Indexes (into ``spans`` then the ready rows) of the spans a batch did not store.

    ``n_rows`` rows were offered to the insert: the spans not ``refused`` by the checks, in
    order, then the ready rows; ``kept`` are the positions among them that were stored.
    """
    stored = set(_origins(n_spans, refused, kept, n_rows))
    n_ready = n_rows - (n_spans - len(refused))
    return tuple(i for i in range(n_spans + n_ready) if i not in stored)


def _origins(
    n_spans: int, refused: list[int], positions: Sequence[int], n_rows: int
) -> tuple[int, ...]:
    """``positions`` among the rows offered to the insert, as indexes into ``spans`` then the
    ready rows (see ``_skipped``)."""
    out = set(refused)
    origin = [i for i in range(n_spans) if i not in out]
    origin.extend(range(n_spans, n_spans + n_rows - len(origin)))
    return tuple(origin[k] for k in positions)


def _checked_spans(
    spans: Sequence[Span], reasons: Counter[str], refused: list[int], all_or_nothing: bool = False
) -> tuple[list[Row], list[Key]]:
    rows: list[Row] = []
    keys: list[Key] = []
    span_row = v.span_row
    for i, span in enumerate(spans):
        try:
            row, key = span_row(span)
        except v.Rejected as exc:
            if all_or_nothing:
                raise RecordRejectedError(f"spans[{i}]", str(exc)) from None
            reasons[exc.reason] += 1
            refused.append(i)
            continue
        rows.append(row)
        keys.append(key)
    return rows, keys


def _checked(
    records: Sequence[Any], to_row: Callable[[Any], Row], reasons: Counter[str], strict: str = ""
) -> list[Row]:
    """Rows of the records that pass; with ``strict`` (the records' name) the first that does
    not raises ``RecordRejectedError``."""
    rows: list[Row] = []
    for i, record in enumerate(records):
        try:
            rows.append(to_row(record))
        except v.Rejected as exc:
            if strict:
                raise RecordRejectedError(f"{strict}[{i}]", str(exc)) from None
            reasons[exc.reason] += 1
    return rows


InsertFn = Callable[[Connection, Sequence[Row]], None]


def _insert(
    conn: Connection, rows: list[Row], bulk: InsertFn, single: InsertFn, reasons: Counter[str]
) -> list[int]:
    """Insert ``rows`` in bulk; on failure, row by row. Returns the indexes stored."""
    if not rows:
        return []
    try:
        with conn.begin_nested():
            bulk(conn, rows)
        return list(range(len(rows)))
    except (DBAPIError, UnicodeError) as exc:
        if _is_transient(exc):
            raise
        log.warning("Bulk insert refused (%s); storing this batch row by row", _reason(exc))
    kept: list[int] = []
    for i, row in enumerate(rows):
        try:
            with conn.begin_nested():
                single(conn, [row])
            kept.append(i)
        except (DBAPIError, UnicodeError) as exc:
            if _is_transient(exc):
                raise
            reasons[_reason(exc)] += 1
    return kept


def _insert_spans(
    conn: Connection, rows: list[Row], reasons: Counter[str]
) -> tuple[list[int], list[int]]:
    """Insert span rows; returns the indexes inserted and the indexes already stored.

    Bulk first (the common case, no conflict handling). If the database refuses the bulk
    insert, the rows go again with ON CONFLICT DO NOTHING RETURNING span_id, in chunks, then
    one by one if a chunk still fails (a poison row that is not a duplicate).
    """
    if not rows:
        return [], []
    try:
        with conn.begin_nested():
            _bulk_spans(conn, rows)
        return list(range(len(rows))), []
    except (DBAPIError, UnicodeError) as exc:
        if _is_transient(exc):
            raise
        log.info("Bulk span insert refused (%s); inserting it idempotently", _reason(exc))
    kept: list[int] = []
    before: list[int] = []
    seen: set[Any] = set()  # span ids inserted by this batch
    for start in range(0, len(rows), _IDEMPOTENT_CHUNK):
        chunk = range(start, min(start + _IDEMPOTENT_CHUNK, len(rows)))
        new, tried = _insert_chunk(conn, rows, chunk, reasons)
        for i in tried:
            span_id = rows[i][_SPAN_ID]
            if span_id in new and span_id not in seen:
                seen.add(span_id)
                kept.append(i)
            elif span_id in seen:
                reasons["duplicate span_id in batch"] += 1
            else:
                before.append(i)  # stored before: by an earlier attempt of this very batch
    return kept, before


def _insert_chunk(
    conn: Connection, rows: list[Row], chunk: range, reasons: Counter[str]
) -> tuple[set[Any], list[int]]:
    """Insert ``rows[chunk]`` idempotently, in one statement or else row by row.

    Returns the span ids inserted and the indexes that were not refused (inserted or already
    stored); a refused row is counted in ``reasons``.
    """
    try:
        with conn.begin_nested():
            return _insert_new_spans(conn, [rows[i] for i in chunk]), list(chunk)
    except (DBAPIError, UnicodeError) as exc:
        if _is_transient(exc):
            raise
    new: set[Any] = set()
    tried: list[int] = []
    for i in chunk:
        try:
            with conn.begin_nested():
                new |= _insert_new_spans(conn, [rows[i]])
            tried.append(i)
        except (DBAPIError, UnicodeError) as exc:
            if _is_transient(exc):
                raise
            reasons[_reason(exc)] += 1
    return new, tried


_IDEMPOTENT_CHUNK = 500  # rows per statement (29 values each, within SQLite's variable limit)
_SPAN_ID = v.SPAN_COLUMNS.index("span_id")
# Untyped columns: the row values are already what the database stores.
_SPANS = table("spans", *(column(c) for c in v.SPAN_COLUMNS))


def _insert_new_spans(conn: Connection, rows: Sequence[Row]) -> set[Any]:
    """Insert the spans not yet stored; returns the span ids inserted."""
    stmt = (
        _dialect_insert(conn)(_SPANS)
        .values([dict(zip(v.SPAN_COLUMNS, row, strict=True)) for row in rows])
        .on_conflict_do_nothing(index_elements=["span_id"])
    )
    if conn.dialect.insert_returning:
        return {r[0] for r in conn.execute(stmt.returning(_SPANS.c.span_id))}
    # SQLite before 3.35: no RETURNING; the span ids stored before are looked up first.
    ids = [row[_SPAN_ID] for row in rows]
    before = set(conn.execute(select(_SPANS.c.span_id).where(_SPANS.c.span_id.in_(ids))).scalars())
    conn.execute(stmt)
    return set(ids) - before


def _insert_points(conn: Connection, rows: list[Row], reasons: Counter[str]) -> tuple[int, int]:
    """Insert metric point rows; returns how many were inserted and how many already stored.

    Bulk first (the common case: no conflict handling). If the database refuses it, the rows
    go again with ON CONFLICT (point_id) DO NOTHING, in chunks, then one by one if a chunk still
    fails (a poison row, counted in ``reasons``). Rows without a point_id never conflict.
    """
    if not rows:
        return 0, 0
    try:
        with conn.begin_nested():
            _bulk_points(conn, rows)
        return len(rows), 0
    except (DBAPIError, UnicodeError) as exc:
        if _is_transient(exc):
            raise
        log.info("Bulk point insert refused (%s); inserting it idempotently", _reason(exc))
    inserted = tried = 0
    for start in range(0, len(rows), _IDEMPOTENT_CHUNK):
        chunk = rows[start : start + _IDEMPOTENT_CHUNK]
        try:
            with conn.begin_nested():
                inserted += _insert_new_points(conn, chunk)
            tried += len(chunk)
            continue
        except (DBAPIError, UnicodeError) as exc:
            if _is_transient(exc):
                raise
        for row in chunk:
            try:
                with conn.begin_nested():
                    inserted += _insert_new_points(conn, [row])
                tried += 1
            except (DBAPIError, UnicodeError) as exc:
                if _is_transient(exc):
                    raise
                reasons[_reason(exc)] += 1
    return inserted, tried - inserted  # the rest of those not refused: stored before


_POINTS = table("metric_points", *(column(c) for c in v.POINT_COLUMNS))


def _insert_new_points(conn: Connection, rows: Sequence[Row]) -> int:
    """Insert the points whose point_id is not stored yet; returns how many were inserted."""
    stmt = (
        _dialect_insert(conn)(_POINTS)
        .values([dict(zip(v.POINT_COLUMNS, row, strict=True)) for row in rows])
        .on_conflict_do_nothing(index_elements=["point_id"])
    )
    if conn.dialect.insert_returning:  # rowcount is not reliable on every driver (pipelines)
        return len(conn.execute(stmt.returning(_POINTS.c.name)).all())
    return int(conn.execute(stmt).rowcount)  # SQLite before 3.35: changes() of the statement


def _is_transient(exc: BaseException) -> bool:
    """Errors that concern the connection, locking or the schema, not a row: the batch fails
    (retried, or reported as a whole) instead of each row being counted as refused."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if names_a_missing_object(exc):  # no llmpulse tables, or an older schema (PostgreSQL)
        return True
    return isinstance(exc, OperationalError) and not isinstance(exc, IntegrityError)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, IntegrityError) and "span_id" in str(exc.orig):
        return "duplicate span_id"
    if isinstance(exc, IntegrityError):
        return "constraint violated"
    if isinstance(exc, UnicodeError):
        return "invalid text encoding"
    return f"refused by database ({type(getattr(exc, 'orig', exc)).__name__})"


def _placeholders(conn: Connection, n: int) -> str:
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return ", ".join([mark] * n)


def _bulk(table: str, columns: Sequence[str]) -> InsertFn:
    def insert(conn: Connection, rows: Sequence[Row]) -> None:
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_placeholders(conn, len(columns))})"
        conn.exec_driver_sql(sql, list(rows))

    return insert


class _MultiRowInsert:
    """Bulk INSERT on SQLite with many rows per statement (``VALUES (...), (...), ...``).

    ``executemany`` steps the statement once per row, and the sqlite3 module releases and takes
    back the GIL around every step: with any other Python thread running (the application
    recording spans) each row then waits for the GIL, and the insert rate falls several-fold.
    One statement per chunk of rows steps once per chunk. Chunks are powers of two (at most
    ``MAX_ROWS``, and within SQLite's limit on bound variables), so a connection prepares at
    most a dozen distinct statements and its statement cache keeps them.

    ``None`` is bound as NaN, which SQLite stores as NULL: the sqlite3 module sends every
    ``None`` through its adapter lookup (a registry probe and two attribute lookups), which
    made binding a span's eight-odd NULLs cost more than all its other values together. No row
    holds a real NaN (``_validate`` refuses non-finite numbers), so NaN here only ever means NULL.
    """

    MAX_ROWS = 512

    def __init__(self, table: str, columns: Sequence[str]) -> None:
        self._head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        self._row = f"({', '.join('?' * len(columns))})"
        self._width = len(columns)
        self._sql: dict[int, str] = {}

    def __call__(self, conn: Connection, rows: Sequence[Row]) -> None:
        import sqlite3

        dbapi_conn: Any = conn.connection.dbapi_connection
        most = max(1, min(self.MAX_ROWS, _sqlite_max_variables(dbapi_conn) // self._width))
        most = 1 << (most.bit_length() - 1)  # a power of two
        cur = dbapi_conn.cursor()
        sql = ""
        try:
            i, n = 0, len(rows)
            while i < n:
                k = min(most, 1 << ((n - i).bit_length() - 1))
                sql = self._statement(k)
                flat = list(chain.from_iterable(rows[i : i + k]))
                cur.execute(sql, list(map(_NULL_AS_NAN, flat, flat)))
                i += k
        except sqlite3.Error as exc:
            # As SQLAlchemy would have wrapped it (IntegrityError, OperationalError, ...).
            raise DBAPIError.instance(sql[:200], None, exc, sqlite3.Error) from exc
        finally:
            cur.close()

    def _statement(self, k: int) -> str:
        sql = self._sql.get(k)
        if sql is None:
            sql = self._sql[k] = self._head + ", ".join([self._row] * k)
        return sql


# flat -> flat with None replaced by NaN, in C: ``map(_NULL_AS_NAN, flat, flat)``.
_NULL_AS_NAN = {None: math.nan}.get


def _sqlite_max_variables(dbapi_conn: Any) -> int:
    """How many ``?`` one statement may bind (999 before SQLite 3.32, 32766 after, or as built)."""
    import sqlite3

    getlimit = getattr(dbapi_conn, "getlimit", None)
    if sys.version_info >= (3, 11) and getlimit is not None:
        return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    return 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


_SPAN_INSERT = _bulk("spans", v.SPAN_COLUMNS)
_POINT_INSERT = _bulk("metric_points", v.POINT_COLUMNS)
_SQLITE_SPANS = _MultiRowInsert("spans", v.SPAN_COLUMNS)
_SQLITE_POINTS = _MultiRowInsert("metric_points", v.POINT_COLUMNS)
_COPY_SPANS = f"COPY spans ({', '.join(v.SPAN_COLUMNS)}) FROM STDIN"


def _bulk_points(conn: Connection, rows: Sequence[Row]) -> None:
    if conn.dialect.name == "sqlite":
        _SQLITE_POINTS(conn, rows)
    else:
        _POINT_INSERT(conn, rows)


def _bulk_spans(conn: Connection, rows: Sequence[Row]) -> None:
    if conn.dialect.name == "sqlite":
        _SQLITE_SPANS(conn, rows)
        return
    if conn.dialect.name != "postgresql":
        _SPAN_INSERT(conn, rows)
        return
    # COPY is several times faster than INSERT on PostgreSQL; same transaction as the rest.
    import psycopg

    dbapi_conn: Any = conn.connection.dbapi_connection
    try:
        with dbapi_conn.cursor() as cur, cur.copy(_COPY_SPANS) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as exc:
        # Raw driver errors, as SQLAlchemy would have wrapped them (IntegrityError, ...).
        raise DBAPIError.instance(_COPY_SPANS, None, exc, psycopg.Error) from exc


def _dialect_insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


@cache
def _rollup_upsert(dialect_name: str) -> Any:
    """Additive upsert of rollup rows: sums add up, histograms merge with llmpulse_hist_add."""
    table = cast(Table, RollupRow.__table__)
    ins = (postgresql.insert if dialect_name == "postgresql" else sqlite.insert)(table)
    old, new = table.c, ins.excluded
    # The smaller of two values: least() on PostgreSQL; min(a, b) with two arguments on SQLite.
    lowest = func.least if dialect_name == "postgresql" else func.min
    set_: dict[str, Any] = {c: old[c] + new[c] for c in SUM_COLUMNS}
    set_["hist"] = func.llmpulse_hist_add(
        old.hist_lo, old.hist, new.hist_lo, new.hist, type_=table.c.hist.type
    )
    set_["hist_lo"] = lowest(old.hist_lo, new.hist_lo)
    return ins.on_conflict_do_update(
        index_elements=["resolution", "bucket_start", "key_id"], set_=set_
    )


@cache
def _rollup_upsert_sql(dialect_name: str) -> str:
    """``_rollup_upsert`` as positional driver SQL (``ROLLUP_COLUMNS`` order), for executemany."""
    stmt = _rollup_upsert(dialect_name).values({c: bindparam(c) for c in ROLLUP_COLUMNS})
    compiled = stmt.compile(dialect=SQLiteDialect_pysqlite(paramstyle="qmark"))
    assert list(compiled.positiontup or ()) == list(ROLLUP_COLUMNS)
    return str(compiled)


def _upsert_rollups(conn: Connection, rollups: Rollups, known: Mapping[Key, int]) -> dict[Key, int]:
    ids, new = _key_ids(conn, rollups.keys, known)
    if conn.dialect.name == "postgresql":
        rows = [dict(zip(ROLLUP_COLUMNS, r, strict=True)) for r in rollups.rows(ids, binary=False)]
        conn.execute(_rollup_upsert("postgresql"), rows)
    else:  # plain tuples to the driver: no per-row parameter processing
        conn.exec_driver_sql(_rollup_upsert_sql("sqlite"), rollups.rows(ids, binary=True))
    return new


_K = cast(Table, RollupKeyRow.__table__)
_KEY_PARTS = ("kind", "name", "model", "provider", "prompt_version", "branch")


class RollupKeyRace(Exception):
    """A rollup key's id could not be read back in this transaction; retrying the batch fixes it."""


def _key_ids(
    conn: Connection, keys: set[Key], known: Mapping[Key, int]
) -> tuple[dict[Key, int], dict[Key, int]]:
    """Ids of ``keys`` (from ``known``, else the table, else inserted); and those not in ``known``.

    Several processes may meet the same new key at the same moment. One statement both creates
    what is absent and returns every id (``INSERT .. ON CONFLICT DO UPDATE .. RETURNING``):
    the conflicting row is locked and returned even when another transaction committed it
    after this one's snapshot, so nothing depends on a later SELECT seeing that commit. The
    keys go in sorted order, so concurrent writers lock them in one order (no deadlock).
    """
    ids = {k: known[k] for k in keys if k in known}
    missing = sorted(keys - ids.keys())
    if not missing:
        return ids, {}
    values = [dict(zip(_KEY_PARTS, k, strict=True)) for k in missing]
    parts = [_K.c[c] for c in _KEY_PARTS]
    if conn.dialect.insert_returning:
        ins = _dialect_insert(conn)(_K).values(values)
        found = conn.execute(
            ins.on_conflict_do_update(
                index_elements=list(_KEY_PARTS), set_={"kind": ins.excluded.kind}
            ).returning(_K.c.id, *parts)
        )
    else:  # SQLite before 3.35: writers are serialized there, so read back after inserting
        ins = _dialect_insert(conn)(_K).on_conflict_do_nothing(index_elements=list(_KEY_PARTS))
        conn.execute(ins, values)
        found = conn.execute(select(_K.c.id, *parts).where(tuple_(*parts).in_(missing)))
    new: dict[Key, int] = {tuple(row[1:]): int(row[0]) for row in found}
    unresolved = [k for k in missing if k not in new]
    if unresolved:
        raise RollupKeyRace(f"no id for rollup key(s) {unresolved[:3]} in this transaction")
    ids.update(new)
    return ids, new


# Untyped columns: the JSON documents arrive already encoded by _validate.
_RUNS = table("runs", *(column(c) for c in v.RUN_COLUMNS))


def _upsert_runs(conn: Connection, rows: Sequence[Row]) -> None:
    stmt = _dialect_insert(conn)(_RUNS)
    stmt = stmt.on_conflict_do_update(
        index_elements=["run_id"],
        set_={c: stmt.excluded[c] for c in v.RUN_COLUMNS if c != "run_id"},
    )
    conn.execute(stmt, [dict(zip(v.RUN_COLUMNS, row, strict=True)) for row in rows])
