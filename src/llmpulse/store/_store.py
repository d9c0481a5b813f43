"""``Store``: the one object the rest of llmpulse asks for records and aggregates."""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from llmpulse.errors import SchemaNotCurrentError, StoreError, StoreUnavailableError
from llmpulse.schema import MetricPoint, Run, Span
from llmpulse.store import _health, _migrate, _process, _retention
from llmpulse.store._alerts_api import AlertsApiMixin
from llmpulse.store._checkpoint import Checkpointer
from llmpulse.store._rollup import Key
from llmpulse.store._server_api import ServerApiMixin
from llmpulse.store._workflows_api import WorkflowsApiMixin
from llmpulse.store._writer import RollupKeyRace, WriteResult, write_batch
from llmpulse.store.engine import BUSY_TIMEOUT_SECONDS, WRITE_BEGIN, build_engine, mask_url
from llmpulse.store.queries import browse, records, rollups, spans
from llmpulse.store.queries.browse import TraceTotals

__all__ = ["Store"]

log = logging.getLogger(__name__)

_WRITE_ATTEMPTS = 5
_RETRY_BASE_SECONDS = 0.05
_DAY = 86400.0
_MAX_CACHED_KEYS = 100_000


def _connect_hint(message: str) -> str:
    lowered = message.lower()
    if "refused" in lowered:
        return " — is the server running?"
    if "password" in lowered or "authentication" in lowered:
        return " — check the user name and password"
    if "role" in lowered and "does not exist" in lowered:
        return " — create that role first (createuser) or fix the user name in the URL"
    if "does not exist" in lowered:
        return " — create the database first (createdb) or fix its name"
    if "unable to open database file" in lowered:
        return " — does the directory exist, and may this user write to it?"
    return ""


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _retryable(exc: BaseException) -> bool:
    """Lock contention, a dropped connection or a key race: the transaction rolled back, try again."""
    if isinstance(exc, RollupKeyRace):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if sqlstate in ("40001", "40P01"):  # serialization failure, deadlock detected
        return True
    message = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, OperationalError) and ("locked" in message or "busy" in message)


class Store(ServerApiMixin, AlertsApiMixin, WorkflowsApiMixin):
    """Spans, metric points and runs in SQLite or PostgreSQL, with rollups for fast windows.

    Example::

        store = Store.open("sqlite:///./llmpulse.db")
        store.write(spans=[...])
        rows = store.span_stats(time.time() - 86400, time.time(), group_by=("model",))
        store.close()

    Safe to share between threads. On SQLite every write goes through one lock per process
    and database file (plus ``BEGIN IMMEDIATE`` and a busy timeout across processes).
    """

    def __init__(self, engine: Engine, shown_url: str, *, sleep: Any = time.sleep) -> None:
        self._engine = engine
        self._url = shown_url
        # One writer per process and SQLite file (looked up per write: a fork replaces it).
        self._lock_key = _process.writer_lock_key(engine)
        self._sleep = sleep
        self._keys: dict[Key, int] = {}  # rollup key -> id, committed ones only
        database = engine.url.database
        self._checkpointer = (
            Checkpointer(
                os.path.abspath(database),
                busy_timeout=BUSY_TIMEOUT_SECONDS,
                writer_lock=functools.partial(_process.writer_lock, self._lock_key),
            )
            if self._lock_key is not None and database not in (None, "", ":memory:")
            else None
        )

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect to ``url`` (``sqlite:///path`` or ``postgresql://...``) and, by default, migrate.

        Raises ``StoreUnavailableError`` (naming the URL, password masked) when the database
        cannot be reached, ``MigrationError`` when its schema cannot be brought up to date.
        ``migrate=False`` leaves the schema as it is (for ``health`` and read-only tools).
        """
        from llmpulse.config import normalize_database_url
        from llmpulse.errors import ConfigError

        try:
            normalized = normalize_database_url(url)
        except ConfigError as exc:
            raise StoreUnavailableError(str(exc)) from exc
        shown = mask_url(normalized)
        engine = build_engine(normalized, shown_url=shown)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except SQLAlchemyError as exc:
            engine.dispose()
            reason = _first_line(exc)
            raise StoreUnavailableError(
                f"cannot connect to {shown}: {reason}{_connect_hint(reason)}"
            ) from exc
        store = cls(engine, shown)
        if migrate:
            try:
                store.upgrade()
            except BaseException:
                engine.dispose()
                raise
        return store

    @property
    def url(self) -> str:
        """The database URL with its password masked."""
        return self._url

    def shared_url(self) -> str | None:
        """The URL by which another process opens this same database (password included: pass
        it to that process, never show it), or ``None`` for an in-memory SQLite database."""
        url = self._engine.url
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            return None
        return url.render_as_string(hide_password=False)

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    def upgrade(self) -> tuple[str | None, str]:
        """Migrate the schema to the newest revision; returns (revision before, after)."""
        return _migrate.upgrade(self._engine, self._url)

    def schema_is_current(self) -> bool:
        """Whether the schema is at the newest revision (one query; Alembic is not loaded)."""
        with self._engine.connect() as conn:
            return _migrate.current_revision(conn) == _migrate.head_revision()

    def close(self) -> None:
        """Release every pooled connection (and stop the SQLite checkpoint thread)."""
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self._url!r})"

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def _write_tx(self, rows: int = 0) -> Iterator[Connection]:
        """One write transaction of about ``rows`` rows, holding this process's SQLite write
        lock; on SQLite, a WAL checkpoint follows it on the checkpoint thread."""
        lock = None if self._lock_key is None else _process.writer_lock(self._lock_key)
        if lock is not None:
            lock.acquire()
        try:
            with self._engine.connect() as conn:
                conn = conn.execution_options(**{WRITE_BEGIN: True})
                with conn.begin():
                    yield conn
        finally:
            if lock is not None:
                lock.release()
        if self._checkpointer is not None:
            self._checkpointer.committed(rows)

    def write(
        self,
        spans: Sequence[Span] = (),
        points: Sequence[MetricPoint] = (),
        runs: Sequence[Run] = (),
        *,
        span_rows: Sequence[tuple[tuple[Any, ...], Key]] = (),
        all_or_nothing: bool = False,
    ) -> WriteResult:
        """Store a batch in ONE transaction: raw rows plus the rollups of the spans.

        Records that cannot be stored are skipped and counted (``rejected``, ``reasons``);
        the rest commit together. Lock contention and dropped connections are retried; other
        failures raise ``StoreError`` (cause attached) and store nothing of the batch.

        ``span_rows`` are spans a writer has already turned into rows itself, as
        ``(row, rollup_key)`` pairs exactly like ``span_row(span)`` returns them for a span that
        needs no coercion (``SPAN_COLUMNS`` order, JSON columns encoded). They are not checked
        again: the SDK's embedded exporter builds them straight from recorded llm calls, and
        its tests hold them equal to ``span_row`` of the same call recorded as a ``Span``.

        ``all_or_nothing=True`` (the server's ingest) raises ``RecordRejectedError`` naming the
        first record that fails the checks, and writes nothing of the batch. A span whose
        ``span_id`` is already stored is still skipped and counted (a retried batch is idempotent).
        """
        spans, points, runs = list(spans), list(points), list(runs)
        if not (spans or points or runs or span_rows):
            return WriteResult()
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                rows = len(spans) + len(span_rows) + len(points) + len(runs)
                with self._write_tx(rows) as conn:
                    result, new_keys = write_batch(
                        conn, spans, points, runs, self._keys, span_rows, all_or_nothing
                    )
                # Only ids of committed keys may be cached: a rolled-back id could be reused.
                if new_keys:
                    if len(self._keys) > _MAX_CACHED_KEYS:
                        self._keys = {}
                    self._keys = {**self._keys, **new_keys}
                return result
            except (SQLAlchemyError, RollupKeyRace) as exc:
                if attempt + 1 < _WRITE_ATTEMPTS and _retryable(exc):
                    log.info("Write retry %d after %s", attempt + 1, _first_line(exc))
                    self._sleep(_RETRY_BASE_SECONDS * 2**attempt)
                    continue
                if isinstance(exc, RollupKeyRace):
                    raise StoreError(f"write failed on {self._url}: {exc}") from exc
                raise self._error("write", exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def cleanup(
        self,
        older_than_days: float,
        *,
        rollup_days: float = 90.0,
        now: float | None = None,
        chunk_rows: int = 5000,
    ) -> _retention.CleanupResult:
        """Delete raw spans and metric points older than ``older_than_days`` days and rollups
        older than ``rollup_days``, in small transactions. Returns the rows deleted per table."""
        if older_than_days < 0 or rollup_days < 0:
            raise ValueError("older_than_days and rollup_days must be >= 0")
        now = time.time() if now is None else now
        try:
            return _retention.cleanup(
                self._write_tx, now - older_than_days * _DAY, now - rollup_days * _DAY, chunk_rows
            )
        except SQLAlchemyError as exc:
            raise self._error("cleanup", exc) from exc

    def cleanup_preview(
        self, older_than_days: float, *, rollup_days: float = 90.0, now: float | None = None
    ) -> _retention.CleanupResult:
        """What ``cleanup`` with the same arguments would delete now, per table; deletes nothing."""
        if older_than_days < 0 or rollup_days < 0:
            raise ValueError("older_than_days and rollup_days must be >= 0")
        now = time.time() if now is None else now
        with self._read("cleanup_preview") as conn:
            return _retention.expired(conn, now - older_than_days * _DAY, now - rollup_days * _DAY)

    # -- reading ---------------------------------------------------------------------------

    @contextmanager
    def _read(self, what: str) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise self._error(what, exc) from exc

    @contextmanager
    def _writing(self, what: str, rows: int = 1) -> Iterator[Connection]:
        """``_write_tx`` whose database errors become ``StoreError``s, as ``_read``'s do."""
        try:
            with self._write_tx(rows) as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise self._error(what, exc) from exc

    def _error(self, what: str, exc: SQLAlchemyError) -> StoreError:
        reason = _first_line(exc)
        if _migrate.names_a_missing_object(exc):
            # ``what`` is a method name: meaningless to someone who pointed a command at the
            # wrong database or forgot to upgrade it, so say what is wrong with it instead.
            behind = self._schema_not_current(reason)
            if behind is not None:
                return behind
        if isinstance(exc, OperationalError) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated
        ):
            return StoreUnavailableError(
                f"{what} failed: cannot use {self._url}: {reason}{_connect_hint(reason)}"
            )
        return StoreError(f"{what} failed on {self._url}: {reason}")

    def _schema_not_current(self, reason: str) -> SchemaNotCurrentError | None:
        """The error to raise when the database has no llmpulse schema or one older than this
        llmpulse's; ``None`` when the schema is current, newer, or cannot be read."""
        try:
            with self._engine.connect() as conn:
                revision = _migrate.current_revision(conn)
        except (SQLAlchemyError, StoreError):
            return None
        head = _migrate.head_revision()
        if revision is not None and (
            revision == head or revision not in _migrate.known_revisions()
        ):
            return None
        return SchemaNotCurrentError(self._url, revision=revision, head=head, cause=reason)

    def span_stats(
        self, start: float, end: float, *, group_by: Sequence[str] = (), **filters: rollups.Filter
    ) -> list[rollups.SpanStats]:
        """Span aggregates over ``[start, end)`` from rollups, one row per group.

        ``group_by`` and the keyword filters (a value or a list of values) take any of
        model, kind, name, prompt_version, provider, branch; ``''`` matches spans without
        that key. Minute-precise: the window covers every minute it overlaps.
        """
        with self._read("span_stats") as conn:
            return rollups.span_stats(conn, start, end, group_by, filters)

    def window_rollups(self, start: float, end: float) -> rollups.WindowRollups:
        """The rollup rows of ``[start, end)`` read once, to aggregate many ways in memory
        (``.stats(group_by, filters)`` answers like ``span_stats``); for rule evaluation."""
        with self._read("window_rollups") as conn:
            return rollups.WindowRollups(conn, start, end)

    def span_series(
        self,
        start: float,
        end: float,
        step_seconds: int,
        *,
        group_by: Sequence[str] = (),
        **filters: rollups.Filter,
    ) -> list[rollups.SpanStats]:
        """Like ``span_stats``, per bucket of ``step_seconds`` (a multiple of 60).

        Buckets start at multiples of the step since the epoch (hourly buckets on whole hours);
        the first and last are clipped to the window. ``bucket_start`` is the aligned start.
        """
        with self._read("span_series") as conn:
            return rollups.span_series(conn, start, end, step_seconds, group_by, filters)

    def branch_counts(
        self,
        start: float,
        end: float,
        *,
        step_seconds: int | None = None,
        name: rollups.Filter = None,
    ) -> list[rollups.BranchCount]:
        """How often each branch span went each way, per bucket (whole window if no step)."""
        with self._read("branch_counts") as conn:
            return rollups.branch_counts(conn, start, end, step_seconds, name)

    def get_trace(self, trace_id: str) -> list[Span]:
        """Every stored span of ``trace_id``, in start order."""
        with self._read("get_trace") as conn:
            return spans.get_trace(conn, trace_id)

    def get_span(self, span_id: str) -> Span | None:
        """The span with ``span_id``, or ``None``."""
        with self._read("get_span") as conn:
            return spans.get_span(conn, span_id)

    def list_spans(
        self,
        start: float,
        end: float,
        *,
        limit: int = 100,
        offset: int = 0,
        newest_first: bool = True,
        **filters: Any,
    ) -> list[Span]:
        """Raw spans started in ``[start, end)``, filtered by exact match on any of
        kind, model, status, name, trace_id, session_id, user_id, prompt_version, provider, service."""
        with self._read("list_spans") as conn:
            return spans.list_spans(conn, start, end, limit, offset, newest_first, filters)

    def count_spans(self, start: float, end: float, **filters: Any) -> int:
        """How many spans started in ``[start, end)`` and match every filter (as ``list_spans``)."""
        with self._read("count_spans") as conn:
            return spans.count_spans(conn, start, end, filters)

    def iter_spans(
        self, start: float, end: float, *, page_size: int = 1000, **filters: Any
    ) -> Iterator[Span]:
        """Every span started in ``[start, end)`` matching the filters, oldest first, in pages.

        Memory stays bounded by ``page_size`` whatever the number of spans: each page is one
        keyset query on (start_time, id) in its own short read, so no transaction stays open
        between pages and spans written meanwhile after the last key are picked up.
        """
        after: tuple[float, int] | None = None
        while True:
            with self._read("iter_spans") as conn:
                page = browse.span_page(conn, start, end, filters, after, page_size, False)
            for span, _ in page:
                yield span
            if len(page) < page_size:
                return
            after = page[-1][1]

    def raw_span_stats(
        self, start: float, end: float, *, group_by: Sequence[str] = (), **filters: Any
    ) -> list[rollups.SpanStats]:
        """Aggregates of the raw spans of ``[start, end)`` per group, for dimensions the rollups
        do not keep (``service``, ``status``); percentiles are ``None`` (see ``span_stats``)."""
        with self._read("raw_span_stats") as conn:
            return spans.raw_span_stats(conn, start, end, tuple(group_by), filters)

    def list_traces(
        self, start: float, end: float, *, limit: int = 20, **filters: Any
    ) -> list[TraceTotals]:
        """The newest traces with a span in ``[start, end)`` matching every filter (as
        ``list_spans``), with totals over all their spans (the first page of ``trace_page``)."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        with self._read("list_traces") as conn:
            return browse.trace_page(conn, start, end, filters, None, limit)

    def metric_series(
        self,
        name: str,
        start: float,
        end: float,
        *,
        labels: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> list[MetricPoint]:
        """Points of metric ``name`` in ``[start, end)``, oldest first, optionally by labels/run."""
        with self._read("metric_series") as conn:
            return records.metric_series(conn, name, start, end, labels, run_id)

    def metric_names(self, start: float, end: float) -> list[str]:
        """Names of metrics with points in ``[start, end)``."""
        with self._read("metric_names") as conn:
            return records.metric_names(conn, start, end)

    def get_run(self, run_id: str) -> Run | None:
        """The run with ``run_id``, or ``None``."""
        with self._read("get_run") as conn:
            return records.get_run(conn, run_id)

    def list_runs(
        self,
        *,
        kind: str | None = None,
        experiment: str | None = None,
        model: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[Run]:
        """Runs matching every given filter, oldest first (``since``/``until`` bound ``started_at``)."""
        with self._read("list_runs") as conn:
            return records.list_runs(conn, kind, experiment, model, since, until, limit)

    def health(self) -> dict[str, Any]:
        """Backend, masked URL, reachability, schema revision vs head, row counts, size, WAL."""
        return _health.health(self._engine, self._url)
