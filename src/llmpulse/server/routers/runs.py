"""``/api/v1/runs``: benchmark and experiment runs, one run, and a run's metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from llmpulse.schema import RunStatus
from llmpulse.server.deps import READ, get_store
from llmpulse.server.pagination import Order, Page, decode_cursor, encode_cursor, page_of
from llmpulse.server.problems import Problem
from llmpulse.server.schemas import PointOut, RunOut
from llmpulse.store import Store

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/runs", tags=["runs"], dependencies=[Depends(READ)])


class RunMetrics(BaseModel):
    """A run's summary metrics and a page of its metric points (oldest first)."""

    run_id: str
    summary: dict[str, float | None]
    items: list[PointOut]
    next_cursor: str | None = None


@router.get("", response_model=Page[RunOut])
def list_runs(
    model: str | None = Query(None, max_length=512),
    status: RunStatus | None = Query(None),
    kind: str | None = Query(None, max_length=64, description="benchmark, experiment, ..."),
    experiment: str | None = Query(None, max_length=512),
    order: Order = Query(Order.desc),
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = Query(None, max_length=1024),
    store: Store = Depends(get_store),
) -> Page[RunOut]:
    """Runs matching every filter, newest start first by default."""
    filters: dict[str, Any] = {
        "model": model,
        "status": status.value if status else None,
        "kind": kind,
        "experiment": experiment,
    }
    listing = f"runs:{order.value}"
    after = decode_cursor(listing, cursor, (float, str))
    runs = store.run_page(
        filters={k: v for k, v in filters.items() if v is not None},
        after=after,
        limit=limit + 1,
        newest_first=order is Order.desc,
    )
    return page_of(listing, [(RunOut.of(r), key) for r, key in runs], limit)


def _run(store: Store, run_id: str) -> Any:
    run = store.get_run(run_id)
    if run is None:
        raise Problem(404, f"no run {run_id!r}", kind="not-found")
    return run


@router.get("/{run_id}", response_model=RunOut)
def get_run(
    run_id: str = Path(max_length=128),
    store: Store = Depends(get_store),
) -> RunOut:
    """One run."""
    return RunOut.of(_run(store, run_id))


@router.get("/{run_id}/metrics", response_model=RunMetrics)
def run_metrics(
    run_id: str = Path(max_length=128),
    name: str | None = Query(None, max_length=512, description="Only points of this metric."),
    limit: int = Query(1000, ge=1, le=10000),
    cursor: str | None = Query(None, max_length=1024),
    store: Store = Depends(get_store),
) -> RunMetrics:
    """The run's summary metrics and its metric points (per step), paged."""
    run = _run(store, run_id)
    listing = f"run-points:{run_id}"
    after = decode_cursor(listing, cursor, (float, int))
    points = store.point_page(name=name, run_id=run_id, after=after, limit=limit + 1)
    more = len(points) > limit
    points = points[:limit]
    return RunMetrics(
        run_id=run.run_id,
        summary=dict(run.metrics),
        items=[PointOut.of(p) for p, _ in points],
        next_cursor=encode_cursor(listing, points[-1][1]) if more and points else None,
    )
