"""Engines for SQLite and PostgreSQL, configured the same way everywhere.

SQLite gets WAL (readers never block the writer), ``synchronous=NORMAL`` (durable at each WAL
checkpoint and safe against application crashes), ``foreign_keys=ON`` and a 30 s busy timeout.
The driver's own transaction handling is switched off so that the store decides how a
transaction begins: ``BEGIN IMMEDIATE`` for writes, which takes the write lock up front, so a
writer waits for another (through the busy timeout) instead of failing with "database is
locked" when it upgrades a read lock.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from llmpulse.errors import StoreUnavailableError
from llmpulse.store._checkpoint import INLINE_PAGES, TRUNCATE_BYTES
from llmpulse.store._histogram import hist_add_bytes
from llmpulse.store._process import track_engine

__all__ = ["BUSY_TIMEOUT_SECONDS", "WRITE_BEGIN", "build_engine", "mask_url"]

BUSY_TIMEOUT_SECONDS = 30.0
# SQLite's page cache, per connection, in KiB (its default is 2 MiB). It fills with whatever a
# connection touched and stays full, so it is what a server's memory grows by as it ingests:
# at 64 MiB a writer's cache alone took `llmpulse serve` from 113 MB idle to 155-159 MB while
# storing 80,000 spans. Ingest appends at the right edge of every index (ids and times are
# time-ordered), and the overview and chart queries read rollups whose pages the OS keeps
# cached: 8 MiB showed no cost in write CPU per span or in the query bench's timings beside
# 64 MiB (2026-12-03, docs/benchmarks.md), and bounds a pool of connections to a few dozen MB.
CACHE_KIB = 8192
# Execution option a connection sets to begin its transaction with BEGIN IMMEDIATE on SQLite.
WRITE_BEGIN = "llmpulse_begin_immediate"


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (safe to print or log)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    text = parsed.render_as_string(hide_password=True)  # password -> ***
    # Show the URL as the user wrote it, not with the driver name we added.
    return text.replace("postgresql+psycopg://", "postgresql://", 1)


def build_engine(url: str, *, shown_url: str) -> Engine:
    """An engine for the normalized ``url``; ``shown_url`` is the masked form for messages."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreUnavailableError(
            f"cannot parse database URL {shown_url!r}; use sqlite:///path/to/file.db or "
            "postgresql://user:password@host:5432/dbname"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.host or parsed.port or parsed.username:
            # sqlite://llmpulse.db: two slashes make the file name a host (SQLAlchemy's
            # ArgumentError, with a traceback, came out of every command).
            raise StoreUnavailableError(
                f"{shown_url!r} is not a SQLite file URL: a file takes three slashes, "
                "sqlite:///llmpulse.db (relative) or sqlite:////var/lib/llmpulse.db (absolute)"
            )
        engine = _sqlite_engine(url, parsed.database)
    elif backend == "postgresql":
        engine = _postgres_engine(url, parsed.get_driver_name(), shown_url)
    else:
        raise StoreUnavailableError(
            f"unsupported database {shown_url!r}: llmpulse stores to sqlite:/// or postgresql:// URLs"
        )
    track_engine(engine)  # a forked child gets its own connections
    return engine


def _sqlite_engine(url: str, database: str | None) -> Engine:
    memory = database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {
        "connect_args": {"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False}
    }
    if memory:
        # Every connection to :memory: is a new empty database: share one.
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the store issues BEGIN itself (see below)
        # Rollup upserts merge histograms with it (PostgreSQL has it as a SQL function).
        dbapi_conn.create_function("llmpulse_hist_add", 4, hist_add_bytes, deterministic=True)
        cur = dbapi_conn.cursor()
        try:
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
                # The store's thread checkpoints; commits only past INLINE_PAGES (_checkpoint.py).
                cur.execute(f"PRAGMA wal_autocheckpoint={INLINE_PAGES}")
                # A WAL reset after a long reader is cut back to this size (_checkpoint.py).
                cur.execute(f"PRAGMA journal_size_limit={TRUNCATE_BYTES}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
            cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            cur.execute("PRAGMA temp_store=MEMORY")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(WRITE_BEGIN, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgres_engine(url: str, driver: str, shown_url: str) -> Engine:
    if driver != "psycopg":
        raise StoreUnavailableError(
            f"{shown_url}: llmpulse talks to PostgreSQL through psycopg 3; write the URL as "
            "postgresql://user:password@host/dbname"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise StoreUnavailableError(
            f"cannot use {shown_url}: the PostgreSQL driver is not installed; "
            "pip install 'llmpulse[postgres]'"
        ) from exc
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        connect_args={"connect_timeout": 10, "application_name": "llmpulse"},
    )
