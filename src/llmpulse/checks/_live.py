"""Statistical checks over live traffic: spikes and jumps found in per-bucket series.

For each group — LLM calls per model and prompt version, workflow steps (chain, agent, task
spans) per name, branch decisions per name and way — the store gives a bucket series.
Continuous metrics go to ``_spikes``, counts to ``_jumps``; each incident that reaches into
the checked window and moved its metric enough becomes a ``Finding`` with its evidence.
Series with too little data are not judged; they are listed in ``skipped`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from llmpulse.checks._config import LiveConfig
from llmpulse.checks._duration import format_duration
from llmpulse.checks._findings import Finding
from llmpulse.checks._jumps import RateTarget, jump_findings
from llmpulse.checks._measures import Measure, span_scopes, subject_label
from llmpulse.checks._reader import StoreReader
from llmpulse.checks._series import CountSeries, StatSeries, branch_series, span_series_by_group
from llmpulse.checks._spikes import bucket_values, spike_findings

__all__ = ["LiveResult", "statistical_findings"]


@dataclass(slots=True)
class LiveResult:
    """Findings of the live checks, the series left out (and why) and how many were checked."""

    findings: list[Finding] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    series_checked: int = 0


@dataclass(slots=True)
class _Plan:
    """Every series worth judging, collected before judging so the count tests share alpha."""

    spikes: list[tuple[StatSeries, Measure, np.ndarray]] = field(default_factory=list)
    rates: list[RateTarget] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _error_counts(series: StatSeries) -> CountSeries:
    hits = np.array([r.errors if r else 0 for r in series.rows], dtype=np.float64)
    trials = np.array([r.calls if r else 0 for r in series.rows], dtype=np.float64)
    return CountSeries(
        series.subject, series.step, series.starts, series.lo, series.hi, hits, trials
    )


def _plan_spike(plan: _Plan, series: StatSeries, m: Measure, cfg: LiveConfig) -> None:
    values = bucket_values(series, m, m.min_calls(cfg.min_calls_per_bucket))
    usable = int(np.isfinite(values).sum())
    if usable >= cfg.min_points:
        plan.spikes.append((series, m, values))
    elif any(r is not None and m.value(r) is not None for r in series.rows):
        plan.skipped.append(
            f"{m.metric} of {subject_label(series.subject)}: {usable} buckets of "
            f"{format_duration(series.step)} with >= {m.min_calls(cfg.min_calls_per_bucket)} calls, "
            f"needs {cfg.min_points}"
        )


def _plan_rates(plan: _Plan, target: RateTarget, cfg: LiveConfig) -> None:
    s = target.series
    buckets, calls = int((s.trials > 0).sum()), int(s.trials.sum())
    if buckets >= cfg.min_points and calls >= cfg.min_calls:
        plan.rates.append(target)
    elif calls > 0:
        plan.skipped.append(
            f"{target.metric} of {subject_label(s.subject)}: {buckets} buckets with calls ({calls} calls), "
            f"needs {cfg.min_points} buckets and {cfg.min_calls} calls"
        )


def _plan(store: StoreReader, lo: float, hi: float, cfg: LiveConfig) -> _Plan:
    plan = _Plan()
    for group_by, filters, measures in span_scopes(cfg):
        for series in span_series_by_group(store, lo, hi, group_by, filters, cfg):
            for m in measures:
                if getattr(cfg, m.check).enabled:
                    _plan_spike(plan, series, m, cfg)
            if cfg.error_rate_jump.enabled:
                _plan_rates(plan, RateTarget("error_rate_jump", _error_counts(series)), cfg)
    if cfg.branch_shift.enabled:
        for counts in branch_series(store, lo, hi, cfg):
            _plan_rates(plan, RateTarget("branch_shift", counts), cfg)
    return plan


def statistical_findings(
    store: StoreReader, lo: float, hi: float, window: tuple[float, float], cfg: LiveConfig
) -> LiveResult:
    """Judge every series in ``[lo, hi)``; report the incidents that reach into ``window``."""
    plan = _plan(store, lo, hi, cfg)
    result = LiveResult(skipped=plan.skipped, series_checked=len(plan.spikes) + len(plan.rates))
    for series, m, values in plan.spikes:
        result.findings.extend(spike_findings(series, m, values, cfg, window))
    alpha = cfg.alpha / max(1, len(plan.rates))  # Bonferroni over the count series
    for target in plan.rates:
        result.findings.extend(jump_findings(target, cfg, alpha, window))
    return result
