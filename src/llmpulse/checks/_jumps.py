"""Jumps of rates judged on their counts: error rate per group, branch rate per decision.

Abnormal buckets come from the binomial scan (``_incidents.count_flags``); each incident is
then tested as a whole (its pooled counts against the rate of the normal buckets) at the
family-wise level shared by every count series, and reported when it moved the rate by at
least ``warning_delta``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from llmpulse.checks._config import LiveConfig, RateRule
from llmpulse.checks._evidence import (
    Span,
    branch_origin,
    incidents,
    pct,
    rate_severity,
    span_of,
)
from llmpulse.checks._findings import Finding, Severity
from llmpulse.checks._incidents import Incident, binomial_p, count_flags, pooled_rate
from llmpulse.checks._measures import fmt_value, subject_label
from llmpulse.checks._series import CountSeries

__all__ = ["RateTarget", "jump_findings"]


@dataclass(frozen=True, slots=True)
class RateTarget:
    """A count series and the check that judges it (which sets the rule and the direction)."""

    check: Literal["error_rate_jump", "branch_shift"]
    series: CountSeries

    @property
    def metric(self) -> str:
        """``error_rate`` or ``branch_rate``."""
        return "error_rate" if self.check == "error_rate_jump" else "branch_rate"


def _message(t: RateTarget, counts: tuple[float, float, float, float], span: Span, p: float) -> str:
    k_in, n_in, k_out, n_out = counts
    base, cur = k_out / n_out, k_in / n_in
    subject = t.series.subject
    if t.check == "error_rate_jump":
        what = f"error rate of {subject_label(subject)} jumped"
        evidence = f"{k_in:.0f} of {n_in:.0f} calls failed"
    else:
        more = "more" if cur > base else "less"
        what = f"branch {subject.get('name')!r} went {subject.get('branch')!r} {more} often:"
        evidence = f"{k_in:.0f} of {n_in:.0f} decisions"
    return (
        f"{what} {fmt_value(base, 'rate')} → {fmt_value(cur, 'rate')} {span.text()} "
        f"({evidence}; binomial p={p:.2g} against the baseline)"
    )


def _finding(
    t: RateTarget,
    inc: Incident,
    span: Span,
    counts: tuple[float, float, float, float],
    p: float,
    severity: Severity,
) -> Finding:
    k_in, n_in, k_out, n_out = counts
    base, cur = k_out / n_out, k_in / n_in
    return Finding(
        check=t.check,
        severity=severity,
        subject=dict(t.series.subject),
        metric=t.metric,
        window_start=span.start,
        window_end=span.end,
        baseline=base,
        current=cur,
        change_pct=pct(base, cur),
        method="statistical",
        message=_message(t, counts, span, p),
        confidence=1.0 - p,
        p_value=p,
        details={
            "bucket_seconds": t.series.step,
            "buckets": inc.last - inc.first + 1,
            "flagged_buckets": inc.flagged,
            "hits": k_in,
            "trials": n_in,
            "baseline_hits": k_out,
            "baseline_trials": n_out,
            "unit": "rate",
            "ongoing": span.ongoing,
            "detectors": ["binomial"],
            **(branch_origin(t.series.subject.get("name")) if t.check == "branch_shift" else {}),
        },
    )


def jump_findings(
    t: RateTarget, cfg: LiveConfig, alpha: float, window: tuple[float, float]
) -> list[Finding]:
    """Findings for the rate jumps of one count series that reach into ``window``."""
    s = t.series
    rule: RateRule = getattr(cfg, t.check)
    direction: Literal["up", "both"] = "up" if t.check == "error_rate_jump" else "both"
    usable = s.trials > 0
    reported = (s.starts + s.step > window[0]) & (s.starts < window[1])
    flags = count_flags(
        s.hits,
        s.trials,
        alpha=alpha,
        min_delta=rule.warning_delta,
        direction=direction,
        reported=reported,
    )
    found, abnormal = incidents(flags, usable, cfg)
    normal = ~abnormal & usable
    k_out, n_out = float(s.hits[normal].sum()), float(s.trials[normal].sum())
    out = []
    for inc in found:
        span = span_of(s, inc, usable)
        if n_out < cfg.min_calls or not span.meets(window):
            continue
        mask = inc.mask(s.hits.size)
        k_in, n_in = float(s.hits[mask].sum()), float(s.trials[mask].sum())
        p0 = pooled_rate(s.hits[normal], s.trials[normal])
        p = float(np.asarray(binomial_p(int(k_in), int(n_in), p0, direction)))
        severity = rate_severity(k_in / n_in - k_out / n_out, rule)
        if severity is not None and p < alpha:
            out.append(_finding(t, inc, span, (k_in, n_in, k_out, n_out), p, severity))
    return out
