"""Detection: anomalies, change points, regressions and trends — pure functions over numbers.

No database, clock or I/O: every function takes a series (and timestamps in Unix seconds when
time matters) and returns small frozen dataclasses. See docs/detection.md.

    >>> from llmpulse.detection import detect_anomalies
    >>> [a.index for a in detect_anomalies([100, 102, 99, 101, 100, 98, 900, 101, 100, 99, 102, 100])]
    [6]
"""

from __future__ import annotations

try:
    import scipy  # noqa: F401 - only the detection extra installs it
except ModuleNotFoundError as exc:  # a base install: say which extra brings it, not just "scipy"
    raise ModuleNotFoundError(
        "llmpulse.detection needs scipy, which is not installed: pip install 'llmpulse[detection]'",
        name=exc.name,
    ) from exc

from ._anomalies import anomaly_scores, detect_anomalies
from ._changepoints import detect_change_points
from ._regression import detect_regression
from ._stream import StreamingDetector, detect_anomalies_online
from ._trend import analyze_trend
from ._types import Anomaly, AnomalyScores, ChangePoint, RegressionResult, TrendResult

__all__ = [
    "Anomaly",
    "AnomalyScores",
    "ChangePoint",
    "RegressionResult",
    "StreamingDetector",
    "TrendResult",
    "analyze_trend",
    "anomaly_scores",
    "detect_anomalies",
    "detect_anomalies_online",
    "detect_change_points",
    "detect_regression",
]
