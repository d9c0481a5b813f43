"""What the live checks share: incidents cut from flags, their time span, severities, wording."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmpulse.checks._config import LiveConfig, RateRule, SpikeRule
from llmpulse.checks._duration import format_duration
from llmpulse.checks._findings import Severity, iso
from llmpulse.checks._incidents import Flags, Incident, merge_flags
from llmpulse.checks._series import Grid

__all__ = [
    "Span",
    "branch_origin",
    "incidents",
    "pct",
    "rate_severity",
    "span_of",
    "spike_severity",
]


def branch_origin(name: object) -> dict[str, str]:
    """Where a branch decision belongs: ``{"workflow": ..., "decision_point": ...}`` for a branch
    span named ``"<workflow>:<node>"`` (what ``record_branch`` and the LangGraph recording
    write), so a branch_shift finding says which workflow's route moved; ``{}`` otherwise."""
    if not isinstance(name, str):
        return {}
    workflow, sep, node = name.rpartition(":")
    return {"workflow": workflow, "decision_point": node} if sep and workflow and node else {}


@dataclass(frozen=True, slots=True)
class Span:
    """When an incident happened; ``ongoing`` when it lasts to the end of the data."""

    start: float
    end: float
    ongoing: bool

    def meets(self, window: tuple[float, float]) -> bool:
        """Whether the incident reaches into ``window``."""
        return self.start < window[1] and self.end > window[0]

    def text(self) -> str:
        """``13:42–14:10 UTC (28m)``, plus ``, still going`` when ongoing."""
        minutes = max(1, round((self.end - self.start) / 60))
        tail = ", still going at the end of the data" if self.ongoing else ""
        return f"{iso(self.start)[11:16]}–{iso(self.end)[11:16]} UTC ({format_duration(minutes * 60)}{tail})"


def span_of(series: Grid, inc: Incident, usable: np.ndarray) -> Span:
    """The time span of ``inc``: from its first bucket to its last, or to the series' end."""
    ongoing = not usable[inc.last + 1 :].any()
    end = series.hi if ongoing else series.bucket_end(inc.last)
    return Span(series.bucket_start(inc.first), end, ongoing)


def incidents(
    flags: Flags, usable: np.ndarray, cfg: LiveConfig
) -> tuple[list[Incident], np.ndarray]:
    """Incidents long enough to report, and the mask of every bucket that is not normal."""
    found = merge_flags(flags.flagged, usable, gap=cfg.merge_gap_buckets, min_run=cfg.min_buckets)
    abnormal = flags.flagged.copy()
    for inc in found:
        abnormal |= inc.mask(flags.flagged.size)
    return found, abnormal


def pct(base: float, cur: float) -> float | None:
    """Relative change in percent; None from a baseline of 0."""
    return None if base == 0 else (cur - base) / abs(base) * 100.0


def spike_severity(change_pct: float | None, cur: float, rule: SpikeRule) -> Severity | None:
    """critical / warning / not worth reporting, from the percent rise."""
    rise = change_pct if change_pct is not None else (np.inf if cur > 0 else 0.0)
    if rise >= rule.critical_pct:
        return "critical"
    return "warning" if rise >= rule.warning_pct else None


def rate_severity(delta: float, rule: RateRule) -> Severity | None:
    """critical / warning / not worth reporting, from the move in rate units."""
    if abs(delta) >= rule.critical_delta:
        return "critical"
    return "warning" if abs(delta) >= rule.warning_delta else None
