"""What the checks (and the demo's report) read from a store: the ``StoreReader`` protocol.

The checks never open a database: they are handed something that answers these queries.
``llmpulse.store.Store`` is one; a client of a remote server's API can be another. Typing the
argument with this protocol instead of ``Any`` lets mypy check every call against the store's
real signatures, and says in one place what a check needs from storage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from llmpulse.schema import MetricPoint, Run
    from llmpulse.store import BranchCount, SpanStats

__all__ = ["Filter", "StoreReader"]

#: A filter value of the rollup queries: one value, a list of values, or ``None`` for any.
Filter = str | Sequence[str] | None


class StoreReader(Protocol):
    """The read queries the checks use (``llmpulse.store.Store`` implements them)."""

    def span_stats(
        self, start: float, end: float, *, group_by: Sequence[str] = (), **filters: Filter
    ) -> list[SpanStats]:
        """Rollup stats over the window, one row per group."""
        ...

    def span_series(
        self,
        start: float,
        end: float,
        step_seconds: int,
        *,
        group_by: Sequence[str] = (),
        **filters: Filter,
    ) -> list[SpanStats]:
        """Rollup stats per bucket of ``step_seconds``, per group."""
        ...

    def branch_counts(
        self, start: float, end: float, *, step_seconds: int | None = None, name: Filter = None
    ) -> list[BranchCount]:
        """How often each branch of each decision was taken (per bucket when a step is given)."""
        ...

    def metric_names(self, start: float, end: float) -> list[str]:
        """Names of the metric points recorded in the window."""
        ...

    def metric_series(
        self,
        name: str,
        start: float,
        end: float,
        *,
        labels: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> list[MetricPoint]:
        """The points of one metric in the window, oldest first."""
        ...

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
        """Runs matching the filters."""
        ...
