"""The embedded exporter: batches go straight into the llmpulse store (SQLite or PostgreSQL).

``llmpulse.store`` (SQLAlchemy, Alembic) is imported when the exporter is made, on the thread
that calls ``init``: ``import llmpulse`` stays light, and a forked child (a gunicorn or
multiprocessing worker) inherits the imported modules instead of importing them again, or
inheriting an import half done by the export thread. Connecting and migrating happen on the
export thread with the first batch, so ``init`` never waits for the database; a database that
cannot be opened makes the batch fail, and the SDK retries it with backoff.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from llmpulse.config import normalize_database_url
from llmpulse.errors import ConfigError
from llmpulse.schema import MetricPoint, Run, Span

__all__ = ["StoreExporter"]

_SCHEMES = ("sqlite", "postgresql")
# Stores a forked child inherited: never closed there (closing would end the parent's
# connections), just kept alive so their finalizers do not run either.
_INHERITED: list[Any] = []


class StoreExporter:
    """Write each batch in one store transaction (``Store.write``)."""

    # The converter may hand llm calls over as the store's (row, rollup key) pairs.
    accepts_span_rows = True

    def __init__(self, database_url: str, *, migrate: bool = True) -> None:
        url = normalize_database_url(database_url)
        scheme = url.split("://", 1)[0].split("+", 1)[0]
        if scheme not in _SCHEMES:
            raise ConfigError(
                f"database URL {hide_password(url)!r} is not supported: use sqlite:///path/to.db "
                "or postgresql://user@host/db"
            )
        if scheme == "postgresql":
            try:  # imported here anyway (see the module docstring): a fork inherits it
                import psycopg  # noqa: F401
            except ImportError as exc:
                # Refused at init(), rather than retried and dropped batch after batch.
                raise ConfigError(
                    f"database URL {hide_password(url)!r} needs the PostgreSQL driver psycopg, "
                    f"which cannot be imported ({exc}): pip install 'llmpulse[postgres]'"
                ) from exc
        from llmpulse.store import Store

        self._store_class = Store
        self.url = url
        self.migrate = migrate
        self._store: Any = None
        self._lock = threading.Lock()

    def export(self, batch: list[Any]) -> Any:
        """Write one batch; returns the store's ``WriteResult`` (its ``rejected`` is counted).

        A batch holds ``Span``, ``MetricPoint`` and ``Run`` records and (row, rollup key) pairs.
        """
        rows: list[Any] = []
        spans: list[Span] = []
        points: list[MetricPoint] = []
        runs: list[Run] = []
        for record in batch:
            kind = type(record)
            if kind is tuple:
                rows.append(record)
            elif kind is Span:
                spans.append(record)
            elif isinstance(record, MetricPoint):
                points.append(record)
            elif isinstance(record, Span):
                spans.append(record)
            else:
                runs.append(record)
        return self._open().write(spans=spans, points=points, runs=runs, span_rows=rows)

    def _open(self) -> Any:
        with self._lock:
            if self._store is None:
                self._store = self._store_class.open(self.url, migrate=self.migrate)
            return self._store

    def shutdown(self) -> None:
        """Close the store's connections."""
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()

    def after_fork(self) -> None:
        """In a forked child: leave the parent's connections alone and open new ones lazily."""
        self._lock = threading.Lock()
        if self._store is not None:
            _INHERITED.append(self._store)
            self._store = None

    def __repr__(self) -> str:
        return f"StoreExporter({hide_password(self.url)!r})"


def hide_password(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)
