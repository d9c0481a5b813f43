"""Statistical checks over live traffic: spikes and jumps found in per-bucket series.

For each group (LLM calls per model and prompt version, workflow steps per name, branch
decisions per name and way) the store gives a bucket series; ``_incidents`` flags abnormal
buckets and merges them into incidents; each incident that reaches into the checked window
and moved the metric by at least the warning threshold becomes a ``Finding`` whose evidence
is the level outside the incident (baseline) against the level inside it (current).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from llmpulse.checks._config import LiveConfig, RateRule, SpikeRule
from llmpulse.checks._duration import format_duration
from llmpulse.checks._findings import Finding, iso
from llmpulse.checks._incidents import (
    Flags,
    Incident,
    binomial_p,
    continuous_flags,
    count_flags,
    merge_flags,
    pooled_rate,
    stands_out,
)
from llmpulse.checks._measures import (
    LLM_MEASURES,
    WORKFLOW_MEASURES,
    Measure,
    fmt_value,
    subject_label,
)
from llmpulse.checks._series import CountSeries, StatSeries, branch_series, span_series_by_group

__all__ = ["LiveResult", "statistical_findings"]


@dataclass(slots=True)
class LiveResult:
    """Findings of the live checks, the series left out (and why) and how many were checked."""

    findings: list[Finding] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    series_checked: int = 0


@dataclass(frozen=True, slots=True)
class _Rates:
    """A count series to test: ``check`` says which rule and direction apply."""

    check: Literal["error_rate_jump", "branch_shift"]
    series: CountSeries


def _pct(base: float, cur: float) -> float | None:
    return None if base == 0 else (cur - base) / abs(base) * 100.0


def _nanmax(a: np.ndarray) -> float | None:
    a = a[np.isfinite(a)]
    return float(a.max()) if a.size else None


def _window_text(start: float, end: float) -> str:
    return f"{iso(start)[11:16]}–{iso(end)[11:16]} UTC ({format_duration(round((end - start) / 60) * 60 or 60)})"


def _error_counts(series: StatSeries) -> CountSeries:
    hits = np.array([r.errors if r else 0 for r in series.rows], dtype=np.float64)
    trials = np.array([r.calls if r else 0 for r in series.rows], dtype=np.float64)
    return CountSeries(
        series.subject, series.step, series.starts, series.lo, series.hi, hits, trials
    )


def _values(series: StatSeries, measure: Measure, min_calls: int) -> np.ndarray:
    out = np.full(series.starts.size, np.nan)
    for i, r in enumerate(series.rows):
        if r is not None and measure.weight(r) >= min_calls:
            v = measure.value(r)
            out[i] = np.nan if v is None else v
    return out


def _spike_severity(change_pct: float | None, cur: float, rule: SpikeRule) -> str | None:
    pct = change_pct if change_pct is not None else (np.inf if cur > 0 else 0.0)
    if pct >= rule.critical_pct:
        return "critical"
    return "warning" if pct >= rule.warning_pct else None


def _rate_severity(delta: float, rule: RateRule) -> str | None:
    if abs(delta) >= rule.critical_delta:
        return "critical"
    return "warning" if abs(delta) >= rule.warning_delta else None


def _incidents(flags: Flags, cfg: LiveConfig) -> tuple[list[Incident], np.ndarray]:
    """Incidents long enough to report, and the mask of buckets that are not normal."""
    incidents = merge_flags(flags.flagged, gap=cfg.merge_gap_buckets, min_flagged=cfg.min_buckets)
    abnormal = flags.flagged.copy()
    for inc in incidents:
        abnormal |= inc.mask(flags.flagged.size)
    return incidents, abnormal


def _spike_findings(
    series: StatSeries,
    measure: Measure,
    values: np.ndarray,
    cfg: LiveConfig,
    window: tuple[float, float],
) -> list[Finding]:
    rule: SpikeRule = getattr(cfg, measure.check)
    flags = continuous_flags(
        values,
        series.starts,
        metric=measure.metric,
        threshold=cfg.anomaly_threshold,
        min_size=cfg.change_point_min_size,
    )
    incidents, abnormal = _incidents(flags, cfg)
    outside = values[~abnormal & np.isfinite(values)]
    out = []
    for inc in incidents:
        start, end = series.bucket_start(inc.first), series.bucket_end(inc.last)
        if outside.size < cfg.min_points // 2 or not (start < window[1] and end > window[0]):
            continue
        mask = inc.mask(values.size) & np.isfinite(values)
        base, cur = float(np.median(outside)), float(np.median(values[mask]))
        change = _pct(base, cur)
        severity = _spike_severity(change, cur, rule)
        if severity is None or cur - base < rule.min_increase:
            continue
        score, conf = _nanmax(flags.score[mask]), _nanmax(flags.confidence[mask])
        if conf is None and not stands_out(values[mask], outside):
            continue  # a short spike no higher than normal times reach: the noise is just lumpy
        calls = sum(measure.weight(series.rows[i]) for i in np.flatnonzero(mask))
        ratio = f"{cur / base:.1f}×" if base > 0 else "up from 0"
        message = (
            f"{measure.label} of {subject_label(series.subject)} rose {ratio} "
            f"({fmt_value(base, measure.unit)} → {fmt_value(cur, measure.unit)}) {_window_text(start, end)}; "
            f"{inc.flagged} of {inc.last - inc.first + 1} buckets of {format_duration(series.step)} flagged"
            + (f", robust z up to {score:.1f}" if score is not None else "")
            + (" (a change of level)" if conf is not None else "")
        )
        details = {
            "bucket_seconds": series.step,
            "buckets": inc.last - inc.first + 1,
            "flagged_buckets": inc.flagged,
            "calls": calls,
            "baseline_buckets": int(outside.size),
            "unit": measure.unit,
            "detectors": [
                d for d, x in (("anomaly", score), ("change_point", conf)) if x is not None
            ],
        }
        out.append(
            Finding(
                measure.check,
                severity,
                dict(series.subject),
                measure.metric,
                start,
                end,
                base,
                cur,  # type: ignore[arg-type]
                change,
                "statistical",
                message,
                score=score,
                confidence=conf,
                details=details,
            )
        )
    return out


def _rate_findings(
    target: _Rates, cfg: LiveConfig, alpha: float, window: tuple[float, float]
) -> list[Finding]:
    s = target.series
    rule: RateRule = getattr(cfg, target.check)
    direction: Literal["up", "both"] = "up" if target.check == "error_rate_jump" else "both"
    flags = count_flags(
        s.hits, s.trials, alpha=alpha, min_delta=rule.warning_delta, direction=direction
    )
    incidents, abnormal = _incidents(flags, cfg)
    out_mask = ~abnormal & (s.trials > 0)
    k_out, n_out = float(s.hits[out_mask].sum()), float(s.trials[out_mask].sum())
    out = []
    for inc in incidents:
        start, end = s.bucket_start(inc.first), s.bucket_end(inc.last)
        if n_out < cfg.min_calls or not (start < window[1] and end > window[0]):
            continue
        mask = inc.mask(s.hits.size)
        k_in, n_in = float(s.hits[mask].sum()), float(s.trials[mask].sum())
        base, cur = k_out / n_out, k_in / n_in
        p = float(
            binomial_p(
                int(k_in), int(n_in), pooled_rate(s.hits[out_mask], s.trials[out_mask]), direction
            )
        )
        severity = _rate_severity(cur - base, rule)
        if severity is None or p >= alpha:
            continue
        out.append(
            _rate_finding(target, inc, (start, end), (k_in, n_in, k_out, n_out), p, severity)
        )
    return out


def _rate_finding(
    target: _Rates,
    inc: Incident,
    span: tuple[float, float],
    counts: tuple[float, ...],
    p: float,
    severity: str,
) -> Finding:
    s = target.series
    k_in, n_in, k_out, n_out = counts
    base, cur = k_out / n_out, k_in / n_in
    if target.check == "error_rate_jump":
        metric = "error_rate"
        what = f"error rate of {subject_label(s.subject)} jumped"
        evidence = f"{k_in:.0f} of {n_in:.0f} calls failed"
    else:
        metric = "branch_rate"
        what = f"branch {s.subject.get('name')!r} went {s.subject.get('branch')!r} {'more' if cur > base else 'less'} often:"
        evidence = f"{k_in:.0f} of {n_in:.0f} decisions"
    message = (
        f"{what} {fmt_value(base, 'rate')} → {fmt_value(cur, 'rate')} {_window_text(*span)} "
        f"({evidence}; binomial p={p:.2g} against the baseline)"
    )
    details = {
        "bucket_seconds": s.step,
        "buckets": inc.last - inc.first + 1,
        "flagged_buckets": inc.flagged,
        "hits": k_in,
        "trials": n_in,
        "baseline_hits": k_out,
        "baseline_trials": n_out,
        "unit": "rate",
        "detectors": ["binomial"],
    }
    return Finding(
        target.check,
        severity,
        dict(s.subject),
        metric,
        span[0],
        span[1],
        base,
        cur,  # type: ignore[arg-type]
        _pct(base, cur),
        "statistical",
        message,
        confidence=1.0 - p,
        p_value=p,
        details=details,
    )


def _usable(values: np.ndarray) -> int:
    return int(np.isfinite(values).sum())


def statistical_findings(
    store: Any, lo: float, hi: float, window: tuple[float, float], cfg: LiveConfig
) -> LiveResult:
    """Run every enabled live check over the series in ``[lo, hi)``, reporting incidents in ``window``."""
    result = LiveResult()
    spikes: list[tuple[StatSeries, Measure, np.ndarray]] = []
    rates: list[_Rates] = []
    scopes = (
        (cfg.llm_group_by, {"kind": "llm"}, LLM_MEASURES),
        (("name", "kind"), {"kind": list(cfg.workflow_kinds)}, WORKFLOW_MEASURES),
    )
    for group_by, filters, measures in scopes:
        if not filters["kind"]:
            continue
        for series in span_series_by_group(store, lo, hi, group_by, filters, cfg):
            for m in measures:
                if getattr(cfg, m.check).enabled:
                    _add_spike(result, spikes, series, m, cfg)
            if cfg.error_rate_jump.enabled:
                _add_rates(result, rates, _Rates("error_rate_jump", _error_counts(series)), cfg)
    if cfg.branch_shift.enabled:
        for cs in branch_series(store, lo, hi, cfg):
            _add_rates(result, rates, _Rates("branch_shift", cs), cfg)
    result.series_checked = len(spikes) + len(rates)
    for series, m, values in spikes:
        result.findings.extend(_spike_findings(series, m, values, cfg, window))
    alpha = cfg.alpha / max(1, len(rates))  # Bonferroni over the count series
    for target in rates:
        result.findings.extend(_rate_findings(target, cfg, alpha, window))
    return result


def _add_spike(
    result: LiveResult, spikes: list[Any], series: StatSeries, m: Measure, cfg: LiveConfig
) -> None:
    values = _values(series, m, cfg.min_calls_per_bucket)
    usable = _usable(values)
    if usable >= cfg.min_points:
        spikes.append((series, m, values))
    elif any(r is not None and m.value(r) is not None for r in series.rows):
        result.skipped.append(
            f"{m.metric} of {subject_label(series.subject)}: {usable} buckets of {format_duration(series.step)} "
            f"with >= {cfg.min_calls_per_bucket} calls, needs {cfg.min_points}"
        )


def _add_rates(result: LiveResult, rates: list[_Rates], target: _Rates, cfg: LiveConfig) -> None:
    s = target.series
    if int((s.trials > 0).sum()) >= cfg.min_points and s.trials.sum() >= cfg.min_calls:
        rates.append(target)
    elif s.trials.sum() > 0:
        what = "error_rate" if target.check == "error_rate_jump" else "branch_rate"
        result.skipped.append(
            f"{what} of {subject_label(s.subject)}: {int((s.trials > 0).sum())} buckets with calls "
            f"({int(s.trials.sum())} calls), needs {cfg.min_points} buckets and {cfg.min_calls} calls"
        )
