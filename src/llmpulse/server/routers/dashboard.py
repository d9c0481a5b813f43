"""``/api/v1/dashboard``: the data behind the overview page and a model's performance page,
and the findings of ``llmpulse check`` that the overview marks on its charts.

The overview and model pages read the rollups only (never raw spans), so their cost does not
grow with traffic. The findings are ``run_checks`` over the window, run at most once
every 5 minutes per window and answered from a cache in between (``llmpulse.server.findings``). The System
page's ``/system`` adds what ``/health`` does not say: the store's size and rows, this process's
ingest counters, the ingest rate and the age of the newest span.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from llmpulse.server.deps import READ, get_store
from llmpulse.server.findings import FindingsCache, run_dashboard_checks
from llmpulse.server.metrics import metrics_of
from llmpulse.server.pagination import TimeWindow, time_window
from llmpulse.server.problems import Problem
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
# The checks read the window and the 7 days before it per bucket: past a month that is no
# longer a dashboard question.
_MAX_FINDINGS_WINDOW_S = 31 * _DAY
_cache_lock = threading.Lock()


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


class Findings(BaseModel):
    """What ``llmpulse check`` finds over a window: each finding with its evidence (the shape
    of ``llmpulse check --format json``), most severe first, and when it was computed."""

    start: float
    end: float
    checked_at: float
    check_seconds: float
    findings: list[dict[str, Any]]
    counts: dict[str, int]
    skipped: list[str]
    series_checked: int


class IngestCounts(BaseModel):
    """What this server process's ingest took since it started (all sources together), and
    the same per source (``native``, ``otlp``)."""

    requests: dict[str, int]
    spans_stored: int
    duplicate_spans: int
    dropped_spans: dict[str, int]
    by_source: dict[str, dict[str, Any]]


class RateBucket(BaseModel):
    """Spans stored per minute (from the rollups: every server process writing the store)."""

    bucket_start: float
    spans: int


class SystemStatus(BaseModel):
    """The store's size and rows, ingest counters, the recent ingest rate and how old the
    newest span is."""

    now: float
    store: dict[str, Any]
    ingest: IngestCounts
    rate: list[RateBucket]
    newest_span_age_seconds: float | None


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


def _findings_cache(request: Request, store: Store) -> FindingsCache:
    state = request.app.state
    with _cache_lock:
        cache: FindingsCache | None = getattr(state, "dashboard_findings", None)
        if cache is None:
            cache = FindingsCache(lambda start, end: run_dashboard_checks(store, start, end))
            state.dashboard_findings = cache
    return cache


@router.get("/findings", response_model=Findings)
def findings(
    request: Request,
    window: TimeWindow = Depends(time_window),
    store: Store = Depends(get_store),
) -> Findings:
    """The findings of ``llmpulse check`` (latency, token and cost spikes, error-rate jumps,
    branch shifts against the 7 days before the window; run regressions and trends) over the
    window. A window ending now is checked at most once every 5 minutes (``checked_at``, and
    ``start``/``end`` say which window the answer covers); the first request for a window
    waits for the checks."""
    if window.end - window.start > _MAX_FINDINGS_WINDOW_S:
        raise Problem(
            422, f"findings are checked over at most 31 days, got {window.end - window.start:.0f} s",
            kind="validation",
        )  # fmt: skip
    checked = _findings_cache(request, store).get(window.start, window.end)
    report = checked.report
    summary = report["summary"]
    return Findings(
        start=checked.start,
        end=checked.end,
        checked_at=checked.checked_at,
        check_seconds=round(checked.seconds, 3),
        findings=report["findings"],
        counts={"critical": summary.get("critical", 0), "warning": summary.get("warning", 0)},
        skipped=report["skipped"],
        series_checked=summary["series_checked"],
    )


_INGEST_SAMPLES = {
    "llmpulse_ingest_requests_total": "requests",
    "llmpulse_ingest_spans_total": "spans_stored",
    "llmpulse_ingest_duplicate_spans_total": "duplicate_spans",
    "llmpulse_ingest_dropped_spans_total": "dropped_spans",
}


def _ingest_counts(request: Request) -> IngestCounts:
    """This process's ingest counters, read from its Prometheus registry."""
    totals: dict[str, Any] = {"requests": {}, "spans_stored": 0, "duplicate_spans": 0,
                              "dropped_spans": {}}  # fmt: skip
    by_source: dict[str, dict[str, Any]] = {}
    for family in metrics_of(request.app).registry.collect():
        for sample in family.samples:
            field = _INGEST_SAMPLES.get(sample.name)
            if field is None:
                continue
            value = int(sample.value)
            source = by_source.setdefault(sample.labels.get("source", "?"), {
                "requests": {}, "spans_stored": 0, "duplicate_spans": 0, "dropped_spans": {}})  # fmt: skip
            for bucket in (totals, source):
                if field == "requests":
                    outcome = sample.labels.get("outcome", "?")
                    bucket["requests"][outcome] = bucket["requests"].get(outcome, 0) + value
                elif field == "dropped_spans":
                    reason = sample.labels.get("reason", "?")
                    bucket["dropped_spans"][reason] = bucket["dropped_spans"].get(reason, 0) + value
                else:
                    bucket[field] += value
    return IngestCounts(**totals, by_source=by_source)


# The store's report counts every table's rows (40 ms at 1M spans on SQLite, more under load or
# on PostgreSQL): the System page, refreshed every 30 s, reads it at most once a minute.
_STORE_REPORT_SECONDS = 60.0


def _store_report(request: Request, store: Store, now: float) -> dict[str, Any]:
    state = request.app.state
    with _cache_lock:
        kept: tuple[float, dict[str, Any]] | None = getattr(state, "dashboard_store_report", None)
    if kept is not None and now - kept[0] < _STORE_REPORT_SECONDS:
        return kept[1]
    report = store.health()
    with _cache_lock:
        state.dashboard_store_report = (now, report)
    return report


@router.get("/system", response_model=SystemStatus)
def system(request: Request, store: Store = Depends(get_store)) -> SystemStatus:
    """The System page's data besides ``/health``: the store's size and row counts (counted at
    most once a minute), this process's ingest counters (requests by outcome, spans stored, repeats, drops by reason),
    spans stored per minute over the last 15 minutes (from the rollups) and the age of the
    newest span."""
    now = time.time()
    report = _store_report(request, store, now)
    keys = ("backend", "reachable", "size_bytes", "wal_bytes", "rows", "warnings", "error")
    shown: dict[str, Any] = {k: report[k] for k in keys if k in report}
    minute = 60
    first = (int(now) // minute - 14) * minute
    rate = [
        RateBucket(bucket_start=float(r.bucket_start or 0), spans=int(r.calls))
        for r in store.span_series(first, now, minute)
    ]
    newest = store.span_page(now - 7 * _DAY, now + _HOUR, filters={}, limit=1, newest_first=True)
    age = max(0.0, now - newest[0][0].start_time) if newest else None
    return SystemStatus(now=now, store=shown, ingest=_ingest_counts(request), rate=rate,
                        newest_span_age_seconds=age)  # fmt: skip
