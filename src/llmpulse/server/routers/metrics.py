"""``/api/v1/metrics``: span aggregates over the rollups (summary and series, any group-by and
window), the same totals over raw spans for what the rollups do not keep (per service, per
session, per trace), and raw metric points. Not to be confused with Prometheus ``/metrics``."""

from __future__ import annotations

from enum import Enum

from fastapi import APIRouter, Depends, Query

from llmpulse.server.deps import READ, get_store
from llmpulse.server.pagination import Page, TimeWindow, decode_cursor, page_of, time_window
from llmpulse.server.problems import Problem
from llmpulse.server.routers.traces import SpanFilters, span_filters
from llmpulse.server.schemas import PointOut, StatsOut
from llmpulse.store import Store

__all__ = ["MAX_BUCKETS", "RawGroupKey", "RollupFilters", "auto_step", "rollup_filters", "router"]

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"], dependencies=[Depends(READ)])

MAX_BUCKETS = 5000  # buckets one series request may ask for
_STEPS = (60, 300, 900, 3600, 6 * 3600, 86400)


class GroupKey(str, Enum):
    """A dimension of the rollups."""

    model = "model"
    kind = "kind"
    name = "name"
    prompt_version = "prompt_version"
    provider = "provider"
    branch = "branch"


class RawGroupKey(str, Enum):
    """A span column raw-span totals may be grouped by (service and status too)."""

    service = "service"
    model = "model"
    name = "name"
    kind = "kind"
    status = "status"
    prompt_version = "prompt_version"
    provider = "provider"


RollupFilters = dict[str, str]


def rollup_filters(
    model: str | None = Query(None, max_length=512),
    kind: str | None = Query(None, max_length=32),
    name: str | None = Query(None, max_length=512),
    prompt_version: str | None = Query(None, max_length=512),
    provider: str | None = Query(None, max_length=512),
) -> RollupFilters:
    """Dependency: exact-match filters on the rollup dimensions (``''`` = spans without it)."""
    given = {"model": model, "kind": kind, "name": name, "prompt_version": prompt_version,
             "provider": provider}  # fmt: skip
    return {k: v for k, v in given.items() if v is not None}


def auto_step(window: TimeWindow) -> int:
    """The smallest usual step giving at most about 300 buckets over the window."""
    for step in _STEPS:
        if (window.end - window.start) / step <= 300:
            return step
    return 86400 * max(1, int((window.end - window.start) / 86400 / 300) + 1)


@router.get("/summary", response_model=list[StatsOut])
def summary(
    window: TimeWindow = Depends(time_window),
    group_by: list[GroupKey] = Query(default_factory=list),
    filters: RollupFilters = Depends(rollup_filters),
    store: Store = Depends(get_store),
) -> list[StatsOut]:
    """Totals over the window (calls, errors, tokens, cost, latency percentiles) per group."""
    keys = list(dict.fromkeys(g.value for g in group_by))
    rows = store.span_stats(window.start, window.end, group_by=keys, **filters)
    return [StatsOut.of(r) for r in rows]


@router.get("/series", response_model=list[StatsOut])
def series(
    window: TimeWindow = Depends(time_window),
    step_seconds: int | None = Query(
        None, ge=60, le=366 * 86400, description="Bucket width, a multiple of 60. Default: auto."
    ),
    group_by: list[GroupKey] = Query(default_factory=list),
    filters: RollupFilters = Depends(rollup_filters),
    store: Store = Depends(get_store),
) -> list[StatsOut]:
    """The same aggregates per time bucket (buckets aligned on multiples of the step)."""
    step = step_seconds or auto_step(window)
    if step % 60:
        raise Problem(422, f"step_seconds must be a multiple of 60, got {step}", kind="validation")
    if (window.end - window.start) / step > MAX_BUCKETS:
        raise Problem(422, f"the window holds more than {MAX_BUCKETS} buckets of {step} s; "
                      "use a larger step_seconds or a shorter window", kind="validation")  # fmt: skip
    keys = list(dict.fromkeys(g.value for g in group_by))
    rows = store.span_series(window.start, window.end, step, group_by=keys, **filters)
    return [StatsOut.of(r) for r in rows]


@router.get("/raw-summary", response_model=list[StatsOut])
def raw_summary(
    window: TimeWindow = Depends(time_window),
    group_by: list[RawGroupKey] = Query(default_factory=list),
    filters: SpanFilters = Depends(span_filters),
    trace_id: str | None = Query(None, max_length=64, description="Only this trace's spans."),
    store: Store = Depends(get_store),
) -> list[StatsOut]:
    """Totals computed from the raw spans, for what the rollups do not keep.

    Group by ``service`` or ``status`` too, and filter like ``/spans`` (session, user, service,
    trace). Sums and averages are exact; percentiles are null (they need the rollups'
    histograms), and the cost of the query grows with the spans in the window. A group with no
    span is not listed: no matching span, no row.
    """
    values = dict(filters.values)
    if trace_id is not None:
        values["trace_id"] = trace_id
    keys = list(dict.fromkeys(g.value for g in group_by))
    rows = store.raw_span_stats(window.start, window.end, group_by=keys, **values)
    return [StatsOut.of(r) for r in rows if r.calls]


@router.get("/names", response_model=list[str])
def names(
    window: TimeWindow = Depends(time_window),
    store: Store = Depends(get_store),
) -> list[str]:
    """Names of the metrics with points in the window."""
    return store.metric_names(window.start, window.end)


@router.get("/points", response_model=Page[PointOut])
def points(
    name: str = Query(..., min_length=1, max_length=512),
    window: TimeWindow = Depends(time_window),
    run_id: str | None = Query(None, max_length=128),
    limit: int = Query(1000, ge=1, le=10000),
    cursor: str | None = Query(None, max_length=1024),
    store: Store = Depends(get_store),
) -> Page[PointOut]:
    """Points of one metric in the window, oldest first."""
    listing = f"points:{name}"
    after = decode_cursor(listing, cursor, (float, int))
    rows = store.point_page(name=name, run_id=run_id, start=window.start, end=window.end,
                            after=after, limit=limit + 1)  # fmt: skip
    return page_of(listing, [(PointOut.of(p), key) for p, key in rows], limit)
