"""``/api/v1/regression-detection``: what ``llmpulse check`` runs, over the API.

* ``POST /analyze/{model}?days_back=N``: the live-traffic checks (spikes, error-rate jumps,
  branch shifts) of the last day against the ``days_back`` days before it, and the run checks
  (regressions and trends of benchmark and experiment runs over ``days_back`` days), keeping
  the findings about ``model``.
* ``GET /trends/{model}?days_back=N``: the trend of every run metric of ``model``.
* ``GET /summary?days_back=N``: every model's findings, counted by severity.

The detection is ``llmpulse.checks.run_checks``, unchanged; settings are its defaults (the
same as ``llmpulse check`` without ``--config``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from llmpulse.server.deps import READ, get_store
from llmpulse.store import Store

if TYPE_CHECKING:
    from llmpulse.checks import CheckReport, Finding

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/regression-detection", tags=["regression detection"],
    dependencies=[Depends(READ)],
)  # fmt: skip

_DAY = 86400.0
_LIVE_WINDOW = _DAY


class Analysis(BaseModel):
    """The findings about one model, most severe first, and the run series checked."""

    model: str
    days_back: int
    window: dict[str, Any]
    findings: list[dict[str, Any]]
    counts: dict[str, int]
    runs: list[dict[str, Any]]
    skipped: list[str]


class Trends(BaseModel):
    """The trend of each run metric of one model (slope per day, p-value, direction)."""

    model: str
    days_back: int
    trends: list[dict[str, Any]]
    findings: list[dict[str, Any]]


class Summary(BaseModel):
    """Findings per severity, per model and per check, over every model."""

    days_back: int
    window: dict[str, Any]
    findings: int
    worst: str | None
    by_severity: dict[str, int]
    by_model: dict[str, dict[str, int]]
    by_check: dict[str, int]
    series_checked: int


def _report(store: Store, days_back: int) -> CheckReport:
    # Imported on first use: the checks load scipy, which would add ~65 MB to every server
    # process, most of which never runs a regression check.
    from llmpulse.checks import CheckConfig, run_checks

    end = time.time()
    cfg = CheckConfig()
    cfg = replace(cfg, runs=replace(cfg.runs, lookback_days=float(days_back)))
    start = end - _LIVE_WINDOW
    return run_checks(store, start=start, end=end, baseline_start=start - days_back * _DAY,
                      config=cfg)  # fmt: skip


def _about(finding: Finding, model: str) -> bool:
    return finding.subject.get("model") == model


def _counts(findings: list[Finding]) -> dict[str, int]:
    return {s: sum(f.severity == s for f in findings) for s in ("critical", "warning")}


@router.post("/analyze/{model:path}", response_model=Analysis)
def analyze(
    model: str = Path(max_length=512),
    days_back: int = Query(30, ge=1, le=366),
    store: Store = Depends(get_store),
) -> Analysis:
    """Run the traffic and run checks and report the findings about ``model``."""
    report = _report(store, days_back)
    mine = [f for f in report.findings if _about(f, model)]
    whole = report.to_dict()
    return Analysis(
        model=model,
        days_back=days_back,
        window=whole["window"],
        findings=[f.to_dict() for f in mine],
        counts=_counts(mine),
        runs=[row for row in whole["summary"]["runs"] if row.get("model") == model],
        skipped=[s for s in report.skipped if model in s],
    )


@router.get("/trends/{model:path}", response_model=Trends)
def trends(
    model: str = Path(max_length=512),
    days_back: int = Query(30, ge=1, le=366),
    store: Store = Depends(get_store),
) -> Trends:
    """Each run metric's trend for ``model`` and the trend findings."""
    report = _report(store, days_back)
    rows = report.to_dict()["summary"]["runs"]
    keys = ("group", "metric", "runs", "trend", "trend_pct_per_day", "trend_p_value")
    return Trends(
        model=model,
        days_back=days_back,
        trends=[{k: r.get(k) for k in keys} for r in rows if r.get("model") == model],
        findings=[f.to_dict() for f in report.findings if f.check == "trend" and _about(f, model)],
    )


@router.get("/summary", response_model=Summary)
def summary(
    days_back: int = Query(30, ge=1, le=366),
    store: Store = Depends(get_store),
) -> Summary:
    """Every finding of the checks counted by severity, model and check."""
    report = _report(store, days_back)
    by_model: dict[str, dict[str, int]] = {}
    by_check: dict[str, int] = {}
    for f in report.findings:
        key = f.subject.get("model") or "(none)"
        row = by_model.setdefault(key, {"critical": 0, "warning": 0})
        row[f.severity] += 1
        by_check[f.check] = by_check.get(f.check, 0) + 1
    return Summary(
        days_back=days_back,
        window=report.to_dict()["window"],
        findings=len(report.findings),
        worst=report.worst(),
        by_severity=_counts(report.findings),
        by_model=by_model,
        by_check=by_check,
        series_checked=report.series_checked,
    )
