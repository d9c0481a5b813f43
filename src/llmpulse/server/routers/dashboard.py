"""``/api/v1/dashboard``: the data behind the overview page and a model's performance page.

Both read the rollups only (never raw spans), so their cost does not grow with traffic.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from llmpulse.server.deps import READ, get_store
from llmpulse.server.pagination import TimeWindow, time_window
from llmpulse.server.routers.metrics import auto_step
from llmpulse.server.routers.models import ModelOut
from llmpulse.server.schemas import RunOut, StatsOut
from llmpulse.store import SpanStats, Store

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"], dependencies=[Depends(READ)])

_DAY = 86400
_HOUR = 3600
# Past this window the overview's series is hourly at least: a finer step has to read the
# per-minute rollups of the whole window (24 h at 5 min: ~520 ms at 1M spans, at 1 h: ~16 ms;
# bench/dashboard.py), while hourly buckets come from the hourly rollups.
_MINUTE_STEPS_UP_TO_S = 6 * _HOUR


class Overview(BaseModel):
    """Totals over the window, one row per model, and the totals per time bucket."""

    start: float
    end: float
    step_seconds: int
    totals: StatsOut | None
    models: list[StatsOut]
    series: list[StatsOut]


class ModelPerformance(BaseModel):
    """One model over the last ``days_back`` days: totals, daily series, per prompt version,
    its catalog entry and its latest runs."""

    model: str
    days_back: int
    start: float
    end: float
    catalog: ModelOut | None
    totals: StatsOut | None
    daily: list[StatsOut]
    prompt_versions: list[StatsOut]
    runs: list[RunOut]


def _one(rows: list[SpanStats]) -> StatsOut | None:
    return StatsOut.of(rows[0]) if rows else None


@router.get("/overview", response_model=Overview)
def overview(
    window: TimeWindow = Depends(time_window),
    store: Store = Depends(get_store),
) -> Overview:
    """Calls, errors, tokens, cost and latency: in total, per model, and over time (buckets of
    ``step_seconds``: at most ~300 of them, and at least an hour once the window passes 6 h)."""
    step = auto_step(window)
    if window.end - window.start > _MINUTE_STEPS_UP_TO_S:
        step = max(step, _HOUR)
    return Overview(
        start=window.start,
        end=window.end,
        step_seconds=step,
        totals=_one(store.span_stats(window.start, window.end)),
        models=[StatsOut.of(r) for r in store.span_stats(window.start, window.end, group_by=["model"])],
        series=[StatsOut.of(r) for r in store.span_series(window.start, window.end, step)],
    )  # fmt: skip


@router.get("/model-performance/{model:path}", response_model=ModelPerformance)
def model_performance(
    model: str = Path(max_length=512),
    days_back: int = Query(7, ge=1, le=366),
    store: Store = Depends(get_store),
) -> ModelPerformance:
    """How one model did over the last ``days_back`` days (daily buckets, UTC days)."""
    end = time.time()
    start = end - days_back * _DAY
    catalog = store.get_model(model)
    runs = store.run_page(filters={"model": model}, limit=20, newest_first=True)
    return ModelPerformance(
        model=model,
        days_back=days_back,
        start=start,
        end=end,
        catalog=ModelOut.of(catalog) if catalog else None,
        totals=_one(store.span_stats(start, end, model=model)),
        daily=[StatsOut.of(r) for r in store.span_series(start, end, _DAY, model=model)],
        prompt_versions=[
            StatsOut.of(r)
            for r in store.span_stats(start, end, group_by=["prompt_version"], model=model)
        ],
        runs=[RunOut.of(r) for r, _ in runs],
    )
