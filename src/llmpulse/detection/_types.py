"""Result types of detection: small frozen dataclasses, safe to log, compare and serialise."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Direction = Literal["up", "down"]
AnomalyKind = Literal["spike", "sustained"]
Severity = Literal["none", "warning", "critical"]
TrendDirection = Literal["up", "down", "flat"]


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One anomaly event: a point, or a run of consecutive points, far outside normal behaviour.

    ``index`` is the event's first point, as a position in the ``values`` the caller passed;
    ``value`` and ``expected`` (the robust baseline, original units) are at that point;
    ``score`` is the event's largest distance from the baseline in robust noise units (positive,
    after the variance-stabilising transform); ``length`` is how many consecutive points the
    event spans (one alarm, not ``length`` alarms); ``threshold`` is the score the series needed
    to alarm (calibrated from its own history, see docs/detection.md). ``kind`` says which
    score alarmed: ``"spike"`` (a point or burst far from its neighbours) or ``"sustained"``
    (the recent mean has left the series' recent normal: a level shift, a plateau, a daily
    pattern that stops); for a sustained event ``expected`` is the median of the points before
    it and ``score`` is in units of the spread of such deviations.

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
    length: int = 1
    threshold: float | None = None
    kind: AnomalyKind = "spike"

    def to_dict(self) -> dict[str, Any]:
        """The anomaly as a plain dict (JSON-ready)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class AnomalyScores:
    """The anomaly score of every point, and the score that raises an alarm on this series.

    ``scores[i]`` is the signed robust z of the caller's point ``i`` (NaN for points that were
    ignored: NaN or infinite values or timestamps); ``threshold`` is the calibrated alarm level
    (an absolute score) that ``detect_anomalies`` uses with the same options. ``sustained``
    and ``sustained_threshold`` are the same for the sustained-deviation score (0.0 while a
    point has too little history; the threshold is None when the series is too short to
    calibrate it, and then it never alarms).
    """

    scores: list[float]
    threshold: float
    sustained: list[float] = field(default_factory=list)
    sustained_threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The scores as a plain dict (JSON-ready; NaN stays NaN)."""
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

    ``change_pct`` is signed in the metric's own terms (latency +20 % is ``20.0``): between means
    for ``welch`` and ``threshold``, medians for ``mannwhitney``, and the levels either side of the
    change for ``change_point`` (``None`` from a baseline of exactly 0);
    ``direction_is_bad`` says whether the observed move is the harmful one for this metric
    (any move counts when ``higher_is_better`` is unknown); ``confidence`` is ``1 - p`` of the
    test behind the decision (``None`` when none could be run).

        >>> from llmpulse.detection import detect_regression
        >>> r = detect_regression([810, 790, 805, 800], [1010, 990, 1020, 1000], metric="latency_ms")
        >>> (r.regressed, r.severity)
        (True, 'critical')
    """

    regressed: bool
    change_pct: float | None
    severity: Severity
    confidence: float | None
    p_value: float | None
    method: str
    direction_is_bad: bool
    higher_is_better: bool | None
    baseline_mean: float
    current_mean: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict (JSON-ready)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TrendResult:
    """The slope of a series per day, whether it is significant, and a plain-words summary.

    ``slope_per_day`` is a Theil–Sen slope in the metric's units per day; ``p_value`` comes from
    the Mann–Kendall test, widened for autocorrelated points; ``worsening`` says whether a
    significant trend goes the harmful way (``None`` when the metric's direction is unknown).
    """

    slope_per_day: float
    change_pct_per_day: float | None
    p_value: float
    significant: bool
    direction: TrendDirection
    worsening: bool | None
    n_points: int
    summary: str

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict (JSON-ready)."""
        return asdict(self)
