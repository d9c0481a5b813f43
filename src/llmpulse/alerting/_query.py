"""Measuring a rule: rollups, metric points or check findings to the samples that cross it.

One :class:`EvalContext` per tick caches what it read, so a thousand rules over three windows
read the rollups three times (``Store.window_rollups``), never raw spans; metric points are read
once per (name, window) and check findings once per (window, baseline).

Check findings also outlive the tick: running ``llmpulse.checks`` over a window and its baseline
costs seconds (bench/alerting.py: 25 detection rules with four distinct window/baseline pairs
took a 1,000-rule tick from 0.28 s to 12 s), while a finding over a 1 h window barely moves in
30 s. So the findings of a pair are kept for a twelfth of its window (at least 1, at most 5
minutes, ``findings_max_age``) before the checks run again; and where a runner refreshes them in
the background (``AlertRunner``), the tick serves the aged findings and never waits for the
checks, except for a pair that has never run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmpulse.alerting._points import PointHistory, Series
from llmpulse.alerting._rules import COMPARATORS, SPAN_METRICS, Rule, Sample
from llmpulse.errors import ConfigError

if TYPE_CHECKING:
    from llmpulse.checks import Finding
    from llmpulse.store import SpanStats, Store
    from llmpulse.store.queries.rollups import WindowRollups

__all__ = ["ChecksRun", "EvalContext", "FindingsCache", "findings_max_age", "measure", "run_checks"]

#: Findings kept between ticks, by (window, baseline): (computed at, findings).
FindingsCache = dict[tuple[float, float], tuple[float, list["Finding"]]]
#: Runs the checks for (now, window, baseline) somewhere else (``ChecksProcess``).
ChecksRun = Callable[[float, float, float], list["Finding"]]


def findings_max_age(window_s: float) -> float:
    """How long findings over ``window_s`` are reused: a twelfth of it, within 1 to 5 minutes."""
    return min(300.0, max(60.0, window_s / 12.0))


_RANK = {"info": 0, "warning": 1, "critical": 2}
_BREAKER_OPEN = 2.0


class EvalContext:
    """What a rule may read at one evaluation time ``now``; reads are cached for the tick."""

    def __init__(
        self,
        store: Store,
        now: float,
        *,
        points: PointHistory | None = None,
        point_windows: Mapping[str, float] | None = None,
        findings: FindingsCache | None = None,
        background: bool = False,
        checks: ChecksRun | None = None,
    ) -> None:
        self.store = store
        #: Where a pair never run is run (in this process when ``None``).
        self.checks = checks
        #: Serve aged findings and list them in ``stale`` instead of running the checks now.
        self.background = background
        self.stale: set[tuple[float, float]] = set()
        self.now = now
        # Kept by the engine between ticks (each tick reads only new points); fresh otherwise.
        self._history = points or PointHistory(
            lambda name, start, end: store.metric_series(name, start, end)
        )
        self._point_windows = dict(point_windows or {})
        self._series: dict[str, dict[Any, Series]] = {}
        self._rollups: dict[float, WindowRollups] = {}
        self._stats: dict[tuple[Any, ...], list[SpanStats]] = {}
        self._findings: dict[tuple[float, float], list[Finding]] = {}
        self._kept: FindingsCache = {} if findings is None else findings  # the engine's

    def rollups(self, window_s: float) -> WindowRollups:
        """The rollup rows of ``[now - window_s, now)``."""
        found = self._rollups.get(window_s)
        if found is None:
            found = self._rollups[window_s] = self.store.window_rollups(
                self.now - window_s, self.now
            )
        return found

    def stats(
        self, window_s: float, group_by: Sequence[str] = (), **filters: Any
    ) -> list[SpanStats]:
        """``span_stats`` of the last ``window_s`` seconds, computed once per tick per question
        (rules that differ only in thresholds or severities share it)."""
        key = (
            window_s,
            tuple(group_by),
            tuple(sorted((k, v if isinstance(v, (str, type(None))) else tuple(v))
                         for k, v in filters.items())),
        )  # fmt: skip
        found = self._stats.get(key)
        if found is None:
            found = self._stats[key] = self.rollups(window_s).stats(group_by, filters)
        return found

    def point_series(self, name: str, window_s: float) -> dict[Any, Series]:
        """Every series of metric ``name``: points of the widest window rules ask for, anchors."""
        found = self._series.get(name)
        widest = max(window_s, self._point_windows.get(name, 0.0))
        if found is None or widest > self._point_windows.get(name, 0.0):
            self._point_windows[name] = widest
            found = self._series[name] = self._history.series(name, self.now - widest, self.now)
        return found

    def findings(self, window_s: float, baseline_s: float) -> list[Finding]:
        """Findings of ``llmpulse.checks.check_traffic`` over the last ``window_s`` seconds.

        With ``background`` set, findings past their age are still served (and their pair is
        listed in ``stale`` for a refresh outside the tick); only a pair never run is run now.
        """
        key = (window_s, baseline_s)
        found = self._findings.get(key)
        kept = self._kept.get(key)
        if found is None and kept is not None:
            fresh = 0 <= self.now - kept[0] < findings_max_age(window_s)
            if fresh or self.background:
                found = self._findings[key] = kept[1]
            if not fresh and self.background:
                self.stale.add(key)
        if found is None:
            if self.checks is not None:
                found = self.checks(self.now, window_s, baseline_s)
            else:
                found = run_checks(self.store, self.now, window_s, baseline_s)
            self._findings[key] = found
            self._kept[key] = (self.now, found)
        return found


def _span_value(metric: str, row: SpanStats, quota: float | None) -> float | None:
    values: dict[str, float | None] = {
        "latency_avg_ms": row.latency_ms_avg,
        "latency_p50_ms": row.p50_latency_ms,
        "latency_p95_ms": row.p95_latency_ms,
        "latency_p99_ms": row.p99_latency_ms,
        "ttft_avg_ms": row.ttft_ms_avg,
        "error_rate": row.error_rate,
        "errors": float(row.errors),
        "requests": float(row.calls),
        "tokens": float(row.total_tokens),
        "input_tokens": float(row.input_tokens),
        "output_tokens": float(row.output_tokens),
        "cost_usd": row.cost_usd,
        "token_quota": row.total_tokens / quota if quota else None,
    }
    return values[metric]


def _crossings(rule: Rule, labels: Mapping[str, str], value: float | None) -> list[Sample]:
    """One sample per severity whose threshold ``value`` crosses (critical and warning both)."""
    if value is None or not math.isfinite(value):
        return []
    compare = COMPARATORS[rule.op]
    return [
        Sample(dict(labels), value, severity, evidence={"threshold": threshold})
        for severity, threshold in rule.thresholds()
        if compare(value, threshold)
    ]


def _span_samples(rule: Rule, ctx: EvalContext) -> list[Sample]:
    assert rule.metric is not None
    rows = ctx.stats(rule.window_s, rule.by, **rule.filters)
    out: list[Sample] = []
    for row in rows:
        if rule.metric != "requests" and row.calls < rule.min_requests:
            continue
        labels = {k: row.group.get(k) or "" for k in rule.by}
        out += _crossings(rule, labels, _span_value(rule.metric, row, rule.quota))
    return out


def _series_value(agg: str, before: float | None, values: list[float]) -> float:
    if agg == "increase":
        rise, last = 0.0, before or 0.0
        for v in values:
            rise += v - last if v >= last else v  # a drop is a process restart from zero
            last = v
        return rise
    if agg == "open":
        return 1.0 if values and values[-1] >= _BREAKER_OPEN else 0.0
    if agg == "last":
        return values[-1]
    if agg == "sum":
        return math.fsum(values)
    if agg == "max":
        return max(values)
    if agg == "min":
        return min(values)
    return math.fsum(values) / len(values)


def _combine(agg: str, parts: list[tuple[float, int]]) -> float:
    """Several series of one label set: counts add up; levels keep the worst (or the mean)."""
    values = [v for v, _ in parts]
    if agg in ("increase", "sum"):
        return math.fsum(values)
    if agg in ("open", "max", "last"):
        return max(values)
    if agg == "min":
        return min(values)
    total = sum(n for _, n in parts)
    return math.fsum(v * n for v, n in parts) / total


def _point_samples(rule: Rule, ctx: EvalContext) -> list[Sample]:
    assert rule.point_name is not None and rule.point_agg is not None
    start = ctx.now - rule.window_s
    groups: dict[tuple[str, ...], list[tuple[float, int]]] = {}
    for key, series in ctx.point_series(rule.point_name, rule.window_s).items():
        labels = dict(key)
        if any(labels.get(k, "") not in v for k, v in rule.filters.items()):
            continue
        before, inside = series.window(start)
        if not inside:
            if rule.point_agg != "open" or before is None:
                continue
            inside = [before]  # a breaker's state holds until its next transition
        value = _series_value(rule.point_agg, before, inside)
        groups.setdefault(tuple(labels.get(k, "") for k in rule.by), []).append(
            (value, len(inside))
        )
    out: list[Sample] = []
    for group, parts in groups.items():
        labels = dict(zip(rule.by, group, strict=True))
        out += _crossings(rule, labels, _combine(rule.point_agg, parts))
    return out


def _absence_samples(rule: Rule, ctx: EvalContext) -> list[Sample]:
    rows = ctx.stats(rule.window_s, (), **rule.filters)
    if sum(r.calls for r in rows):
        return []
    # Like absent(): labels only from filters naming one value.
    labels = {k: v[0] for k, v in rule.filters.items() if len(v) == 1}
    return [Sample(labels, 0.0, rule.severity)]


def run_checks(store: Store, now: float, window_s: float, baseline_s: float) -> list[Finding]:
    """One run of ``llmpulse.checks.check_traffic`` for a detection window and baseline."""
    from llmpulse.checks import check_traffic

    result = check_traffic(store, now - window_s, now, baseline_start=now - window_s - baseline_s)
    return list(result.findings)


def _detection_samples(rule: Rule, ctx: EvalContext) -> list[Sample]:
    out: list[Sample] = []
    for f in ctx.findings(rule.window_s, rule.baseline_s):
        if f.check not in rule.checks or _RANK[f.severity] < _RANK[rule.severity]:
            continue
        confidence = f.confidence
        if rule.min_confidence > 0 and (confidence is None or confidence < rule.min_confidence):
            continue
        subject = {k: v for k, v in f.subject.items() if v is not None}
        if any(subject.get(k, "") not in v for k, v in rule.filters.items()):
            continue
        labels = {"check": f.check, "metric": f.metric, **subject}
        out.append(
            Sample(labels, f.current, f.severity, f.message, f.baseline, evidence=f.to_dict())
        )
    return out


def _callable_samples(rule: Rule, ctx: EvalContext) -> list[Sample]:
    assert rule.condition is not None
    result = rule.condition(ctx)
    if isinstance(result, bool):
        return [Sample({}, None, rule.severity)] if result else []
    samples: Iterable[Sample] = result
    out = []
    for s in samples:
        if not isinstance(s, Sample):
            raise ConfigError(f"rule {rule.name!r}: a condition must yield Sample, got {s!r}")
        out.append(s if s.severity else dataclasses.replace(s, severity=rule.severity))
    return out


def measure(rule: Rule, ctx: EvalContext) -> list[Sample]:
    """The samples of ``rule`` that cross a threshold now (each with its severity)."""
    if rule.type == "absence":
        return _absence_samples(rule, ctx)
    if rule.type == "detection":
        return _detection_samples(rule, ctx)
    if rule.type == "callable":
        return _callable_samples(rule, ctx)
    if rule.metric in SPAN_METRICS:
        return _span_samples(rule, ctx)
    return _point_samples(rule, ctx)
