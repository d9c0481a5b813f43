"""Regressions and trends over benchmark and experiment runs, per (experiment or kind, model).

For every metric the runs of a group report: the latest ``current_runs`` runs are compared
with up to ``baseline_runs`` runs before them by ``detect_regression`` (the metric's method,
confidence and thresholds), and ``analyze_trend`` fits the slope over every run in the
lookback. With ``adjust_for_multiple_tests`` the confidence is Bonferroni-corrected over all
the (group, model, metric) series tested, so checking fifty metrics does not raise fifty times
as many false alarms. Every series also gets a row in the summary, found or not.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmpulse.checks._config import MetricRule, RunsConfig
from llmpulse.checks._findings import Finding, Severity
from llmpulse.checks._reader import StoreReader
from llmpulse.detection import analyze_trend, detect_regression
from llmpulse.errors import DetectionInputError

__all__ = ["RunsResult", "check_runs"]

_DAY = 86400.0


@dataclass(slots=True)
class RunsResult:
    """Findings over runs, one summary row per (group, model, metric), and what was skipped."""

    findings: list[Finding] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Series:
    subject: dict[str, str | None]
    metric: str
    rule: MetricRule
    times: np.ndarray  # started_at of each run, oldest first
    ends: np.ndarray  # ended_at (or started_at)
    values: np.ndarray


def _collect(runs: list[Any], cfg: RunsConfig, now: float) -> list[_Series]:
    groups: dict[tuple[str, str | None], list[Any]] = defaultdict(list)
    for run in runs:
        if run.status == "failed" or (cfg.kinds and run.kind not in cfg.kinds):
            continue
        groups[(run.experiment or run.kind, run.model)].append(run)
    out = []
    for (group, model), members in sorted(groups.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        members.sort(key=lambda r: r.started_at)
        for metric in sorted({m for r in members for m in r.metrics}):
            rule = cfg.rule_for(metric)
            since = now - (rule.lookback_days or cfg.lookback_days) * _DAY
            pts = [
                (r.started_at, r.ended_at or r.started_at, float(r.metrics[metric]))
                for r in members
                if metric in r.metrics
                and r.started_at >= since
                and math.isfinite(float(r.metrics[metric]))
            ]
            if pts:
                t, e, v = (np.array(x, dtype=np.float64) for x in zip(*pts, strict=True))
                out.append(_Series({"group": group, "model": model}, metric, rule, t, e, v))
    return out


def _label(s: _Series) -> str:
    """``gpt-4o in nightly-eval``: the detector's own sentence names the metric."""
    return f"{s.subject['model'] or '(no model)'} in {s.subject['group']}"


def _regression(s: _Series, cfg: RunsConfig, tests: int) -> tuple[Finding | None, dict[str, Any]]:
    """The regression check of one series and its summary fields."""
    rule = s.rule
    cur_n = min(cfg.current_runs, s.values.size - 1) if s.values.size > 1 else 0
    base = s.values[: s.values.size - cur_n]
    if rule.method not in ("changepoint", "change_point"):
        base = base[-cfg.baseline_runs :]
    cur = s.values[s.values.size - cur_n :]
    if cur_n == 0 or base.size < rule.min_points:
        return None, {
            "status": "insufficient",
            "why": f"{base.size} baseline runs, needs {rule.min_points}",
        }
    alpha = (1.0 - rule.confidence) / (tests if cfg.adjust_for_multiple_tests else 1)
    try:
        r = detect_regression(
            base,
            cur,
            method=rule.method,
            metric=s.metric,
            higher_is_better=rule.higher_is_better,
            confidence_level=1.0 - alpha,
            warning_pct=rule.warning_pct,
            critical_pct=rule.critical_pct,
        )
    except DetectionInputError as exc:
        return None, {"status": "insufficient", "why": str(exc)}
    row = {
        "status": r.severity if r.regressed else "ok",
        "baseline": r.baseline_mean,
        "current": r.current_mean,
        "change_pct": r.change_pct,
        "p_value": r.p_value,
        "method": r.method,
    }
    if not r.regressed or r.severity == "none":
        return None, row
    severity: Severity = r.severity
    start, end = float(s.times[-cur_n]), float(s.ends[-1])
    finding = Finding(
        "regression",
        severity,
        dict(s.subject),
        s.metric,
        start,
        end,
        r.baseline_mean,
        r.current_mean,
        r.change_pct,
        "rule" if r.method == "threshold" else "statistical",
        f"{_label(s)}: {r.message} (last {cur_n} runs against the {base.size} before)",
        confidence=r.confidence,
        p_value=r.p_value,
        details={
            "test": r.method,
            "baseline_runs": int(base.size),
            "current_runs": cur_n,
            "higher_is_better": r.higher_is_better,
        },
    )
    return finding, row


def _trend(s: _Series, cfg: RunsConfig, tests: int) -> tuple[Finding | None, dict[str, Any]]:
    """The trend check of one series and its summary fields."""
    if not cfg.trend or s.values.size < cfg.trend_min_points or np.ptp(s.times) <= 0:
        return None, {}
    rule = s.rule
    alpha = (1.0 - rule.confidence) / (tests if cfg.adjust_for_multiple_tests else 1)
    t = analyze_trend(
        s.values, s.times, metric=s.metric, higher_is_better=rule.higher_is_better, alpha=alpha
    )
    row = {
        "trend_pct_per_day": t.change_pct_per_day,
        "trend_p_value": t.p_value,
        "trend": t.direction if t.significant else "flat",
    }
    if not t.significant or t.worsening is False:
        return None, row
    days = (s.times - s.times[0]) / _DAY
    first = float(np.median(s.values - t.slope_per_day * days))
    last = first + t.slope_per_day * float(days[-1])
    change = None if first == 0 else (last - first) / abs(first) * 100.0
    harm = abs(change) if change is not None else math.inf
    severity: Severity | None = (
        "critical" if harm >= rule.critical_pct else "warning" if harm >= rule.warning_pct else None
    )
    if severity is None:
        return None, row
    finding = Finding(
        "trend",
        severity,
        dict(s.subject),
        s.metric,
        float(s.times[0]),
        float(s.ends[-1]),
        first,
        last,
        change,
        "statistical",
        f"{_label(s)}: {t.summary}; {change:+.1f}% over {days[-1]:.1f} days ({s.values.size} runs)"
        if change is not None
        else f"{_label(s)}: {t.summary}",
        confidence=1.0 - t.p_value,
        p_value=t.p_value,
        details={"slope_per_day": t.slope_per_day, "runs": int(s.values.size)},
    )
    return finding, row


def check_runs(store: StoreReader, *, now: float, config: RunsConfig | None = None) -> RunsResult:
    """Regression and trend findings over the runs started in the lookback before ``now``."""
    cfg = config or RunsConfig()
    result = RunsResult()
    if not cfg.enabled:
        return result
    longest = max([cfg.lookback_days, *(r.lookback_days or 0 for r in cfg.metrics.values())])
    series = _collect(store.list_runs(since=now - longest * _DAY, until=now), cfg, now)
    tests = max(1, len(series))
    for s in series:
        regression, row = _regression(s, cfg, tests)
        trend, trend_row = _trend(s, cfg, tests)
        result.findings.extend(f for f in (regression, trend) if f is not None)
        if row.get("status") == "insufficient":
            result.skipped.append(f"regression of {s.metric} of {_label(s)}: {row['why']}")
        result.summary.append(
            {**s.subject, "metric": s.metric, "runs": int(s.values.size), **row, **trend_row}
        )
    return result
