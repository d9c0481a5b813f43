"""StreamingDetector: the anomaly model of detect_anomalies, one point at a time, past only.

What live alerting needs: each point is judged when it arrives, from the points before it.
The model is the batch one with the future taken away:

- the variance-stabilising transform is chosen (``choose_transform``) from the first
  ``warmup`` points, which never alarm;
- the baseline is the median of the previous ``window`` points (the batch baseline is a
  centred median inside each level; here a level shift alarms once, at its start, and the
  trailing median has moved onto the new level ``window // 2`` points later);
- the noise scale is ``residual_scale`` of the last ``SCALE_POINTS`` residuals, refreshed every
  ``REFRESH`` points;
- the alarm threshold is ``alarm_threshold`` of the last ``TAIL_POINTS`` scores (the same
  generalised-Pareto tail fit and the same ``false_alarms_per_day`` as the batch detector),
  never below ``threshold``, refreshed every ``REFRESH`` points; until there is enough history
  to fit a tail, it starts lower (``short_tail_quantile``: from 300 scores), and before 300
  scores only a score beyond every score seen so far alarms;
- consecutive points over the threshold are one event: ``step`` returns an ``Anomaly`` for the
  first point of each event only.
- the sustained score (``_sustained``) is advanced point by point: the mean of the last
  ``SUSTAIN_POINTS`` (spikes entering as the trailing median) against the median of the
  ``BASELINE_POINTS`` before them, standardised and calibrated by ``calibrate`` on the last
  ``TAIL_POINTS`` deviations every ``SUSTAINED_REFRESH * REFRESH`` points; it cannot alarm
  until that calibration has a tail, and its events end under ``RELEASE`` times its threshold.

The daily profile is not removed (it needs days of history to estimate); its swing widens the
residual scale instead. State is a few numbers and bounded float buffers:
``to_dict``/``from_dict`` round-trip it through JSON.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections import deque
from typing import Any

import numpy as np

from llmpulse.errors import DetectionInputError

from ._calibrate import (
    DEFAULT_FALSE_ALARMS_PER_DAY,
    DEFAULT_FLOOR,
    alarm_threshold,
    fits_tail,
    residual_scale,
    short_tail_quantile,
    split_budget,
)
from ._prepare import prepare
from ._sustained import BASELINE_POINTS, RELEASE, SUSTAIN_POINTS, calibrate
from ._transform import TRANSFORMS, Transform, choose_transform
from ._types import Anomaly

__all__ = ["StreamingDetector", "detect_anomalies_online"]

SCALE_POINTS = 512  # residuals the noise scale is estimated from
TAIL_POINTS = 2048  # scores the tail is fitted on (>= 300 needed to fit one)
REFRESH = 128  # points between refits of scale and threshold
SUSTAINED_REFRESH = 4  # refits of the spike score per refit of the sustained score
CLIP = 4.0  # spike score beyond which a point enters the sustained score as the local median
_STATE_VERSION = 2
_MID = BASELINE_POINTS // 2


class StreamingDetector:
    """Online anomaly scores: ``update(value, timestamp) -> score``, using only past points.

    >>> det = StreamingDetector(warmup=20)
    >>> for v in [100.0, 101.0, 99.0, 100.5, 99.5] * 8:
    ...     _ = det.update(v)
    >>> det.step(400.0) is not None
    True
    """

    def __init__(
        self,
        *,
        threshold: float = DEFAULT_FLOOR,
        false_alarms_per_day: float | None = DEFAULT_FALSE_ALARMS_PER_DAY,
        window: int = 15,
        warmup: int = 30,
        transform: str = "auto",
        interval: float | None = None,
    ) -> None:
        if not threshold > 0:
            raise DetectionInputError(f"threshold must be > 0, got {threshold!r}")
        if false_alarms_per_day is not None and not (
            isinstance(false_alarms_per_day, (int, float)) and 0 < false_alarms_per_day < 1e6
        ):
            raise DetectionInputError(
                "false_alarms_per_day must be a number > 0 (or None for the fixed threshold), "
                f"got {false_alarms_per_day!r}"
            )
        if isinstance(window, bool) or not isinstance(window, int) or window < 3:
            raise DetectionInputError(f"window must be an integer >= 3, got {window!r}")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < window:
            raise DetectionInputError(f"warmup must be an integer >= window, got {warmup!r}")
        if transform not in TRANSFORMS:
            raise DetectionInputError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
        if interval is not None and not interval > 0:
            raise DetectionInputError(f"interval must be > 0 seconds, got {interval!r}")
        self.floor = float(threshold)
        self.false_alarms_per_day = false_alarms_per_day
        self.window = window
        self.warmup = warmup
        self.transform_name = transform
        self.interval = interval  # seconds between points; learnt from timestamps when None
        self._kind: Transform | None = None
        self._low = 0.0  # smallest positive value seen (log of 0 is measured against it)
        self._seen = 0
        self._last_t: float | None = None
        self._recent: deque[float] = deque(maxlen=window)  # last `window` y, arrival order
        self._sorted: list[float] = []  # the same numbers, sorted (median in O(window))
        self._early: list[float] = []  # raw values until the transform is chosen
        self._resid = array("d")
        self._scores = array("d")
        self._sigma = 0.0
        self.threshold = self.floor  # the absolute score that raises an alarm now
        self._in_event = False
        self._since_refit = 0
        # The sustained score: mean of the last SUSTAIN_POINTS (spikes clipped) minus the
        # median of the BASELINE_POINTS before them, standardised and calibrated like the batch.
        self._hour: deque[float] = deque()  # last SUSTAIN_POINTS clipped y
        self._day: deque[float] = deque()  # the BASELINE_POINTS before them, arrival order
        self._day_sorted: list[float] = []
        self._devs = array("d")  # past deviations the scale and the tail are fitted on
        self._centre = 0.0
        self._scale = 0.0
        self.sustained = 0.0  # the sustained score of the last point
        self.sustained_threshold: float | None = None  # None: cannot alarm yet
        self._in_shift = False

    # -- the model ---------------------------------------------------------------------------

    def _y(self, value: float) -> float:
        kind = self._kind
        assert kind is not None
        if kind.kind == "log":
            return math.log(value if value > 0 else self._low * 0.5)
        if kind.kind == "rate":
            p = (min(1.0, max(0.0, value)) + kind.offset) / (1.0 + 2.0 * kind.offset)
            return math.asin(math.sqrt(p))
        if kind.kind == "sqrt":
            return math.sqrt(max(0.0, value) + kind.offset)
        return value

    def _start(self) -> None:
        """Choose the transform from the warm-up points and seed the buffers with them."""
        raw = np.array(self._early)
        self._kind = choose_transform(raw, self.transform_name)
        if self._kind.kind == "log" and float(raw.min()) <= 0:
            self._kind = choose_transform(raw, "sqrt" if float(raw.min()) >= 0 else "none")
        positive = raw[raw > 0]
        self._low = float(positive.min()) if positive.size else 1.0
        self._early = []
        ys = [self._y(float(v)) for v in raw]
        for i in range(self.window, len(ys)):
            self._resid.append(ys[i] - _median(ys[i - self.window : i]))
        self._recent.extend(ys[-self.window :])
        self._sorted = sorted(self._recent)
        for y in ys:
            self._sustain(y)
        self._refit()

    def _refit(self) -> None:
        if len(self._resid) > SCALE_POINTS:
            del self._resid[: len(self._resid) - SCALE_POINTS]
        if len(self._scores) > TAIL_POINTS:
            del self._scores[: len(self._scores) - TAIL_POINTS]
        resid = np.frombuffer(self._resid, dtype=np.float64)
        assert self._kind is not None
        self._sigma = max(residual_scale(resid), self._kind.noise_floor)
        scores = np.frombuffer(self._scores, dtype=np.float64)
        spikes, sustained = split_budget(self.false_alarms_per_day)
        tq = short_tail_quantile(scores.size)
        self.threshold = alarm_threshold(scores, self.interval, spikes, self.floor, quantile=tq)
        if self.false_alarms_per_day is not None and scores.size and not fits_tail(scores, tq):
            # Too little history to fit even a short tail (under 300 scores): only what beats
            # every score seen so far alarms (the batch detector cannot do this: its history
            # contains the anomalies).
            self.threshold = max(self.threshold, float(np.max(np.abs(scores))))
        if len(self._devs) > TAIL_POINTS:
            del self._devs[: len(self._devs) - TAIL_POINTS]
        if (self._seen // REFRESH) % SUSTAINED_REFRESH == 0:
            # A day-long baseline moves slowly: its scale and tail are refitted less often.
            devs = np.frombuffer(self._devs, dtype=np.float64)
            self._centre, self._scale, self.sustained_threshold = calibrate(
                devs, self.interval, sustained, self.floor
            )
        self._since_refit = 0

    def _sustain(self, y: float) -> None:
        """Advance the sustained score by one (spike-clipped) transformed value."""
        hour, day, srt = self._hour, self._day, self._day_sorted
        hour.append(y)
        if len(hour) <= SUSTAIN_POINTS:
            self.sustained = 0.0
            return
        old = hour.popleft()
        if len(day) == BASELINE_POINTS:
            del srt[bisect.bisect_left(srt, day.popleft())]
            day.append(old)
            bisect.insort(srt, old)
        else:
            day.append(old)
            bisect.insort(srt, old)
            if len(day) < BASELINE_POINTS:
                self.sustained = 0.0
                return
        dev = sum(hour) / SUSTAIN_POINTS - srt[_MID]
        self._devs.append(dev)
        self.sustained = (dev - self._centre) / self._scale if self._scale > 0 else 0.0

    def update(self, value: float, timestamp: float | None = None) -> float:
        """Score one point against the points before it (signed robust z; 0.0 while warming up).

        Non-finite values score NaN and leave the state unchanged.
        """
        v = float(value)
        if not math.isfinite(v):
            return math.nan
        if timestamp is not None and self.interval is None:
            t = float(timestamp)
            if self._last_t is not None and t > self._last_t:
                self.interval = t - self._last_t
            self._last_t = t
        self._seen += 1
        if self._kind is None:
            self._early.append(v)
            if len(self._early) >= self.warmup:
                self._start()
            return 0.0
        if 0 < v < self._low:
            self._low = v
        y = self._y(v)
        srt = self._sorted
        n = len(srt)
        mid = n // 2
        r = y - (srt[mid] if n % 2 else 0.5 * (srt[mid - 1] + srt[mid]))
        recent = self._recent
        if len(recent) == recent.maxlen:
            del srt[bisect.bisect_left(srt, recent[0])]
        recent.append(y)
        bisect.insort(srt, y)
        sigma = self._sigma
        z = r / sigma if sigma > 0 else 0.0
        # Alarming points stay out of the noise estimate, so a long incident does not teach
        # the detector that incidents are normal.
        if abs(z) < self.threshold:
            self._resid.append(r)
        self._scores.append(z)
        self._sustain(y if abs(z) < CLIP else y - r)
        self._since_refit += 1
        if self._since_refit >= REFRESH:
            self._refit()
        return z

    def step(self, value: float, timestamp: float | None = None) -> Anomaly | None:
        """``update``, and an ``Anomaly`` when this point starts a new event (else None).

        Spike events end at the first point under the threshold; sustained events
        (``kind="sustained"``) at the first point under ``RELEASE`` times theirs. A sustained
        event starting inside a spike event is that event and is not reported again.
        """
        z = self.update(value, timestamp)
        alarm = math.isfinite(z) and abs(z) >= self.threshold and z != 0.0
        start = alarm and not self._in_event
        self._in_event = alarm
        shift = False
        level = self.sustained_threshold
        if level is None:
            self._in_shift = False
        elif math.isfinite(z):
            held = abs(self.sustained) >= (RELEASE * level if self._in_shift else level)
            shift = held and not self._in_shift
            self._in_shift = held
        if not start and not (shift and not alarm):
            return None
        assert self._kind is not None
        stamp = None if timestamp is None else float(timestamp)
        if start:
            expected_y = _median(list(self._recent)[:-1])
            return Anomaly(
                index=self._seen - 1,
                value=float(value),
                expected=float(self._kind.inverse(expected_y)),
                score=abs(z),
                direction="up" if z > 0 else "down",
                timestamp=stamp,
                threshold=self.threshold,
            )
        assert level is not None
        return Anomaly(
            index=self._seen - 1,
            value=float(value),
            expected=float(self._kind.inverse(self._day_sorted[BASELINE_POINTS // 2])),
            score=abs(self.sustained),
            direction="up" if self.sustained > 0 else "down",
            timestamp=stamp,
            threshold=level,
            kind="sustained",
        )

    # -- state -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The whole state as JSON-ready data (``from_dict`` restores it exactly)."""
        return {
            "version": _STATE_VERSION,
            "threshold": self.floor,
            "false_alarms_per_day": self.false_alarms_per_day,
            "window": self.window,
            "warmup": self.warmup,
            "transform": self.transform_name,
            "interval": self.interval,
            "kind": None if self._kind is None else [self._kind.kind, self._kind.offset],
            "low": self._low,
            "seen": self._seen,
            "last_t": self._last_t,
            "recent": list(self._recent),
            "early": list(self._early),
            "resid": self._resid.tolist(),
            "scores": self._scores.tolist(),
            "sigma": self._sigma,
            "alarm_threshold": self.threshold,
            "in_event": self._in_event,
            "since_refit": self._since_refit,
            "hour": list(self._hour),
            "day": list(self._day),
            "devs": self._devs.tolist(),
            "centre": self._centre,
            "scale": self._scale,
            "sustained": self.sustained,
            "sustained_threshold": self.sustained_threshold,
            "in_shift": self._in_shift,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> StreamingDetector:
        """A detector continuing from ``to_dict``'s output."""
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise DetectionInputError(
                f"not a StreamingDetector state of version {_STATE_VERSION}: {str(state)[:80]!r}"
            )
        try:
            det = cls(
                threshold=state["threshold"],
                false_alarms_per_day=state["false_alarms_per_day"],
                window=state["window"],
                warmup=state["warmup"],
                transform=state["transform"],
                interval=state["interval"],
            )
            kind = state["kind"]
            det._kind = None if kind is None else Transform(str(kind[0]), float(kind[1]))
            det._low = float(state["low"])
            det._seen = int(state["seen"])
            det._last_t = None if state["last_t"] is None else float(state["last_t"])
            det._recent.extend(float(x) for x in state["recent"])
            det._sorted = sorted(det._recent)
            det._early = [float(x) for x in state["early"]]
            det._resid = array("d", (float(x) for x in state["resid"]))
            det._scores = array("d", (float(x) for x in state["scores"]))
            det._sigma = float(state["sigma"])
            det.threshold = float(state["alarm_threshold"])
            det._in_event = bool(state["in_event"])
            det._since_refit = int(state["since_refit"])
            det._hour.extend(float(x) for x in state["hour"])
            det._day.extend(float(x) for x in state["day"])
            det._day_sorted = sorted(det._day)
            det._devs = array("d", (float(x) for x in state["devs"]))
            det._centre = float(state["centre"])
            det._scale = float(state["scale"])
            det.sustained = float(state["sustained"])
            level = state["sustained_threshold"]
            det.sustained_threshold = None if level is None else float(level)
            det._in_shift = bool(state["in_shift"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DetectionInputError(f"StreamingDetector state is damaged: {exc!r}") from exc
        return det


def _median(xs: Any) -> float:
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return 0.0
    mid = n // 2
    return float(s[mid]) if n % 2 else 0.5 * (s[mid - 1] + s[mid])


def detect_anomalies_online(
    values: Any,
    timestamps: Any = None,
    *,
    metric: str | None = None,
    threshold: float = DEFAULT_FLOOR,
    false_alarms_per_day: float | None = DEFAULT_FALSE_ALARMS_PER_DAY,
    window: int = 15,
    warmup: int = 30,
    transform: str = "auto",
) -> list[Anomaly]:
    """What a StreamingDetector fed the series point by point would have alarmed on.

    The same input rules as ``detect_anomalies`` (NaN/inf ignored, timestamps sorted, indices
    in the caller's positions); each point is judged from the points before it only.
    """
    series = prepare(values, timestamps, metric=metric)
    det = StreamingDetector(
        threshold=threshold,
        false_alarms_per_day=false_alarms_per_day,
        window=window,
        warmup=warmup,
        transform=transform,
        interval=series.interval,
    )
    out = []
    for i in range(series.n):
        ts = series.timestamp(i)
        found = det.step(float(series.values[i]), ts)
        if found is not None:
            out.append(
                Anomaly(
                    index=int(series.positions[i]),
                    value=found.value,
                    expected=found.expected,
                    score=found.score,
                    direction=found.direction,
                    timestamp=ts,
                    threshold=found.threshold,
                    kind=found.kind,
                )
            )
    return out
