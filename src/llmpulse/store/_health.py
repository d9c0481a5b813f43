"""What ``Store.health()`` reports: reachability, schema revision, row counts, size."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from llmpulse.store._migrate import current_revision, head_revision
from llmpulse.store.models import metadata

__all__ = ["TABLES", "WAL_WARN_BYTES", "health"]

TABLES = ("spans", "metric_points", "runs", "rollup_keys", "rollups")
# Twice the size past which the checkpoint thread empties the WAL (_checkpoint.TRUNCATE_BYTES):
# a WAL this large means something (a long read transaction) keeps it from being checkpointed.
WAL_WARN_BYTES = 128 << 20


def health(engine: Engine, shown_url: str) -> dict[str, Any]:
    """A JSON-ready report on the database behind ``engine``."""
    backend = engine.dialect.name
    report: dict[str, Any] = {"backend": backend, "url": shown_url, "reachable": False}
    try:
        with engine.connect() as conn:
            report["reachable"] = True
            current = current_revision(conn)
            report["revision"] = current
            report["head_revision"] = head_revision()
            report["up_to_date"] = current == head_revision()
            counts: dict[str, int | None] = {}
            for name in TABLES:
                table = metadata.tables[name]
                counts[name] = (
                    conn.execute(select(func.count()).select_from(table)).scalar()
                    if current
                    else None
                )
            report["rows"] = counts
            report.update(
                _sqlite(conn, engine) if backend == "sqlite" else _postgres(conn, bool(current))
            )
    except SQLAlchemyError as exc:
        report["error"] = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    return report


def _sqlite(conn: Any, engine: Engine) -> dict[str, Any]:
    page_count = conn.exec_driver_sql("PRAGMA page_count").scalar()
    page_size = conn.exec_driver_sql("PRAGMA page_size").scalar()
    journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    size = int(page_count) * int(page_size)
    path = engine.url.database
    wal_bytes = 0
    if path and path != ":memory:" and os.path.exists(f"{path}-wal"):
        wal_bytes = os.path.getsize(f"{path}-wal")
    report: dict[str, Any] = {
        "size_bytes": size + wal_bytes,
        "wal_bytes": wal_bytes,
        "journal_mode": journal,
        "wal": journal == "wal",
    }
    if wal_bytes > WAL_WARN_BYTES:
        report["warnings"] = [
            f"the WAL file is {wal_bytes / 2**20:,.0f} MiB (over {WAL_WARN_BYTES / 2**20:,.0f} "
            "MiB): a read transaction held open (a long query, a sqlite3 shell left in BEGIN) "
            "keeps it from being checkpointed; it is emptied within seconds once that reader "
            "ends and a store using this file is open (see docs/storage.md)"
        ]
    return report


def _postgres(conn: Any, migrated: bool) -> dict[str, Any]:
    if not migrated:
        return {"size_bytes": 0}
    size = conn.execute(
        text(
            "SELECT sum(pg_total_relation_size(to_regclass(t))) FROM unnest(CAST(:tables AS text[])) AS t"
        ),
        {"tables": list(TABLES)},
    ).scalar()
    version = conn.exec_driver_sql("SHOW server_version").scalar()
    return {"size_bytes": int(size or 0), "server_version": version}
