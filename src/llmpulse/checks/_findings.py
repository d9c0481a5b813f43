"""What a check reports: a ``Finding`` with its evidence, and a ``CheckReport`` around them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

__all__ = [
    "CHECK_NAMES",
    "SEVERITIES",
    "CheckReport",
    "Finding",
    "Severity",
    "severity_at_least",
]

Severity = Literal["warning", "critical"]
SEVERITIES: tuple[str, ...] = ("warning", "critical")
CHECK_NAMES: tuple[str, ...] = (
    "latency_spike",
    "token_spike",
    "cost_spike",
    "error_rate_jump",
    "branch_shift",
    "regression",
    "trend",
)
_RANK = {"warning": 1, "critical": 2}


def severity_at_least(severity: str, level: str) -> bool:
    """Whether ``severity`` is ``level`` or worse (``level='never'`` is never reached)."""
    return _RANK.get(severity, 0) >= _RANK.get(level, math.inf)


def _clean(value: Any) -> Any:
    """JSON has no inf or NaN: both become None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def iso(ts: float) -> str:
    """A Unix time as an ISO-8601 UTC string to the second."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a check found, with the evidence a person needs to believe it.

    ``window_start``/``window_end`` bound the anomalous period (Unix seconds); ``baseline`` is
    the normal level and ``current`` the level inside the window, in the metric's units;
    ``change_pct`` is ``(current - baseline) / |baseline| * 100`` (``None`` from a baseline of 0).
    ``score`` is a robust z (anomalies), ``confidence`` is ``1 - p`` of the test behind the
    decision and ``p_value`` that p, when they exist; ``method`` is ``"statistical"`` or
    ``"rule"``; ``details`` holds what else the check measured (calls, buckets, detector).

        >>> f = Finding("latency_spike", "critical", {"model": "gpt-4o"}, "p95_latency_ms",
        ...             1000.0, 2800.0, 310.0, 1400.0, 351.6, "statistical", "p95 latency 5x")
        >>> f.to_dict()["window"]["start"]
        1000.0
    """

    check: str
    severity: Severity
    subject: dict[str, str | None]
    metric: str
    window_start: float
    window_end: float
    baseline: float | None
    current: float | None
    change_pct: float | None
    method: str
    message: str
    score: float | None = None
    confidence: float | None = None
    p_value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def overlaps(self, start: float, end: float, slack: float = 0.0) -> bool:
        """Whether the finding's window meets ``[start - slack, end + slack]``."""
        return self.window_start <= end + slack and self.window_end >= start - slack

    def to_dict(self) -> dict[str, Any]:
        """The finding as a JSON-ready dict (times in Unix seconds and ISO-8601 UTC)."""
        out: dict[str, Any] = _clean(
            {
                "check": self.check,
                "severity": self.severity,
                "subject": dict(self.subject),
                "metric": self.metric,
                "window": {
                    "start": self.window_start,
                    "end": self.window_end,
                    "start_iso": iso(self.window_start),
                    "end_iso": iso(self.window_end),
                },
                "baseline": self.baseline,
                "current": self.current,
                "change_pct": self.change_pct,
                "method": self.method,
                "score": self.score,
                "confidence": self.confidence,
                "p_value": self.p_value,
                "message": self.message,
                "details": dict(self.details),
            }
        )
        return out


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Everything one ``run_checks`` call found, over which window, and what it could not check.

    ``skipped`` lists series left out for too little data, in plain words; ``runs_summary``
    has one row per (group, model, metric) of the run checks.
    """

    start: float
    end: float
    findings: list[Finding]
    skipped: list[str] = field(default_factory=list)
    runs_summary: list[dict[str, Any]] = field(default_factory=list)
    series_checked: int = 0

    def worst(self) -> str | None:
        """The highest severity among the findings (None when there are none)."""
        return max((f.severity for f in self.findings), key=_RANK.__getitem__, default=None)

    def reaches(self, level: str) -> bool:
        """Whether any finding is at ``level`` (warning|critical) or worse."""
        return any(severity_at_least(f.severity, level) for f in self.findings)

    def counts(self) -> dict[str, int]:
        """Number of findings per severity."""
        return {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict: window, findings, summary, skipped series."""
        out: dict[str, Any] = _clean(
            {
                "window": {
                    "start": self.start,
                    "end": self.end,
                    "start_iso": iso(self.start),
                    "end_iso": iso(self.end),
                },
                "findings": [f.to_dict() for f in self.findings],
                "summary": {
                    "findings": len(self.findings),
                    **self.counts(),
                    "worst": self.worst(),
                    "series_checked": self.series_checked,
                    "runs": self.runs_summary,
                },
                "skipped": list(self.skipped),
            }
        )
        return out
