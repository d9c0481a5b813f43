"""The store's workflow queries: a workflow's runs with their outcome, one run's path, and its
nodes' executions costed with what ran under them (see ``queries/workflows.py``).

A mixin of ``Store``, like ``_server_api.py``: each method opens its own read connection, so
database errors become ``StoreError`` / ``StoreUnavailableError`` as everywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmpulse.store._connections import StoreConnections
from llmpulse.store.queries import workflows
from llmpulse.store.queries.workflows import RunPath, RunStep, WorkflowRun

__all__ = ["WorkflowsApiMixin"]


class WorkflowsApiMixin(StoreConnections):
    """Workflow runs, run paths and node samples; mixed into ``Store``."""

    def workflow_runs(
        self,
        workflow: str,
        start: float,
        end: float,
        *,
        after: Sequence[Any] | None = None,
        limit: int = 50,
        outcome: str | None = None,
    ) -> list[tuple[WorkflowRun, tuple[float, str]]]:
        """Runs of ``workflow`` with a decision in ``[start, end)``, newest first (by their last
        decision in the window), each with its outcome, totals, path and the key to pass as
        ``after`` for the next page; only the runs that ended ``outcome`` (ok, error or
        unknown) when given."""
        if outcome not in (None, "ok", "error", "unknown"):
            raise ValueError(f"outcome must be ok, error or unknown, got {outcome!r}")
        with self._read("workflow_runs") as conn:
            shape = workflows.workflow_shape(conn, workflow)
            keys = workflows.run_keys(conn, shape, start, end, after, limit, outcome)
            runs = workflows.runs_of(conn, shape, [trace_id for trace_id, _ in keys])
        last = dict(keys)
        return [(run, (last[run.trace_id], run.trace_id)) for run in runs]

    def workflow_run(self, workflow: str, trace_id: str) -> RunPath | None:
        """One run of ``workflow`` with every step (costed) and decision; ``None`` when the
        trace is not stored or holds none of the workflow's decisions."""
        with self._read("workflow_run") as conn:
            shape = workflows.workflow_shape(conn, workflow)
            return workflows.run_path(conn, shape, trace_id)

    def workflow_node_samples(
        self, workflow: str, start: float, end: float, *, runs: int = 200
    ) -> tuple[dict[str, list[RunStep]], int]:
        """The steps of the latest ``runs`` runs in ``[start, end)`` grouped by node, each costed
        with what ran under it; and how many runs were read."""
        with self._read("workflow_node_samples") as conn:
            shape = workflows.workflow_shape(conn, workflow)
            keys = workflows.run_keys(conn, shape, start, end, None, runs)
            ids = [trace_id for trace_id, _ in keys]
            return workflows.node_samples(conn, shape, ids), len(ids)
