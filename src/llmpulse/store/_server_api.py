"""The store's methods for the server: API keys, the model catalog, pages of raw records, ping.

A mixin of ``Store`` (kept apart so ``_store.py`` stays the write path and the rollup reads).
Every method opens its own connection through ``Store._read`` / ``Store._writing``, so
database errors become ``StoreError`` / ``StoreUnavailableError`` the same way as elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from llmpulse.schema import MetricPoint, Run, Span
from llmpulse.store._connections import StoreConnections
from llmpulse.store._migrate import current_revision, head_revision
from llmpulse.store.queries import admin, browse
from llmpulse.store.queries.admin import ApiKeyRecord, ModelRecord
from llmpulse.store.queries.browse import TraceTotals

__all__ = ["ServerApiMixin"]


class ServerApiMixin(StoreConnections):
    """API keys, models, keyset pages and a cheap ping; mixed into ``Store``."""

    _engine: Engine
    _url: str

    def ping(self) -> dict[str, Any]:
        """Reachability, round-trip latency of one query, schema revision vs head. Never raises."""
        report: dict[str, Any] = {"backend": self._engine.dialect.name, "reachable": False}
        began = time.perf_counter()
        try:
            with self._engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
                report["latency_ms"] = (time.perf_counter() - began) * 1000.0
                report["reachable"] = True
                report["revision"] = current_revision(conn)
        except SQLAlchemyError as exc:
            report["error"] = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        report["head_revision"] = head_revision()
        report["up_to_date"] = report.get("revision") == report["head_revision"]
        return report

    # -- API keys ---------------------------------------------------------------------------

    def add_api_key(
        self, key_id: str, secret_hash: str, name: str, scopes: Sequence[str], *, at: float
    ) -> ApiKeyRecord:
        """Store a new API key by its public id and the hash of its secret."""
        with self._writing("add_api_key") as conn:
            return admin.insert_key(conn, key_id, secret_hash, name, tuple(scopes), at)

    def list_api_keys(self) -> list[ApiKeyRecord]:
        """Every API key ever created, revoked ones included, oldest first (no secrets)."""
        with self._read("list_api_keys") as conn:
            return admin.list_keys(conn)

    def find_api_key(self, key_id: str) -> tuple[ApiKeyRecord, str] | None:
        """The key with public id ``key_id`` and its stored hash, or ``None``."""
        with self._read("find_api_key") as conn:
            return admin.find_key(conn, key_id)

    def revoke_api_key(self, key_id: str, *, at: float) -> ApiKeyRecord | None:
        """Revoke a key for good; ``None`` when there is no such key."""
        with self._writing("revoke_api_key") as conn:
            return admin.revoke_key(conn, key_id, at)

    def any_api_key(self) -> bool:
        """Whether any API key was ever created."""
        with self._read("any_api_key") as conn:
            return admin.any_key(conn)

    # -- model catalog ----------------------------------------------------------------------

    def list_models(self, *, active_only: bool = False) -> list[ModelRecord]:
        """The model catalog by name."""
        with self._read("list_models") as conn:
            return admin.list_models(conn, active_only)

    def get_model(self, name: str) -> ModelRecord | None:
        """The catalog entry of ``name``, or ``None``."""
        with self._read("get_model") as conn:
            return admin.get_model(conn, name)

    def add_model(self, name: str, values: Mapping[str, Any], *, at: float) -> ModelRecord | None:
        """Add a model; ``None`` (nothing written) when the name is taken."""
        with self._writing("add_model") as conn:
            if admin.get_model(conn, name) is not None:
                return None
            return admin.insert_model(conn, name, dict(values), at)

    def update_model(
        self, name: str, values: Mapping[str, Any], *, at: float
    ) -> ModelRecord | None:
        """Change some fields of a model; ``None`` when there is no such model."""
        with self._writing("update_model") as conn:
            return admin.update_model(conn, name, dict(values), at)

    # -- pages of raw records ---------------------------------------------------------------

    def span_page(
        self,
        start: float,
        end: float,
        *,
        filters: Mapping[str, Any],
        after: Sequence[Any] | None = None,
        limit: int = 100,
        newest_first: bool = True,
    ) -> list[tuple[Span, tuple[float, int]]]:
        """Spans started in ``[start, end)`` matching ``filters`` (see ``browse.SPAN_FILTERS``),
        each with the key to pass as ``after`` for the next page."""
        with self._read("span_page") as conn:
            return browse.span_page(conn, start, end, filters, after, limit, newest_first)

    def trace_page(
        self,
        start: float,
        end: float,
        *,
        filters: Mapping[str, Any],
        after: Sequence[Any] | None = None,
        limit: int = 50,
        min_latency_ms: float | None = None,
        min_cost_usd: float | None = None,
    ) -> list[TraceTotals]:
        """Traces with a matching span in ``[start, end)``, newest first; with ``min_latency_ms``
        or ``min_cost_usd``, only traces whose whole duration or total cost reaches it."""
        with self._read("trace_page") as conn:
            return browse.trace_page(
                conn, start, end, filters, after, limit,
                min_latency_ms=min_latency_ms, min_cost_usd=min_cost_usd,
            )  # fmt: skip

    def trace_summary(self, trace_id: str) -> TraceTotals | None:
        """Totals of one trace, or ``None`` when none of its spans is stored."""
        with self._read("trace_summary") as conn:
            return browse.trace_summary(conn, trace_id)

    def trace_span_page(
        self,
        trace_id: str,
        *,
        after: Sequence[Any] | None = None,
        limit: int = 1000,
        parent_id: str | None = None,
        roots_only: bool = False,
    ) -> list[tuple[Span, tuple[float, int]]]:
        """A page of one trace's spans in start order (all, one parent's children, or roots)."""
        with self._read("trace_span_page") as conn:
            return browse.trace_span_page(conn, trace_id, after, limit, parent_id, roots_only)

    def run_page(
        self,
        *,
        filters: Mapping[str, Any],
        after: Sequence[Any] | None = None,
        limit: int = 100,
        newest_first: bool = True,
    ) -> list[tuple[Run, tuple[float, str]]]:
        """Runs matching ``filters`` (kind, status, model, experiment) by start time."""
        with self._read("run_page") as conn:
            return browse.run_page(conn, filters, after, limit, newest_first)

    def point_page(
        self,
        *,
        name: str | None = None,
        run_id: str | None = None,
        start: float | None = None,
        end: float | None = None,
        after: Sequence[Any] | None = None,
        limit: int = 1000,
    ) -> list[tuple[MetricPoint, tuple[float, int]]]:
        """Metric points of a name and/or a run, oldest first."""
        with self._read("point_page") as conn:
            return browse.point_page(conn, name, run_id, start, end, after, limit)
