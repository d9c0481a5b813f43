"""Spikes of continuous metrics (p95 latency, tokens and cost per call) in a bucket series.

Abnormal buckets come from ``llmpulse.detection`` (see ``_incidents.continuous_flags``); each
incident's evidence is the median of the normal buckets (baseline) against the median inside
it (current). A short spike that no change point backs must also clear the far-out fence of
the normal buckets, and every spike must rise by ``warning_pct`` and ``min_increase``.
"""

from __future__ import annotations

import numpy as np

from llmpulse.checks._config import LiveConfig, SpikeRule
from llmpulse.checks._duration import format_duration
from llmpulse.checks._evidence import Span, incidents, pct, span_of, spike_severity
from llmpulse.checks._findings import Finding, Severity
from llmpulse.checks._incidents import Incident, continuous_flags, stands_out
from llmpulse.checks._measures import Measure, fmt_value, subject_label
from llmpulse.checks._series import StatSeries

__all__ = ["bucket_values", "spike_findings"]


def bucket_values(series: StatSeries, measure: Measure, min_calls: int) -> np.ndarray:
    """The measure per bucket; NaN where fewer than ``min_calls`` calls back it."""
    out = np.full(series.starts.size, np.nan)
    for i, r in enumerate(series.rows):
        if r is not None and measure.weight(r) >= min_calls:
            v = measure.value(r)
            out[i] = np.nan if v is None else v
    return out


def _nanmax(a: np.ndarray) -> float | None:
    a = a[np.isfinite(a)]
    return float(a.max()) if a.size else None


def _message(
    series: StatSeries,
    m: Measure,
    levels: tuple[float, float],
    span: Span,
    inc: Incident,
    score: float | None,
    level_change: bool,
) -> str:
    base, cur = levels
    ratio = f"{cur / base:.1f}×" if base > 0 else "up from 0"
    return (
        f"{m.label} of {subject_label(series.subject)} rose {ratio} "
        f"({fmt_value(base, m.unit)} → {fmt_value(cur, m.unit)}) {span.text()}; "
        f"{inc.flagged} of {inc.last - inc.first + 1} buckets of {format_duration(series.step)} flagged"
        + (f", robust z up to {score:.1f}" if score is not None else "")
        + (" (a change of level)" if level_change else "")
    )


def _finding(
    series: StatSeries,
    m: Measure,
    inc: Incident,
    span: Span,
    levels: tuple[float, float],
    severity: Severity,
    evidence: tuple[float | None, float | None],
    calls: int,
    baseline_buckets: int,
) -> Finding:
    score, conf = evidence
    base, cur = levels
    return Finding(
        check=m.check,
        severity=severity,
        subject=dict(series.subject),
        metric=m.metric,
        window_start=span.start,
        window_end=span.end,
        baseline=base,
        current=cur,
        change_pct=pct(base, cur),
        method="statistical",
        message=_message(series, m, levels, span, inc, score, conf is not None),
        score=score,
        confidence=conf,
        details={
            "bucket_seconds": series.step,
            "buckets": inc.last - inc.first + 1,
            "flagged_buckets": inc.flagged,
            "calls": calls,
            "baseline_buckets": baseline_buckets,
            "unit": m.unit,
            "ongoing": span.ongoing,
            "detectors": [
                d for d, x in (("anomaly", score), ("change_point", conf)) if x is not None
            ],
        },
    )


def spike_findings(
    series: StatSeries, m: Measure, values: np.ndarray, cfg: LiveConfig, window: tuple[float, float]
) -> list[Finding]:
    """Findings for the spikes of ``values`` (one measure of one group) that reach into ``window``."""
    rule: SpikeRule = getattr(cfg, m.check)
    usable = np.isfinite(values)
    flags = continuous_flags(
        values,
        series.starts,
        metric=m.metric,
        threshold=cfg.anomaly_threshold,
        min_size=cfg.change_point_min_size,
    )
    found, abnormal = incidents(flags, usable, cfg)
    outside = values[~abnormal & usable]
    out = []
    for inc in found:
        span = span_of(series, inc, usable)
        if outside.size < cfg.min_points // 2 or not span.meets(window):
            continue
        mask = inc.mask(values.size) & usable
        base, cur = float(np.median(outside)), float(np.median(values[mask]))
        severity = spike_severity(pct(base, cur), cur, rule)
        if severity is None or cur - base < rule.min_increase:
            continue
        score, conf = _nanmax(flags.score[mask]), _nanmax(flags.confidence[mask])
        if conf is None and not stands_out(values[mask], outside):
            continue  # a short spike no higher than normal times reach: the noise is just lumpy
        calls = sum(m.weight(series.rows[i]) for i in np.flatnonzero(mask))
        out.append(
            _finding(
                series, m, inc, span, (base, cur), severity, (score, conf), calls, int(outside.size)
            )
        )
    return out
