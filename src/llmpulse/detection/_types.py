"""Result types of detection: small frozen dataclasses, safe to log, compare and serialise."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Direction = Literal["up", "down"]
Severity = Literal["none", "warning", "critical"]
TrendDirection = Literal["up", "down", "flat"]


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One point far outside the series' normal behaviour.

    ``index`` is the point's position in the ``values`` the caller passed; ``expected`` is the
    robust baseline at that point (original units); ``score`` is the distance from it in robust
    noise units (positive, after the variance-stabilising transform).

        >>> a = Anomaly(index=7, value=4100.0, expected=850.0, score=21.3, direction="up")
        >>> a.direction
        'up'
    """

    index: int
    value: float
    expected: float
    score: float
    direction: Direction
    timestamp: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The anomaly as a plain dict (JSON-ready)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ChangePoint:
    """The first point of a new, persistent level of the series.

    ``before`` and ``after`` are the medians of the neighbouring segments (original units);
    ``change_pct`` is ``(after - before) / |before| * 100`` (``None`` when ``before`` is 0);
    ``confidence`` is ``1 - p`` of a Mann–Whitney test between the two segments.
    """

    index: int
    before: float
    after: float
    change_pct: float | None
    confidence: float
    direction: Direction
    timestamp: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The change point as a plain dict (JSON-ready)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RegressionResult:
    """Whether ``current`` got worse than ``baseline``, by how much and how sure we are.

    ``change_pct`` is signed in the metric's own terms (latency +20 % is ``20.0``);
    ``direction_is_bad`` says whether the observed move is the harmful one for this metric.
    """

    regressed: bool
    change_pct: float | None
    severity: Severity
    confidence: float
    p_value: float | None
    method: str
    direction_is_bad: bool
    higher_is_better: bool
    baseline_mean: float
    current_mean: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict (JSON-ready)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TrendResult:
    """The slope of a series per day, whether it is significant, and a plain-words summary."""

    slope_per_day: float
    change_pct_per_day: float | None
    p_value: float
    significant: bool
    direction: TrendDirection
    n_points: int
    summary: str

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict (JSON-ready)."""
        return asdict(self)
